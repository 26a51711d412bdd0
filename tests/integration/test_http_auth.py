"""Auth on sluice's HTTP listeners other than the console (tests/integration/test_console.py has its own): the
schema registry and the scheduler's REST API. Each answers 401 without the right bearer token or basic credentials,
refuses to listen beyond loopback without a secret, takes secrets only from the environment or a file, never prints
them, and sluice's own registry client (a pipeline with `registry_url`) sends them. Confluent's client logs in with
basic auth the way it does against Confluent's registry. Needs no Kafka or Cassandra (the embedded log)."""
import base64
import os
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
SCHEMA = '{"type":"record","name":"U","fields":[{"name":"id","type":"string"}]}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLUICE_REGISTRY_", "SLUICE_SCHEDULER_"))}
    env.update(extra)
    return env


class Server:
    """A sluice listener started with args; ready once url answers (any status)."""

    def __init__(self, args, url, env, cwd):
        self.log_path = os.path.join(cwd, f"server-{uuid.uuid4().hex[:6]}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SLUICE] + args, stdout=self.log, stderr=self.log, env=env, cwd=cwd)
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice {args[0]} exited with {self.proc.returncode}: {self.output()}")
            try:
                requests.get(url, timeout=1)
                return
            except requests.ConnectionError:
                assert time.time() < deadline, f"sluice {args[0]} did not answer within 15 s"
                time.sleep(0.05)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=15) == 0
        self.log.close()


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


@pytest.fixture
def work():
    with tempfile.TemporaryDirectory(prefix="sluice-auth-") as d:
        yield d


def registry(work, env, extra=()):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    srv = Server(["registry", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "reg"), *extra],
                 url, env, work)
    return srv, url


def test_registry_bearer_token(work):
    token = "tok-" + uuid.uuid4().hex
    srv, url = registry(work, clean_env(SLUICE_REGISTRY_TOKEN=token))
    try:
        for path in ("/subjects", "/schemas/ids/1", "/config", "/mode", "/"):
            r = requests.get(url + path, timeout=5)
            assert r.status_code == 401, path
            assert r.json() == {"error_code": 401, "message": "Unauthorized"}
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            r = requests.get(url + path, headers={"Authorization": "Bearer " + token[:-1]}, timeout=5)
            assert r.status_code == 401, path
        # A write without credentials is refused before its body is read: nothing registered.
        r = requests.post(url + "/subjects/s-value/versions", json={"schema": SCHEMA}, headers=CT, timeout=5)
        assert r.status_code == 401
        ok = {"Authorization": "Bearer " + token}
        assert requests.get(url + "/subjects", headers=ok, timeout=5).json() == []
        r = requests.post(url + "/subjects/s-value/versions", json={"schema": SCHEMA}, headers={**CT, **ok},
                          timeout=5)
        assert r.status_code == 200 and r.json()["id"] == 1
        assert requests.get(url + "/subjects", headers=ok, timeout=5).json() == ["s-value"]
    finally:
        srv.stop()
    assert token not in srv.output()


def test_registry_basic_auth_with_confluent_client(work):
    pw = "pw-" + uuid.uuid4().hex
    srv, url = registry(work, clean_env(SLUICE_REGISTRY_PASSWORD=pw))
    try:
        anon = SchemaRegistryClient({"url": url})
        with pytest.raises(SchemaRegistryError) as e:
            anon.get_subjects()
        assert e.value.http_status_code == 401
        wrong = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"admin:{pw}x"})
        with pytest.raises(SchemaRegistryError):
            wrong.register_schema("t-value", Schema(SCHEMA, "AVRO"))
        other_user = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"root:{pw}"})
        with pytest.raises(SchemaRegistryError):
            other_user.get_subjects()
        sr = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"admin:{pw}"})
        sid = sr.register_schema("t-value", Schema(SCHEMA, "AVRO"))
        assert sr.get_schema(sid).schema_str == SCHEMA
        assert sr.get_subjects() == ["t-value"]
        assert requests.get(url + "/subjects", headers={"Authorization": basic("admin", pw)}, timeout=5).ok
    finally:
        srv.stop()
    assert pw not in srv.output()


def test_registry_token_file_and_loopback_rule(work):
    # Beyond loopback without a secret: refused at start with the variables to set.
    p = subprocess.run([SLUICE, "registry", "--listen", f"0.0.0.0:{free_port()}", "--data-dir",
                        os.path.join(work, "r0")], capture_output=True, text=True, timeout=15, env=clean_env())
    assert p.returncode != 0
    assert "beyond loopback" in p.stderr and "SLUICE_REGISTRY_TOKEN" in p.stderr
    # A token from a file named in the config; the file's content never in the output.
    token = "file-" + uuid.uuid4().hex
    tf = os.path.join(work, "token")
    with open(tf, "w") as f:
        f.write(token + "\n")
    cfg = os.path.join(work, "sluice.yaml")
    port = free_port()
    with open(cfg, "w") as f:
        f.write(f"registry:\n  listen: 0.0.0.0:{port}\n  data_dir: {work}/r1\n  token_file: {tf}\n")
    srv = Server(["registry", "-c", cfg], f"http://127.0.0.1:{port}", clean_env(), work)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/subjects", timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/subjects", headers={"Authorization": "Bearer " + token},
                            timeout=5).status_code == 200
    finally:
        srv.stop()
    assert token not in srv.output()
    # An unreadable secret file is a clear config error naming it.
    with open(cfg, "w") as f:
        f.write(f"registry:\n  listen: 127.0.0.1:{free_port()}\n  data_dir: {work}/r2\n"
                f"  token_file: {work}/missing\n")
    p = subprocess.run([SLUICE, "registry", "-c", cfg], capture_output=True, text=True, timeout=15, env=clean_env())
    assert p.returncode != 0 and f"{work}/missing" in p.stderr


PIPELINE = """data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 3, count: 50, page_size: 25 }}
    topic: auth_users
    format: avro
    registry_url: {url}
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
    sink: {{ keyspace: auth, table: users, primary_key: [id] }}
"""


def test_pipeline_sends_registry_credentials(work):
    token = "pipe-" + uuid.uuid4().hex
    srv, url = registry(work, clean_env(SLUICE_REGISTRY_TOKEN=token))
    try:
        cfg = os.path.join(work, "p.yaml")
        with open(cfg, "w") as f:
            f.write(PIPELINE.format(data=os.path.join(work, "data"), url=url))
        # Without the token: the ingest fails at once, says what to set, writes nothing, prints no secret.
        p = subprocess.run([SLUICE, "ingest", "users", "-c", cfg], capture_output=True, text=True, timeout=60,
                           env=clean_env(SLUICE_REGISTRY_TOKEN="wrong-" + token))
        assert p.returncode != 0
        assert "401" in p.stderr and "SLUICE_REGISTRY_TOKEN" in p.stderr, p.stderr[-2000:]
        assert token not in p.stdout + p.stderr
        ok = {"Authorization": "Bearer " + token}
        assert requests.get(url + "/subjects", headers=ok, timeout=5).json() == []
        # With it: the schema is registered through the authenticated client and the records go out.
        p = subprocess.run([SLUICE, "ingest", "users", "-c", cfg], capture_output=True, text=True, timeout=120,
                           env=clean_env(SLUICE_REGISTRY_TOKEN=token))
        assert p.returncode == 0, p.stderr[-2000:]
        assert token not in p.stdout + p.stderr
        assert requests.get(url + "/subjects", headers=ok, timeout=5).json() == ["auth_users-value"]
    finally:
        srv.stop()


def test_scheduler_api_auth(work):
    with open(os.path.join(work, "sluice.yaml"), "w") as f:
        f.write(f"data_dir: {work}/data\n"
                "pipelines:\n  users:\n    source: { type: generate, count: 10 }\n    topic: t\n    key: id\n"
                "    mapping: { id: login.uuid }\n    sink: { keyspace: k, table: t, primary_key: [id] }\n"
                "dags:\n  hello:\n    tasks:\n      say: { kind: shell, command: 'echo hi' }\n")
    port = free_port()
    p = subprocess.run([SLUICE, "scheduler", "-c", "sluice.yaml", "--api", f"0.0.0.0:{port}"], capture_output=True,
                       text=True, timeout=15, env=clean_env(), cwd=work)
    assert p.returncode != 0
    assert "beyond loopback" in p.stderr and "SLUICE_SCHEDULER_TOKEN" in p.stderr
    pw = "sch-" + uuid.uuid4().hex
    url = f"http://127.0.0.1:{port}"
    srv = Server(["scheduler", "-c", "sluice.yaml", "--api", f"127.0.0.1:{port}"], url,
                 clean_env(SLUICE_SCHEDULER_PASSWORD=pw), work)
    try:
        r = requests.get(url + "/api/v1/dags", timeout=5)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        r = requests.post(url + "/api/v1/dags/hello/dagRuns", json={}, timeout=5)
        assert r.status_code == 401
        assert requests.get(url + "/api/v1/dags", headers={"Authorization": basic("admin", pw + "x")},
                            timeout=5).status_code == 401
        ok = {"Authorization": basic("admin", pw)}
        r = requests.get(url + "/api/v1/dags", headers=ok, timeout=5)
        assert r.status_code == 200 and [d["dag_id"] for d in r.json()["dags"]] == ["hello"]
        # A body over the limit is refused whole, not handled cut short.
        r = requests.post(url + "/api/v1/dags/hello/dagRuns", data=b'{"conf":"' + b"x" * (2 << 20) + b'"}',
                          headers={**ok, "Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 413, r.text[:200]
        assert requests.get(url + "/api/v1/dags/hello/dagRuns", headers=ok, timeout=5).json()["total_entries"] == 0
    finally:
        srv.stop()
    assert pw not in srv.output()
