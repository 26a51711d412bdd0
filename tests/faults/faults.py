#!/usr/bin/env python3
"""The fault harness: the seed pipeline (randomuser-shaped records from tests/apiserver -> sluice ingest -> Kafka ->
sluice process -> Cassandra) on the real services of tests/services, with one fault injected per scenario:

  kill_ingest     kill -9 of `sluice ingest` at random moments, restarted at once (as a supervisor would)
  kill_process    kill -9 of `sluice process` likewise
  kill_up         kill -9 of `sluice up` (ingest and process in one process) likewise
  kafka_restart   the broker restarted (tests/services/run restart kafka) mid-stream
  cassandra_down  Cassandra stopped for a while mid-stream, then started again
  api_faults      the API answers 500, 429 (Retry-After), garbage, truncated bodies and hangs past the timeout
  disk_full       the embedded default (SQLite log + SQLite table) with data_dir on a small tmpfs filled to the brim,
                  then emptied again
  slow_cassandra  a proxy between sluice and Cassandra that delays and throttles every byte the client sends, so
                  writes fall behind the topic: the processor must pause consumption and still deliver everything

After each scenario the invariants are checked:
  - every source record is in the table exactly as the seed's format_data maps it (every column compared), no row
    that is not a source record, count(*) equals the distinct ids;
  - the dead-letter topic holds exactly what should be there (the garbage pages of api_faults, nothing elsewhere);
  - the peak RSS of every sluice process stayed under its configured bound (see bound_mib());
  - the pipeline recovered by itself: no restart but the one a supervisor does after kill -9, processes alive
    through the fault and exiting 0 at the end.
The report (scenario, records sent, records in the table, duplicates absorbed, DLQ entries, recovery time, peak RSS,
pass/fail) goes to stdout, .cache/faults/report.md and .cache/faults/report.json.

Columns of the report:
  duplicates absorbed  copies the upsert made harmless: messages in the topic beyond one per record (pages
                       re-fetched after an ingest kill, re-sent after a broker restart) plus records written again
                       because the kill came between the write and the offset commit
  recovery             for each fault end (a restart after a kill, a service back, the disk emptied, the database
                       fast again): seconds until the table grew again; the largest is reported

  python3 tests/faults/faults.py [--short] [--only a,b] [--kills N] [--seed S]
Environment: SL_FAULTS_SHORT=1 (same as --short: the CI form), SLUICE (binary; default build/sluice, copied aside
so a rebuild during the run does not change it), SL_FAULTS_SEED, SL_FAULTS_LOCK_TIMEOUT (seconds, default 1800).
Disruptive scenarios hold an exclusive flock on .cache/services.lock, the others a shared one.
"""
import argparse
import collections
import contextlib
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import sluice_e2e as e2e  # noqa: E402

ROOT = e2e.ROOT
OUT_DIR = os.path.join(ROOT, ".cache", "faults")
LOCK_PATH = os.path.join(ROOT, ".cache", "services.lock")

# Memory bounds. The harness configures every queue the pipeline has and checks RSS against their sum plus a fixed
# allowance for the program itself (code, libraries, SQLite's and librdkafka's caches, thread stacks).
BASE_MIB = 64          # the program with nothing queued
BUFFER_MAX_MIB = 8     # kafka.buffer_max: the producer's queue
CONSUMER_QUEUE_MIB = 16  # the consumer's prefetch queue (queued.max.messages.kbytes, 4 MiB as the processor sets it)
IN_FLIGHT, MAX_BYTES_MIB = 4, 1  # batch.in_flight x batch.max_bytes: the processor's batches
BATCH_YAML = f"    batch: {{ max_records: 500, max_bytes: {MAX_BYTES_MIB}MiB, in_flight: {IN_FLIGHT} }}\n"
# a killed processor's partitions move after 6 s: the restarted one is not kept waiting for the dead one's session
KAFKA_EXTRA = (f"  buffer_max: {BUFFER_MAX_MIB}MiB\n"
               "  properties:\n    session.timeout.ms: \"6000\"\n    heartbeat.interval.ms: \"1000\"\n")


def bound_mib(role, asan=False, kafka=True):
    b = BASE_MIB
    if role in ("ingest", "up") and kafka:
        b += BUFFER_MAX_MIB
    if role in ("process", "up"):
        b += (CONSUMER_QUEUE_MIB if kafka else 0) + IN_FLIGHT * MAX_BYTES_MIB
    return b + (e2e.ASAN_RSS_SLACK_MIB if asan else 0)


# ---- the services lock -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def services_lock(exclusive):
    """flock on .cache/services.lock: exclusive while a scenario stops, restarts or slows a shared service, shared
    otherwise (someone else's restart must not land inside our measurements either). Polls, so that a run started
    under someone's shared lock fails with a message instead of waiting for ever."""
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    timeout = float(os.environ.get("SL_FAULTS_LOCK_TIMEOUT", 1800))
    deadline, said = time.time() + timeout, False
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    print(f"  waiting for the {'exclusive' if exclusive else 'shared'} services lock {LOCK_PATH}",
                          flush=True)
                    said = True
                if time.time() > deadline:
                    raise AssertionError(f"could not take the services lock {LOCK_PATH} in {timeout:.0f} s "
                                         "(is this run itself inside a 'flock -s'?)")
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def ensure_services():
    """Leaves Kafka and Cassandra running and healthy, whatever happened in the scenario."""
    for name in ("kafka", "cassandra"):
        if not e2e.service_ready(name):
            print(f"  {name} is not ready: starting it", flush=True)
            e2e.service("start", name)


# ---- observation -------------------------------------------------------------------------------------------------

class Monitor:
    """Samples the table's row count every `every` seconds: (time, count) pairs, count None while unreadable."""

    def __init__(self, count_fn, every=0.5):
        self.count_fn, self.every = count_fn, every
        self.samples = []
        self.last_error = None  # why the last unreadable sample was, for the failure message
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c = self.count_fn()
            except Exception as e:
                c = None
                self.last_error = f"{type(e).__name__}: {e}"
            self.samples.append((time.time(), c))
            self._stop.wait(self.every)

    def last(self):
        for t, c in reversed(self.samples):
            if c is not None:
                return c
        return 0

    def wait_for(self, n, timeout, alive=()):
        """Until the table has n rows; False on timeout or when a process that must stay up died."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.last() >= n:
                return True
            for p in alive:
                if not p.alive():
                    return False
            time.sleep(0.25)
        return False

    def recovery(self, t_end, complete):
        """Seconds from t_end until the count rose above its value at t_end (0 when the table was complete)."""
        base = None
        for t, c in self.samples:
            if c is None:
                continue
            if t <= t_end:
                base = c
                continue
            if base is None:
                base = 0
            if base >= complete:
                return 0.0
            if c > base:
                return t - t_end
        return None

    def stop(self):
        self._stop.set()
        self.t.join(5)


def shut(*socks):
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class SlowProxy:
    """TCP proxy to Cassandra that holds every client->server chunk for `delay` seconds and lets at most `bps` bytes
    a second through (per connection), so writes are acknowledged late and slowly; server->client is relayed as is.
    set_slow(False) makes it a plain relay again (the database is fast again)."""

    def __init__(self, target_port, delay, bps):
        self.target, self.delay, self.bps = target_port, delay, bps
        self.slow = True
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.closed = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def set_slow(self, slow):
        self.slow = slow

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns += [c, u]
            q = collections.deque()
            cv = threading.Condition()
            threading.Thread(target=self._read_client, args=(c, u, q, cv), daemon=True).start()
            threading.Thread(target=self._write_server, args=(c, u, q, cv), daemon=True).start()
            threading.Thread(target=self._relay, args=(u, c), daemon=True).start()

    def _read_client(self, c, u, q, cv):
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                data = b""
            with cv:
                q.append((time.time() + (self.delay if self.slow else 0), data))
                cv.notify()
            if not data:
                return

    def _write_server(self, c, u, q, cv):
        try:
            while True:
                with cv:
                    while not q:
                        cv.wait()
                    due, data = q.popleft()
                if not data:
                    break
                if self.slow:
                    time.sleep(max(0.0, due - time.time()))
                    for i in range(0, len(data), 4096):
                        if self.slow:
                            time.sleep(min(4096, len(data) - i) / self.bps)
                        u.sendall(data[i:i + 4096])
                else:
                    u.sendall(data)
        except OSError:
            pass
        finally:
            shut(c, u)

    @staticmethod
    def _relay(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            shut(a, b)

    def close(self):
        self.closed = True
        with contextlib.suppress(OSError):
            self.srv.close()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.close()


# ---- the scenarios' common frame ---------------------------------------------------------------------------------

class Failed(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


class Run:
    """One scenario: its directory, API server, topic, keyspace and group, the sluice processes it started, the
    table monitor, and the row of the report it fills in."""

    def __init__(self, h, name, n, *, page=50, faults=None, backend="kafka"):
        self.h, self.name, self.n, self.page, self.backend = h, name, n, page, backend
        self.dir = os.path.join(h.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.api = e2e.ApiServer(n, seed=e2e.uniq("flt"))
        self.proxy = e2e.FaultProxy(self.api.port, faults) if faults else None
        self.topic, self.ks, self.group = e2e.uniq("flt"), e2e.uniq("flt_ks"), e2e.uniq("flt_g")
        self.procs = []
        self.bad_pages = set()
        self.events = []      # fault end times, for recovery
        self.kills = 0
        self.rewritten = 0    # records written again after a kill between write and commit
        self.kill_marks = []  # (committed offsets per partition, ids in the table) at each kill
        self.notes = []
        self.row = {"scenario": name, "sent": n, "in_table": None, "dups": None, "dlq": None, "recovery_s": None,
                    "peak_rss_mib": None, "bound_mib": None, "result": "FAIL", "reason": ""}
        self.mon = None

    # config
    def config(self, *, rate=None, timeout="30s", cassandra_port=None, name="sluice.yaml", max_retries=5):
        port = self.proxy.port if self.proxy else self.api.port
        src = e2e.http_source_yaml(port, self.page, timeout=timeout, rate=rate, max_retries=max_retries)
        cass = f"  port: {cassandra_port}\n" if cassandra_port else ""
        return e2e.write_config(os.path.join(self.dir, name), data_dir=os.path.join(self.dir, "data"),
                                topic=self.topic, keyspace=self.ks, group=self.group, source_yaml=src,
                                batch_yaml=BATCH_YAML, kafka_extra=KAFKA_EXTRA, cassandra_extra=cass)

    def start(self, role, cfg, *extra):
        # a log per run: wait_assigned reads this run's own "kafka assigned"
        n = sum(1 for q in self.procs if q.role == role)
        p = e2e.Proc([role, "-c", str(cfg), *extra], os.path.join(self.dir, f"{role}{n or ''}.log"))
        p.role = role
        self.procs.append(p)
        return p

    def monitor(self):
        if self.backend == "kafka":
            def count():
                return e2e.table_count(self.ks)
        else:
            db = os.path.join(self.dir, "data", f"{self.ks}.db")

            def count():
                c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                try:
                    return c.execute("SELECT count(*) FROM created_users").fetchone()[0]
                finally:
                    c.close()
        self.mon = Monitor(count)
        return self.mon

    def expected(self):
        out = {}
        for i, r in enumerate(self.api.records()):
            if i // self.page + 1 in self.bad_pages:
                continue
            m = e2e.format_data(r)
            out[m["id"]] = m
        return out

    def stream(self, span, before):
        """Starts ingest (paced over `span` s) and process side by side; returns once a fifth of the rows are in."""
        cfg = self.config(rate=self.rate_for(span))
        self.monitor()
        ing, proc = self.start("ingest", cfg), self.start("process", cfg)
        check(self.mon.wait_for(self.n // 5, 60, [ing, proc]),
              f"no {self.n // 5} rows before {before} (table count {self.mon.last()}, last count error "
              f"{self.mon.last_error}; ingest alive {ing.alive()}, process alive {proc.alive()})")
        return ing, proc

    def rate_for(self, seconds):
        """rate_limit (pages a second) that spreads the source over about `seconds`."""
        return max(0.2, self.n / self.page / seconds)

    def mark_kill(self):
        """After a processor's kill: what its group committed and what the table holds, for the duplicates count."""
        try:
            c = e2e.committed(self.group, self.topic, per_partition=True)
            ids = {str(r.id) for r in e2e.cql_session().execute(f"SELECT id FROM {self.ks}.created_users",
                                                                    timeout=60)}
            self.kill_marks.append((c, ids))
        except Exception:
            pass  # before the topic or the table exist

    def kill_loop(self, role, cfg, kills, lo, hi, *, wait_assigned=False, extra=()):
        """Starts `role`, kills it -9 after a random lo..hi s (after its partitions were assigned when
        wait_assigned), restarts it at once; `kills` times, or until a run ends by itself. Returns the last one."""
        rnd = self.h.rnd
        p = self.start(role, cfg, *extra)
        for k in range(kills):
            if wait_assigned:
                deadline = time.time() + 30
                while time.time() < deadline and p.alive() and "kafka assigned" not in p.output():
                    time.sleep(0.1)
            t = time.time() + rnd.uniform(lo, hi)
            while time.time() < t and p.alive():
                time.sleep(0.05)
            if not p.alive():
                check(p.p.returncode == 0, f"{role} exited {p.p.returncode} before kill {k + 1}:\n"
                                           f"{p.output()[-2000:]}")
                self.notes.append(f"{role} finished after {k} kills")
                return p
            p.kill9()
            self.kills += 1
            if role in ("process", "up"):
                self.mark_kill()
            p = self.start(role, cfg, *extra)
            self.events.append(time.time())
        return p

    # invariants
    def finish(self, expected, *, dlq_expected=0, dlq_stage="parse", wait=300, alive=(), stop=(), complete=True):
        """Waits for the table to hold every expected record (the processes in `alive` must stay up meanwhile),
        stops the processes in `stop` with SIGTERM (exit status 0 wanted), then checks every invariant."""
        if complete:
            ok = self.mon.wait_for(len(expected), wait, alive)
            dead = [p for p in alive if not p.alive()]
            check(not dead, "; ".join(f"{p.role} died (rc {p.p.returncode}):\n{p.output()[-2500:]}" for p in dead))
            check(ok, f"the table has {self.mon.last()} of {len(expected)} rows after {wait} s")
        for p in stop:
            if p.alive():
                os.kill(p.pid, signal.SIGTERM)
                try:
                    rc = p.wait(90)
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                check(rc == 0, f"{p.role} exited {rc} on SIGTERM:\n{p.output()[-2500:]}")
        self.mon.stop()
        # rows, column by column
        if self.backend == "kafka":
            rows = e2e.table_rows(self.ks)
            count = e2e.table_count(self.ks)
        else:
            rows, count = self.sqlite_rows()
        self.row["in_table"] = count
        # duplicates and DLQ
        if self.backend == "kafka":
            msgs = e2e.consume_all(self.topic, expect=len(expected))
            ids = [(json.loads(v)["id"], part, off) for _k, v, _h, part, off in msgs]
            dlq = e2e.consume_all(self.topic + ".dlq") if e2e.topic_count(self.topic + ".dlq") else []
            dlq_h = [e2e.headers_dict(h) for _k, _v, h, _p, _o in dlq]
        else:
            ids, dlq_h = self.sqlite_log()
        per_id = collections.Counter(i for i, _p, _o in ids)
        for committed, in_table in self.kill_marks:
            self.rewritten += sum(1 for i, part, off in ids if off >= committed.get(part, 0) and i in in_table)
        self.row["dups"] = (len(ids) - len(per_id)) + self.rewritten
        self.row["dlq"] = len(dlq_h)
        peak = 0
        worst = None
        for p in self.procs:
            b = bound_mib(p.role, self.h.asan, self.backend == "kafka")
            peak = max(peak, p.peak_rss_kib / 1024)
            if p.peak_rss_kib / 1024 > b and (worst is None or p.peak_rss_kib > worst[0].peak_rss_kib):
                worst = (p, b)
        self.row["peak_rss_mib"] = round(peak, 1)
        self.row["bound_mib"] = max(bound_mib(p.role, self.h.asan, self.backend == "kafka") for p in self.procs)
        rec = [self.mon.recovery(t, len(expected)) for t in self.events]
        if None in rec:
            check(False, f"no progress after a fault that ended at +{self.events[rec.index(None)] - self.t0:.1f} s")
        self.row["recovery_s"] = round(max(rec), 1) if rec else None
        self.row["recoveries"] = [round(x, 1) for x in rec]
        # the checks, in order of importance
        e2e.compare(expected, rows, f"{self.name}: table")
        check(count == len(expected), f"count(*) = {count}, expected {len(expected)}")
        missing_log = [i for i in expected if i not in per_id]
        check(not missing_log, f"{len(missing_log)} records never reached the topic")
        check(len(dlq_h) == dlq_expected, f"{len(dlq_h)} DLQ entries, expected {dlq_expected}: {dlq_h[:3]}")
        for h in dlq_h:
            check(h.get("sluice.stage") == dlq_stage, f"DLQ entry with stage {h.get('sluice.stage')}: {h}")
        check(worst is None, worst and f"{worst[0].role} peak RSS {worst[0].peak_rss_kib / 1024:.1f} MiB over its "
                                       f"bound {worst[1]} MiB")
        self.row["result"] = "pass"

    def sqlite_rows(self):
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'data', self.ks + '.db')}?mode=ro", uri=True, timeout=30)
        try:
            rows = {}
            for r in db.execute(f"SELECT {', '.join(e2e.COLUMNS)} FROM created_users"):
                d = dict(zip(e2e.COLUMNS, r))
                rows[d["id"]] = d
            return rows, db.execute("SELECT count(*) FROM created_users").fetchone()[0]
        finally:
            db.close()

    def sqlite_log(self):
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'data', 'log.db')}?mode=ro", uri=True, timeout=30)
        try:
            ids = [(json.loads(v)["id"], p, o) for p, o, v in
                   db.execute("SELECT partition, offset, value FROM messages WHERE topic=?", (self.topic,))]
            dlq = db.execute("SELECT count(*) FROM messages WHERE topic=?", (self.topic + ".dlq",)).fetchone()[0]
            return ids, [{"sluice.stage": "?"}] * dlq
        finally:
            db.close()

    def close(self):
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.ensure_dead()
        if self.mon:
            self.mon.stop()
        if self.proxy:
            self.proxy.close()
        self.api.close()
        if self.backend == "kafka":
            e2e.delete_topics(self.topic, self.topic + ".dlq")
            e2e.drop_keyspace(self.ks)


# ---- the scenarios -------------------------------------------------------------------------------------------------

def sc_kill_ingest(h, r):
    """ingest paced over ~`span` s and killed at random moments; one processor streams throughout."""
    span = 20 if h.short else 60
    cfg = r.config(rate=r.rate_for(span))
    r.monitor()
    proc = r.start("process", cfg)
    last = r.kill_loop("ingest", cfg, h.kills, 0.3, 2 * span / h.kills * 0.8)
    rc = last.wait(300)
    check(rc == 0, f"the last ingest exited {rc}:\n{last.output()[-2500:]}")
    r.finish(r.expected(), alive=[proc], stop=[proc])


def sc_kill_process(h, r):
    """process killed at random moments after it got its partitions (each kill lands mid-stream), restarted at once;
    ingest runs paced meanwhile."""
    span = 10 * h.kills
    cfg = r.config(rate=r.rate_for(span))
    r.monitor()
    ing = r.start("ingest", cfg)
    last = r.kill_loop("process", cfg, h.kills, 0.2, 3.0, wait_assigned=True)
    r.finish(r.expected(), alive=[last], stop=[last])
    check(ing.wait(120) == 0, f"ingest failed:\n{ing.output()[-2500:]}")


def sc_kill_up(h, r):
    """`sluice up` (ingest and process in one process) killed at random moments and restarted; the last run must
    end by itself once every record is in the table."""
    span = 16 * h.kills  # each restart waits ~6 s for its partitions, then runs 0.2-4 s: every kill mid-stream
    cfg = r.config(rate=r.rate_for(span))
    r.monitor()
    last = r.kill_loop("up", cfg, h.kills, 0.2, 4.0, wait_assigned=True)
    expected = r.expected()
    r.finish(expected, alive=[], stop=[])
    rc = last.wait(300)
    check(rc == 0, f"the last up exited {rc}:\n{last.output()[-2500:]}")


def sc_kafka_restart(h, r):
    """The broker restarted while ingest and process stream: both ride it out without a restart of their own."""
    span = 30 if h.short else 60
    ing, proc = r.stream(span, "the restart")
    try:
        e2e.service("restart", "kafka")
    finally:
        ensure_services()
    r.events.append(time.time())
    check(ing.alive() and proc.alive(), "a process died across the broker restart")
    check(ing.wait(300) == 0, f"ingest failed after the broker restart:\n{ing.output()[-2500:]}")
    r.finish(r.expected(), alive=[proc], stop=[proc])


def sc_cassandra_down(h, r):
    """Cassandra stopped for `down` s while records keep arriving: the processor stays up and writes everything
    once the node is back. (tests/e2e/test_process_cassandra.py checks the offsets during such an outage.)"""
    down = 20 if h.short else 60
    ing, proc = r.stream(down + 30, "the outage")
    try:
        e2e.service("stop", "cassandra")
        t0 = time.time()
        while time.time() - t0 < down:
            check(proc.alive(), f"the processor died while Cassandra was down:\n{proc.output()[-2500:]}")
            time.sleep(0.5)
    finally:
        e2e.service("start", "cassandra")
        ensure_services()
    r.events.append(time.time())
    r.notes.append(f"down {time.time() - t0:.0f} s (stop to ready)")
    check(ing.wait(300) == 0, f"ingest failed:\n{ing.output()[-2500:]}")
    r.finish(r.expected(), alive=[proc], stop=[proc], wait=300)
    check("sink write failed, retrying" in proc.output(), "the processor never saw the outage")


API_FAULTS = {  # page -> apiserver fault parameters (see tests/apiserver/apiserver.py)
    2: "fail500=3",
    4: "fail429=2&retry_after=1",
    6: "slow=1&delay=20",               # a connection that hangs far past the 1.5 s timeout
    8: "malformed=1",                   # garbage: never JSON, goes to the DLQ whole
    10: "truncate=2",
    12: "fail429=1&retry_after=1&retry_date=1",
    14: "fail500=2&slow=1&delay=5",
    17: "malformed=1",
    19: "slow=2&delay=3",
}


def sc_api_faults(h, r):
    """Every kind of trouble the API can make, on pages of their own; the garbage pages go to the DLQ whole."""
    r.bad_pages = {p for p, f in API_FAULTS.items() if "malformed" in f}
    cfg = r.config(timeout="1500ms", max_retries=6)
    r.monitor()
    ing, proc = r.start("ingest", cfg), r.start("process", cfg)
    check(ing.wait(300) == 0, f"ingest failed:\n{ing.output()[-2500:]}")
    out = ing.output()
    for what, pat in (("500", r"HTTP 500; retry"), ("429", r"HTTP 429; retry"), ("timeout", r"[Tt]imeout|timed out")):
        check(re.search(pat, out), f"ingest's log shows no {what}:\n{out[-2000:]}")
    r.finish(r.expected(), dlq_expected=len(r.bad_pages), alive=[proc], stop=[proc])
    r.notes.append(f"{len(r.bad_pages)} garbage pages ({len(r.bad_pages) * r.page} records) in the DLQ whole, as "
                   "they should be")


def sc_slow_cassandra(h, r):
    """Writes delayed (each client->server chunk held `delay` s, `bps` bytes/s a connection) while the topic
    fills at full speed: the processor must pause its partitions, keep memory bounded and deliver everything once
    the database is fast again."""
    slow_for = 25 if h.short else 90
    proxy = SlowProxy(9042, delay=0.2, bps=64 * 1024)
    try:
        cfg = r.config(cassandra_port=proxy.port)
        r.monitor()
        ing = r.start("ingest", cfg)
        proc = r.start("process", cfg)
        t0 = time.time()
        while time.time() - t0 < slow_for:
            check(proc.alive(), f"the processor died under a slow database:\n{proc.output()[-2500:]}")
            time.sleep(0.5)
        slow_rows = r.mon.last()
        check(ing.wait(120) == 0, f"ingest failed:\n{ing.output()[-2500:]}")
        check(slow_rows < r.n, f"the database was not slow enough to build a backlog ({slow_rows} of {r.n} rows "
                               f"written in {slow_for} s)")
        check(re.search(r"kafka paused topic=", proc.output()),
              f"the processor never paused its partitions:\n{proc.output()[-2500:]}")
        r.notes.append(f"{slow_rows} rows in {slow_for} s while slow; paused")
        proxy.set_slow(False)
        r.events.append(time.time())
        r.finish(r.expected(), alive=[proc], stop=[proc])
    finally:
        proxy.close()


def embedded_config(r, rate):
    text = (f"data_dir: {os.path.join(r.dir, 'data')}\n"
            f"pipelines:\n  users:\n    source:\n"
            f"{e2e.http_source_yaml(r.api.port, r.page, rate=rate)}"
            f"    topic: {r.topic}\n    partitions: 3\n"
            f"{e2e.MAPPING_YAML}"
            f"    sink:\n      keyspace: {r.ks}\n      table: created_users\n      primary_key: [id]\n"
            f"{BATCH_YAML}")
    path = os.path.join(r.dir, "sluice.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def sc_disk_full(h, r):
    """The embedded default with data_dir on a small tmpfs. Mid-stream a file fills the tmpfs; sluice must say so,
    naming the path, lose nothing, and carry on by itself once the file is gone."""
    if os.geteuid() != 0:
        r.row["result"] = "skip"
        r.row["reason"] = "needs root to mount a small tmpfs"
        return
    data = os.path.join(r.dir, "data")
    os.makedirs(data, exist_ok=True)
    # Room for the run's own data (log, table and their WALs: about 1.3 KiB a record) with some to spare, so that
    # only the filler makes the disk full: 24 MiB for the short form's 5,000 records, 96 MiB for the long form's 20,000.
    size_mib = max(24, 24 * r.n // 5000)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "sluice-faults", data], check=True)
    r.cleanup = lambda: subprocess.run(["umount", "-l", data], check=False)
    full_for = 10 if h.short else 30
    cfg = embedded_config(r, rate=r.rate_for(25 if h.short else 60))
    r.monitor()
    up = r.start("up", cfg)
    check(r.mon.wait_for(r.n // 5, 60, [up]), f"no rows before the disk filled:\n{up.output()[-2000:]}")
    filler = os.path.join(data, "filler")
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    t0 = time.time()
    while time.time() - t0 < full_for and up.alive():
        time.sleep(0.5)
    at_full = r.mon.last()
    os.unlink(filler)
    r.events.append(time.time())
    out = up.output()
    check(re.search(re.escape(data) + r"\S*.*(full|No space)|(full|No space).*" + re.escape(data), out),
          f"no error naming {data} and the full disk in the log:\n{out[-2500:]}")
    r.notes.append(f"{at_full} rows when the disk filled")
    check(up.alive(), f"up exited {up.p.returncode} on a full disk instead of waiting for space:\n{out[-2500:]}")
    rc = up.wait(300)
    check(rc == 0, f"up exited {rc} after space returned:\n{up.output()[-2500:]}")
    r.finish(r.expected())


SCENARIOS = [  # name, function, records (short, long), lock: exclusive for the ones that disturb shared services
    ("kill_ingest", sc_kill_ingest, (3000, 20000), False),
    ("kill_process", sc_kill_process, (3000, 20000), False),
    ("kill_up", sc_kill_up, (3000, 20000), False),
    ("api_faults", sc_api_faults, (1000, 5000), False),
    ("disk_full", sc_disk_full, (5000, 20000), False),
    ("slow_cassandra", sc_slow_cassandra, (20000, 60000), False),
    # last, so that a run waiting for someone's shared lock to go has done the rest meanwhile
    ("kafka_restart", sc_kafka_restart, (3000, 20000), True),
    ("cassandra_down", sc_cassandra_down, (3000, 20000), True),
]
RUN_KW = {"api_faults": {"faults": API_FAULTS}, "disk_full": {"backend": "embedded"}}


# ---- the harness ---------------------------------------------------------------------------------------------------

class Harness:
    def __init__(self, args):
        self.short = args.short
        self.kills = args.kills or (5 if self.short else 20)
        self.seed = args.seed or os.environ.get("SL_FAULTS_SEED") or str(int(time.time()))
        self.rnd = random.Random(self.seed)
        self.work = tempfile.mkdtemp(prefix="sluice-faults-")
        # a private copy of the binary: a rebuild of build/ during the run must not change what is tested
        src = e2e.SLUICE
        check(os.path.exists(src), f"{src} is missing: run make first")
        e2e.SLUICE = os.path.join(self.work, "sluice")
        shutil.copy2(src, e2e.SLUICE)
        self.binary = src
        self.asan = e2e.is_asan(e2e.SLUICE)


def fmt(v, unit=""):
    return "—" if v is None else f"{v}{unit}"


def report(h, rows, elapsed):
    own = sum(r["seconds"] for r in rows)
    head = ("| scenario | records sent | in table | duplicates absorbed | DLQ entries | recovery (s) | peak RSS (MiB) "
            "| RSS bound (MiB) | result |")
    lines = [f"Fault harness, {'short' if h.short else 'long'} form: {h.kills} kills per kill scenario, seed "
             f"{h.seed}, {os.path.relpath(h.binary, ROOT)}{' (ASan)' if h.asan else ''}, {own:.0f} s of scenarios"
             f"{f' (and {elapsed - own:.0f} s waiting for the services lock)' if elapsed - own > 30 else ''}.", "",
             head, "|" + "---|" * 9]
    for r in rows:
        kills = f" ({r['kills']} kills)" if r.get("kills") else ""
        lines.append(f"| {r['scenario']}{kills} | {r['sent']} | {fmt(r['in_table'])} | {fmt(r['dups'])} | {fmt(r['dlq'])} "
                     f"| {fmt(r['recovery_s'])} | {fmt(r['peak_rss_mib'])} | {fmt(r['bound_mib'])} "
                     f"| {r['result']} |")
    notes = [f"- {r['scenario']}: {r['reason']}" for r in rows if r["reason"]]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", default=os.environ.get("SL_FAULTS_SHORT") == "1")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--kills", type=int)
    ap.add_argument("--seed")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs, data)")
    ap.add_argument("--doc", action="store_true", help="put the report into docs/faults.md as the latest one")
    args = ap.parse_args()
    h = Harness(args)
    names = [s[0] for s in SCENARIOS]
    pick = args.only.split(",") if args.only else names
    for n in pick:
        if n not in names:
            ap.error(f"unknown scenario {n!r}; one of {', '.join(names)}")
    print(f"faults: {'short' if h.short else 'long'} form, seed {h.seed}, work dir {h.work}", flush=True)
    rows, t_all = [], time.time()
    for name, fn, sizes, exclusive in SCENARIOS:
        if name not in pick:
            continue
        t0 = time.time()
        print(f"--- {name}", flush=True)
        r = None
        try:
            with services_lock(exclusive):
                t0 = time.time()  # the time a scenario waited for the lock is not its own
                ensure_services()
                r = Run(h, name, sizes[0] if h.short else sizes[1], **RUN_KW.get(name, {}))
                r.t0 = t0
                fn(h, r)
        except Exception as e:
            if r is None:
                r = type("R", (), {"row": {"scenario": name, "sent": sizes[0] if h.short else sizes[1],
                                           "in_table": None, "dups": None, "dlq": None, "recovery_s": None,
                                           "peak_rss_mib": None, "bound_mib": None}, "notes": []})()
            r.row["result"] = "FAIL"
            r.row["reason"] = (str(e) or type(e).__name__).strip().splitlines()[0][:300]
            print(f"{name}: FAIL\n{e if isinstance(e, AssertionError) else traceback.format_exc()}", flush=True)
        finally:
            if r is not None and hasattr(r, "close"):
                with contextlib.suppress(Exception):
                    r.close()
                if hasattr(r, "cleanup"):
                    r.cleanup()
            with contextlib.suppress(Exception):
                ensure_services()
        if r.notes and not r.row["reason"]:
            r.row["reason"] = "; ".join(r.notes)
        r.row["kills"] = getattr(r, "kills", 0)
        r.row["seconds"] = round(time.time() - t0, 1)
        rows.append(r.row)
        print(f"{name}: {r.row['result']} in {r.row['seconds']} s  {json.dumps(r.row)}", flush=True)
    text = report(h, rows, time.time() - t_all)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump({"form": "short" if h.short else "long", "seed": h.seed, "kills": h.kills, "asan": h.asan,
                   "binary": os.path.relpath(h.binary, ROOT), "seconds": round(time.time() - t_all, 1),
                   "scenarios": rows}, f, indent=1)
    print("\n" + text, flush=True)
    if args.doc:
        doc = os.path.join(ROOT, "docs", "faults.md")
        with open(doc) as f:
            old = f.read()
        new = re.sub(r"<!-- report.*?<!-- /report -->", lambda _m: "<!-- report: written by tests/faults/faults.py "
                     f"--doc -->\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. " + text +
                     "<!-- /report -->", old, flags=re.S)
        with open(doc, "w") as f:
            f.write(new)
    if not args.keep:
        shutil.rmtree(h.work, ignore_errors=True)
    bad = [r for r in rows if r["result"] == "FAIL"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
