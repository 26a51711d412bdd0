"""TLS and SASL to Kafka, TLS and PasswordAuthenticator to Cassandra, end to end through `sluice ingest` and
`sluice process --drain` with the seed pipeline, against the secure services of tests/services:

  kafka-secure   9192 SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256/512), 9193 SASL_SSL, 9194 SSL with client certificates,
                 9195 SSL with an expired server certificate
  cassandra-tls  9242 TLS with client certificates required, PasswordAuthenticator

The module starts them (`tests/services/run up kafka-secure cassandra-tls`, a no-op when they run) and leaves them
running for the next run; `tests/services/run down kafka-secure cassandra-tls` stops them. Passwords come from
.cache/services/state/secrets.env (random per checkout) and reach sluice only through the environment. Every run's
output (sluice logs on stderr, including librdkafka's) is checked for the secrets.

Positive: rows arrive over SASL PLAIN, SASL_SSL and SSL (mutual TLS, an encrypted client key), into Cassandra over
TLS + password. Negative: a wrong password, an untrusted CA, an expired certificate and no credentials each end
the command with a non-zero exit, a message naming the broker or node, and nothing written (no topic or an empty
one; no table or an empty one; no committed offsets).

SCRAM: librdkafka before 2.6.1 (Debian 12's 2.0.2) cannot do SCRAM with Kafka 4.x (librdkafka#4895), so
scripts/librdkafka.sh builds trixie's (2.8.0, from Debian's source package) that sluice links statically; `sluice
--version` names it. The SCRAM tests fail, naming the version, when sluice was built against an older one
(SL_SYSTEM_RDKAFKA=1).
"""
import os
import re
import subprocess
import time
import uuid

import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from confluent_kafka.admin import AdminClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# SL_SERVICES_ROOT: the checkout whose tests/services runs the services and holds their state (a worktree testing
# against services another checkout started); default this one.
SERVICES_ROOT = os.environ.get("SL_SERVICES_ROOT", ROOT)
RUN = os.path.join(SERVICES_ROOT, "tests", "services", "run")
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
STATE = os.path.join(SERVICES_ROOT, ".cache", "services", "state")
PKI = os.path.join(STATE, "pki")
SEED = os.path.join(ROOT, "examples", "seed", "sluice.yaml")
COUNT = 100
FAST = 30  # seconds: a failing command must end well within this (librdkafka alone would retry for minutes)


def _librdkafka_version():
    """The librdkafka sluice itself runs with (it may be a static build newer than the system's)."""
    out = subprocess.run([SLUICE, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    assert m, f"sluice --version does not name its librdkafka: {out!r}"
    major, minor, patch = (int(x) for x in m.groups())
    return (major << 24) | (minor << 16) | (patch << 8) | 0xFF, ".".join(m.groups())


RDK_VERSION, RDK_VERSION_STR = _librdkafka_version()
SCRAM_OK = RDK_VERSION >= 0x020601FF


@pytest.fixture(scope="module")
def services():
    t0 = time.monotonic()
    out = subprocess.run([RUN, "up", "kafka-secure", "cassandra-tls"], capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    print(f"secure services up in {time.monotonic() - t0:.1f} s:\n{out.stdout}")
    env = {}
    with open(os.path.join(STATE, "secrets.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v
    with open(os.path.join(PKI, "client-enc.pass")) as f:
        env["KEY_PASS"] = f.read().strip()
    return env


@pytest.fixture(scope="module")
def cql(services):
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(PKI, "ca.pem"))
    ctx.load_cert_chain(os.path.join(PKI, "client.pem"), os.path.join(PKI, "client.key"))
    ctx.check_hostname = False  # the checker's own connection; sluice's hostname check is what is under test
    cluster = Cluster(["127.0.0.1"], port=9242, ssl_context=ctx, connect_timeout=10,
                      auth_provider=PlainTextAuthProvider(services["CASSANDRA_TLS_USER"],
                                                          services["CASSANDRA_TLS_PASSWORD"]))
    session = cluster.connect()
    yield session
    cluster.shutdown()


def admin_kafka(services):
    return AdminClient({"bootstrap.servers": "127.0.0.1:9192", "security.protocol": "SASL_PLAINTEXT",
                        "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                        "sasl.password": services["KAFKA_SECURE_ADMIN_PASSWORD"]})


def topic_records(services, topic):
    """Records in topic (sum of high watermarks), or None when the topic does not exist."""
    from confluent_kafka import Consumer, TopicPartition
    md = admin_kafka(services).list_topics(timeout=15)
    if topic not in md.topics:
        return None
    c = Consumer({"bootstrap.servers": "127.0.0.1:9192", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                  "sasl.password": services["KAFKA_SECURE_ADMIN_PASSWORD"], "group.id": "sec-check"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in md.topics[topic].partitions)
    finally:
        c.close()


def table_rows(cql, table):
    """Rows in spark_streams.<table>, or None when the table does not exist."""
    rows = cql.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'spark_streams' "
                       "AND table_name = %s", (table,))
    if not list(rows):
        return None
    return cql.execute(f"SELECT count(*) FROM spark_streams.{table}").one()[0]


# ---- configs ----

KAFKA_PLAIN = {"brokers": "127.0.0.1:9192", "security_protocol": "sasl_plaintext", "sasl_mechanism": "PLAIN",
               "sasl_username": "sluice", "sasl_password_env": "KAFKA_PW"}


def kafka_sasl_ssl(mech="PLAIN", ca="ca.pem"):
    return {"brokers": "127.0.0.1:9193", "security_protocol": "sasl_ssl", "sasl_mechanism": mech,
            "sasl_username": "sluice", "sasl_password_env": "KAFKA_PW", "ssl_ca_location": os.path.join(PKI, ca)}


KAFKA_MTLS = {"brokers": "127.0.0.1:9194", "security_protocol": "ssl", "ssl_ca_location": os.path.join(PKI, "ca.pem"),
              "ssl_certificate_location": os.path.join(PKI, "client.pem"),
              "ssl_key_location": os.path.join(PKI, "client-enc.key"), "ssl_key_password_env": "KAFKA_KEY_PW"}


def cassandra_tls(ca="ca.pem", cert="client", user="sluice"):
    c = {"contact_points": ["127.0.0.1"], "port": 9242, "tls": True, "tls_ca_file": os.path.join(PKI, ca)}
    if cert:
        c["tls_cert_file"] = os.path.join(PKI, f"{cert}.pem")
        c["tls_key_file"] = os.path.join(PKI, f"{cert}.key")
    if user:
        c["username"] = user
        c["password_env"] = "CASS_PW"
    return c


def yaml_section(name, d):
    lines = [f"{name}:"]
    for k, v in d.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, list):
            v = "[" + ", ".join(v) + "]"
        lines.append(f"  {k}: {v}")
    return "\n".join(lines) + "\n"


def write_config(tmp_path, name, kafka, cassandra, extra_kafka=""):
    """The seed config with COUNT records, its own topic and table, and the given kafka:/cassandra: sections."""
    with open(SEED) as f:
        seed = f.read().split("# kafka:")[0]
    tag = f"{name}_{uuid.uuid4().hex[:6]}"
    seed = seed.replace("count: 100000", f"count: {COUNT}")
    seed = seed.replace("topic: users_created", f"topic: sec_{tag}")
    seed = seed.replace("table: created_users", f"table: sec_{tag}")
    seed = re.sub(r"^data_dir: .*$", f"data_dir: {tmp_path / ('data_' + tag)}", seed, flags=re.M)
    text = seed + yaml_section("kafka", kafka) + extra_kafka + yaml_section("cassandra", cassandra)
    path = tmp_path / f"{tag}.yaml"
    path.write_text(text)
    return str(path), f"sec_{tag}", f"sec_{tag}"


def sluice(services, *args, env_extra=None, timeout=120):
    env = dict(os.environ)
    env.update({"KAFKA_PW": services["KAFKA_SECURE_PASSWORD"], "KAFKA_KEY_PW": services["KEY_PASS"],
                "CASS_PW": services["CASSANDRA_TLS_PASSWORD"]})
    env.update(env_extra or {})
    t0 = time.monotonic()
    out = subprocess.run([SLUICE, *args], capture_output=True, text=True, timeout=timeout, env=env)
    out.elapsed = time.monotonic() - t0
    text = out.stdout + out.stderr
    for k in ("KAFKA_SECURE_PASSWORD", "KAFKA_SECURE_ADMIN_PASSWORD", "CASSANDRA_TLS_PASSWORD", "KEY_PASS"):
        assert services[k] not in text, f"secret {k} appears in the output of sluice {' '.join(args)}"
    for v in (env_extra or {}).values():
        if len(v) >= 6:
            assert v not in text, f"a secret from the environment appears in the output of sluice {' '.join(args)}"
    return out


def pipeline(services, cql, cfg, topic, table):
    ing = sluice(services, "ingest", "users", "-c", cfg)
    assert ing.returncode == 0, ing.stderr
    assert topic_records(services, topic) == COUNT
    proc = sluice(services, "process", "users", "-c", cfg, "--drain")
    assert proc.returncode == 0, proc.stderr
    assert table_rows(cql, table) == COUNT


# ---- positive ----

def test_sasl_plain_and_cassandra_tls_password(services, cql, tmp_path):
    cfg, topic, table = write_config(tmp_path, "plain", KAFKA_PLAIN, cassandra_tls())
    pipeline(services, cql, cfg, topic, table)
    # sluice check reads the same file: it must not print what the environment holds either.
    chk = sluice(services, "check", "-c", cfg)
    assert chk.returncode == 0, chk.stderr


def test_sasl_ssl_plain(services, cql, tmp_path):
    cfg, topic, table = write_config(tmp_path, "saslssl", kafka_sasl_ssl(), cassandra_tls())
    pipeline(services, cql, cfg, topic, table)


def test_ssl_client_certificate_with_encrypted_key(services, cql, tmp_path):
    cfg, topic, table = write_config(tmp_path, "mtls", KAFKA_MTLS, cassandra_tls())
    pipeline(services, cql, cfg, topic, table)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram(services, cql, tmp_path, mech):
    assert SCRAM_OK, (f"sluice links librdkafka {RDK_VERSION_STR}, which cannot do SCRAM with Kafka 4.x "
                      "(librdkafka#4895, fixed in 2.6.1): build without SL_SYSTEM_RDKAFKA=1 (scripts/librdkafka.sh)")
    kafka = dict(KAFKA_PLAIN, sasl_mechanism=mech)
    cfg, topic, table = write_config(tmp_path, mech.lower().replace("-", ""), kafka, cassandra_tls())
    pipeline(services, cql, cfg, topic, table)


# ---- negative: Kafka ----

def expect_kafka_refused(services, tmp_path, name, kafka, patterns, env_extra=None):
    cfg, topic, _ = write_config(tmp_path, name, kafka, cassandra_tls())
    out = sluice(services, "ingest", "users", "-c", cfg, env_extra=env_extra)
    assert out.returncode != 0, out.stderr
    assert out.elapsed < FAST, f"took {out.elapsed:.1f} s"
    last = [l for l in out.stderr.splitlines() if l.startswith("sluice ingest:")]
    assert last, out.stderr
    for p in patterns:
        assert re.search(p, last[-1]), f"{p!r} not in {last[-1]!r}"
    assert not topic_records(services, topic), "records were written"
    return last[-1]


def test_kafka_wrong_password(services, tmp_path):
    expect_kafka_refused(services, tmp_path, "badpw", KAFKA_PLAIN,
                         [r"cannot authenticate to 127\.0\.0\.1:9192", r"Invalid username or password"],
                         env_extra={"KAFKA_PW": "not-the-password-" + uuid.uuid4().hex[:8]})


def test_kafka_untrusted_ca(services, tmp_path):
    expect_kafka_refused(services, tmp_path, "rogueca", kafka_sasl_ssl(ca="rogue-ca.pem"),
                         [r"127\.0\.0\.1:9193", r"SSL handshake failed.*certificate verify failed"])


def test_kafka_expired_certificate(services, tmp_path):
    kafka = {"brokers": "127.0.0.1:9195", "security_protocol": "ssl", "ssl_ca_location": os.path.join(PKI, "ca.pem")}
    expect_kafka_refused(services, tmp_path, "expired", kafka,
                         [r"127\.0\.0\.1:9195", r"SSL handshake failed.*certificate verify failed"])


def test_kafka_client_certificate_from_untrusted_ca(services, tmp_path):
    kafka = dict(KAFKA_MTLS, ssl_certificate_location=os.path.join(PKI, "rogue-client.pem"),
                 ssl_key_location=os.path.join(PKI, "rogue-client.key"))
    del kafka["ssl_key_password_env"]
    expect_kafka_refused(services, tmp_path, "roguecl", kafka, [r"127\.0\.0\.1:9194", r"SSL"])


def test_kafka_no_client_certificate(services, tmp_path):
    kafka = {k: v for k, v in KAFKA_MTLS.items() if not k.startswith("ssl_key") and k != "ssl_certificate_location"}
    expect_kafka_refused(services, tmp_path, "nocert", kafka, [r"127\.0\.0\.1:9194", r"SSL"])


def test_kafka_no_credentials(services, tmp_path):
    # plaintext to a SASL listener: the broker drops the connection; sluice says so after its 10 s metadata wait.
    expect_kafka_refused(services, tmp_path, "nocreds", {"brokers": "127.0.0.1:9192"},
                         [r"no answer from 127\.0\.0\.1:9192", r"security_protocol"])


def test_kafka_password_env_not_set(services, tmp_path):
    kafka = dict(KAFKA_PLAIN, sasl_password_env="SLUICE_TEST_UNSET_" + uuid.uuid4().hex[:6].upper())
    expect_kafka_refused(services, tmp_path, "noenv", kafka, [r"sasl_password_env: environment variable \S+ is not set"])


def test_kafka_secret_in_raw_properties_is_refused(services, tmp_path):
    secret = "literal-" + uuid.uuid4().hex
    cfg, topic, _ = write_config(tmp_path, "rawsecret", KAFKA_PLAIN, cassandra_tls(),
                                 extra_kafka=f"  properties:\n    sasl.password: {secret}\n")
    out = sluice(services, "ingest", "users", "-c", cfg, env_extra={"UNUSED_SECRET": secret})
    assert out.returncode != 0
    assert "kafka.properties.sasl.password: secrets are not read from the config file" in out.stderr
    assert topic_records(services, topic) is None


# ---- negative: Cassandra (records are in Kafka; nothing may reach the table or commit) ----

def committed(services, topic, group="sluice-users"):
    from confluent_kafka import Consumer, TopicPartition
    md = admin_kafka(services).list_topics(topic, timeout=15)
    c = Consumer({"bootstrap.servers": "127.0.0.1:9192", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                  "sasl.password": services["KAFKA_SECURE_ADMIN_PASSWORD"], "group.id": group})
    try:
        parts = c.committed([TopicPartition(topic, p) for p in md.topics[topic].partitions], timeout=10)
        return sum(max(p.offset, 0) for p in parts)
    finally:
        c.close()


@pytest.mark.parametrize("case,cassandra,env_extra,patterns", [
    ("wrongpw", cassandra_tls(), {"CASS_PW": "wrong-" + uuid.uuid4().hex[:8]},
     [r"127\.0\.0\.1:9242", r"Bad credentials|password are incorrect"]),
    ("untrusted", cassandra_tls(ca="rogue-ca.pem"), None, [r"127\.0\.0\.1:9242", r"certificate verify failed"]),
    ("expired", cassandra_tls(cert="expired"), None, [r"127\.0\.0\.1:9242", r"certificate expired"]),
    ("noclientcert", cassandra_tls(cert=None), None, [r"127\.0\.0\.1:9242", r"certificate required"]),
    ("nocreds", cassandra_tls(user=None), None, [r"127\.0\.0\.1:9242", r"requires authentication"]),
])
def test_cassandra_refused(services, cql, tmp_path, case, cassandra, env_extra, patterns):
    cfg, topic, table = write_config(tmp_path, "c" + case, KAFKA_PLAIN, cassandra)
    ing = sluice(services, "ingest", "users", "-c", cfg)
    assert ing.returncode == 0, ing.stderr
    out = sluice(services, "process", "users", "-c", cfg, "--drain", env_extra=env_extra)
    assert out.returncode != 0, out.stderr
    assert out.elapsed < FAST, f"took {out.elapsed:.1f} s"
    last = [l for l in out.stderr.splitlines() if l.startswith("sluice process:")]
    assert last, out.stderr
    for p in patterns:
        assert re.search(p, last[-1]), f"{p!r} not in {last[-1]!r}"
    assert not table_rows(cql, table), "rows were written"
    assert committed(services, topic) == 0, "offsets were committed"
