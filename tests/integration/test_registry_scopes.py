"""Settings that reach past one subject in `sluice registry`, as Confluent's registry applies them: context-wide
config and mode (`/config/:.ctx:`, `/mode/:.ctx:`) and the fallback subject -> context -> top level (a subject in a
named context falls back to its context's setting, then to the ":.__GLOBAL:" context's, not to the top-level one;
":.:" names the top level), and `compatibilityGroup` (a version is compared only with versions whose metadata
property named by the group has the same value, absent on both sides counting as equal).

Raw HTTP for the status codes and bodies; Confluent's Python client where it sets the same things."""
import json
import uuid

from confluent_kafka.schema_registry import Metadata, MetadataProperties, Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
import pytest

from test_registry_api import Registry, raw, rec, registry  # noqa: F401  (the module's registry fixture)


def ctx():
    return f".c{uuid.uuid4().hex[:8]}"


def put(registry, path, body):
    r = raw(registry, "PUT", path, body)
    assert r.status_code == 200, r.text
    return r.json()


def get(registry, path):
    return raw(registry, "GET", path)


def register(registry, subject, schema, **extra):
    return raw(registry, "POST", f"/subjects/{subject}/versions", dict(schema=schema, **extra))


A = rec({"name": "a", "type": "string"})
# Not BACKWARD compatible with A: a new field without a default.
AB = rec({"name": "a", "type": "string"}, {"name": "b", "type": "int"})


# ---- context-wide config and mode ----

def test_context_config_is_served_and_not_configured_until_set(registry):
    c = ctx()
    r = get(registry, f"/config/:{c}:")
    assert r.status_code == 404 and r.json()["error_code"] == 40408
    r = get(registry, f"/config/:{c}:?defaultToGlobal=true")
    assert r.status_code == 200 and r.json()["compatibilityLevel"] == "BACKWARD"
    assert put(registry, f"/config/:{c}:", {"compatibility": "NONE"})["compatibility"] == "NONE"
    assert get(registry, f"/config/:{c}:").json()["compatibilityLevel"] == "NONE"
    # a subject of the context without its own config: 40408, and the context's level with defaultToGlobal
    assert get(registry, f"/config/:{c}:s1").status_code == 404
    assert get(registry, f"/config/:{c}:s1?defaultToGlobal=true").json()["compatibilityLevel"] == "NONE"
    assert raw(registry, "DELETE", f"/config/:{c}:").status_code == 200
    assert get(registry, f"/config/:{c}:").status_code == 404


def test_context_level_applies_to_its_subjects_and_subject_level_wins(registry):
    c = ctx()
    s1, s2 = f":{c}:a-{uuid.uuid4().hex[:6]}", f":{c}:b-{uuid.uuid4().hex[:6]}"
    other = f"plain-{uuid.uuid4().hex[:6]}"
    for s in (s1, s2, other):
        assert register(registry, s, A).status_code == 200
    # BACKWARD by default: AB is refused everywhere
    assert register(registry, s1, AB).status_code == 409
    put(registry, f"/config/:{c}:", {"compatibility": "NONE"})
    assert register(registry, s1, AB).status_code == 200
    # the context's level does not reach a subject of the default context
    assert register(registry, other, AB).status_code == 409
    # the subject's own level wins over its context's
    put(registry, f"/config/{s2}", {"compatibility": "BACKWARD"})
    assert register(registry, s2, AB).status_code == 409
    # and the compatibility endpoint reads the same scope
    r = raw(registry, "POST", f"/compatibility/subjects/{s1}/versions/latest", {"schema": A})
    assert r.status_code == 200


def test_top_level_config_does_not_reach_a_named_context_but_global_context_does(registry):
    c = ctx()
    s = f":{c}:g-{uuid.uuid4().hex[:6]}"
    assert register(registry, s, A).status_code == 200
    old = get(registry, "/config").json()["compatibilityLevel"]
    try:
        # Confluent: a named context's subject falls back to its context, then ":.__GLOBAL:", not the top level
        put(registry, "/config", {"compatibility": "NONE"})
        assert register(registry, s, AB).status_code == 409
        put(registry, "/config/:.__GLOBAL:", {"compatibility": "NONE"})
        assert register(registry, s, AB).status_code == 200
    finally:
        raw(registry, "DELETE", "/config/:.__GLOBAL:")
        put(registry, "/config", {"compatibility": old})


def test_default_context_name_is_the_top_level(registry):
    top = get(registry, "/config").json()["compatibilityLevel"]
    assert get(registry, "/config/:.:").json()["compatibilityLevel"] == top
    assert get(registry, "/mode/:.:").json()["mode"] == get(registry, "/mode").json()["mode"]


def test_context_mode_read_only_blocks_its_subjects_only(registry):
    c = ctx()
    s = f":{c}:m-{uuid.uuid4().hex[:6]}"
    other = f":{ctx()}:m-{uuid.uuid4().hex[:6]}"
    assert get(registry, f"/mode/:{c}:").status_code == 404
    assert put(registry, f"/mode/:{c}:", {"mode": "READONLY"})["mode"] == "READONLY"
    assert get(registry, f"/mode/:{c}:").json()["mode"] == "READONLY"
    assert get(registry, f"/mode/{s}?defaultToGlobal=true").json()["mode"] == "READONLY"
    r = register(registry, s, A)
    assert r.status_code == 422 and r.json()["error_code"] == 42205
    assert register(registry, other, A).status_code == 200
    # the subject's own mode wins over its context's
    put(registry, f"/mode/{s}", {"mode": "READWRITE"})
    assert register(registry, s, A).status_code == 200
    raw(registry, "DELETE", f"/mode/{s}")
    raw(registry, "DELETE", f"/mode/:{c}:")
    assert get(registry, f"/mode/:{c}:").status_code == 404


def test_context_defaults_metadata_apply_to_its_subjects(registry):
    c = ctx()
    s = f":{c}:d-{uuid.uuid4().hex[:6]}"
    put(registry, f"/config/:{c}:", {"defaultMetadata": {"properties": {"owner": "team-x"}}})
    assert register(registry, s, A).status_code == 200
    got = get(registry, f"/subjects/{s}/versions/latest").json()
    assert got["metadata"]["properties"]["owner"] == "team-x"


# ---- compatibilityGroup ----

def md(**props):
    return {"properties": props}


def test_compatibility_group_compares_only_within_the_group(registry):
    s = f"grp-{uuid.uuid4().hex[:8]}"
    put(registry, f"/config/{s}", {"compatibility": "BACKWARD", "compatibilityGroup": "application.major.version"})
    assert register(registry, s, A, metadata=md(**{"application.major.version": "1"})).status_code == 200
    # incompatible with A, but in another group: accepted
    assert register(registry, s, AB, metadata=md(**{"application.major.version": "2"})).status_code == 200
    # incompatible with group 1's latest: refused
    r = register(registry, s, AB, metadata=md(**{"application.major.version": "1"}))
    assert r.status_code == 409, r.text
    # compatible within group 2 (AB again with an extra optional field)
    ab2 = rec({"name": "a", "type": "string"}, {"name": "b", "type": "int"},
              {"name": "c", "type": "int", "default": 0})
    assert register(registry, s, ab2, metadata=md(**{"application.major.version": "2"})).status_code == 200
    # no property: its own group (absent == absent), with no earlier version in it
    assert register(registry, s, AB).status_code == 200
    # the no-property group now holds AB: a new field without a default is refused against it
    bad = rec({"name": "a", "type": "string"}, {"name": "b", "type": "int"}, {"name": "d", "type": "int"})
    assert register(registry, s, bad).status_code == 409


def test_without_a_group_every_version_is_compared(registry):
    s = f"nogrp-{uuid.uuid4().hex[:8]}"
    assert register(registry, s, A, metadata=md(major="1")).status_code == 200
    assert register(registry, s, AB, metadata=md(major="2")).status_code == 409


def test_compatibility_group_in_the_compatibility_endpoint(registry):
    s = f"grpc-{uuid.uuid4().hex[:8]}"
    put(registry, f"/config/{s}", {"compatibilityGroup": "major"})
    assert register(registry, s, A, metadata=md(major="1")).status_code == 200
    path = f"/compatibility/subjects/{s}/versions"
    assert raw(registry, "POST", path, {"schema": AB, "metadata": md(major="1")}).json()["is_compatible"] is False
    assert raw(registry, "POST", path, {"schema": AB, "metadata": md(major="2")}).json()["is_compatible"] is True
    one = f"/compatibility/subjects/{s}/versions/1"
    assert raw(registry, "POST", one, {"schema": AB, "metadata": md(major="2")}).json()["is_compatible"] is True
    assert raw(registry, "POST", one, {"schema": AB, "metadata": md(major="1")}).json()["is_compatible"] is False


def test_compatibility_group_from_a_context_config_with_confluents_client(registry):
    c = ctx()
    s = f":{c}:cl-{uuid.uuid4().hex[:6]}"
    client = SchemaRegistryClient({"url": registry.url})
    put(registry, f"/config/:{c}:", {"compatibilityGroup": "major"})
    client.register_schema(s, Schema(A, "AVRO", metadata=Metadata(None, MetadataProperties({"major": "1"}), None)))
    client.register_schema(s, Schema(AB, "AVRO", metadata=Metadata(None, MetadataProperties({"major": "2"}), None)))
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, Schema(AB, "AVRO",
                                         metadata=Metadata(None, MetadataProperties({"major": "1"}), None)))
    assert e.value.http_status_code == 409
    assert json.loads(get(registry, f"/subjects/{s}/versions").text) == [1, 2]


# ---- contexts have their own id spaces ----

@pytest.fixture
def fresh(tmp_path):
    """A registry of its own (ids counted from 1 in every context), on a data directory a test may restart it on."""
    r = Registry(str(tmp_path))
    r.start()
    yield r
    r.stop()


def sid(r):
    assert r.status_code == 200, r.text
    return r.json()["id"]


X = rec({"name": "x", "type": "string"}, name="X")
Y = rec({"name": "y", "type": "string"}, name="Y")
Z = rec({"name": "z", "type": "string"}, name="Z")


def schema_of(r):
    assert r.status_code == 200, r.text
    return json.loads(r.json()["schema"])["name"]


def test_each_context_counts_its_own_ids(fresh):
    assert sid(register(fresh, "d1", X)) == 1
    assert sid(register(fresh, "d2", Y)) == 2
    # a new context starts at 1: the same number as the default context's X, another schema
    assert sid(register(fresh, ":.c:t", Y)) == 1
    assert sid(register(fresh, ":.c:u", Z)) == 2
    # X again, in the context: a new id of the context, not the default context's 1
    assert sid(register(fresh, ":.c:v", X)) == 3
    # the same schema twice in one context keeps one id
    assert sid(register(fresh, ":.c:w", Z)) == 2
    assert sid(register(fresh, ":.other:t", Z)) == 1
    # the default context goes on from its own highest id
    assert sid(register(fresh, "d3", Z)) == 3


def lookups(fresh):
    # by id alone: the default context
    assert schema_of(get(fresh, "/schemas/ids/1")) == "X"
    # a context alone, or a subject of it
    assert schema_of(get(fresh, "/schemas/ids/1?subject=:.c:")) == "Y"
    assert schema_of(get(fresh, "/schemas/ids/1?subject=:.c:t")) == "Y"
    assert schema_of(get(fresh, "/schemas/ids/1?subject=:.other:t")) == "Z"
    # a subject of a named context that does not hold the id: not found
    r = get(fresh, "/schemas/ids/1?subject=:.c:u")
    assert r.status_code == 404 and r.json()["error_code"] == 40403
    assert get(fresh, "/schemas/ids/9?subject=:.c:").status_code == 404
    # an id only a named context has is not the default context's
    assert get(fresh, "/schemas/ids/3").status_code == 404
    assert get(fresh, "/schemas/ids/3/subjects").status_code == 404
    # an unqualified subject holding the id in the default context, then tried in each context
    assert schema_of(get(fresh, "/schemas/ids/1?subject=d1")) == "X"
    assert schema_of(get(fresh, "/schemas/ids/2?subject=u")) == "Z"
    # ... and when no context has it, the default context's schema of that id
    assert schema_of(get(fresh, "/schemas/ids/2?subject=nowhere")) == "Y"
    # subjects and versions of an id, within the context the lookup names
    assert get(fresh, "/schemas/ids/2/subjects").json() == ["d2"]
    assert get(fresh, "/schemas/ids/2/subjects?subject=:.c:").json() == [":.c:u", ":.c:w"]
    assert get(fresh, "/schemas/ids/2/versions?subject=:.c:u").json() == [
        {"subject": ":.c:u", "version": 1}, {"subject": ":.c:w", "version": 1}]
    assert get(fresh, "/schemas/ids/1/schema?subject=:.c:").json()["name"] == "Y"
    # maxId is the context's
    assert get(fresh, "/schemas/ids/1?subject=:.c:&fetchMaxId=true").json()["maxId"] == 3
    assert get(fresh, "/schemas/ids/1?fetchMaxId=true").json()["maxId"] == 2
    assert get(fresh, "/schemas/ids/1?subject=:.other:&fetchMaxId=true").json()["maxId"] == 1


def test_lookups_by_id_name_the_context_and_survive_a_restart(fresh):
    for s, t in (("d1", X), ("d2", Y), (":.c:t", Y), (":.c:u", Z), (":.c:v", X), (":.c:w", Z), (":.other:t", Z)):
        register(fresh, s, t)
    lookups(fresh)
    # the store holds the qualified subjects: a restart rebuilds the same ids
    fresh.stop()
    fresh.start()
    lookups(fresh)
    assert sid(register(fresh, ":.c:n", rec({"name": "n", "type": "int"}, name="N"))) == 4
    assert sid(register(fresh, "dn", rec({"name": "n", "type": "int"}, name="N"))) == 3


def test_confluents_client_reads_an_id_of_a_context(fresh):
    client = SchemaRegistryClient({"url": fresh.url})
    assert client.register_schema("d1", Schema(X, "AVRO")) == 1
    assert client.register_schema(":.c:t", Schema(Y, "AVRO")) == 1
    assert json.loads(client.get_schema(1, subject_name=":.c:t").schema_str)["name"] == "Y"
    assert json.loads(client.get_schema(1).schema_str)["name"] == "X"


def test_import_mode_takes_ids_per_context(fresh):
    assert sid(register(fresh, "d1", X)) == 1
    put(fresh, "/mode/:.imp:", {"mode": "IMPORT"})
    # id 1 of the default context is X; in .imp it is free for another schema
    assert sid(register(fresh, ":.imp:s", Y, id=1)) == 1
    assert sid(register(fresh, ":.imp:s2", Z, id=7)) == 7
    # within .imp, an id in use by a different schema is refused
    r = register(fresh, ":.imp:s3", X, id=1)
    assert r.status_code == 422 and r.json()["error_code"] == 42205
    assert schema_of(get(fresh, "/schemas/ids/1?subject=:.imp:")) == "Y"
    assert schema_of(get(fresh, "/schemas/ids/1")) == "X"
    # the default context is not in IMPORT mode
    assert register(fresh, "d2", Y, id=5).json()["error_code"] == 42205
    put(fresh, "/mode/:.imp:", {"mode": "READWRITE"})
    # back to READWRITE, the context's next id follows its own highest
    assert sid(register(fresh, ":.imp:s4", rec({"name": "q", "type": "int"}, name="Q"))) == 8


def test_a_store_written_with_one_id_space_keeps_its_ids(tmp_path):
    """A registry.db written before contexts had their own ids (one id space: X=1 in the default context, Y=2 in
    .c, X=1 again under .c) is read without rewriting: every version keeps its id, now counted in its context."""
    import sqlite3
    db = sqlite3.connect(str(tmp_path / "registry.db"))
    db.execute("CREATE TABLE schemas_log (key TEXT PRIMARY KEY, value TEXT NOT NULL, seq INTEGER NOT NULL)")
    for seq, (subject, num, schema) in enumerate((("d1", 1, X), (":.c:t", 2, Y), (":.c:x", 1, X)), 1):
        k = {"keytype": "SCHEMA", "subject": subject, "version": 1, "magic": 1}
        v = {"subject": subject, "version": 1, "id": num, "schema": schema, "deleted": False}
        db.execute("INSERT INTO schemas_log VALUES (?, ?, ?)", (json.dumps(k), json.dumps(v), seq))
    db.commit()
    db.close()
    r = Registry(str(tmp_path))
    r.start()
    try:
        assert get(r, "/subjects/d1/versions/1").json()["id"] == 1
        assert get(r, "/subjects/:.c:t/versions/1").json()["id"] == 2
        assert get(r, "/subjects/:.c:x/versions/1").json()["id"] == 1
        assert schema_of(get(r, "/schemas/ids/2?subject=:.c:")) == "Y"
        assert schema_of(get(r, "/schemas/ids/1?subject=:.c:x")) == "X"
        # an unqualified subject still finds its schema in the context that holds it
        assert schema_of(get(r, "/schemas/ids/2?subject=t")) == "Y"
        # new ids follow each context's highest
        assert sid(register(r, ":.c:n", Z)) == 3
        assert sid(register(r, "dn", Z)) == 2
    finally:
        r.stop()


def test_import_mode_on_a_context_with_subjects_needs_force(fresh):
    assert sid(register(fresh, ":.full:s", X)) == 1
    r = raw(fresh, "PUT", "/mode/:.full:", {"mode": "IMPORT"})
    assert r.status_code == 422 and r.json()["error_code"] == 42205
    # another context, still empty, may be put in IMPORT mode
    assert put(fresh, "/mode/:.empty:", {"mode": "IMPORT"})["mode"] == "IMPORT"
    assert put(fresh, "/mode/:.full:?force=true", {"mode": "IMPORT"})["mode"] == "IMPORT"
    assert sid(register(fresh, ":.full:t", Y, id=5)) == 5
