"""Sink options on the real Cassandra: a field written under another column name (sink.columns), each row's TTL and
write time taken from fields (ttl_field, writetime_field) that are not columns themselves. The embedded log carries
the records, so only Cassandra is needed."""
import os
import re
import subprocess
import tempfile
import uuid
from datetime import datetime, timezone

from cassandra.cluster import Cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

CONFIG = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 7, count: 300, page_size: 100 }}
    topic: users_opts
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
      email:      email
      ttl_s:      {{ path: not.in.the.record, type: int, default: 3600 }}
      seen:       {{ path: registered.date, type: timestamp }}
    sink:
      keyspace: {ks}
      table: people
      columns: {{ first_name: given_name }}
      ttl_field: ttl_s
      writetime_field: seen
cassandra:
  contact_points: [127.0.0.1]
"""


def test_columns_ttl_and_writetime_from_fields():
    ks = "sl_sink_opts_" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "s.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(data=os.path.join(tmp, "data"), ks=ks))
        out = subprocess.run([SLUICE, "up", "--until-done", "-q", "-c", cfg], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "300 written" in out.stdout, out.stdout
    cluster = Cluster(["127.0.0.1"], port=9042)
    try:
        s = cluster.connect()
        cols = {r.column_name for r in s.execute(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name=%s AND table_name='people'", [ks])}
        assert cols == {"id", "given_name", "email"}, cols
        rows = list(s.execute(f"SELECT id, given_name, TTL(given_name) AS t, WRITETIME(given_name) AS w "
                              f"FROM {ks}.people"))
        assert len(rows) == 300
        # The write times are the records' registered dates, so they differ from row to row and all lie in the past.
        now_us = int(datetime.now(timezone.utc).timestamp() * 1e6)
        assert len({r.w for r in rows}) > 250
        assert all(0 < r.w < now_us - 86400 * 1e6 for r in rows)
        assert all(3000 < r.t <= 3600 for r in rows)
        assert all(r.given_name for r in rows)
        s.execute(f"DROP KEYSPACE {ks}")
    finally:
        cluster.shutdown()
