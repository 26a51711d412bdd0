#!/usr/bin/env bash
# Installs every Debian package that sluice's build, tests and benchmarks need, and nothing when they are all there.
# Idempotent: it asks dpkg first and calls apt-get only for what is missing. Python packages for tests live in a
# virtualenv under .cache/venv (scripts/venv.sh); the Kafka and Cassandra jars come from tests/services.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  librdkafka-dev libcurl4-openssl-dev libyaml-dev libsqlite3-dev sqlite3 liblz4-dev libssl-dev
  libsimdjson-dev libcmocka-dev zlib1g-dev
  libprotobuf-dev libprotoc-dev   # the registry's PROTOBUF schemas: .proto parsing (src/codec/protobuf.cc)
  libzstd-dev libsasl2-dev   # for the librdkafka that scripts/librdkafka.sh builds when the system's is too old
  kcat curl ca-certificates procps iproute2 python3-venv
  chromium   # the console's UI tests (tests/ui: playwright-core drives it; node and npm come with the machine)
)
command -v java >/dev/null 2>&1 || PKGS+=(openjdk-17-jdk-headless)
command -v mvn  >/dev/null 2>&1 || PKGS+=(maven)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$(dirname "${BASH_SOURCE[0]}")/librdkafka.sh"
