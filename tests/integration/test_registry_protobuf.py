"""Confluent's Protobuf serializers against `sluice registry` through the real Kafka (issue 21's acceptance): a
message type built at run time whose file imports another file (a reference, registered by the serializer under the
import path's subject) and a well-known type (resolved by the registry itself), produced with ProtobufSerializer and
read back with ProtobufDeserializer, which fetches the writer schema and its references as serialized descriptors
(?format=serialized). SLUICE picks the binary as in test_registry_api.py."""
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext

from test_registry_api import kafka_up, registry  # noqa: F401  (the module's registry fixture)

pb = pytest.importorskip("google.protobuf", reason="the protobuf package (tests/requirements.txt) is not installed")
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2  # noqa: E402
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer  # noqa: E402

F = descriptor_pb2.FieldDescriptorProto


def message_class(tag):
    """sluicetest_<tag>.Reading {int64 id; sluicedep_<tag>.Place place; google.protobuf.Timestamp at; repeated
    string tags}, its Place in another file."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    dep = descriptor_pb2.FileDescriptorProto(name=f"sluice/place_{tag}.proto", package=f"sluicedep_{tag}", syntax="proto3")
    place = dep.message_type.add(name="Place")
    place.field.add(name="city", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    place.field.add(name="zip", number=2, type=F.TYPE_SINT32, label=F.LABEL_OPTIONAL)
    main = descriptor_pb2.FileDescriptorProto(name=f"sluice/reading_{tag}.proto", package=f"sluicetest_{tag}",
                                              syntax="proto3",
                                              dependency=[dep.name, "google/protobuf/timestamp.proto"])
    # A first message so the one serialized has a non-zero message index on the wire.
    main.message_type.add(name="Unused").field.add(name="x", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    r = main.message_type.add(name="Reading")
    r.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    r.field.add(name="place", number=2, type=F.TYPE_MESSAGE, type_name=f".sluicedep_{tag}.Place", label=F.LABEL_OPTIONAL)
    r.field.add(name="at", number=3, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", label=F.LABEL_OPTIONAL)
    r.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool.Add(dep)
    pool.Add(main)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"sluicetest_{tag}.Reading"))


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up kafka)")
def test_protobuf_serializer_round_trip_through_kafka(registry):  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    topic = f"registry-pb-{tag}"
    Reading = message_class(tag)
    client = SchemaRegistryClient({"url": registry.url})
    ser = ProtobufSerializer(Reading, client, {"use.deprecated.format": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = []
    for i in range(20):
        m = Reading(id=i, tags=[f"t{i}", "x"])
        m.place.city = f"c{i}"
        m.place.zip = -i
        m.at.seconds = 1700000000 + i
        records.append(m)
    p = Producer({"bootstrap.servers": "127.0.0.1:9092"})
    for m in records:
        p.produce(topic, value=ser(m, ctx))
    assert p.flush(30) == 0
    # The serializer registered the import as its own subject and the schema with a reference to it.
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject) for r in latest.schema.references] == [(f"sluice/place_{tag}.proto",) * 2]
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": topic, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    # A deserializer that knows only the registry's copy of the schema, not the message class's pool.
    de = ProtobufDeserializer(Reading, {"use.deprecated.format": False}, SchemaRegistryClient({"url": registry.url}))
    got, deadline = [], time.time() + 60
    while len(got) < len(records) and time.time() < deadline:
        msg = c.poll(1.0)
        if msg is None or msg.error():
            continue
        v = msg.value()
        assert v[0] == 0 and int.from_bytes(v[1:5], "big") == latest.schema_id
        assert v[5:7] == b"\x02\x02"  # message indexes [1]: the second top-level message (zig-zag varints)
        got.append(de(v, ctx))
    c.close()
    assert [(g.id, g.place.city, g.place.zip, g.at.seconds, list(g.tags)) for g in got] == \
        [(m.id, m.place.city, m.place.zip, m.at.seconds, list(m.tags)) for m in records]
    # The schema as the registry serves it, parsed by protobuf's own Python: the same messages and fields.
    raw = client.get_schema(latest.schema_id, fmt="serialized")
    import base64
    fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(raw.schema_str))
    assert [m.name for m in fdp.message_type] == ["Unused", "Reading"]
    assert [f.name for f in fdp.message_type[1].field] == ["id", "place", "at", "tags"]
