"""Helpers shared by the Python end-to-end tests (test_ingest_kafka.py, test_process_cassandra.py): the test API
server (tests/apiserver/apiserver.py) and a fault-injecting proxy in front of it, configs for the real Kafka and
Cassandra, running `sluice` as a child process, RSS sampling from /proc, consuming a topic back, reading a table,
and the seed's format_data computed here in Python, independently of sluice's mapping code.

Knobs (environment):
  SLUICE        the binary under test (default build/sluice; the suite uses build-asan/sluice)
  SL_E2E_SCALE  "ci" (default: small N, the whole file runs in minutes under ASan) or "full" (the issue's N)
"""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from socketserver import ThreadingTCPServer, StreamRequestHandler
from urllib.parse import parse_qs, urlsplit

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLUICE = os.path.abspath(os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice")))
APISERVER = os.path.join(ROOT, "tests", "apiserver", "apiserver.py")
SERVICES = os.path.join(ROOT, "tests", "services", "run")
BROKERS = "127.0.0.1:9092"
CASSANDRA = "127.0.0.1"
FULL = os.environ.get("SL_E2E_SCALE", "ci") == "full"
RUN_ID = f"{os.getpid()}_{int(time.time()) % 100000}"


def is_asan(binary=SLUICE):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


ASAN = is_asan()
# ASan's shadow memory and quarantine add to RSS in proportion to what the program allocates; the bounds the tests
# state are for the release build plus this slack under ASan.
ASAN_RSS_SLACK_MIB = 256 if ASAN else 0


def uniq(prefix):
    return f"{prefix}_{RUN_ID}_{random.randrange(1 << 30):x}"


# ---- the seed's format_data, in Python --------------------------------------------------------------------------

def format_data(r):
    loc = r["location"]
    return {
        "id": str(uuid.UUID(r["login"]["uuid"])),
        "first_name": r["name"]["first"],
        "last_name": r["name"]["last"],
        "gender": r["gender"],
        "address": f"{loc['street']['number']} {loc['street']['name']}, {loc['city']}, {loc['state']}, "
                   f"{loc['country']}",
        "post_code": str(loc["postcode"]),
        "email": r["email"],
        "username": r["login"]["username"],
        "dob": r["dob"]["date"],
        "registered_date": r["registered"]["date"],
        "phone": r["phone"],
        "picture": r["picture"]["medium"],
    }


COLUMNS = ["id", "first_name", "last_name", "gender", "address", "post_code", "email", "username", "dob",
           "registered_date", "phone", "picture"]

MAPPING_YAML = """    key: id
    mapping:
      id:              { path: login.uuid, type: uuid }
      first_name:      name.first
      last_name:       name.last
      gender:          gender
      address:         { template: "{location.street.number} {location.street.name}, {location.city}, {location.state}, {location.country}" }
      post_code:       { path: location.postcode, type: text }
      email:           email
      username:        login.username
      dob:             dob.date
      registered_date: registered.date
      phone:           phone
      picture:         picture.medium
"""


def seed_mapping_matches_example():
    """The mapping above must be the seed's (examples/seed/sluice.yaml), so the tests test the shipped pipeline."""
    with open(os.path.join(ROOT, "examples", "seed", "sluice.yaml")) as f:
        seed = f.read()
    for line in MAPPING_YAML.splitlines():
        if line.strip() and line.strip() not in seed:
            return line
    return None


# ---- the API server and a per-page fault proxy ---------------------------------------------------------------------

class ApiServer:
    def __init__(self, total, seed="sluice", extra=()):
        self.total, self.seed = total, seed
        self.proc = subprocess.Popen([sys.executable, APISERVER, "--port", "0", "--total", str(total), "--seed", seed,
                                      *extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), f"apiserver did not start: {line!r}"
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def records(self, lo=0, hi=None):
        hi = self.total if hi is None else hi
        out = []
        for a in range(lo, hi, 20000):
            with urllib.request.urlopen(f"{self.base}/_records?from={a}&to={min(hi, a + 20000)}", timeout=120) as r:
                out.extend(json.load(r))
        return out

    def stats(self):
        with urllib.request.urlopen(f"{self.base}/_stats", timeout=10) as r:
            return json.load(r)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class FaultProxy:
    """Forwards /api requests to the apiserver, adding fault parameters chosen by page number, so one run meets each
    kind of trouble on a page of its own (the apiserver's faults apply per URL). Raw bytes are relayed back, so a
    truncated body or a slow answer reaches the client as the apiserver sends it. One request per connection.
    on_request(page) runs before a request goes upstream (it may wait: pacing), on_served(page) once its answer was
    relayed in full."""

    def __init__(self, upstream_port, faults, on_request=None, on_served=None):
        self.faults = faults  # page number -> "k=v&k=v"
        proxy = self

        class H(StreamRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                lines = head.split(b"\r\n")
                method, target, ver = lines[0].split(b" ")
                q = parse_qs(urlsplit(target.decode()).query)
                page = int(q.get("page", ["1"])[0])
                if on_request:
                    on_request(page)
                extra = proxy.faults.get(page)
                if extra:
                    target += (b"&" if b"?" in target else b"?") + extra.encode()
                hdrs = [l for l in lines[1:] if l and not l.lower().startswith(b"connection:")]
                req = b" ".join([method, target, ver]) + b"\r\n" + b"\r\n".join(hdrs) + \
                    b"\r\nConnection: close\r\n\r\n"
                up = socket.create_connection(("127.0.0.1", upstream_port))
                try:
                    up.sendall(req)
                    while True:
                        data = up.recv(65536)
                        if not data:
                            break
                        self.request.sendall(data)
                    if on_served:
                        on_served(page)
                except OSError:
                    pass
                finally:
                    up.close()

        class S(ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- configs and running sluice -----------------------------------------------------------------------------------

def write_config(path, *, data_dir, topic, keyspace, source_yaml, partitions=3, group=None, batch_yaml="",
                 kafka_extra="", cassandra_extra="", max_record_bytes=None, primary_key="[id]"):
    group_line = f"    group: {group}\n" if group else ""
    mrb = f"    max_record_bytes: {max_record_bytes}\n" if max_record_bytes else ""
    text = (f"data_dir: {data_dir}\n"
            f"pipelines:\n"
            f"  users:\n"
            f"    source:\n{source_yaml}"
            f"    topic: {topic}\n"
            f"    partitions: {partitions}\n"
            f"{group_line}{mrb}"
            f"{MAPPING_YAML}"
            f"    sink:\n"
            f"      keyspace: {keyspace}\n"
            f"      table: created_users\n"
            f"      primary_key: {primary_key}\n"
            f"{batch_yaml}"
            f"kafka:\n  brokers: {BROKERS}\n{kafka_extra}"
            f"cassandra:\n  contact_points: [{CASSANDRA}]\n{cassandra_extra}")
    with open(path, "w") as f:
        f.write(text)
    return path


def http_source_yaml(port, page_size, *, timeout="30s", max_response="16MiB", rate=None, max_retries=5,
                     backoff="200ms"):
    y = (f"      type: http\n"
         f"      url: \"http://127.0.0.1:{port}/api?page={{page}}&results={page_size}\"\n"
         f"      pagination: {{ type: page, start: 1 }}\n"
         f"      timeout: {timeout}\n"
         f"      max_response: {max_response}\n"
         f"      max_retries: {max_retries}\n"
         f"      backoff: {backoff}\n"
         f"      backoff_max: 2s\n")
    if rate:
        y += f"      rate_limit: {{ per_second: {rate}, burst: 1 }}\n"
    return y


class Proc:
    """A sluice child process with its log in a file and its RSS sampled every 100 ms."""

    def __init__(self, args, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if env:
            e.update(env)
        self.p = subprocess.Popen([SLUICE, *args], stdout=self.log, stderr=subprocess.STDOUT, env=e, cwd=ROOT)
        self.pid = self.p.pid
        self.peak_rss_kib = 0
        self.samples = []
        self._stop = False
        self.t = threading.Thread(target=self._sample, daemon=True)
        self.t.start()

    def _sample(self):
        while not self._stop:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            kib = int(line.split()[1])
                            self.samples.append((time.time(), kib))
                            self.peak_rss_kib = max(self.peak_rss_kib, kib)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
            if self.p.poll() is not None:
                return
            time.sleep(0.1)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        finally:
            self._stop = True
            self.log.flush()

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        self.p.wait(10)
        self._stop = True

    def alive(self):
        return self.p.poll() is None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def ensure_dead(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self._stop = True
        self.log.close()


def run(args, log_path, timeout, env=None):
    p = Proc(args, log_path, env)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.ensure_dead()
        raise AssertionError(f"sluice {' '.join(args)} did not finish in {timeout} s; log:\n{p.output()[-3000:]}")
    p.ensure_dead()
    return rc, p


def saved_cursor(data_dir, pipeline="users"):
    path = os.path.join(data_dir, "log.db")
    if not os.path.exists(path):
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT value FROM cursors WHERE name=?", (f"ingest:{pipeline}",)).fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


# ---- Kafka ------------------------------------------------------------------------------------------------------

def consume_all(topic, timeout=60, expect=None):
    """Every message of the topic from the beginning: list of (key, value, headers, partition, offset). Reads up to
    the high watermarks taken at the start (or until `expect` messages arrived, whichever is later)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": uniq("e2e_reader"), "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": False})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions)
        highs = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        got, pos = [], {p: 0 for p in parts}
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(pos[p] >= highs[p] for p in parts) and (expect is None or len(got) >= expect):
                break
            for m in c.consume(1000, 1.0):
                if m.error():
                    continue
                got.append((m.key(), m.value(), m.headers() or [], m.partition(), m.offset()))
                pos[m.partition()] = m.offset() + 1
        return got
    finally:
        c.close()


def topic_count(topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": uniq("e2e_wm")})
    try:
        md = c.list_topics(topic, timeout=10)
        if topic not in md.topics or md.topics[topic].error:
            return 0
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] -
                   c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in md.topics[topic].partitions)
    finally:
        c.close()


def create_topic(topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": BROKERS})
    for _, f in a.create_topics([NewTopic(topic, partitions, 1)]).items():
        f.result(30)


def produce(topic, items, partition=None):
    """items: (key bytes|None, value bytes). Waits for every delivery report."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BROKERS, "enable.idempotence": True, "linger.ms": 5})
    errors = []
    for k, v in items:
        kw = {} if partition is None else {"partition": partition}
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=lambda e, m: e and errors.append(e), **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0, "test producer could not flush"
    assert not errors, errors


def delete_topics(*topics):
    try:
        from confluent_kafka.admin import AdminClient
        AdminClient({"bootstrap.servers": BROKERS}).delete_topics(list(topics), operation_timeout=10)
    except Exception:
        pass


def headers_dict(h):
    return {k: (v.decode(errors="replace") if v is not None else None) for k, v in h}


# ---- Cassandra --------------------------------------------------------------------------------------------------

_cluster = _session = None
_session_lock = threading.Lock()


def cql_session():
    """One driver session for the test process (a session per call would open a pool per call)."""
    global _cluster, _session
    from cassandra.cluster import Cluster
    from cassandra.policies import ConstantReconnectionPolicy
    with _session_lock:
        if _session is None:
            # a constant 1 s, and no limit on attempts (the policy's default gives up after 64): after a test
            # stopped Cassandra for a minute or more, the driver must find the node again as soon as it is back
            _cluster = Cluster([CASSANDRA], connect_timeout=20, control_connection_timeout=20,
                               reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None))
            _session = _cluster.connect()
        return _session


def table_rows(keyspace, table="created_users"):
    from cassandra.query import SimpleStatement
    s = cql_session()
    rows = {}
    for r in s.execute(SimpleStatement(f"SELECT * FROM {keyspace}.{table}", fetch_size=5000), timeout=120):
        d = {c: getattr(r, c) for c in COLUMNS}
        d["id"] = str(d["id"])
        rows[d["id"]] = d
    return rows


def table_count(keyspace, table="created_users", ranges=1):
    """count(*); with ranges > 1, summed over that many token ranges, so that a large table (a whole-table count(*)
    passes the server's range timeout at around a million rows on this machine) is counted too."""
    s = cql_session()
    if ranges <= 1:
        return s.execute(f"SELECT count(*) FROM {keyspace}.{table}", timeout=120).one()[0]
    lo, span = -(1 << 63), (1 << 64) // ranges
    total = 0
    for i in range(ranges):
        a = lo + i * span
        b = (1 << 63) - 1 if i == ranges - 1 else a + span
        q = f"SELECT count(*) FROM {keyspace}.{table} WHERE token(id) {'>=' if i == 0 else '>'} {a} AND token(id) <= {b}"
        total += s.execute(q, timeout=120).one()[0]
    return total


def drop_keyspace(ks):
    try:
        cql_session().execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
    except Exception:
        pass


# ---- services ----------------------------------------------------------------------------------------------------

def service(cmd, name, timeout=300, attempts=None):
    """tests/services/run CMD NAME. A start is tried up to 5 times, 10 s apart: a test that stopped a shared service
    must bring it back even if the launcher is briefly unusable (another engineer editing it, a port in TIME_WAIT)."""
    attempts = attempts or (5 if cmd == "start" else 1)
    for i in range(attempts):
        r = subprocess.run([SERVICES, cmd, name], capture_output=True, text=True, timeout=timeout)
        if r.returncode == 0:
            return
        if i + 1 < attempts:
            time.sleep(10)
    raise AssertionError(f"tests/services/run {cmd} {name}: {r.stdout}{r.stderr}")


def service_ready(name):
    r = subprocess.run([SERVICES, "status"], capture_output=True, text=True, timeout=30)
    return any(l.split()[:2] == [name, "ready"] for l in r.stdout.splitlines())


def compare(expected_by_id, got_by_id, what):
    """Asserts two id -> row dicts are equal, naming the first differences."""
    missing = [k for k in expected_by_id if k not in got_by_id]
    extra = [k for k in got_by_id if k not in expected_by_id]
    wrong = [(k, c, expected_by_id[k][c], got_by_id[k].get(c)) for k in expected_by_id if k in got_by_id
             for c in COLUMNS if expected_by_id[k][c] != got_by_id[k].get(c)]
    assert not missing and not extra and not wrong, (
        f"{what}: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]}), "
        f"{len(wrong)} wrong columns (e.g. {wrong[:3]})")


def committed(group, topic, per_partition=False):
    """Sum of the group's committed offsets on the topic (0 for partitions without one), or partition -> offset."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        got = {tp.partition: max(tp.offset, 0) for tp in c.committed(tps, timeout=10)}
        return got if per_partition else sum(got.values())
    finally:
        c.close()
