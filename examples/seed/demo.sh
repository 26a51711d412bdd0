#!/usr/bin/env bash
# `make demo`: the seed pipeline on the embedded default, from scratch. Generates randomuser-shaped records, logs them
# in the embedded topic users_created, streams them into the table spark_streams.created_users, and shows a few rows.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CONFIG=${SLUICE_CONFIG:-examples/seed/sluice.yaml}
rm -rf var/seed   # a fresh run each time; drop this line to see resumption instead
./build/sluice up --until-done -c "$CONFIG" "$@"
echo
echo "A few rows of spark_streams.created_users (sqlite3 var/seed/spark_streams.db):"
sqlite3 -header -column var/seed/spark_streams.db \
  "SELECT id, first_name, last_name, gender, email, dob FROM created_users ORDER BY first_name LIMIT 5"
echo
echo "From the same stream: spark_streams.users_by_email, users_per_country, signups_per_minute:"
sqlite3 -header -column var/seed/spark_streams.db \
  "SELECT email, first_name, last_name, country FROM users_by_email ORDER BY email LIMIT 3"
sqlite3 -header -column var/seed/spark_streams.db \
  "SELECT country, gender, users FROM users_per_country ORDER BY users DESC LIMIT 6"
# A window is final once a later minute has begun: rows appear for the minutes the run has finished.
sqlite3 -header -column var/seed/spark_streams.db \
  "SELECT country, window_start, window_end, signups FROM signups_per_minute ORDER BY window_start, country LIMIT 6"
