"""Stream processing on the embedded default (no Kafka, no Cassandra): filters, computed columns, several outputs
from one stream, windowed aggregates against a Python model of the lateness semantics, and effectively-once
aggregation through kill -9.

Each test writes its own data_dir under pytest's tmp_path. Records are either generated (the seed's shape) or
written straight into the embedded log (its `messages` table) so their order and timestamps are exactly the test's.

Run: SLUICE=build-asan/sluice /work/main/.cache/venv/bin/pytest -q tests/e2e/test_processing.py
"""
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
import urllib.error

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SLUICE = os.path.abspath(os.path.join(ROOT, os.environ.get("SLUICE", "build/sluice")))


def run(args, cwd, timeout=300, check=True):
    p = subprocess.run([SLUICE] + args, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"sluice {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def rows(db, sql):
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def topic_records(data_dir, topic):
    """Every record in the embedded topic, decoded, in (partition, offset) order, with its log timestamp."""
    out = []
    with sqlite3.connect(os.path.join(data_dir, "log.db")) as c:
        for part, off, ts, value in c.execute(
                "SELECT partition, offset, ts_ms, value FROM messages WHERE topic=? ORDER BY partition, offset",
                (topic,)):
            r = json.loads(value)
            r["_ts"] = ts
            out.append(r)
    return out


def dlq_lines(cfg, cwd, pipeline):
    p = run(["dlq", pipeline, "list", "-c", cfg], cwd)
    return [l for l in p.stdout.splitlines() if l.strip() and not l.startswith(("0 records", "records listed"))]


SEED_FANOUT = """
data_dir: {data_dir}
pipelines:
  users:
    source: {{ type: generate, seed: 7, count: {n}, page_size: 100 }}
    topic: users_fan
    partitions: 3
    key: id
    mapping:
      id:         {{ path: login.uuid, type: uuid }}
      first_name: name.first
      last_name:  name.last
      gender:     gender
      address:    {{ template: "{{location.street.number}} {{location.street.name}}, {{location.city}}, {{location.state}}, {{location.country}}" }}
      email:      email
      age:        {{ path: dob.age, type: int }}
    compute:
      country: "split(address, ', ', -1)"
      initials: "upper(substring(first_name, 1, 1) || substring(last_name, 1, 1))"
    where: "age >= 0"
    sink: {{ keyspace: fan, table: all_users, primary_key: [id] }}
    outputs:
      by_email:
        columns: [email, id, country]
        sink: {{ keyspace: fan, table: by_email, primary_key: [email] }}
      adults_fr:
        where: "age >= 40 and country in ('France', 'Germany')"
        columns: [id, first_name, initials, age, country]
        sink: {{ keyspace: fan, table: adults_fr, primary_key: [id] }}
      short_names:
        columns: [id, first_name]
        sink: {{ keyspace: fan, table: short_names, primary_key: [id] }}
"""


def test_fanout_three_tables_and_a_rejecting_output(tmp_path):
    """Three outputs from one stream, each equal to its filter and projection of the input (recomputed here from the
    topic); a table that refuses some rows (a CHECK constraint) sends exactly those to the DLQ naming the output, and
    every other output still has them."""
    data_dir = str(tmp_path / "var")
    n = 1500
    cfg = tmp_path / "fan.yaml"
    cfg.write_text(SEED_FANOUT.format(data_dir=data_dir, n=n))
    os.makedirs(data_dir)
    # The table of one output exists already and refuses first names longer than 5 characters.
    with sqlite3.connect(os.path.join(data_dir, "fan.db")) as c:
        c.execute('CREATE TABLE "short_names" ("id" TEXT, "first_name" TEXT CHECK (length(first_name) <= 5), '
                  'PRIMARY KEY ("id"))')
    run(["up", "-c", str(cfg), "--until-done", "-q"], str(tmp_path))
    recs = topic_records(data_dir, "users_fan")
    assert len(recs) == n
    db = os.path.join(data_dir, "fan.db")
    for r in recs:
        r["country"] = r["address"].split(", ")[-1]
    # main: every record, mapped columns only (no computed column in the seed-shaped table)
    assert rows(db, "SELECT count(*) FROM all_users")[0][0] == n
    cols = [r[1] for r in rows(db, "PRAGMA table_info(all_users)")]
    assert "country" not in cols and "initials" not in cols
    # by_email: projection keyed by email (emails repeat in generated data: the last write wins per key, so compare
    # the set of (email) keys and that every row is one of that email's records)
    got = {e: (i, c) for e, i, c in rows(db, "SELECT email, id, country FROM by_email")}
    want = collections.defaultdict(set)
    for r in recs:
        want[r["email"]].add((r["id"], r["country"]))
    assert set(got) == set(want)
    assert all(got[e] in want[e] for e in got)
    # adults_fr: the filter, with the computed columns
    want_fr = {r["id"]: (r["first_name"], (r["first_name"][:1] + r["last_name"][:1]).upper(), r["age"], r["country"])
               for r in recs if r["age"] >= 40 and r["country"] in ("France", "Germany")}
    got_fr = {i: (f, ini, a, c) for i, f, ini, a, c in
              rows(db, "SELECT id, first_name, initials, age, country FROM adults_fr")}
    assert want_fr and got_fr == want_fr
    # short_names: the rows the table refused went to the DLQ, naming the output; the others are in the table
    long_ids = {r["id"] for r in recs if len(r["first_name"]) > 5}
    assert long_ids, "the generated names should include some longer than 5 characters"
    got_short = {i for (i,) in rows(db, "SELECT id FROM short_names")}
    assert got_short == {r["id"] for r in recs} - long_ids
    lines = dlq_lines(str(cfg), str(tmp_path), "users")
    named = [l for l in lines if "output short_names (fan.short_names)" in l]
    assert len(named) == len(long_ids), (len(named), len(long_ids), lines[:3])
    # and the refused records are still in every other output
    ids_all = {i for (i,) in rows(db, "SELECT id FROM all_users")}
    assert long_ids <= ids_all


WINDOWS = """
data_dir: {data_dir}
pipelines:
  events:
    source: {{ type: generate, seed: 1, count: 1, page_size: 1 }}
    topic: events_w
    partitions: 1
    key: id
    batch: {{ max_records: 1 }}
    mapping:
      id:   {{ path: id, type: text }}
      user: user
      ts:   {{ path: ts, type: timestamp }}
      v:    {{ path: v, type: int }}
    sink: {{ keyspace: w, table: events, primary_key: [id] }}
    outputs:
      per_user:
        aggregate:
          group_by: [user]
          window: {{ size: 10s, slide: 5s, time: ts, lateness: 3s }}
          measures: {{ n: "count()", total: "sum(v)", lo: "min(v)", hi: "max(v)", mean: "avg(v)", first_v: "first(v)", last_v: "last(v)", users: "count_distinct(id)" }}
          emit: final
          late: dlq
        sink: {{ keyspace: w, table: per_user }}
      per_user_live:
        aggregate:
          group_by: [user]
          window: {{ size: 10s, time: ts, lateness: 3s }}
          measures: {{ n: "count()" }}
        sink: {{ keyspace: w, table: per_user_live }}
"""


def model(events, size, slide, lateness, final):
    """The lateness semantics, one record per batch: windows [s, s+size) with s a multiple of slide holding t; a
    window is closed once its end <= watermark; the watermark (max event time - lateness) moves after each batch."""
    wm = None
    maxev = None
    state = {}
    emitted = {}
    late = []
    for e in events:
        t = e["t"]
        first = (t // slide) * slide
        starts = []
        s = first
        while s > t - size:
            starts.append(s)
            s -= slide
        open_ = [s for s in starts if wm is None or s + size > wm]
        if not open_:
            late.append(e["id"])
        for s in open_:
            st = state.setdefault((e["user"], s), [])
            st.append(e)
            if not final:
                emitted[(e["user"], s)] = list(st)
        maxev = t if maxev is None else max(maxev, t)
        cand = maxev - lateness
        wm = cand if wm is None else max(wm, cand)
        for k in [k for k in state if k[1] + size <= wm]:
            if final:
                emitted[k] = state[k]
            del state[k]
    return emitted, late


def write_log(data_dir, topic, events):
    with sqlite3.connect(os.path.join(data_dir, "log.db")) as c:
        for off, e in enumerate(events):
            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e["t"] // 1000)) + ".%03dZ" % (e["t"] % 1000)
            value = json.dumps({"id": e["id"], "user": e["user"], "ts": iso, "v": e["v"]})
            c.execute("INSERT INTO messages(topic, partition, offset, ts_ms, key, value, headers) "
                      "VALUES(?, 0, ?, ?, ?, ?, NULL)", (topic, off, int(time.time() * 1000), e["id"].encode(),
                                                         value.encode()))


def test_event_time_windows_match_the_lateness_model(tmp_path):
    """Crafted out-of-order input: which records count, which are late (and reach the DLQ), which windows are final
    by the end, and every measure of every final row, against model(); the update-mode output's rows too."""
    data_dir = str(tmp_path / "var")
    cfg = tmp_path / "w.yaml"
    cfg.write_text(WINDOWS.format(data_dir=data_dir))
    # Create the topic (and its tables) with an empty run, then write the crafted records into the log directly.
    run(["process", "events", "-c", str(cfg), "--for", "1s"], str(tmp_path))
    rnd = random.Random(19)
    base = 1_700_000_000_000
    events = []
    t = base
    for i in range(400):
        t += rnd.randrange(0, 900)
        jitter = rnd.choice([0, 0, 0, -rnd.randrange(0, 2500), -rnd.randrange(2500, 9000)])  # some late, some very
        events.append({"id": f"e{i}", "user": rnd.choice("abc"), "t": t + jitter, "v": rnd.randrange(-50, 100)})
    write_log(data_dir, "events_w", events)
    run(["process", "events", "-c", str(cfg), "--drain"], str(tmp_path))
    db = os.path.join(data_dir, "w.db")

    emitted, late = model(events, 10000, 5000, 3000, final=True)
    assert late, "the crafted input should have late records"
    got = {}
    for (user, ws, we, n, total, lo, hi, mean, fv, lv, users) in rows(
            db, "SELECT user, window_start, window_end, n, total, lo, hi, mean, first_v, last_v, users FROM per_user"):
        got[(user, ws)] = (we, n, total, lo, hi, mean, fv, lv, users)

    def iso(ms):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)

    want = {}
    for (user, s), es in emitted.items():
        vs = [e["v"] for e in es]
        first = min(es, key=lambda e: e["t"])  # the earliest event time; ties: the first seen
        last = max(reversed(es), key=lambda e: e["t"])  # the latest; ties: the last seen
        last = [e for e in es if e["t"] == max(x["t"] for x in es)][-1]
        want[(user, iso(s))] = (iso(s + 10000), len(es), sum(vs), min(vs), max(vs), sum(vs) / len(vs), first["v"],
                                last["v"], len({e["id"] for e in es}))
    assert len(want) > 50, len(want)
    assert set(got) == set(want), (sorted(set(got) ^ set(want))[:5])
    for k in want:
        g, w = got[k], want[k]
        assert g[:5] == w[:5] and abs(g[5] - w[5]) < 1e-9 and g[6:] == w[6:], (k, g, w)
    # Late records: in the DLQ as late, naming the output, exactly the model's.
    lines = dlq_lines(str(cfg), str(tmp_path), "events")
    late_lines = [l for l in lines if "output per_user: late" in l]
    assert len(late_lines) == len(late), (len(late_lines), len(late))
    # Update mode (tumbling): every window the model ever updated has its latest count.
    upd, late2 = model(events, 10000, 10000, 3000, final=False)
    got_u = {(u, ws): n for u, ws, n in rows(db, "SELECT user, window_start, n FROM per_user_live")}
    assert len(upd) > 20 and len(late2) > 0
    assert got_u == {(u, iso(s)): len(es) for (u, s), es in upd.items()}


KILL = """
data_dir: {data_dir}
pipelines:
  users:
    source: {{ type: generate, seed: 11, count: {n}, page_size: 100 }}
    topic: users_k
    partitions: 3
    key: id
    batch: {{ max_records: 50, in_flight: 4 }}
    mapping:
      id:      {{ path: login.uuid, type: uuid }}
      gender:  gender
      address: {{ template: "{{location.city}}, {{location.country}}" }}
      age:     {{ path: dob.age, type: int }}
    compute:
      country: "split(address, ', ', -1)"
    sink: {{ keyspace: k, table: users, primary_key: [id] }}
    outputs:
      per_country:
        aggregate:
          group_by: [country, gender]
          measures: {{ users: "count()", ages: "sum(age)", oldest: "max(age)" }}
        sink: {{ keyspace: k, table: per_country }}
"""


def test_kill9_ten_times_during_an_aggregation(tmp_path):
    """The processor is killed with SIGKILL ten times while it aggregates; the final table equals a recomputation
    from the topic, record for record (no record counted twice, none lost)."""
    data_dir = str(tmp_path / "var")
    n = 60000
    cfg = tmp_path / "k.yaml"
    cfg.write_text(KILL.format(data_dir=data_dir, n=n))
    run(["ingest", "users", "-c", str(cfg)], str(tmp_path))
    rnd = random.Random(5)
    kills = 0
    db = os.path.join(data_dir, "k.db")
    progress = []
    for _ in range(10):
        p = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfg)], cwd=str(tmp_path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.3, 0.9))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=30)
        try:
            progress.append(rows(db, "SELECT coalesce(sum(users), 0) FROM per_country")[0][0])
        except sqlite3.Error:
            progress.append(0)
    assert kills == 10
    # The kills must land while the aggregation is under way for the test to mean anything.
    mid = [x for x in progress if 0 < x < n]
    assert len(mid) >= 3, progress
    done_before = progress[-1]
    run(["process", "users", "-c", str(cfg), "--drain"], str(tmp_path))
    recs = topic_records(data_dir, "users_k")
    assert len(recs) == n
    want = collections.defaultdict(lambda: [0, 0, 0])
    for r in recs:
        k = (r["address"].split(", ")[-1], r["gender"])
        want[k][0] += 1
        want[k][1] += r["age"]
        want[k][2] = max(want[k][2], r["age"])
    got = {(c, g): [u, a, o] for c, g, u, a, o in rows(db, "SELECT country, gender, users, ages, oldest FROM per_country")}
    assert got == dict(want)
    print(f"kill -9 x{kills}: records aggregated after each kill: {progress}")


def reset_group(data_dir, topic, to=0):
    """What the console's reset action (es commit_group) does to the embedded log: the group's committed offsets."""
    with sqlite3.connect(os.path.join(data_dir, "log.db")) as c:
        n = c.execute("UPDATE group_offsets SET next_offset=? WHERE topic=?", (to, topic)).rowcount
    assert n == 3, n


def group_offsets(data_dir, topic):
    return sorted(rows(os.path.join(data_dir, "log.db"),
                       f"SELECT partition, next_offset FROM group_offsets WHERE topic='{topic}'"))


def test_group_reset_is_honoured_over_the_sinks_offsets(tmp_path):
    """After a reset of the group to the start, the processor reads the topic again although its SQLite sinks keep
    offsets of their own: rows deleted from the per-record table come back, the aggregate counts no record twice
    (also when the replay is killed half way), and --drain ends (the lag it waits on is the processor's own)."""
    data_dir = str(tmp_path / "var")
    n = 3000
    cfg = tmp_path / "k.yaml"
    cfg.write_text(KILL.format(data_dir=data_dir, n=n))
    run(["ingest", "users", "-c", str(cfg)], str(tmp_path))
    run(["process", "users", "-c", str(cfg), "--drain"], str(tmp_path), timeout=120)
    db = os.path.join(data_dir, "k.db")
    ends = group_offsets(data_dir, "users_k")
    assert sum(o for _, o in ends) == n

    def check_aggregate():
        want = collections.defaultdict(lambda: [0, 0, 0])
        for r in topic_records(data_dir, "users_k"):
            k = (r["address"].split(", ")[-1], r["gender"])
            want[k][0] += 1
            want[k][1] += r["age"]
            want[k][2] = max(want[k][2], r["age"])
        got = {(c, g): [u, a, o] for c, g, u, a, o in
               rows(db, "SELECT country, gender, users, ages, oldest FROM per_country")}
        assert got == dict(want)
    check_aggregate()
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM users WHERE rowid % 3 = 0")
    assert rows(db, "SELECT count(*) FROM users")[0][0] == n - n // 3

    # A rewind: every row comes back, the aggregate is unchanged, the group is at the end again.
    reset_group(data_dir, "users_k", 0)
    run(["process", "users", "-c", str(cfg), "--drain"], str(tmp_path), timeout=120)
    assert rows(db, "SELECT count(*) FROM users")[0][0] == n
    check_aggregate()
    assert group_offsets(data_dir, "users_k") == ends

    # A rewind whose replay is killed half way, then drained: still no record counted twice.
    reset_group(data_dir, "users_k", 0)
    p = subprocess.Popen([SLUICE, "process", "users", "-c", str(cfg)], cwd=str(tmp_path),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline and sum(o for _, o in group_offsets(data_dir, "users_k")) < n // 3:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    mid = sum(o for _, o in group_offsets(data_dir, "users_k"))
    run(["process", "users", "-c", str(cfg), "--drain"], str(tmp_path), timeout=120)
    check_aggregate()
    assert group_offsets(data_dir, "users_k") == ends
    print(f"replay killed with the group at {mid} of {n}")


def test_console_shows_every_output_and_the_aggregates(tmp_path):
    """The console's data page lists each output's table (main and outputs:) and pages through any of them
    (/api/data/rows?output=NAME); an aggregate output says so (its watermark and windows come from the processor's
    gauges, null when it runs in another process, as here)."""
    import re
    import urllib.request
    data_dir = str(tmp_path / "var")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(KILL.format(data_dir=data_dir, n=300))
    run(["up", "-c", str(cfg), "--until-done", "-q"], str(tmp_path))
    p = subprocess.Popen([SLUICE, "console", "-c", str(cfg), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
    try:
        m = re.search(r"http://([0-9.:]+)/", p.stdout.readline())
        assert m
        base = "http://" + m.group(1)

        def get(path):
            with urllib.request.urlopen(base + path, timeout=30) as r:
                return json.loads(r.read())
        tables = get("/api/data")["tables"]
        assert [(t["pipeline"], t["output"], t["table"]) for t in tables] == [
            ("users", "main", "users"), ("users", "per_country", "per_country")]
        assert tables[0].get("aggregate") is None
        ag = tables[1]["aggregate"]
        assert ag["final"] is False and ag["watermark_seconds"] is None
        page = get("/api/data/rows?pipeline=users&output=per_country&size=500")
        assert page["output"] == "per_country" and page["table"] == "k.per_country"
        assert "users" in page["columns"] and "country" in page["columns"]
        ui = page["columns"].index("users")
        assert sum(int(r[ui]) for r in page["rows"]) == 300
        main = get("/api/data/rows?pipeline=users&size=5")
        assert main["output"] == "main" and len(main["rows"]) == 5
        # Each table's row count, the extra outputs' too (SQLite counts exactly), once the console has looked.
        deadline = time.time() + 30
        while time.time() < deadline and any(t["rows"] is None for t in tables):
            time.sleep(0.5)
            tables = get("/api/data")["tables"]
        assert [t["rows"] for t in tables] == [300, len(page["rows"])], tables
        try:
            get("/api/data/rows?pipeline=users&output=nope")
            raise AssertionError("an unknown output must be a 404")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        p.kill()
        p.wait()


def test_seed_example_tables(tmp_path):
    """examples/seed/sluice.yaml, as shipped but smaller: the seed table and, from the same stream, users_by_email
    (one row per email, each one of that email's records), users_per_country (users per country and gender, summing to
    every record) and signups_per_minute (its columns; its final rows need a minute of arrival time to pass)."""
    src = open(os.path.join(ROOT, "examples", "seed", "sluice.yaml")).read()
    data_dir = str(tmp_path / "var")
    text = src.replace("data_dir: var/seed", f"data_dir: {data_dir}").replace("count: 100000 ", "count: 2000   ")
    assert text != src and "count: 2000" in text
    cfg = tmp_path / "seed.yaml"
    cfg.write_text(text)
    run(["up", "-c", str(cfg), "--until-done", "-q"], str(tmp_path))
    db = os.path.join(data_dir, "spark_streams.db")
    recs = topic_records(data_dir, "users_created")
    assert len(recs) == 2000
    assert rows(db, "SELECT count(*) FROM created_users")[0][0] == 2000
    by_email = collections.defaultdict(set)
    per = collections.Counter()
    for r in recs:
        country = r["address"].split(", ")[-1]
        by_email[r["email"]].add((r["id"], country))
        per[(country, r["gender"])] += 1
    got = {e: (i, c) for e, i, c in rows(db, "SELECT email, id, country FROM users_by_email")}
    assert set(got) == set(by_email) and all(got[e] in by_email[e] for e in got)
    assert {(c, g): u for c, g, u in rows(db, "SELECT country, gender, users FROM users_per_country")} == dict(per)
    cols = [r[1] for r in rows(db, "PRAGMA table_info(signups_per_minute)")]
    assert cols[:4] == ["country", "window_start", "window_end", "signups"], cols
