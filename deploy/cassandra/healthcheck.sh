#!/usr/bin/env bash
# Healthy when the node answers a CQL OPTIONS request (protocol v4) with SUPPORTED on its native port: Cassandra
# opens that port only after the node has joined the ring. Pure bash: no JVM per check.
set -euo pipefail
ip=$(hostname -i | awk '{print $1}')
exec 3<>"/dev/tcp/$ip/9042"
printf '\x04\x00\x00\x01\x05\x00\x00\x00\x00' >&3
resp=$(timeout 4 head -c 9 <&3 | od -An -tx1 | tr -d ' \n')
[ "${resp:0:2}" = 84 ] && [ "${resp:8:2}" = 06 ]
