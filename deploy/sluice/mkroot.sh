#!/bin/sh
# Assembles the runtime root of the sluice image in $1 (run in the build stage, after the build): the binary, the
# shared libraries that it, curl and sh load (ldd), CA certificates, OpenSSL's config, time zones, SASL plugins, the
# health check, the seed example config, and /etc/passwd with the sluice user (10001).
set -eu
R=$1
mkdir -p "$R/usr/bin" "$R/bin" "$R/usr/local/bin" "$R/etc/sluice" "$R/etc/ssl/certs" "$R/usr/lib/ssl" \
         "$R/usr/share" "$R/tmp"
mkdir -p /sluice-data && chown 10001:10001 /sluice-data   # becomes /var/lib/sluice (COPY --chown in the Dockerfile)
cp build/sluice "$R/usr/bin/sluice"
cp /usr/bin/curl "$R/usr/bin/curl"
cp /bin/dash "$R/bin/sh"
for exe in build/sluice /usr/bin/curl /bin/dash; do
  ldd "$exe" | awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$R/"
done
# Libraries loaded at run time rather than linked: SASL mechanism plugins (Kafka SASL), and their own deps.
for d in /usr/lib/x86_64-linux-gnu/sasl2; do
  if [ -d "$d" ]; then
    mkdir -p "$R$d" && cp -a "$d/." "$R$d/"
    for so in "$d"/*.so*; do
      [ -f "$so" ] && ldd "$so" | awk '/=>/ && $3 ~ /^\// {print $3}' | while read -r lib; do
        [ -e "$R$lib" ] || cp -L --parents "$lib" "$R/"; done
    done
  fi
done
cp -L /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
cp -L /etc/ssl/openssl.cnf "$R/etc/ssl/openssl.cnf"
ln -s /etc/ssl/certs "$R/usr/lib/ssl/certs"
ln -s /etc/ssl/openssl.cnf "$R/usr/lib/ssl/openssl.cnf"
cp -a /usr/share/zoneinfo "$R/usr/share/zoneinfo"
rm -rf "$R/usr/share/zoneinfo/right" "$R/usr/share/zoneinfo/posix"
cp /etc/localtime "$R/etc/localtime" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/bin/sh\nsluice:x:10001:10001:sluice:/var/lib/sluice:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\nsluice:x:10001:\n' > "$R/etc/group"
printf 'hosts: files dns\n' > "$R/etc/nsswitch.conf"
cp deploy/sluice/healthcheck "$R/usr/local/bin/sluice-healthcheck"
chmod 755 "$R/usr/local/bin/sluice-healthcheck"
cp examples/seed/sluice.yaml "$R/etc/sluice/sluice.yaml"
cp deploy/sluice.yaml "$R/etc/sluice/compose.yaml"
chmod 1777 "$R/tmp"
