# The README's main job, small: `sluice up` on the seed config writes N rows for N generated records, prints a
# summary that says where the data is, and a second run (nothing new to generate) leaves the table as it is.
. "$(dirname "$0")/lib.sh"
SEED="$SL_SOURCE_DIR/examples/seed/sluice.yaml"
sed -e "s|^data_dir: .*|data_dir: $TMP/data|" -e 's/count: [0-9]* .*/count: 2500/' "$SEED" > "$TMP/seed.yaml"

expect_ok "up runs the seed pipeline" "ingest users: 25 pages, 2500 records" "process users: 2500 consumed, 2500 written" \
  "table spark_streams.created_users has 2500 rows" "sqlite3 $TMP/data/spark_streams.db" -- "$SLUICE" up --until-done -q -c "$TMP/seed.yaml"
rows=$(sqlite3 "$TMP/data/spark_streams.db" 'SELECT COUNT(*), COUNT(DISTINCT id), COUNT(dob) FROM created_users')
[ "$rows" = "2500|2500|2500" ] && ok || bad "table counts: $rows"

# Resume: the source's cursor says everything was delivered; a rerun adds nothing and rewrites nothing.
expect_ok "rerun resumes at the end" "ingest users: 0 pages, 0 records" "table spark_streams.created_users has 2500 rows" \
  -- "$SLUICE" up --until-done -q -c "$TMP/seed.yaml"

# Raise the count: only the new records are generated and written.
sed -i 's/count: 2500/count: 3000/' "$TMP/seed.yaml"
expect_ok "more records after a raise" "ingest users: 5 pages, 500 records" "has 3000 rows" -- "$SLUICE" up --until-done -q -c "$TMP/seed.yaml"
finish
