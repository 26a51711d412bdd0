"""`format: avro` on the real Kafka and Cassandra of tests/services, interoperating with Confluent's own Python
serializers through `sluice registry`:

(a) records that confluent-kafka's AvroSerializer writes (a writer schema with promotions, a writer-only nested field,
    a reader column the writer lacks) are decoded by `sluice process` into Cassandra, value for value;
(b) records that `sluice ingest` writes with format: avro are read by AvroDeserializer and equal the same
    generator's records written as JSON;
(c) poison records (no magic byte, an unknown schema id, bytes that do not decode) land in the DLQ with the reason;
and the embedded default (no Kafka, registry sqlite store in data_dir) runs format: avro end to end and refuses an
incompatible mapping change, saying which rule broke. SLUICE picks the binary."""
import datetime
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
BROKERS = os.environ.get("SL_KAFKA", "127.0.0.1:9092")
CASSANDRA = os.environ.get("SL_CASSANDRA", "127.0.0.1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry():
    d = tempfile.mkdtemp(prefix="sluice-avro-reg-")
    port = free_port()
    log = open(os.path.join(d, "registry.log"), "ab")
    p = subprocess.Popen([SLUICE, "registry", "--listen", f"127.0.0.1:{port}", "--data-dir", d], stdout=log,
                         stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 15
    while True:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            assert time.time() < deadline and p.poll() is None, "sluice registry did not start"
            time.sleep(0.05)
    yield url
    p.terminate()
    p.wait(timeout=15)
    log.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def names():
    tag = uuid.uuid4().hex[:10]
    made = {"topic": f"avro_{tag}", "ks": f"avro_ks_{tag}", "group": f"avro-g-{tag}"}
    yield made
    AdminClient({"bootstrap.servers": BROKERS}).delete_topics([made["topic"], made["topic"] + ".dlq",
                                                               made["topic"] + "_json"])
    try:
        from cassandra.cluster import Cluster
        c = Cluster([CASSANDRA])
        c.connect().execute(f"DROP KEYSPACE IF EXISTS {made['ks']}", timeout=60)
        c.shutdown()
    except Exception:
        pass


READER_MAPPING = """    key: id
    mapping:
      id:         { path: login.uuid, type: uuid }
      first_name: name.first
      age:        { path: dob.age, type: int }
      score:      { path: score, type: double }
      big:        { path: big, type: bigint }
      dob:        { path: dob.date, type: timestamp }
      born:       { path: born, type: date }
      active:     { path: active, type: boolean }
      nick:       nick
"""


def config(path, *, data_dir, topic, ks, group, mapping, registry_url=None, kafka=True, source="type: generate",
           count=None):
    src = f"      {source}\n" + (f"      seed: 7\n      count: {count}\n      page_size: 50\n" if count else "")
    text = (f"data_dir: {data_dir}\n"
            f"pipelines:\n  users:\n    source:\n{src}"
            f"    topic: {topic}\n    partitions: 1\n    group: {group}\n    format: avro\n"
            + (f"    registry_url: {registry_url}\n" if registry_url else "")
            + mapping
            + f"    sink:\n      keyspace: {ks}\n      table: users\n      primary_key: [id]\n")
    if kafka:
        text += (f"kafka:\n  brokers: {BROKERS}\ncassandra:\n  contact_points: [{CASSANDRA}]\n")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args, timeout=300):
    p = subprocess.run([SLUICE] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


WRITER = {
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [
        {"name": "extra", "type": {"type": "map", "values": {"type": "array", "items": {
            "type": "record", "name": "Tag", "fields": [{"name": "k", "type": "string"},
                                                       {"name": "v", "type": ["null", "bytes"]}]}}}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "first_name", "type": ["null", "string"], "default": None},
        {"name": "age", "type": "int"},
        {"name": "score", "type": "float"},
        {"name": "big", "type": "int"},
        {"name": "dob", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        {"name": "active", "type": "boolean"},
    ]}


def dlq_records(topic, n, timeout=60):
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": "dlq-reader-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(1)
        if m is None or m.error():
            continue
        out.append((m.value(), dict((k, v.decode()) for k, v in (m.headers() or []))))
    c.close()
    return out


def test_serializer_to_cassandra_and_poison_to_dlq(tmp_path, registry, names):
    topic = names["topic"]
    sr = SchemaRegistryClient({"url": registry})
    ser = AvroSerializer(sr, json.dumps(WRITER))
    ctx = SerializationContext(topic, MessageField.VALUE)
    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": BROKERS})
    expected = {}
    for i in range(50):
        rid = str(uuid.UUID(int=i + 1))
        rec = {"extra": {"t": [{"k": "a" * i, "v": b"\x00\x01" if i % 2 else None}]}, "id": rid,
               "first_name": None if i % 5 == 0 else f"name-{i}", "age": 20 + i, "score": i + 0.5,
               "big": -i * 1000,
               "dob": datetime.datetime(1990, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(days=i, milliseconds=7),
               "born": datetime.date(2000, 1, 1) + datetime.timedelta(days=i), "active": i % 2 == 0}
        expected[rid] = rec
        p.produce(topic, key=rid, value=ser(rec, ctx))
    good_id = int.from_bytes(ser(expected[str(uuid.UUID(int=1))], ctx)[1:5], "big")
    poison = [b'{"id": "not avro"}',                                 # no magic byte
              b"\x00\x00\x0f\x42\x3f" + b"\x00" * 10,               # schema id 999999: unknown
              b"\x00" + good_id.to_bytes(4, "big") + b"\x02\x02"]   # truncated datum
    for v in poison:
        p.produce(topic, value=v)
    p.flush(30)

    cfg = config(tmp_path / "a.yaml", data_dir=tmp_path / "data", topic=topic, ks=names["ks"], group=names["group"],
                 mapping=READER_MAPPING, registry_url=registry)
    rc, out = run(["process", "-c", str(cfg), "--drain"])
    assert rc == 0, out[-3000:]
    assert "50 written" in out or "written" in out, out[-2000:]

    from cassandra.cluster import Cluster
    cl = Cluster([CASSANDRA])
    s = cl.connect()
    rows = list(s.execute(f"SELECT * FROM {names['ks']}.users", timeout=60))
    cl.shutdown()
    assert len(rows) == 50
    for r in rows:
        e = expected[str(r.id)]
        assert r.first_name == e["first_name"]
        assert r.age == e["age"]
        assert r.score == e["score"]          # float -> double promotion (i + 0.5 is exact in a float)
        assert r.big == e["big"]              # int -> bigint promotion
        assert r.dob.replace(tzinfo=datetime.timezone.utc) == e["dob"]
        assert str(r.born) == e["born"].isoformat()
        assert r.active == e["active"]
        assert r.nick is None                 # a reader column the writer lacks
    dlq = dlq_records(topic + ".dlq", 3)
    assert len(dlq) == 3, dlq
    reasons = {v: h["sluice.error"] for v, h in dlq}
    assert all(h["sluice.stage"] == "decode" for _, h in dlq)
    assert "Unknown magic byte!" in reasons[poison[0]]
    assert "999999" in reasons[poison[1]] and "not found" in reasons[poison[1]]
    assert "truncated" in reasons[poison[2]] or "past the end" in reasons[poison[2]], reasons[poison[2]]


INGEST_MAPPING = """    key: id
    mapping:
      id:         { path: login.uuid, type: uuid }
      first_name: name.first
      age:        { path: dob.age, type: int }
      dob:        { path: dob.date, type: timestamp }
      registered: { path: registered.date, type: timestamp }
      email:      email
"""


def consume_all(topic, n, deser=None, timeout=60):
    c = Consumer({"bootstrap.servers": BROKERS, "group.id": "reader-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(1)
        if m is None or m.error():
            continue
        out.append(deser(m.value(), SerializationContext(topic, MessageField.VALUE)) if deser
                   else json.loads(m.value()))
    c.close()
    return out


def test_ingest_avro_read_by_deserializer(tmp_path, registry, names):
    topic = names["topic"]
    cfg = config(tmp_path / "b.yaml", data_dir=tmp_path / "data", topic=topic, ks=names["ks"], group=names["group"],
                 mapping=INGEST_MAPPING, registry_url=registry, count=200)
    rc, out = run(["ingest", "-c", str(cfg)])
    assert rc == 0, out[-3000:]
    # The same generator's records as JSON, for comparison (its own data_dir: the source cursor lives there).
    with open(cfg) as f:
        text = f.read().replace("    format: avro\n", "    format: json\n").replace(
            f"topic: {topic}\n", f"topic: {topic}_json\n").replace(str(tmp_path / "data"), str(tmp_path / "dj"))
    with open(tmp_path / "bj.yaml", "w") as f:
        f.write(text)
    rc, out = run(["ingest", "-c", str(tmp_path / "bj.yaml")])
    assert rc == 0, out[-3000:]
    sr = SchemaRegistryClient({"url": registry})
    subject = sr.get_latest_version(f"{topic}-value")
    fields = [f["name"] for f in json.loads(subject.schema.schema_str)["fields"]]
    assert fields == ["id", "first_name", "age", "dob", "registered", "email"]
    avro = consume_all(topic, 200, AvroDeserializer(sr))
    js = consume_all(topic + "_json", 200)
    assert len(avro) == 200 and len(js) == 200
    by_id = {j["id"]: j for j in js}

    def iso(dt):
        return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    for a in avro:
        j = by_id[str(a["id"])]
        assert a["first_name"] == j.get("first_name")
        assert a["age"] == j.get("age")
        assert a["email"] == j.get("email")
        assert iso(a["dob"]) == j["dob"]
        assert iso(a["registered"]) == j["registered"]


def test_embedded_default_and_incompatible_change(tmp_path):
    data = tmp_path / "data"
    cfg = config(tmp_path / "e.yaml", data_dir=data, topic="users_avro", ks="ks", group="g",
                 mapping=INGEST_MAPPING, kafka=False, count=300)
    rc, out = run(["up", "--until-done", "-c", str(cfg)])
    assert rc == 0, out[-3000:]
    db = sqlite3.connect(data / "ks.db")
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM users").fetchone() == (300, 300)
    reg = sqlite3.connect(data / "registry" / "registry.db")
    keys = [json.loads(k) for (k,) in reg.execute("SELECT key FROM schemas_log")]
    assert {"keytype": "SCHEMA", "subject": "users_avro-value", "version": 1, "magic": 1} in keys
    # A required column added without a default cannot read the data already written: refused, rule named.
    with open(cfg) as f:
        text = f.read().replace("      email:      email\n",
                                "      email:      email\n      gender:     { path: gender, required: true }\n")
    with open(tmp_path / "bad.yaml", "w") as f:
        f.write(text)
    rc, out = run(["ingest", "-c", str(tmp_path / "bad.yaml")])
    assert rc != 0
    assert "incompatible" in out and "READER_FIELD_MISSING_DEFAULT_VALUE" in out and "gender" in out, out[-2000:]


def test_embedded_avro_with_computed_columns_and_a_filter(tmp_path):
    """Computed columns and a filter on a format: avro pipeline: the writer schema (the mapping's, registered by
    ingest) lacks the computed columns, which the reader leaves null until compute fills them."""
    data = tmp_path / "data"
    mapping = INGEST_MAPPING + ("    compute:\n"
                                "      domain: \"split(email, '@', -1)\"\n"
                                "      decade: \"age / 10 * 10\"\n"
                                "    where: \"age >= 30\"\n"
                                "    outputs:\n"
                                "      by_domain:\n"
                                "        columns: [id, domain, decade]\n"
                                "        sink: { keyspace: ks, table: by_domain, primary_key: [id] }\n")
    cfg = config(tmp_path / "e.yaml", data_dir=data, topic="users_avro_c", ks="ks", group="g",
                 mapping=mapping, kafka=False, count=300)
    rc, out = run(["up", "--until-done", "-c", str(cfg)])
    assert rc == 0, out[-3000:]
    db = sqlite3.connect(data / "ks.db")
    got = db.execute("SELECT u.email, u.age, b.domain, b.decade FROM users u JOIN by_domain b ON u.id = b.id").fetchall()
    n_users = db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    n_out = db.execute("SELECT COUNT(*) FROM by_domain").fetchone()[0]
    assert 0 < n_users < 300 and n_users == n_out == len(got), (n_users, n_out, len(got))
    for email, age, domain, decade in got:
        assert age >= 30 and domain == email.split("@")[-1] and decade == age // 10 * 10, (email, age, domain, decade)
