"""bench/windows/vs_spark.py: the windowed aggregation of tests/integration/test_spark_oracle.py over N events
(default 1,000,000) in one Kafka topic (3 partitions), by sluice's processor and by the PySpark Structured Streaming
job (tests/integration/spark_windows.py), each into its own Cassandra table: hopping windows of 1 minute every 30 s on
event time, a 10 s watermark, grouped by country, count/sum/min/max/avg, final rows (Spark's append mode). sluice's
own table of the raw records is a discarding sink, so both write only the aggregate.

Per contender: wall seconds from start until every final row is in Cassandra (sluice: its --drain run ends; Spark:
its table holds as many rows as sluice's, polled every second, then a 3 s settle, JVM start included), records/s
(N over that), CPU-seconds per 1M records and peak RSS of the whole process tree (sampled every 0.1 s: Spark's JVM
included). The two tables are compared after the runs (the oracle test's check, at this size). Then (LATENCY=1) the
delay from a window's close to its row: tumbling 10 s windows with 2 s lateness on a live stream (LAT_RATE records/s
for LAT_SECONDS, event time = send time), each contender alone on its own topic; per final row, Cassandra's write
time minus (window end + lateness).

Needs the services (tests/services) and the bench venv (bench/spark/install). Prints JSON; --doc writes the
<!-- windows-vs-spark --> section of docs/benchmarks.md.
Run: .cache/bench/venv/bin/python bench/windows/vs_spark.py [--doc]   (SLUICE=build/sluice, N=1000000,
AGG_STATE=checkpoint|changelog: where sluice keeps the aggregate's state, default checkpoint as in the figures of
docs/benchmarks.md; changelog is the scale-out mode, docs/processing.md)
"""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from bench import Tree  # noqa: E402  (the peers benchmark's process-tree sampler)
import test_spark_oracle as oracle  # noqa: E402  (the job's config and event shape)

SLUICE = os.path.abspath(os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice")))
N = int(os.environ.get("N", "1000000"))
KS = "winbench"
AGG_STATE = os.environ.get("AGG_STATE", "checkpoint")
PY = os.path.join(ROOT, ".cache", "bench", "venv", "bin", "python")


def measured(argv, env=None, timeout=1800):
    t0 = time.time()
    p = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    tree = Tree(p.pid)
    tree.start()
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    wall = time.time() - t0
    tree.sample()
    tree.stop_ev.set()
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({p.returncode}):\n{out[-3000:]}")
    return {"wall_s": round(wall, 1), "records_per_s": round(N / wall), "cpu_s_per_1m": round(
        sum(tree.cpu.values()) / N * 1e6, 1), "peak_rss_mib": round(tree.peak / 2**20, 1)}, out


RATE = int(os.environ.get("LAT_RATE", "2000"))    # records/s of the live phase
LAT_SECONDS = int(os.environ.get("LAT_SECONDS", "60"))


def produce_live(topic, seconds, rate):
    """Events stamped with the time they are sent, at a steady rate (in 10 ms steps)."""
    from confluent_kafka import Producer
    import random
    p = Producer({"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 5})
    rnd, i, t0 = random.Random(3), 0, time.time()
    while time.time() - t0 < seconds:
        due = int((time.time() - t0) * rate)
        while i < due:
            now = int(time.time() * 1000)
            e = {"id": f"l{i}", "country": rnd.choice(["FR", "DE", "BR", "JP", "US"]), "ts": oracle.iso(now),
                 "v": rnd.randrange(0, 1000)}
            p.produce(topic, key=e["id"], value=json.dumps(e))
            i += 1
        p.poll(0)
        time.sleep(0.01)
    p.flush(30)
    return i


def close_delays(session, t, lateness_ms):
    """Per final row: its write time minus the moment its window could close (window end + lateness), in ms;
    the first two windows (the first partial, the second a warm-up) and the last (partial) left out."""
    rows = sorted(session.execute(f"SELECT window_start, window_end, writetime(n) AS wt FROM {KS}.{t}"),
                  key=lambda r: r.window_start)
    starts = sorted({r.window_start for r in rows})
    keep = set(starts[2:-1])
    ds = sorted(r.wt / 1000.0 - (r.window_end.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
                                 + lateness_ms) for r in rows if r.window_start in keep)
    if not ds:
        return {"windows": 0}
    return {"rows": len(ds), "p50_ms": round(ds[len(ds) // 2]), "p95_ms": round(ds[int(len(ds) * 0.95)]),
            "max_ms": round(ds[-1])}


def live(session, work, tag):
    """The delay from a window's close to its row: tumbling 10 s windows, 2 s lateness, on a live stream (event
    time = send time) at RATE records/s for LAT_SECONDS; each contender alone on its own topic."""
    res = {}
    for t in ("sluice_live", "spark_live"):
        session.execute(f"DROP TABLE IF EXISTS {KS}.{t}")
    session.execute(f"CREATE TABLE {KS}.spark_live (country text, window_start timestamp, window_end timestamp, "
                    "n bigint, total bigint, lo int, hi int, mean double, PRIMARY KEY (country, window_start))")
    topic = f"bench_windows_live_{tag}"
    cfg = os.path.join(work, "live.yaml")
    text = oracle.CONFIG.format(data_dir=os.path.join(work, "live"), topic=topic, group=f"bench-l-{tag}", ks=KS).replace(
        "aggregate_state: changelog", f"aggregate_state: {AGG_STATE}")
    text = text.replace(f"sink: {{ keyspace: {KS}, table: events, primary_key: [id] }}",
                        "sink: { type: discard, keyspace: x, table: events }")
    text = text.replace("window: { size: 1m, slide: 30s, time: ts, lateness: 10s }",
                        "window: { size: 10s, time: ts, lateness: 2s }").replace("table: sluice_w", "table: sluice_live")
    open(cfg, "w").write(text)
    subprocess.run([SLUICE, "process", "events", "-c", cfg, "--for", "3s"], check=True, capture_output=True)
    p = subprocess.Popen([SLUICE, "process", "events", "-c", cfg], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(3)
    produce_live(topic, LAT_SECONDS, RATE)
    time.sleep(5)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    res["sluice"] = close_delays(session, "sluice_live", 2000)
    topic2 = topic + "_spark"
    env = dict(os.environ, BOOTSTRAP="127.0.0.1:9092", TOPIC=topic2, KEYSPACE=KS, TABLE="spark_live",
               EXPECT="1000000000", TIMEOUT=str(LAT_SECONDS + 60), CHECKPOINT=os.path.join(work, "spark-live"),
               JARS=os.path.join(ROOT, ".cache", "bench", "spark-jars", "*.jar"), WINDOW="10 seconds",
               SLIDE="10 seconds", LATENESS="2 seconds", SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=PY)
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
    admin.create_topics([NewTopic(topic2, 3, 1)])[topic2].result()
    sp = subprocess.Popen([PY, os.path.join(ROOT, "tests", "integration", "spark_windows.py")], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sp.stdout.readline()  # "running": the JVM is up and the query has run its first trigger
    produce_live(topic2, LAT_SECONDS, RATE)
    sp.wait(timeout=LAT_SECONDS + 200)
    res["spark"] = close_delays(session, "spark_live", 2000)
    res["rate"], res["seconds"] = RATE, LAT_SECONDS
    return res


def table(session, t):
    return {(r.country, r.window_start): (r.window_end, r.n, r.total, r.lo, r.hi, r.mean) for r in session.execute(
        f"SELECT country, window_start, window_end, n, total, lo, hi, mean FROM {KS}.{t}")}


def main():
    from cassandra.cluster import Cluster
    from confluent_kafka import Producer
    work = tempfile.mkdtemp(prefix="sluice-bench-vs-spark-")
    tag = f"{os.getpid()}_{int(time.time())}"
    topic = f"bench_windows_{tag}"
    cfg = os.path.join(work, "w.yaml")
    text = oracle.CONFIG.format(data_dir=os.path.join(work, "var"), topic=topic, group=f"bench-w-{tag}", ks=KS).replace(
        "aggregate_state: changelog", f"aggregate_state: {AGG_STATE}")
    # Only the aggregate goes to Cassandra, as in the Spark job: the raw records' table discards.
    text = text.replace(f"sink: {{ keyspace: {KS}, table: events, primary_key: [id] }}",
                        "sink: { type: discard, keyspace: x, table: events }")
    open(cfg, "w").write(text)
    s = Cluster(["127.0.0.1"]).connect()
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    for t in ("sluice_w", "spark_w"):
        s.execute(f"DROP TABLE IF EXISTS {KS}.{t}")
    s.execute(f"CREATE TABLE {KS}.spark_w (country text, window_start timestamp, window_end timestamp, "
              "n bigint, total bigint, lo int, hi int, mean double, PRIMARY KEY (country, window_start))")
    subprocess.run([SLUICE, "process", "events", "-c", cfg, "--for", "3s"], check=True, capture_output=True)
    p = Producer({"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 50, "batch.num.messages": 10000})
    t0 = time.time()
    for e in oracle.events(N, 42, step_ms=40):
        while True:
            try:
                p.produce(topic, key=e["id"], value=json.dumps(e))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0
    res = {"n": N, "aggregate_state": AGG_STATE, "produce_s": round(time.time() - t0, 1),
           "loadavg_at_start": round(os.getloadavg()[0], 1)}
    res["sluice"], out = measured([SLUICE, "process", "events", "-c", cfg, "--drain"])
    got = table(s, "sluice_w")
    res["rows"] = len(got)
    env = dict(BOOTSTRAP="127.0.0.1:9092", TOPIC=topic, KEYSPACE=KS, TABLE="spark_w", EXPECT=str(len(got)),
               TIMEOUT="1500", CHECKPOINT=os.path.join(work, "spark-ckpt"),
               JARS=os.path.join(ROOT, ".cache", "bench", "spark-jars", "*.jar"), WINDOW="1 minute",
               SLIDE="30 seconds", LATENESS="10 seconds", SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=PY)
    res["spark"], _ = measured([PY, os.path.join(ROOT, "tests", "integration", "spark_windows.py")], env)
    want = table(s, "spark_w")
    res["tables_equal"] = set(got) == set(want) and all(
        got[k][:5] == want[k][:5] and abs(got[k][5] - want[k][5]) < 1e-6 for k in want)
    res["x_records_per_s"] = round(res["sluice"]["records_per_s"] / res["spark"]["records_per_s"], 1)
    res["x_memory"] = round(res["spark"]["peak_rss_mib"] / res["sluice"]["peak_rss_mib"], 1)
    if os.environ.get("LATENCY", "1") == "1":
        res["close_to_row"] = live(s, work, tag)
    print(json.dumps(res, indent=2))
    if "--doc" in sys.argv:
        write_doc(res)


def write_doc(res):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    sl, sp = res["sluice"], res["spark"]
    lines = ["<!-- windows-vs-spark -->", "", "### Windowed aggregation: sluice against Spark Structured Streaming", "",
             f"`.cache/bench/venv/bin/python bench/windows/vs_spark.py --doc`: {res['n']:,} events in one Kafka topic "
             "(3 partitions), hopping windows of 1 minute every 30 s on event time, 10 s watermark, by country, "
             "count/sum/min/max/avg, final rows into Cassandra (the job of tests/integration/test_spark_oracle.py; "
             f"{res['rows']:,} rows), sluice with `aggregate_state: {res.get('aggregate_state', 'checkpoint')}`. Release build, Kafka and Cassandra on the same 2 cores, shared with other work (load "
             f"average {res.get('loadavg_at_start', '?')} when the runs began); one run each.", "",
             "| contender | wall s | records/s | CPU-s per 1M records | peak RSS (MiB) |", "|---|---|---|---|---|",
             f"| sluice | {sl['wall_s']} | {sl['records_per_s']:,} | {sl['cpu_s_per_1m']} | {sl['peak_rss_mib']} |",
             f"| spark (local[2]) | {sp['wall_s']} | {sp['records_per_s']:,} | {sp['cpu_s_per_1m']} | "
             f"{sp['peak_rss_mib']} |", "",
             f"sluice: x{res['x_records_per_s']} Spark's records/s at 1/{res['x_memory']} of its memory (the goal: "
             f"x10 at 1/20). Final tables equal: {'yes' if res['tables_equal'] else 'NO'}. Spark's time includes its "
             "JVM's start and a 3 s settle after its last row; sluice's its start and the drain's end."]
    lat = res.get("close_to_row")
    if lat:
        lines += ["", f"Delay from a window's close to its row in Cassandra: tumbling 10 s windows, 2 s lateness, a live "
                  f"stream of {lat['rate']:,} records/s for {lat['seconds']} s (event time = send time), each contender "
                  "alone (Spark's stream starts once its query has run a first trigger); per final row, its write time "
                  "minus (window end + lateness), the first two windows and the last left out:", "",
                  "| contender | rows | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
        for k in ("sluice", "spark"):
            d = lat[k]
            lines.append(f"| {k} | {d.get('rows', 0)} | {d.get('p50_ms', '—')} | {d.get('p95_ms', '—')} | "
                         f"{d.get('max_ms', '—')} |")
    lines.append("<!-- /windows-vs-spark -->")
    text = open(path).read()
    block = "\n".join(lines)
    if "<!-- windows-vs-spark -->" in text:
        text = re.sub(r"<!-- windows-vs-spark -->.*<!-- /windows-vs-spark -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
