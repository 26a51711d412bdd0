"""The console's Data page API (`/api/data/rows`) on both sinks: each page names its columns' types and the table's
partition key (`schema`, `partition_key`) and when it was read (`snapshot_ms`); `key=VALUE` answers the rows of that
one partition, read as the key's type (a value that is not of it is a 400 naming the type, never a scan); a quote in
the value stays a value."""
import json
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_console import CONFIG, Console, cassandra_up, sluice  # noqa: E402


def rows(con, query):
    status, _, body = con.get("/api/data/rows?pipeline=users&" + query)
    return status, json.loads(body)


def check_page(page, key_type):
    names = [c["name"] for c in page["schema"]]
    assert set(names) == set(page["columns"]) == {"id", "first_name", "email"}
    types = {c["name"]: c["type"].lower() for c in page["schema"]}
    assert types["id"] == key_type and types["email"] == "text", types
    assert page["partition_key"] == "id"
    assert [c["name"] for c in page["schema"] if c["partition"]] == ["id"]
    assert isinstance(page["snapshot_ms"], int) and page["snapshot_ms"] > 1.7e12


def check_filter(con, page):
    idx = page["columns"].index("id")
    want = page["rows"][-1]
    status, one = rows(con, "key=" + want[idx])
    assert status == 200, one
    assert one["rows"] == [want] and one["key"] == want[idx] and one["next_token"] is None
    status, none = rows(con, "key=" + str(uuid.uuid4()))
    assert status == 200 and none["rows"] == []


def test_data_rows_types_and_key_filter_sqlite(tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=300, topic="users_created", kafka=""))
    r = sluice("up", "--until-done", "-c", str(cfg), "-q")
    assert r.returncode == 0, r.stderr
    con = Console(str(cfg))
    try:
        status, page = rows(con, "size=50")
        assert status == 200 and page["order"] == "newest" and len(page["rows"]) == 50
        check_page(page, "text")
        check_filter(con, page)
        # A quote is part of the value (bound, not spliced into SQL): no row, no error.
        status, q = rows(con, "key=x%27%20OR%20%271%27%3D%271")
        assert status == 200 and q["rows"] == []
        assert rows(con, "key=" + "a" * 2000)[0] == 400
    finally:
        con.close()


@pytest.mark.skipif(not cassandra_up(), reason="Cassandra is not running on 127.0.0.1:9042 (tests/services/run up)")
def test_data_rows_types_and_key_filter_cassandra(tmp_path):
    from cassandra.cluster import Cluster

    ks = "condata_" + uuid.uuid4().hex[:8]
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=120, topic="users_created", kafka="")
                   .replace("keyspace: ks", f"keyspace: {ks}") + "cassandra:\n  contact_points: [127.0.0.1]\n")
    r = sluice("up", "--until-done", "-c", str(cfg), "-q")
    assert r.returncode == 0, r.stderr
    cluster = Cluster(["127.0.0.1"])
    session = cluster.connect()
    try:
        con = Console(str(cfg))
        try:
            status, page = rows(con, "size=30")
            assert status == 200 and page["order"] == "token" and len(page["rows"]) == 30
            check_page(page, "uuid")
            check_filter(con, page)
            # Not a uuid: refused before it reaches Cassandra, naming the type.
            status, bad = rows(con, "key=x%27%20OR%20%271")
            assert status == 400 and "uuid" in bad["error"], bad
        finally:
            con.close()
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
        cluster.shutdown()
