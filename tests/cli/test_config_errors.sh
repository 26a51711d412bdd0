# A bad config fails with a message that names the file, the line and the key; a good one passes `sluice check`.
. "$(dirname "$0")/lib.sh"
SEED="$SL_SOURCE_DIR/examples/seed/sluice.yaml"

expect_ok "seed config is valid" "ok: 1 pipeline: users (12 columns" -- "$SLUICE" check -c "$SEED"
expect_fail "missing file" "nope.yaml: cannot open config" -- "$SLUICE" check -c "$TMP/nope.yaml"
expect_fail "no -c" "no config given" -- "$SLUICE" check

# Unknown key at the top, with a suggestion.
sed 's/^data_dir:/data_dri:/' "$SEED" > "$TMP/typo.yaml"
line=$(grep -n '^data_dri:' "$TMP/typo.yaml" | cut -d: -f1)
expect_fail "unknown top key" "typo.yaml:$line: unknown key 'data_dri'" "did you mean 'data_dir'?" -- "$SLUICE" check -c "$TMP/typo.yaml"

# Unknown key inside a pipeline section.
sed 's/^    topic: users_created/    topik: users_created/' "$SEED" > "$TMP/topik.yaml"
line=$(grep -n 'topik:' "$TMP/topik.yaml" | cut -d: -f1)
expect_fail "unknown pipeline key" "topik.yaml:$line: unknown key 'topik' in pipelines.users" "did you mean 'topic'?" -- "$SLUICE" check -c "$TMP/topik.yaml"

# Wrong type.
sed 's/^    partitions: 3/    partitions: three/' "$SEED" > "$TMP/type.yaml"
line=$(grep -n 'partitions: three' "$TMP/type.yaml" | cut -d: -f1)
expect_fail "wrong type" "type.yaml:$line: 'pipelines.users.partitions' must be an integer, got 'three'" -- "$SLUICE" check -c "$TMP/type.yaml"

# A mapping type that does not exist.
sed 's/type: uuid }/type: uuuid }/' "$SEED" > "$TMP/maptype.yaml"
line=$(grep -n 'uuuid' "$TMP/maptype.yaml" | cut -d: -f1)
expect_fail "bad mapping type" "maptype.yaml:$line" "uuuid" "did you mean 'uuid'" -- "$SLUICE" check -c "$TMP/maptype.yaml"

# A required key missing.
grep -v '^    topic: users_created' "$SEED" > "$TMP/notopic.yaml"
expect_fail "missing required" "'topic' is required in pipelines.users" -- "$SLUICE" check -c "$TMP/notopic.yaml"

# Sections of the other roles are checked too, without connecting: a secret in raw Kafka properties (refused, and
# never echoed), a cron field out of range.
{ printf 'kafka:\n  brokers: 127.0.0.1:9092\n  properties: {sasl.password: hunter2}\n'; cat "$SEED"; } > "$TMP/secret.yaml"
out=$("$SLUICE" check -c "$TMP/secret.yaml" 2>&1)
case "$out" in *"kafka.properties.sasl.password: secrets are not read from the config file"*) ok;; *) bad "secret: $out";; esac
case "$out" in *hunter2*) bad "the secret was printed: $out";; *) ok;; esac
sed 's/schedule: "@daily"/schedule: "61 * * * *"/' "$SEED" > "$TMP/cron.yaml"
line=$(grep -n '61 \* \* \* \*' "$TMP/cron.yaml" | cut -d: -f1)
expect_fail "bad cron" "cron.yaml:$line" "minute field '61' is invalid (allowed: 0-59)" -- "$SLUICE" check -c "$TMP/cron.yaml"

# YAML syntax.
printf 'pipelines:\n  users: [unclosed\n' > "$TMP/syntax.yaml"
expect_fail "yaml syntax" "syntax.yaml:" -- "$SLUICE" check -c "$TMP/syntax.yaml"

# Help teaches each command; an unknown command is a usage error.
for cmd in up ingest process check cql; do
  expect_ok "$cmd --help" "Usage: sluice $cmd" -- "$SLUICE" "$cmd" --help
done
expect_ok "--help lists commands" "ingest" "process" "check" -- "$SLUICE" --help
expect_fail "unknown command" "unknown command 'frobnicate'" -- "$SLUICE" frobnicate
# The configuration reference in docs/ is the one the code generates.
"$SLUICE" config-doc > "$TMP/configuration.md"
cmp -s "$TMP/configuration.md" "$SL_SOURCE_DIR/docs/configuration.md" && ok || bad "docs/configuration.md is stale: run ./build/sluice config-doc > docs/configuration.md"
finish
