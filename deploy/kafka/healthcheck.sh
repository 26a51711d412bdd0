#!/usr/bin/env bash
# Healthy when the broker answers an ApiVersions request (v0, correlation id 7) on 9092 with error code 0: the broker
# has joined the quorum and serves requests. Pure bash: no JVM per check.
set -euo pipefail
exec 3<>/dev/tcp/127.0.0.1/9092
printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x07\x00\x00' >&3
resp=$(timeout 4 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
[ "${resp:8:12}" = "000000070000" ]
