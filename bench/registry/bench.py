"""Registry throughput: lookups by id and registrations per second with CLIENTS concurrent clients against one
`sluice registry` on loopback (sqlite store, fresh data directory). Each client is a thread with its own keep-alive
HTTP connection; each phase is bounded in time (SECONDS) and in requests (MAX_REQ per client). Prints one JSON
object; bench/registry/run writes it into docs/benchmarks.md. Not a test: nothing here fails on speed."""
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SLUICE = os.environ["SLUICE"]
CLIENTS = int(os.environ.get("CLIENTS", "100"))
SECONDS = float(os.environ.get("SECONDS", "10"))
MAX_REQ = int(os.environ.get("MAX_REQ", "100000"))
NSCHEMAS = int(os.environ.get("NSCHEMAS", "1000"))
CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def schema(i, tag):
    return json.dumps({"type": "record", "name": f"R{tag}_{i}",
                       "fields": [{"name": "a", "type": "string"}, {"name": f"f{i}", "type": "long"}]})


def phase(port, work):
    """Runs work(conn, client_index, n) in CLIENTS threads until SECONDS or MAX_REQ; returns (ok, errors, seconds,
    latencies in ms)."""
    stop = time.monotonic() + SECONDS
    oks, errs, lats = [0] * CLIENTS, [0] * CLIENTS, [[] for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS + 1)

    def run(c):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        barrier.wait()
        n = 0
        while time.monotonic() < stop and n < MAX_REQ:
            t = time.monotonic()
            try:
                status = work(conn, c, n)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            lats[c].append((time.monotonic() - t) * 1000)
            if status == 200:
                oks[c] += 1
            else:
                errs[c] += 1
            n += 1
        conn.close()

    ts = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in ts:
        t.join()
    el = time.monotonic() - t0
    all_l = sorted(x for l in lats for x in l)
    return sum(oks), sum(errs), el, all_l


def call(conn, method, path, body=None):
    conn.request(method, path, body=body, headers=CT)
    r = conn.getresponse()
    r.read()
    return r.status


def cpu_s(pid):
    """The server's user+system CPU seconds so far (/proc/PID/stat), to tell a server-bound run from a client-bound
    one: the clients are Python threads on the same 2 cores."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(l, p):
    return round(l[min(len(l) - 1, int(len(l) * p))], 2) if l else None


def main():
    d = tempfile.mkdtemp(prefix="sluice-bench-registry-")
    port = free_port()
    log = open(os.path.join(d, "registry.log"), "wb")
    proc = subprocess.Popen([SLUICE, "--log-level", "warn", "registry", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", d], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                if call(c, "GET", "/subjects") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("sluice registry did not answer")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        call(c, "PUT", "/config", json.dumps({"compatibility": "NONE"}))
        ids = []
        for i in range(NSCHEMAS):
            c.request("POST", f"/subjects/seed-{i % 50}/versions", body=json.dumps({"schema": schema(i, "seed")}),
                      headers=CT)
            r = c.getresponse()
            ids.append(json.loads(r.read())["id"])
        rng = [random.Random(k) for k in range(CLIENTS)]

        def lookup(conn, k, n):
            return call(conn, "GET", f"/schemas/ids/{rng[k].choice(ids)}")

        c0 = cpu_s(proc.pid)
        lk = phase(port, lookup)
        c1 = cpu_s(proc.pid)

        def register(conn, k, n):
            return call(conn, "POST", f"/subjects/bench-{k}/versions",
                        json.dumps({"schema": schema(n, f"c{k}")}))

        rg = phase(port, register)
        c2 = cpu_s(proc.pid)
        out = {"clients": CLIENTS, "seconds": SECONDS, "seed_schemas": NSCHEMAS, "cpus": os.cpu_count()}
        for name, (ok, err, el, l), cpu in (("lookup_by_id", lk, c1 - c0), ("register", rg, c2 - c1)):
            out[name] = {"ok": ok, "errors": err, "elapsed_s": round(el, 2), "per_s": round(ok / el, 1),
                         "p50_ms": pct(l, 0.5), "p99_ms": pct(l, 0.99), "server_cpu_s": round(cpu, 2),
                         "per_server_cpu_s": round(ok / cpu, 1) if cpu > 0 else None}
        print(json.dumps(out))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
