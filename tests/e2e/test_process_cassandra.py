"""Issue 5 acceptance: `sluice process` from the real Kafka into the real Cassandra.

- the test API server's records (SL_E2E_SCALE=full: 100,000; CI: 10,000), ingested then processed: count(*) equals
  the distinct ids and every row's columns equal the seed's format_data of its source record;
- the processor killed (-9) three times at random moments (chosen by rows written) and restarted: the same table;
- two processors in one group: both are assigned partitions, together they write every row, and after one is killed
  the other takes its partitions and writes what arrives after the kill;
- poison records produced straight into the topic (invalid JSON, a missing required field, wrong types, and values
  Cassandra refuses) land in the DLQ with stage and reason while the good records around them are written;
- Cassandra stopped for 30 s mid-stream: the processor retries and resumes, writes everything, RSS stays bounded;
  no offset moves while no row can be written, and a processor killed (-9) during the outage loses nothing.

On values Cassandra refuses: for the seed's table (id uuid, every other column text) there is none that passes the
processor's decode, because the decoder already refuses what Cassandra would (malformed uuids, invalid UTF-8, lone
surrogates: checked here too). With the partition key on a text column there are: an empty key ("Key may not be
empty"), a key over 64 KiB, and a missing (null) key; the poison test uses primary_key [username, id] for them.

Run: VENV=$(bash scripts/venv.sh); SLUICE=build-asan/sluice $VENV/bin/pytest -q tests/e2e/test_process_cassandra.py
"""
import json
import os
import random
import re
import signal
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import sluice_e2e as e2e  # noqa: E402

N = int(os.environ.get("SL_E2E_N", 100000 if e2e.FULL else 10000))
PAGE = 1000
# a killed processor's partitions move after 6 s instead of librdkafka's default 45 s
SHORT_SESSION = "  properties:\n    session.timeout.ms: \"6000\"\n    heartbeat.interval.ms: \"1000\"\n"


def retry(fn, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """N records from the API server, ingested once into a topic that the tests below read with their own groups."""
    tmp = tmp_path_factory.mktemp("ingest")
    api = e2e.ApiServer(N, seed=e2e.uniq("s"))
    topic = e2e.uniq("e2e_proc")
    try:
        cfg = e2e.write_config(tmp / "s.yaml", data_dir=tmp / "data", topic=topic, keyspace="unused",
                               source_yaml=e2e.http_source_yaml(api.port, PAGE))
        t0 = time.time()
        rc, p = e2e.run(["ingest", "-c", str(cfg)], tmp / "ingest.log", timeout=600)
        assert rc == 0, p.output()[-3000:]
        recs = api.records()
        expected = {}
        for r in recs:
            m = e2e.format_data(r)
            expected[m["id"]] = m
        assert e2e.topic_count(topic) == N
        print(f"\ningested {N} records in {time.time() - t0:.1f} s")
        yield {"topic": topic, "expected": expected}
    finally:
        api.close()
        e2e.delete_topics(topic, topic + ".dlq")


@pytest.fixture
def ks():
    names = []

    def make():
        names.append(e2e.uniq("e2e_ks"))
        return names[-1]
    yield make
    for k in names:
        e2e.drop_keyspace(k)


def proc_config(tmp, topic, keyspace, group, **kw):
    return e2e.write_config(tmp / f"{group}.yaml", data_dir=tmp / "data", topic=topic, keyspace=keyspace,
                            group=group, source_yaml="      type: generate\n", **kw)


def assert_table(keyspace, expected):
    count = e2e.table_count(keyspace, ranges=1 if len(expected) < 50000 else 16)
    assert count == len(expected), f"count(*) = {count}, distinct ids = {len(expected)}"
    e2e.compare(expected, e2e.table_rows(keyspace), f"table {keyspace}.created_users")


def test_full_table(tmp_path, source, ks):
    k, g = ks(), e2e.uniq("g")
    cfg = proc_config(tmp_path, source["topic"], k, g)
    t0 = time.time()
    rc, p = e2e.run(["process", "-c", str(cfg), "--drain"], tmp_path / "process.log", timeout=600)
    assert rc == 0, p.output()[-3000:]
    print(f"processed {N} in {time.time() - t0:.1f} s, peak RSS {p.peak_rss_kib / 1024:.0f} MiB")
    assert_table(k, source["expected"])
    assert e2e.topic_count(source["topic"] + ".dlq") == 0


def test_kill9_three_times(tmp_path, source, ks):
    k, g = ks(), e2e.uniq("g")
    cfg = proc_config(tmp_path, source["topic"], k, g, batch_yaml="    batch: { max_records: 100 }\n",
                      kafka_extra=SHORT_SESSION)
    rnd = random.Random(os.environ.get("SL_E2E_SEED") or time.time())
    rows = 0
    for i in range(3):
        # each kill after a random further 5-25 % of the rows, so all three land mid-stream
        frac = min(0.95, rows / N + rnd.uniform(0.05, 0.25))
        p = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "process.log")
        try:
            deadline = time.time() + 300
            while time.time() < deadline and p.alive():
                try:
                    rows = e2e.table_count(k)
                except Exception:
                    rows = 0  # keyspace not created yet
                if rows >= frac * N:
                    break
                time.sleep(0.05)
            time.sleep(rnd.uniform(0, 0.2))
            assert p.alive(), p.output()[-3000:]
            p.kill9()
            print(f"kill {i + 1} at >= {rows} rows (target {frac:.2f})")
        finally:
            p.ensure_dead()
    rc, p = e2e.run(["process", "-c", str(cfg), "--drain"], tmp_path / "process.log", timeout=600)
    assert rc == 0, p.output()[-3000:]
    assert_table(k, source["expected"])


def assigned(log):
    return [int(m.group(1)) for m in re.finditer(r"kafka assigned topic=\S+ partitions=(\d+)", log)]


def owned(log):
    """Partitions a member holds now: assigned minus revoked (cooperative rebalances move them a few at a time,
    and the member that joined first may hold all of them for a moment)."""
    revoked = [int(m.group(1)) for m in re.finditer(r"kafka revoked topic=\S+ partitions=(\d+)", log)]
    return sum(assigned(log)) - sum(revoked)


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_two_processors_share_and_hand_over(tmp_path, ks):
    n = 20000 if e2e.FULL else 4000
    api = e2e.ApiServer(n, seed=e2e.uniq("s"))
    topic = e2e.uniq("e2e_two")
    k, g = ks(), e2e.uniq("g")
    procs = []
    try:
        props = SHORT_SESSION
        cfg = e2e.write_config(tmp_path / "s.yaml", data_dir=tmp_path / "data", topic=topic, keyspace=k, group=g,
                               partitions=4, source_yaml=e2e.http_source_yaml(api.port, 100), kafka_extra=props)
        rc, p = e2e.run(["ingest", "-c", str(cfg), "--count", str(n // 2)], tmp_path / "ingest1.log", timeout=300)
        assert rc == 0, p.output()[-2000:]
        first = e2e.topic_count(topic)
        assert n // 2 <= first < n
        # the two processors start together, so that the group settles with both in it
        a = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "a.log")
        b = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "b.log")
        procs += [a, b]
        wait_for(lambda: sum(assigned(a.output())) > 0 and sum(assigned(b.output())) > 0, 60,
                 "both processors to be assigned partitions")
        wait_for(lambda: e2e.table_count(k) == first, 120, f"{first} rows from the first half")
        pa, pb = owned(a.output()), owned(b.output())
        print(f"assigned: a {pa}, b {pb} partitions")
        assert pa > 0 and pb > 0
        a.kill9()
        t_kill = time.time()
        rc, p = e2e.run(["ingest", "-c", str(cfg)], tmp_path / "ingest2.log", timeout=300)
        assert rc == 0, p.output()[-2000:]
        wait_for(lambda: e2e.table_count(k) == n, 120, f"{n} rows after one processor was killed")
        print(f"survivor wrote the rest {time.time() - t_kill:.1f} s after the kill")
        assert owned(b.output()) == 4, f"survivor's assignments: {assigned(b.output())}, holds {owned(b.output())}"
        expected = {}
        for r in api.records():
            m = e2e.format_data(r)
            expected[m["id"]] = m
        assert_table(k, expected)
        os.kill(b.pid, signal.SIGTERM)
        assert b.wait(60) == 0, b.output()[-2000:]
    finally:
        for p in procs:
            p.ensure_dead()
        api.close()
        e2e.delete_topics(topic, topic + ".dlq")


def good_row():
    rid = str(uuid.uuid4())
    return {"id": rid, "first_name": "Ann", "last_name": "Lee", "gender": "female", "address": "1 Main St, A, B, C",
            "post_code": "12345", "email": "ann@example.com", "username": "u" + rid[:8], "dob": "1990-01-01",
            "registered_date": "2020-01-01", "phone": "(1)", "picture": "p"}


def test_poison_records_go_to_dlq(tmp_path, ks):
    topic = e2e.uniq("e2e_poison")
    k, g = ks(), e2e.uniq("g")
    e2e.create_topic(topic, 1)
    try:
        def enc(d):
            return json.dumps(d).encode()

        def without(col):
            d = good_row()
            del d[col]
            return enc(d)

        def with_(**kw):
            d = good_row()
            d.update(kw)
            return enc(d)

        rid = str(uuid.uuid4())
        poison = [  # (value, stage, reason pattern)
            (b'{"id": "' + rid.encode() + b'", "first_name": "Tru', "decode", r"json"),
            (without("id"), "decode", r"column 'id': required"),
            (with_(id="not-a-uuid"), "decode", r"column 'id': expected a uuid"),
            (with_(first_name=42), "decode", r"column 'first_name': expected a string"),
            (b'{"id": "' + rid.encode() + b'", "first_name": "\xff\xfe"}', "decode", r"UTF-8"),
            (b'{"id": "' + rid.encode() + b'", "first_name": "\\ud800"}', "decode", r"json"),
            (with_(username=""), "sink", r"Key may not be empty"),
            (with_(username="x" * 70000), "sink", r"longer than maximum of 65535"),
            (without("username"), "sink", r"username"),
        ]
        items, good = [], []
        for value, _stage, _why in poison:
            g_ = good_row()
            good.append(g_)
            items.append((g_["id"].encode(), enc(g_)))
            items.append((None, value))
        g_ = good_row()
        good.append(g_)
        items.append((g_["id"].encode(), enc(g_)))
        e2e.produce(topic, items, partition=0)
        cfg = proc_config(tmp_path, topic, k, g, partitions=1, primary_key="[username, id]")
        rc, p = e2e.run(["process", "-c", str(cfg), "--drain"], tmp_path / "process.log", timeout=120)
        assert rc == 0, p.output()[-3000:]
        dlq = sorted(e2e.consume_all(topic + ".dlq", expect=len(poison)),
                     key=lambda m: int(e2e.headers_dict(m[2])["sluice.offset"]))
        assert len(dlq) == len(poison), [e2e.headers_dict(m[2]) for m in dlq]
        for i, ((value, stage, why), (_k, v, h, _p, _o)) in enumerate(zip(poison, dlq)):
            h = e2e.headers_dict(h)
            assert v == value, f"DLQ record {i} is not the original bytes"
            assert h["sluice.stage"] == stage, (i, h)
            assert re.search(why, h["sluice.error"]), (i, why, h["sluice.error"])
            assert h["sluice.topic"] == topic and h["sluice.partition"] == "0", h
            assert h["sluice.offset"] == str(2 * i + 1), (i, h)  # poison sits at the odd offsets
        rows = e2e.table_rows(k)
        e2e.compare({r["id"]: r for r in good}, rows, "good records around the poison")
        assert "9 to the dead-letter topic" in p.output(), p.output()[-1500:]
    finally:
        e2e.delete_topics(topic, topic + ".dlq")


def test_cassandra_down_30s(tmp_path, ks):
    n = 20000 if e2e.FULL else 6000
    api = e2e.ApiServer(n, seed=e2e.uniq("s"))
    topic = e2e.uniq("e2e_cdown")
    k, g = ks(), e2e.uniq("g")
    buffer_max_mib, consumer_queue_mib = 8, 16
    ing = proc = None
    try:
        # ingest paced over ~45 s, so records keep arriving before, during and after the outage
        cfg = e2e.write_config(tmp_path / "s.yaml", data_dir=tmp_path / "data", topic=topic, keyspace=k, group=g,
                               source_yaml=e2e.http_source_yaml(api.port, 100, rate=n / 100 / 45),
                               kafka_extra=f"  buffer_max: {buffer_max_mib}MiB\n" + SHORT_SESSION)
        ing = e2e.Proc(["ingest", "-c", str(cfg)], tmp_path / "ingest.log")
        proc = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "process.log")
        wait_for(lambda: e2e.table_count(k) >= n // 10, 60, "the first rows")
        try:
            e2e.service("stop", "cassandra")
            t_down = time.time()
            time.sleep(8)  # writes in flight when it went down have failed by now
            c0 = e2e.committed(g, topic)
            time.sleep(10)
            c1 = e2e.committed(g, topic)
            # kill -9 in the middle of the outage: whatever it committed must be in the table, or those rows are
            # lost for good. (The next processor starts once Cassandra is back: one started while Cassandra is away
            # exits at once, "cannot connect to any contact point".)
            assert proc.alive(), f"processor died while Cassandra was down:\n{proc.output()[-3000:]}"
            proc.kill9()
            rss_first = proc.peak_rss_kib
            proc.ensure_dead()
            assert "sink write failed, retrying" in proc.output(), proc.output()[-3000:]
            time.sleep(max(0.0, 30 - (time.time() - t_down)))
            c2 = e2e.committed(g, topic)
            marks = e2e.committed(g, topic, per_partition=True)
        finally:
            e2e.service("start", "cassandra")
        print(f"committed offsets during the outage: {c0} -> {c1} -> {c2}")
        assert c0 == c1 == c2, f"offsets committed while no row could be written: {c0} -> {c1} -> {c2}"
        # no processor runs now: every record below the committed offsets must already be in the table
        below = {json.loads(v)["id"] for _k, v, _h, part, off in e2e.consume_all(topic) if off < marks.get(part, 0)}
        in_table = retry(lambda: e2e.table_rows(k), 90)
        lost = below - set(in_table)
        assert not lost, f"{len(lost)} records committed but not in the table, e.g. {sorted(lost)[:3]}"
        proc = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "process2.log")
        print(f"cassandra down {time.time() - t_down:.1f} s")
        assert ing.wait(300) == 0, ing.output()[-2000:]
        wait_for(lambda: e2e.table_count(k) == n, 180, f"{n} rows after Cassandra came back")
        assert proc.alive(), proc.output()[-3000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0, proc.output()[-3000:]
        out = proc.output()
        expected = {}
        for r in api.records():
            m = e2e.format_data(r)
            expected[m["id"]] = m
        retry(lambda: assert_table(k, expected), 60)
        bound = (buffer_max_mib + consumer_queue_mib + 64 + e2e.ASAN_RSS_SLACK_MIB) * 1024
        peak = max(rss_first, proc.peak_rss_kib)
        print(f"processor peak RSS {peak / 1024:.1f} MiB, bound {bound / 1024:.0f} MiB")
        assert peak < bound
    finally:
        for p in (ing, proc):
            if p:
                p.ensure_dead()
        api.close()
        e2e.delete_topics(topic, topic + ".dlq")
        if not e2e.service_ready("cassandra"):
            e2e.service("start", "cassandra")


def test_idle_processor_does_not_churn_kafka_clients(tmp_path, ks):
    """The group-wide lag (sl_backend_lag -> sl_kafka_group_lag, sl_kafka_partitions) builds two new librdkafka
    clients (threads, broker connections) on every call, which the processor makes once a second while idle and
    after every batch once a second: a steady churn of connections on the broker. Probe: librdkafka logs one warning
    per new producer-type client for a consumer-only property, naming the client (sluice#producer-N)."""
    topic = e2e.uniq("e2e_idle")
    k, g = ks(), e2e.uniq("g")
    e2e.create_topic(topic, 1)
    try:
        cfg = e2e.write_config(tmp_path / "s.yaml", data_dir=tmp_path / "data", topic=topic, keyspace=k, group=g,
                               partitions=1, source_yaml="      type: generate\n", kafka_extra=SHORT_SESSION)
        p = e2e.Proc(["process", "-c", str(cfg)], tmp_path / "process.log")
        try:
            wait_for(lambda: "kafka assigned" in p.output(), 30, "the assignment")
            time.sleep(10)
        finally:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(30)
            p.ensure_dead()
        clients = set(re.findall(r"client=(sluice#\w+-\d+)", p.output()))
        assert len(clients) <= 6, f"{len(clients)} librdkafka clients created by an idle processor in ~10 s"
    finally:
        e2e.delete_topics(topic, topic + ".dlq")
