"""The message browser decodes Confluent-framed Protobuf and JSON Schema values through the registry (issue 22), as
it does Avro: records that confluent-kafka's ProtobufSerializer wrote to the real Kafka through a `sluice registry` in
another process (nested and repeated messages, a map, an enum, 64-bit and zig-zag integers, bytes, a
google.protobuf.Timestamp, a non-zero message index) and JSON Schema framed values (the 5-byte frame, then the JSON
document) are shown as the JSON of what the producer had; a value whose schema id the registry does not know, and a
Protobuf value whose bytes are no message of its schema, show their raw bytes and say why, never a blank."""
import base64
import json
import subprocess
import uuid

import pytest

from test_console import CONFIG, SLUICE, Console, browse, free_port, kafka_up, wait_for, wait_http

pytest.importorskip("google.protobuf", reason="the protobuf package (tests/requirements.txt) is not installed")
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2  # noqa: E402

F = descriptor_pb2.FieldDescriptorProto


def order_class(tag):
    """shop_<tag>.Order in one file (imports only the well-known Timestamp), the second top-level message."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(name=f"shop_{tag}.proto", package=f"shop_{tag}", syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto"])
    f.message_type.add(name="Unused").field.add(name="x", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    st = f.enum_type.add(name="State")
    for i, n in enumerate(["NEW", "PAID", "SHIPPED"]):
        st.value.add(name=n, number=i)
    o = f.message_type.add(name="Order")
    line = o.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    line.field.add(name="qty", number=2, type=F.TYPE_SINT32, label=F.LABEL_OPTIONAL)
    line.field.add(name="price", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    entry = o.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    o.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    o.field.add(name="who", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    o.field.add(name="lines", number=3, type=F.TYPE_MESSAGE, type_name=f".shop_{tag}.Order.Line",
                label=F.LABEL_REPEATED)
    o.field.add(name="tags", number=4, type=F.TYPE_MESSAGE, type_name=f".shop_{tag}.Order.TagsEntry",
                label=F.LABEL_REPEATED)
    o.field.add(name="state", number=5, type=F.TYPE_ENUM, type_name=f".shop_{tag}.State", label=F.LABEL_OPTIONAL)
    o.field.add(name="at", number=6, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp",
                label=F.LABEL_OPTIONAL)
    o.field.add(name="blob", number=7, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    o.field.add(name="codes", number=8, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"shop_{tag}.Order"))


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up)")
def test_message_browser_decodes_protobuf_and_json_schema(tmp_path):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    tag = uuid.uuid4().hex[:8]
    port = free_port()
    reg = subprocess.Popen([SLUICE, "registry", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "reg")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    pb_topic, js_topic = f"console_pb_{tag}", f"console_js_{tag}"
    admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
    con = None
    try:
        wait_http(url + "/subjects", reg)
        client = SchemaRegistryClient({"url": url})
        for t in (pb_topic, js_topic):
            admin.create_topics([NewTopic(t, 1, 1)])[t].result(30)
        p = Producer({"bootstrap.servers": "127.0.0.1:9092"})

        Order = order_class(tag)
        ser = ProtobufSerializer(Order, client, {"use.deprecated.format": False})
        ctx = SerializationContext(pb_topic, MessageField.VALUE)
        want = []
        for i in range(12):
            m = Order(id=i * 10_000_000_000, who=f"buyer-{i}", state=i % 3, blob=b"\x00\xffAB", codes=[i, -i])
            for j in range(i % 3):
                m.lines.add(sku=f"sku-{i}-{j}", qty=-j, price=2.5 * j)
            if i % 2:
                m.tags["src"] = "web"
            m.at.seconds = 1_700_000_000 + i
            p.produce(pb_topic, value=ser(m, ctx))
            # proto3's JSON mapping with the declared names; fields at their default are left out
            w = {"id": str(i * 10_000_000_000)} if i else {}
            w.update({"who": f"buyer-{i}"})
            if i % 3:
                w["lines"] = [dict({"sku": f"sku-{i}-{j}"}, **({"qty": -j, "price": 2.5 * j} if j else {}))
                              for j in range(i % 3)]
            if i % 2:
                w["tags"] = {"src": "web"}
            if i % 3:
                w["state"] = ["NEW", "PAID", "SHIPPED"][i % 3]
            w["at"] = "2023-11-14T22:13:%02d.000Z" % (20 + i)
            w["blob"] = base64.b64encode(b"\x00\xffAB").decode()
            w["codes"] = [i, -i]
            want.append(w)
        pb_id = client.get_latest_version(f"{pb_topic}-value").schema_id
        # bytes that are no Order (a length running past the end), framed with the right id and message index [1]
        p.produce(pb_topic, value=b"\x00" + pb_id.to_bytes(4, "big") + b"\x02\x02" + b"\x1a\x7f\x01")

        js_schema = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                     "required": ["id"]}
        js_id = client.register_schema(f"{js_topic}-value", Schema(json.dumps(js_schema), "JSON"))
        docs = [{"id": i, "name": f"n{i}", "nested": {"ok": True, "list": [1, 2]}} for i in range(5)]
        for d in docs:
            p.produce(js_topic, value=b"\x00" + js_id.to_bytes(4, "big") + json.dumps(d).encode())
        p.produce(js_topic, value=b"\x00" + js_id.to_bytes(4, "big") + b"{not json")
        p.produce(js_topic, value=b"\x00" + (987654).to_bytes(4, "big") + b"{\"id\":1}")
        assert p.flush(30) == 0

        cfg = tmp_path / "sluice.yaml"
        cfg.write_text(CONFIG.format(data=tmp_path / "data", count=1, topic=pb_topic,
                                     kafka="kafka:\n  brokers: 127.0.0.1:9092") + f"  registry:\n    url: {url}\n")
        con = Console(str(cfg))

        msgs = wait_for(lambda: len(browse(con, pb_topic)) == 13 and browse(con, pb_topic), "the Protobuf topic",
                        timeout=30)
        good, bad = msgs[:12], msgs[12]
        assert [json.loads(m["value"]) for m in good] == want
        assert {(m["value_schema_id"], m["value_format"]) for m in good} == {(pb_id, "protobuf")}
        assert "value_error" not in good[0]
        # the bad one: its raw bytes, and why
        assert "value_schema_id" not in bad and bad["value"], bad
        assert bad["value"].startswith("\u0000") and "Order" in bad["value_error"], bad
        assert "past the end" in bad["value_error"], bad
        # decoded text is searchable
        hits = browse(con, pb_topic, q='"state":"SHIPPED"')
        assert [json.loads(m["value"])["who"] for m in hits] == [f"buyer-{i}" for i in range(12) if i % 3 == 2]

        msgs = browse(con, js_topic)
        assert [json.loads(m["value"]) for m in msgs[:5]] == docs
        assert {(m["value_schema_id"], m["value_format"]) for m in msgs[:5]} == {(js_id, "json")}
        assert msgs[5]["value"].endswith("{not json") and "is not JSON" in msgs[5]["value_error"], msgs[5]
        assert "987654" in msgs[6]["value_error"] and "not in the registry" in msgs[6]["value_error"], msgs[6]
        assert msgs[6]["value"].endswith('{"id":1}'), msgs[6]
    finally:
        if con:
            con.close()
        reg.terminate()
        reg.wait(timeout=15)
        admin.delete_topics([pb_topic, js_topic])
