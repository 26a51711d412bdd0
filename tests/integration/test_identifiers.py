"""Identifiers validated where they enter, files kept inside data_dir, JSON built with the encoder, a lean task
environment and a paged, cached Schemas summary (docs/security.md, "Identifiers and files"). Each test drives the
sluice binary over HTTP as a client would and checks the filesystem, the JSON and the environment itself. Needs no
Kafka or Cassandra (the embedded log).

  - a run id with ../ is refused with 400 and nothing is written outside data_dir, nor through a symlink planted
    under data_dir/logs;
  - run ids with quotes or CRLF are refused, the answers parse as JSON with exactly the expected keys, and a valid
    Airflow-style run id is answered as the one run created;
  - a log that is not there is named relative to data_dir;
  - a shell task sees none of the servers' secrets, a sensor (a `sluice` task) sees the client secret its config
    names but not the servers';
  - a subject with %00 or CRLF is refused by the registry (422, 42208) and nothing is registered;
  - with 2,000 subjects, one Schemas summary answers a page in well under a second and costs a bounded number of
    registry calls (counted by a proxy between the console and the registry), none while cached."""
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
CT = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
SCHEMA = '{"type":"record","name":"U","fields":[{"name":"id","type":"string"}]}'
TOKEN = "sched-" + uuid.uuid4().hex
AUTH = {"Authorization": "Bearer " + TOKEN}
SECRETS = {
    "SLUICE_CONSOLE_TOKEN": "con-" + uuid.uuid4().hex,
    "SLUICE_CONSOLE_PASSWORD": "conpw-" + uuid.uuid4().hex,
    "SLUICE_REGISTRY_TOKEN": "reg-" + uuid.uuid4().hex,
    "SLUICE_REGISTRY_PASSWORD": "regpw-" + uuid.uuid4().hex,
    "MY_CONSOLE_TOKEN": "mycon-" + uuid.uuid4().hex,  # console.token_env names it
    "SLUICE_SCHEDULER_TOKEN": TOKEN,
}
CLIENT_SECRET = "cass-" + uuid.uuid4().hex  # cassandra.password_env names it: a `sluice` task needs it
RUN_KEYS = {"dag_id", "dag_run_id", "run_type", "logical_date", "execution_date", "data_interval_start",
            "data_interval_end", "state", "conf", "external_trigger", "queued_at", "start_date", "end_date"}
PROBLEM_KEYS = {"status", "title", "detail", "type"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, headers=None, timeout=20):
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        try:
            requests.get(url, headers=headers, timeout=1)
            return
        except requests.ConnectionError:
            assert time.time() < deadline, f"{url} did not answer within {timeout} s"
            time.sleep(0.05)


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(extra)
    return env


CONFIG = """data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, count: 10 }}
    topic: t
    key: id
    mapping: {{ id: login.uuid }}
    sink: {{ keyspace: k, table: t, primary_key: [id] }}
cassandra:
  contact_points: [127.0.0.1]
  username: u
  password_env: CASS_PW
console:
  token_env: MY_CONSOLE_TOKEN
dags:
  envdag:
    tasks:
      show: {{ kind: shell, command: "env; echo shown" }}
      poke: {{ kind: sensor, command: "env > {data}/sensor.env", poke_interval: 100ms, depends_on: [show] }}
"""


@pytest.fixture
def sched():
    with tempfile.TemporaryDirectory(prefix="sluice-ident-") as work:
        data = os.path.join(work, "data")
        cfg = os.path.join(work, "sluice.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(data=data))
        port = free_port()
        url = f"http://127.0.0.1:{port}/api/v1"
        log = open(os.path.join(work, "scheduler.log"), "wb")
        p = subprocess.Popen([SLUICE, "scheduler", "-c", cfg, "--api", f"127.0.0.1:{port}"], stdout=log, stderr=log,
                             env=base_env(**SECRETS, CASS_PW=CLIENT_SECRET), cwd=work)
        try:
            wait_http(url + "/dags", p, AUTH)
            yield url, work, data
        finally:
            p.terminate()
            p.wait(timeout=20)
            log.close()


def post_run(url, body):
    return requests.post(url + "/dags/envdag/dagRuns", data=json.dumps(body),
                         headers={**AUTH, "Content-Type": "application/json"}, timeout=10)


def files_under(d):
    out = set()
    for root, dirs, files in os.walk(d):
        out |= {os.path.join(root, x) for x in dirs + files}
    return out


def test_run_id_traversal_refused_and_nothing_written_outside(sched):
    url, work, data = sched
    outside = os.path.join(tempfile.gettempdir(), "sluice-trav-" + uuid.uuid4().hex)
    for rid in ["../../../../../../.." + outside, "a/../../x", "..", "x/y"]:
        before = files_under(data)
        r = post_run(url, {"dag_run_id": rid, "conf": {"k": 1}})
        assert r.status_code == 400, (rid, r.text)
        assert set(r.json()) == PROBLEM_KEYS and "run id" in r.json()["detail"]
        assert files_under(data) == before, rid
    assert not os.path.exists(outside)
    assert requests.get(url + "/dags/envdag/dagRuns", headers=AUTH, timeout=5).json()["total_entries"] == 0
    # Through a symlink planted where the logs go: the try's log is not opened through it.
    target = os.path.join(work, "elsewhere")
    os.makedirs(target)
    os.makedirs(os.path.join(data, "logs"), exist_ok=True)
    os.symlink(target, os.path.join(data, "logs", "dag_id=envdag"))
    r = post_run(url, {"dag_run_id": "planted"})
    assert r.status_code == 200, r.text
    deadline = time.time() + 30
    while requests.get(url + "/dags/envdag/dagRuns/planted", headers=AUTH, timeout=5).json()["state"] != "failed":
        assert time.time() < deadline, "the run with a symlinked log directory did not fail"
        time.sleep(0.2)
    assert os.listdir(target) == []


@pytest.mark.parametrize("rid", ['x","evil":"1', "x\r\nSet-Cookie: a=b", "x\u0000y", "x\\y", "a" * 251])
def test_run_ids_with_quotes_or_crlf_refused(sched, rid):
    url, _, _ = sched
    r = post_run(url, {"dag_run_id": rid})
    assert r.status_code == 400, r.text
    assert set(json.loads(r.text)) == PROBLEM_KEYS
    assert "\r" not in r.text and "\n" not in r.text
    assert requests.get(url + "/dags/envdag/dagRuns", headers=AUTH, timeout=5).json()["total_entries"] == 0
    # In the path as well (the ids are checked after decoding).
    r = requests.get(url + "/dags/envdag/dagRuns/" + urllib.parse.quote(rid, safe=""), headers=AUTH, timeout=5)
    assert r.status_code in (400, 404) and set(json.loads(r.text)) == PROBLEM_KEYS


def test_trigger_answers_the_one_run(sched):
    url, _, data = sched
    rid = "manual__2024-01-01T00:00:00+00:00"
    r = post_run(url, {"dag_run_id": rid, "conf": {"q": "a\"b"}})
    assert r.status_code == 200, r.text
    run = json.loads(r.text)
    assert set(run) == RUN_KEYS and run["dag_run_id"] == rid and run["conf"] == {"q": "a\"b"}
    r = requests.get(url + "/dags/envdag/dagRuns/" + urllib.parse.quote(rid, safe=""), headers=AUTH, timeout=5)
    assert r.status_code == 200 and set(r.json()) == RUN_KEYS and r.json()["dag_run_id"] == rid
    # A log that is not there: named relative to data_dir, never where data_dir is.
    r = requests.get(url + "/dags/envdag/dagRuns/" + urllib.parse.quote(rid, safe="") +
                     "/taskInstances/show/logs/7", headers=AUTH, timeout=5)
    assert r.status_code == 404
    assert data not in r.text and "logs/dag_id=envdag" in r.json()["detail"]


def test_task_environment_has_no_server_secrets(sched):
    url, _, data = sched
    r = post_run(url, {"dag_run_id": "envcheck", "conf": {}})
    assert r.status_code == 200, r.text
    deadline = time.time() + 60
    while (st := requests.get(url + "/dags/envdag/dagRuns/envcheck", headers=AUTH, timeout=5).json()["state"]) \
            not in ("success", "failed"):
        assert time.time() < deadline, "the env DAG did not finish"
        time.sleep(0.2)
    r = requests.get(url + "/dags/envdag/dagRuns/envcheck/taskInstances/show/logs/1", headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    log = r.json()["content"]
    assert "shown" in log
    env = dict(line.split("=", 1) for line in log.splitlines() if "=" in line and not line.startswith("sluice "))
    assert env.get("SLUICE_RUN_ID") == "envcheck" and env.get("SLUICE_DAG_ID") == "envdag"
    assert "PATH" in env and "HOME" in env
    for name, value in {**SECRETS, "CASS_PW": CLIENT_SECRET}.items():
        assert name not in env, name
        assert value not in log, name
    # The sensor runs `sluice dag run-task` on the same config: it gets the client secret the config names (the
    # Cassandra password), never the servers'.
    assert st == "success", requests.get(url + "/dags/envdag/dagRuns/envcheck/taskInstances", headers=AUTH).text
    with open(os.path.join(data, "sensor.env")) as f:
        senv = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    assert senv.get("CASS_PW") == CLIENT_SECRET
    for name in SECRETS:
        assert name not in senv, name


@pytest.fixture
def registry():
    with tempfile.TemporaryDirectory(prefix="sluice-ident-reg-") as work:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        p = subprocess.Popen([SLUICE, "registry", "--listen", f"127.0.0.1:{port}", "--data-dir",
                              os.path.join(work, "reg")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=base_env(), cwd=work)
        try:
            wait_http(url + "/subjects", p)
            yield url, work
        finally:
            p.terminate()
            p.wait(timeout=20)


def test_subject_with_nul_or_crlf_refused(registry):
    url, _ = registry
    for raw in ["a%00b", "a%00", "a%0D%0Ab", "a%09b"]:
        r = requests.post(f"{url}/subjects/{raw}/versions", data=json.dumps({"schema": SCHEMA}), headers=CT,
                          timeout=5)
        # A control character in the decoded path is refused by the HTTP layer (400) before the registry sees it;
        # one that reaches the registry is an invalid subject (42208). Either way nothing is registered.
        assert set(r.json()) == {"error_code", "message"}, (raw, r.text)
        assert (r.status_code, r.json()["error_code"]) in ((400, 400), (422, 42208)), (raw, r.text)
        assert requests.get(f"{url}/subjects/{raw}/versions", timeout=5).json()["error_code"] in (400, 42208)
    assert requests.get(url + "/subjects", timeout=5).json() == []
    # What Confluent accepts stays valid: '/', spaces, a context prefix.
    for s in ["com.example/User value", ":.ctx:users-value"]:
        r = requests.post(f"{url}/subjects/{urllib.parse.quote(s, safe='')}/versions",
                          data=json.dumps({"schema": SCHEMA}), headers=CT, timeout=5)
        assert r.status_code == 200, (s, r.text)


class CountingProxy:
    """Forwards GETs to the registry and counts them: what the console costs the registry."""

    def __init__(self, upstream):
        self.calls = 0
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                proxy.calls += 1
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
                        status, body = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, body = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def test_schema_summary_is_paged_and_cached(registry):
    url, work = registry
    n = 2000
    s = requests.Session()
    t0 = time.time()
    for i in range(n):  # bounded in count and in time
        r = s.post(f"{url}/subjects/sub-{i:05d}-value/versions", data=json.dumps({"schema": SCHEMA}), headers=CT,
                   timeout=10)
        assert r.status_code == 200, r.text
        assert time.time() - t0 < 300, f"registering {n} subjects took over 300 s (at {i})"
    proxy = CountingProxy(url)
    cfg = os.path.join(work, "console.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {work}/data\npipelines:\n  users:\n    source: {{ type: generate, count: 1 }}\n"
                "    topic: t\n    key: id\n    mapping: { id: login.uuid }\n"
                "    sink: { keyspace: k, table: t, primary_key: [id] }\n"
                f"console:\n  registry: {{ url: {proxy.url} }}\n")
    con = subprocess.Popen([SLUICE, "console", "-c", cfg, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=base_env())
    try:
        line = con.stdout.readline()
        base = "http://" + line.split("http://", 1)[1].split("/", 1)[0]
        limit = 50
        calls0, t = proxy.calls, time.time()
        r = requests.get(f"{base}/api/console/schemas?offset=100&limit={limit}", timeout=30)
        elapsed = time.time() - t
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["total"] == n and d["offset"] == 100 and d["limit"] == limit
        assert [x["subject"] for x in d["subjects"]] == [f"sub-{i:05d}-value" for i in range(100, 150)]
        assert all(x["versions"] == [1] and x["compatibility"] is None for x in d["subjects"])
        assert d["compatibility"] == "BACKWARD"
        cold = proxy.calls - calls0
        assert cold <= 2 + 2 * limit, cold  # the list, the global level, two per subject shown; not 2 x 2,000
        assert elapsed < 1.0, elapsed
        # Polled again at once (the page polls every second), by eight at a time: served from the cache.
        calls1 = proxy.calls
        with __import__("concurrent.futures").futures.ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(lambda _: requests.get(f"{base}/api/console/schemas?offset=100&limit={limit}",
                                                    timeout=30), range(8)))
        assert all(x.status_code == 200 and x.json() == d for x in rs)
        assert proxy.calls - calls1 == 0, proxy.calls - calls1
        r = requests.get(f"{base}/api/console/schemas?limit=100000", timeout=30)
        assert r.status_code == 400
    finally:
        con.terminate()
        con.wait(timeout=20)
        proxy.close()
