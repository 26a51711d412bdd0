"""The console's part of a page load at scale (issue 22, docs/console.md "Page loads"): with 50 pipelines and 500
topics, every API call the Overview, Kafka and Alerts pages make is answered from the collector's last sample — no
request to the log or the sinks on the page's path — so the console's own time for each (its Server-Timing header,
the median of seven) stays far below the 300 ms a page may take. The budget (50 ms) is over ten times what it
takes on this machine under load, so a regression to per-request work on the log (hundreds of round trips) fails it
while a noisy machine does not. On the embedded log: tests/ui/scale.test.mjs does the same on the real Kafka with
the browser's figures."""
import json
import re
import statistics
import threading
import urllib.request

from test_console import Console, wait_for

BUDGET_MS = 50


def config(tmp_path):
    text = f"data_dir: {tmp_path / 'data'}\npipelines:\n"
    for i in range(50):
        text += (f"  p{i}:\n    source: {{ type: generate, seed: {i}, count: 10 }}\n    topic: scale_t{i:03d}\n"
                 f"    key: id\n    mapping:\n      id: {{ path: login.uuid, type: uuid }}\n"
                 f"    sink: {{ keyspace: ks, table: t{i} }}\n")
    text += "console:\n  poll_interval: 500ms\n"
    p = tmp_path / "sluice.yaml"
    p.write_text(text)
    return str(p)


def server_ms(con, path):
    req = urllib.request.Request(con.base + path, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        return float(re.search(r"dur=([0-9.]+)", r.headers["Server-Timing"]).group(1))


def test_page_apis_answer_from_the_sample_within_budget(tmp_path):
    con = Console(config(tmp_path))
    # every topic created is logged twice (created, audited): drain the console's output so it never blocks on it
    threading.Thread(target=lambda: [None for _ in con.p.stdout], daemon=True).start()
    try:
        for i in range(500):
            req = urllib.request.Request(con.base + "/api/kafka/topics", method="POST",
                                         headers={"Content-Type": "application/json"},
                                         data=json.dumps({"topic": f"scale_t{i:03d}", "partitions": 1}).encode())
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 201
        wait_for(lambda: len(json.loads(con.get("/api/kafka")[2])["topics"]) >= 500, "the 500 topics", timeout=60)
        ov = json.loads(con.get("/api/overview")[2])
        assert len(ov["pipelines"]) == 50
        figures = {}
        for path in ("/api/overview", "/api/kafka", "/api/alerts", "/api/history?since=0", "/api/whoami"):
            figures[path] = statistics.median(server_ms(con, path) for _ in range(7))
        print("console ms per answer, median of 7:", figures)
        assert all(ms < BUDGET_MS for ms in figures.values()), figures
    finally:
        con.close()
