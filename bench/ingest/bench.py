"""bench/ingest: `generate` records to Kafka, three ways, on the same broker in the same run:
  sluice ingest (generate source -> mapping -> idempotent producer),
  the seed's loop in Python (seed_producer.py: format_data, json.dumps, confluent-kafka produce),
  kcat -P pushing the same records already mapped (a floor: no mapping work at all).
Each writes N records into a fresh 3-partition topic; each count is checked. Prints a JSON summary and, with --doc,
writes the <!-- ingest-bench --> section of docs/benchmarks.md."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import sluice_e2e as e2e  # noqa: E402

SEED = 42


def timed(cmd, **kw):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.monotonic() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200000
    doc = "--doc" in sys.argv
    sluice = os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice"))
    tmp = tempfile.mkdtemp(prefix="sl_bench_ingest_")
    raw = os.path.join(tmp, "raw.jsonl")
    with open(raw, "wb") as f:
        subprocess.run([os.path.join(ROOT, "build", "gen_records"), str(SEED), str(n)], stdout=f, check=True)
    sys.path.insert(0, os.path.dirname(__file__))
    from seed_producer import format_data
    premade = os.path.join(tmp, "premade.tsv")
    with open(raw, "rb") as f, open(premade, "wb") as out:
        for line in f:
            d = format_data(json.loads(line))
            out.write(d["id"].encode() + b"\t" + json.dumps(d, ensure_ascii=False).encode() + b"\n")
    results, topics = [], []

    def topic():
        t = e2e.uniq("bench_ingest")
        e2e.create_topic(t, 3)
        topics.append(t)
        return t

    # sluice
    t = topic()
    cfg = os.path.join(tmp, "sluice.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {tmp}/data\npipelines:\n  users:\n    source:\n      type: generate\n      seed: {SEED}\n"
                f"      count: {n}\n      page_size: 100\n    topic: {t}\n    partitions: 3\n"
                f"{e2e.MAPPING_YAML}    sink:\n      keyspace: unused\n      table: created_users\n"
                f"kafka:\n  brokers: {e2e.BROKERS}\n")
    rc, wall, cpu, rss = timed([sluice, "--log-level", "warn", "ingest", "-c", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    assert rc == 0, "sluice ingest failed"
    results.append({"client": "sluice ingest", "records": n, "seconds": wall, "cpu_s": cpu, "rss_kib": rss,
                    "in_topic": e2e.topic_count(t)})
    # python seed loop
    t = topic()
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "seed_producer.py"), raw, t,
                        e2e.BROKERS], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["in_topic"] = e2e.topic_count(t)
    results.append(res)
    # kcat, pre-made records
    t = topic()
    rc, wall, cpu, rss = timed(["kcat", "-P", "-b", e2e.BROKERS, "-t", t, "-K", "\t", "-z", "lz4",
                                "-X", "acks=all", "-X", "enable.idempotence=true", "-X", "linger.ms=5",
                                "-X", "queue.buffering.max.kbytes=65536", "-l", premade],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert rc == 0, "kcat failed"
    results.append({"client": "kcat -P (pre-made records)", "records": n, "seconds": wall, "cpu_s": cpu,
                    "rss_kib": rss, "in_topic": e2e.topic_count(t)})
    e2e.delete_topics(*topics)
    for r in results:
        r["rec_per_s"] = r["records"] / r["seconds"]
        r["cpu_us_per_rec"] = 1e6 * r["cpu_s"] / r["records"]
        assert r["in_topic"] == n, f"{r['client']}: {r['in_topic']} of {n} records in the topic"
    print(json.dumps(results, indent=1))
    if doc:
        write_doc(n, results)


def write_doc(n, results):
    s = results[0]
    lines = ["<!-- ingest-bench:start -->", "## Ingest: generate -> Kafka (bench/ingest/run)", "",
             f"{n} randomuser-shaped records (the `generate` source, seed {SEED}) mapped by the seed's format_data and "
             f"produced to a fresh 3-partition topic on the local Kafka 4 broker (acks=all, idempotent, lz4, "
             f"linger 5 ms), the three producers one after the other in the same run on this "
             f"{os.cpu_count()}-CPU machine, the broker sharing it. CPU is the producer process's user+system time "
             f"(the Python loop: its timed section only, after the raw lines were read into memory: json.loads, "
             f"format_data, json.dumps, produce; kcat and sluice: the whole process, and sluice's figure includes "
             f"generating the raw records, which the other two get for free). Every topic was checked to hold "
             f"exactly {n} records.", "",
             "| producer | records/s | CPU µs per record | x sluice records/s | x sluice CPU per record |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['client']} | {r['rec_per_s']:.0f} | {r['cpu_us_per_rec']:.2f} | "
                     f"{r['rec_per_s'] / s['rec_per_s']:.2f} | {r['cpu_us_per_rec'] / s['cpu_us_per_rec']:.2f} |")
    py, kc = results[1], results[2]
    lines += ["", f"sluice does the seed's work at x{s['rec_per_s'] / py['rec_per_s']:.1f} the Python loop's rate for "
              f"x{py['cpu_us_per_rec'] / s['cpu_us_per_rec']:.1f} less CPU per record; against kcat, which maps "
              f"nothing, sluice's rate is x{s['rec_per_s'] / kc['rec_per_s']:.2f} and its CPU per record "
              f"x{s['cpu_us_per_rec'] / kc['cpu_us_per_rec']:.2f}.", "<!-- ingest-bench:end -->"]
    replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), "ingest-bench", "\n".join(lines))


def replace_section(path, name, sec):
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pat = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote the {name} section of {path}")


if __name__ == "__main__":
    main()
