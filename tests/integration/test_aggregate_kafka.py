"""Effectively-once aggregation on Kafka and Cassandra (tests/services): the processor is killed with SIGKILL ten
times while it aggregates; the final table equals a recomputation from the topic, record for record.

On Kafka the aggregate's state and the offsets it goes with are checkpointed locally (data_dir) after Cassandra has
the batch's rows and before the group's offset is committed (docs/processing.md): a kill between the two replays
the batch, whose rows are the same whole values again; a kill after the checkpoint must not count its records twice.
One processor at a time (several processors for one aggregate on Kafka are not supported yet).

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
