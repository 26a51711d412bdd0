"""`sluice console` beside pipelines that run in other processes: /metrics parses with Prometheus' own text parser and
its lag (kafka_exporter's names) equals what the log reports — the embedded log's SQLite tables, and the real Kafka's
watermarks and committed offsets through confluent-kafka; the table row gauge equals the table; auth answers 401 on
every page and API; oversize and malformed requests get 4xx and the server stays up; static assets come gzip'd with
ETags."""
import base64
import gzip
import json
import os
import re
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

CONFIG = """
data_dir: {data}
{kafka}
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: {count}, page_size: 100 }}
    topic: {topic}
    partitions: 3
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
      email:      email
    sink: {{ keyspace: ks, table: users }}
console:
  poll_interval: 200ms
  max_body: 4KiB
"""


def write_config(tmp_path, count=1500, topic="users_created", kafka=""):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=count, topic=topic, kafka=kafka))
    return str(cfg)


def sluice(*args, env=None):
    return subprocess.run([SLUICE, *args], capture_output=True, text=True, timeout=300, env=env)


class Console:
    def __init__(self, cfg, env=None, listen="127.0.0.1:0"):
        self.p = subprocess.Popen([SLUICE, "console", "-c", cfg, "--listen", listen], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
        line = self.p.stdout.readline()
        m = re.search(r"http://([0-9.:]+)/", line)
        if not m:
            self.p.kill()
            raise AssertionError("console did not start: " + line + self.p.stdout.read())
        self.addr = m.group(1)
        self.base = "http://" + self.addr

    def get(self, path, headers=None, method="GET", data=None):
        req = urllib.request.Request(self.base + path, headers=headers or {}, method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def raw(self, payload):
        """Sends raw bytes, returns the status code of the answer (0 when the server just closed)."""
        host, port = self.addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(payload)
            data = b""
            try:
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return int(m.group(1)) if m else 0

    def close(self):
        self.p.terminate()
        assert self.p.wait(timeout=20) == 0


def metrics(con, headers=None):
    status, _, body = con.get("/metrics", headers)
    assert status == 200
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def lag_by_partition(m, group, topic):
    return {int(dict(k[1])["partition"]): v for k, v in m.items()
            if k[0] == "kafka_consumergroup_lag" and dict(k[1]).get("consumergroup") == group
            and dict(k[1]).get("topic") == topic}


def wait_for(fn, what, timeout=30):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def log_lag(data_dir, group, topic):
    db = sqlite3.connect(f"file:{data_dir}/log.db?mode=ro", uri=True)
    parts = db.execute("SELECT partitions FROM topics WHERE name=?", (topic,)).fetchone()[0]
    out = {}
    for p in range(parts):
        high = db.execute("SELECT COALESCE(MAX(offset)+1, 0) FROM messages WHERE topic=? AND partition=?",
                          (topic, p)).fetchone()[0]
        row = db.execute("SELECT next_offset FROM group_offsets WHERE grp=? AND topic=? AND partition=?",
                         (group, topic, p)).fetchone()
        out[p] = high - (row[0] if row else 0)
    db.close()
    return out


def test_metrics_lag_equals_the_embedded_log(tmp_path):
    cfg = write_config(tmp_path)
    r = sluice("ingest", "-c", cfg, "-q")
    assert r.returncode == 0, r.stderr
    con = Console(cfg)
    try:
        # Nothing processed yet: every record in the topic is lag.
        expect = log_lag(tmp_path / "data", "sluice-users", "users_created")
        assert sum(expect.values()) == 1500
        wait_for(lambda: lag_by_partition(metrics(con), "sluice-users", "users_created") == expect, "lag = log")
        m = metrics(con)
        for p, v in expect.items():
            assert m[("kafka_topic_partition_current_offset", (("partition", str(p)), ("topic", "users_created")))] == v
        r = sluice("process", "-c", cfg, "--drain", "-q")
        assert r.returncode == 0, r.stderr
        expect = log_lag(tmp_path / "data", "sluice-users", "users_created")
        assert set(expect.values()) == {0}
        wait_for(lambda: lag_by_partition(metrics(con), "sluice-users", "users_created") == expect, "lag 0")
        m = metrics(con)
        rows = sqlite3.connect(tmp_path / "data" / "ks.db").execute("SELECT COUNT(*) FROM users").fetchone()[0]
        assert m[("sluice_sink_table_rows", (("pipeline", "users"),))] == rows == 1500
        assert m[("kafka_consumergroup_lag_sum", (("consumergroup", "sluice-users"), ("topic", "users_created")))] == 0
        status, _, body = con.get("/health")
        assert status == 200 and b'"status":"ok"' in body
        status, _, body = con.get("/ready")
        assert status == 200 and b'"ready":true' in body
    finally:
        con.close()


def test_auth_on_every_page_and_api(tmp_path):
    cfg = write_config(tmp_path)
    env = dict(os.environ, SLUICE_CONSOLE_TOKEN="t0ken-" + uuid.uuid4().hex, SLUICE_CONSOLE_PASSWORD="pw-secret")
    con = Console(cfg, env=env)
    try:
        paths = ["/", "/index.html", "/app.js", "/style.css", "/metrics", "/api/overview",
                 "/api/history", "/api/kafka", "/api/kafka/messages?topic=users_created", "/api/data",
                 "/api/data/rows", "/api/alerts", "/api/schemas/subjects", "/api/dags", "/no/such/page"]
        bad = {"Authorization": "Bearer wrong"}
        basic_bad = {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}
        for p in paths:
            for h in (None, bad, basic_bad):
                status, headers, _ = con.get(p, h)
                assert status == 401, (p, h, status)
                assert "WWW-Authenticate" in headers
        # Probes need no credentials, and learn the verdict alone.
        for p, keys in (("/health", {"status"}), ("/ready", {"ready"})):
            status, _, body = con.get(p)
            assert status in (200, 503) and set(json.loads(body)) == keys, (p, status, body)
        good = {"Authorization": "Bearer " + env["SLUICE_CONSOLE_TOKEN"]}
        basic = {"Authorization": "Basic " + base64.b64encode(b"admin:pw-secret").decode()}
        for h in (good, basic):
            assert con.get("/api/overview", h)[0] == 200
            assert con.get("/", h)[0] == 200
        # The secret never reaches the log.
        con.close()
        out = con.p.stdout.read()
        assert env["SLUICE_CONSOLE_TOKEN"] not in out and "pw-secret" not in out
    finally:
        if con.p.poll() is None:
            con.close()


def test_beyond_loopback_needs_auth(tmp_path):
    cfg = write_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_CONSOLE_")}
    r = subprocess.run([SLUICE, "console", "-c", cfg, "--listen", "0.0.0.0:0"], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 1
    assert "needs auth" in r.stderr


def test_oversize_and_malformed_requests_get_4xx(tmp_path):
    cfg = write_config(tmp_path)
    con = Console(cfg)
    try:
        assert con.get("/" + "a" * 9000)[0] == 414                           # console.max_uri 8KiB
        assert con.get("/api/overview", method="POST", data=b"x" * 10000)[0] == 413   # console.max_body 4KiB
        assert con.get("/api/overview", {"X-Big": "y" * 70000})[0] in (400, 413, 431)
        assert con.get("/a/%2e%2e/b")[0] == 400
        assert con.get("/api/overview%00")[0] == 400
        assert con.get("/api/kafka/messages?topic=users_created&limit=100000")[0] == 400
        assert con.get("/api/data/rows?page=x")[0] == 400
        assert con.get("/api/history?since=%zz")[0] == 400
        assert con.get("/api/overview", method="DELETE")[0] == 405
        assert con.raw(b"GARBAGE\r\n\r\n") in (0, 400, 501)
        assert con.raw(b"GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n") in (0, 413)
        assert con.raw(b"GET " + b"/x" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n") in (0, 400, 414, 431)
        assert con.raw(b"\x00\xff\xfe garbage \r\n\r\n") in (0, 400)
        assert con.get("/health")[0] == 200 and con.p.poll() is None
    finally:
        con.close()


def test_static_assets_gzip_and_etag(tmp_path):
    cfg = write_config(tmp_path)
    con = Console(cfg)
    try:
        status, h, body = con.get("/app.js", {"Accept-Encoding": "gzip"})
        assert status == 200 and h.get("Content-Encoding") == "gzip"
        js = gzip.decompress(body)
        assert b"sluice console" in js
        etag = h["ETag"]
        status, h2, body = con.get("/app.js", {"If-None-Match": etag})
        assert status == 304 and body == b""
        status, h3, body = con.get("/app.js")
        assert status == 200 and "Content-Encoding" not in h3 and body == js
        status, h4, _ = con.get("/")
        assert "default-src 'self'" in h4["Content-Security-Policy"]
    finally:
        con.close()


def kafka_up():
    try:
        socket.create_connection(("127.0.0.1", 9092), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up)")
def test_metrics_lag_equals_kafka(tmp_path):
    from confluent_kafka import Consumer, TopicPartition

    topic = "console_test_" + uuid.uuid4().hex[:8]
    cfg = write_config(tmp_path, count=900, topic=topic, kafka="kafka:\n  brokers: 127.0.0.1:9092")
    r = sluice("ingest", "-c", cfg, "-q")
    assert r.returncode == 0, r.stderr
    con = Console(cfg)
    group = "sluice-users"

    def kafka_lag():
        c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": group, "enable.auto.commit": False})
        try:
            parts = [TopicPartition(topic, p) for p in range(3)]
            committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
            out = {}
            for p in range(3):
                low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                out[p] = high - (committed[p] if committed[p] >= 0 else low)
            return out
        finally:
            c.close()

    try:
        before = kafka_lag()
        assert sum(before.values()) == 900
        wait_for(lambda: lag_by_partition(metrics(con), group, topic) == before, "lag = Kafka's", timeout=60)
        # Part of the way: stop after some records, then compare again with Kafka's own numbers.
        r = sluice("process", "-c", cfg, "--drain", "-q")
        assert r.returncode == 0, r.stderr
        after = kafka_lag()
        assert set(after.values()) == {0}
        wait_for(lambda: lag_by_partition(metrics(con), group, topic) == after, "lag 0 = Kafka's", timeout=60)
        status, _, body = con.get("/api/kafka")
        assert status == 200 and topic.encode() in body and b'"brokers":[{' in body
    finally:
        con.close()


def cassandra_up():
    try:
        socket.create_connection(("127.0.0.1", 9042), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not cassandra_up(), reason="Cassandra is not running on 127.0.0.1:9042 (tests/services/run up)")
def test_data_pages_through_cassandra(tmp_path):
    """The data page on a Cassandra sink: pages of `size` rows following the API's next_token (the CQL paging
    state) until it is null cover every row exactly once; a token the table did not give is a 400."""
    from cassandra.cluster import Cluster

    ks = "console_" + uuid.uuid4().hex[:8]
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=230, topic="users_created", kafka="")
                   .replace("keyspace: ks", f"keyspace: {ks}")
                   + "cassandra:\n  contact_points: [127.0.0.1]\n")
    cfg = str(cfg)
    r = sluice("up", "--until-done", "-c", cfg, "-q")
    assert r.returncode == 0, r.stderr
    cluster = Cluster(["127.0.0.1"])
    session = cluster.connect()
    try:
        want = {str(row.id) for row in session.execute(f"SELECT id FROM {ks}.users")}
        assert len(want) == 230
        con = Console(cfg)
        try:
            status, _, body = con.get("/api/data")
            assert status == 200 and b'"sink":"cassandra"' in body
            seen, token, pages = [], None, 0
            while True:
                status, _, body = con.get("/api/data/rows?pipeline=users&size=50" + (f"&token={token}" if token else ""))
                assert status == 200, body
                page = json.loads(body)
                assert page["order"] == "token" and page["table"] == f"{ks}.users"
                idx = page["columns"].index("id")
                assert len(page["rows"]) <= 50
                seen += [row[idx] for row in page["rows"]]
                pages += 1
                token = page["next_token"]
                if not token:
                    break
                assert re.fullmatch(r"[0-9a-f]+", token)
            assert pages == 5 and len(seen) == len(set(seen)) == 230 and set(seen) == want
            # A forged token reaches Cassandra, which refuses it: the client's mistake, not the server's.
            assert con.get("/api/data/rows?pipeline=users&token=00ff00ff")[0] == 400
            assert con.get("/api/data/rows?pipeline=users&token=xyz")[0] == 400
            assert con.get("/api/data/rows?pipeline=users&size=501")[0] == 400
        finally:
            con.close()
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
        cluster.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, timeout=15):
    end = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            assert time.time() < end and proc.poll() is None, f"{url} did not come up"
            time.sleep(0.05)


def browse(con, topic, q="", limit=50):
    status, _, body = con.get(f"/api/kafka/messages?topic={topic}&limit={limit}&q={urllib.parse.quote(q)}")
    assert status == 200, body
    return json.loads(body)["messages"]


AVRO_PIPELINE = """
data_dir: {data}
{kafka}
pipelines:
  users:
    source: {{ type: generate, seed: 11, count: 120, page_size: 40 }}
    topic: {topic}
    partitions: 1
    format: avro
{registry_url}    key: id
    mapping:
      id:    {{ path: login.uuid, type: uuid }}
      email: email
      age:   {{ path: dob.age, type: int }}
    sink: {{ keyspace: ks, table: users }}
{console}"""


def test_message_browser_decodes_avro_embedded(tmp_path):
    """format: avro on the embedded default: the console, alone, decodes the records with the schema the pipelines
    registered (the registry store in data_dir), and its search filter applies to the decoded JSON."""
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(AVRO_PIPELINE.format(data=tmp_path / "data", kafka="", topic="users_avro", registry_url="",
                                        console="console:\n  poll_interval: 200ms\n"))
    r = sluice("ingest", "-c", str(cfg), "-q")
    assert r.returncode == 0, r.stderr
    con = Console(str(cfg))
    try:
        msgs = browse(con, "users_avro", limit=10)
        assert len(msgs) == 10
        for m in msgs:
            v = json.loads(m["value"])
            assert m["value_schema_id"] >= 1 and set(v) == {"id", "email", "age"} and "@" in v["email"]
        # The raw bytes hold the email too (Avro strings are plain), but not the JSON punctuation around it.
        email = json.loads(msgs[3]["value"])["email"]
        hits = browse(con, "users_avro", q=f'"email":"{email}"')
        assert [json.loads(m["value"])["email"] for m in hits] == [email]
        assert browse(con, "users_avro", q='"age":') and not browse(con, "users_avro", q="no-such-text-anywhere")
    finally:
        con.close()


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up)")
def test_message_browser_decodes_avro_from_confluent_serializer(tmp_path):
    """Records that Confluent's AvroSerializer wrote to the real Kafka through a `sluice registry` in another process
    (nested records, arrays, maps, enums, unions, bytes): the console, given console.registry.url, shows each value as
    the JSON of the record the producer had, and finds one by text that is only in the decoded form."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    port = free_port()
    reg = subprocess.Popen([SLUICE, "registry", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "reg")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    topic = "console_avro_" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
    try:
        wait_http(url + "/subjects", reg)
        writer = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "id", "type": "long"},
            {"name": "who", "type": {"type": "record", "name": "Who", "fields": [
                {"name": "name", "type": "string"}, {"name": "vip", "type": "boolean"}]}},
            {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
                {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": "double"}]}}},
            {"name": "tags", "type": {"type": "map", "values": "string"}},
            {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID", "SHIPPED"]}},
            {"name": "note", "type": ["null", "string"], "default": None},
            {"name": "blob", "type": "bytes"}]}
        ser = AvroSerializer(SchemaRegistryClient({"url": url}), json.dumps(writer))
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        p = Producer({"bootstrap.servers": "127.0.0.1:9092"})
        sent = []
        for i in range(20):
            rec = {"id": i, "who": {"name": f"buyer-{i}", "vip": i % 3 == 0},
                   "lines": [{"sku": f"sku-{i}-{j}", "qty": j + 1, "price": 2.5 * j} for j in range(i % 3)],
                   "tags": {"src": "web"} if i % 2 else {}, "state": ["NEW", "PAID", "SHIPPED"][i % 3],
                   "note": None if i % 4 else f"note {i}", "blob": b"AB"}
            sent.append(rec)
            p.produce(topic, ser(rec, SerializationContext(topic, MessageField.VALUE)))
        assert p.flush(30) == 0
        cfg = tmp_path / "sluice.yaml"
        cfg.write_text(CONFIG.format(data=tmp_path / "data", count=1, topic=topic, kafka="kafka:\n  brokers: 127.0.0.1:9092")
                       + f"  registry:\n    url: {url}\n")
        con = Console(str(cfg))
        try:
            msgs = wait_for(lambda: browse(con, topic), "the topic in the console", timeout=30)
            assert [json.loads(m["value"]) for m in msgs] == [dict(r, blob="AB") for r in sent]
            assert {m["value_schema_id"] for m in msgs} == {1}
            hits = browse(con, topic, q='"state":"SHIPPED"')
            assert [json.loads(m["value"])["id"] for m in hits] == [i for i in range(20) if i % 3 == 2]
        finally:
            con.close()
    finally:
        reg.terminate()
        reg.wait(timeout=15)
        admin.delete_topics([topic])


ROLES = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 3, count: 30, page_size: 10 }}
    topic: users_created
    key: id
    mapping:
      id:    {{ path: login.uuid, type: uuid }}
      email: email
    sink: {{ keyspace: ks, table: users }}
dags:
  hello:
    tasks:
      first:  {{ kind: shell, command: "echo first $SLUICE_CONF" }}
      second: {{ kind: shell, command: "echo second", depends_on: [first] }}
"""


def test_standalone_console_reaches_registry_and_scheduler_elsewhere(tmp_path):
    """`sluice registry` and `sluice scheduler --api` in their own processes, and a separate `sluice console` that
    names them (console.registry.url, console.scheduler.url): the Schemas page's API lists the subjects with their
    versions and levels, the registry's REST API answers through the console, the DAGs' API lists the DAG with its
    task graph, and a run triggered through the console runs to success in the scheduler."""
    reg_port, sched_port = free_port(), free_port()
    roles_cfg = tmp_path / "roles.yaml"
    roles_cfg.write_text(ROLES.format(data=tmp_path / "roles"))
    procs = [subprocess.Popen([SLUICE, "registry", "--listen", f"127.0.0.1:{reg_port}", "--data-dir",
                               str(tmp_path / "reg")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([SLUICE, "scheduler", "-c", str(roles_cfg), "--api", f"127.0.0.1:{sched_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    con = None
    try:
        wait_http(f"http://127.0.0.1:{reg_port}/subjects", procs[0])
        wait_http(f"http://127.0.0.1:{sched_port}/api/v1/dags", procs[1])
        schema = {"type": "record", "name": "U", "fields": [{"name": "id", "type": "string"}]}
        for s in (schema, dict(schema, fields=schema["fields"] + [{"name": "n", "type": ["null", "int"], "default": None}])):
            req = urllib.request.Request(f"http://127.0.0.1:{reg_port}/subjects/users%20value/versions", method="POST",
                                         data=json.dumps({"schema": json.dumps(s)}).encode(),
                                         headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
            urllib.request.urlopen(req, timeout=10).read()
        cfg = tmp_path / "console.yaml"
        cfg.write_text(ROLES.format(data=tmp_path / "console").split("dags:")[0]
                       + f"console:\n  registry: {{ url: http://127.0.0.1:{reg_port} }}\n"
                       + f"  scheduler: {{ url: http://127.0.0.1:{sched_port}/api/v1 }}\n")
        con = Console(str(cfg))
        status, _, body = con.get("/api/console/schemas")
        assert status == 200, body
        assert json.loads(body) == {"compatibility": "BACKWARD", "total": 1, "offset": 0, "limit": 100,
                                    "subjects": [{"subject": "users value", "versions": [1, 2], "compatibility": None}]}
        status, h, body = con.get("/api/schemas/subjects/users%20value/versions/2")
        assert status == 200 and json.loads(body)["version"] == 2 and "schemaregistry" in h["Content-Type"]
        assert con.get("/api/schemas/subjects/nope/versions")[0] == 404
        status, _, body = con.get("/api/dags")
        assert status == 200 and [d["dag_id"] for d in json.loads(body)["dags"]] == ["hello"]
        status, _, body = con.get("/api/dags/hello/tasks")
        tasks = {t["task_id"]: t for t in json.loads(body)["tasks"]}
        assert status == 200 and tasks["first"]["downstream_task_ids"] == ["second"]
        # A write from another origin is refused before it reaches the scheduler; one from no browser goes through.
        assert con.get("/api/dags/hello/dagRuns", method="POST", data=b'{"conf": {}}',
                       headers={"Origin": "http://elsewhere.example", "Content-Type": "application/json"})[0] == 403
        status, _, body = con.get("/api/dags/hello/dagRuns", method="POST", data=b'{"conf": {"n": 1}}',
                                  headers={"Content-Type": "application/json"})
        assert status == 200, body
        run_id = json.loads(body)["dag_run_id"]

        def state():
            st, _, b = con.get(f"/api/dags/hello/dagRuns/{urllib.parse.quote(run_id)}")
            return st == 200 and json.loads(b)["state"] == "success"
        wait_for(state, "the run triggered through the console to succeed", timeout=60)
        st, _, b = con.get(f"/api/dags/hello/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/first/logs/1")
        assert st == 200 and 'first {"n":1}' in json.loads(b)["content"]
    finally:
        if con:
            con.close()
        for p in procs:
            p.terminate()
            p.wait(timeout=20)


class _AuthStub:
    """A registry stand-in that wants a bearer token: records what each request carried."""

    def __init__(self, token):
        import http.server
        import threading
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.headers.get("Authorization"))
                ok = self.headers.get("Authorization") == "Bearer " + token
                body = b'["stub-subject"]' if ok else b'{"error_code":401,"message":"Unauthorized"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def test_console_sends_the_remote_registry_its_credentials(tmp_path):
    """console.registry sends the bearer token from $SLUICE_REGISTRY_TOKEN (the variable the registry's listener
    reads), never the console's own, and never logs it; without it the registry's 401 comes through as is."""
    token = "reg-" + uuid.uuid4().hex
    stub = _AuthStub(token)
    try:
        cfg = write_config(tmp_path)
        with open(cfg, "a") as f:
            f.write(f"  registry: {{ url: {stub.url} }}\n")
        env = dict(os.environ, SLUICE_REGISTRY_TOKEN=token, SLUICE_CONSOLE_TOKEN="console-own")
        con = Console(cfg, env=env)
        try:
            assert con.get("/api/schemas/subjects")[0] == 401                      # the console's own auth first
            status, _, body = con.get("/api/schemas/subjects", {"Authorization": "Bearer console-own"})
            assert status == 200 and json.loads(body) == ["stub-subject"]
            assert stub.seen == ["Bearer " + token]
        finally:
            con.close()
        assert token not in con.p.stdout.read()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        con = Console(cfg, env=env)
        try:
            assert con.get("/api/schemas/subjects")[0] == 401 and stub.seen[-1] is None
        finally:
            con.close()
    finally:
        stub.srv.shutdown()
