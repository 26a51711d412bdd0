# Helpers for the CLI tests: each test is a bash script run by ctest with $SLUICE (the binary) and $SL_SOURCE_DIR set.
set -uo pipefail
: "${SLUICE:?SLUICE must point at the sluice binary}"
: "${SL_SOURCE_DIR:?}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
# expect_fail NAME EXPECTED_SUBSTRING... -- CMD...: the command must exit non-zero and print every substring.
expect_fail() {
  local name=$1; shift
  local subs=()
  while [ "$1" != "--" ]; do subs+=("$1"); shift; done
  shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exited 0; output: $out"; return; fi
  for s in "${subs[@]}"; do
    case "$out" in *"$s"*) ;; *) bad "$name: output lacks '$s': $out"; return;; esac
  done
  ok
}
expect_ok() {
  local name=$1; shift
  local subs=()
  while [ "$1" != "--" ]; do subs+=("$1"); shift; done
  shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then bad "$name: exited $rc; output: $out"; return; fi
  for s in "${subs[@]}"; do
    case "$out" in *"$s"*) ;; *) bad "$name: output lacks '$s': $out"; return;; esac
  done
  ok
}
finish() {
  echo "$passes passed, $fails failed"
  [ $fails -eq 0 ]
}
