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

from test_registry_api import raw, rec, registry  # noqa: F401  (the module's registry fixture)


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
