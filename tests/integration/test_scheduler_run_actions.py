"""The operator's actions on DAG runs through the scheduler's Airflow-shaped API (the console's DAGs page sends the
same requests): clearTaskInstances (a dry run lists what would be cleared and changes nothing; a clear queues the run
again, the cleared tasks run anew with their retries again, their try numbers and logs going on), PATCH dagRuns/{run}
{"state"} (mark success / failed; another state is a 400; refused with 409 while a task runs, as is a clear), and
POST backfills (a run for each interval of a range that has none; a dry run counts them)."""
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

CONFIG = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: 10, page_size: 10 }}
    topic: users_created
    key: id
    mapping:
      id: {{ path: login.uuid, type: uuid }}
    sink: {{ keyspace: ks, table: users }}
dags:
  flaky:
    tasks:
      check: {{ kind: shell, command: "echo try; test -f {flag}", retries: 1, retry_delay: 1s }}
      after: {{ kind: shell, command: "true", depends_on: [check] }}
  slow:
    tasks:
      nap: {{ kind: shell, command: "sleep 60" }}
  daily:
    schedule: "@daily"
    start_date: 2024-01-01
    paused: true
    tasks:
      ok: {{ kind: shell, command: "true" }}
"""


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_state(base, dag, run, states, timeout=60):
    end = time.time() + timeout
    state = None
    while time.time() < end:
        status, r = call(base, "GET", f"/dags/{dag}/dagRuns/{run}")
        state = r.get("state")
        if state in states:
            return state
        time.sleep(0.3)
    raise AssertionError(f"run {dag}/{run} still {state}, wanted {states}")


def tis(base, dag, run):
    return {t["task_id"]: t for t in call(base, "GET", f"/dags/{dag}/dagRuns/{run}/taskInstances")[1]["task_instances"]}


def test_clear_mark_backfill(tmp_path):
    flag = tmp_path / "fixed"
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", flag=flag))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched = subprocess.Popen([SLUICE, "scheduler", "-c", str(cfg), "--api", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    base = "http://127.0.0.1:%d/api/v1" % port
    try:
        end = time.time() + 30
        while time.time() < end:
            assert sched.poll() is None, sched.stdout.read()
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        assert call(base, "POST", "/dags/flaky/dagRuns", {"dag_run_id": "r1"})[0] == 200
        assert wait_state(base, "flaky", "r1", ("success", "failed")) == "failed"
        t = tis(base, "flaky", "r1")
        assert t["check"]["state"] == "failed" and t["check"]["try_number"] == 2
        assert t["after"]["state"] == "upstream_failed"

        # Airflow's defaults: a dry run of the failed ones. Nothing changes.
        status, r = call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_id": "r1"})
        assert status == 200 and r["dry_run"] is True
        assert sorted(x["task_id"] for x in r["task_instances"]) == ["after", "check"]
        time.sleep(1)
        assert call(base, "GET", "/dags/flaky/dagRuns/r1")[1]["state"] == "failed"
        assert tis(base, "flaky", "r1")["check"]["state"] == "failed"

        flag.write_text("")
        status, r = call(base, "POST", "/dags/flaky/clearTaskInstances",
                         {"dag_run_id": "r1", "dry_run": False, "only_failed": True})
        assert status == 200 and r["total_entries"] == 2, r
        assert wait_state(base, "flaky", "r1", ("success", "failed")) == "success"
        t = tis(base, "flaky", "r1")
        assert t["check"]["state"] == "success" and t["check"]["try_number"] == 3
        assert t["after"]["state"] == "success"
        # The earlier tries' logs are still there.
        status, log = call(base, "GET", "/dags/flaky/dagRuns/r1/taskInstances/check/logs/1")
        assert status == 200 and "try" in log["content"]
        assert call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_id": "nope"})[0] == 404
        assert call(base, "POST", "/dags/flaky/clearTaskInstances", {"dry_run": False})[0] == 400

        # A cleared task gets its retries again: it fails twice (try 4 and 5) before the run fails.
        flag.unlink()
        status, r = call(base, "POST", "/dags/flaky/clearTaskInstances",
                         {"dag_run_id": "r1", "dry_run": False, "only_failed": False})
        assert status == 200 and r["total_entries"] == 2
        assert wait_state(base, "flaky", "r1", ("success", "failed")) == "failed"
        assert tis(base, "flaky", "r1")["check"]["try_number"] == 5

        # Mark success: every task not successful becomes success.
        status, r = call(base, "PATCH", "/dags/flaky/dagRuns/r1", {"state": "success"})
        assert status == 200 and r["state"] == "success" and r["dag_run_id"] == "r1"
        assert {k: v["state"] for k, v in tis(base, "flaky", "r1").items()} == {"check": "success", "after": "success"}
        assert call(base, "PATCH", "/dags/flaky/dagRuns/r1", {"state": "running"})[0] == 400
        assert call(base, "PATCH", "/dags/flaky/dagRuns/r1", {"state": "failed"})[1]["state"] == "failed"

        # Nothing is changed under a running task.
        assert call(base, "POST", "/dags/slow/dagRuns", {"dag_run_id": "s1"})[0] == 200
        end = time.time() + 30
        while tis(base, "slow", "s1")["nap"]["state"] != "running":
            assert time.time() < end
            time.sleep(0.2)
        status, r = call(base, "PATCH", "/dags/slow/dagRuns/s1", {"state": "success"})
        assert status == 409 and "nap is running" in r["detail"]
        status, r = call(base, "POST", "/dags/slow/clearTaskInstances",
                         {"dag_run_id": "s1", "dry_run": False, "only_failed": False})
        assert status == 409

        # Backfill: one run per day of the range, counted first; the same range again has nothing left.
        rng = {"from_date": "2024-01-01T00:00:00Z", "to_date": "2024-01-05T00:00:00Z"}
        status, r = call(base, "POST", "/dags/daily/backfills", dict(rng, dry_run=True))
        assert status == 200 and r["total_entries"] == 5 and r["dry_run"] is True, r
        assert call(base, "GET", "/dags/daily/dagRuns")[1]["total_entries"] == 0
        status, r = call(base, "POST", "/dags/daily/backfills", rng)
        assert status == 200 and r["total_entries"] == 5
        runs = call(base, "GET", "/dags/daily/dagRuns")[1]["dag_runs"]
        assert sorted(x["logical_date"][:10] for x in runs) == ["2024-01-0%d" % d for d in range(1, 6)]
        assert {x["run_type"] for x in runs} == {"backfill"}
        assert call(base, "POST", "/dags/daily/backfills", dict(rng, dry_run=True))[1]["total_entries"] == 0
        assert call(base, "POST", "/dags/daily/backfills", {"from_date": "2024-01-05", "to_date": "2024-01-01"})[0] == 400
        assert call(base, "POST", "/dags/slow/backfills", rng)[0] == 400  # no schedule

        # The DAG list's last and next run: the newest run by logical date; the next scheduled interval of @daily
        # (created at the next midnight UTC, its logical date the midnight before); none without a schedule.
        dags = {d["dag_id"]: d for d in call(base, "GET", "/dags")[1]["dags"]}
        assert dags["daily"]["last_dagrun"]["dag_run_id"].startswith("backfill__2024-01-05")
        assert dags["daily"]["last_dagrun"]["logical_date"][:10] == "2024-01-05"
        after = time.strptime(dags["daily"]["next_dagrun_create_after"][:19], "%Y-%m-%dT%H:%M:%S")
        nxt = time.strptime(dags["daily"]["next_dagrun"][:19], "%Y-%m-%dT%H:%M:%S")
        assert after.tm_hour == after.tm_min == 0 and 0 < time.mktime(after) - time.mktime(time.gmtime()) <= 86400
        assert time.mktime(after) - time.mktime(nxt) == 86400
        assert dags["slow"]["next_dagrun"] is None and dags["slow"]["last_dagrun"]["dag_run_id"] == "s1"
        assert dags["slow"]["last_dagrun"]["state"] == "running" and dags["slow"]["last_dagrun"]["end_date"] is None
    finally:
        sched.terminate()
        sched.wait(timeout=30)


def start_scheduler(tmp_path, flag):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", flag=flag))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched = subprocess.Popen([SLUICE, "scheduler", "-c", str(cfg), "--api", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d/api/v1" % port
    end = time.time() + 30
    while True:
        assert sched.poll() is None and time.time() < end, "the scheduler did not come up"
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            return sched, base
        except OSError:
            time.sleep(0.2)


def test_every_try_kept_and_several_runs_cleared_at_once(tmp_path):
    """Each try of a task instance is kept with its own start, end, state and exit code (…/taskInstances/{task}/tries,
    "~" for every task: the Gantt chart draws them all), across retries and clears; clearTaskInstances takes several
    runs ("dag_run_ids"): a dry run counts the task instances of all of them, an unknown run or a running task refuses
    the whole request with nothing cleared, and the clear queues every run again."""
    flag = tmp_path / "fixed"
    sched, base = start_scheduler(tmp_path, flag)
    try:
        for r in ("m1", "m2"):
            assert call(base, "POST", "/dags/flaky/dagRuns", {"dag_run_id": r})[0] == 200
        for r in ("m1", "m2"):
            assert wait_state(base, "flaky", r, ("success", "failed")) == "failed"
        st, tries = call(base, "GET", "/dags/flaky/dagRuns/m1/taskInstances/check/tries")
        assert st == 200 and tries["total_entries"] == 2, tries
        one, two = tries["task_instances"]
        assert (one["try_number"], one["state"], one["exit_code"]) == (1, "up_for_retry", 1), one
        assert (two["try_number"], two["state"], two["exit_code"]) == (2, "failed", 1), two
        assert one["start_date"] <= one["end_date"] <= two["start_date"] <= two["end_date"], tries
        assert call(base, "GET", "/dags/flaky/dagRuns/m1/taskInstances/nope/tries")[0] == 404
        assert call(base, "GET", "/dags/flaky/dagRuns/zz/taskInstances/check/tries")[0] == 404

        # Several runs: a dry run counts them all; an unknown run among them refuses the whole request.
        st, r = call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_ids": ["m1", "m2"]})
        assert st == 200 and r["dry_run"] is True and r["dag_runs"] == 2 and r["total_entries"] == 4, r
        assert sorted((x["dag_run_id"], x["task_id"]) for x in r["task_instances"]) == \
            [("m1", "after"), ("m1", "check"), ("m2", "after"), ("m2", "check")]
        st, r = call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_ids": ["m1", "nope"], "dry_run": False})
        assert st == 404, r
        assert call(base, "GET", "/dags/flaky/dagRuns/m1")[1]["state"] == "failed"
        assert call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_ids": []})[0] == 400
        assert call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_ids": "m1"})[0] == 400

        flag.write_text("")
        st, r = call(base, "POST", "/dags/flaky/clearTaskInstances", {"dag_run_ids": ["m1", "m2"], "dry_run": False})
        assert st == 200 and r["dag_runs"] == 2 and r["total_entries"] == 4 and r["dry_run"] is False, r
        for run in ("m1", "m2"):
            assert wait_state(base, "flaky", run, ("success", "failed")) == "success"
        st, tries = call(base, "GET", "/dags/flaky/dagRuns/m1/taskInstances/~/tries")
        got = [(t["task_id"], t["try_number"], t["state"]) for t in tries["task_instances"]]
        assert got == [("after", 1, "success"), ("check", 1, "up_for_retry"), ("check", 2, "failed"),
                       ("check", 3, "success")], got
    finally:
        sched.terminate()
        sched.wait(timeout=20)
