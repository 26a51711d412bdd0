"""`sluice dag` and `sluice scheduler` as a user runs them, on the embedded default: dag test runs the seed-shaped DAG
to rows in the table; trigger + scheduler runs a manual run; the REST API answers; SIGTERM stops the scheduler."""
import json
import os
import socket
import sqlite3
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

CONFIG = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: 100000, page_size: 100 }}
    topic: users_created
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
    sink: {{ keyspace: spark_streams, table: created_users, primary_key: [id] }}
dags:
  user_automation:
    schedule: "@daily"
    start_date: 2023-09-03
    tasks:
      stream_data_from_api: {{ kind: ingest, pipeline: users, count: 200 }}
      wait_for_processor: {{ kind: process, pipeline: users, depends_on: [stream_data_from_api] }}
      enough: {{ kind: sensor, table: spark_streams.created_users, rows_at_least: 200, poke_interval: 1s,
                timeout: 60s, depends_on: [wait_for_processor] }}
  broken:
    tasks:
      fail: {{ kind: shell, command: "echo bad >&2; exit 2" }}
      never: {{ kind: shell, command: "true", depends_on: [fail] }}
"""


def sluice(*args, **kw):
    return subprocess.run([SLUICE, *args], capture_output=True, text=True, timeout=300, **kw)


def setup(tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data"))
    return str(cfg)


def test_dag_test_to_rows(tmp_path):
    cfg = setup(tmp_path)
    p = sluice("dag", "test", "user_automation", "-c", cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "dag test user_automation: success" in p.stdout
    db = sqlite3.connect(str(tmp_path / "data" / "spark_streams.db"))
    assert db.execute("SELECT count(*) FROM created_users").fetchone()[0] >= 200
    p = sluice("dag", "test", "broken", "-c", cfg)
    assert p.returncode == 1
    assert "upstream_failed" in p.stdout and "failed" in p.stdout


def test_list_pause_trigger_scheduler_api(tmp_path):
    cfg = setup(tmp_path)
    p = sluice("dag", "list", "-c", cfg)
    assert p.returncode == 0 and "user_automation" in p.stdout and "@daily" in p.stdout
    assert sluice("dag", "pause", "broken", "-c", cfg).returncode == 0
    assert "True" in [l for l in sluice("dag", "list", "-c", cfg).stdout.splitlines() if l.startswith("broken")][0]
    assert sluice("dag", "unpause", "broken", "-c", cfg).returncode == 0
    p = sluice("dag", "trigger", "broken", "-c", cfg, "--conf", '{"a": 1}', "--run-id", "r1")
    assert p.returncode == 0, p.stderr
    p = sluice("dag", "show", "nope", "-c", cfg)
    assert p.returncode == 1 and "no DAG 'nope'" in p.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched = subprocess.Popen([SLUICE, "scheduler", "-c", cfg, "--api", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        base = "http://127.0.0.1:%d/api/v1" % port
        deadline = time.time() + 60
        state = None
        while time.time() < deadline:
            try:
                runs = json.load(urllib.request.urlopen(base + "/dags/broken/dagRuns"))
                state = runs["dag_runs"][0]["state"]
                if state in ("success", "failed"):
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert state == "failed"
        tis = json.load(urllib.request.urlopen(base + "/dags/broken/dagRuns/r1/taskInstances"))
        states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
        assert states == {"fail": "failed", "never": "upstream_failed"}
        log = json.load(urllib.request.urlopen(base + "/dags/broken/dagRuns/r1/taskInstances/fail/logs/1"))
        assert "bad" in log["content"]
        req = urllib.request.Request(base + "/dags/broken/dagRuns", data=b'{"dag_run_id": "r2"}', method="POST",
                                     headers={"Content-Type": "application/json"})
        assert json.load(urllib.request.urlopen(req))["dag_run_id"] == "r2"
        # The @daily DAG (catchup off) got its latest interval scheduled.
        runs = json.load(urllib.request.urlopen(base + "/dags/user_automation/dagRuns"))
        assert runs["total_entries"] == 1 and runs["dag_runs"][0]["run_type"] == "scheduled"
    finally:
        sched.terminate()
        sched.wait(timeout=30)
    assert sched.returncode == 0
