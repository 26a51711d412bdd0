#!/usr/bin/env python3
"""A page-wise API of click events that carry their own timestamps, for examples/windows (Python 3 stdlib only).

  GET /events?page=P&results=N   page P (1-based) of N events: {"results": [...]}; empty past the end
Events: {"event_id", "user": {"id", "country"}, "page", "ms_on_page", "occurred_at" (ISO-8601)}. Time starts at
--start and advances ~0.2 s per event; one event in ten is delivered 1-9 s late (out of order), one in fifty 30-60 s
late (after the example's lateness: it goes to the dead-letter topic). Deterministic for a given --seed.

  python3 examples/windows/events_api.py --port 8765 --count 20000
"""
import argparse
import json
import random
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNTRIES = ["France", "Germany", "Spain", "Brazil", "Canada", "Japan"]
PAGES = ["/", "/pricing", "/docs", "/signup", "/blog"]


def events(seed, count, start_ms):
    rnd = random.Random(seed)
    t = start_ms
    out = []
    for i in range(count):
        t += rnd.randrange(50, 350)
        lag = 0
        r = rnd.random()
        if r < 0.02:
            lag = rnd.randrange(30000, 60000)
        elif r < 0.12:
            lag = rnd.randrange(1000, 9000)
        at = t - lag
        out.append({
            "event_id": f"ev-{seed}-{i}",
            "user": {"id": f"u{rnd.randrange(500)}", "country": rnd.choice(COUNTRIES)},
            "page": rnd.choice(PAGES),
            "ms_on_page": rnd.randrange(100, 60000),
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 1000)) + ".%03dZ" % (at % 1000),
        })
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2024-05-01T12:00:00Z")
    a = ap.parse_args()
    start = int(time.mktime(time.strptime(a.start, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone) * 1000
    data = events(a.seed, a.count, start)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            u = urlsplit(self.path)
            if u.path != "/events":
                self.send_error(404)
                return
            q = parse_qs(u.query)
            page = int(q.get("page", ["1"])[0])
            n = int(q.get("results", ["100"])[0])
            body = json.dumps({"results": data[(page - 1) * n:page * n]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
