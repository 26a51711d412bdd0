#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io (and the Python docker-compose 1.29, the compose
# that bookworm ships) when missing, and starts dockerd as root when none runs (log: /var/log/sluice-dockerd.log).
# Idempotent; does nothing when `docker info` already works.
set -euo pipefail
say() { echo "dockerd: $*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
docker info >/dev/null 2>&1 && exit 0
say "starting dockerd"
$SUDO bash -c 'nohup dockerd >>/var/log/sluice-dockerd.log 2>&1 </dev/null &'
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
say "dockerd did not answer within 60 s (see /var/log/sluice-dockerd.log)"
exit 1
