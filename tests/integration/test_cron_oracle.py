"""sluice's cron and interval next-fire times against croniter (PyPI) as the oracle: thousands of random expressions
and instants in zones with DST gaps and overlaps (30-minute shifts included). The C side runs as one
`sluice cron-next --stdin` process fed every case, so the test takes seconds."""
import os
import random
import subprocess
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo",
         "Pacific/Chatham", "Europe/London", "Australia/Sydney", "America/St_Johns", "Asia/Tehran", "Africa/Casablanca"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
PRESETS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


def field(rng, lo, hi, names=None, name_base=0):
    # Canonical forms only: croniter mis-expands some degenerate ones that cron accepts (a range a-a, a step longer
    # than its range, a name mixed with a number in one range: "8,11-11" months and "fri-5" become '*'), and those
    # are croniter's bugs, not semantics to copy. tests/unit/test_cron.c covers the degenerate forms.
    use_names = names is not None and rng.random() < 0.3

    def val(v):
        return names[v - name_base] if use_names and 0 <= v - name_base < len(names) else str(v)

    kind = rng.random()
    if kind < 0.25:
        return "*"
    if kind < 0.4:
        return "*/%d" % rng.randint(2, max(2, (hi - lo) // 2))
    parts, used = [], set()
    for _ in range(rng.randint(1, 3)):
        a = rng.randint(lo, hi - 1)
        if rng.random() < 0.5:
            if a not in used:
                parts.append(val(a))
                used.add(a)
            continue
        b = rng.randint(a + 1, hi)
        part = "%s-%s" % (val(a), val(b))
        if rng.random() < 0.3 and b - a >= 2:
            part += "/%d" % rng.randint(2, b - a)
        parts.append(part)
    return ",".join(parts) or str(lo)


def random_expr(rng):
    if rng.random() < 0.05:
        return rng.choice(PRESETS)
    # Bias toward the hours where DST changes happen, so gaps and overlaps are hit often.
    hour = field(rng, 0, 23) if rng.random() < 0.6 else rng.choice(["1", "2", "3", "0", "2,3", "1-3", "*/2"])
    return " ".join([field(rng, 0, 59), hour, field(rng, 1, 31), field(rng, 1, 12, MONTHS, 1),
                     field(rng, 0, 6, DAYS, 0)])


def random_instant(rng):
    if rng.random() < 0.5:
        # Near a DST change in either hemisphere: the last days of March/October, early April/October/November.
        y = rng.randint(1995, 2036)
        m = rng.choice([3, 4, 9, 10, 11])
        base = datetime(y, m, 1, tzinfo=timezone.utc).timestamp()
        return int(base + rng.randint(0, 31 * 86400))
    return rng.randint(0, 2_100_000_000)


def oracle(expr, zone, after, n):
    tz = ZoneInfo(zone)
    start = datetime.fromtimestamp(after, tz)
    it = croniter(expr, start)
    out = []
    for _ in range(n):
        try:
            out.append(int(it.get_next(datetime).timestamp()))
        except Exception:  # croniter's "failed to find next date" for schedules that (almost) never fire
            return None
    return out


def run_sluice(cases):
    text = "".join("%s\t%s\t%d\t%d\n" % c for c in cases)
    p = subprocess.run([SLUICE, "cron-next", "--stdin"], input=text, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(cases)
    return lines


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cron_against_croniter(seed):
    rng = random.Random(seed)
    cases, expected = [], []
    while len(cases) < 2000:
        expr, zone, after = random_expr(rng), rng.choice(ZONES), random_instant(rng)
        want = oracle(expr, zone, after, 4)
        if want is None:
            continue
        cases.append((expr, zone, after, 4))
        expected.append(want)
    got = run_sluice(cases)
    bad = []
    for c, w, g in zip(cases, expected, got):
        if g != " ".join(map(str, w)):
            bad.append("%r tz=%s after=%d: croniter %s, sluice %s" % (c[0], c[1], c[2], w, g))
    assert not bad, "%d/%d differ, first:\n%s" % (len(bad), len(cases), "\n".join(bad[:15]))


def test_dst_cases_paris():
    # The documented semantics, spelled out: a wall time in the spring gap fires once at the gap's end; a wall time
    # in the autumn overlap fires on both passes.
    cases = [("30 2 * * *", "Europe/Paris", 1711796400, 3), ("0 * * * *", "Europe/Paris", 1729981800, 5)]
    got = run_sluice(cases)
    for c, g in zip(cases, got):
        assert g == " ".join(map(str, oracle(*c)))
    assert got[0].split()[0] == "1711846800"  # 2024-03-31T03:00:00+02:00


def test_intervals():
    # Intervals fire at anchor + k*interval; the oracle is arithmetic (croniter has no intervals).
    rng = random.Random(7)
    for _ in range(200):
        iv = rng.choice([30, 60, 900, 3600, 86400, 7 * 86400])
        anchor = rng.randint(0, 2_000_000_000)
        after = anchor + rng.randint(-10 * iv, 1000 * iv)
        p = subprocess.run([SLUICE, "cron-next", "every %ds" % iv, "--anchor", str(anchor), "--after", str(after),
                            "-n", "3"], capture_output=True, text=True, check=True)
        got = list(map(int, p.stdout.split()))
        first = anchor if after < anchor else anchor + ((after - anchor) // iv + 1) * iv
        assert got == [first, first + iv, first + 2 * iv]


def test_errors_name_the_field():
    p = subprocess.run([SLUICE, "cron-next", "61 * * * *"], capture_output=True, text=True)
    assert p.returncode == 1 and "minute field '61'" in p.stderr
    p = subprocess.run([SLUICE, "cron-next", "0 0 * * *", "--tz", "Mars/Olympus"], capture_output=True, text=True)
    assert p.returncode == 1 and "Mars/Olympus" in p.stderr
