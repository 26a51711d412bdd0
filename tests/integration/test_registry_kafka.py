"""The registry's Kafka store (`sluice registry --store kafka`) on the real Kafka of tests/services: several
registries share one `_schemas` topic, one of them (the member of the group holding partition 0) writes and the
others forward to it; a killed leader is replaced; a late node replays everything; and a topic written in
Confluent's own key/value format reads back. Each test uses its own topic and group. SLUICE picks the binary."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
BROKERS = os.environ.get("SL_KAFKA", "127.0.0.1:9092")
HDR = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, tmp, topic, group, name):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(tmp, f"{name}.log")
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [SLUICE, "registry", "--store", "kafka", "--brokers", BROKERS, "--topic", topic, "--group", group,
             "--listen", f"127.0.0.1:{self.port}"], stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, f"sluice registry exited: {open(self.logpath).read()}"
            try:
                requests.get(self.url + "/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("sluice registry did not answer within 60 s")

    def register(self, subject, schema, timeout=60):
        """Registers through this node, retrying while the group has no leader (50004) or the leader is going
        away (50003): the answers a client sees during an election."""
        deadline = time.time() + timeout
        while True:
            r = requests.post(f"{self.url}/subjects/{subject}/versions", headers=HDR,
                              data=json.dumps({"schema": json.dumps(schema)}), timeout=40)
            if r.status_code == 200:
                return r.json()["id"]
            body = r.json()
            assert body["error_code"] in (50003, 50004, 50001), body
            assert time.time() < deadline, f"no leader took writes within {timeout} s: {body}"
            time.sleep(0.5)

    def get_schema(self, sid):
        r = requests.get(f"{self.url}/schemas/ids/{sid}", timeout=20)
        return r.status_code, r.json()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=30) == 0, open(self.logpath).read()
        self.log.close()


@pytest.fixture
def env():
    tmp = tempfile.mkdtemp(prefix="sluice-regkafka-")
    tag = uuid.uuid4().hex[:10]
    nodes = []
    yield tmp, f"_schemas_test_{tag}", f"schema-registry-{tag}", nodes
    for n in nodes:
        try:
            n.stop()
        except Exception:
            pass
    AdminClient({"bootstrap.servers": BROKERS}).delete_topics([f"_schemas_test_{tag}"])
    shutil.rmtree(tmp, ignore_errors=True)


def rec(name, *fields):
    return {"type": "record", "name": name, "fields": [{"name": f, "type": t} for f, t in fields]}


def test_two_nodes_share_one_registry_and_failover(env):
    tmp, topic, group, nodes = env
    a = Node(tmp, topic, group, "a")
    nodes.append(a)
    b = Node(tmp, topic, group, "b")
    nodes.append(b)
    s1 = rec("One", ("a", "string"))
    s2 = rec("Two", ("b", "long"))
    id1 = a.register("one-value", s1)
    id2 = b.register("two-value", s2)
    assert id1 != id2
    for n in (a, b):
        assert n.get_schema(id1) == (200, {"schema": json.dumps(s1, separators=(",", ":"))})
        assert n.get_schema(id2)[0] == 200
        assert sorted(requests.get(n.url + "/subjects", timeout=20).json()) == ["one-value", "two-value"]
    # The same schema through the other node: the same id.
    assert b.register("one-value", s1) == id1
    assert a.register("other-value", s1) == id1

    # Kill -9 whichever node leads; the other takes over writes.
    leader = None
    deadline = time.time() + 60
    while leader is None and time.time() < deadline:
        leading = [n for n in (a, b) if "leading" in open(n.logpath).read().split("following")[-1]]
        if len(leading) == 1:
            leader = leading[0]
        else:
            time.sleep(0.2)
    assert leader, "no single leader in the logs"
    other = b if leader is a else a
    leader.kill9()
    nodes.remove(leader)
    s3 = rec("Three", ("c", "double"))
    id3 = other.register("three-value", s3, timeout=90)
    assert id3 == max(id1, id2) + 1
    assert other.get_schema(id3)[0] == 200

    # A node started later replays the whole topic.
    c = Node(tmp, topic, group, "c")
    nodes.append(c)
    for sid in (id1, id2, id3):
        assert c.get_schema(sid)[0] == 200
    assert requests.get(f"{c.url}/subjects/three-value/versions/1", timeout=20).json()["id"] == id3
    # ... and writes through it reach the leader.
    id4 = c.register("four-value", rec("Four", ("d", "int")))
    assert other.get_schema(id4)[0] == 200


def test_reads_confluent_written_records(env):
    tmp, topic, group, nodes = env
    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(30)
    p = Producer({"bootstrap.servers": BROKERS})
    schema = json.dumps(rec("Written", ("x", "string"), ("y", "int")), separators=(",", ":"))
    # Exactly what Confluent's KafkaStore writes: keys with a fixed field order, SCHEMA values, a CONFIG record,
    # a NOOP, and a second version soft-deleted.
    recs = [
        ({"keytype": "NOOP", "magic": 0}, None),
        ({"keytype": "CONFIG", "subject": None, "magic": 0}, {"compatibilityLevel": "FULL"}),
        ({"keytype": "SCHEMA", "subject": "conf-value", "version": 1, "magic": 1},
         {"subject": "conf-value", "version": 1, "id": 7, "schema": schema, "deleted": False}),
        ({"keytype": "SCHEMA", "subject": "conf-value", "version": 2, "magic": 1},
         {"subject": "conf-value", "version": 2, "id": 9, "schema": "\"string\"", "deleted": True}),
        ({"keytype": "SCHEMA", "subject": "json-value", "version": 1, "magic": 1},
         {"subject": "json-value", "version": 1, "id": 8, "schemaType": "JSON", "schema": "{\"type\":\"object\"}",
          "deleted": False}),
    ]
    for k, v in recs:
        p.produce(topic, key=json.dumps(k, separators=(",", ":")),
                  value=None if v is None else json.dumps(v, separators=(",", ":")), partition=0)
    p.flush(30)
    n = Node(tmp, topic, group, "conf")
    nodes.append(n)
    assert n.get_schema(7) == (200, {"schema": schema})
    assert n.get_schema(8) == (200, {"schemaType": "JSON", "schema": "{\"type\":\"object\"}"})
    assert n.get_schema(9)[0] == 200  # soft-deleted versions are still served by id
    assert requests.get(n.url + "/subjects/conf-value/versions", timeout=20).json() == [1]
    assert requests.get(n.url + "/config", timeout=20).json() == {"compatibilityLevel": "FULL"}
    # New ids continue after the highest seen.
    assert n.register("new-value", rec("New", ("z", "boolean"))) == 10


def test_contexts_keep_their_ids_through_the_topic(env):
    """Confluent's records of two contexts with the same id number: the context travels in the qualified subject, so
    a node replaying the topic, and a second node following the first, count ids per context as Confluent does."""
    tmp, topic, group, nodes = env
    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(30)
    p = Producer({"bootstrap.servers": BROKERS})
    sd = json.dumps(rec("Dflt", ("x", "string")), separators=(",", ":"))
    sc = json.dumps(rec("Ctx", ("y", "int")), separators=(",", ":"))
    for subject, sid, schema in (("d-value", 1, sd), (":.ctx:c-value", 1, sc), (":.ctx:e-value", 2, sd)):
        k = {"keytype": "SCHEMA", "subject": subject, "version": 1, "magic": 1}
        v = {"subject": subject, "version": 1, "id": sid, "schema": schema, "deleted": False}
        p.produce(topic, key=json.dumps(k, separators=(",", ":")), value=json.dumps(v, separators=(",", ":")),
                  partition=0)
    p.flush(30)
    a = Node(tmp, topic, group, "a")
    nodes.append(a)

    def check(n):
        assert n.get_schema(1) == (200, {"schema": sd})
        r = requests.get(f"{n.url}/schemas/ids/1?subject=:.ctx:", timeout=20)
        assert r.status_code == 200 and r.json()["schema"] == sc
        r = requests.get(f"{n.url}/schemas/ids/2?subject=:.ctx:e-value", timeout=20)
        assert r.status_code == 200 and r.json()["schema"] == sd

    check(a)
    assert a.get_schema(2)[0] == 404  # id 2 is .ctx's only
    # new ids continue per context: 3 in .ctx, 2 in the default context
    assert a.register(":.ctx:n-value", rec("N", ("n", "long"))) == 3
    assert a.register("n-value", rec("N", ("n", "long"))) == 2
    b = Node(tmp, topic, group, "b")
    nodes.append(b)
    deadline = time.time() + 30
    while requests.get(f"{b.url}/schemas/ids/3?subject=:.ctx:", timeout=20).status_code != 200:
        assert time.time() < deadline, "the second node did not catch up within 30 s"
        time.sleep(0.2)
    check(b)
    assert b.get_schema(2)[0] == 200
    # a registration through either node in the context takes the context's next id
    assert b.register(":.ctx:m-value", rec("M", ("m", "boolean"))) == 4
