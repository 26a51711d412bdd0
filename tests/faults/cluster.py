#!/usr/bin/env python3
"""Fault scenarios on the test *clusters* (tests/services/run up cluster [dc2]): the seed pipeline (randomuser-shaped
records from the e2e API server -> sluice ingest -> three KRaft brokers -> sluice process -> three Cassandra nodes
in dc1), streaming at a steady load while one fault happens:

  routing       keyspace NTS {dc1: 1} on the three nodes: each node's coordinator write count (its own
                system_views.coordinator_write_latency, read through a session pinned to it) equals its local write
                count (system_views.local_write_latency) and the rows it owns by the ring: 100% token-aware routing.
                With cassandra-dc2 running (`--dc2`): a keyspace NTS {dc1: 3, dc2: 1} at LOCAL_QUORUM, dc2 receives
                every row as a replica and coordinates none.
  node_kill     cassandra-2 killed -9 mid-stream, started again after a while (hints replayed)
  node_pause    cassandra-3 SIGSTOPped (hangs, does not refuse) for a while, then SIGCONTed
  broker_kill   the broker leading partition 0 killed -9, started again after a while
  quorum_loss   cassandra-2 and cassandra-3 stopped (LOCAL_QUORUM impossible): the processor must wait, not
                dead-letter; both started again
  broker_pause  (long form only) the leader of partition 0 SIGSTOPped, then SIGCONTed
  rolling       (long form only) each broker stopped and started in turn, then each Cassandra node
  broker_each   (long form only) the leader of partition 0, then 1, then 2 killed -9 in turn, each started again
  group         three ingests (one source each) and three processors in one group, one of the six killed -9 every
                20 s and restarted; the topic grown from 3 to 6 partitions mid-stream (picked up without a restart)
  registry      two `sluice registry --store kafka` on the brokers (topic at RF 3), registering all along while
                the leader of the topic's partition is killed -9; every id unique, every schema served by both

After each: every source record is in the table read at ALL, column by column, count(*) at ALL equals it, no DLQ
entry, every record in the topic, peak RSS of each sluice process under its bound, both processes alive through
the fault and exiting 0 on SIGTERM. Reported: records sent, rows, duplicates in the log, longest pause of the row
stream (the longest gap between two consecutive rows' WRITETIMEs, which the coordinators set at write), recovery
(fault end -> the first row written after it, also from WRITETIME), peak RSS; the polled figures (count(*) every
0.5 s) are kept beside them in the JSON as longest_pause_polled_s / recovery_polled_s. Report to stdout and .cache/faults/cluster-report.{md,json}.

  tests/services/run up cluster [dc2]
  python3 tests/faults/cluster.py [--short] [--only routing,node_kill,...] [--dc2]
Environment: SL_FAULTS_SHORT=1 (= --short), SLUICE (default build/sluice), SLUICE_SERVICES_RUN (the launcher that
runs the cluster; default this checkout's tests/services/run).
"""
import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import sluice_e2e as e2e  # noqa: E402
import faults  # noqa: E402

BROKERS = "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
NODES = {"cassandra-1": "127.0.0.2", "cassandra-2": "127.0.0.3", "cassandra-3": "127.0.0.4"}
DC2 = {"cassandra-dc2": "127.0.0.5"}
# e2e's Kafka helpers (consume_all, topic_count, committed, delete_topics) read this at call time
e2e.BROKERS = BROKERS
RUN = os.environ.get("SLUICE_SERVICES_RUN") or os.path.join(HERE, "..", "services", "run")
REQUEST_TIMEOUT_S = 4
OUT_DIR = os.path.join(e2e.ROOT, ".cache", "faults")
check, Failed = faults.check, faults.Failed


def svc(cmd, name, timeout=300):
    r = subprocess.run([RUN, cmd, name], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise Failed(f"run {cmd} {name}: {r.stdout}{r.stderr}")
    return r.stdout


# ---- CQL from the test's side ------------------------------------------------------------------------------------

_sessions = {}


def session(pin=None):
    """A driver session over the dc1 nodes (pin=None), or pinned to one node (virtual tables are node-local)."""
    from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
    from cassandra.policies import (DCAwareRoundRobinPolicy, WhiteListRoundRobinPolicy, ConstantReconnectionPolicy)
    if pin not in _sessions:
        pol = WhiteListRoundRobinPolicy([pin]) if pin else DCAwareRoundRobinPolicy(local_dc="dc1")
        prof = ExecutionProfile(load_balancing_policy=pol, request_timeout=60)
        c = Cluster([pin] if pin else list(NODES.values()), execution_profiles={EXEC_PROFILE_DEFAULT: prof},
                    connect_timeout=10, reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None))
        _sessions[pin] = c.connect()
    return _sessions[pin]


def q(cql, cl="ALL", pin=None, timeout=120):
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement
    st = SimpleStatement(cql, consistency_level=getattr(ConsistencyLevel, cl), fetch_size=5000)
    return list(session(pin).execute(st, timeout=timeout))


def table_rows(ks):
    rows = {}
    for r in q(f"SELECT * FROM {ks}.created_users"):
        d = {c: getattr(r, c) for c in e2e.COLUMNS}
        d["id"] = str(d["id"])
        rows[d["id"]] = d
    return rows


def node_counts(addr, ks, table="created_users"):
    """(writes this node coordinated, writes this node applied) for ks.table, from its own virtual tables."""
    def one(vt):
        r = q(f"SELECT count FROM system_views.{vt} WHERE keyspace_name='{ks}' AND table_name='{table}'",
              cl="ONE", pin=addr, timeout=20)
        return r[0].count if r else 0
    return one("coordinator_write_latency"), one("local_write_latency")


# ---- one scenario ------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, name, n, *, page=50, replication="{'class': 'NetworkTopologyStrategy', 'dc1': 3}",
                 consistency="LOCAL_QUORUM", contact="127.0.0.2, 127.0.0.3, 127.0.0.4"):
        self.name, self.n, self.page = name, n, page
        self.dir = tempfile.mkdtemp(prefix=f"sl-cluster-{name}-")
        self.api = e2e.ApiServer(n, seed=e2e.uniq("clu"))
        self.apis = [self.api]  # the group scenario has one source per ingest; every one's records are expected
        self.topic, self.ks, self.group = e2e.uniq("clu"), e2e.uniq("clu_ks"), e2e.uniq("clu_g")
        self.replication, self.consistency, self.contact = replication, consistency, contact
        self.request_timeout = REQUEST_TIMEOUT_S
        self.cassandra_extra = ""  # more of the cassandra: section
        # sluice's own consumer session (10 s), not faults.py's 6 s: at 6 s, the brokers' own
        # broker.session.timeout.ms in tests/services/cluster, the group's session expires just as the controller
        # moves a killed coordinator's partitions, and every broker_kill that hit the coordinator cost a rebalance
        # (15.6 s of stream instead of ~8). Only the group scenario, which kills processors, wants 6 s.
        self.kafka_extra = f"  buffer_max: {faults.BUFFER_MAX_MIB}MiB\n"
        self.procs, self.events, self.mon, self.t0 = [], [], None, time.time()
        self.row = {"scenario": name, "sent": n, "in_table": None, "dups": None, "dlq": None, "longest_pause_s": None,
                    "recovery_s": None, "peak_rss_mib": None, "bound_mib": None, "result": "FAIL", "reason": ""}

    def config(self, span, api=None, tag="", partitions=3):
        api = api or self.api
        rate = max(0.2, api.total / self.page / span)
        src = e2e.http_source_yaml(api.port, self.page, rate=rate)
        text = (f"data_dir: {self.dir}/data{tag}\n"
                f"pipelines:\n  users:\n    source:\n{src}"
                f"    topic: {self.topic}\n    partitions: {partitions}\n    replication: 3\n    group: {self.group}\n"
                f"{e2e.MAPPING_YAML}"
                f"    sink:\n      keyspace: {self.ks}\n      table: created_users\n      primary_key: [id]\n"
                f"      consistency: {self.consistency}\n      replication: \"{self.replication}\"\n"
                f"{faults.BATCH_YAML}"
                f"kafka:\n  brokers: {BROKERS}\n{self.kafka_extra}"
                f"cassandra:\n  contact_points: [{self.contact}]\n  request_timeout: {self.request_timeout}s\n{self.cassandra_extra}")
        path = os.path.join(self.dir, f"sluice{tag}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, role, cfg):
        p = e2e.Proc([role, "-c", cfg], os.path.join(self.dir, f"{role}{len(self.procs)}.log"))
        p.role = role
        self.procs.append(p)
        return p

    def monitor(self):
        def count():
            # through cassandra-1 only (no scenario faults it), at ONE: with RF 3 it reads its own replica, so a
            # hung or dead node elsewhere cannot stall the measurement itself
            try:
                return q(f"SELECT count(*) FROM {self.ks}.created_users", cl="ONE", pin="127.0.0.2", timeout=5)[0][0]
            except Exception:
                # cassandra-1 itself restarting (rolling): its neighbour holds every row as well (RF 3)
                return q(f"SELECT count(*) FROM {self.ks}.created_users", cl="ONE", pin="127.0.0.3", timeout=5)[0][0]
        self.mon = faults.Monitor(count)

    def stream(self, span, before):
        cfg = self.config(span)
        self.monitor()
        ing, proc = self.start("ingest", cfg), self.start("process", cfg)
        # ingest may finish early (it is paced, but its pages are small): only the processor must stay up
        check(self.mon.wait_for(self.n // 5, 90, [proc]),
              f"no {self.n // 5} rows before {before} (count {self.mon.last()}, {self.mon.last_error}; ingest "
              f"alive {ing.alive()}, process alive {proc.alive()})\n{proc.output()[-1500:]}")
        return ing, proc

    def writetimes(self):
        """Every row's write time in seconds, sorted: WRITETIME is set by the coordinator when it takes the write
        (sluice sends no client timestamp), in microseconds on this machine's clock, the clock of time.time()."""
        return sorted(r[0] / 1e6 for r in q(f"SELECT WRITETIME(first_name) FROM {self.ks}.created_users"))

    @staticmethod
    def wt_pause(wts):
        """Longest gap between two consecutive rows' write times: the real longest pause of the row stream. A row
        written more than once (a batch retried after a timeout that a replica had applied) keeps its last write
        time, so a gap runs to the write that was acknowledged."""
        return max((b - a for a, b in zip(wts, wts[1:])), default=0.0)

    @staticmethod
    def wt_recovery(wts, t_end):
        """Seconds from t_end to the first row written after it (0 when every row was written before t_end)."""
        later = [w for w in wts if w > t_end]
        return (later[0] - t_end) if later else 0.0

    def longest_pause(self, complete):
        """Longest time the polled table count did not grow, between the first row and the last one (the harness's
        0.5 s samples: kept beside the exact figure to compare with the figures taken before it existed)."""
        best, t_last, hi = 0.0, None, 0
        for t, c in self.mon.samples:
            if c is None:
                continue
            if c > hi:
                if t_last is not None and hi > 0:
                    best = max(best, t - t_last)
                hi, t_last = c, t
            if hi >= complete:
                break
        return best

    def finish(self, alive, wait=300):
        expected = {m["id"]: m for a in self.apis for m in (e2e.format_data(r) for r in a.records())}
        for p in [p for p in alive if p.role == "ingest"]:
            # the ingest ends by itself once the source is exhausted: exit 0 wanted, then only the processor waits
            try:
                rc = p.wait(wait)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            check(rc == 0, f"ingest exited {rc}:\n{p.output()[-2500:]}")
        alive = [p for p in alive if p.role != "ingest"]
        ok = self.mon.wait_for(len(expected), wait, alive)
        dead = [p for p in alive if not p.alive()]
        check(not dead, "; ".join(f"{p.role} died (rc {p.p.returncode}):\n{p.output()[-2500:]}" for p in dead))
        check(ok, f"the table has {self.mon.last()} of {len(expected)} rows after {wait} s")
        for p in alive:
            os.kill(p.pid, signal.SIGTERM)
            try:
                rc = p.wait(90)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            check(rc == 0, f"{p.role} exited {rc} on SIGTERM:\n{p.output()[-2500:]}")
        self.mon.stop()
        rows = table_rows(self.ks)
        count = q(f"SELECT count(*) FROM {self.ks}.created_users")[0][0]
        self.row["in_table"] = count
        msgs = e2e.consume_all(self.topic, expect=len(expected))
        ids = collections.Counter(json.loads(v)["id"] for _k, v, _h, _p, _o in msgs)
        self.row["dups"] = len(msgs) - len(ids)
        dlq = e2e.consume_all(self.topic + ".dlq") if e2e.topic_count(self.topic + ".dlq") else []
        self.row["dlq"] = len(dlq)
        self.row["peak_rss_mib"] = round(max(p.peak_rss_kib for p in self.procs) / 1024, 1)
        self.row["bound_mib"] = max(faults.bound_mib(p.role) for p in self.procs)
        # The pause and recovery from the rows' own write times (exact to the microsecond); the polled figures
        # (0.5 s samples of count(*), which include the harness's own reads slowing down) beside them.
        wts = self.writetimes()
        self.row["longest_pause_s"] = round(self.wt_pause(wts), 2)
        self.row["longest_pause_polled_s"] = round(self.longest_pause(len(expected)), 1)
        rec = [self.mon.recovery(t, len(expected)) for t in self.events]
        check(None not in rec, "no progress after a fault ended")
        self.row["recovery_polled_s"] = round(max(rec), 1) if rec else None
        self.row["recovery_s"] = round(max(self.wt_recovery(wts, t) for t in self.events), 2) if self.events else None
        e2e.compare(expected, rows, f"{self.name}: table")
        check(count == len(expected), f"count(*) at ALL = {count}, expected {len(expected)}")
        check(not [i for i in expected if i not in ids], "records missing from the topic")
        check(not dlq, f"{len(dlq)} DLQ entries: {[e2e.headers_dict(h) for _k, _v, h, _p, _o in dlq[:3]]}")
        for p in self.procs:
            check(p.peak_rss_kib / 1024 <= faults.bound_mib(p.role),
                  f"{p.role} peak RSS {p.peak_rss_kib / 1024:.1f} MiB over {faults.bound_mib(p.role)} MiB")
        self.row["result"] = "pass"

    def close(self):
        for p in self.procs:
            try:
                p.ensure_dead()
            except Exception:
                pass
        if self.mon:
            self.mon.stop()
        for a in self.apis:
            a.close()
        e2e.delete_topics(self.topic, self.topic + ".dlq")
        try:
            q(f"DROP KEYSPACE IF EXISTS {self.ks}", cl="ONE", timeout=60)
        except Exception:
            pass
        if os.environ.get("SL_CLUSTER_KEEP") != "1":  # SL_CLUSTER_KEEP=1: keep configs and logs of passes too
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- scenarios -----------------------------------------------------------------------------------------------------

def sc_routing(a, r):
    """RF 1: who coordinated each write, from the nodes' own counters."""
    r.replication = "{'class': 'NetworkTopologyStrategy', 'dc1': 1}"
    # A write that times out on the client is retried on another host, which then coordinates it too: on a loaded
    # machine (2 cores shared) 4 s is not always enough, and this scenario is about routing, not timeouts.
    r.request_timeout = 30
    ing, proc = r.stream(30, "the count")
    r.finish([ing, proc])
    from cassandra.metadata import Murmur3Token  # noqa: F401 (ring from the driver's metadata)
    meta = session().cluster.metadata
    owned = collections.Counter()
    for row in q(f"SELECT token(id) FROM {r.ks}.created_users"):
        host = meta.token_map.get_replicas(r.ks, meta.token_map.token_class(row[0]))[0]
        owned[host.address] += 1
    lines = []
    for addr in NODES.values():
        coord, local = node_counts(addr, r.ks)
        lines.append(f"{addr}: coordinated {coord}, applied {local}, owns {owned[addr]}")
        check(owned[addr] > 0, f"{addr} owns no row: the ring is not what the test expects")
        # coordinated == applied: every write this node coordinated was applied here, i.e. it went to its owner.
        # A write retried after a client-side timeout is applied twice (an upsert), so applied may exceed owned.
        timeouts = sum(p.output().count("request timeout") for p in r.procs)
        check(coord == local, f"routing: {addr} coordinated {coord} writes but applied {local} (client-side request "
                              f"timeouts in the logs: {timeouts}; each retried write is coordinated by another host)")
        check(local >= owned[addr], f"routing: {addr} applied {local} writes but owns {owned[addr]} rows")
    total = sum(node_counts(x, r.ks)[1] for x in NODES.values())
    check(total - r.n <= r.n // 100, f"{total - r.n} writes applied twice (retries), more than 1%")
    lines.append(f"retried writes {total - r.n}")
    r.row["reason"] = "; ".join(lines)
    print("   ", "\n    ".join(lines), flush=True)


def sc_routing_dc2(a, r):
    """NTS {dc1: 3, dc2: 1} at LOCAL_QUORUM: dc2 gets every row as a replica and coordinates none."""
    r.replication = "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 1}"
    r.contact = "127.0.0.2, 127.0.0.3, 127.0.0.4, 127.0.0.5"  # dc2 among the contact points: it still must not coordinate
    r.request_timeout = 30  # as in routing: a client-side retry is applied twice, which blurs the counts
    ing, proc = r.stream(30, "the count")
    r.finish([ing, proc])
    time.sleep(2)
    coord, local = node_counts("127.0.0.5", r.ks)
    dc1 = [node_counts(a_, r.ks)[0] for a_ in NODES.values()]
    r.row["reason"] = f"dc2 coordinated {coord}, applied {local}; dc1 coordinated {dc1}"
    print("   ", r.row["reason"], flush=True)
    check(coord == 0, f"dc2 coordinated {coord} writes under LOCAL_QUORUM in dc1")
    # at least every row (a write retried after a client-side timeout is applied again, an upsert of the same values)
    check(local >= r.n, f"dc2 applied {local} writes, expected {r.n} (it is a replica of every row)")
    check(sum(dc1) >= r.n, f"dc1 coordinated {sum(dc1)} writes, expected {r.n}")


def sc_node_kill(a, r):
    down = 10 if a.short else 60
    ing, proc = r.stream(25 if a.short else 90, "the kill")
    svc("kill", "cassandra-2")
    time.sleep(down)
    svc("start", "cassandra-2")
    r.events.append(time.time())
    r.finish([ing, proc])


def sc_node_pause(a, r):
    hang = 20 if a.short else 60
    ing, proc = r.stream(30 if a.short else 90, "the pause")
    svc("pause", "cassandra-3")
    try:
        time.sleep(hang)
    finally:
        svc("resume", "cassandra-3")
    r.events.append(time.time())
    r.finish([ing, proc])
    check(r.row["longest_pause_s"] < 2 * REQUEST_TIMEOUT_S,
          f"the row stream stalled {r.row['longest_pause_s']} s with a node hung (bound 2 x {REQUEST_TIMEOUT_S} s)")


def sc_node_pause_spec(a, r):
    """node_pause with speculative execution on (cassandra.speculative_delay 500 ms): a write unanswered after
    500 ms goes to the next replica as well, so a hung node should cost the stream well under one request timeout."""
    r.cassandra_extra = "  speculative_delay: 500ms\n"
    sc_node_pause(a, r)
    out = "".join(p.output() for p in r.procs)
    spec = [l.split("sink ", 1)[1] for l in out.splitlines() if "speculative copies sent" in l]
    r.row["reason"] = f"request timeouts in the log: {out.count('request timeout')}; {'; '.join(spec)}"
    check(spec and " 0 answered first" not in spec[-1], f"no speculative copy answered first: {spec}")


def leader_of_partition0(topic, partition=0):
    out = subprocess.run(["kcat", "-b", BROKERS, "-L", "-t", topic], capture_output=True, text=True,
                         timeout=20).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(f"partition {partition},"):
            return int(line.split("leader ")[1].split(",")[0])
    raise Failed(f"no leader of {topic}/{partition} in\n{out}")


def sc_broker_kill(a, r):
    down = 10 if a.short else 60
    ing, proc = r.stream(25 if a.short else 90, "the kill")
    b = leader_of_partition0(r.topic)
    r.row["reason"] = f"killed kafka-{b} (leader of partition 0)"
    svc("kill", f"kafka-{b}")
    time.sleep(down)
    svc("start", f"kafka-{b}")
    r.events.append(time.time())
    r.finish([ing, proc])


def sc_broker_each(a, r):
    """The leader of partition 0, then of 1, then of 2 (as they are at that moment) killed -9 in turn, each started
    again (and the cluster whole) before the next."""
    down = 10 if a.short else 30
    ing, proc = r.stream(120 if a.short else 240, "the kills")
    killed = []
    for part in range(3):
        b = leader_of_partition0(r.topic, part)
        killed.append(f"kafka-{b} (leader of {part})")
        svc("kill", f"kafka-{b}")
        time.sleep(down)
        svc("start", f"kafka-{b}")
        r.events.append(time.time())
        check(proc.alive(), f"process died after the kill of kafka-{b}:\n{proc.output()[-2000:]}")
    r.row["reason"] = "killed " + ", ".join(killed)
    r.finish([ing, proc])


def sc_quorum_loss(a, r):
    """Two of the three dc1 nodes gone: LOCAL_QUORUM is impossible until one is back. The long form kills them -9
    and starts them again (a start takes ~50 s here); the short form hangs them (SIGSTOP) instead and resumes them,
    which is as much a lost quorum for the coordinator and costs no restart."""
    down = 15 if a.short else 60
    ing, proc = r.stream(30 if a.short else 90, "the loss")
    how = ("pause", "resume") if a.short else ("kill", "start")
    r.row["reason"] = f"cassandra-2 and cassandra-3: {how[0]}, {down} s, {how[1]}"
    try:
        svc(how[0], "cassandra-2")
        svc(how[0], "cassandra-3")
        time.sleep(down)
        check(proc.alive(), f"process died without a quorum:\n{proc.output()[-2000:]}")
    finally:
        svc(how[1], "cassandra-2")
    # the quorum is back with the first node: recovery is counted from there
    r.events.append(time.time())
    svc(how[1], "cassandra-3")
    r.finish([ing, proc])
    out = proc.output()
    check("kafka paused topic=" in out, "the processor never paused consumption (backpressure) while it had no quorum")


def sc_broker_pause(a, r):
    hang = 20 if a.short else 60
    ing, proc = r.stream(30 if a.short else 90, "the pause")
    b = leader_of_partition0(r.topic)
    r.row["reason"] = f"paused kafka-{b} (leader of partition 0)"
    svc("pause", f"kafka-{b}")
    try:
        time.sleep(hang)
    finally:
        svc("resume", f"kafka-{b}")
    r.events.append(time.time())
    r.finish([ing, proc])


def sc_rolling(a, r):
    """Each broker stopped and started in turn (the next once the cluster is whole again), then each node."""
    ing, proc = r.stream(150 if a.short else 240, "the rolling restart")
    for name in ["kafka-1", "kafka-2", "kafka-3", "cassandra-1", "cassandra-2", "cassandra-3"]:
        svc("stop", name)
        svc("start", name)
        r.events.append(time.time())
        check(proc.alive(), f"process died during the restart of {name}:\n{proc.output()[-2000:]}")
    r.finish([ing, proc])


def add_partitions(topic, total):
    from confluent_kafka.admin import AdminClient, NewPartitions
    admin = AdminClient({"bootstrap.servers": BROKERS})  # kept alive until the future resolves
    admin.create_partitions([NewPartitions(topic, total)])[topic].result(30)


def sc_group(a, r):
    """Three ingests (one source each, n/3 records) and three processors in one group; every 20 s one of the six is
    killed -9 and started again at once (processors and ingests in turn); the topic goes from 3 to 6 partitions
    after the first kill. The new partitions must be produced to and consumed without any restart for it: at the
    end the group's committed offsets on partitions 3-5 are non-zero and equal the high watermarks."""
    span = 60 if a.short else 180
    third = r.n // 3
    r.kafka_extra = faults.KAFKA_EXTRA  # a killed processor's partitions move after 6 s
    r.api.close()
    r.apis = [e2e.ApiServer(third if i < 2 else r.n - 2 * third, seed=e2e.uniq("clu")) for i in range(3)]
    cfgs = [r.config(span, api=r.apis[i], tag=str(i)) for i in range(3)]
    r.monitor()
    procs = {f"process{i}": r.start("process", cfgs[i]) for i in range(3)}
    procs.update({f"ingest{i}": r.start("ingest", cfgs[i]) for i in range(3)})
    check(r.mon.wait_for(r.n // 10, 90, [procs["process0"]]), f"no {r.n // 10} rows (count {r.mon.last()})")
    order = ["process0", "ingest0", "process1", "ingest1", "process2", "ingest2"]
    kills, grown, k = [], False, 0
    t_end = time.time() + span
    while time.time() < t_end and r.mon.last() < r.n:
        time.sleep(20)
        for _ in range(len(order)):  # the next one still running (an ingest may have finished its source)
            name = order[k % len(order)]
            k += 1
            if procs[name].alive():
                break
        else:
            break
        p = procs[name]
        p.kill9()
        i = int(name[-1])
        procs[name] = r.start(p.role, cfgs[i])
        r.events.append(time.time())
        kills.append(name)
        if not grown:
            add_partitions(r.topic, 6)
            grown = True
            kills.append("partitions 3->6")
    check(grown, "the stream ended before the first kill: nothing was tested (raise n or lower the span)")
    r.row["reason"] = "killed " + ", ".join(kills)
    alive = [p for n_, p in procs.items() if n_.startswith("process")] + \
            [p for n_, p in procs.items() if n_.startswith("ingest")]
    r.finish(alive)
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": e2e.uniq("clu_wm")})
    try:
        highs = {p: c.get_watermark_offsets(TopicPartition(r.topic, p), timeout=10)[1] for p in range(6)}
    finally:
        c.close()
    got = e2e.committed(r.group, r.topic, per_partition=True)
    r.row["reason"] += f"; high watermarks {highs}, committed {got}"
    print("   ", r.row["reason"], flush=True)
    check(all(highs[p] > 0 for p in (3, 4, 5)), f"nothing produced to the added partitions: {highs}")
    check(all(got.get(p, 0) == highs[p] for p in range(6)), f"committed {got} != high watermarks {highs}")


def sc_registry(a, r):
    """Two registries (`sluice registry --store kafka`) on the broker cluster share one `_schemas`-style topic (created
    by the registry at the brokers' default RF, 3 here) and elect a leader through their group; a client registers a
    new subject every ~0.2 s through each in turn while the broker leading the topic's partition 0 is killed -9 and
    started again. Every registration must succeed (retried while there is no leader: 50003/50004), every id be
    unique, and both registries serve every schema by id afterwards."""
    import threading
    import urllib.error
    import urllib.request
    hdr = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    topic, group = e2e.uniq("clu_schemas"), e2e.uniq("clu_reg")
    r.topic = topic  # close() deletes it
    nodes = []
    for i in range(2):
        with socket.socket() as so:
            so.bind(("127.0.0.1", 0))
            port = so.getsockname()[1]
        p = e2e.Proc(["registry", "--store", "kafka", "--brokers", BROKERS, "--topic", topic, "--group", group,
                      "--listen", f"127.0.0.1:{port}"], os.path.join(r.dir, f"registry{i}.log"))
        p.role, p.url = "registry", f"http://127.0.0.1:{port}"
        r.procs.append(p)
        nodes.append(p)

    def call(url, body=None, timeout=40):
        req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers=hdr, method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    for p in nodes:
        deadline = time.time() + 60
        while True:
            check(p.alive(), f"registry exited:\n{p.output()[-2000:]}")
            try:
                call(p.url + "/subjects", timeout=2)
                break
            except (OSError, ValueError):
                check(time.time() < deadline, "registry did not answer within 60 s")
                time.sleep(0.2)
    done, stop, errors = [], threading.Event(), []

    def client():
        i = 0
        while not stop.is_set() and i < 2000:
            node = nodes[i % 2]
            subj = f"s{i}"
            schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": "string"}]}
            t_start, deadline = time.time(), time.time() + 60
            while True:
                try:
                    st, body = call(f"{node.url}/subjects/{subj}/versions", {"schema": json.dumps(schema)})
                except (OSError, ValueError) as e:
                    st, body = 0, {"error_code": 0, "message": str(e)}
                if st == 200:
                    done.append((time.time(), subj, body["id"], json.dumps(schema), t_start))
                    break
                if body.get("error_code") not in (50001, 50003, 50004, 0) or time.time() > deadline:
                    errors.append(f"{subj} via {node.url}: {st} {body} after {time.time() - t_start:.1f} s")
                    return
                time.sleep(0.2)
            i += 1
            time.sleep(0.2)

    th = threading.Thread(target=client, daemon=True)
    th.start()
    t0 = time.time()
    while len(done) < 20 and time.time() - t0 < 60 and not errors:
        time.sleep(0.2)
    check(len(done) >= 20 and not errors, f"registrations before the fault: {len(done)}, {errors}")
    md = subprocess.run(["kcat", "-b", BROKERS, "-L", "-t", topic], capture_output=True, text=True, timeout=20).stdout
    reps = [l.split("replicas: ")[1].split(", isrs")[0].split(",") for l in md.splitlines() if "replicas: " in l]
    check(reps and all(len(x) == 3 for x in reps), f"the registry's topic is not at RF 3:\n{md}")
    b = leader_of_partition0(topic)
    r.row["reason"] = f"killed kafka-{b} (leader of {topic}/0)"
    t_kill = time.time()
    svc("kill", f"kafka-{b}")
    time.sleep(10 if a.short else 60)
    svc("start", f"kafka-{b}")
    r.events.append(time.time())
    time.sleep(10)
    stop.set()
    th.join(120)
    check(not errors, f"registrations failed: {errors[:3]}")
    ids = [d[2] for d in done]
    check(len(set(ids)) == len(ids), f"duplicate ids: {len(ids) - len(set(ids))}")
    after = [d for d in done if d[0] > t_kill]
    check(after, "no registration succeeded after the kill")
    times = [d[0] for d in done]  # from the first registration on (the first waits for the first election)
    gaps = [b_ - a_ for a_, b_ in zip(times, times[1:])]
    served = 0
    for p in nodes:
        check(p.alive(), f"registry died:\n{p.output()[-2000:]}")
        for _t, subj, sid, sch, _t0 in done:
            deadline = time.time() + 30
            while True:  # a follower may still be replaying the last records
                st, body = call(f"{p.url}/schemas/ids/{sid}", timeout=20)
                if st == 200 or time.time() > deadline:
                    break
                time.sleep(0.2)
            check(st == 200 and json.loads(body["schema"]) == json.loads(sch), f"{p.url} id {sid}: {st} {body}")
            served += 1
    for p in nodes:
        os.kill(p.pid, signal.SIGTERM)
        check(p.wait(60) == 0, f"registry exit on SIGTERM:\n{p.output()[-2000:]}")
    r.row.update({"sent": len(done), "in_table": served // 2, "dups": len(ids) - len(set(ids)), "dlq": 0,
                  "longest_pause_s": round(max(gaps), 1),
                  # the kill -> the first registration that started after it and succeeded
                  "recovery_s": round(min((d[0] for d in after if d[4] >= t_kill), default=t_kill) - t_kill, 1),
                  "peak_rss_mib": round(max(p.peak_rss_kib for p in nodes) / 1024, 1),
                  "bound_mib": faults.bound_mib("registry")})
    check(r.row["peak_rss_mib"] <= r.row["bound_mib"], f"registry peak RSS {r.row['peak_rss_mib']} MiB")
    r.row["result"] = "pass"


SCENARIOS = {"routing": sc_routing, "routing_dc2": sc_routing_dc2, "node_kill": sc_node_kill,
             "node_pause": sc_node_pause, "node_pause_spec": sc_node_pause_spec, "broker_kill": sc_broker_kill, "quorum_loss": sc_quorum_loss,
             "broker_pause": sc_broker_pause, "rolling": sc_rolling, "group": sc_group, "registry": sc_registry, "broker_each": sc_broker_each}
# The short form (tests/run-all, inside make test's budget: ~8 min with the cluster's start) runs routing, node_kill,
# node_pause, broker_kill and quorum_loss; `make faults-cluster` runs everything. Any scenario runs alone in its
# short form with --short --only NAME.
LONG_ONLY = ("broker_pause", "rolling", "broker_each", "group", "registry", "node_pause_spec")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", default=os.environ.get("SL_FAULTS_SHORT") == "1")
    ap.add_argument("--only", default="")
    ap.add_argument("--dc2", action="store_true", help="also the dc2 routing proof (run up cluster dc2)")
    a = ap.parse_args()
    names = [n for n in (a.only.split(",") if a.only else SCENARIOS) if n]
    if not a.only and not a.dc2:
        names.remove("routing_dc2")
    if not a.only and a.short:
        names = [x for x in names if x not in LONG_ONLY]
    n = 10000 if a.short else 50000
    rows = []
    for name in names:
        print(f"== {name}", flush=True)
        r = Run(name, n)
        t0 = time.time()
        try:
            SCENARIOS[name](a, r)
        except Exception as e:
            r.row["result"] = "FAIL"
            r.row["reason"] = (r.row["reason"] + " | " if r.row["reason"] else "") + f"{type(e).__name__}: {e}"[:3000]
            traceback.print_exc()
            print("   logs kept in", r.dir, flush=True)
            r.dir_keep = True
        r.row["seconds"] = round(time.time() - t0, 1)
        print("  ", json.dumps(r.row), flush=True)
        rows.append(r.row)
        if r.row["result"] == "pass":
            r.close()
        else:
            for p in r.procs:
                try:
                    p.ensure_dead()
                except Exception:
                    pass
            for api in r.apis:
                api.close()
        # leave the cluster whole for the next scenario
        subprocess.run([RUN, "up", "cluster"] + (["dc2"] if a.dc2 else []), capture_output=True, timeout=600)
    os.makedirs(OUT_DIR, exist_ok=True)
    cols = ["scenario", "sent", "in_table", "dups", "dlq", "longest_pause_s", "recovery_s", "longest_pause_polled_s",
            "recovery_polled_s", "peak_rss_mib",
            "bound_mib", "seconds", "result", "reason"]
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    with open(os.path.join(OUT_DIR, "cluster-report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(OUT_DIR, "cluster-report.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\n".join(md))
    return 0 if all(r["result"] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
