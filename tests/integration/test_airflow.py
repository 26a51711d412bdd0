"""The real Airflow (apache-airflow from PyPI, in its own venv made by airflow/venv.sh) runs `airflow dags test` on
airflow/dags/user_automation.py against sluice on the embedded default (generate source, a small --count), and the
rows are in the table afterwards; a failing sluice task makes the Airflow task, and the run, fail."""
import os
import sqlite3
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

CONFIG = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 42, count: 100000, page_size: 100 }}
    topic: users_created
    partitions: 3
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
      last_name:  name.last
      email:      email
    sink: {{ keyspace: spark_streams, table: created_users, primary_key: [id] }}
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    if os.environ.get("SL_SKIP_AIRFLOW"):
        pytest.skip("SL_SKIP_AIRFLOW is set")
    p = subprocess.run(["bash", os.path.join(ROOT, "airflow", "venv.sh")], capture_output=True, text=True,
                       timeout=3000)
    if p.returncode != 0:
        pytest.fail("airflow/venv.sh failed:\n" + p.stderr[-3000:])
    venv = p.stdout.strip().splitlines()[-1]
    home = tmp_path_factory.mktemp("airflow_home")
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(ROOT, "airflow", "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///%s/airflow.db" % home,
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SLUICE_BIN": SLUICE,
        "PATH": os.path.join(venv, "bin") + os.pathsep + env.get("PATH", ""),
    })
    airflow = os.path.join(venv, "bin", "airflow")
    p = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return airflow, env, home


def dags_test(airflow, env, conf, date):
    return subprocess.run([airflow, "dags", "test", "-c", conf, "user_automation", date], env=env,
                          capture_output=True, text=True, timeout=900)


def task_states(airflow, env, date):
    p = subprocess.run([airflow, "tasks", "states-for-dag-run", "-o", "plain", "user_automation",
                        "manual__" + date], env=env, capture_output=True, text=True, timeout=300)
    return p.stdout + p.stderr


def test_airflow_dags_test_runs_sluice(airflow_env, tmp_path):
    airflow, env, home = airflow_env
    data = tmp_path / "data"
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=data))
    env = dict(env, SLUICE_CONFIG=str(cfg))
    p = dags_test(airflow, env, '{"ingest_args": "--count 300"}', "2024-01-01T00:00:00+00:00")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "state=failed" not in out.replace(" ", "") and "Marking task as FAILED" not in out, out[-4000:]
    db = sqlite3.connect(str(data / "spark_streams.db"))
    rows = db.execute("SELECT count(*) FROM created_users").fetchone()[0]
    db.close()
    assert rows >= 300, "only %d rows in spark_streams.created_users" % rows


def test_failing_sluice_task_fails_airflow_task(airflow_env, tmp_path):
    airflow, env, home = airflow_env
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data").replace("topic: users_created", "topicc: users_created"))
    env = dict(env, SLUICE_CONFIG=str(cfg))
    p = dags_test(airflow, env, '{"ingest_args": "--count 10"}', "2024-01-02T00:00:00+00:00")
    out = p.stdout + p.stderr
    assert "topicc" in out, out[-4000:]  # sluice's own message, naming the bad key, is in the task log
    assert "Marking task as FAILED" in out or "state=failed" in out.replace(" ", "") or p.returncode != 0, \
        out[-4000:]
    assert "stream_data_from_api" in out


def test_airflow_dags_test_on_real_kafka(airflow_env, tmp_path):
    """The same DAG with the pipeline on the real Kafka: after `airflow dags test`, the records are in the topic."""
    import uuid

    from confluent_kafka import Consumer

    airflow, env, home = airflow_env
    topic = "airflow_users_" + uuid.uuid4().hex[:8]
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data").replace("topic: users_created", "topic: " + topic)
                   + "kafka:\n  brokers: 127.0.0.1:9092\n")
    env = dict(env, SLUICE_CONFIG=str(cfg))
    p = dags_test(airflow, env, '{"ingest_args": "--count 300"}', "2024-01-03T00:00:00+00:00")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "Marking task as FAILED" not in out, out[-4000:]
    c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "check-" + topic,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    ids = set()
    try:
        import time
        deadline = time.time() + 60
        while time.time() < deadline and len(ids) < 300:
            m = c.poll(1.0)
            if m is not None and not m.error():
                ids.add(m.key())
    finally:
        c.close()
    assert len(ids) >= 300, "only %d distinct records in %s after the DAG ran" % (len(ids), topic)
