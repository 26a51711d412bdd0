"""`format: protobuf` on the real Kafka and Cassandra of tests/services, interoperating with confluent-kafka's own
Protobuf serializers through `sluice registry` (issue 21):

(a) records that ProtobufSerializer writes (a message that is not the file's first, so message indexes [1]; a file
    it imports, registered as a reference that process resolves; an enum,
    sint32/float/int32 promotions, a google.protobuf.Timestamp, a writer-only repeated field and nested message, a
    reader column the writer lacks) are decoded by `sluice process` into Cassandra, value for value, and poison
    records (no magic byte, an unknown schema id, a truncated message) land in the DLQ with the reason;
(b) records that `sluice ingest` writes with format: protobuf are read by ProtobufDeserializer (its message class
    built from the registry's serialized descriptor) and equal the same generator's records written as JSON;
(c) the embedded default (no Kafka, the registry's sqlite store in data_dir) runs format: protobuf end to end.
SLUICE picks the binary."""
import base64
import datetime
import json
import sqlite3
import uuid

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext

from test_avro_stream import (BROKERS, CASSANDRA, INGEST_MAPPING, consume_all, dlq_records, names,  # noqa: F401
                              registry, run)

pytest.importorskip("google.protobuf", reason="the protobuf package (tests/requirements.txt) is not installed")
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2  # noqa: E402
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer  # noqa: E402

F = descriptor_pb2.FieldDescriptorProto


def config(path, *, data_dir, topic, ks, group, mapping, registry_url=None, kafka=True, count=None):
    src = "      type: generate\n" + (f"      seed: 7\n      count: {count}\n      page_size: 50\n" if count else "")
    text = (f"data_dir: {data_dir}\n"
            f"pipelines:\n  users:\n    source:\n{src}"
            f"    topic: {topic}\n    partitions: 1\n    group: {group}\n    format: protobuf\n"
            + (f"    registry_url: {registry_url}\n" if registry_url else "")
            + mapping
            + f"    sink:\n      keyspace: {ks}\n      table: users\n      primary_key: [id]\n")
    if kafka:
        text += f"kafka:\n  brokers: {BROKERS}\ncassandra:\n  contact_points: [{CASSANDRA}]\n"
    with open(path, "w") as f:
        f.write(text)
    return path


def writer_class(tag):
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    # another file the writer imports: the serializer registers it as a reference, process must resolve it
    dep = descriptor_pb2.FileDescriptorProto(name=f"sluice/addr_{tag}.proto", package=f"acmedep_{tag}", syntax="proto3")
    dep.message_type.add(name="Addr").field.add(name="city", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool.Add(dep)
    f = descriptor_pb2.FileDescriptorProto(name=f"sluice/user_{tag}.proto", package=f"acme_{tag}", syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto", dep.name])
    f.message_type.add(name="Other").field.add(name="x", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    color = f.enum_type.add(name="Color")
    color.value.add(name="RED", number=0)
    color.value.add(name="BLUE", number=1)
    u = f.message_type.add(name="User")
    inner = u.nested_type.add(name="Inner")
    inner.field.add(name="k", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    O = F.LABEL_OPTIONAL
    u.field.add(name="tags", number=1, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    u.field.add(name="id", number=2, type=F.TYPE_STRING, label=O)
    u.field.add(name="first_name", number=3, type=F.TYPE_STRING, label=O)
    u.field.add(name="age", number=4, type=F.TYPE_SINT32, label=O)
    u.field.add(name="score", number=5, type=F.TYPE_FLOAT, label=O)
    u.field.add(name="big", number=6, type=F.TYPE_INT32, label=O)
    u.field.add(name="dob", number=7, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=O)
    u.field.add(name="born", number=8, type=F.TYPE_INT32, label=O)
    u.field.add(name="active", number=9, type=F.TYPE_BOOL, label=O)
    u.field.add(name="color", number=10, type=F.TYPE_ENUM, type_name=f".acme_{tag}.Color", label=O)
    u.field.add(name="inner", number=11, type=F.TYPE_MESSAGE, type_name=f".acme_{tag}.User.Inner", label=O)
    u.field.add(name="addr", number=12, type=F.TYPE_MESSAGE, type_name=f".acmedep_{tag}.Addr", label=O)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"acme_{tag}.User"))


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
      color:      color
      nick:       nick
"""


def test_serializer_to_cassandra_and_poison_to_dlq(tmp_path, registry, names):  # noqa: F811
    topic = names["topic"]
    tag = uuid.uuid4().hex[:8]
    User = writer_class(tag)
    sr = SchemaRegistryClient({"url": registry})
    ser = ProtobufSerializer(User, sr, {"use.deprecated.format": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": BROKERS})
    expected = {}
    first = None
    for i in range(50):
        rid = str(uuid.UUID(int=i + 1))
        m = User(tags=["a" * i, "b"], id=rid, first_name=f"name-{i}", age=20 - i, score=i + 0.5, big=-i * 1000,
                 born=10957 + i, active=i % 2 == 0, color=i % 2)
        m.dob.seconds = 631152000 + i * 86400
        m.dob.nanos = 7_000_000
        m.inner.k = "skip me"
        m.addr.city = f"city-{i}"
        v = ser(m, ctx)
        first = first or v
        expected[rid] = m
        p.produce(topic, key=rid, value=v)
    assert first[5:7] == b"\x02\x02"  # message indexes [1]: User is the file's second message
    latest = sr.get_latest_version(f"{topic}-value")
    assert [r.name for r in latest.schema.references] == [f"sluice/addr_{tag}.proto"]
    good_id = int.from_bytes(first[1:5], "big")
    poison = [b'{"id": "not protobuf"}',                              # no magic byte
              b"\x00\x00\x0f\x42\x3f\x00" + b"\x00" * 10,             # schema id 999999: unknown
              b"\x00" + good_id.to_bytes(4, "big") + b"\x02\x02\x12\x30ab"]  # id field length 48, 2 bytes there
    for v in poison:
        p.produce(topic, value=v)
    assert p.flush(30) == 0

    cfg = config(tmp_path / "a.yaml", data_dir=tmp_path / "data", topic=topic, ks=names["ks"], group=names["group"],
                 mapping=READER_MAPPING, registry_url=registry)
    rc, out = run(["process", "-c", str(cfg), "--drain"])
    assert rc == 0, out[-3000:]

    from cassandra.cluster import Cluster
    cl = Cluster([CASSANDRA])
    s = cl.connect()
    rows = list(s.execute(f"SELECT * FROM {names['ks']}.users", timeout=60))
    cl.shutdown()
    assert len(rows) == 50
    for r in rows:
        e = expected[str(r.id)]
        assert r.first_name == e.first_name
        assert r.age == e.age                       # sint32 -> int
        assert r.score == e.score                   # float -> double (i + 0.5 is exact in a float)
        assert r.big == e.big                       # int32 -> bigint
        assert r.dob.replace(tzinfo=datetime.timezone.utc) == \
            datetime.datetime(1990, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
                days=(e.dob.seconds - 631152000) // 86400, milliseconds=7)
        assert str(r.born) == (datetime.date(1970, 1, 1) + datetime.timedelta(days=e.born)).isoformat()
        assert r.active == e.active
        assert r.color == ("BLUE" if e.color else "RED")  # enum -> its symbol
        assert r.nick is None                       # a reader column the writer lacks
    dlq = dlq_records(topic + ".dlq", 3)
    assert len(dlq) == 3, dlq
    reasons = {v: h["sluice.error"] for v, h in dlq}
    assert all(h["sluice.stage"] == "decode" for _, h in dlq)
    assert "Unknown magic byte!" in reasons[poison[0]]
    assert "999999" in reasons[poison[1]] and "not found" in reasons[poison[1]]
    assert "past the end" in reasons[poison[2]], reasons[poison[2]]


def reader_class(registry, subject):
    """The message class of what ingest registered, from the registry's serialized descriptor alone."""
    r = requests.get(f"{registry}/subjects/{subject}/versions/latest", params={"format": "serialized"}, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["schemaType"] == "PROTOBUF"
    fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(body["schema"]))
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    name = (fdp.package + "." if fdp.package else "") + fdp.message_type[0].name
    return fdp, message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def test_ingest_protobuf_read_by_deserializer(tmp_path, registry, names):  # noqa: F811
    topic = names["topic"]
    cfg = config(tmp_path / "b.yaml", data_dir=tmp_path / "data", topic=topic, ks=names["ks"], group=names["group"],
                 mapping=INGEST_MAPPING, registry_url=registry, count=200)
    rc, out = run(["ingest", "-c", str(cfg)])
    assert rc == 0, out[-3000:]
    with open(cfg) as f:
        text = f.read().replace("    format: protobuf\n", "    format: json\n").replace(
            f"topic: {topic}\n", f"topic: {topic}_json\n").replace(str(tmp_path / "data"), str(tmp_path / "dj"))
    with open(tmp_path / "bj.yaml", "w") as f:
        f.write(text)
    rc, out = run(["ingest", "-c", str(tmp_path / "bj.yaml")])
    assert rc == 0, out[-3000:]
    fdp, Msg = reader_class(registry, f"{topic}-value")
    assert [f.name for f in fdp.message_type[0].field] == ["id", "first_name", "age", "dob", "registered", "email"]
    de = ProtobufDeserializer(Msg, {"use.deprecated.format": False})
    pbs = consume_all(topic, 200, de)
    js = consume_all(topic + "_json", 200)
    assert len(pbs) == 200 and len(js) == 200
    by_id = {j["id"]: j for j in js}

    def iso(ts):
        ms = ts.ToMilliseconds()
        dt = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    for a in pbs:
        j = by_id[a.id]
        opt = lambda n: getattr(a, n) if a.HasField(n) else None  # noqa: E731  (optional: explicit presence)
        assert opt("first_name") == j.get("first_name")
        assert opt("age") == j.get("age")
        assert opt("email") == j.get("email")
        assert iso(a.dob) == j["dob"]
        assert iso(a.registered) == j["registered"]


def test_embedded_default(tmp_path):
    data = tmp_path / "data"
    cfg = config(tmp_path / "e.yaml", data_dir=data, topic="users_pb", ks="ks", group="g",
                 mapping=INGEST_MAPPING, kafka=False, count=300)
    rc, out = run(["up", "--until-done", "-c", str(cfg)])
    assert rc == 0, out[-3000:]
    db = sqlite3.connect(data / "ks.db")
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM users").fetchone() == (300, 300)
    assert db.execute("SELECT COUNT(*) FROM users WHERE email IS NULL OR dob IS NULL").fetchone() == (0,)
    reg = sqlite3.connect(data / "registry" / "registry.db")
    vals = [json.loads(v) for (v,) in reg.execute("SELECT value FROM schemas_log WHERE value IS NOT NULL")]
    assert any(v.get("schemaType") == "PROTOBUF" and v.get("subject") == "users_pb-value" for v in vals), vals
