#!/usr/bin/env bash
# Builds sluice_<version>_amd64.deb in the repository root from the release build (`make` first): /usr/bin/sluice,
# a man page made from the --help texts, example configs, /etc/sluice/sluice.yaml and /etc/default/sluice (conffiles),
# and the templated unit sluice@.service (instance ROLE[-PIPELINE], system user sluice, state in /var/lib/sluice).
# Depends: the Debian packages that hold the shared libraries the binary loads (ldd + dpkg -S, at the versions built
# against). Needs dpkg-deb only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${SLUICE_BIN:-build/sluice}
[ -x "$BIN" ] || { echo "mkdeb: $BIN not built (run make)" >&2; exit 1; }
version=$(sed -n 's/^project(sluice VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
out="$ROOT/sluice_${version}_${arch}.deb"
work=$(mktemp -d /tmp/sluice-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
P="$work/pkg"
mkdir -p "$P/DEBIAN" "$P/usr/bin" "$P/usr/lib/sluice" "$P/lib/systemd/system" "$P/etc/sluice" "$P/etc/default" \
         "$P/usr/share/man/man1" "$P/usr/share/doc/sluice/examples"

install -m 755 "$BIN" "$P/usr/bin/sluice"
strip --strip-unneeded "$P/usr/bin/sluice"
install -m 755 deploy/deb/sluice-unit "$P/usr/lib/sluice/sluice-unit"
install -m 644 deploy/deb/sluice@.service "$P/lib/systemd/system/sluice@.service"
install -m 644 deploy/deb/default "$P/etc/default/sluice"
# The package's config: the seed pipeline on the embedded default, its state under the unit's /var/lib/sluice.
sed 's|^data_dir: .*|data_dir: /var/lib/sluice/seed|' examples/seed/sluice.yaml > "$P/etc/sluice/sluice.yaml"
install -m 644 examples/seed/sluice.yaml "$P/usr/share/doc/sluice/examples/seed.yaml"
install -m 644 examples/seed/dags.yaml "$P/usr/share/doc/sluice/examples/seed-dags.yaml"
install -m 644 deploy/sluice.yaml "$P/usr/share/doc/sluice/examples/compose-stack.yaml"
install -m 644 docs/deploy.md "$P/usr/share/doc/sluice/deploy.md" 2>/dev/null || true
printf 'sluice\nCopyright: the sluice authors\n' > "$P/usr/share/doc/sluice/copyright"

# Man page: the top-level help and every command's, as a roff page.
{
  echo ".TH SLUICE 1 \"$(date -u +%Y-%m-%d)\" \"sluice $version\" \"User Commands\""
  echo ".SH NAME"; echo "sluice \\- stream web APIs through Kafka into Cassandra, in one process"
  echo ".SH SYNOPSIS"; echo ".B sluice"; echo "[\\-\\-log\\-level LEVEL] COMMAND [OPTIONS]"
  echo ".SH DESCRIPTION"; echo ".nf"; "$BIN" --help 2>&1 | sed 's/\\/\\\\/g; s/^[.'"'"']/\\\&&/'; echo ".fi"
  for c in up ingest process console registry scheduler dag dlq check cql config-doc; do
    echo ".SH \"SLUICE $(echo "$c" | tr a-z A-Z)\""; echo ".nf"
    "$BIN" "$c" --help 2>&1 | sed 's/\\/\\\\/g; s/^[.'"'"']/\\\&&/'; echo ".fi"
  done
  echo ".SH FILES"; echo ".TP"; echo "/etc/sluice/sluice.yaml"; echo "the configuration of the sluice@ units"
  echo ".TP"; echo "/etc/default/sluice"; echo "environment (secrets) of every sluice@ unit"
  echo ".TP"; echo "/lib/systemd/system/sluice@.service"; echo "instances ROLE[-PIPELINE], e.g. sluice@process-users"
  echo ".SH SEE ALSO"; echo "/usr/share/doc/sluice/deploy.md"
} | gzip -9n > "$P/usr/share/man/man1/sluice.1.gz"

# Depends: the package of each shared library the binary links directly (NEEDED; theirs come with those packages),
# at least the upstream version built against.
direct=$(objdump -p "$BIN" | awk '$1 == "NEEDED" {print $2}')
deps=$(for so in $direct; do
         lib=$(ldd "$BIN" | awk -v so="$so" '$1 == so {print $3}'); [ -n "$lib" ] || continue
         pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
         pkg=${pkg%%:*}; [ -n "$pkg" ] && echo "$pkg (>= $(dpkg-query -W -f='${Version}' "$pkg" | sed 's/-[^-]*$//'))"
       done | sort -u | paste -sd, | sed 's/,/, /g')
size=$(du -sk "$P" | cut -f1)
cat > "$P/DEBIAN/control" <<CTL
Package: sluice
Version: $version
Architecture: $arch
Maintainer: sluice authors <sluice@localhost>
Installed-Size: $size
Depends: adduser, $deps
Section: net
Priority: optional
Homepage: file:///usr/share/doc/sluice
Description: stream web APIs through Kafka into Cassandra, in one process
 sluice replaces the seed stack's Kafka producer script, Spark job, Airflow
 scheduler, schema registry and Control Center with one C program. Run its
 roles as systemd services: sluice@up, sluice@ingest-PIPELINE,
 sluice@process-PIPELINE, sluice@console, sluice@registry, sluice@scheduler.
CTL
printf '/etc/sluice/sluice.yaml\n/etc/default/sluice\n' > "$P/DEBIAN/conffiles"
cat > "$P/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd sluice >/dev/null; then
    adduser --system --group --home /var/lib/sluice --no-create-home --quiet sluice
  fi
  mkdir -p /var/lib/sluice
  chown sluice:sluice /var/lib/sluice
  chmod 0750 /var/lib/sluice
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
SH
cat > "$P/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop 'sluice@*.service' >/dev/null 2>&1 || true
fi
exit 0
SH
cat > "$P/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
if [ "$1" = purge ]; then rm -rf /var/lib/sluice; fi
exit 0
SH
chmod 755 "$P/DEBIAN/postinst" "$P/DEBIAN/prerm" "$P/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zxz --build "$P" "$out" >/dev/null
echo "mkdeb: $out ($(du -h "$out" | cut -f1)); Depends: adduser, $deps" >&2
