"""sluice against the stack it replaces: one harness, one contender at a time (bench/run calls this).

Prepares N randomuser-shaped records in a Kafka topic (sluice ingest, generate source), then for each repetition and
each contender drains the topic into spark_streams.created_users (table truncated first) and once more into a
discarding sink, measuring wall time, rows/s, CPU seconds (the process tree, from /proc), peak RSS (the tree's sum),
and the time to the first row in the table. Every Cassandra run is checked: row count, and a sample of rows compared
column by column with the records in the topic. Ceilings in the same run: bench/cql/run (the node's insert rate with
sluice's CQL client) and kcat's produce and consume rates. Writes results JSON, PNG plots (docs/img/bench-*.png) and
the peers section of docs/benchmarks.md. Benchmarks never fail on speed: a contender that fails is reported as such.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
C = os.path.join(ROOT, ".cache", "bench")
# bench/run copies build/sluice here: others rebuild build/ in the shared tree while the bench runs
SLUICE = os.path.join(C, "bin", "sluice") if os.path.exists(os.path.join(C, "bin", "sluice")) \
    else os.path.join(ROOT, "build", "sluice")
RPC = os.path.join(C, "bin", "rpconnect")
PY = sys.executable

N = int(os.environ.get("N", "1000000"))
REPS = int(os.environ.get("REPS", "3"))
CONTENDERS = os.environ.get("CONTENDERS", "sluice,spark,rpconnect").split(",")
SINKS = os.environ.get("SINKS", "cassandra,discard").split(",")
BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
CASS = os.environ.get("CASSANDRA_HOST", "127.0.0.1")
KS = os.environ.get("KEYSPACE", "spark_streams")
TABLE = os.environ.get("TABLE", "created_users")
TOPIC = os.environ.get("TOPIC", f"bench_users_created_{N}")
PARTITIONS = int(os.environ.get("PARTITIONS", "3"))
CEILINGS = os.environ.get("CEILINGS", "1") == "1"
LATENCY = os.environ.get("LATENCY", "1") == "1"
LAT_RATE = int(os.environ.get("LAT_RATE", "2000"))         # offered load of the latency runs, records/s
LAT_HALF = int(os.environ.get("LAT_HALF", "1"))            # also sluice at half its median drain rate into Cassandra
HALF_KEY = "sluice (half load)"
LAT_SECONDS = int(os.environ.get("LAT_SECONDS", "30"))
LAT_WARMUP = int(os.environ.get("LAT_WARMUP", "5"))       # seconds at the start of the latency stream not counted
TIMEOUT = int(os.environ.get("RUN_TIMEOUT", "1200"))      # per run
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
IMG = os.path.join(ROOT, "docs", "img")
RUN = os.path.join(C, "run")
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
COLS = ["id", "first_name", "last_name", "gender", "address", "post_code", "email", "username", "dob",
        "registered_date", "phone", "picture"]
MARK = "peers-bench"


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- services

def cql(stmt, check=True):
    r = subprocess.run([SLUICE, "--log-level", "warn", "cql", "-h", CASS, "-e", stmt], capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"cql {stmt[:60]}: {r.stderr.strip()}")
    return r


def wait_cassandra(limit=900):
    """Other engineers' fault tests stop and start the shared node: wait until it answers again."""
    t0 = time.time()
    while time.time() - t0 < limit:
        if cql("SELECT now() FROM system.local", check=False).returncode == 0:
            if time.time() - t0 > 1:
                log(f"cassandra answered after {time.time() - t0:.0f} s")
            return
        time.sleep(3)
    raise RuntimeError("cassandra did not answer")


_session = None


def session():
    global _session
    from cassandra.cluster import Cluster
    if _session is None or _session.is_shutdown:
        wait_cassandra()
        _session = Cluster([CASS], connect_timeout=10).connect()
        _session.default_timeout = 300
    return _session


def reset_session():
    global _session
    try:
        if _session is not None:
            _session.cluster.shutdown()
    except Exception:
        pass
    _session = None


def ensure_table():
    cql(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    cql(f"CREATE TABLE IF NOT EXISTS {KS}.{TABLE} (id uuid PRIMARY KEY, first_name text, last_name text, gender text, "
        "address text, post_code text, email text, username text, dob text, registered_date text, phone text, "
        "picture text)")


def truncate():
    for attempt in range(5):
        try:
            wait_cassandra()
            cql(f"TRUNCATE {KS}.{TABLE}")
            return
        except RuntimeError as e:
            log("truncate:", e)
            time.sleep(5)
    raise RuntimeError("truncate failed")


_admin = None


def admin():
    """One client for the whole run: a future outlives nothing that drops its client (it would never complete)."""
    global _admin
    from confluent_kafka.admin import AdminClient
    if _admin is None:
        _admin = AdminClient({"bootstrap.servers": BROKERS})
    return _admin


def watermarks(topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": "bench-wm"})
    md = c.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error is not None:
        c.close()
        return None
    out = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in md.partitions}
    c.close()
    return out


def committed(group, topic):
    from confluent_kafka import ConsumerGroupTopicPartitions
    try:
        fut = admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=5)
        r = list(fut.values())[0].result(timeout=10)
        return sum(max(tp.offset, 0) for tp in r.topic_partitions if tp.topic == topic)
    except Exception:
        return 0


def pipeline_yaml(topic, count, sink_type, group, data_dir, rate=0, page=1000):
    return f"""data_dir: {data_dir}
log_level: warn
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: {count}, page_size: {page}, rate: {rate} }}
    topic: {topic}
    partitions: {PARTITIONS}
    group: {group}
    key: id
    mapping:
      id:              {{ path: login.uuid, type: uuid }}
      first_name:      name.first
      last_name:       name.last
      gender:          gender
      address:         {{ template: "{{location.street.number}} {{location.street.name}}, {{location.city}}, {{location.state}}, {{location.country}}" }}
      post_code:       {{ path: location.postcode, type: text }}
      email:           email
      username:        login.username
      dob:             dob.date
      registered_date: registered.date
      phone:           phone
      picture:         picture.medium
    sink: {{ type: {sink_type}, keyspace: {KS}, table: {TABLE}, primary_key: [id] }}
kafka: {{ brokers: "{BROKERS}" }}
cassandra: {{ contact_points: [{CASS}] }}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def produce(topic, count, rate=0):
    """sluice ingest with the generate source; a fresh data_dir so the generator starts over. Paced (rate > 0), the
    records go out in pages of a hundredth of the rate (at least 10), about every 10 ms: a steady offered load, not
    bursts of a thousand records that any sink takes tens of milliseconds to write."""
    d = tempfile.mkdtemp(dir=RUN, prefix="ingest-")
    page = max(10, int(rate) // 100) if rate else 1000
    cfg = write(os.path.join(d, "ingest.yaml"),
                pipeline_yaml(topic, count, "discard", "unused", os.path.join(d, "data"), rate, page))
    t0 = time.time()
    r = subprocess.run([SLUICE, "--log-level", "warn", "ingest", "users", "-c", cfg, "--count", str(count)],
                       capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode:
        raise RuntimeError("sluice ingest failed: " + r.stderr[-500:])
    return dt


def prepare_topic():
    wm = watermarks(TOPIC)
    if wm and sum(h for _, h in wm.values()) == N and all(lo == 0 for lo, _ in wm.values()):
        log(f"topic {TOPIC} already holds {N} records")
        return None
    from confluent_kafka.admin import NewTopic
    a = admin()
    if wm is not None:
        a.delete_topics([TOPIC])[TOPIC].result(timeout=60)
        for _ in range(60):
            if watermarks(TOPIC) is None:
                break
            time.sleep(1)
    a.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(timeout=60)
    log(f"producing {N} records into {TOPIC}")
    dt = produce(TOPIC, N)
    got = sum(h for _, h in watermarks(TOPIC).values())
    if got != N:
        raise RuntimeError(f"topic {TOPIC} has {got} records, wanted {N}")
    log(f"produced {N} in {dt:.1f} s ({N / dt:.0f} rec/s)")
    return dt


def sample_records(k=25):
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", TOPIC, "-o", "beginning", "-c", str(k), "-e", "-q",
                        "-f", "%s\n"], capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------- measuring a process tree

class Tree(threading.Thread):
    """Samples a process tree every 0.1 s: CPU per pid (last seen), RSS summed over the tree (peak)."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.cpu, self.peak, self.stop_ev = root, {}, 0, threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            time.sleep(0.1)

    def sample(self):
        kids, stats = {}, {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    s = f.read()
                fs = s[s.rindex(")") + 2:].split()
                stats[int(p)] = (int(fs[1]), int(fs[11]) + int(fs[12]), int(fs[21]))
            except (OSError, ValueError):
                continue
        for pid, (ppid, _, _) in stats.items():
            kids.setdefault(ppid, []).append(pid)
        todo, rss = [self.root], 0
        while todo:
            pid = todo.pop()
            if pid in stats:
                _, ticks, pages = stats[pid]
                self.cpu[pid] = max(self.cpu.get(pid, 0), ticks / CLK)
                rss += pages * PAGE
            todo.extend(kids.get(pid, []))
        self.peak = max(self.peak, rss)


def run_contender(name, argv, env, done_check=None, first_row=False, cwd=ROOT):
    """Starts argv, watches it, returns the measures. done_check() -> True ends the run with SIGTERM."""
    logf = open(os.path.join(RUN, f"{name}.log"), "w")
    t0 = time.time()
    p = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=logf, text=True, cwd=cwd,
                         start_new_session=True)
    tree = Tree(p.pid)
    tree.start()
    out_lines = []
    reader = threading.Thread(target=lambda: out_lines.extend(p.stdout), daemon=True)
    reader.start()
    first = [None]

    def poll_first():
        s = session()
        q = f"SELECT id FROM {KS}.{TABLE} LIMIT 1"
        while p.poll() is None and first[0] is None:
            try:
                if s.execute(q, timeout=5).one() is not None:
                    first[0] = time.time() - t0
                    return
            except Exception:
                pass
            time.sleep(0.05)
    if first_row:
        threading.Thread(target=poll_first, daemon=True).start()
    t_done, status = None, "ok"
    while True:
        rc = p.poll()
        if rc is not None:
            t_done = time.time()
            if rc != 0:
                status = f"exit {rc}"
            break
        if done_check is not None and done_check():
            t_done = time.time()
            os.killpg(p.pid, signal.SIGTERM)
            break
        if time.time() - t0 > TIMEOUT:
            t_done = time.time()
            status = "timeout"
            os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    tree.sample()
    try:
        _, _, ru = os.wait4(p.pid, 0)
        root_cpu = ru.ru_utime + ru.ru_stime
    except ChildProcessError:
        root_cpu = tree.cpu.get(p.pid, 0)
    tree.stop_ev.set()
    reader.join(timeout=5)
    try:
        os.killpg(p.pid, signal.SIGKILL)        # leftovers of the tree (Spark's JVM)
    except ProcessLookupError:
        pass
    logf.close()
    cpu = root_cpu + sum(v for pid, v in tree.cpu.items() if pid != p.pid)
    return {"wall_s": t_done - t0, "cpu_s": cpu, "peak_rss_mb": tree.peak / 2**20, "first_row_s": first[0],
            "status": status, "stdout": out_lines}


# ---------------------------------------------------------------- the contenders

def drained_check(group):
    """A done_check for a contender that does not stop by itself: true once group committed N (asked at most every
    0.2 s)."""
    last = [0.0]

    def drained():
        if time.time() - last[0] < 0.2:
            return False
        last[0] = time.time()
        return committed(group, TOPIC) >= N
    return drained


def run_sluice(sink, tag):
    group = f"bench-sluice-{tag}-{uuid.uuid4().hex[:8]}"
    d = tempfile.mkdtemp(dir=RUN, prefix="sluice-")
    cfg = write(os.path.join(d, "sluice.yaml"),
                pipeline_yaml(TOPIC, N, "cassandra" if sink == "cassandra" else "discard", group, os.path.join(d, "data")))
    if tag == "lat":      # the topic starts empty: --drain would stop at once; stop once the group committed N
        r = run_contender("sluice", [SLUICE, "process", "users", "-c", cfg], {}, done_check=drained_check(group))
    else:
        r = run_contender("sluice", [SLUICE, "process", "users", "-c", cfg, "--drain"], {},
                          first_row=sink == "cassandra")
    with open(os.path.join(RUN, "sluice.log")) as f:
        m = re.findall(r"(\d+) consumed, (\d+) written", f.read())
    r["processed"] = int(m[-1][1]) if m else None
    return r


def run_spark(sink, tag):
    ck = tempfile.mkdtemp(dir=RUN, prefix="spark-ckpt-")
    env = {"SPARK_JARS_DIR": os.path.join(C, "spark-jars"), "TOPIC": TOPIC, "KAFKA_BOOTSTRAP": BROKERS,
           "CASSANDRA_HOST": CASS, "KEYSPACE": KS, "TABLE": TABLE, "CHECKPOINT": ck, "N": str(N),
           "SINK": "cassandra" if sink == "cassandra" else "noop", "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": PY}
    r = run_contender("spark", [PY, os.path.join(ROOT, "bench", "spark", "spark_stream.py")], env,
                      first_row=sink == "cassandra")
    total = None
    for line in r["stdout"]:
        if line.startswith("{"):
            ev = json.loads(line)
            if ev["event"] == "stopped":
                total = ev["total"]
    r["processed"] = total
    if total is not None and total < N and r["status"] == "ok":
        r["status"] = "query failed"
    return r


def run_rpconnect(sink, tag):
    group = f"bench-rpc-{tag}-{uuid.uuid4().hex[:8]}"
    env = {"TOPIC": TOPIC, "GROUP": group, "KAFKA_BROKERS": BROKERS, "CASSANDRA_HOST": CASS, "KEYSPACE": KS,
           "TABLE": TABLE}
    conf = os.path.join(ROOT, "bench", "rpconnect", "config.yaml" if sink == "cassandra" else "drop.yaml")
    r = run_contender("rpconnect", [RPC, "-c", conf], env, done_check=drained_check(group),
                      first_row=sink == "cassandra")
    r["processed"] = committed(group, TOPIC)
    return r


RUNNERS = {"sluice": run_sluice, "spark": run_spark, "rpconnect": run_rpconnect}


def check_table(sample):
    """Row count and the sample compared column by column."""
    s = session()
    # summed over token ranges: a whole-table count(*) of a million rows passes the server's range timeout here
    ranges, lo = 64, -(1 << 63)
    span, count = (1 << 64) // ranges, 0
    for i in range(ranges):
        a = lo + i * span
        b = (1 << 63) - 1 if i == ranges - 1 else a + span
        count += s.execute(f"SELECT count(*) FROM {KS}.{TABLE} WHERE token(id) {'>=' if i == 0 else '>'} {a} "
                           f"AND token(id) <= {b}", timeout=120).one()[0]
    bad = 0
    for rec in sample:
        row = s.execute(f"SELECT {', '.join(COLS)} FROM {KS}.{TABLE} WHERE id = %s", [uuid.UUID(rec["id"])]).one()
        if row is None or any((str(getattr(row, c)) if c == "id" else getattr(row, c)) != rec.get(c) for c in COLS):
            bad += 1
    return count, bad


# ---------------------------------------------------------------- ceilings

def ceiling_cql():
    r = subprocess.run([os.path.join(ROOT, "bench", "cql", "run"), os.environ.get("CQL_ROWS", "100000")],
                       capture_output=True, text=True, cwd=ROOT)
    for line in r.stdout.splitlines():
        if line.startswith("{") and '"sluice"' in line:
            return json.loads(line)
    log("bench/cql/run:", r.stderr[-300:])
    return None


def ceiling_kcat():
    """librdkafka's rates on this broker, through kcat: produce the topic's records again, consume the topic."""
    t0 = time.time()
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    consume = time.time() - t0
    lines = r.stdout.count(b"\n")
    scratch = f"bench_kcat_{uuid.uuid4().hex[:8]}"
    from confluent_kafka.admin import NewTopic
    a = admin()
    a.create_topics([NewTopic(scratch, PARTITIONS, 1)])[scratch].result(timeout=60)
    t0 = time.time()
    subprocess.run(["kcat", "-b", BROKERS, "-P", "-t", scratch, "-z", "lz4", "-X", "linger.ms=5"], input=r.stdout,
                   stderr=subprocess.DEVNULL)
    produce = time.time() - t0
    a.delete_topics([scratch])
    return {"consume_rps": lines / consume, "produce_rps": lines / produce, "records": lines}


# ---------------------------------------------------------------- latency at a fixed offered load

def latency(name, rate=None):
    """The contender runs on a fresh topic while sluice ingest offers rate (LAT_RATE) records/s for LAT_SECONDS;
    latency of a row = its Cassandra write time minus its Kafka timestamp (stamped at ingest)."""
    rate = rate or LAT_RATE
    topic = f"bench_lat_{name}_{uuid.uuid4().hex[:6]}"
    from confluent_kafka.admin import NewTopic
    admin().create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=60)
    count = rate * LAT_SECONDS
    truncate()
    global TOPIC, N
    saved = TOPIC, N
    TOPIC, N = topic, count
    holder = {}
    th = threading.Thread(target=lambda: holder.update(r=RUNNERS[name]("cassandra", "lat")), daemon=True)
    try:
        th.start()
        time.sleep(25 if name == "spark" else 5)     # let it start and subscribe
        produce(topic, count, rate=rate)
        th.join(timeout=TIMEOUT)
    finally:
        TOPIC, N = saved
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k %T\n"],
                       capture_output=True, text=True)
    stamp = {}
    for line in r.stdout.splitlines():
        k, t = line.split()
        stamp[k] = int(t)
    s = session()
    lat = []
    # the first LAT_WARMUP seconds of the stream are left out: they include the consumer group's join (the broker
    # holds a new group's first rebalance for group.initial.rebalance.delay.ms, 3 s by default)
    t_from = min(stamp.values()) + 1000 * LAT_WARMUP if stamp else 0
    for row in s.execute(f"SELECT id, writetime(first_name) FROM {KS}.{TABLE}", timeout=600):
        t = stamp.get(str(row[0]))
        if t is not None and t >= t_from and row[1] is not None:
            lat.append(row[1] / 1000.0 - t)
    admin().delete_topics([topic])
    if not lat:
        return None
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    return {"p50_ms": q(0.5), "p99_ms": q(0.99), "rows": len(lat), "rate": rate, "seconds": LAT_SECONDS,
            "cdf": [q(i / 100) for i in range(101)]}


def half_load(summary):
    """Half of sluice's median drain rate into Cassandra, rounded to 100 records/s (None without that run)."""
    x = summary.get("sluice/cassandra") or {}
    rps = x.get("rps")
    return int(round(rps / 2 / 100.0)) * 100 if rps else None


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def summarize(runs):
    out = {}
    for (name, sink), rs in runs.items():
        good = [r for r in rs if r["status"] == "ok"]
        use = good or rs
        rps = [N / r["wall_s"] for r in good]
        out[f"{name}/{sink}"] = {
            "name": name, "sink": sink, "reps": len(rs), "ok": len(good),
            "wall_s": med([r["wall_s"] for r in good]), "rps": med(rps), "rps_spread": spread(rps),
            "cpu_per_m": med([r["cpu_s"] * 1e6 / N for r in use]),
            "rss_mb": med([r["peak_rss_mb"] for r in use]),
            "first_row_s": med([r.get("first_row_s") for r in use]),
            "count": [r.get("count") for r in rs], "bad_sample": [r.get("bad_sample") for r in rs],
            "processed": [r.get("processed") for r in rs], "status": [r["status"] for r in rs]}
    return out


def fmt(x, d=0):
    return "—" if x is None else f"{x:,.{d}f}"


def ratio(a, b, inv=False):
    if a is None or b is None or a == 0 or b == 0:
        return "—"
    return f"×{(b / a) if inv else (a / b):.1f}"


def plots(summary, lat):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(IMG, exist_ok=True)
    names = [n for n in CONTENDERS]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    w = 0.38
    for i, sink in enumerate(SINKS):
        vals = [(summary.get(f"{n}/{sink}") or {}).get("rps") or 0 for n in names]
        errs = [[max(0, v - ((summary.get(f"{n}/{sink}") or {}).get("rps_spread") or (v, v))[0] or 0) for n, v in zip(names, vals)],
                [max(0, (((summary.get(f"{n}/{sink}") or {}).get("rps_spread") or (v, v))[1] or 0) - v) for n, v in zip(names, vals)]]
        xs = [j + (i - 0.5) * w for j in range(len(names))]
        ax.bar(xs, vals, w, yerr=errs, capsize=3, label="into Cassandra" if sink == "cassandra" else "discarding sink")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("records/s (median, min-max)")
    ax.set_title(f"Draining {N:,} records from Kafka (2 cores, shared with the node)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(IMG, "bench-throughput.png"), dpi=110)
    plt.close(fig)
    if lat:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for n, l in lat.items():
            if l:
                ax.plot(l["cdf"], [i / 100 for i in range(101)],
                        label=f"{n} at {l.get('rate', LAT_RATE):,}/s (p99 {l['p99_ms']:.0f} ms)")
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency, ms (Kafka timestamp at ingest -> Cassandra write time)")
        ax.set_ylabel("fraction of rows")
        ax.set_title(f"End-to-end latency, load offered for {LAT_SECONDS} s")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(IMG, "bench-latency.png"), dpi=110)
        plt.close(fig)


def versions():
    v = {}
    try:
        import pyspark
        v["pyspark"] = pyspark.__version__
    except Exception:
        pass
    jars = sorted(os.listdir(os.path.join(C, "spark-jars"))) if os.path.isdir(os.path.join(C, "spark-jars")) else []
    v["spark jars"] = ", ".join(j[:-4] for j in jars if j.startswith(("spark-sql-kafka", "spark-cassandra-connector_")))
    v["rpconnect"] = subprocess.run([RPC, "--version"], capture_output=True, text=True).stdout.split("\n")[0] \
        if os.path.exists(RPC) else "not built"
    v["sluice"] = subprocess.run([SLUICE, "--help"], capture_output=True, text=True).stdout.split(":")[0]
    v["java"] = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.split("\n")[0]
    v["kernel"] = os.uname().release
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
    v["cpu"] = f"{os.cpu_count()} × {m.group(1) if m else '?'}"
    v["memory"] = f"{os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB"
    return v


def report(summary, ceil, lat, meta):
    s = lambda n, k: summary.get(f"{n}/{k}") or {}
    L = [f"<!-- {MARK}:start -->", "## sluice against the stack it replaces (bench/run)", ""]
    L.append(f"{N:,} records (randomuser-shaped JSON, {PARTITIONS} partitions) drained from Kafka by one contender at "
             f"a time into `{KS}.{TABLE}` (truncated before each run) and once more into a discarding sink; "
             f"{REPS} repetitions, median (min–max). Generated {meta['date']} by `{meta['command']}` "
             f"in {meta['minutes']:.0f} min.")
    L.append("")
    L.append("| contender | sink | drain s | rows/s | rows/s min–max | CPU s per 1M | peak RSS MB | first row s | rows ok |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for sink in SINKS:
        for n in CONTENDERS:
            x = s(n, sink)
            if not x:
                continue
            lo, hi = x["rps_spread"]
            if sink == "cassandra":
                okrows = all(c == N for c in x["count"]) and all(b == 0 for b in x["bad_sample"])
                rows = "yes" if okrows else f"counts {x['count']}, bad sample rows {x['bad_sample']}"
            else:
                rows = "yes" if all(p is not None and p >= N for p in x["processed"]) else f"processed {x['processed']}"
            if x["ok"] < x["reps"]:
                rows += f" ({x['reps'] - x['ok']} of {x['reps']} runs failed: {', '.join(sorted(set(x['status']) - {'ok'}))})"
            L.append(f"| {n} | {'Cassandra' if sink == 'cassandra' else 'discard'} | {fmt(x['wall_s'], 1)} | "
                     f"{fmt(x['rps'])} | {fmt(lo)}–{fmt(hi)} | {fmt(x['cpu_per_m'], 1)} | {fmt(x['rss_mb'])} | "
                     f"{fmt(x['first_row_s'], 2)} | {rows} |")
    L.append("")
    L.append("Ratios, sluice against each peer (higher is better for sluice: throughput sluice/peer, CPU and RSS "
             "peer/sluice):")
    L.append("")
    L.append("| peer | sink | throughput | CPU per record | peak RSS | time to first row |")
    L.append("|---|---|---|---|---|---|")
    for sink in SINKS:
        b = s("sluice", sink)
        for n in CONTENDERS:
            if n == "sluice" or not s(n, sink) or not b:
                continue
            x = s(n, sink)
            L.append(f"| {n} | {'Cassandra' if sink == 'cassandra' else 'discard'} | {ratio(b.get('rps'), x.get('rps'))} | "
                     f"{ratio(x.get('cpu_per_m'), b.get('cpu_per_m'))} | {ratio(x.get('rss_mb'), b.get('rss_mb'))} | "
                     f"{ratio(x.get('first_row_s'), b.get('first_row_s'))} |")
    L.append("")
    L.append("Ceilings measured in the same run:")
    L.append("")
    if ceil.get("cql"):
        c = ceil["cql"]
        L.append(f"- the node's insert ceiling (bench/cql/run, sluice's CQL client, {c['rows']:,} prepared single-row "
                 f"inserts): **{c['rows_per_s']:,.0f} rows/s**")
    if ceil.get("kcat"):
        k = ceil["kcat"]
        L.append(f"- librdkafka through kcat on this broker: produce {k['produce_rps']:,.0f} records/s (lz4), "
                 f"consume {k['consume_rps']:,.0f} records/s ({k['records']:,} records)")
    if ceil.get("ingest_s"):
        L.append(f"- `sluice ingest` (generate source) filled the topic at {N / ceil['ingest_s']:,.0f} records/s")
    L.append("")
    if lat:
        L.append(f"End-to-end latency at a fixed offered load (records/s for {LAT_SECONDS} s by `sluice ingest`, in "
                 "pages of a hundredth of the rate, so about every 10 ms; "
                 "a row's latency is its Cassandra write time minus its Kafka timestamp; the first "
                 f"{LAT_WARMUP} s of the stream, with the consumer group's join, are not counted). Every contender at "
                 f"{LAT_RATE:,} records/s, a load the Spark job keeps up with; sluice also at half its own median "
                 "drain rate into Cassandra from the table above (the issue's \"half load\"):")
        L.append("")
        L.append("| contender | offered records/s | p50 ms | p99 ms | rows |")
        L.append("|---|---|---|---|---|")
        for n, l in lat.items():
            L.append(f"| {n} | {fmt(l['rate'])} | {fmt(l['p50_ms'])} | {fmt(l['p99_ms'])} | {fmt(l['rows'])} |" if l
                     else f"| {n} | — | — | — | no rows |")
        L.append("")
    L.append("![throughput](img/bench-throughput.png)")
    if lat:
        L.append("![latency](img/bench-latency.png)")
    L.append("")
    label = {"rpconnect": "Benthos (the Redpanda Connect peer)", "spark jars": "jars"}
    L.append("Machine and versions: " + "; ".join(
        f"{label.get(k, k)}: {str(v).replace('Version: ', '').removeprefix(k + ' ')}" for k, v in meta["versions"].items()) +
             ". Kafka 4.4 and Cassandra 5.0 (one node each, tests/services) on the same machine.")
    L.append("")
    L.append(f"<!-- {MARK}:notes -->")
    L.append(meta.get("notes", ""))
    L.append(f"<!-- {MARK}:end -->")
    return "\n".join(L)


def write_doc(section):
    text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    # hand-written notes between the notes marker and the end marker survive a regeneration
    m = re.search(rf"<!-- {MARK}:notes -->\n(.*?)<!-- {MARK}:end -->", text, re.S)
    if m:
        section = re.sub(rf"<!-- {MARK}:notes -->\n.*?<!-- {MARK}:end -->",
                         lambda _: f"<!-- {MARK}:notes -->\n{m.group(1)}<!-- {MARK}:end -->", section, flags=re.S)
    pat = re.compile(rf"<!-- {MARK}:start -->.*?<!-- {MARK}:end -->", re.S)
    text = pat.sub(lambda _: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    open(DOC, "w").write(text)


def main():
    t_start = time.time()
    os.makedirs(RUN, exist_ok=True)
    wait_cassandra()
    ensure_table()
    ceil = {"ingest_s": prepare_topic()}
    sample = sample_records()
    if CEILINGS:
        log("ceiling: kcat")
        ceil["kcat"] = ceiling_kcat()
        log("ceiling: bench/cql/run")
        wait_cassandra()
        ceil["cql"] = ceiling_cql()
        log("ceilings:", json.dumps(ceil))
    runs = {}
    for rep in range(REPS):
        for sink in SINKS:
            for name in CONTENDERS:
                if name == "rpconnect" and not os.path.exists(RPC):
                    continue
                for attempt in range(3):
                    if sink == "cassandra":
                        truncate()
                        reset_session()
                    log(f"rep {rep + 1}/{REPS}: {name} -> {sink}")
                    r = RUNNERS[name](sink, f"{sink}-{rep}")
                    r.pop("stdout", None)
                    if sink == "cassandra":
                        try:
                            wait_cassandra()
                            r["count"], r["bad_sample"] = check_table(sample)
                        except Exception as e:
                            r["count"], r["bad_sample"] = None, None
                            r["status"] = f"check failed: {e}"
                    log(f"  {name}/{sink}: {json.dumps(r)}")
                    # a run spoiled by the shared node going away (others' fault tests stop it) is run again
                    if r["status"] == "ok":
                        break
                    log("  the run failed; running it again")
                runs.setdefault((name, sink), []).append(r)
    lat = {}
    if LATENCY:
        for name in CONTENDERS:
            if name == "rpconnect" and not os.path.exists(RPC):
                continue
            log(f"latency: {name} at {LAT_RATE} rec/s")
            try:
                lat[name] = latency(name)
            except Exception as e:
                log("latency failed:", e)
                lat[name] = None
            log(f"  {json.dumps({k: v for k, v in (lat[name] or {}).items() if k != 'cdf'})}")
    summary = summarize(runs)
    half = half_load(summary)
    if LATENCY and LAT_HALF and half and "sluice" in CONTENDERS:
        log(f"latency: sluice at half its drain rate, {half} rec/s")
        try:
            lat[HALF_KEY] = latency("sluice", half)
        except Exception as e:
            log("latency failed:", e)
            lat[HALF_KEY] = None
    meta = {"date": time.strftime("%Y-%m-%d"), "minutes": (time.time() - t_start) / 60, "versions": versions(),
            "command": " ".join(f"{k}={os.environ[k]}" for k in ("N", "REPS", "CONTENDERS", "SINKS") if k in os.environ)
            + (" " if any(k in os.environ for k in ("N", "REPS", "CONTENDERS", "SINKS")) else "") + "bench/run"}
    res = {"n": N, "reps": REPS, "runs": {f"{k[0]}/{k[1]}": v for k, v in runs.items()}, "summary": summary,
           "ceilings": ceil, "latency": lat, "meta": meta}
    with open(os.path.join(C, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    plots(summary, lat)
    write_doc(report(summary, ceil, lat, meta))
    log(f"done in {(time.time() - t_start) / 60:.1f} min; results in .cache/bench/results.json, docs/benchmarks.md")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "latency":     # run the latency part again, merge, re-render
        os.makedirs(RUN, exist_ok=True)
        res = json.load(open(os.path.join(C, "results.json")))
        N, TOPIC = res["n"], os.environ.get("TOPIC", f"bench_users_created_{res['n']}")
        for name in CONTENDERS:
            log(f"latency: {name} at {LAT_RATE} rec/s")
            res["latency"][name] = latency(name)
            log(f"  {json.dumps({k: v for k, v in (res['latency'][name] or {}).items() if k != 'cdf'})}")
        half = half_load(res["summary"])
        if LAT_HALF and half and "sluice" in CONTENDERS:
            log(f"latency: sluice at half its drain rate, {half} rec/s")
            res["latency"][HALF_KEY] = latency("sluice", half)
            log(f"  {json.dumps({k: v for k, v in (res['latency'][HALF_KEY] or {}).items() if k != 'cdf'})}")
        json.dump(res, open(os.path.join(C, "results.json"), "w"), indent=1)
        plots(res["summary"], res["latency"])
        write_doc(report(res["summary"], res["ceilings"], res["latency"], res["meta"]))
    elif len(sys.argv) > 1 and sys.argv[1] == "report":      # re-render the doc from the last results
        res = json.load(open(os.path.join(C, "results.json")))
        plots(res["summary"], res["latency"])
        write_doc(report(res["summary"], res["ceilings"], res["latency"], res["meta"]))
    else:
        main()
