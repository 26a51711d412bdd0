"""`sluice registry` driven by Confluent's own Python client (confluent-kafka's SchemaRegistryClient, AvroSerializer,
AvroDeserializer) and by raw HTTP for status codes and error bodies, as a Confluent Schema Registry user would.

Each test module run starts one registry on a free port with a fresh data directory; SLUICE picks the binary (e.g.
the ASan build). The Kafka round trip needs the broker of tests/services on 127.0.0.1:9092."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
CT = "application/vnd.schemaregistry.v1+json"
HDR = {"Content-Type": CT}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.url = None

    def start(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(os.path.join(self.data_dir, "registry.log"), "ab")
        self.proc = subprocess.Popen(
            [SLUICE, "registry", "--listen", f"127.0.0.1:{port}", "--data-dir", self.data_dir],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice registry exited with {self.proc.returncode}")
            try:
                requests.get(self.url + "/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("sluice registry did not answer within 15 s")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            assert self.proc.wait(timeout=15) == 0, "sluice registry did not exit cleanly on SIGTERM"
            self.proc = None
            self.log.close()


@pytest.fixture(scope="module")
def registry():
    d = tempfile.mkdtemp(prefix="sluice-registry-")
    r = Registry(d)
    r.start()
    yield r
    r.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def client(registry):
    return SchemaRegistryClient({"url": registry.url})


def subject(prefix="s"):
    # Subjects with characters that must be URL-encoded, as users' subjects often are.
    return f"{prefix}/{uuid.uuid4().hex[:8]} é-value"


def rec(*fields, name="User"):
    return json.dumps({"type": "record", "name": name, "namespace": "com.example",
                       "fields": [dict(f) for f in fields]})


def avro(text):
    return Schema(text, "AVRO")


def err_of(exc):
    return exc.value.http_status_code, exc.value.error_code


def raw(registry, method, path, body=None, headers=HDR, data=None):
    url = registry.url + path
    r = requests.request(method, url, headers=headers, data=data if data is not None else
                         (json.dumps(body) if body is not None else None), timeout=30)
    return r


# ---- register, look up, list ----

def test_register_is_idempotent_and_ids_are_shared(client):
    s1, s2 = subject(), subject()
    text = rec({"name": "id", "type": "long"}, {"name": "name", "type": "string"})
    id1 = client.register_schema(s1, avro(text))
    assert client.register_schema(s1, avro(text)) == id1
    # Whitespace and key order do not make another schema: the canonical form does the matching.
    reordered = json.dumps(json.loads(text), indent=2, sort_keys=True)
    assert client.register_schema(s1, avro(reordered)) == id1
    assert client.register_schema(s2, avro(text)) == id1
    assert client.get_versions(s1) == [1]
    got = client.get_schema(id1)
    assert got.schema_type == "AVRO"
    assert json.loads(got.schema_str) == json.loads(text)
    latest = client.get_latest_version(s1)
    assert (latest.schema_id, latest.subject, latest.version) == (id1, s1, 1)
    found = client.lookup_schema(s2, avro(reordered))
    assert (found.schema_id, found.version) == (id1, 1)
    assert s1 in client.get_subjects() and s2 in client.get_subjects()
    assert sorted(client.get_subjects_by_schema_id(id1)) == sorted([s1, s2])


def test_new_schema_gets_new_id_and_version(client):
    s = subject()
    id1 = client.register_schema(s, avro(rec({"name": "a", "type": "int"})))
    id2 = client.register_schema(s, avro(rec({"name": "a", "type": "int"},
                                             {"name": "b", "type": "string", "default": ""})))
    assert id2 != id1
    assert client.get_versions(s) == [1, 2]
    assert client.get_version(s, 1).schema_id == id1
    assert client.get_version(s, "latest").schema_id == id2


def test_lookup_unknown_schema_and_subject(client):
    s = subject()
    client.register_schema(s, avro('"string"'))
    with pytest.raises(SchemaRegistryError) as e:
        client.lookup_schema(s, avro('"int"'))
    assert err_of(e) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as e:
        client.lookup_schema(subject(), avro('"int"'))
    assert err_of(e) == (404, 40401)


# ---- compatibility at every level ----

V1 = rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"})
BACK_ONLY = rec({"name": "a", "type": "int"})  # drops b: new reads old; old cannot fill b
FWD_ONLY = rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"}, {"name": "c", "type": "int"})
FULL_OK = rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"},
              {"name": "c", "type": "string", "default": "x"})

EXPECT = {  # level -> (BACK_ONLY, FWD_ONLY, FULL_OK)
    "NONE": (True, True, True),
    "BACKWARD": (True, False, True),
    "FORWARD": (False, True, True),
    "FULL": (False, False, True),
    "BACKWARD_TRANSITIVE": (True, False, True),
    "FORWARD_TRANSITIVE": (False, True, True),
    "FULL_TRANSITIVE": (False, False, True),
}


@pytest.mark.parametrize("level", sorted(EXPECT))
def test_compatibility_levels(client, level):
    s = subject("compat")
    client.set_compatibility(s, level)
    assert client.get_compatibility(s) == level
    client.register_schema(s, avro(V1))
    for cand, want in zip((BACK_ONLY, FWD_ONLY, FULL_OK), EXPECT[level]):
        assert client.test_compatibility(s, avro(cand)) is want, (level, cand)
        assert client.test_compatibility_all_versions(s, avro(cand)) is want, (level, cand)
    # Registration enforces the same verdict: 409 with a message naming the rule.
    for cand, want in zip((BACK_ONLY, FWD_ONLY), EXPECT[level][:2]):
        if want:
            continue
        with pytest.raises(SchemaRegistryError) as e:
            client.register_schema(s, avro(cand))
        assert err_of(e) == (409, 409)
        assert "Incompatibility{type:" in e.value.error_message
    client.register_schema(s, avro(FULL_OK))


TRANSITIVE = {
    # level: (v1, v2, candidate): the candidate is compatible with v2 only
    "BACKWARD": (rec({"name": "a", "type": "int"}),
                 rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}),
                 rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"})),
    "FORWARD": (rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"}),
                rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}),
                rec({"name": "a", "type": "int"})),
    "FULL": (rec({"name": "a", "type": "int"}, {"name": "b", "type": "int"}),
             rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}),
             rec({"name": "a", "type": "int"})),
}


@pytest.mark.parametrize("base", sorted(TRANSITIVE))
def test_transitive_levels_check_every_version(client, base):
    v1, v2, cand = TRANSITIVE[base]
    plain, trans = subject("t"), subject("tt")
    client.set_compatibility(plain, base)
    client.set_compatibility(trans, base + "_TRANSITIVE")
    for s in (plain, trans):
        client.register_schema(s, avro(v1))
        client.register_schema(s, avro(v2))
    assert client.test_compatibility_all_versions(plain, avro(cand)) is True
    assert client.test_compatibility_all_versions(trans, avro(cand)) is False
    assert client.register_schema(plain, avro(cand)) > 0
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(trans, avro(cand))
    assert err_of(e) == (409, 409)


def test_verbose_compatibility_says_which_rule_broke(registry, client):
    s = subject()
    client.register_schema(s, avro(rec({"name": "a", "type": "int"})))
    body = {"schema": rec({"name": "a", "type": "int"}, {"name": "age", "type": "int"})}
    r = raw(registry, "POST", f"/compatibility/subjects/{requests.utils.quote(s, safe='')}/versions/latest?verbose=true",
            body)
    assert r.status_code == 200
    j = r.json()
    assert j["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m and "age" in m for m in j["messages"])
    r = raw(registry, "POST", f"/compatibility/subjects/{requests.utils.quote(s, safe='')}/versions", body)
    assert r.json() == {"is_compatible": False}


def test_json_schema(client):
    s = subject("json")
    v1 = json.dumps({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False})
    v2 = json.dumps({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
                     "additionalProperties": False})
    bad = json.dumps({"type": "object", "properties": {"a": {"type": "number"}}, "additionalProperties": False})
    id1 = client.register_schema(s, Schema(v1, "JSON"))
    assert client.get_schema(id1).schema_type == "JSON"
    assert client.test_compatibility(s, Schema(v2, "JSON")) is True
    assert client.test_compatibility(s, Schema(bad, "JSON")) is False
    client.register_schema(s, Schema(v2, "JSON"))
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, Schema(bad, "JSON"))
    assert err_of(e) == (409, 409)
    assert "TYPE_CHANGED #/properties/a" in e.value.error_message


def test_protobuf_schemas(client):
    s = subject("pb")
    sid = client.register_schema(s, Schema('syntax = "proto3"; package t; message M { int32 a = 1; }', "PROTOBUF"))
    got = client.get_schema(sid)
    assert got.schema_type == "PROTOBUF" and "message M" in got.schema_str
    # BACKWARD: a field's scalar group changed is refused with Confluent's difference name.
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, Schema('syntax = "proto3"; package t; message M { string a = 1; }', "PROTOBUF"))
    assert err_of(e) == (409, 409)
    assert "FIELD_SCALAR_KIND_CHANGED" in e.value.error_message
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, Schema('syntax = "proto3"; message M { int32 a = 1 }', "PROTOBUF"))
    assert err_of(e) == (422, 42201)


# ---- deletes ----

def test_soft_and_permanent_deletes(registry, client):
    s = subject("del")
    a = avro(rec({"name": "a", "type": "int"}, name="DelOnly"))  # a name no other test uses: ids are shared
    b = avro(rec({"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 1}, name="DelOnly"))
    ida = client.register_schema(s, a)
    idb = client.register_schema(s, b)
    assert client.delete_version(s, 2) == 2
    assert client.get_versions(s) == [1]
    assert client.get_versions(s, deleted=True) == [1, 2]
    assert client.get_schema(idb).schema_str  # still served by id
    with pytest.raises(SchemaRegistryError) as e:
        client.get_version(s, 2)
    assert err_of(e) == (404, 40402)
    assert client.get_version(s, 2, deleted=True).schema_id == idb
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(s, 2)
    assert err_of(e) == (404, 40406)
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(s, 1, permanent=True)
    assert err_of(e) == (404, 40407)
    # Re-registering a soft-deleted schema reuses its id under the next version (the client caches ids: clear it).
    client.clear_caches()
    assert client.register_schema(s, b) == idb
    assert client.get_versions(s) == [1, 3]
    assert client.delete_version(s, 2, permanent=True) == 2
    assert client.get_versions(s, deleted=True) == [1, 3]
    # Subjects: permanent needs soft first; soft twice is 40404.
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_subject(s, permanent=True)
    assert err_of(e) == (404, 40405)
    assert client.delete_subject(s) == [1, 3]
    assert s not in client.get_subjects()
    assert s in client.get_subjects(deleted=True)
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_subject(s)
    assert err_of(e) == (404, 40404)
    assert client.delete_subject(s, permanent=True) == [1, 3]
    with pytest.raises(SchemaRegistryError) as e:
        client.get_versions(s, deleted=True)
    assert err_of(e) == (404, 40401)
    r = raw(registry, "GET", f"/schemas/ids/{ida}")  # every version that used it is gone
    assert (r.status_code, r.json()["error_code"]) == (404, 40403)


def test_ids_of_fully_deleted_schemas_are_gone(registry, client):
    s = subject()
    i = client.register_schema(s, avro(rec({"name": "only_here", "type": "int"}, name="Gone")))
    client.delete_subject(s)
    assert raw(registry, "GET", f"/schemas/ids/{i}").status_code == 200
    client.delete_subject(s, permanent=True)
    r = raw(registry, "GET", f"/schemas/ids/{i}")
    assert (r.status_code, r.json()["error_code"]) == (404, 40403)


# ---- references ----

def test_avro_references(registry, client):
    addr_subject = subject("ref")
    addr = json.dumps({"type": "record", "name": "Address", "namespace": "com.example",
                       "fields": [{"name": "city", "type": "string"}]})
    client.register_schema(addr_subject, avro(addr))
    user = json.dumps({"type": "record", "name": "Person", "namespace": "com.example",
                       "fields": [{"name": "home", "type": "com.example.Address"}]})
    s = subject()
    uid = client.register_schema(s, Schema(user, "AVRO", [SchemaReference("com.example.Address", addr_subject, 1)]))
    got = client.get_schema(uid)
    assert got.references[0].subject == addr_subject
    assert client.get_referenced_by(addr_subject, 1) == [uid]
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(addr_subject, 1)
    assert err_of(e) == (422, 42206)
    with pytest.raises(SchemaRegistryError) as e:  # unresolvable name without the reference
        client.register_schema(subject(), avro(user))
    assert err_of(e) == (422, 42201)


# ---- config and mode ----

def test_config_global_and_subject(registry, client):
    from confluent_kafka.schema_registry import ConfigCompatibilityLevel, ServerConfig
    assert raw(registry, "GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}
    s = subject()
    r = raw(registry, "GET", f"/config/{requests.utils.quote(s, safe='')}")
    assert (r.status_code, r.json()["error_code"]) == (404, 40408)
    r = raw(registry, "GET", f"/config/{requests.utils.quote(s, safe='')}?defaultToGlobal=true")
    assert r.json() == {"compatibilityLevel": "BACKWARD"}
    client.set_config(s, ServerConfig(compatibility=ConfigCompatibilityLevel.FULL))
    assert client.get_config(s).compatibility_level == "FULL"
    assert raw(registry, "PUT", "/config", {"compatibility": "FORWARD"}).json() == {"compatibility": "FORWARD"}
    assert client.get_compatibility() == "FORWARD"
    assert client.get_config(s).compatibility_level == "FULL"  # subject setting wins
    assert client.delete_config(s).compatibility_level == "FULL"
    r = raw(registry, "DELETE", "/config")
    assert r.json() == {"compatibilityLevel": "FORWARD"}
    assert client.get_compatibility() == "BACKWARD"
    r = raw(registry, "PUT", "/config", {"compatibility": "SIDEWAYS"})
    assert (r.status_code, r.json()["error_code"]) == (422, 42203)


def test_modes(registry, client):
    s = subject("mode")
    client.register_schema(s, avro('"string"'))
    assert client.get_global_mode() == "READWRITE"
    assert client.update_mode(s, "READONLY") == "READONLY"
    assert client.get_mode(s) == "READONLY"
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, avro('"bytes"'))
    assert err_of(e) == (422, 42205)
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(s, 1)
    assert err_of(e) == (422, 42205)
    assert client.delete_mode(s) == "READONLY"
    client.register_schema(s, avro('"bytes"'))
    r = raw(registry, "GET", f"/mode/{requests.utils.quote(s, safe='')}")
    assert (r.status_code, r.json()["error_code"]) == (404, 40409)
    r = raw(registry, "PUT", "/mode", {"mode": "SOMETIMES"})
    assert (r.status_code, r.json()["error_code"]) == (422, 42204)
    # IMPORT needs an empty registry (or force)
    r = raw(registry, "PUT", "/mode", {"mode": "IMPORT"})
    assert (r.status_code, r.json()["error_code"]) == (422, 42205)


# ---- raw HTTP: status codes, error bodies, content types ----

@pytest.mark.parametrize("method,path,body,status,code", [
    ("GET", "/subjects/nope%2Fnot-here/versions", None, 404, 40401),
    ("GET", "/subjects/nope/versions/0", None, 422, 42202),
    ("GET", "/subjects/nope/versions/2147483648", None, 422, 42202),
    ("GET", "/subjects/nope/versions/earliest", None, 422, 42202),
    ("GET", "/schemas/ids/987654", None, 404, 40403),
    ("GET", "/schemas/ids/notanumber", None, 404, 404),
    ("GET", "/no/such/route", None, 404, 404),
    ("PATCH", "/subjects", None, 405, 405),
    ("POST", "/subjects/x/versions", {"schema": "{\"type\": \"recrd\"}"}, 422, 42201),
    ("POST", "/subjects/x/versions", {"schema": "not json"}, 422, 42201),
    ("POST", "/subjects/x/versions", {}, 422, 42201),
    ("POST", "/subjects/x/versions", {"schema": '"int"', "schemaType": "XML"}, 422, 42201),
])
def test_error_bodies(registry, method, path, body, status, code):
    r = raw(registry, method, path, body)
    assert r.status_code == status
    assert r.headers["Content-Type"] == CT
    j = r.json()
    assert j["error_code"] == code and isinstance(j["message"], str) and j["message"]


def test_malformed_json_body(registry):
    r = raw(registry, "POST", "/subjects/x/versions", data=b'{"schema": ')
    assert (r.status_code, r.json()["error_code"]) == (422, 42201)  # the OpenAPI file documents 422 here


def test_unsupported_content_type(registry):
    r = raw(registry, "POST", "/subjects/x/versions", headers={"Content-Type": "text/plain"}, data=b'{"schema":"\\"int\\""}')
    assert (r.status_code, r.json()["error_code"]) == (415, 415)


def test_huge_body_is_refused(registry):
    big = b'{"schema": "' + b"x" * (17 << 20) + b'"}'
    r = raw(registry, "POST", "/subjects/x/versions", data=big)
    assert r.status_code == 413
    assert r.json()["error_code"] == 413
    assert raw(registry, "GET", "/subjects").status_code == 200  # still serving


def test_versions_latest_and_minus_one(registry, client):
    s = subject()
    client.register_schema(s, avro('"int"'))
    q = requests.utils.quote(s, safe="")
    a = raw(registry, "GET", f"/subjects/{q}/versions/latest").json()
    b = raw(registry, "GET", f"/subjects/{q}/versions/-1").json()
    assert a == b and a["version"] == 1 and a["schema"] == '"int"'
    assert raw(registry, "GET", f"/subjects/{q}/versions/1/schema").json() == "int"
    assert raw(registry, "GET", "/schemas/types").json() == ["JSON", "PROTOBUF", "AVRO"]


def test_state_survives_restart(client):
    d = tempfile.mkdtemp(prefix="sluice-registry-restart-")
    r = Registry(d)
    r.start()
    try:
        c = SchemaRegistryClient({"url": r.url})
        s = subject()
        i = c.register_schema(s, avro(rec({"name": "a", "type": "int"})))
        c.update_mode(s, "READONLY")
        r.stop()
        r.start()
        c = SchemaRegistryClient({"url": r.url})
        assert c.get_latest_version(s).schema_id == i
        assert c.get_mode(s) == "READONLY"
        assert c.register_schema(subject(), avro('"long"')) == i + 1  # ids continue after the highest
    finally:
        r.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---- wire format through the real Kafka ----

def kafka_up():
    try:
        with socket.create_connection(("127.0.0.1", 9092), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not kafka_up(), reason="Kafka is not running on 127.0.0.1:9092 (tests/services/run up kafka)")
def test_avro_serializer_round_trip_through_kafka(registry, client):
    topic = f"registry-avro-{uuid.uuid4().hex[:8]}"
    schema = json.dumps({"type": "record", "name": "Reading", "namespace": "sluice.test", "fields": [
        {"name": "id", "type": "long"}, {"name": "city", "type": "string"},
        {"name": "temp", "type": ["null", "double"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}}]})
    ser = AvroSerializer(client, schema)
    records = [{"id": i, "city": f"c{i}", "temp": None if i % 2 else i / 4, "kind": "AB"[i % 2]} for i in range(20)]
    p = Producer({"bootstrap.servers": "127.0.0.1:9092"})
    ctx = SerializationContext(topic, MessageField.VALUE)
    for rec_ in records:
        p.produce(topic, value=ser(rec_, ctx))
    assert p.flush(30) == 0
    # The serializer registered <topic>-value in sluice; the id is in every message's header.
    sid = client.get_latest_version(f"{topic}-value").schema_id
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": topic, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    de = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    got, deadline = [], time.time() + 60
    while len(got) < len(records) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        v = m.value()
        assert v[0] == 0 and int.from_bytes(v[1:5], "big") == sid
        got.append(de(v, ctx))
    c.close()
    assert got == records
