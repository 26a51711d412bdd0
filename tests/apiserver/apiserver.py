#!/usr/bin/env python3
"""A deterministic randomuser.me-shaped API for tests (Python 3 stdlib only).

Records are a pure function of (seed, index): the same URL gives the same bytes on every run, and login.uuid is
unique per (seed, index). A dataset of --total records (or ?total=) is served through every pagination sluice
knows, from one endpoint, /api:

  ?page=P&results=N        page P (1-based) of N records          (randomuser's own parameters)
  ?offset=O&limit=N        records O..O+N
  ?cursor=C&limit=N        C is an opaque token from the previous body's "next_cursor" ("" = start)
Every body also carries "next" (the next page's URL) and the response a Link header with rel="next", both absent
after the last record; pages past the end are empty ({"results": []}).

Faults, by query parameter (counted per exact URL, so a retry of the same URL sees the next count) or, for every
request, by CLI flag of the same name:
  fail500=K          the first K requests of this URL get 500
  fail429=K          the first K get 429 with Retry-After: retry_after (seconds, default 1); retry_date=1 sends
                     it as an HTTP-date instead
  slow=K&delay=S     the first K sleep S seconds (default 3) before answering
  truncate=K         the first K send a Content-Length larger than the body, then close
  malformed=1        the body is not JSON
  oversize=BYTES     the body is padded to at least BYTES
  status=CODE        always answer CODE (e.g. 404)
  html=1             200 with an HTML body (a login page or a proxy's error page, as some APIs send)
  results_as=object  "results" is an object instead of an array (results_as=null: null)
  junk=1             "results" starts with items that are not records: 1, "x", null, [], {}
  nolength=1         no Content-Length: the body runs until the connection closes (with oversize: a huge body
                     whose size is known only while reading it)
  stall=S            send the headers, then stall S seconds before the body
Auth (CLI): --bearer TOKEN, --basic USER:PASS, --api-key NAME:VALUE (header or query) guard /secure/api; any one
that matches lets a request in.

Control: /_stats (JSON counts by path/status, and the last Authorization seen, masked), /_records?from=&to=&seed=
(the records themselves, for exact comparisons), /_reset (forget fault counters and stats).

  python3 tests/apiserver/apiserver.py --port 0   # prints "PORT <n>" on stdout once listening
"""
import argparse
import base64
import hashlib
import json
import random
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

FIRST = ["James", "Mary", "Oliver", "Amelia", "Lukas", "Hannah", "Léa", "Zoë", "Ömer", "Çağla", "Noah", "Mia"]
LAST = ["Smith", "Jones", "Müller", "García", "Côté", "de Vries", "Yılmaz", "Silva", "Taylor", "Dubois"]
CITIES = [("Austin", "Texas", "United States", "US"), ("Leeds", "West Yorkshire", "United Kingdom", "GB"),
          ("Köln", "Nordrhein-Westfalen", "Germany", "DE"), ("Lyon", "Rhône", "France", "FR"),
          ("Perth", "Western Australia", "Australia", "AU"), ("Curitiba", "Paraná", "Brazil", "BR")]
STREETS = ["Main St", "Station Road", "Hauptstraße", "Rue Pasteur", "Rua Um", "Paddock Way"]


def record(seed, index):
    r = random.Random(f"{seed}:{index}")
    gender = r.choice(["male", "female"])
    first, last = r.choice(FIRST), r.choice(LAST)
    city, state, country, nat = r.choice(CITIES)
    h = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    uid = str(uuid.UUID(bytes=h[:16], version=4))
    user = f"{r.choice(['happy', 'lazy', 'blue', 'tiny'])}{r.choice(['cat', 'dog', 'bird'])}{r.randint(100, 999)}"
    postcode = r.randint(10000, 99999) if nat in ("US", "DE", "FR", "BR") else f"{r.randint(10, 99)}AB"
    year = r.randint(1950, 2000)
    return {
        "gender": gender,
        "name": {"title": "Mr" if gender == "male" else "Ms", "first": first, "last": last},
        "location": {"street": {"number": r.randint(1, 9999), "name": r.choice(STREETS)}, "city": city,
                     "state": state, "country": country, "postcode": postcode,
                     "coordinates": {"latitude": f"{r.uniform(-90, 90):.4f}", "longitude": f"{r.uniform(-180, 180):.4f}"},
                     "timezone": {"offset": "+1:00", "description": "Brussels, Copenhagen, Madrid, Paris"}},
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "login": {"uuid": uid, "username": user, "password": "secret", "salt": h[16:20].hex(),
                  "md5": h.hex()[:32], "sha1": h.hex()[:40], "sha256": h.hex()},
        "dob": {"date": f"{year}-0{r.randint(1, 9)}-1{r.randint(0, 9)}T0{r.randint(0, 9)}:12:34.567Z", "age": 2024 - year},
        "registered": {"date": f"20{r.randint(10, 21)}-0{r.randint(1, 9)}-2{r.randint(0, 8)}T10:00:00.000Z",
                       "age": r.randint(1, 14)},
        "phone": f"({r.randint(100, 999)}) {r.randint(100, 999)}-{r.randint(1000, 9999)}",
        "cell": f"({r.randint(100, 999)}) {r.randint(100, 999)}-{r.randint(1000, 9999)}",
        "id": {"name": "SSN", "value": f"{r.randint(100, 999)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"},
        "picture": {"large": f"https://randomuser.me/api/portraits/men/{index % 100}.jpg",
                    "medium": f"https://randomuser.me/api/portraits/med/men/{index % 100}.jpg",
                    "thumbnail": f"https://randomuser.me/api/portraits/thumb/men/{index % 100}.jpg"},
        "nat": nat,
    }


def enc_cursor(i):
    return base64.urlsafe_b64encode(f"at:{i}".encode()).decode().rstrip("=")


def dec_cursor(c):
    if not c:
        return 0
    c += "=" * (-len(c) % 4)
    s = base64.urlsafe_b64decode(c.encode()).decode()
    if not s.startswith("at:"):
        raise ValueError("bad cursor")
    return int(s[3:])


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.counts = {}      # url -> requests seen
            self.stats = {"requests": 0, "by_status": {}, "by_path": {}, "records_served": 0, "authorization": None}

    def hit(self, url):
        with self.lock:
            n = self.counts.get(url, 0)
            self.counts[url] = n + 1
            return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sluice-apiserver/1"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("apiserver: " + (fmt % a) + "\n")

    def send(self, code, body, ctype="application/json", headers=(), content_length=None, close=False):
        st = self.server.state
        with st.lock:
            st.stats["requests"] += 1
            st.stats["by_status"][str(code)] = st.stats["by_status"].get(str(code), 0) + 1
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        for k, v in headers:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if close:
            self.close_connection = True

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self):
        st = self.server.state
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        with st.lock:
            st.stats["by_path"][u.path] = st.stats["by_path"].get(u.path, 0) + 1
        if u.path == "/_stats":
            with st.lock:
                body = json.dumps(st.stats).encode()
            return self.send(200, body)
        if u.path == "/_reset":
            st.reset()
            return self.send(200, b"{}")
        if u.path == "/_records":
            seed = q.get("seed", st.args.seed)
            lo, hi = int(q.get("from", 0)), int(q.get("to", 0))
            return self.send(200, json.dumps([record(seed, i) for i in range(lo, hi)]).encode())
        if u.path not in ("/api", "/api/", "/secure/api", "/secure/api/"):
            return self.send(404, b'{"error":"not found"}')
        if u.path.startswith("/secure") and not self.authorized(q):
            return self.send(401, b'{"error":"unauthorized"}', headers=[("WWW-Authenticate", 'Basic realm="t"')])
        self.serve_api(u, q)

    def authorized(self, q):
        a = self.server.state.args
        auth = self.headers.get("Authorization", "")
        with self.server.state.lock:
            self.server.state.stats["authorization"] = (auth.split(" ")[0] + " ***") if auth else None
        # Any configured scheme that matches lets the request in, so one server tests them all.
        if a.bearer and auth == f"Bearer {a.bearer}":
            return True
        if a.basic and auth == "Basic " + base64.b64encode(a.basic.encode()).decode():
            return True
        if a.api_key:
            name, value = a.api_key.split(":", 1)
            if self.headers.get(name) == value or q.get(name) == value:
                return True
        return not (a.bearer or a.basic or a.api_key)

    def opt(self, q, name, default=0):
        v = q.get(name)
        if v is None:
            v = getattr(self.server.state.args, name, None)
        return default if v is None else v

    def serve_api(self, u, q):
        st = self.server.state
        n = st.hit(self.path)
        status = int(self.opt(q, "status", 0))
        if status:
            return self.send(status, json.dumps({"error": f"status {status}"}).encode())
        if n < int(self.opt(q, "fail500", 0)):
            return self.send(500, b'{"error":"internal"}')
        if n < int(self.opt(q, "fail429", 0)):
            ra = int(self.opt(q, "retry_after", 1))
            hdr = formatdate(time.time() + ra, usegmt=True) if int(self.opt(q, "retry_date", 0)) else str(ra)
            return self.send(429, b'{"error":"slow down"}', headers=[("Retry-After", hdr)])
        if n < int(self.opt(q, "slow", 0)):
            time.sleep(float(self.opt(q, "delay", 3)))
        seed = q.get("seed", st.args.seed)
        total = int(q.get("total", st.args.total))
        if "offset" in q:
            start, size = int(q["offset"]), int(q.get("limit", 10))
        elif "cursor" in q:
            try:
                start = dec_cursor(q["cursor"])
            except Exception:
                return self.send(400, b'{"error":"bad cursor"}')
            size = int(q.get("limit", 10))
        else:
            size = int(q.get("results", q.get("limit", 10)))
            start = (int(q.get("page", 1)) - 1) * size
        size = max(0, min(size, 5000))
        end = min(total, start + size)
        recs = [record(seed, i) for i in range(start, end)] if start < total else []
        page = start // size + 1 if size else 1
        doc = {"results": recs, "info": {"seed": seed, "results": len(recs), "page": page, "version": "1.4"}}
        headers = []
        if end < total and recs:
            nq = dict(q)
            if "offset" in q:
                nq["offset"] = str(end)
            elif "cursor" in q:
                nq["cursor"] = enc_cursor(end)
            else:
                nq["page"] = str(page + 1)
            nxt = f"{u.path}?{urlencode(nq)}"
            doc["next"] = f"http://{self.headers.get('Host')}{nxt}"
            doc["next_cursor"] = enc_cursor(end)
            headers.append(("Link", f'<{nxt}>; rel="next", <{u.path}?page=1>; rel="first"'))
        else:
            doc["next"] = None
            doc["next_cursor"] = None
        with st.lock:
            st.stats["records_served"] += len(recs)
        if int(self.opt(q, "html", 0)):
            return self.send(200, b"<!DOCTYPE html><html><body><h1>Please sign in</h1></body></html>",
                             ctype="text/html", headers=headers)
        shape = self.opt(q, "results_as", "")
        if shape == "object":
            doc["results"] = recs[0] if recs else {"error": "none"}
        elif shape == "null":
            doc["results"] = None
        if int(self.opt(q, "junk", 0)) and recs:
            doc["results"] = [1, "x", None, [], {}] + doc["results"]
        if int(self.opt(q, "malformed", 0)):
            return self.send(200, b'{"results": [{"gender": "male", "name": {"first": "Trunc', headers=headers)
        body = json.dumps(doc, ensure_ascii=False).encode()
        over = int(self.opt(q, "oversize", 0))
        if over and len(body) < over:
            doc["padding"] = "x" * (over - len(body))
            body = json.dumps(doc, ensure_ascii=False).encode()
        stall = float(self.opt(q, "stall", 0))
        if stall:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            with st.lock:
                st.stats["requests"] += 1
            time.sleep(stall)
            self.wfile.write(body)
            return
        if int(self.opt(q, "nolength", 0)):
            with st.lock:
                st.stats["requests"] += 1
                st.stats["by_status"]["200"] = st.stats["by_status"].get("200", 0) + 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i:i + 65536])
            return
        if n < int(self.opt(q, "truncate", 0)):
            return self.send(200, body[: len(body) // 2], headers=headers, content_length=len(body), close=True)
        self.send(200, body, headers=headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that time out or give up mid-response are part of the tests, not errors.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", default="sluice")
    ap.add_argument("--total", type=int, default=1000)
    ap.add_argument("--bearer")
    ap.add_argument("--basic")
    ap.add_argument("--api-key", dest="api_key")
    for f in ("fail500", "fail429", "retry_after", "retry_date", "slow", "delay", "truncate", "malformed",
              "oversize", "status", "html", "junk", "nolength", "stall"):
        ap.add_argument("--" + f.replace("_", "-"), dest=f, type=float if f in ("delay", "stall") else int)
    ap.add_argument("--results-as", dest="results_as")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
