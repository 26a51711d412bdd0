"""The schema registry's Kafka store (`_schemas`) and the console's Kafka view against the SASL_SSL listener of
kafka-secure (tests/services: 9193, SASL PLAIN over TLS with the test CA), configured only through the `kafka:`
section, as ingest and process are in test_security.py. Before topic/'s sl_kafka_conf_build was the one builder of
librdkafka configurations, both made clients with bootstrap.servers alone and could not connect at all.

Positive: a schema registered through `sluice registry --store kafka` reads back by id and by subject, and lands in
the registry's own topic on the secured cluster; the console's /api/kafka shows a consumer group's lag per partition
equal to what the broker says (committed offsets set with confluent-kafka as admin). Negative: a wrong password makes
the registry exit non-zero at once with a message naming the broker, and the console report the same instead of an
empty view. No secret appears in any output.
"""
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Another checkout's launcher when the services run from there (a git worktree shares .cache with it).
RUN = os.environ.get("SLUICE_SERVICES_RUN", os.path.join(ROOT, "tests", "services", "run"))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
STATE = os.path.join(ROOT, ".cache", "services", "state")
PKI = os.path.join(STATE, "pki")
FAST = 30  # seconds: a refused login must end well within this (librdkafka alone retries for minutes)


@pytest.fixture(scope="module")
def services():
    out = subprocess.run([RUN, "up", "kafka-secure"], capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    env = {}
    with open(os.path.join(STATE, "secrets.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v
    return env


def admin_conf(services):
    return {"bootstrap.servers": "127.0.0.1:9192", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "admin", "sasl.password": services["KAFKA_SECURE_ADMIN_PASSWORD"]}


def kafka_section(password_env="KAFKA_PW"):
    return ("kafka:\n  brokers: 127.0.0.1:9193\n  security_protocol: sasl_ssl\n  sasl_mechanism: PLAIN\n"
            f"  sasl_username: sluice\n  sasl_password_env: {password_env}\n"
            f"  ssl_ca_location: {os.path.join(PKI, 'ca.pem')}\n")


def env_with(services, password=None):
    env = dict(os.environ)
    env["KAFKA_PW"] = password if password is not None else services["KAFKA_SECURE_PASSWORD"]
    return env


def check_no_secret(services, text):
    for k in ("KAFKA_SECURE_PASSWORD", "KAFKA_SECURE_ADMIN_PASSWORD"):
        assert services[k] not in text, f"secret {k} appears in sluice's output"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_up(url, proc, timeout=60):
    end = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode}: {proc.stdout.read()}")
            assert time.time() < end, f"{url} did not come up"
            time.sleep(0.1)


def registry_config(tmp_path, topic):
    cfg = tmp_path / "registry.yaml"
    cfg.write_text(kafka_section() + f"registry:\n  store: kafka\n  topic: {topic}\n  group: reg-{topic}\n")
    return str(cfg)


def test_registry_kafka_store_over_sasl_ssl(services, tmp_path):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    topic = "_schemas_sec_" + uuid.uuid4().hex[:8]
    cfg = registry_config(tmp_path, topic)
    port = free_port()
    reg = subprocess.Popen([SLUICE, "registry", "-c", cfg, "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env_with(services))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/subjects", reg)
        schema = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}]}
        # A single node elects itself leader through the group on the secured cluster before it takes writes.
        end = time.time() + 60
        while True:
            status, body = http("POST", base + "/subjects/users-value/versions", {"schema": json.dumps(schema)})
            if status == 200 or time.time() > end:
                break
            time.sleep(0.5)
        assert status == 200, body
        sid = body["id"]
        status, body = http("GET", f"{base}/schemas/ids/{sid}")
        assert status == 200 and json.loads(body["schema"]) == schema
        status, body = http("GET", base + "/subjects/users-value/versions/latest")
        assert status == 200 and body["id"] == sid and body["version"] == 1
    finally:
        reg.terminate()
        out = reg.communicate(timeout=30)[0]
    check_no_secret(services, out)
    # The record is in the registry's topic on the secured cluster, in Confluent's key format.
    md = AdminClient(admin_conf(services)).list_topics(timeout=15)
    assert topic in md.topics, f"{topic} not on kafka-secure: {out}"
    c = Consumer(dict(admin_conf(services), **{"group.id": "sec-reg-check", "auto.offset.reset": "earliest"}))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        keys = []
        end = time.time() + 20
        while time.time() < end and not any(b'"SCHEMA"' in k for k in keys):
            m = c.poll(1)
            if m is not None and not m.error() and m.key():
                keys.append(m.key())
        assert any(b'"SCHEMA"' in k and b"users-value" in k for k in keys), keys
    finally:
        c.close()


def test_registry_wrong_password_fails_fast(services, tmp_path):
    cfg = registry_config(tmp_path, "_schemas_badpw_" + uuid.uuid4().hex[:6])
    t0 = time.monotonic()
    out = subprocess.run([SLUICE, "registry", "-c", cfg, "--listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=120, env=env_with(services, "not-the-password"))
    elapsed = time.monotonic() - t0
    assert out.returncode != 0, out.stdout + out.stderr
    assert elapsed < FAST, f"took {elapsed:.1f} s"
    assert re.search(r"cannot authenticate to 127\.0\.0\.1:9193", out.stderr), out.stderr
    check_no_secret(services, out.stdout + out.stderr)


CONSOLE_CONFIG = """
data_dir: {data}
{kafka}
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: 10, page_size: 10 }}
    topic: {topic}
    partitions: 2
    key: id
    mapping:
      id: {{ path: login.uuid, type: uuid }}
    sink: {{ keyspace: ks, table: users }}
console:
  poll_interval: 200ms
"""


class Console:
    def __init__(self, cfg, env):
        self.p = subprocess.Popen([SLUICE, "console", "-c", cfg, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
        # Log lines (librdkafka's refusal among them) may come before the one with the address.
        seen = ""
        for _ in range(50):
            line = self.p.stdout.readline()
            seen += line
            m = re.search(r"http://([0-9.:]+)/", line)
            if m or not line:
                break
        if not m:
            self.p.kill()
            raise AssertionError("console did not start: " + seen + self.p.stdout.read())
        self.base = "http://" + m.group(1)

    def kafka(self):
        with urllib.request.urlopen(self.base + "/api/kafka", timeout=30) as r:
            return json.loads(r.read())

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=20)
        return self.p.stdout.read()


def test_console_shows_group_lag_over_sasl_ssl(services, tmp_path):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "sec_console_" + uuid.uuid4().hex[:8]
    group = "sluice-users"
    admin = AdminClient(admin_conf(services))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    p = Producer(admin_conf(services))
    for i in range(10):
        p.produce(topic, key=str(i), value=f"v{i}", partition=i % 2)
    assert p.flush(30) == 0
    # The group has processed 2 of partition 0's 5 records and 4 of partition 1's: lag 3 and 1.
    c = Consumer(dict(admin_conf(services), **{"group.id": group, "enable.auto.commit": False}))
    c.commit(offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 4)], asynchronous=False)
    c.close()

    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONSOLE_CONFIG.format(data=tmp_path / "data", kafka=kafka_section(), topic=topic))
    con = Console(str(cfg), env_with(services))
    try:
        end = time.time() + 60
        while True:
            k = con.kafka()
            g = [g for g in k["groups"] if g["topic"] == topic]
            lags = {pt["partition"]: (pt["committed"], pt["lag"]) for pt in g[0]["partitions"]} if g else {}
            if lags == {0: (2, 3), 1: (4, 1)} or time.time() > end:
                break
            time.sleep(0.3)
        assert k["ok"] is True and k["backend"] == "kafka", k
        assert lags == {0: (2, 3), 1: (4, 1)}, k
        assert g[0]["lag"] == 4
        assert any(b["port"] == 9193 for b in k["brokers"]), k["brokers"]
        t = [t for t in k["topics"] if t["name"] == topic]
        assert t and t[0]["messages"] == 10
    finally:
        out = con.close()
    check_no_secret(services, out)


def test_console_wrong_password_says_so(services, tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONSOLE_CONFIG.format(data=tmp_path / "data", kafka=kafka_section(), topic="sec_console_bad"))
    con = Console(str(cfg), env_with(services, "not-the-password"))
    t0 = time.monotonic()
    try:
        while True:
            k = con.kafka()
            if k["error"] or time.monotonic() - t0 > FAST:
                break
            time.sleep(0.3)
        assert k["ok"] is False, k
        assert re.search(r"cannot authenticate to 127\.0\.0\.1:9193", k["error"] or ""), k
        assert time.monotonic() - t0 < FAST
    finally:
        out = con.close()
    check_no_secret(services, out)
