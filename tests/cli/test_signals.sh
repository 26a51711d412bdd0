# Operation: SIGTERM stops `sluice up` within a deadline with what was read committed and nothing lost (a later drain
# completes the table exactly); SIGHUP reloads the config without losing anything either.
. "$(dirname "$0")/lib.sh"
SEED="$SL_SOURCE_DIR/examples/seed/sluice.yaml"
# An endless, paced source: the pipeline is mid-stream whenever the signal comes.
sed -e "s|^data_dir: .*|data_dir: $TMP/data|" -e 's/count: [0-9]* .*/count: 0\n      rate: 3000/' "$SEED" > "$TMP/endless.yaml"

"$SLUICE" up --until-done -q -c "$TMP/endless.yaml" > "$TMP/up.out" 2> "$TMP/up.err" &
pid=$!
sleep 3
kill -HUP $pid
sleep 2
kill -TERM $pid
t0=$SECONDS
wait $pid; rc=$?
[ $rc -eq 0 ] && ok || bad "up exited $rc after SIGTERM: $(tail -5 "$TMP/up.err")"
[ $((SECONDS - t0)) -le 30 ] && ok || bad "up took $((SECONDS - t0)) s to stop"
grep -q "SIGHUP: reloaded" "$TMP/up.err" && ok || bad "no reload logged: $(cat "$TMP/up.err")"

# Everything the log holds reaches the table once the processor drains: nothing was lost at the signals.
logged=$(sqlite3 "$TMP/data/log.db" "SELECT COUNT(*), COUNT(DISTINCT key) FROM messages WHERE topic='users_created'")
n=${logged%%|*}
[ "$n" -gt 0 ] && ok || bad "nothing was logged before the signal"
expect_ok "drain after the stop" "process users:" -- "$SLUICE" process users -q --drain -c "$TMP/endless.yaml"
rows=$(sqlite3 "$TMP/data/spark_streams.db" 'SELECT COUNT(*), COUNT(DISTINCT id) FROM created_users')
distinct=${logged##*|}
[ "$rows" = "$distinct|$distinct" ] && ok || bad "table has $rows rows, the log holds $distinct distinct records"
# The source resumes after its last delivered page: no record index was skipped.
cursor=$(sqlite3 "$TMP/data/log.db" "SELECT value FROM cursors WHERE name='ingest:users'")
cursor=${cursor#total=*;}  # "total=N;<source cursor>": the records taken are saved with the position
[ "$cursor" -ge "$distinct" ] 2>/dev/null && ok || bad "cursor $cursor behind the $distinct records logged"
finish
