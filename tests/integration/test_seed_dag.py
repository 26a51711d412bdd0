"""The seed's DAG (examples/seed/sluice.yaml, user_automation) run by sluice's own scheduler against the real Kafka
and Cassandra: the file is taken as it is, with its kafka: and cassandra: sections uncommented (as its comments say)
and only names and sizes changed for isolation. The run succeeds, its history says so, and the table holds every
generated record."""
import json
import os
import re
import subprocess
import tempfile
import uuid

from cassandra.cluster import Cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
SEED = os.path.join(ROOT, "examples", "seed", "sluice.yaml")
N = 3000


def seed_on_real_stack(tmp, suffix):
    text = open(SEED).read()
    text = re.sub(r"(?m)^data_dir: .*$", f"data_dir: {tmp}/data", text)
    text = re.sub(r"(?m)^      count: \d+.*$", f"      count: {N}", text)
    text = re.sub(r"(?m)^    topic: users_created$", f"    topic: users_created_{suffix}", text)
    text = re.sub(r"(?m)^      keyspace: spark_streams$", f"      keyspace: sl_seed_dag_{suffix}", text)
    # The file's own instructions: uncomment the two sections to run on the real stack.
    text = re.sub(r"(?m)^# kafka:$", "kafka:", text)
    text = re.sub(r"(?m)^#   brokers:", "  brokers:", text)
    text = re.sub(r"(?m)^# cassandra:$", "cassandra:", text)
    text = re.sub(r"(?m)^#   contact_points:", "  contact_points:", text)
    assert "\nkafka:" in text and "\ncassandra:" in text, "the seed config no longer has the commented sections"
    path = os.path.join(tmp, "seed.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_seed_dag_on_kafka_and_cassandra():
    suffix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = seed_on_real_stack(tmp, suffix)
        subprocess.run([SLUICE, "check", "-c", cfg], check=True, capture_output=True, timeout=30)
        out = subprocess.run([SLUICE, "dag", "test", "user_automation", "-c", cfg], capture_output=True, text=True,
                             timeout=400)
        assert out.returncode == 0, out.stdout + out.stderr
        runs = subprocess.run([SLUICE, "dag", "runs", "user_automation", "-c", cfg], capture_output=True, text=True,
                              timeout=30, check=True)
        states = [r["state"] for r in json.loads(runs.stdout)["dag_runs"]]
        assert "success" in states, runs.stdout
        cluster = Cluster(["127.0.0.1"], port=9042)
        try:
            s = cluster.connect()
            rows = s.execute(f"SELECT count(*) FROM sl_seed_dag_{suffix}.created_users").one()[0]
            assert rows == N
            cols = {r.column_name for r in s.execute(
                "SELECT column_name FROM system_schema.columns WHERE keyspace_name=%s AND table_name='created_users'",
                [f"sl_seed_dag_{suffix}"])}
            assert {"id", "first_name", "last_name", "gender", "address", "post_code", "email", "username", "dob",
                    "registered_date", "phone", "picture"} <= cols
            s.execute(f"DROP KEYSPACE sl_seed_dag_{suffix}")
        finally:
            cluster.shutdown()
