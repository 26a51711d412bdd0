"""Spark as the oracle for sluice's windowed aggregates, on the real Kafka and Cassandra (tests/services).

One topic of crafted events (event time in the record, out of order by less than the allowed lateness, so nothing is
late) is aggregated twice: by sluice's processor (hopping windows on event time, watermark, emit: final, into
oracle19.sluice_w) and by a PySpark Structured Streaming job with the same window, watermark, group key and measures
(tests/integration/spark_windows.py, append mode, into oracle19.spark_w). A last record far ahead in event time moves
both watermarks past every earlier window. Every final row of sluice's table must equal Spark's, and the two tables
must hold the same windows.

Needs the bench venv with pyspark and the connector jars (bench/spark/install): skipped with that reason without them.
Run: SLUICE=build/sluice /work/main/.cache/venv/bin/pytest -q tests/integration/test_spark_oracle.py
"""
import glob
import json
import os
import random
import subprocess
import time

try:  # not in the bench venv (bench/windows/vs_spark.py imports this module's job from there)
    import pytest
    # Both aggregate states: the changelog's watermark follows the slowest source partition through the progress
    # markers, the checkpoint's is one over the topic, as Spark's.
    _modes = pytest.mark.parametrize("mode", ["changelog", "checkpoint"])
except ImportError:
    def _modes(f):
        return f

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLUICE = os.path.abspath(os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice")))
BENCH_PY = os.path.join(ROOT, ".cache", "bench", "venv", "bin", "python")
JARS = os.path.join(ROOT, ".cache", "bench", "spark-jars", "*.jar")
KS = "oracle19"

CONFIG = """
kafka: {{ brokers: 127.0.0.1:9092 }}
cassandra: {{ contact_points: [127.0.0.1] }}
data_dir: {data_dir}
pipelines:
  events:
    source: {{ type: generate, count: 0 }}
    topic: {topic}
    partitions: 3
    key: id
    group: {group}
    aggregate_state: changelog  # the test runs checkpoint too (by replacing this line)
    mapping:
      id:      id
      country: country
      ts:      {{ path: ts, type: timestamp, required: true }}
      v:       {{ path: v, type: int }}
    sink: {{ keyspace: {ks}, table: events, primary_key: [id] }}
    outputs:
      sluice_w:
        aggregate:
          group_by: [country]
          window: {{ size: 1m, slide: 30s, time: ts, lateness: 10s }}
          measures: {{ n: "count()", total: "sum(v)", lo: "min(v)", hi: "max(v)", mean: "avg(v)" }}
          emit: final
        sink: {{ keyspace: {ks}, table: sluice_w, primary_key: [country, window_start] }}
"""


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def events(n, seed, step_ms=6000):
    """n events, step_ms/2 apart on average in event time, each up to 8 s behind the newest (lateness is 10 s),
    then one an hour ahead that closes every earlier window."""
    rnd = random.Random(seed)
    base = 1_765_000_000_000
    t, out = base, []
    for i in range(n):
        t += rnd.randrange(0, step_ms)
        out.append({"id": f"o{i}", "country": rnd.choice(["FR", "DE", "BR", "JP", "US"]),
                    "ts": iso(t - rnd.choice([0, 0, rnd.randrange(0, 8000)])), "v": rnd.randrange(-100, 1000)})
    out.append({"id": "closer", "country": "ZZ", "ts": iso(t + 3_600_000), "v": 0})
    return out


@_modes
def test_final_windows_equal_sparks(tmp_path, mode):
    import pytest  # here, so that bench/windows/vs_spark.py can import this module's job from the bench venv
    if not os.path.exists(BENCH_PY) or not glob.glob(JARS):
        pytest.skip("no Spark: run bench/spark/install (pyspark and the Kafka/Cassandra connector jars)")
    from cassandra.cluster import Cluster
    from confluent_kafka import Producer

    tag = f"{os.getpid()}_{int(time.time())}"
    topic = f"h19_oracle_{tag}"
    cfg = tmp_path / "oracle.yaml"
    cfg.write_text(CONFIG.format(data_dir=tmp_path / "var", topic=topic, group=f"h19-oracle-{tag}", ks=KS)
                   .replace("aggregate_state: changelog", f"aggregate_state: {mode}"))
    session = Cluster(["127.0.0.1"]).connect()
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    for t in ("sluice_w", "spark_w"):
        session.execute(f"DROP TABLE IF EXISTS {KS}.{t}")
    session.execute(f"CREATE TABLE {KS}.spark_w (country text, window_start timestamp, window_end timestamp, "
                    "n bigint, total bigint, lo int, hi int, mean double, PRIMARY KEY (country, window_start))")

    evs = events(3000, 19)
    p = Producer({"bootstrap.servers": "127.0.0.1:9092", "acks": "all"})
    # The topic first (3 partitions, like the pipeline's), by sluice itself: a short run ensures it.
    subprocess.run([SLUICE, "process", "events", "-c", str(cfg), "--for", "3s"], check=True, capture_output=True,
                   timeout=120)
    for e in evs:
        p.produce(topic, key=e["id"], value=json.dumps(e))
        p.poll(0)
    assert p.flush(60) == 0

    out = subprocess.run([SLUICE, "process", "events", "-c", str(cfg), "--drain"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    got = {}
    for r in session.execute(f"SELECT country, window_start, window_end, n, total, lo, hi, mean FROM {KS}.sluice_w"):
        got[(r.country, r.window_start)] = (r.window_end, r.n, r.total, r.lo, r.hi, r.mean)
    assert len(got) > 100, len(got)

    env = dict(os.environ, BOOTSTRAP="127.0.0.1:9092", TOPIC=topic, KEYSPACE=KS, TABLE="spark_w", EXPECT=str(len(got)),
               TIMEOUT="420", CHECKPOINT=str(tmp_path / "spark-ckpt"), JARS=JARS, WINDOW="1 minute",
               SLIDE="30 seconds", LATENESS="10 seconds")
    sp = subprocess.run([BENCH_PY, os.path.join(ROOT, "tests", "integration", "spark_windows.py")], env=env,
                        capture_output=True, text=True, timeout=600)
    assert sp.returncode == 0, sp.stderr[-3000:]
    want = {}
    for r in session.execute(f"SELECT country, window_start, window_end, n, total, lo, hi, mean FROM {KS}.spark_w"):
        want[(r.country, r.window_start)] = (r.window_end, r.n, r.total, r.lo, r.hi, r.mean)

    assert set(got) == set(want), sorted(set(got) ^ set(want))[:10]
    for k, w in want.items():
        g = got[k]
        assert g[:5] == w[:5] and abs(g[5] - w[5]) < 1e-9 * max(1.0, abs(w[5])), (k, g, w)
    # And the windows are the ones a recomputation from the events gives (Spark is not trusted blindly either).
    assert sum(v[1] for v in want.values()) == 2 * (len(evs) - 1)
