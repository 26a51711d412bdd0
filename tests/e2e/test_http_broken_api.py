"""Issue 20 acceptance: the http source against APIs that misbehave, each case served by tests/apiserver, with what
sluice does asserted (exit code, message, rows, DLQ entries) and the requests the server saw bounded; and the
source's total kept with the cursor through kill -9.

Each run is short (well under a minute), so "requests per minute" is bounded by the requests of the whole run.

Run: SLUICE=build-asan/sluice /work/main/.cache/venv/bin/pytest -q tests/e2e/test_http_broken_api.py
"""
import collections
import json
import os
import random
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import sluice_e2e as e2e  # noqa: E402

PAGE = 10
MAX_BAD = 4


@pytest.fixture
def work(tmp_path):
    topics = []
    yield tmp_path, topics
    e2e.delete_topics(*topics)


def source(port, query="", path="/api", *, pagination="page", extra="", max_retries=2):
    url = f"http://127.0.0.1:{port}{path}?page={{page}}&results={PAGE}{query}"
    return (f"      type: http\n"
            f"      url: \"{url}\"\n"
            f"      pagination: {{ type: {pagination} }}\n"
            f"      timeout: 1s\n"
            f"      max_response: 1MiB\n"
            f"      max_retries: {max_retries}\n"
            f"      backoff: 100ms\n"
            f"      backoff_max: 400ms\n"
            f"      max_bad_pages: {MAX_BAD}\n{extra}")


def ingest(tmp, topics, api, src_yaml, args=(), timeout=60):
    topic = e2e.uniq("e2e_h20")
    topics += [topic, topic + ".dlq"]
    cfg = e2e.write_config(tmp / "s.yaml", data_dir=tmp / "data", topic=topic, keyspace=e2e.uniq("ks"),
                           source_yaml=src_yaml)
    t0 = time.time()
    rc, p = e2e.run(["ingest", "-c", str(cfg), *args], tmp / "ingest.log", timeout=timeout)
    by_path = api.stats()["by_path"]
    return rc, p.output(), topic, time.time() - t0, by_path.get("/api", 0) + by_path.get("/secure/api", 0)


def bounded(requests, seconds, per_minute):
    """The run's requests, scaled to a minute when it ran longer than one, stay under per_minute."""
    rate = requests * 60 / max(seconds, 60)
    assert rate <= per_minute, f"{requests} requests in {seconds:.1f} s: {rate:.0f}/min > {per_minute}/min"


BAD_PAGE_CASES = {
    # case: (query, words the failure must name)
    "html_200": ("&html=1", ["not JSON", "looks like HTML"]),
    "truncated_json": ("&malformed=1", ["not JSON"]),
    "results_object": ("&results_as=object", ["$.results is an object, not an array", "single_record"]),
    "results_null": ("&results_as=null", ["$.results is null, not an array"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGE_CASES))
def test_bad_pages_trip_the_breaker(work, case):
    """Every page bad: each goes to the DLQ once, requests back off, and after max_bad_pages the run fails naming the
    URL and the fault; no rows."""
    tmp, topics = work
    query, words = BAD_PAGE_CASES[case]
    api = e2e.ApiServer(10 ** 6, seed=e2e.uniq("s"))
    try:
        rc, out, topic, secs, reqs = ingest(tmp, topics, api, source(api.port, query))
        assert rc == 1, f"rc={rc}:\n{out[-2000:]}"
        assert "circuit breaker" in out and f"{MAX_BAD} bad pages in a row" in out, out[-2000:]
        assert f"127.0.0.1:{api.port}/api?page=" in out, "the failure does not name the URL:\n" + out[-2000:]
        for w in words:
            assert w in out, f"'{w}' not in the output:\n{out[-2000:]}"
        assert reqs == MAX_BAD, f"{reqs} requests for {MAX_BAD} bad pages"
        # backed off: the waits between bad pages add up to at least half of 100+200+400 ms
        assert secs >= 0.35, f"{reqs} requests in {secs:.2f} s: no backoff"
        bounded(reqs, secs, 10)
        assert e2e.topic_count(topic) == 0, "a bad page became rows"
        dlq = e2e.consume_all(topic + ".dlq", expect=MAX_BAD)
        assert len(dlq) == MAX_BAD, f"{len(dlq)} DLQ entries for {MAX_BAD} bad pages"
        assert all(e2e.headers_dict(m[2]).get("sluice.stage") == "parse" for m in dlq)
        assert "FAILED" in out and "0 delivered" in out, out[-1000:]
    finally:
        api.close()


@pytest.mark.parametrize("nolength", [0, 1])
def test_oversize_pages_are_bad_pages(work, nolength):
    """Oversize with Content-Length (refused before reading) and without (cut while reading): bad pages, a note of each
    in the DLQ, backoff, then the breaker; not 116,167 requests."""
    tmp, topics = work
    api = e2e.ApiServer(10 ** 6, seed=e2e.uniq("s"))
    try:
        rc, out, topic, secs, reqs = ingest(tmp, topics, api,
                                            source(api.port, f"&oversize=3000000&nolength={nolength}"))
        assert rc == 1, out[-2000:]
        assert "larger than max_response" in out and "circuit breaker" in out, out[-2000:]
        assert reqs == MAX_BAD, f"{reqs} requests"
        bounded(reqs, secs, 10)
        assert e2e.topic_count(topic) == 0
        dlq = e2e.consume_all(topic + ".dlq", expect=MAX_BAD)
        assert len(dlq) == MAX_BAD and all(len(m[1]) < 1000 for m in dlq), [len(m[1]) for m in dlq]
    finally:
        api.close()


def test_non_object_items_never_become_rows(work):
    """[1, "x", null, [], {}] before the real records: the real ones are rows, the five each a DLQ entry, no
    all-NULL rows with random ids."""
    tmp, topics = work
    n = 30
    api = e2e.ApiServer(n, seed=e2e.uniq("s"))
    try:
        rc, out, topic, secs, reqs = ingest(tmp, topics, api, source(api.port, "&junk=1"))
        assert rc == 0, out[-2000:]
        want = {e2e.format_data(r)["id"] for r in api.records()}
        got = [json.loads(v)["id"] for _k, v, _h, _p, _o in e2e.consume_all(topic, expect=n)]
        assert sorted(got) == sorted(want), f"{len(got)} rows, {len(set(got) - want)} not from the API"
        pages = n // PAGE
        dlq = e2e.consume_all(topic + ".dlq", expect=5 * pages)
        assert len(dlq) == 5 * pages, len(dlq)
        errs = collections.Counter(e2e.headers_dict(m[2]).get("sluice.error", "").split(": ", 1)[-1] for m in dlq)
        not_obj = sum(c for e, c in errs.items() if "not an object" in e)
        assert not_obj == 4 * pages, errs
        assert f"{n} delivered" in out and f"{5 * pages} to the dead-letter topic" in out, out[-1000:]
        # one source of truth: the last progress line and the summary say the same
        prog = re.findall(r"(\d+) delivered, (\d+) dlq,", out)[-1]
        summ = re.search(r"(\d+) delivered to '[^']+', (\d+) to the dead-letter topic", out).groups()
        assert prog == summ == (str(n), str(5 * pages)), (prog, summ)
        assert reqs <= pages + 1
    finally:
        api.close()


def test_dlq_is_bounded_in_bytes(work):
    """dlq_max_bytes: the dead-letter entries of a run stop at the bound; the rest are dropped and counted."""
    tmp, topics = work
    api = e2e.ApiServer(10 ** 6, seed=e2e.uniq("s"))
    try:
        rc, out, topic, _s, reqs = ingest(tmp, topics, api, source(api.port, "&html=1", extra="      dlq_max_bytes: 150\n")
                                          .replace(f"max_bad_pages: {MAX_BAD}", "max_bad_pages: 6"))
        assert rc == 1 and reqs == 6, out[-2000:]
        dlq = e2e.consume_all(topic + ".dlq", expect=2)
        assert len(dlq) == 2 and sum(len(m[1]) for m in dlq) <= 150, [len(m[1]) for m in dlq]
        assert "(4 dropped)" in out and "dlq_max_bytes" in out, out[-2000:]
    finally:
        api.close()


def test_single_record_responses(work):
    """results as an object is one record each with single_record: true (a bad page without it: see above); the
    API never ends, so --count 3 stops after three."""
    tmp, topics = work
    api = e2e.ApiServer(30, seed=e2e.uniq("s"))
    try:
        rc, out, topic, _s, _r = ingest(tmp, topics, api, source(api.port, "&results_as=object",
                                                               extra="      single_record: true\n"),
                                        args=["--count", "3"])
        assert rc == 0, out[-2000:]
        got = {json.loads(v)["id"] for _k, v, _h, _p, _o in e2e.consume_all(topic, expect=3)}
        want = {e2e.format_data(api.records()[i * PAGE])["id"] for i in range(3)}
        assert got == want, (got, want)
    finally:
        api.close()


def test_stall_after_headers_times_out_and_fails(work):
    tmp, topics = work
    api = e2e.ApiServer(100, seed=e2e.uniq("s"))
    try:
        rc, out, _t, secs, reqs = ingest(tmp, topics, api, source(api.port, "&stall=5"))
        assert rc == 1, out[-2000:]
        assert "still failing after 2 retries" in out and ("imeout" in out or "timed out" in out), out[-2000:]
        assert reqs == 3, reqs
        bounded(reqs, secs, 10)
    finally:
        api.close()


@pytest.mark.parametrize("case", ["404", "401"])
def test_client_errors_fail_at_once(work, case):
    tmp, topics = work
    api = e2e.ApiServer(100, seed=e2e.uniq("s"), extra=("--bearer", "t0k"))
    try:
        src = source(api.port, "&status=404") if case == "404" else source(api.port, path="/secure/api")
        rc, out, topic, secs, reqs = ingest(tmp, topics, api, src)
        assert rc == 1, out[-2000:]
        assert f"HTTP {case} (not retried)" in out, out[-2000:]
        assert reqs == 1, reqs
        assert "FAILED" in out
    finally:
        api.close()


def test_429_storm_honours_retry_after_then_fails(work):
    tmp, topics = work
    api = e2e.ApiServer(100, seed=e2e.uniq("s"))
    try:
        rc, out, _t, secs, reqs = ingest(tmp, topics, api, source(api.port, "&fail429=1000000&retry_after=1"))
        assert rc == 1, out[-2000:]
        assert "HTTP 429, still failing after 2 retries" in out, out[-2000:]
        assert reqs == 3 and secs >= 2.0, f"{reqs} requests in {secs:.1f} s: Retry-After: 1 not honoured"
        bounded(reqs, secs, 10)
    finally:
        api.close()


def test_nothing_delivered_is_a_failure(work):
    """ingest --for with nothing delivered (and the source never saying its pages ended) exits 1, as --help says."""
    tmp, topics = work
    api = e2e.ApiServer(100, seed=e2e.uniq("s"))
    try:
        rc, out, _t, _s, _r = ingest(tmp, topics, api, source(api.port, "&fail500=1000000", max_retries=1000), args=["--for", "3s"])
        assert rc == 1 and "nothing was delivered" in out, out[-2000:]
    finally:
        api.close()


def test_count_is_a_total_through_kill9(work):
    """kill -9 five times during --count N on an endless API, then a last run: exactly the first N records, in the
    topic and in the table; a further run takes nothing."""
    tmp, topics = work
    n, page = 1200, 50
    api = e2e.ApiServer(10 ** 9, seed=e2e.uniq("s"))
    topic = e2e.uniq("e2e_total")
    ks = e2e.uniq("ks")
    topics += [topic, topic + ".dlq"]
    rnd = random.Random(os.environ.get("SL_E2E_SEED") or time.time())
    try:
        src = (f"      type: http\n"
               f"      url: \"http://127.0.0.1:{api.port}/api?page={{page}}&results={page}\"\n"
               f"      pagination: {{ type: page }}\n"
               f"      rate_limit: {{ per_second: 4, burst: 1 }}\n")
        cfg = e2e.write_config(tmp / "s.yaml", data_dir=tmp / "data", topic=topic, keyspace=ks, source_yaml=src)
        for k in range(5):
            p = e2e.Proc(["ingest", "-c", str(cfg), "--count", str(n)], tmp / "ingest.log")
            time.sleep(rnd.uniform(0.5, 1.5))
            assert p.alive(), f"ingest ended before kill {k + 1}:\n{p.output()[-2000:]}"
            p.kill9()
            p.ensure_dead()
            print(f"kill {k + 1}: cursor {e2e.saved_cursor(tmp / 'data')!r}")
        rc, p = e2e.run(["ingest", "-c", str(cfg), "--count", str(n)], tmp / "ingest.log", timeout=120)
        assert rc == 0, p.output()[-2000:]
        assert e2e.saved_cursor(tmp / "data").startswith(f"total={n};"), e2e.saved_cursor(tmp / "data")
        want = {e2e.format_data(r)["id"] for r in api.records(0, n)}
        got = {json.loads(v)["id"] for _k, v, _h, _p, _o in e2e.consume_all(topic, expect=n)}
        assert got == want, f"{len(got)} distinct in the topic, {len(got - want)} beyond the first {n}"
        rc, p = e2e.run(["ingest", "-c", str(cfg), "--count", str(n)], tmp / "ingest2.log", timeout=60)
        assert rc == 0 and "already taken" in p.output(), p.output()[-2000:]
        assert e2e.topic_count(topic) == len(e2e.consume_all(topic))
        rc, p = e2e.run(["process", "-c", str(cfg), "--drain"], tmp / "process.log", timeout=180)
        assert rc == 0, p.output()[-2000:]
        rows = e2e.table_count(ks)
        assert rows == n, f"{rows} rows in the table, expected exactly {n}"
    finally:
        api.close()
        e2e.drop_keyspace(ks)
