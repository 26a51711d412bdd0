"""The operator's topic actions through the console, on the embedded log and on the real Kafka (skipped when
127.0.0.1:9092 is down): add partitions (never fewer: 400), view a topic's configuration, change it (the embedded
log applies retention.ms and refuses other names with the reason; on Kafka the broker takes it and the next read
shows it, null returns it to the default); each action is audited."""
import json
import os
import socket
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_console import CONFIG, Console, sluice  # noqa: E402

JSON = {"Content-Type": "application/json"}


def post(con, path, body, headers=None):
    status, _, raw = con.get(path, dict(JSON, **(headers or {})), method="POST", data=json.dumps(body).encode())
    return status, json.loads(raw)


def configs(con, topic):
    status, _, raw = con.get("/api/kafka/topics/config?topic=" + topic)
    assert status == 200, raw
    return {c["name"]: c for c in json.loads(raw)["configs"]}


def partitions(con, topic):
    k = json.loads(con.get("/api/kafka")[2])
    return {t["name"]: len(t["partitions"]) for t in k["topics"]}.get(topic)


def kafka_up():
    try:
        socket.create_connection(("127.0.0.1", 9092), timeout=2).close()
        return True
    except OSError:
        return False


def run_actions(con, topic, backend):
    status, r = post(con, "/api/kafka/topics", {"topic": topic, "partitions": 2})
    assert status == 201, r
    status, r = post(con, "/api/kafka/topics/partitions", {"topic": topic, "partitions": 4})
    assert status == 200 and r == {"topic": topic, "partitions_before": 2, "partitions": 4}, r
    status, r = post(con, "/api/kafka/topics/partitions", {"topic": topic, "partitions": 3})
    assert status == 400 and "must be more" in r["error"], r
    assert post(con, "/api/kafka/topics/partitions", {"topic": topic + "_nope", "partitions": 9})[0] == 404
    if backend == "embedded":
        c = configs(con, topic)
        assert c["retention.ms"]["value"] == "-1" and c["retention.ms"]["default"] is True
        status, r = post(con, "/api/kafka/topics/config", {"topic": topic, "name": "cleanup.policy", "value": "compact"})
        assert status == 400 and "retention.ms alone" in r["error"], r
        status, r = post(con, "/api/kafka/topics/config", {"topic": topic, "name": "retention.ms", "value": "soon"})
        assert status == 400
    status, r = post(con, "/api/kafka/topics/config", {"topic": topic, "name": "retention.ms", "value": "3600000"})
    assert status == 200, r
    c = configs(con, topic)
    assert c["retention.ms"]["value"] == "3600000" and c["retention.ms"]["default"] is False
    status, r = post(con, "/api/kafka/topics/config", {"topic": topic, "name": "retention.ms", "value": None})
    assert status == 200, r
    assert configs(con, topic)["retention.ms"]["default"] is True
    assert con.get("/api/kafka/topics/config?topic=" + topic + "_nope")[0] == 404
    audit = json.loads(con.get("/api/audit?limit=50")[2])["entries"]
    acts = [(e["action"], e["target"], e["status"]) for e in audit]
    assert ("topic.partitions", topic, 200) in acts and ("topic.partitions", topic, 400) in acts
    assert ("topic.config", topic, 200) in acts


def test_topic_actions_embedded(tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=20, topic="users_created", kafka=""))
    assert sluice("up", "--until-done", "-c", str(cfg), "-q").returncode == 0
    con = Console(str(cfg))
    try:
        run_actions(con, "ops_topic", "embedded")
        assert con.get("/api/kafka/topics/config")[0] == 400
    finally:
        con.close()


def test_embedded_retention_applies(tmp_path):
    """retention.ms on the embedded log removes the older messages (all but the newest of each partition here), so
    the low watermark moves and the high one stays."""
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=300, topic="users_created", kafka=""))
    assert sluice("up", "--until-done", "-c", str(cfg), "-q").returncode == 0
    con = Console(str(cfg))
    try:
        k = json.loads(con.get("/api/kafka")[2])
        before = {p["partition"]: (p["low"], p["high"]) for t in k["topics"] if t["name"] == "users_created"
                  for p in t["partitions"]}
        assert sum(h - l for l, h in before.values()) == 300
        assert post(con, "/api/kafka/topics/config", {"topic": "users_created", "name": "retention.ms", "value": "0"})[0] == 200
        import time
        time.sleep(0.6)  # a poll of the collector
        k = json.loads(con.get("/api/kafka")[2])
        after = {p["partition"]: (p["low"], p["high"]) for t in k["topics"] if t["name"] == "users_created"
                 for p in t["partitions"]}
        assert {p: h for p, (l, h) in after.items()} == {p: h for p, (l, h) in before.items()}
        assert all(h - l == 1 for l, h in after.values()), after
    finally:
        con.close()


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up)")
def test_topic_actions_kafka(tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=0, topic="console_t_" + uuid.uuid4().hex[:8],
                                 kafka="kafka: { brokers: 127.0.0.1:9092 }"))
    con = Console(str(cfg))
    try:
        topic = "console_ops_" + uuid.uuid4().hex[:8]
        run_actions(con, topic, "kafka")
        c = configs(con, topic)
        assert "cleanup.policy" in c and c["cleanup.policy"]["value"] == "delete"
        status, r = post(con, "/api/kafka/topics/config", {"topic": topic, "name": "no.such.config", "value": "1"})
        assert status == 400, r
    finally:
        con.close()
