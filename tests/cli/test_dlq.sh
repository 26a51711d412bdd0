# Records that do not fit the mapping go to the dead-letter topic with the reason, the rest are written; `sluice dlq`
# lists them, and after the mapping is fixed, `sluice dlq replay` sends them through so the table is whole.
. "$(dirname "$0")/lib.sh"
SEED="$SL_SOURCE_DIR/examples/seed/sluice.yaml"
# post_code as an int: the generator gives some postcodes as text ("EC1A 1BB", "V6B 4Y8"...), which cannot be ints.
sed -e "s|^data_dir: .*|data_dir: $TMP/data|" -e 's/count: [0-9]* .*/count: 2000/' \
    -e 's/post_code:       { path: location.postcode, type: text }/post_code:       { path: location.postcode, type: bigint }/' \
    "$SEED" > "$TMP/strict.yaml"
grep -q 'type: bigint' "$TMP/strict.yaml" || bad "could not make the strict config"

out=$("$SLUICE" up --until-done -q -c "$TMP/strict.yaml" 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "up exited $rc: $out"
dlq=$(printf '%s\n' "$out" | sed -n 's/.* delivered to .users_created., \([0-9]*\) to the dead-letter topic.*/\1/p')
rows=$(sqlite3 "$TMP/data/spark_streams.db" 'SELECT COUNT(*) FROM created_users')
[ -n "$dlq" ] && [ "$dlq" -gt 0 ] && ok || bad "expected some dead-lettered records, got '$dlq': $out"
[ $((rows + dlq)) -eq 2000 ] && ok || bad "rows $rows + dlq $dlq != 2000"

list=$("$SLUICE" dlq users list -c "$TMP/strict.yaml" 2>"$TMP/list.err"); rc=$?
[ $rc -eq 0 ] && ok || bad "dlq list exited $rc"
n=$(printf '%s\n' "$list" | grep -c $'\tmap\t')
[ "$n" -eq "$dlq" ] && ok || bad "dlq list shows $n map failures, expected $dlq: $list"
case "$list" in *"column 'post_code' (path location.postcode)"*"is not a valid bigint"*) ok;; *) bad "reason missing: $list";; esac
grep -q "$dlq records listed from users_created.dlq ($dlq in all)" "$TMP/list.err" && ok || bad "list summary: $(cat "$TMP/list.err")"

# Replaying with the same strict mapping changes nothing: they still fail and nothing is published.
expect_ok "replay under the strict mapping" "replayed 0 records to users_created, $dlq still fail" -- \
  "$SLUICE" dlq users replay -c "$TMP/strict.yaml"

# Fix the mapping, replay, drain: the table is whole.
sed 's/type: bigint/type: text/' "$TMP/strict.yaml" > "$TMP/fixed.yaml"
expect_ok "replay after the fix" "replayed $dlq records to users_created, 0 still fail; continue with --from $dlq" -- \
  "$SLUICE" dlq users replay -c "$TMP/fixed.yaml"
expect_ok "drain the replayed records" "written" -- "$SLUICE" process users -q --drain -c "$TMP/fixed.yaml"
rows=$(sqlite3 "$TMP/data/spark_streams.db" 'SELECT COUNT(*), COUNT(DISTINCT id) FROM created_users')
[ "$rows" = "2000|2000" ] && ok || bad "after replay the table has $rows, expected 2000|2000"
expect_fail "unknown pipeline" "no pipeline 'nope' (pipelines: users)" -- "$SLUICE" dlq nope -c "$TMP/fixed.yaml"
finish
