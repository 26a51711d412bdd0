"""Effectively-once aggregation on Kafka and Cassandra (tests/services): the processor is killed with SIGKILL ten
times while it aggregates; the final table equals a recomputation from the topic, record for record.

On Kafka the aggregate's state and the offsets it goes with are checkpointed locally (data_dir) after Cassandra has
the batch's rows and before the group's offset is committed (docs/processing.md): a kill between the two replays
the batch, whose rows are the same whole values again; a kill after the checkpoint must not count its records twice.
One processor at a time: several processors for one aggregate on Kafka are refused (the last test runs three under
a restart loop, one killed every 20 s). A reset of the group is honoured: the records are read again, and none is
counted twice.

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


def topic_records(topic):
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
        out.append(json.loads(m.value()))
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
    want = collections.defaultdict(lambda: [0, 0, 0])
    for r in recs:
        k = (r["address"].split(", ")[-1], r["gender"])
        want[k][0] += 1
        want[k][1] += r["age"]
        want[k][2] = max(want[k][2], r["age"])
    got = {(r.country, r.gender): [r.users, r.ages, r.oldest]
           for r in s.execute(f"SELECT country, gender, users, ages, oldest FROM {KS}.{table}")}
    assert got == dict(want)
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
    """After a reset of the group to the start, the processor reads the topic again: rows deleted from the
    per-record table come back, the aggregate (whose checkpoint holds every record already) counts none twice, also
    when the replay is killed half way, and --drain ends."""
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n, group = f"h19_rst_{tag}", f"rst_{tag}", 20000, f"h19-rst-{tag}"
    cfg = tmp_path / "k.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=group, ks=KS, table=table, n=n).replace(
        f"sink: {{ type: discard, keyspace: {KS}, table: users }}",
        f"sink: {{ keyspace: {KS}, table: {table}_users, primary_key: [id] }}").replace(
        "in_flight: 4", "in_flight: 1"))  # one batch of 10 at a time: a replay slow enough to be killed in
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfg)], check=True, capture_output=True, timeout=300)

    def drain():
        out = subprocess.run([SLUICE, "process", "users", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    drain()
    s = Cluster(["127.0.0.1"]).connect()
    recs = topic_records(topic)
    assert len(recs) == n
    want = collections.defaultdict(lambda: [0, 0, 0])
    for r in recs:
        k = (r["address"].split(", ")[-1], r["gender"])
        want[k][0] += 1
        want[k][1] += r["age"]
        want[k][2] = max(want[k][2], r["age"])

    def check():
        got = {(r.country, r.gender): [r.users, r.ages, r.oldest]
               for r in s.execute(f"SELECT country, gender, users, ages, oldest FROM {KS}.{table}")}
        assert got == dict(want)
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


def test_three_processors_one_killed_every_20s(tmp_path):
    """Three processors for one aggregate on Kafka, restarted when they exit (as a supervisor would), one killed
    with SIGKILL every 20 s. The state is local to one processor, so sluice lets one run and refuses the others with
    a clear error (docs/processing.md): no processor may write partial rows, so no group's count ever goes down in
    the table, and the final table equals a recomputation from the topic."""
    from cassandra.cluster import Cluster
    tag = f"{os.getpid()}_{int(time.time())}"
    topic, table, n, group = f"h19_three_{tag}", f"three_{tag}", 10000, f"h19-three-{tag}"
    cfg = tmp_path / "k.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=group, ks=KS, table=table, n=n).replace(
        "in_flight: 4", "in_flight: 1"))  # slow enough that the kills land while it aggregates
    subprocess.run([SLUICE, "ingest", "users", "-c", str(cfg)], check=True, capture_output=True, timeout=300)
    s = Cluster(["127.0.0.1"]).connect()
    # A live stream on top of the backlog, so the kills land while the processors aggregate.
    import uuid
    from confluent_kafka import Producer
    prod = Producer({"bootstrap.servers": "127.0.0.1:9092", "acks": "all"})
    rgen = random.Random(3)
    live_n = 0

    def produce(k):
        nonlocal live_n
        for _ in range(k):
            # The topic holds mapped records, as ingest writes them.
            r = {"id": str(uuid.UUID(int=rgen.getrandbits(128), version=4)), "gender": rgen.choice(["male", "female"]),
                 "address": "Town, " + rgen.choice(["Chile", "Iran", "Norway", "Peru"]), "age": rgen.randint(18, 90)}
            prod.produce(topic, json.dumps(r).encode(), key=r["id"].encode())
            live_n += 1
        prod.flush(30)

    def table_now():
        try:
            return {(r.country, r.gender): r.users for r in s.execute(f"SELECT country, gender, users FROM {KS}.{table}")}
        except Exception:
            return {}
    rnd = random.Random(7)
    procs, logs, kills, decreases, samples = [None, None, None], [], 0, [], []
    last = {}
    t0 = last_kill = time.time()
    try:
        while time.time() - t0 < 80:
            for i in range(3):
                if procs[i] is None or procs[i].poll() is not None:
                    path = tmp_path / f"p{i}_{len(logs)}.err"
                    logs.append(path)
                    procs[i] = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfg)],
                                                stdout=subprocess.DEVNULL, stderr=open(path, "w"))
            if time.time() - last_kill >= 20:
                # The oldest running processor is the likeliest owner of the partitions: kill it.
                live = [p for p in procs if p.poll() is None]
                if live:
                    min(live, key=lambda p: p.pid).send_signal(signal.SIGKILL)
                    kills += 1
                last_kill = time.time()
            produce(300)
            now = table_now()
            samples.append(sum(now.values()))
            for k, v in now.items():
                if v < last.get(k, 0):
                    decreases.append((k, last[k], v))
                last[k] = v
            time.sleep(0.5 + rnd.random())
    finally:
        for p in procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)
    assert kills >= 3
    assert not decreases, decreases[:10]
    refusals = [l for path in logs for l in open(path).read().splitlines()
                if "run one processor for this pipeline" in l.lower()]
    assert refusals, "no processor was refused"
    n += live_n
    # The table grew across the kills: the aggregation went on while they landed.
    assert samples[len(samples) // 4] < samples[len(samples) // 2] < samples[-1] < n, samples
    time.sleep(11)  # the killed members' sessions end
    out = subprocess.run([SLUICE, "process", "users", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    recs = topic_records(topic)
    assert len(recs) == n
    want = collections.defaultdict(lambda: [0, 0, 0])
    for r in recs:
        k = (r["address"].split(", ")[-1], r["gender"])
        want[k][0] += 1
        want[k][1] += r["age"]
        want[k][2] = max(want[k][2], r["age"])
    got = {(r.country, r.gender): [r.users, r.ages, r.oldest]
           for r in s.execute(f"SELECT country, gender, users, ages, oldest FROM {KS}.{table}")}
    assert got == dict(want)
    print(f"three processors, {kills} kills, {len(refusals)} refusals, e.g. {refusals[0][:300]}; "
          f"records in the table over time: {samples[::8]}")
    s.execute(f"DROP TABLE IF EXISTS {KS}.{table}")
