"""Smoke test of the real services that tests/services/run starts: Kafka on 127.0.0.1:9092, Cassandra on 9042.

It assumes `tests/services/run up` ran (the suite runner does that). An unreachable service fails the test; nothing
here skips. The cassandra-auth node (9142) is started by this module if it is not running, and stopped again after.
"""
import os
import subprocess
import time
import uuid

import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "tests", "services", "run")
KAFKA = os.environ.get("SLUICE_TEST_KAFKA", "127.0.0.1:9092")
CASSANDRA_HOST = "127.0.0.1"
CASSANDRA_PORT = int(os.environ.get("SLUICE_TEST_CASSANDRA_PORT", "9042"))
CASSANDRA_AUTH_PORT = 9142


def test_kafka_metadata_with_kcat():
    out = subprocess.run(["kcat", "-b", KAFKA, "-L", "-m", "10"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "1 brokers:" in out.stdout
    assert "broker 1 at 127.0.0.1:9092" in out.stdout


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_kafka_produce_consume_roundtrip(compression):
    topic = f"smoke_{compression}_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": KAFKA})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], operation_timeout=20)
    futures[topic].result(timeout=30)

    producer = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "compression.type": compression,
                         "linger.ms": 5})
    sent = [(f"k{i}".encode(), f"value-{i}-{topic}".encode()) for i in range(20)]
    delivered = []

    def on_delivery(err, msg):
        assert err is None, err
        delivered.append((msg.key(), msg.value(), msg.offset()))

    for key, value in sent:
        producer.produce(topic, value=value, key=key, headers=[("h", b"1")], on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert [(k, v) for k, v, _ in delivered] == sent
    assert [o for _, _, o in delivered] == list(range(20))

    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"smoke-{topic}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append((msg.key(), msg.value()))
            assert msg.headers() == [("h", b"1")]
        assert got == sent
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def test_kafka_kcat_roundtrip_lz4():
    # Debian's librdkafka 2.0.2 (through kcat) is what sluice links; check it against the broker too.
    topic = f"smoke_kcat_{uuid.uuid4().hex[:8]}"
    lines = [f"kcat-{i}" for i in range(5)]
    p = subprocess.run(["kcat", "-b", KAFKA, "-P", "-t", topic, "-X", "compression.codec=lz4",
                        "-X", "enable.idempotence=true"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    c = subprocess.run(["kcat", "-b", KAFKA, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    assert c.stdout.splitlines() == lines


@pytest.fixture(scope="module")
def cassandra_session():
    cluster = Cluster([CASSANDRA_HOST], port=CASSANDRA_PORT, protocol_version=4, connect_timeout=10)
    session = cluster.connect()
    yield session
    cluster.shutdown()


def test_cassandra_release_version(cassandra_session):
    row = cassandra_session.execute("SELECT release_version, cluster_name FROM system.local").one()
    assert row.release_version.startswith("5.0.")
    assert row.cluster_name == "sluice-test"


def test_cassandra_write_read(cassandra_session):
    s = cassandra_session
    s.execute("CREATE KEYSPACE IF NOT EXISTS sluice_smoke "
              "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE IF NOT EXISTS sluice_smoke.users "
              "(id uuid PRIMARY KEY, name text, age int, tags set<text>, seen timestamp)")
    ins = s.prepare("INSERT INTO sluice_smoke.users (id, name, age, tags, seen) VALUES (?, ?, ?, ?, ?)")
    rows = {uuid.uuid4(): (f"user-{i}", 20 + i, {f"t{i}", "all"}) for i in range(10)}
    for uid, (name, age, tags) in rows.items():
        s.execute(ins, (uid, name, age, tags, None))
    sel = s.prepare("SELECT name, age, tags FROM sluice_smoke.users WHERE id = ?")
    for uid, (name, age, tags) in rows.items():
        r = s.execute(sel, (uid,)).one()
        assert (r.name, r.age, set(r.tags)) == (name, age, tags)
    # Upsert by primary key: a second write of the same key replaces, it does not add a row.
    uid = next(iter(rows))
    s.execute(ins, (uid, "renamed", 99, {"x"}, None))
    r = s.execute(sel, (uid,)).one()
    assert (r.name, r.age, set(r.tags)) == ("renamed", 99, {"x"})


@pytest.fixture(scope="module")
def cassandra_auth():
    status = subprocess.run([RUN, "status"], capture_output=True, text=True, timeout=120)
    was_running = any(l.startswith("cassandra-auth") and " ready " in l for l in status.stdout.splitlines())
    if not was_running:
        up = subprocess.run([RUN, "up", "cassandra-auth"], capture_output=True, text=True, timeout=400)
        assert up.returncode == 0, up.stdout + up.stderr
    yield CASSANDRA_AUTH_PORT
    if not was_running:
        subprocess.run([RUN, "stop", "cassandra-auth"], capture_output=True, text=True, timeout=120)


def test_cassandra_auth_accepts_default_superuser(cassandra_auth):
    cluster = Cluster([CASSANDRA_HOST], port=cassandra_auth, protocol_version=4,
                      auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
    try:
        row = cluster.connect().execute("SELECT release_version, cluster_name FROM system.local").one()
        assert row.release_version.startswith("5.0.")
        assert row.cluster_name == "sluice-test-auth"
    finally:
        cluster.shutdown()


def test_cassandra_auth_rejects_wrong_password(cassandra_auth):
    cluster = Cluster([CASSANDRA_HOST], port=cassandra_auth, protocol_version=4,
                      auth_provider=PlainTextAuthProvider("cassandra", "wrong-password"))
    try:
        with pytest.raises(NoHostAvailable) as e:
            cluster.connect()
        errors = list(e.value.errors.values())
        assert errors and all(isinstance(x, AuthenticationFailed) for x in errors), errors
        assert "incorrect" in str(errors[0]).lower() or "bad credentials" in str(errors[0]).lower()
    finally:
        cluster.shutdown()


def test_cassandra_auth_rejects_no_credentials(cassandra_auth):
    cluster = Cluster([CASSANDRA_HOST], port=cassandra_auth, protocol_version=4)
    try:
        with pytest.raises(NoHostAvailable):
            cluster.connect()
    finally:
        cluster.shutdown()
