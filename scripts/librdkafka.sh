#!/usr/bin/env bash
# Builds a current librdkafka (static, with SSL, SASL incl. SCRAM, zstd and lz4) into .cache/librdkafka/prefix when
# the system's is older than 2.6.1, and does nothing otherwise or when it is already built. CMake links sluice against
# that prefix when it exists (SL_RDKAFKA_PREFIX), else against the system's librdkafka through pkg-config.
#
# Why: Debian 12 ships librdkafka 2.0.2, which cannot authenticate with SASL/SCRAM to Kafka 4.x brokers (librdkafka
# issue 4895, fixed in 2.6.1) and misses three years of client fixes. The source comes from the rdkafka-sys crate,
# which carries librdkafka's release tree unchanged (fetched with cargo, so through the machine's configured crate
# registry); it is pinned below. Takes about 30 s on two cores. SL_SYSTEM_RDKAFKA=1 skips it (links the system's).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRATE=rdkafka-sys
CRATE_VERSION=4.10.0+2.12.1        # librdkafka 2.12.1
WANT=${CRATE_VERSION#*+}
OUT="$ROOT/.cache/librdkafka"
PREFIX="$OUT/prefix"
say() { echo "librdkafka: $*" >&2; }

[ "${SL_SYSTEM_RDKAFKA:-0}" = 1 ] && exit 0
if [ -f "$PREFIX/.version" ] && [ "$(cat "$PREFIX/.version")" = "$WANT" ]; then exit 0; fi
if pkg-config --atleast-version=2.6.1 rdkafka 2>/dev/null; then exit 0; fi
if ! command -v cargo >/dev/null 2>&1; then
  say "cargo not found: building against the system's librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')" \
      "(SASL/SCRAM to Kafka 4.x will not work)"
  exit 0
fi

say "building librdkafka $WANT (static) into $PREFIX"
t0=$SECONDS
work="$OUT/build"
rm -rf "$work" "$PREFIX"
mkdir -p "$work/fetch/src"
# A throwaway manifest that depends on the pinned crate: `cargo fetch` downloads and unpacks it into CARGO_HOME.
cat > "$work/fetch/Cargo.toml" <<EOF
[package]
name = "sluice-librdkafka-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
$CRATE = { version = "=$CRATE_VERSION", default-features = false }
EOF
echo 'fn main() {}' > "$work/fetch/src/main.rs"
(cd "$work/fetch" && cargo fetch -q) || { say "cargo fetch of $CRATE $CRATE_VERSION failed"; exit 1; }
src=$(cd "$work/fetch" && cargo metadata -q --format-version 1 |
      python3 -c "import json,sys; m=json.load(sys.stdin); print(next(p['manifest_path'] for p in m['packages'] if p['name']=='$CRATE'))")
src="$(dirname "$src")/librdkafka"
[ -f "$src/src/rdkafka.h" ] || { say "no librdkafka source in $src"; exit 1; }

cmake -S "$src" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DRDKAFKA_BUILD_STATIC=ON -DRDKAFKA_BUILD_EXAMPLES=OFF -DRDKAFKA_BUILD_TESTS=OFF \
  -DWITH_SSL=ON -DWITH_SASL=ON -DWITH_ZSTD=ON -DWITH_CURL=OFF -DENABLE_LZ4_EXT=ON >"$work/configure.log" 2>&1 ||
  { say "configure failed; see $work/configure.log"; tail -20 "$work/configure.log" >&2; exit 1; }
cmake --build "$work/cmake" -j "$(nproc)" --target rdkafka >"$work/build.log" 2>&1 ||
  { say "build failed; see $work/build.log"; tail -20 "$work/build.log" >&2; exit 1; }
mkdir -p "$PREFIX/lib" "$PREFIX/include/librdkafka"
cp "$work/cmake/src/librdkafka.a" "$PREFIX/lib/"
cp "$src/src/rdkafka.h" "$src/src/rdkafka_mock.h" "$PREFIX/include/librdkafka/"
grep -q "WITH_SASL_SCRAM 1" "$work/cmake/generated/config.h" || { say "built without SASL/SCRAM"; exit 1; }
echo "$WANT" > "$PREFIX/.version"
rm -rf "$work"
say "librdkafka $WANT ready in $((SECONDS - t0)) s"
