#!/usr/bin/env bash
# Builds a current librdkafka (static, with SSL, SASL incl. SCRAM, zstd and lz4) into .cache/librdkafka/prefix when
# the system's is older than 2.6.1, and does nothing otherwise or when it is already built. CMake links sluice against
# that prefix when it exists (SL_RDKAFKA_PREFIX, default .cache/librdkafka/prefix with its .version), else against the
# system's librdkafka through pkg-config.
#
# Why: Debian 12 ships librdkafka 2.0.2, which cannot authenticate with SASL/SCRAM to Kafka 4.x brokers (librdkafka
# issue 4895, fixed in 2.6.1) and misses years of client fixes. The source is Debian's own source package from the
# next release (trixie, librdkafka 2.8.0), fetched with `apt-get source` through a private sources list and private
# apt state under .cache/librdkafka/apt (the machine's apt configuration is not touched), so it is verified by
# trixie's signed Release file like any Debian package, and Debian's patches are applied by dpkg-source. Its build
# dependencies (libssl, libsasl2, libzstd, liblz4, zlib) are all in bookworm; scripts/deps.sh installs them. Pinned
# below by Debian version and by the sha256 of the upstream tarball. Takes about a minute on two cores.
# SL_SYSTEM_RDKAFKA=1 skips it (links the system's). SL_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=librdkafka
DEB_VERSION=2.8.0-1                 # trixie's librdkafka
WANT=${DEB_VERSION%-*}              # upstream version, what .version records
ORIG_SHA256=5bd1c46f63265f31c6bfcedcde78703f77d28238eadf23821c2b43fc30be3e25   # librdkafka_2.8.0.orig.tar.gz
# The Debian archive this machine's apt already uses (the first `URIs:` of a deb822 .sources file, or the first
# `deb` line of sources.list, ending in /debian); SL_DEBIAN_MIRROR overrides it.
debian_mirror() {
  local u
  u=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' |
      grep -E '/debian/?$' | head -1)
  [ -n "$u" ] || u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' | grep -E '/debian/?$' | head -1)
  echo "${u%/}"
}
MIRROR=${SL_DEBIAN_MIRROR:-$(debian_mirror)}
OUT="$ROOT/.cache/librdkafka"
PREFIX="$OUT/prefix"
say() { echo "librdkafka: $*" >&2; }

[ "${SL_SYSTEM_RDKAFKA:-0}" = 1 ] && exit 0
if [ -f "$PREFIX/.version" ] && [ "$(cat "$PREFIX/.version")" = "$WANT" ]; then exit 0; fi
if pkg-config --atleast-version=2.6.1 rdkafka 2>/dev/null; then exit 0; fi
for tool in apt-get dpkg-source cmake; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool not found (scripts/deps.sh installs it)"; exit 1; }
done

say "building librdkafka $WANT from Debian's source package $PKG $DEB_VERSION (static) into $PREFIX"
t0=$SECONDS
work="$OUT/build"
apt_dir="$OUT/apt"
rm -rf "$work" "$PREFIX"
mkdir -p "$work/dl" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"

# apt with only our deb-src line and its own lists and cache: `apt-get update` here leaves the system's state alone.
fetch_source() {   # $1: archive URL, $2: extra apt options
  cat > "$apt_dir/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $1 trixie main
EOF
  local apt=(apt-get -q -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o APT::Sandbox::User=root $2)
  "${apt[@]}" update >"$work/apt.log" 2>&1 &&
    (cd "$work/dl" && "${apt[@]}" source --download-only "$PKG=$DEB_VERSION" >>"$work/apt.log" 2>&1)
}
[ -n "$MIRROR" ] || { say "no Debian archive found in /etc/apt/sources*; set SL_DEBIAN_MIRROR"; exit 1; }
fetch_source "$MIRROR" "" ||
  { say "apt-get source $PKG=$DEB_VERSION from $MIRROR failed; see $work/apt.log"; tail -5 "$work/apt.log" >&2; exit 1; }
orig="$work/dl/${PKG}_${WANT}.orig.tar.gz"
echo "$ORIG_SHA256  $orig" | sha256sum -c --quiet - ||
  { say "$orig does not match the pinned sha256"; exit 1; }
# dpkg-source unpacks the upstream tarball and applies debian/patches (the .dsc's checksums are checked here too).
dpkg-source -x "$work/dl/${PKG}_${DEB_VERSION}.dsc" "$work/src" >"$work/unpack.log" 2>&1 ||
  { say "dpkg-source failed; see $work/unpack.log"; exit 1; }
src="$work/src"
[ -f "$src/src/rdkafka.h" ] || { say "no librdkafka source in $src"; exit 1; }

cmake -S "$src" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DRDKAFKA_BUILD_STATIC=ON -DRDKAFKA_BUILD_EXAMPLES=OFF -DRDKAFKA_BUILD_TESTS=OFF \
  -DWITH_SSL=ON -DWITH_SASL=ON -DWITH_ZSTD=ON -DWITH_CURL=OFF -DENABLE_LZ4_EXT=ON >"$work/configure.log" 2>&1 ||
  { say "configure failed; see $work/configure.log"; tail -20 "$work/configure.log" >&2; exit 1; }
cmake --build "$work/cmake" -j "$(nproc)" --target rdkafka >"$work/build.log" 2>&1 ||
  { say "build failed; see $work/build.log"; tail -20 "$work/build.log" >&2; exit 1; }
grep -q "WITH_SASL_SCRAM 1" "$work/cmake/generated/config.h" || { say "built without SASL/SCRAM"; exit 1; }
grep -q "WITH_ZSTD 1" "$work/cmake/generated/config.h" || { say "built without zstd"; exit 1; }
grep -q "WITH_LZ4_EXT 1" "$work/cmake/generated/config.h" || { say "built without the system's lz4"; exit 1; }
mkdir -p "$PREFIX/lib" "$PREFIX/include/librdkafka"
cp "$work/cmake/src/librdkafka.a" "$PREFIX/lib/"
cp "$src/src/rdkafka.h" "$src/src/rdkafka_mock.h" "$PREFIX/include/librdkafka/"
echo "$PKG $DEB_VERSION (Debian trixie source package)" > "$PREFIX/.source"
echo "$WANT" > "$PREFIX/.version"
rm -rf "$work" "$apt_dir"
say "librdkafka $WANT ready in $((SECONDS - t0)) s"
