"""Benchmark twin of bench_cql.c: the same prepared single-row inserts into sl_bench_cql.created_users through the
Python cassandra-driver's execute_concurrent_with_args (with its C extensions when installed). Prints one JSON line
with rows/s and the process's CPU seconds. Usage: bench_py.py HOST PORT ROWS CONCURRENCY"""
import json
import random
import resource
import sys
import time
import uuid

from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    host, port, rows, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cluster = Cluster([host], port=port, protocol_version=4)
    session = cluster.connect("sl_bench_cql")
    ins = session.prepare(
        "INSERT INTO created_users (id, first_name, last_name, gender, address, post_code, email, username, dob,"
        " registered_date, phone, picture) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    rnd = random.Random(42)
    args = []
    for i in range(rows):
        args.append((uuid.UUID(int=rnd.getrandbits(128), version=4), f"First{i % 997}", f"Last{i % 991}",
                     "male" if i % 2 else "female", f"{i % 9999} Some Street, Springfield, Region {i % 50}, Country",
                     f"{i % 99999:05d}", f"first{i % 997}.last{i}@example.com", f"user{i}",
                     f"1980-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00.000Z",
                     f"2015-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00.000Z", f"(0{i % 9}) 555-{i % 10000:04d}",
                     "https://randomuser.me/api/portraits/med/men/75.jpg"))
    w0, c0 = time.monotonic(), cpu()
    results = execute_concurrent_with_args(session, ins, args, concurrency=conc, raise_on_first_error=False)
    failed = sum(1 for ok, _ in results if not ok)
    wall, used = time.monotonic() - w0, cpu() - c0
    print(json.dumps({"client": "python-driver", "rows": rows, "failed": failed, "seconds": round(wall, 3),
                      "rows_per_s": round(rows / wall), "cpu_s": round(used, 3), "concurrency": conc}))
    cluster.shutdown()


if __name__ == "__main__":
    main()
