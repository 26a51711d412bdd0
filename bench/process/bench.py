"""bench/process: rows/s of `sluice process` from a pre-filled topic of N records into the seed table on the local
Cassandra, CPU per record and peak RSS of the processor; in the same run, the node's ceiling for the same inserts:
the best of sluice's CQL bench (bench/cql/bench_cql.c: prepared single-row inserts, async) at high concurrency.
Prints a JSON summary and, with --doc, writes the <!-- process-bench --> section of docs/benchmarks.md."""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench", "ingest"))
import sluice_e2e as e2e  # noqa: E402
from bench import timed, replace_section  # noqa: E402  (bench/ingest/bench.py)

SEED = 42


def cql(stmt):
    subprocess.run([os.path.join(ROOT, "build", "sluice"), "--log-level", "warn", "cql", "-h", e2e.CASSANDRA, "-e",
                    stmt], check=True, stdout=subprocess.DEVNULL)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000000
    doc = "--doc" in sys.argv
    sluice = os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice"))
    tmp = tempfile.mkdtemp(prefix="sl_bench_process_")
    topic, ks = e2e.uniq("bench_process"), e2e.uniq("bench_process_ks")
    cfg = os.path.join(tmp, "sluice.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {tmp}/data\npipelines:\n  users:\n    source:\n      type: generate\n      seed: {SEED}\n"
                f"      count: {n}\n      page_size: 100\n    topic: {topic}\n    partitions: 3\n"
                f"{e2e.MAPPING_YAML}    sink:\n      keyspace: {ks}\n      table: created_users\n"
                f"      primary_key: [id]\n"
                f"kafka:\n  brokers: {e2e.BROKERS}\ncassandra:\n  contact_points: [{e2e.CASSANDRA}]\n")
    out = {"records": n}
    try:
        rc, wall, _, _ = timed([sluice, "--log-level", "warn", "ingest", "-c", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        assert rc == 0 and e2e.topic_count(topic) == n, "pre-filling the topic failed"
        out["prefill_s"] = wall
        rc, wall, cpu, rss = timed([sluice, "--log-level", "warn", "process", "-c", cfg, "--drain"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert rc == 0, "sluice process failed"
        rows = e2e.table_count(ks, ranges=64)
        assert rows == n, f"{rows} rows of {n}"
        out["processor"] = {"seconds": wall, "rows_per_s": n / wall, "cpu_s": cpu, "cpu_us_per_row": 1e6 * cpu / n,
                            "peak_rss_mib": rss / 1024}
        # the node's ceiling: sluice's CQL bench at high concurrency, best of two
        bench_cql = os.path.join(ROOT, "build", "bench_cql")
        cql("CREATE KEYSPACE IF NOT EXISTS sl_bench_cql WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        cql("CREATE TABLE IF NOT EXISTS sl_bench_cql.created_users (id uuid PRIMARY KEY, first_name text, "
            "last_name text, gender text, address text, post_code text, email text, username text, dob text, "
            "registered_date text, phone text, picture text)")
        crows = n  # the same number of rows: a node under sustained load flushes and compacts, a short run does not
        best = None
        for conc in (256, 1024):
            cql("TRUNCATE sl_bench_cql.created_users")
            r = json.loads(subprocess.run([bench_cql, e2e.CASSANDRA, "9042", str(crows), str(conc)],
                                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
            r["concurrency"] = conc
            out.setdefault("ceiling_runs", []).append(r)
            if best is None or r["rows_per_s"] > best["rows_per_s"]:
                best = r
        out["ceiling"] = best
        out["ratio"] = out["processor"]["rows_per_s"] / best["rows_per_s"]
    finally:
        e2e.delete_topics(topic, topic + ".dlq")
        e2e.drop_keyspace(ks)
    print(json.dumps(out, indent=1))
    if doc:
        p, c = out["processor"], out["ceiling"]
        lines = ["<!-- process-bench:start -->", "## Process: Kafka -> Cassandra (bench/process/run)", "",
                 f"`sluice process --drain` from a pre-filled 3-partition topic of {n} seed records (JSON, written by "
                 f"`sluice ingest` from the `generate` source) into the seed table (uuid key + 11 text columns) on the "
                 f"local Cassandra 5.0 node, default batching (1000 records / 4 MiB / 200 ms, 16 batches in flight), LOCAL_QUORUM; the "
                 f"node's ceiling in the same run is the best of sluice's CQL bench (bench/cql/bench_cql.c, prepared "
                 f"single-row inserts, async) at concurrency 256 and 1024 over {crows} rows. All on one "
                 f"{os.cpu_count()}-CPU machine: Kafka, Cassandra and the client share it. Rows counted after the "
                 f"run: {n}.", "",
                 "| what | rows/s | CPU µs per row | peak RSS |", "|---|---|---|---|",
                 f"| sluice process | {p['rows_per_s']:.0f} | {p['cpu_us_per_row']:.1f} | "
                 f"{p['peak_rss_mib']:.0f} MiB |"]
        for r in out["ceiling_runs"]:
            lines.append(f"| CQL bench, concurrency {r['concurrency']} | {r['rows_per_s']:.0f} | "
                         f"{1e6 * r['cpu_s'] / r['rows']:.1f} | — |")
        lines += ["", f"The processor reaches {100 * out['ratio']:.0f} % of the node's ceiling "
                  f"(the issue's goal: at least 90 %)." + (
                      ' Below the goal, and not yet profiled: at about 5 µs of CPU per row the processor is not CPU-bound, so it waits (on the sink\'s completions, or on the consumer), with up to batch.in_flight x max_records rows in flight.' if out["ratio"] < 0.9 else ""),
                  "<!-- process-bench:end -->"]
        replace_section(os.path.join(ROOT, "docs", "benchmarks.md"), "process-bench", "\n".join(lines))


if __name__ == "__main__":
    main()
