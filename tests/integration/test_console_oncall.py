"""The console for the person on call, through its API on the embedded default: a mapping that rejects some records
turns the pipeline's one status to ERROR with the reason in words (the consumer group alone says OK); every dead
letter shows its stage, its reason and where it came from, grouped by reason; a viewer may look but not replay; a
dry run counts, a replay under the broken mapping replays nothing, and after the fix the replay sends every dead
letter through so the table holds every record; each action is in the audit log with who and how it ended. The
message browser reads newest first, seeks by time, shows headers and full timestamps, and answers 404 for an unknown
topic or partition."""
import http.server
import json
import os
import sqlite3
import subprocess
import threading
import time
import urllib.parse

from test_console import ROOT, SLUICE, Console, wait_for

COUNT = 600


class Webhook:
    """Collects the alert notifications the console POSTs (Alertmanager's JSON)."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def firing(self, name):
        return sum(1 for doc in self.got for a in doc["alerts"]
                   if a["labels"]["alertname"] == name and a["status"] == "firing")

    def close(self):
        self.srv.shutdown()


def configs(tmp_path, webhook="http://127.0.0.1:9/none"):
    seed = open(os.path.join(ROOT, "examples", "seed", "sluice.yaml")).read()
    base = (seed.replace("data_dir: var/seed", f"data_dir: {tmp_path / 'data'}")
            .replace("count: 100000 ", f"count: {COUNT} ")
            + "\nconsole:\n  poll_interval: 200ms\n  health_window: 10m\n  read_token_env: SL_TEST_VIEWER_TOKEN\n"
            + "  webhook: WEBHOOK\n")
    assert f"count: {COUNT} " in base and "data_dir: var/seed" not in base
    # post_code as a bigint: the generator gives some postcodes as text ("EC1A 1BB"), which cannot be one.
    strict = base.replace("post_code:       { path: location.postcode, type: text }",
                          "post_code:       { path: location.postcode, type: bigint }")
    assert strict != base
    out = []
    strict, base = strict.replace("WEBHOOK", webhook), base.replace("WEBHOOK", webhook)
    for name, text in (("strict.yaml", strict), ("fixed.yaml", base)):
        p = tmp_path / name
        p.write_text(text)
        out.append(str(p))
    return out


OP = {"Authorization": "Bearer op-" + "a" * 20}
VIEWER = {"Authorization": "Bearer viewer-" + "b" * 20}


def env():
    return dict(os.environ, SLUICE_CONSOLE_TOKEN=OP["Authorization"][7:],
                SL_TEST_VIEWER_TOKEN=VIEWER["Authorization"][7:])


def jget(con, path, headers=OP):
    status, _, body = con.get(path, headers)
    return status, json.loads(body) if body else None


def jpost(con, path, doc, headers=OP):
    status, _, body = con.get(path, dict(headers, **{"Content-Type": "application/json"}), method="POST",
                              data=json.dumps(doc).encode())
    return status, json.loads(body) if body else None


def pipeline(con):
    status, ov = jget(con, "/api/overview")
    assert status == 200
    return next(p for p in ov["pipelines"] if p["name"] == "users")


def all_dead_letters(con, extra=""):
    status, d = jget(con, "/api/dlq?pipeline=users&limit=500" + extra)
    assert status == 200, d
    return d


def test_oncall_dead_letters_status_replay_audit(tmp_path):
    hook = Webhook()
    strict, fixed = configs(tmp_path, hook.url)
    con = Console(strict, env=env())
    try:
        # Nothing has run: no log yet, which the status says (it is not OK) and the DLQ view too.
        st, d = jget(con, "/api/dlq?pipeline=users")
        assert st == 503 and "not there yet" in d["error"], d
        first = wait_for(lambda: (lambda p: p if p["health_reasons"] else None)(pipeline(con)), "a first sample")
        assert first["health"] == "ERROR", first
        assert first["health_reasons"][0]["text"].startswith("the log does not answer"), first
        r = subprocess.run([SLUICE, "up", "--until-done", "-q", "-c", strict], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        rows = sqlite3.connect(tmp_path / "data" / "spark_streams.db").execute(
            "SELECT COUNT(*) FROM created_users").fetchone()[0]
        dead = COUNT - rows
        assert 0 < dead < COUNT

        # One status: the group is fine (it read everything), but the error rate is not, and it says why.
        p = wait_for(lambda: (lambda p: p if p["health"] == "ERROR" and p["dlq"] == dead else None)(pipeline(con)),
                     "status ERROR")
        assert p["status"] == "OK"  # the consumer group alone would have said OK
        texts = [x["text"] for x in p["health_reasons"]]
        rate = 100.0 * dead / COUNT
        assert any(t.startswith("error rate %.1f %%" % rate) and "over the last 10 min" in t for t in texts), texts
        assert any(t == f"{dead} new dead letters in the last 10 min" for t in texts), texts
        assert p["errors"] == p["dlq"] == dead

        # Every dead letter: its stage, its reason, where it came from; grouped by reason.
        d = all_dead_letters(con)
        msgs = d["messages"]
        assert len(msgs) == dead
        for m in msgs:
            q = m["dlq"]
            assert q["stage"] == "map" and q["pipeline"] == "users", q
            assert "column 'post_code' (path location.postcode)" in q["reason"], q
            assert "is not a valid bigint" in q["reason"], q
            # A record that failed its mapping never was in the topic: no original topic coordinates.
            assert q["topic"] is None and q["partition"] is None, q
            assert ["sluice.stage", "map"] in m["headers"]
            assert m["timestamp"] > 1_600_000_000_000  # milliseconds since the epoch, not a time of day
        offs = [(m["partition"], m["offset"]) for m in msgs]
        assert len(set(offs)) == dead
        assert sum(g["count"] for g in d["reasons"]) == dead
        # Filtered by reason: the group's match text narrows to exactly its count.
        g = max(d["reasons"], key=lambda g: g["count"])
        sub = all_dead_letters(con, "&reason=" + urllib.parse.quote(g["match"]))
        assert len(sub["messages"]) == g["count"]
        assert all(g["match"] in m["dlq"]["reason"] for m in sub["messages"])
        assert all_dead_letters(con, "&reason=no-such-reason-at-all")["messages"] == []
        assert jget(con, "/api/dlq?pipeline=nope")[0] == 404

        # A viewer sees them but may not replay.
        assert jget(con, "/api/dlq?pipeline=users&limit=1", VIEWER)[0] == 200
        assert jpost(con, "/api/dlq/replay", {"pipeline": "users", "all": True}, VIEWER)[0] == 403
        # A dry run counts; a replay under the same broken mapping replays nothing.
        st, r = jpost(con, "/api/dlq/replay", {"pipeline": "users", "all": True, "dry_run": True})
        assert st == 200 and r["matched"] == dead and r["replayed"] == 0 and r["dry_run"] is True, r
        st, r = jpost(con, "/api/dlq/replay", {"pipeline": "users", "all": True})
        assert st == 200 and r["replayed"] == 0 and r["still_failing"] == dead, r
        assert jpost(con, "/api/dlq/replay", {"pipeline": "users"})[0] == 400
        wait_for(lambda: hook.firing("DeadLettersGrowing") == 1, "the dead-letter alert at the webhook")
        st, al = jget(con, "/api/alerts")
        before = next(a for a in al["alerts"] if a["labels"]["alertname"] == "DeadLettersGrowing")
        assert before["state"] == "firing" and before["window_ms"] == 300000
        assert "over the last 5 min" in before["annotations"]["summary"], before
        assert f"is {dead} dead letters" in before["annotations"]["summary"], before
        con.close()
        restarted = int(time.time() * 1000)

        # The mapping fixed: replay one, then the rest; the table then holds every record.
        con = Console(fixed, env=env())
        # After the restart: the history, the counters and the alert state are what they were. The alert is still
        # firing (the window spans the restart) and is not announced a second time.
        st, hi = jget(con, "/api/history?pipeline=users")
        old = [r for r in hi["pipelines"]["users"] if r[0] < restarted]
        assert old and old[-1][5] == dead, hi
        st, rng = jget(con, f"/api/history?pipeline=users&from={restarted - 3600_000}&points=50")
        assert st == 200 and 0 < len(rng["pipelines"]["users"]) <= 50 and rng["retention_ms"] == 86400_000, rng
        assert rng["pipelines"]["users"][-1][5] == dead
        p = pipeline(con)
        assert p["errors"] == p["dlq"] == dead and p["health"] == "ERROR", p
        st, al = jget(con, "/api/alerts")
        after = next(a for a in al["alerts"] if a["labels"]["alertname"] == "DeadLettersGrowing")
        assert after["state"] == "firing" and after["startsAt"] == before["startsAt"], (before, after)
        time.sleep(1.5)
        assert hook.firing("DeadLettersGrowing") == 1, hook.got
        one = msgs[0]["offset"]
        st, r = jpost(con, "/api/dlq/replay", {"pipeline": "users", "offsets": [one]})
        assert st == 200 and r["matched"] == 1 and r["replayed"] == 1, r
        st, r = jpost(con, "/api/dlq/replay", {"pipeline": "users", "all": True, "reason": "post_code"})
        # all matching the filter, the one already replayed included (replay republishes; the table's key dedups)
        assert st == 200 and r["matched"] == dead and r["replayed"] == dead and r["still_failing"] == 0, r
        r = subprocess.run([SLUICE, "process", "users", "-q", "--drain", "-c", fixed], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        n, distinct = sqlite3.connect(tmp_path / "data" / "spark_streams.db").execute(
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM created_users").fetchone()
        assert n == distinct == COUNT

        # Every action, who took it and how it ended (the first console's entries survived its restart).
        st, a = jget(con, "/api/audit?limit=100", VIEWER)
        assert st == 200 and a["ok"] is True
        seen = [(e["action"], e["who"], e["role"], e["status"]) for e in a["entries"]]
        # The viewer's replay never reached the console's handler (the HTTP layer answers 403 first), yet it is
        # audited: who tried what, refused.
        refused = [e for e in a["entries"] if e["role"] == "viewer"]
        assert len(refused) == 1, seen
        assert (refused[0]["action"], refused[0]["who"], refused[0]["target"], refused[0]["status"]) == \
            ("POST", "token (viewer)", "/api/dlq/replay", 403), refused
        assert refused[0]["detail"].startswith("refused: read-only credentials"), refused
        assert all(s[2] == "operator" for s in seen if s[1] != "token (viewer)"), seen
        assert ("dlq.replay.dry_run", "token (operator)", "operator", 200) in seen, seen
        assert sum(1 for s in seen if s[0] == "dlq.replay" and s[3] == 200) == 3, seen
        assert ("dlq.replay", "token (operator)", "operator", 400) in seen, seen
        assert all(e["time"] > 1_600_000_000_000 for e in a["entries"])
        last = a["entries"][0]
        assert last["action"] == "dlq.replay" and "replayed %d" % dead in last["detail"], last
    finally:
        hook.close()
        if con.p.poll() is None:
            con.close()


def test_message_browser_newest_time_headers_404(tmp_path):
    strict, _ = configs(tmp_path)
    r = subprocess.run([SLUICE, "ingest", "-q", "-c", strict], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    con = Console(strict, env=env())
    try:
        db = sqlite3.connect(f"file:{tmp_path}/data/log.db?mode=ro", uri=True)
        high = dict(db.execute("SELECT partition, MAX(offset) FROM messages WHERE topic='users_created' "
                               "GROUP BY partition").fetchall())
        # Newest first, by each spelling the issue tried (offset=-1 and latest gave 400).
        for q in ("offset=latest", "offset=-1", "order=newest"):
            st, d = jget(con, f"/api/kafka/messages?topic=users_created&partition=1&limit=5&{q}")
            assert st == 200, (q, d)
            assert [m["offset"] for m in d["messages"]] == [high[1] - i for i in range(5)], q
            assert d["order"] == "newest"
        st, d = jget(con, "/api/kafka/messages?topic=users_created&limit=20&offset=latest")
        assert st == 200 and len(d["messages"]) == 20
        ts = [m["timestamp"] for m in d["messages"]]
        assert ts == sorted(ts, reverse=True)
        # the 20 newest of the topic: none older than the 20th newest timestamp in the log (ties make the set itself
        # ambiguous)
        every = sorted((r[0] for r in db.execute("SELECT ts_ms FROM messages WHERE topic='users_created'")),
                       reverse=True)
        assert min(ts) >= every[19], (ts, every[:20])

        # Seek by time: nothing before the time asked for, and the first record at or after it.
        rows = db.execute("SELECT partition, offset, ts_ms FROM messages WHERE topic='users_created' "
                          "AND partition=0 ORDER BY offset").fetchall()
        assert rows, "no messages in partition 0"
        t = rows[len(rows) // 2][2]
        first = next(o for _, o, tm in rows if tm >= t)
        st, d = jget(con, f"/api/kafka/messages?topic=users_created&partition=0&timestamp={t}&limit=10")
        assert st == 200, d
        assert d["messages"][0]["offset"] == first
        assert all(m["timestamp"] >= t for m in d["messages"])
        # A time after the last record: an empty page, not an error and not the start of the topic.
        st, d = jget(con, f"/api/kafka/messages?topic=users_created&partition=0&timestamp={rows[-1][2] + 60000}")
        assert st == 200 and d["messages"] == [], d
        assert jget(con, f"/api/kafka/messages?topic=users_created&timestamp={t}&offset=latest")[0] == 400

        # Headers of a dead letter, as the browser shows them.
        st, d = jget(con, "/api/kafka/messages?topic=users_created.dlq&limit=1&offset=latest")
        assert st == 200 and d["messages"], d
        keys = [k for k, _ in d["messages"][0]["headers"]]
        assert keys[:3] == ["sluice.stage", "sluice.error", "sluice.pipeline"], keys

        # Unknown topics and partitions are 404, not an empty 200.
        assert jget(con, "/api/kafka/messages?topic=no_such_topic_h22")[0] == 404
        assert jget(con, "/api/kafka/messages?topic=users_created&partition=3")[0] == 404
        assert jget(con, "/api/kafka/messages?topic=users_created&offset=soon")[0] == 400
    finally:
        con.close()


def kafka_up():
    import socket
    try:
        socket.create_connection(("127.0.0.1", 9092), timeout=2).close()
        return True
    except OSError:
        return False


import pytest  # noqa: E402


@pytest.mark.parametrize("backend", ["embedded", "kafka"])
def test_operator_creates_a_topic_and_produces_a_message(tmp_path, backend):
    if backend == "kafka" and not kafka_up():
        pytest.skip("Kafka is not running on 127.0.0.1:9092")
    strict, _ = configs(tmp_path)
    if backend == "kafka":
        text = open(strict).read().replace("\npipelines:", "\nkafka: { brokers: 127.0.0.1:9092 }\npipelines:", 1)
        open(strict, "w").write(text)
    topic = "h22_ops_" + os.urandom(4).hex()
    con = Console(strict, env=env())
    try:
        body = {"topic": topic, "partitions": 2}
        assert jpost(con, "/api/kafka/topics", body, VIEWER)[0] == 403
        st, r = jpost(con, "/api/kafka/topics", body)
        assert st == 201 and r == {"topic": topic, "partitions": 2}, r
        st, r = jpost(con, "/api/kafka/topics", body)
        assert st == 409 and "exists already" in r["error"], r
        assert jpost(con, "/api/kafka/topics", {"topic": "bad/name"})[0] == 400
        assert jpost(con, "/api/kafka/topics", {"topic": topic + "x", "partitions": 0})[0] == 400

        msg = {"topic": topic, "partition": 1, "key": "k1", "value": '{"hello":"world"}',
               "headers": {"trace": "abc"}}
        assert jpost(con, "/api/kafka/produce", msg, VIEWER)[0] == 403
        st, r = jpost(con, "/api/kafka/produce", msg)
        assert st == 200 and r["partition"] == 1 and r["offset"] == 0, r
        st, r = jpost(con, "/api/kafka/produce", dict(msg, partition=None, key=None, value="second"))
        assert st == 200 and r["partition"] in (0, 1), r
        assert jpost(con, "/api/kafka/produce", dict(msg, partition=2))[0] == 404
        assert jpost(con, "/api/kafka/produce", dict(msg, topic="no_such_" + topic))[0] == 404
        assert jpost(con, "/api/kafka/produce", {"topic": topic})[0] == 400
        # What was produced is what the browser reads back, headers and all.
        got = wait_for(lambda: (lambda d: d if d[0] == 200 and d[1]["messages"] else None)(
            jget(con, f"/api/kafka/messages?topic={topic}&partition=1&offset=0")), "the message", 30)[1]["messages"][0]
        assert got["key"] == "k1" and got["value"] == '{"hello":"world"}' and ["trace", "abc"] in got["headers"], got
        st, a = jget(con, "/api/audit?limit=20")
        seen = [(e["action"], e["target"], e["status"]) for e in a["entries"]]
        assert ("topic.create", topic, 201) in seen and ("topic.create", topic, 409) in seen, seen
        assert ("topic.produce", topic, 200) in seen and ("topic.produce", topic, 404) in seen, seen
    finally:
        con.close()


def test_alert_silence_suppresses_notifications_persists_and_is_audited(tmp_path):
    hook = Webhook()
    strict, _ = configs(tmp_path, hook.url)
    con = Console(strict, env=env())
    try:
        body = {"alert": "DeadLettersGrowing", "pipeline": "users", "duration_ms": 600_000, "comment": "known, fixing"}
        assert jpost(con, "/api/alerts/silence", body, VIEWER)[0] == 403
        assert jpost(con, "/api/alerts/silence", dict(body, alert="Nope"))[0] == 404
        assert jpost(con, "/api/alerts/silence", dict(body, duration_ms=-1))[0] == 400
        st, r = jpost(con, "/api/alerts/silence", body)
        assert st == 200 and r["silenced_until_ms"] > time.time() * 1000 + 590_000, r
        r = subprocess.run([SLUICE, "up", "--until-done", "-q", "-c", strict], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr

        def alert():
            return next(a for a in jget(con, "/api/alerts")[1]["alerts"]
                        if a["labels"]["alertname"] == "DeadLettersGrowing")
        a = wait_for(lambda: (lambda a: a if a["state"] == "firing" else None)(alert()), "the alert firing on the page")
        assert a["silenced_by"] == "token (operator)" and a["silence_comment"] == "known, fixing", a
        # ErrorRateHigh (not silenced, 60 s "for") is pending meanwhile; nothing about DeadLettersGrowing is sent.
        time.sleep(1.5)
        assert hook.firing("DeadLettersGrowing") == 0, hook.got
        p = pipeline(con)
        assert any("alert DeadLettersGrowing is firing (warning; silenced by token (operator))" == x["text"]
                   for x in p["health_reasons"]), p
        con.close()
        # The silence outlives a restart.
        con = Console(strict, env=env())
        assert alert()["silence_comment"] == "known, fixing"
        st, r = jpost(con, "/api/alerts/silence", dict(body, duration_ms=0))
        assert st == 200 and r["silenced_until_ms"] == 0
        assert "silenced_until" not in alert()
        st, au = jget(con, "/api/audit?limit=20")
        seen = [(e["action"], e["target"], e["detail"], e["status"]) for e in au["entries"]]
        assert ("alert.silence", "DeadLettersGrowing/users", "silenced for 10 min: known, fixing", 200) in seen, seen
        assert ("alert.silence", "DeadLettersGrowing/users", "silence lifted", 200) in seen, seen
        assert ("alert.silence", "Nope/users", "no such alert", 404) in seen, seen
    finally:
        hook.close()
        if con.p.poll() is None:
            con.close()


def test_metrics_process_families_match_proc(tmp_path):
    from test_console import metrics
    strict, _ = configs(tmp_path)
    t0 = time.time()
    con = Console(strict, env=env())
    try:
        m = metrics(con, OP)
        pid = con.p.pid
        assert abs(m[("process_start_time_seconds", ())] - t0) < 5, m[("process_start_time_seconds", ())]
        rss = int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert 0.5 * rss < m[("process_resident_memory_bytes", ())] < 2 * rss
        assert m[("process_virtual_memory_bytes", ())] >= m[("process_resident_memory_bytes", ())]
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        assert abs(m[("process_open_fds", ())] - fds) <= 8, (m[("process_open_fds", ())], fds)
        assert m[("process_max_fds", ())] >= 1024
        cpu = m[("process_cpu_seconds_total", ())]
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ours = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        assert 0 <= cpu <= ours + 0.05, (cpu, ours)
    finally:
        con.close()


def test_metrics_scheduler_and_registry_families_inside_up(tmp_path):
    from test_console import metrics
    import re
    cfg = tmp_path / "up.yaml"
    cfg.write_text(f"""
data_dir: {tmp_path}/data
pipelines:
  users:
    source: {{ type: generate, seed: 7, count: 40, page_size: 10 }}
    topic: users_created
    partitions: 1
    key: id
    mapping:
      id: {{ path: login.uuid, type: uuid }}
      email: email
    sink: {{ keyspace: spark_streams, table: created_users }}
console:
  listen: 127.0.0.1:0
  poll_interval: 300ms
registry:
  listen: 127.0.0.1:0
  data_dir: {tmp_path}/data/registry
dags:
  small:
    tasks:
      ingest: {{ kind: ingest, pipeline: users, count: 40 }}
      process: {{ kind: process, pipeline: users, depends_on: [ingest] }}
""")
    p = subprocess.Popen([SLUICE, "up", "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = None
        for _ in range(200):
            line = p.stdout.readline()
            m = re.search(r"console: http://([0-9.:]+)/", line)
            if m:
                base = m.group(1)
                break
        assert base, "no console line"
        con = Console.__new__(Console)  # only its get(): the console is the one inside `sluice up`
        con.base = "http://" + base
        schema = json.dumps({"type": "record", "name": "U", "fields": [{"name": "id", "type": "string"}]})
        st, _, _ = con.get("/api/schemas/subjects/m-value/versions", {"Content-Type": "application/json"}, "POST",
                           json.dumps({"schema": schema}).encode())
        assert st == 200
        assert con.get("/api/schemas/subjects/nope-value/versions")[0] == 404
        st, _, body = con.get("/api/dags/small/dagRuns", {"Content-Type": "application/json"}, "POST", b'{"conf":{}}')
        assert st == 200, body

        def done():
            m = metrics(con)
            return m if m.get(("sluice_scheduler_dag_runs_total", (("dag", "small"), ("state", "success")))) else None
        m = wait_for(done, "the run to succeed in /metrics", 90)
        for task in ("ingest", "process"):
            assert m[("sluice_scheduler_task_tries_total",
                      (("dag", "small"), ("state", "success"), ("task", task)))] == 1
        assert m[("sluice_registry_requests_total", (("code", "2xx"), ("method", "POST")))] >= 1
        assert m[("sluice_registry_requests_total", (("code", "4xx"), ("method", "GET")))] >= 1
        assert ("process_cpu_seconds_total", ()) in m
        # The Grafana dashboard in docs/ is built on these: every series it asks for is in /metrics.
        dash = open(os.path.join(ROOT, "docs", "grafana", "sluice-dashboard.json")).read()
        asked = set(re.findall(r"\b((?:sluice|process|kafka)_[a-z_]+)", dash)) - {"kafka_exporter"}
        m = wait_for(lambda: (lambda m: m if asked <= {k[0] for k in m} else None)(metrics(con)), "every series", 30)
        assert asked <= {k[0] for k in m}, asked - {k[0] for k in m}
    finally:
        p.terminate()
        p.wait(timeout=30)


@pytest.mark.parametrize("backend", ["embedded", "kafka"])
def test_group_offset_reset_dry_run_refused_under_members_audited(tmp_path, backend):
    if backend == "kafka" and not kafka_up():
        pytest.skip("Kafka is not running on 127.0.0.1:9092")
    _, fixed = configs(tmp_path)
    tag = os.urandom(4).hex()
    text = open(fixed).read().replace("topic: users_created", f"topic: h22_reset_{tag}")
    assert f"h22_reset_{tag}" in text
    if backend == "kafka":
        text = text.replace("\npipelines:", "\nkafka: { brokers: 127.0.0.1:9092 }\npipelines:", 1)
        text = text.replace("keyspace: spark_streams", f"keyspace: h22_{tag}")
        text = text.replace("\nconsole:", "\ncassandra: { contact_points: [127.0.0.1] }\nconsole:", 1)
    open(fixed, "w").write(text)
    topic, group = f"h22_reset_{tag}", "sluice-users"
    r = subprocess.run([SLUICE, "up", "--until-done", "-q", "-c", fixed], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    con = Console(fixed, env=env())
    try:
        req = {"group": group, "topic": topic, "to": "earliest", "dry_run": True}
        assert jpost(con, "/api/kafka/groups/reset", req, VIEWER)[0] == 403
        st, d = jpost(con, "/api/kafka/groups/reset", req)
        assert st == 200 and d["dry_run"] is True, d
        assert len(d["partitions"]) == 3
        assert sum(p["high"] for p in d["partitions"]) == COUNT
        for p in d["partitions"]:
            assert p["current"] == p["high"] and p["new"] == p["low"] == 0 and p["change"] == -p["high"], p
        if backend == "embedded":
            assert d["members"] is None and "stop the pipeline's processor" in d["note"]
        else:
            assert d["members"] == 0
        # The dry run changed nothing.
        st, d2 = jpost(con, "/api/kafka/groups/reset", dict(req, to="latest"))
        assert all(p["current"] == p["high"] for p in d2["partitions"]), d2
        # To a time between two records of partition 0, then to an offset past the end (held at the end).
        st, m = jget(con, f"/api/kafka/messages?topic={topic}&partition=0&offset=0&limit=500")
        assert st == 200
        ts = sorted({x["timestamp"] for x in m["messages"]})
        if len(ts) > 1:
            t = ts[len(ts) // 2]
            st, d = jpost(con, "/api/kafka/groups/reset", dict(req, to="time", timestamp=t))
            first = min(x["offset"] for x in m["messages"] if x["timestamp"] >= t)
            assert st == 200 and d["partitions"][0]["new"] == first, (d, first)
        st, d = jpost(con, "/api/kafka/groups/reset", dict(req, to="offset", offset=10**9))
        assert st == 200 and all(p["new"] == p["high"] for p in d["partitions"]), d
        assert jpost(con, "/api/kafka/groups/reset", dict(req, to="sometime"))[0] == 400
        assert jpost(con, "/api/kafka/groups/reset", dict(req, topic="no_such_" + topic))[0] == 404

        # For real: the group is back at the start, its lag is every record, and the processor reads them again.
        st, d = jpost(con, "/api/kafka/groups/reset", dict(req, dry_run=False))
        assert st == 200 and d["dry_run"] is False, d
        st, d = jpost(con, "/api/kafka/groups/reset", req)
        assert all(p["current"] == 0 for p in d["partitions"]), d
        wait_for(lambda: pipeline(con)["lag"] == COUNT, "the lag to be every record", 30)
        if backend == "kafka":
            # Under a running member the reset is refused (it would commit over it); the dry run still answers.
            proc = subprocess.Popen([SLUICE, "process", "users", "-q", "-c", fixed], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: jpost(con, "/api/kafka/groups/reset", req)[1]["members"] >= 1, "a member", 60)
                st, d = jpost(con, "/api/kafka/groups/reset", dict(req, dry_run=False))
                assert st == 409 and "the group has 1 member" in d["error"], d
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        else:
            # What the log holds now (the processor honours it although its sink keeps offsets of its own: see
            # docs/processing.md, "A reset of the group").
            db = sqlite3.connect(f"file:{tmp_path}/data/log.db?mode=ro", uri=True)
            got = db.execute("SELECT partition, next_offset FROM group_offsets WHERE grp=? AND topic=?",
                             (group, topic)).fetchall()
            assert sorted(got) == [(0, 0), (1, 0), (2, 0)], got
        st, au = jget(con, "/api/audit?limit=50")
        seen = [(e["action"], e["target"], e["status"]) for e in au["entries"]]
        assert ("group.reset", f"{group} on {topic}", 200) in seen, seen
        assert ("group.reset.dry_run", f"{group} on {topic}", 200) in seen, seen
        if backend == "kafka":
            assert ("group.reset", f"{group} on {topic}", 409) in seen, seen
    finally:
        con.close()
        if backend == "kafka":
            subprocess.run([SLUICE, "cql", "-e", f"DROP KEYSPACE IF EXISTS h22_{tag}"], capture_output=True, timeout=60)
