"""Effectively-once aggregation on Kafka and Cassandra (tests/services): the processor is killed with SIGKILL ten
times while it aggregates; the final table equals a recomputation from the topic, record for record.

By default (aggregate_state: changelog, docs/processing.md) the processor repartitions the records by group key
through a topic, in Kafka transactions with the source offsets, and aggregates each repartition partition's state,
committed to a compacted changelog topic in a transaction with the repartition offsets after Cassandra has the
rows: several processors share one aggregate (three, one killed every 20 s; a second one joining and leaving while
final-mode windows are open), and a kill replays onto the committed state. With aggregate_state: checkpoint the
state is checkpointed locally (data_dir) and one processor runs, the others are refused. A reset of the group is
honoured in both: the records are read again, and none is counted twice.

Run: SLUICE=build/sluice /work/main/.cache/venv/bin/pytest -q tests/integration/test_aggregate_kafka.py
"""
import collections
import json
import os
import random
import signal
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLUICE = os.path.abspath(os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice")))
KS = "h19agg"

CONFIG = """
kafka: {{ brokers: 127.0.0.1:9092 }}
cassandra: {{ contact_points: [127.0.0.1] }}
data_dir: {data_dir}
pipelines:
  users:
    source: {{ type: generate, seed: 11, count: {n}, page_size: 500 }}
    topic: {topic}
    partitions: 3
    key: id
    group: {group}
    batch: {{ max_records: 10, in_flight: 4 }}
    mapping:
      id:      {{ path: login.uuid, type: uuid }}
      gender:  gender
      address: {{ template: "{{location.city}}, {{location.country}}" }}
      age:     {{ path: dob.age, type: int }}
    compute:
      country: "split(address, ', ', -1)"
    sink: {{ type: discard, keyspace: {ks}, table: users }}
    outputs:
      per_country:
        aggregate:
          group_by: [country, gender]
          measures: {{ users: "count()", ages: "sum(age)", oldest: "max(age)" }}
        sink: {{ keyspace: {ks}, table: {table}, primary_key: [country, gender] }}
"""


def topic_records(topic, with_ts=False):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": f"h19-read-{os.getpid()}",
                  "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, seen = [], {p: 0 for p in parts}
    deadline = time.time() + 120
    while any(seen[p] < ends[p] for p in parts) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        seen[m.partition()] = m.offset() + 1
        out.append((json.loads(m.value()), m.timestamp()[1]) if with_ts else json.loads(m.value()))
    c.close()
    return out


def test_kill9_ten_times_during_an_aggregation_on_kafka(tmp_path):
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n = f"h19_agg_{tag}", f"per_country_{tag}", 100000
    cfg = tmp_path / "k.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=f"h19-agg-{tag}", ks=KS, table=table,
                                 n=n))
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfg)], check=True, capture_output=True, timeout=300)
    s = Cluster(["127.0.0.1"]).connect()

    def total():
        try:
            return sum(r.users for r in s.execute(f"SELECT users FROM {KS}.{table}"))
        except Exception:
            return 0
    rnd = random.Random(5)
    kills, progress = 0, []
    last = 0
    for i in range(10):
        p = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # The killed member holds its partitions until its session times out (10 s): then this one gets them. It is
        # killed soon after the table shows that it aggregates (however fast this machine runs it), so that every
        # kill lands while the aggregation goes on.
        deadline = time.time() + 90
        while total() <= last and p.poll() is None:
            assert time.time() < deadline, f"run {i + 1}: no progress in 90 s beyond {last} records"
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 0.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=30)
        last = total()
        progress.append(last)
    assert kills == 10
    mid = [x for x in progress if 0 < x < n]
    assert len(set(mid)) >= 3, progress  # kills landed at three points at least while the aggregation went on
    out = subprocess.run([SLUICE, "process", "users", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    recs = topic_records(topic)
    assert len(recs) == n
    assert table_of(s, table) == want_of(recs)
    print(f"kill -9 x{kills} on Kafka: records aggregated after each kill: {progress}")


def reset_group(group, topic, to=0):
    """kafka-consumer-groups --reset-offsets --to-offset: the group's committed offsets, set by a client that is
    not a member (the console's reset action does the same through the admin API)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": group, "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.commit(offsets=[TopicPartition(topic, p, to) for p in parts], asynchronous=False)
    c.close()


def test_group_reset_is_honoured_on_kafka(tmp_path):
    """aggregate_state: checkpoint. After a reset of the group to the start, the processor reads the topic again:
    rows deleted from the per-record table come back, the aggregate (whose checkpoint holds every record already)
    counts none twice, also when the replay is killed half way, and --drain ends."""
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n, group = f"h19_rst_{tag}", f"rst_{tag}", 20000, f"h19-rst-{tag}"
    cfg = tmp_path / "k.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=group, ks=KS, table=table, n=n).replace(
        f"sink: {{ type: discard, keyspace: {KS}, table: users }}",
        f"sink: {{ keyspace: {KS}, table: {table}_users, primary_key: [id] }}").replace(
        "in_flight: 4", "in_flight: 1").replace(  # one batch of 10 at a time: a replay slow enough to be killed in
        f"group: {group}", f"group: {group}\n    aggregate_state: checkpoint"))
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfg)], check=True, capture_output=True, timeout=300)

    def drain():
        out = subprocess.run([SLUICE, "process", "users", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    drain()
    s = Cluster(["127.0.0.1"]).connect()
    recs = topic_records(topic)
    assert len(recs) == n
    want = want_of(recs)

    def check():
        assert table_of(s, table) == want
        ids = [r.id for r in s.execute(f"SELECT id FROM {KS}.{table}_users")]
        assert len(ids) == n
        return ids
    ids = check()
    for i in ids[::3]:
        s.execute(f"DELETE FROM {KS}.{table}_users WHERE id = %s", (i,))
    assert len(list(s.execute(f"SELECT id FROM {KS}.{table}_users"))) == n - len(ids[::3])

    reset_group(group, topic, 0)
    drain()
    check()

    # A replay killed half way (its checkpoint is written while it goes), then drained: still none twice.
    reset_group(group, topic, 0)
    p = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": group, "enable.auto.commit": False})
    deadline, mid = time.time() + 60, 0
    while time.time() < deadline and mid < n // 10:
        mid = sum(max(t.offset, 0) for t in c.committed([TopicPartition(topic, i) for i in range(3)], timeout=10))
    c.close()
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(10.5)  # the killed member's session times out, so the next one gets the partitions at once
    drain()
    check()
    assert n // 10 <= mid < n, mid  # the kill landed during the replay
    print(f"replay killed with the group at {mid} of {n}")

    # A processor whose data_dir holds no state for what the group committed (another host, say) is refused:
    # it would overwrite the rows with counts of the new records alone.
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace(str(tmp_path / "var"), str(tmp_path / "elsewhere")))
    out = subprocess.run([SLUICE, "process", "users", "-c", str(other), "--drain"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0 and "aggregated by another processor (another data_dir)" in out.stderr, out.stderr
    check()
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}_users")


def want_of(recs):
    want = collections.defaultdict(lambda: [0, 0, 0])
    for r in recs:
        k = (r["address"].split(", ")[-1], r["gender"])
        want[k][0] += 1
        want[k][1] += r["age"]
        want[k][2] = max(want[k][2], r["age"])
    return dict(want)


def table_of(s, table):
    return {(r.country, r.gender): [r.users, r.ages, r.oldest]
            for r in s.execute(f"SELECT country, gender, users, ages, oldest FROM {KS}.{table}")}


class LiveStream:
    """Mapped records (as ingest writes them) produced straight to the topic, with a random group."""

    def __init__(self, topic, seed):
        from confluent_kafka import Producer
        self.topic, self.n = topic, 0
        self.prod = Producer({"bootstrap.servers": "127.0.0.1:9092", "acks": "all"})
        self.rgen = random.Random(seed)

    def produce(self, k, countries=("Chile", "Iran", "Norway", "Peru", "Fiji", "Oman"), ts_ms=None):
        import uuid
        for _ in range(k):
            r = {"id": str(uuid.UUID(int=self.rgen.getrandbits(128), version=4)),
                 "gender": self.rgen.choice(["male", "female"]),
                 "address": "Town, " + self.rgen.choice(countries), "age": self.rgen.randint(18, 90)}
            kw = {"timestamp": ts_ms} if ts_ms else {}
            self.prod.produce(self.topic, json.dumps(r).encode(), key=r["id"].encode(), **kw)
            self.n += 1
        self.prod.flush(30)


def test_reset_and_another_data_dir_with_the_changelog(tmp_path):
    """aggregate_state: changelog (the default). A reset of the group reads the topic again and counts nothing
    twice (each state partition keeps the source offsets it counted); a processor with another data_dir (another
    host) takes over with the state from the changelog topic, not refused."""
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n, group = f"h19_clr_{tag}", f"clr_{tag}", 5000, f"h19-clr-{tag}"
    cfg = tmp_path / "k.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=group, ks=KS, table=table, n=n))
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfg)], check=True, capture_output=True, timeout=300)

    def drain(c):
        out = subprocess.run([SLUICE, "process", "users", "-c", str(c), "--drain"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stderr
    drain(cfg)
    s = Cluster(["127.0.0.1"]).connect()
    want = want_of(topic_records(topic))
    assert table_of(s, table) == want
    reset_group(group, topic, 0)
    drain(cfg)
    assert table_of(s, table) == want
    # Another data_dir: more records, aggregated onto the state restored from the changelog.
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace(str(tmp_path / "var"), str(tmp_path / "elsewhere")))
    LiveStream(topic, 9).produce(500)
    err = drain(other)
    assert "state restored from" in err and "(0 open, 0 records counted)" not in err, err[-3000:]
    assert table_of(s, table) == want_of(topic_records(topic))
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")


def test_three_processors_one_killed_every_20s(tmp_path):
    """Three processors (each its own data_dir, as on three hosts) share one aggregate on Kafka: the group gives
    each some partitions of the topic and of the repartition topic. They are restarted when they exit (as a
    supervisor would), one is killed with SIGKILL every 20 s while a live stream is produced, and the final table
    equals a recomputation from the topic."""
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n, group = f"h19_three_{tag}", f"three_{tag}", 3000, f"h19-three-{tag}"
    cfgs = []
    for i in range(3):
        cfg = tmp_path / f"k{i}.yaml"
        cfg.write_text(CONFIG.format(data_dir=tmp_path / f"var{i}", topic=topic, group=group, ks=KS, table=table,
                                     n=n))
        cfgs.append(cfg)
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfgs[0])], check=True, capture_output=True, timeout=300)
    s = Cluster(["127.0.0.1"]).connect()
    live = LiveStream(topic, 3)

    def total():
        try:
            return sum(r.users for r in s.execute(f"SELECT users FROM {KS}.{table}"))
        except Exception:
            return 0
    rnd = random.Random(7)
    procs, logs, kills, samples = [None, None, None], {0: [], 1: [], 2: []}, 0, []
    t0 = last_kill = time.time()
    try:
        while time.time() - t0 < 70:
            for i in range(3):
                if procs[i] is None or procs[i].poll() is not None:
                    path = tmp_path / f"p{i}_{len(logs[i])}.err"
                    logs[i].append(path)
                    procs[i] = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfgs[i])],
                                                stdout=subprocess.DEVNULL, stderr=open(path, "w"))
            if time.time() - last_kill >= 20:
                victim = rnd.randrange(3)
                if procs[victim].poll() is None:
                    procs[victim].send_signal(signal.SIGKILL)
                    kills += 1
                last_kill = time.time()
            live.produce(100)
            samples.append(total())
            time.sleep(0.5 + rnd.random())
    finally:
        for p in procs:  # the survivors leave the group (the drain below need not wait out their sessions)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            if p:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGKILL)
                    p.wait(timeout=30)
    assert kills >= 3
    # Each processor got a share: partitions of the topic (the repartitioning stage) and of the repartition topic
    # (the aggregating stage).
    for i in range(3):
        text = "".join(open(path).read() for path in logs[i])
        assert f"assigned topic={topic} partitions=" in text, text[-2000:]
        assert "state restored from" in text, text[-2000:]
        assert "aggregate stage stopped" not in text, text[-2000:]
    n += live.n
    assert samples[len(samples) // 4] < samples[len(samples) // 2] < samples[-1] <= n, samples
    time.sleep(max(0.0, last_kill + 11 - time.time()))  # the last killed member's session ends
    out = subprocess.run([SLUICE, "process", "users", "-c", str(cfgs[0]), "--drain"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    recs = topic_records(topic)
    assert len(recs) == n
    assert table_of(s, table) == want_of(recs)
    print(f"three processors, {kills} kills; records in the table over time: {samples[::8]}")
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")


WINDOWED = CONFIG.replace("""      per_country:
        aggregate:
          group_by: [country, gender]
          measures: {{ users: "count()", ages: "sum(age)", oldest: "max(age)" }}
        sink: {{ keyspace: {ks}, table: {table}, primary_key: [country, gender] }}""", """      per_window:
        aggregate:
          group_by: [country]
          window: {{ size: 5s, time: arrival, lateness: 15s }}
          measures: {{ signups: "count()" }}
          emit: final
        sink: {{ keyspace: {ks}, table: {table}, primary_key: [country, window_start] }}""")


def test_rebalance_while_final_windows_are_open(tmp_path):
    """A second processor joins while final-mode windows are open, and leaves again: the state of the partitions
    that move goes with them (restored from the changelog with its open windows), and every window's one final row
    equals a recomputation from the topic: none missing, none doubled."""
    import datetime
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, group = f"h19_rb_{tag}", f"rb_{tag}", f"h19-rb-{tag}"
    cfgs = []
    for i in range(2):
        cfg = tmp_path / f"k{i}.yaml"
        cfg.write_text(WINDOWED.format(data_dir=tmp_path / f"var{i}", topic=topic, group=group, ks=KS, table=table,
                                       n=0).replace("count: 0, ", "count: 1, "))
        cfgs.append(cfg)
    # The topic exists before the stream starts: the first processor creates it.
    live = LiveStream(topic, 5)
    a_log, b_log = tmp_path / "a.err", tmp_path / "b.err"
    a = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfgs[0])], stdout=subprocess.DEVNULL,
                         stderr=open(a_log, "w"))
    b = None
    t0 = time.time()
    try:
        while time.time() - t0 < 36:
            el = time.time() - t0
            if b is None and el > 10:
                b = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfgs[1])], stdout=subprocess.DEVNULL,
                                     stderr=open(b_log, "w"))
            if b is not None and b.poll() is None and el > 24:
                b.send_signal(signal.SIGTERM)  # leaves the group: its partitions go back to the first one
                b.wait(timeout=60)
            if el > 3:  # the first processor made the topic
                live.produce(40, ts_ms=int(time.time() * 1000))
            time.sleep(0.2)
        # Every window closes once the clock passes its end by the lateness; then its row is written.
        time.sleep(5 + 15 + 8)
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
    a_text, b_text = open(a_log).read(), open(b_log).read()
    assert "aggregate stage stopped" not in a_text + b_text, (a_text + b_text)[-3000:]
    # The partitions moved with open windows in their state: restored on the second processor when it joined, and
    # on the first when it left.
    import re
    opened = [int(x) for x in re.findall(r"state restored from \d+ changelog entries \((\d+) open", b_text)]
    assert opened and max(opened) > 0, b_text[-3000:]
    back = [int(x) for x in re.findall(r"state restored from \d+ changelog entries \((\d+) open", a_text)]
    assert back and max(back) > 0, a_text[-3000:]
    want = collections.Counter()
    for r, ts in topic_records(topic, with_ts=True):
        want[(r["address"].split(", ")[-1], ts // 5000 * 5000)] += 1
    s = Cluster(["127.0.0.1"]).connect()
    got = {}
    for r in s.execute(f"SELECT country, window_start, signups FROM {KS}.{table}"):
        ws = int(r.window_start.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        got[(r.country, ws)] = r.signups
    assert live.n > 1000
    assert got == dict(want), (len(got), len(want), sorted(set(want.items()) ^ set(got.items()))[:10])
    print(f"rebalance: {live.n} records, {len(got)} windows; open windows moved: {opened} (join), {back} (leave)")
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")


def test_backlog_drained_in_changelog_mode_counts_every_record(tmp_path):
    """aggregate_state: changelog on a BACKLOG: every event is produced first across 3 partitions, then one drain.
    The first stage reads the partitions at their own pace, so without watermark propagation a state partition's
    watermark ran ahead with one source partition and the others' records were late (a third counted). With the
    progress markers the watermark is the slowest source partition's: the final rows equal a recomputation from
    the events (whose disorder, 8 s, is within the lateness, 10 s), and nothing is late (the dead-letter topic is
    empty)."""
    import datetime
    from cassandra.cluster import Cluster
    from confluent_kafka import Consumer, Producer, TopicPartition
    import test_spark_oracle as oracle
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table = f"h19_backlog_{tag}", f"backlog_{tag}"
    cfg = tmp_path / "b.yaml"
    text = oracle.CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=f"h19-backlog-{tag}", ks=KS)
    text = text.replace(f"sink: {{ keyspace: {KS}, table: events, primary_key: [id] }}",
                        f"sink: {{ type: discard, keyspace: {KS}, table: events }}")
    text = text.replace("table: sluice_w", f"table: {table}")
    assert "aggregate_state: changelog" in text and f"table: {table}" in text and "type: discard" in text
    cfg.write_text(text)
    s = Cluster(["127.0.0.1"]).connect()
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    subprocess.run([SLUICE, "process", "events", "-c", str(cfg), "--for", "3s"], check=True, capture_output=True,
                   timeout=120)
    evs = oracle.events(30000, 7, step_ms=40)
    p = Producer({"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 50})
    for e in evs:
        while True:
            try:
                p.produce(topic, key=e["id"], value=json.dumps(e))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0
    out = subprocess.run([SLUICE, "process", "events", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]

    def ms(iso):
        return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
                   .replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    # The recomputation: hopping 1m/30s windows; the final watermark is the newest event time - 10 s, and a
    # final row exists for each window whose end it passed.
    times = [ms(e["ts"]) for e in evs]
    wm = max(times) - 10_000
    want = collections.defaultdict(lambda: [0, 0])
    for e, t in zip(evs, times):
        start = t // 30_000 * 30_000
        while start > t - 60_000:
            if start + 60_000 <= wm:
                want[(e["country"], start)][0] += 1
                want[(e["country"], start)][1] += e["v"]
            start -= 30_000
    got = {}
    for r in s.execute(f"SELECT country, window_start, n, total FROM {KS}.{table}"):
        ws = int(r.window_start.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        got[(r.country, ws)] = [r.n, r.total]
    assert len(want) > 100
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not bad, [(k, want.get(k), got.get(k)) for k in bad[:10]]
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": f"h19-dlq-{tag}"})
    lo, hi = c.get_watermark_offsets(TopicPartition(f"{topic}.dlq", 0), timeout=10)
    c.close()
    assert hi - lo == 0, f"{hi - lo} dead letters (late records?)"
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")
