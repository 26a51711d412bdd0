#!/usr/bin/env bash
# Starts one Cassandra 5.0 node. The config is tests/services/cassandra/cassandra.yaml and jvm.options (the project's
# test node) with these changes for a cluster of containers:
#   CASSANDRA_CLUSTER_NAME (sluice)     cluster_name, the same on every node
#   CASSANDRA_SEEDS (cassandra-1)       seed hosts, comma-separated (port 7000 implied)
#   CASSANDRA_INITIAL_TOKEN (0)         this node's token (num_tokens 1: spread them over the Murmur3 range)
#   CASSANDRA_DC / CASSANDRA_RACK       GossipingPropertyFileSnitch's dc1 / rack1
#   CASSANDRA_HEAP (768M)               -Xms/-Xmx
#   CASSANDRA_AUTO_BOOTSTRAP (true)     false for the nodes of a new, empty cluster (no streaming on first join)
#   CASSANDRA_RING_DELAY_MS (5000)      -Dcassandra.ring_delay_ms
#   CASSANDRA_AUTHENTICATOR             AllowAllAuthenticator, or PasswordAuthenticator (user cassandra/cassandra)
# listen_address and rpc_address are the container's own address. Unlike the test node, no
# -Dcassandra.unsafesystem=true: it loses the schema when a node is killed. Data in /var/lib/cassandra (a volume).
set -euo pipefail
CONF=/opt/cassandra/config
S=/var/lib/cassandra
mkdir -p "$S/conf" "$S/data" "$S/commitlog" "$S/saved_caches" "$S/hints" "$S/cdc_raw" "$S/triggers"
ip=$(hostname -i | awk '{print $1}')
seeds=""
IFS=',' read -ra hosts <<< "${CASSANDRA_SEEDS:-cassandra-1}"
for h in "${hosts[@]}"; do seeds+="${seeds:+,}$h:7000"; done
auth=${CASSANDRA_AUTHENTICATOR:-AllowAllAuthenticator}
authz=AllowAllAuthorizer; [ "$auth" = PasswordAuthenticator ] && authz=CassandraAuthorizer
sed -e "s|@STATE@|$S|g; s|@CLUSTER_NAME@|${CASSANDRA_CLUSTER_NAME:-sluice}|g; s|@AUTHENTICATOR@|$auth|g" \
    -e "s|@AUTHORIZER@|$authz|g; s|@STORAGE_PORT@|7000|g; s|@NATIVE_PORT@|9042|g" \
    -e "s|^listen_address:.*|listen_address: $ip|; s|^rpc_address:.*|rpc_address: $ip|" \
    -e "s|^initial_token:.*|initial_token: ${CASSANDRA_INITIAL_TOKEN:-0}|" \
    -e "s|- seeds: .*|- seeds: \"$seeds\"|; s|^endpoint_snitch:.*|endpoint_snitch: GossipingPropertyFileSnitch|" \
    "$CONF/cassandra.yaml" > "$S/conf/cassandra.yaml"
echo "auto_bootstrap: ${CASSANDRA_AUTO_BOOTSTRAP:-true}" >> "$S/conf/cassandra.yaml"
printf 'dc=%s\nrack=%s\n' "${CASSANDRA_DC:-dc1}" "${CASSANDRA_RACK:-rack1}" > "$S/conf/cassandra-rackdc.properties"
cp "$CONF/logback.xml" "$S/conf/logback.xml"
opts=()
while IFS= read -r line; do
  line=${line%%#*}; line=$(echo "$line" | xargs)
  case "$line" in ""|-Dcassandra.unsafesystem=*|-Dcassandra.ring_delay_ms=*) continue ;; esac
  opts+=("$line")
done < "$CONF/jvm.options"
# The test node's 100 ms ring delay is too short for a node joining others on a busy machine ("Unable to contact any
# seeds" after the bootstrap sleep): 5 s by default.
opts+=("-Dcassandra.ring_delay_ms=${CASSANDRA_RING_DELAY_MS:-5000}")
jamm=$(ls /opt/cassandra/lib/jamm-*.jar | head -n1)
heap=${CASSANDRA_HEAP:-768M}
exec java -Xms"$heap" -Xmx"$heap" -XX:+ExitOnOutOfMemoryError -XX:HeapDumpPath="$S" "${opts[@]}" -javaagent:"$jamm" \
  -Dcassandra.config="file://$S/conf/cassandra.yaml" -Dcassandra.storagedir="$S" -Dcassandra.logdir="$S" \
  -Dcassandra.triggers_dir="$S/triggers" -Dlogback.configurationFile="$S/conf/logback.xml" \
  -Dcassandra.jmx.local.port=7199 -Dcom.sun.management.jmxremote.rmi.port=7199 \
  -cp "$S/conf:/opt/cassandra/lib/*" org.apache.cassandra.service.CassandraDaemon
