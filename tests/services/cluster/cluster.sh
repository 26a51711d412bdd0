# shellcheck shell=bash
# The cluster members of tests/services/run: three KRaft brokers (kafka-1..3) and three Cassandra nodes in dc1
# (cassandra-1..3), plus cassandra-dc2 in dc2 on request. Sourced by run, which owns locking, pids and readiness of
# single members; this file owns their configs, the cluster-wide readiness and `up cluster`.
#
# Layout: kafka-N listens on 127.0.0.1:N9092 (controller N9093), node.id N, all three are voters. cassandra-N binds
# 127.0.0.(N+1) with the default ports (9042 native, 7000 storage) and JMX on 127.0.0.1:17N99; cassandra-dc2 binds
# 127.0.0.5, JMX 17499. One token per node, spread evenly over the Murmur3 range, so the ring (and so the owner of
# each partition) is the same on every run: the routing proof depends on knowing who owns what.

CLUSTER_KAFKA_HEAP=${CLUSTER_KAFKA_HEAP:-320m}
CLUSTER_CASSANDRA_HEAP=${CLUSTER_CASSANDRA_HEAP:-768M}
CLUSTER_BOOTSTRAP="127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
# What the cluster needs beside the test processes (measured RSS: ~1.1 GiB per node at 768M heap, ~0.35 per broker).
CLUSTER_MIN_AVAIL_MIB=${CLUSTER_MIN_AVAIL_MIB:-5500}

cluster_token() {
  case "$1" in cassandra-1) echo -9223372036854775808;; cassandra-2) echo -3074457345618258603;;
    cassandra-3) echo 3074457345618258602;; cassandra-dc2) echo 100;; esac
}
cluster_jmx() { case "$1" in cassandra-1) echo 17199;; cassandra-2) echo 17299;; cassandra-3) echo 17399;; cassandra-dc2) echo 17499;; esac; }
cluster_dc() { [ "$1" = cassandra-dc2 ] && echo dc2 || echo dc1; }

start_cluster_broker() { # kafka-N
  local name=$1 id=${1#kafka-} s; s=$(state "$1")
  local lib="$CACHE/kafka/lib" idfile="$CACHE/state/kafka-cluster.id"
  mkdir -p "$s/logs" "$s/data"
  sed -e "s|@STATE@|$s|g; s|@ID@|$id|g; s|@PORT@|${id}9092|g; s|@CPORT@|${id}9093|g" \
    "$HERE/cluster/kafka.properties" > "$s/server.properties"
  cp "$HERE/kafka/log4j2.xml" "$s/log4j2.xml"
  local jopts=(-Dlog4j2.configurationFile="$s/log4j2.xml" -Dkafka.logs.dir="$s/logs" -Djava.awt.headless=true)
  if [ ! -f "$s/data/meta.properties" ]; then
    # One cluster id for the three log dirs; it is written once (first member to need it) and kept with the state.
    ( flock 7
      [ -s "$idfile" ] || timeout 60 "$JAVA" -cp "$lib/*" "${jopts[@]}" kafka.tools.StorageTool random-uuid > "$idfile"
    ) 7>"$idfile.lock"
    timeout 120 "$JAVA" -cp "$lib/*" "${jopts[@]}" kafka.tools.StorageTool format \
      -t "$(cat "$idfile")" -c "$s/server.properties" --ignore-formatted >"$s/logs/format.log" 2>&1 \
      || { cat "$s/logs/format.log" >&2; die "$name: StorageTool format failed"; }
  fi
  launch "$name" "$s/logs/stdout.log" "$(marker "$name")" -Dsluice.service="$name" \
    -Xms"$CLUSTER_KAFKA_HEAP" -Xmx"$CLUSTER_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError "${jopts[@]}" \
    -cp "$lib/*" kafka.Kafka "$s/server.properties"
}

start_cluster_node() { # cassandra-N | cassandra-dc2
  local name=$1 s; s=$(state "$1")
  local lib="$CACHE/cassandra/lib" addr; addr=$(host "$name")
  mkdir -p "$s/conf" "$s/logs" "$s/data" "$s/commitlog" "$s/saved_caches" "$s/hints" "$s/cdc_raw" "$s/triggers"
  sed -e "s|@STATE@|$s|g; s|@CLUSTER_NAME@|sluice-cluster|g; s|@AUTHENTICATOR@|AllowAllAuthenticator|g" \
      -e "s|@AUTHORIZER@|AllowAllAuthorizer|g; s|@STORAGE_PORT@|7000|g; s|@NATIVE_PORT@|9042|g" \
      -e "s|^listen_address:.*|listen_address: $addr|; s|^rpc_address:.*|rpc_address: $addr|" \
      -e "s|^initial_token:.*|initial_token: $(cluster_token "$name")|" \
      -e "s|seeds: \".*\"|seeds: \"127.0.0.2:7000\"|; s|^endpoint_snitch:.*|endpoint_snitch: GossipingPropertyFileSnitch|" \
      "$HERE/cassandra/cassandra.yaml" > "$s/conf/cassandra.yaml"
  # Durable enough for kill -9: a node that comes back must still know the schema and what it acknowledged.
  cat >> "$s/conf/cassandra.yaml" <<YAML
# cluster member ($name): hints for a node that is down, kept for the whole test
# a fresh test cluster with no data: joining nodes need not stream (start in seconds, not a ring delay + streaming)
auto_bootstrap: false
hinted_handoff_enabled: true
max_hint_window: 3h
YAML
  sed "s|@DC@|$(cluster_dc "$name")|" "$HERE/cluster/rackdc.properties" > "$s/conf/cassandra-rackdc.properties"
  cp "$HERE/cassandra/logback.xml" "$s/conf/logback.xml"
  local opts=() line
  while IFS= read -r line; do
    line=${line%%#*}; line=$(echo "$line" | xargs)
    # unsafesystem skips flushing the system keyspaces: a node killed with -9 forgets the schema (see
    # docs/faults.md); cluster members get killed, so they run without it.
    [ "$line" = -Dcassandra.unsafesystem=true ] && continue
    # A joining node's gossip shadow round lasts one ring delay: 100 ms is too short to hear from the seed.
    case "$line" in -Dcassandra.ring_delay_ms=*) line=-Dcassandra.ring_delay_ms=5000;; esac
    [ -n "$line" ] && opts+=("$line")
  done < "$HERE/cassandra/jvm.options"
  local jamm; jamm=$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n1)
  [ -n "$jamm" ] || die "$name: no jamm jar in $lib"
  local jmx; jmx=$(cluster_jmx "$name")
  launch "$name" "$s/logs/stdout.log" "$(marker "$name")" -Dsluice.service="$name" \
    -Xms"$CLUSTER_CASSANDRA_HEAP" -Xmx"$CLUSTER_CASSANDRA_HEAP" -XX:+ExitOnOutOfMemoryError -XX:HeapDumpPath="$s/logs" \
    "${opts[@]}" -javaagent:"$jamm" \
    -Dcassandra.config="file://$s/conf/cassandra.yaml" -Dcassandra.storagedir="$s" -Dcassandra.logdir="$s/logs" \
    -Dcassandra.triggers_dir="$s/triggers" -Dlogback.configurationFile="$s/conf/logback.xml" \
    -Dcassandra.jmx.local.port="$jmx" -Dcom.sun.management.jmxremote.rmi.port="$jmx" \
    -cp "$s/conf:$lib/*" org.apache.cassandra.service.CassandraDaemon
}

# One broker answers metadata on its own port and knows itself.
cluster_broker_ok() {
  local id=${1#kafka-}
  timeout 10 kcat -b "127.0.0.1:${id}9092" -L -m 5 2>/dev/null | grep -q "broker $id at 127.0.0.1:${id}9092"
}

# The three brokers together: every one in the metadata, an acks=all record through a topic at RF 3 read back, and
# the consumer offsets topic created (by a group read) while all three run, so it gets its three replicas too.
cluster_kafka_ready() {
  local deadline=$(( $(date +%s) + TIMEOUT )) md n nonce
  while :; do
    md=$(timeout 10 kcat -b "$CLUSTER_BOOTSTRAP" -L -m 5 2>/dev/null || true)
    n=$(echo "$md" | grep -cE 'broker [123] at 127\.0\.0\.1:[123]9092' || true)
    if [ "$n" = 3 ]; then
      nonce="ready-$$-$RANDOM-$(date +%s%N)"
      if echo "$nonce" | timeout 20 kcat -b "$CLUSTER_BOOTSTRAP" -P -t _sluice_cluster_ready -X acks=all \
           -X message.timeout.ms=15000 2>/dev/null \
         && timeout 30 kcat -b "$CLUSTER_BOOTSTRAP" -G _sluice_cluster_ready -X auto.offset.reset=earliest \
              -X fetch.wait.max.ms=100 -c 1 -q _sluice_cluster_ready 2>/dev/null | grep -q . \
         && timeout 10 kcat -b "$CLUSTER_BOOTSTRAP" -L -t __consumer_offsets 2>/dev/null \
              | grep -q 'replicas: [123],[123],[123]'; then
        echo "kafka cluster: 3 brokers in the metadata, acks=all round trip at RF 3, __consumer_offsets at RF 3"
        return 0
      fi
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { say "run: kafka cluster not ready after ${TIMEOUT} s; metadata:"; echo "$md" >&2; return 1; }
    sleep 1
  done
}

cql_at() { # host query...
  "$PY" "$HERE/cqlping.py" --host "$1" --timeout 5 --query "$2" 2>/dev/null
}

# Every running node of the cluster sees every other one as a NORMAL peer in gossip, lists it in system.peers_v2,
# and has finished bootstrapping. Nodes given as arguments are the ones expected up.
cluster_cassandra_ready() {
  local deadline=$(( $(date +%s) + TIMEOUT )) want=$# n ok
  while :; do
    ok=1
    for n in "$@"; do
      [ "$(cql_at "$(host "$n")" "SELECT bootstrapped FROM system.local")" = COMPLETED ] || { ok=0; break; }
      [ "$(cql_at "$(host "$n")" "SELECT peer FROM system.peers_v2" | wc -l)" -ge $(( want - 1 )) ] || { ok=0; break; }
      [ "$(cql_at "$(host "$n")" "SELECT status_with_port FROM system_views.gossip_info" | grep -c '^NORMAL')" -ge "$want" ] \
        || { ok=0; break; }
    done
    if [ $ok = 1 ]; then
      echo "cassandra cluster: $want nodes NORMAL in every node's gossip and peers ($*)"
      return 0
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { say "run: cassandra cluster not ready after ${TIMEOUT} s (node $n)"; return 1; }
    sleep 1
  done
}

running_of() { # names... : those with a live JVM (paused ones included)
  local n; for n in "$@"; do [ -n "$(live_pid "$n")" ] && echo "$n"; done; return 0
}

signal_one() { # name KILL|STOP|CONT
  local name=$1 sig=$2 pid
  pid=$(live_pid "$name")
  [ -n "$pid" ] || die "$name: not running"
  kill -"$sig" "$pid"
  if [ "$sig" = KILL ]; then
    local i; for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  echo "$name: SIG$sig sent to pid $pid"
}

cluster_up() { # dc2 (0|1)
  command -v kcat >/dev/null || die "kcat is not installed: apt-get install -y --no-install-recommends kcat"
  local t_all; t_all=$(now)
  local avail; avail=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
  local running; running=$(for n in "${CLUSTER_ALL[@]}"; do live_pid "$n"; done | wc -l)
  if [ "$running" = 0 ] && [ "$avail" -lt "$CLUSTER_MIN_AVAIL_MIB" ]; then
    die "cluster: only $avail MiB available, the cluster needs ~$CLUSTER_MIN_AVAIL_MIB (CLUSTER_MIN_AVAIL_MIB)"
  fi
  check_java
  ensure_jars kafka
  ensure_jars cassandra
  local n
  local nodes=("${CLUSTER_CASSANDRA[@]}")
  [ "$1" = 1 ] && nodes+=(cassandra-dc2)
  # Kafka and Cassandra do not depend on each other, and most of a cold start is each JVM waiting (for a quorum,
  # for gossip), so everything that may start together does (a cold start took 209 s one member group after the
  # other, see README.md):
  # - the brokers together: none is ready before two controllers form a quorum;
  # - the seed node (cassandra-1) with them; the other nodes once the seed answers, then all at once. The rule
  #   "one node joins at a time" guards bootstrap's range movements (streaming); these nodes have
  #   auto_bootstrap: false and their own initial_token, so they claim their token from gossip without moving a
  #   range, and CLUSTER_SERIAL=1 restores one after the other to tell whether a failure comes from this.
  for n in "${CLUSTER_KAFKA[@]}"; do NO_WAIT=1 with_lock "$n" start_one "$n"; done
  local seed=${nodes[0]} rest=("${nodes[@]:1}")
  with_lock "$seed" start_one "$seed"
  if [ "${CLUSTER_SERIAL:-0}" = 1 ]; then
    for n in "${CLUSTER_KAFKA[@]}"; do with_lock "$n" wait_ready "$n" "$t_all"; done
    cluster_kafka_ready || die "kafka cluster not ready"
    for n in "${rest[@]}"; do with_lock "$n" start_one "$n"; done
  else
    local t_rest; t_rest=$(now)
    for n in "${rest[@]}"; do NO_WAIT=1 with_lock "$n" start_one "$n"; done
    for n in "${CLUSTER_KAFKA[@]}"; do with_lock "$n" wait_ready "$n" "$t_all"; done
    cluster_kafka_ready || die "kafka cluster not ready"
    for n in "${rest[@]}"; do with_lock "$n" wait_ready "$n" "$t_rest"; done
  fi
  cluster_cassandra_ready "${nodes[@]}" || die "cassandra cluster not ready"
  echo "up cluster: done in $(elapsed "$t_all") s"
}
