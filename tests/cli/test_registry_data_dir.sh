#!/usr/bin/env bash
# `sluice registry -c FILE` keeps its SQLite store under the file's top-level data_dir (issue 21: it wrote to
# ./var/registry), and registry.data_dir, when the section sets it, still wins.
source "$(dirname "$0")/lib.sh"

run_until_db() { # CONFIG DB: start the registry from $TMP/cwd, wait for DB to appear, stop it
  local cfg=$1 db=$2 pid
  (cd "$TMP/cwd" && exec "$SLUICE" registry -c "$cfg" --listen 127.0.0.1:0 >"$TMP/log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do [ -f "$db" ] && break; sleep 0.1; done
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  [ -f "$db" ]
}

mkdir -p "$TMP/cwd"
cat >"$TMP/top.yaml" <<YAML
data_dir: $TMP/top
registry:
  store: sqlite
YAML
if run_until_db "$TMP/top.yaml" "$TMP/top/registry/registry.db"; then ok; else bad "no store under the top-level data_dir: $(cat "$TMP/log")"; fi
if [ -e "$TMP/cwd/var" ]; then bad "the registry still wrote under ./var"; else ok; fi

cat >"$TMP/own.yaml" <<YAML
data_dir: $TMP/top2
registry:
  data_dir: $TMP/own
YAML
if run_until_db "$TMP/own.yaml" "$TMP/own/registry.db"; then ok; else bad "registry.data_dir not honoured: $(cat "$TMP/log")"; fi
if [ -e "$TMP/top2/registry" ]; then bad "registry.data_dir set, yet the store went under the top-level data_dir"; else ok; fi
finish
