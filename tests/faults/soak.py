#!/usr/bin/env python3
"""The long form of the fault harness (`make soak`): `sluice up` runs the seed pipeline (tests/apiserver -> Kafka ->
Cassandra) for SOAK_SECONDS (default 3600) at half load, sampling its RSS, the end-to-end latency and the rates,
then checks that every record is in the table and writes a plot and a summary.

Half load: a calibration run first measures how many records a second this machine's pipeline (the API server
included) carries at full speed for 20 s; the soak then serves half of that (SOAK_RATE=records/s sets it instead).
The API is served at that fixed rate by a pacing proxy in front of the API server, which also stamps the moment each
page left it. Latency: once a second, a page served a few seconds earlier is probed: WRITETIME of its first and
last record's row (set by Cassandra when the row was written) minus the moment the page was served.

Outputs: .cache/faults/soak.json (every sample), docs/img/faults-soak.png (the plot) and the soak section of
docs/faults.md (the summary). Exit status 1 when a record is missing or wrong, something went to the DLQ, the RSS
passed its bound or sluice did not end by itself.

  SOAK_SECONDS=300 python3 tests/faults/soak.py
"""
import json
import os
import random
import re
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "apiserver"))
sys.path.insert(0, HERE)
import sluice_e2e as e2e  # noqa: E402
import apiserver  # noqa: E402
import faults  # noqa: E402

ROOT = e2e.ROOT
PAGE = 500
DOC = os.path.join(ROOT, "docs", "faults.md")
PLOT = os.path.join(ROOT, "docs", "img", "faults-soak.png")


class PacedApi:
    """The API server behind a proxy that lets through `pages_per_s` pages a second at most (the API serving at a
    fixed rate) and records when each page's response was sent in full."""

    def __init__(self, upstream_port, pages_per_s):
        self.interval = 1.0 / pages_per_s if pages_per_s else 0.0
        self.next_slot = time.time()
        self.lock = threading.Lock()
        self.served = {}  # page -> time the response left
        self.proxy = e2e.FaultProxy(upstream_port, {}, on_request=self.wait_slot,
                                    on_served=lambda page: self.served.setdefault(page, time.time()))
        self.port = self.proxy.port

    def wait_slot(self, _page):
        with self.lock:
            slot = max(self.next_slot, time.time())
            self.next_slot = slot + self.interval
        time.sleep(max(0.0, slot - time.time()))

    def close(self):
        self.proxy.close()


def retry(fn, attempts=5):
    for i in range(attempts):
        try:
            return fn()
        except Exception:
            if i + 1 == attempts:
                raise
            time.sleep(5)


def uid(seed, index):
    return apiserver.record(seed, index)["login"]["uuid"]


def write_cfg(path, data_dir, port, topic, ks, group):
    return e2e.write_config(path, data_dir=data_dir, topic=topic, keyspace=ks, group=group,
                            source_yaml=e2e.http_source_yaml(port, PAGE), batch_yaml=faults.BATCH_YAML,
                            kafka_extra=faults.KAFKA_EXTRA)


def calibrate(work, seconds=20):
    """Records a second that `sluice up` carries at full speed from the API server into Cassandra."""
    api = e2e.ApiServer(10_000_000, seed=e2e.uniq("cal"))
    topic, ks, group = e2e.uniq("soakcal"), e2e.uniq("soakcal_ks"), e2e.uniq("g")
    cfg = write_cfg(os.path.join(work, "cal.yaml"), os.path.join(work, "cal"), api.port, topic, ks, group)
    p = e2e.Proc(["up", "-c", cfg], os.path.join(work, "cal.log"))
    try:
        deadline = time.time() + 90

        def written():  # committed offsets: rows the sink has (cheaper than count(*) on a busy node)
            try:
                return e2e.committed(group, topic)
            except Exception:
                return 0
        # the rate over `seconds` once rows flow (group join and table creation left out)
        while time.time() < deadline and written() == 0:
            time.sleep(0.5)
        c0 = written()
        if c0 == 0:
            raise AssertionError(f"calibration: nothing written in 90 s:\n{p.output()[-2000:]}")
        time.sleep(seconds)
        c1 = written()
        return (c1 - c0) / seconds
    finally:
        p.ensure_dead()
        api.close()
        e2e.delete_topics(topic, topic + ".dlq")
        e2e.drop_keyspace(ks)


def main():
    seconds = int(os.environ.get("SOAK_SECONDS", 3600))
    work = faults.tempfile.mkdtemp(prefix="sluice-soak-")
    src = e2e.SLUICE
    e2e.SLUICE = os.path.join(work, "sluice")
    faults.shutil.copy2(src, e2e.SLUICE)
    asan = e2e.is_asan(e2e.SLUICE)
    out_dir = faults.OUT_DIR
    os.makedirs(out_dir, exist_ok=True)
    with faults.services_lock(False):
        faults.ensure_services()
        if os.environ.get("SOAK_RATE"):
            full, rate = None, float(os.environ["SOAK_RATE"])
        else:
            full = calibrate(work)
            rate = full / 2
        print(f"soak: {seconds} s at {rate:.0f} records/s"
              + (f" (half of {full:.0f} records/s measured at full speed)" if full else ""), flush=True)
        total = int(rate * seconds) // PAGE * PAGE
        seed = e2e.uniq("soak")
        api = e2e.ApiServer(total, seed=seed)
        paced = PacedApi(api.port, rate / PAGE)
        topic, ks, group = e2e.uniq("soak"), e2e.uniq("soak_ks"), e2e.uniq("g")
        cfg = write_cfg(os.path.join(work, "soak.yaml"), os.path.join(work, "data"), paced.port, topic, ks, group)
        bound = faults.bound_mib("up", asan)
        samples, lat = [], []  # (t, rss MiB, served records, committed records); (t served, latency s)
        stop = threading.Event()
        p = e2e.Proc(["up", "-c", cfg], os.path.join(work, "up.log"))
        t0 = time.time()

        def sample():
            while not stop.is_set():
                try:
                    com = e2e.committed(group, topic)
                except Exception:
                    com = None
                rss = p.samples[-1][1] / 1024 if p.samples else None
                samples.append((time.time() - t0, rss, len(paced.served) * PAGE, com))
                stop.wait(5)

        def probe():
            s = e2e.cql_session()
            done = set()
            while not stop.is_set():
                stop.wait(1)
                now = time.time()
                ready = [pg for pg, ts in list(paced.served.items()) if pg not in done and now - ts > 3]
                if not ready:
                    continue
                pg = max(ready)
                done.update(ready)
                ts = paced.served[pg]
                for idx in ((pg - 1) * PAGE, pg * PAGE - 1):
                    try:
                        row = s.execute(f"SELECT WRITETIME(first_name) FROM {ks}.created_users WHERE id = %s",
                                        (uuid.UUID(uid(seed, idx)),), timeout=10).one()
                    except Exception:
                        row = None
                    if row and row[0]:
                        lat.append((ts - t0, row[0] / 1e6 - ts))

        threads = [threading.Thread(target=f, daemon=True) for f in (sample, probe)]
        for t in threads:
            t.start()
        failures = []
        try:
            rc = p.wait(seconds + 600)
            if rc != 0:
                failures.append(f"sluice up exited {rc}")
        except Exception:
            failures.append(f"sluice up did not end within {seconds + 600} s")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            p.ensure_dead()
        elapsed = time.time() - t0
        # invariants: every record, a sample compared column by column, no DLQ, RSS under its bound
        count = retry(lambda: e2e.table_count(ks, ranges=max(1, total // 50000)))
        if count != total:
            failures.append(f"table has {count} rows, {total} records were served")
        rnd = random.Random(seed)
        idx = sorted(rnd.sample(range(total), min(2000, total)))
        s = e2e.cql_session()
        wrong = 0
        for i in idx:
            want = e2e.format_data(apiserver.record(seed, i))
            r = s.execute(f"SELECT * FROM {ks}.created_users WHERE id = %s", (uuid.UUID(want["id"]),)).one()
            got = {c: (str(getattr(r, c)) if c == "id" else getattr(r, c)) for c in e2e.COLUMNS} if r else None
            wrong += got != want
        if wrong:
            failures.append(f"{wrong} of {len(idx)} sampled rows missing or different from format_data")
        dlq = e2e.topic_count(topic + ".dlq")
        if dlq:
            failures.append(f"{dlq} records in the DLQ")
        peak = p.peak_rss_kib / 1024
        if peak > bound:
            failures.append(f"peak RSS {peak:.1f} MiB over the bound {bound} MiB")
        api.close()
        paced.close()
        e2e.delete_topics(topic, topic + ".dlq")
        e2e.drop_keyspace(ks)
    lats = sorted(x for _t, x in lat)

    def pct(q):
        return lats[min(len(lats) - 1, int(q * len(lats)))] if lats else None
    rss_vals = [r for _t, r, _s, _c in samples if r]
    first_min = [r for t, r, _s, _c in samples if r and t <= 120]
    last_min = [r for t, r, _s, _c in samples if r and t >= elapsed - 120]
    summary = {"seconds": round(elapsed), "target_seconds": seconds, "rate": round(rate), "full_rate":
               full and round(full), "records": total, "in_table": count, "dlq": dlq, "asan": asan,
               "peak_rss_mib": round(peak, 1), "bound_mib": bound,
               "rss_first_2min_mib": first_min and round(max(first_min), 1),
               "rss_last_2min_mib": last_min and round(max(last_min), 1),
               "latency_probes": len(lats), "latency_p50_ms": pct(0.5) and round(pct(0.5) * 1000),
               "latency_p99_ms": pct(0.99) and round(pct(0.99) * 1000),
               "latency_max_ms": lats and round(lats[-1] * 1000), "failures": failures,
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(os.path.join(out_dir, "soak.json"), "w") as f:
        json.dump({"summary": summary, "samples": samples, "latency": lat}, f)
    plot(samples, lat, summary)
    write_doc(summary)
    print(json.dumps(summary, indent=1))
    faults.shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def plot(samples, lat, s):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    t = [x[0] / 60 for x in samples]
    ax[0].plot(t, [x[1] for x in samples], label="sluice up RSS")
    ax[0].axhline(s["bound_mib"], color="red", linestyle="--", label=f"bound {s['bound_mib']} MiB")
    ax[0].set_ylabel("RSS (MiB)")
    ax[0].set_ylim(0, s["bound_mib"] * 1.15)
    ax[0].legend(loc="lower right")
    # latency: each probe, and the p99 of each minute
    lt = [x[0] / 60 for x in lat]
    ax[1].scatter(lt, [x[1] * 1000 for x in lat], s=3, alpha=0.4, label="probe")
    by_min = {}
    for tt, v in lat:
        by_min.setdefault(int(tt // 60), []).append(v * 1000)
    mins = sorted(by_min)
    ax[1].plot([m + 0.5 for m in mins], [sorted(by_min[m])[int(0.99 * (len(by_min[m]) - 1))] for m in mins],
               color="black", label="p99 per minute")
    ax[1].set_ylabel("end-to-end latency (ms)")
    ax[1].set_yscale("log")
    ax[1].legend(loc="upper right")
    # rates over each 5 s interval
    rs, rc = [], []
    for a, b in zip(samples, samples[1:]):
        dt = b[0] - a[0]
        rs.append((b[0] / 60, (b[2] - a[2]) / dt))
        if a[3] is not None and b[3] is not None:
            rc.append((b[0] / 60, (b[3] - a[3]) / dt))
    ax[2].plot([x[0] for x in rs], [x[1] for x in rs], label="served by the API")
    ax[2].plot([x[0] for x in rc], [x[1] for x in rc], label="committed by sluice (in the table)")
    ax[2].set_ylabel("records/s")
    ax[2].set_xlabel("minutes")
    ax[2].legend(loc="lower right")
    fig.suptitle(f"sluice up, seed pipeline at {s['rate']} records/s for {s['seconds'] // 60} min "
                 f"({s['records']} records)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(PLOT), exist_ok=True)
    fig.savefig(PLOT, dpi=90)


def write_doc(s):
    ok = "passed" if not s["failures"] else "FAILED: " + "; ".join(s["failures"])
    text = (f"<!-- soak: written by tests/faults/soak.py -->\n"
            f"Last run {s['when']}: {s['seconds']} s (SOAK_SECONDS={s['target_seconds']}) at {s['rate']} records/s"
            + (f", half of the {s['full_rate']} records/s this machine carried at full speed" if s["full_rate"] else "")
            + f"; {s['records']} records, {s['in_table']} rows in the table, {s['dlq']} in the DLQ; {ok}.\n\n"
            f"| | |\n|---|---|\n"
            f"| peak RSS | {s['peak_rss_mib']} MiB (bound {s['bound_mib']} MiB) |\n"
            f"| RSS, first 2 min / last 2 min (max) | {s['rss_first_2min_mib']} / {s['rss_last_2min_mib']} MiB |\n"
            f"| end-to-end latency, p50 / p99 / max | {s['latency_p50_ms']} / {s['latency_p99_ms']} / "
            f"{s['latency_max_ms']} ms ({s['latency_probes']} probes) |\n\n"
            f"![RSS, latency and rates over the soak](img/faults-soak.png)\n"
            f"<!-- /soak -->")
    doc = open(DOC).read() if os.path.exists(DOC) else "<!-- soak -->\n<!-- /soak -->\n"
    doc = re.sub(r"<!-- soak.*?<!-- /soak -->", lambda _m: text, doc, flags=re.S)
    with open(DOC, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
