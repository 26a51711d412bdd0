#!/usr/bin/env bash
# Every configuration the project ships (examples/, deploy/) passes `sluice check`: a stricter check in the engine
# must come with the shipped files brought up to it, or the compose stack and the package start with a refusal.
source "$(dirname "$0")/lib.sh"

shopt -s nullglob globstar
n=0
for f in "$SL_SOURCE_DIR"/examples/**/*.yaml "$SL_SOURCE_DIR"/deploy/**/*.yaml; do
  grep -q '^pipelines:' "$f" || continue   # compose files and the like
  n=$((n + 1))
  expect_ok "sluice check ${f#"$SL_SOURCE_DIR"/}" -- "$SLUICE" check -c "$f"
done
if [ "$n" -ge 2 ]; then ok; else bad "found $n shipped configurations (expected examples/seed and deploy)"; fi
finish
