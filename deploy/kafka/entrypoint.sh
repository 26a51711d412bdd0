#!/usr/bin/env bash
# Starts one Kafka node in KRaft combined mode. The config is tests/services/kafka/server.properties (the project's
# test broker) with these settings appended (the last value of a key wins):
#   KAFKA_NODE_ID (1)                 node.id
#   KAFKA_CONTROLLER_QUORUM_VOTERS    controller.quorum.voters (default <id>@<hostname>:9093: a single node)
#   KAFKA_ADVERTISED_HOST (hostname)  host in advertised.listeners (PLAINTEXT://<host>:9092)
#   KAFKA_LISTENERS                   listeners (PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093)
#   KAFKA_REPLICATION (1)             default.replication.factor and the internal topics' RF; min ISR = min(2, RF)
#   KAFKA_CLUSTER_ID                  cluster id every node of a cluster formats its log dir with (required)
#   KAFKA_HEAP (512m)                 -Xms/-Xmx
#   KAFKA_CFG_<NAME>=value            any other property: KAFKA_CFG_LOG_RETENTION_HOURS=48 -> log.retention.hours=48
# Data and the generated config live in /var/lib/kafka (a volume); the log goes to stdout.
set -euo pipefail
CONF=/opt/kafka/config
STATE=/var/lib/kafka
id=${KAFKA_NODE_ID:-1}
host=${KAFKA_ADVERTISED_HOST:-$(hostname)}
rf=${KAFKA_REPLICATION:-1}
isr=$(( rf < 2 ? 1 : 2 ))
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID (22 characters, the same on every node of the cluster)}"
mkdir -p "$STATE/data"
props="$STATE/server.properties"
sed "s|@STATE@|$STATE|g" "$CONF/server.properties" > "$props"
cat >> "$props" <<PROPS

# --- container settings (deploy/kafka/entrypoint.sh) ---
node.id=$id
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS:-$id@$host:9093}
listeners=${KAFKA_LISTENERS:-PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093}
advertised.listeners=PLAINTEXT://$host:9092
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
PROPS
while IFS='=' read -r name value; do
  [[ $name == KAFKA_CFG_* ]] || continue
  key=$(echo "${name#KAFKA_CFG_}" | tr 'A-Z_' 'a-z.')
  echo "$key=$value" >> "$props"
done < <(env)

jopts=(-Dlog4j2.configurationFile="$CONF/log4j2.xml" -Djava.awt.headless=true)
if [ ! -f "$STATE/data/meta.properties" ]; then
  java -cp "/opt/kafka/lib/*" "${jopts[@]}" kafka.tools.StorageTool format \
    -t "$KAFKA_CLUSTER_ID" -c "$props" --ignore-formatted
fi
heap=${KAFKA_HEAP:-512m}
exec java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError "${jopts[@]}" \
  -cp "/opt/kafka/lib/*" kafka.Kafka "$props"
