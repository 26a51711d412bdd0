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
# expect_fail|expect_ok NAME EXPECTED_SUBSTRING... -- CMD...: the command must exit non-zero (fail) or zero (ok) and
# print every substring.
expect() {
  local want=$1 name=$2; shift 2
  local subs=()
  while [ "$1" != "--" ]; do subs+=("$1"); shift; done
  shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$want" = ok ] && [ $rc -ne 0 ]; then bad "$name: exited $rc; output: $out"; return; fi
  if [ "$want" = fail ] && [ $rc -eq 0 ]; then bad "$name: exited 0; output: $out"; return; fi
  for s in "${subs[@]}"; do
    case "$out" in *"$s"*) ;; *) bad "$name: output lacks '$s': $out"; return;; esac
  done
  ok
}
expect_fail() { expect fail "$@"; }
expect_ok() { expect ok "$@"; }
finish() {
  echo "$passes passed, $fails failed"
  [ $fails -eq 0 ]
}
