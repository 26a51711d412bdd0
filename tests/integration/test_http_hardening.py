"""The HTTP servers (console, schema registry, scheduler API) against what a security review did to them on
127.0.0.1: DNS rebinding (a foreign Host), cross-site writes (foreign or null Origin, text/plain or no Content-Type),
open writes on the registry beside a guarded console, read-only credentials, paths decoded twice, over-long targets
and headers, and slow clients: thousands of silent or trickling sockets and slow 15 MiB bodies while normal clients
must still be answered within a second and the server's memory stays bounded.

The slow-client tests run a short form here (about 10 s per server); SLUICE_SLOW_LONG=1 runs each for 60 s."""
import json
import multiprocessing
import os
import re
import resource
import socket
import subprocess
import threading
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE", os.path.join(ROOT, "build", "sluice"))
LONG = os.environ.get("SLUICE_SLOW_LONG") == "1"
# Under AddressSanitizer freed memory sits in its quarantine and RSS says nothing about the server's own bounds: the
# memory assertions are made on release builds only (the latency ones always).
with open(SLUICE, "rb") as _f:
    SANITIZED = b"__asan_init" in _f.read()

CONFIG = """
data_dir: {data}
pipelines:
  users:
    source: {{ type: generate, seed: 1, count: 10, page_size: 10 }}
    topic: users_created
    key: id
    mapping:
      id: {{ path: login.uuid, type: uuid }}
    sink: {{ keyspace: hh, table: users, primary_key: [id] }}
dags:
  hx:
    tasks:
      t: {{ kind: shell, command: "true" }}
registry:
  listen: 127.0.0.1:{rport}
  data_dir: {data}/registry
  allowed_hosts: [sluice.test]
{rextra}
scheduler:
  allowed_hosts: [sluice.test]
{sextra}
console:
  allowed_hosts: [sluice.test]
  registry: {{ url: "http://127.0.0.1:{rport}" }}
  scheduler: {{ url: "http://127.0.0.1:{sport}/api/v1" }}
{cextra}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError("server exited: " + open(proc.log_path).read()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("no server on port %d" % port)


def clean_env(**kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(kw)
    return env


class Stack:
    """The three servers of one config, each in its own process."""

    def __init__(self, tmp, env=None, rextra="", sextra="", cextra="", only=("registry", "scheduler", "console")):
        self.rport, self.sport = free_port(), free_port()
        self.cfg = os.path.join(tmp, "sluice.yaml")
        with open(self.cfg, "w") as f:
            f.write(CONFIG.format(data=os.path.join(tmp, "data"), rport=self.rport, sport=self.sport, rextra=rextra,
                                  sextra=sextra, cextra=cextra))
        self.env = env or clean_env()
        self.procs = {}
        self.tmp = tmp
        if "registry" in only:
            self.start("registry", ["registry", "-c", self.cfg], self.rport)
        if "scheduler" in only:
            self.start("scheduler", ["scheduler", "-c", self.cfg, "--api", "127.0.0.1:%d" % self.sport], self.sport)
        self.cport = None
        if "console" in only:
            self.cport = free_port()
            self.start("console", ["console", "-c", self.cfg, "--listen", "127.0.0.1:%d" % self.cport], self.cport)

    def start(self, name, args, port):
        path = os.path.join(self.tmp, name + ".log")
        log = open(path, "w")
        p = subprocess.Popen([SLUICE, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp)
        p.log_path = path
        self.procs[name] = p
        wait_port(port, p)

    def port(self, name):
        return {"registry": self.rport, "scheduler": self.sport, "console": self.cport}[name]

    def log(self, name):
        return open(self.procs[name].log_path).read()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def stack(tmp_path):
    s = Stack(str(tmp_path))
    yield s
    s.stop()


# What a write looks like on each server, and how to see whether it happened.
WRITES = {
    "registry": ("POST", "/subjects/hh-value/versions", {"schema": '"int"'}),
    "scheduler": ("POST", "/api/v1/dags/hx/dagRuns", {}),
    "console": ("POST", "/api/dags/hx/dagRuns", {}),
}


def written(stack, server):
    """How many things the server's write made so far (subjects or DAG runs)."""
    if server == "registry":
        r = requests.get("http://127.0.0.1:%d/subjects" % stack.rport, timeout=10)
        return len(r.json())
    r = requests.get("http://127.0.0.1:%d/api/v1/dags/hx/dagRuns" % stack.sport, timeout=10)
    return r.json()["total_entries"]


def raw(port, data, timeout=10):
    """Sends raw bytes; returns (status, headers text, body) of the answer, status 0 when the server just closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                head, sep, body = buf.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                if sep and m and len(body) >= int(m.group(1)):
                    break
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.1 (\d+)", buf)
    head, _, body = buf.partition(b"\r\n\r\n")
    return (int(m.group(1)) if m else 0), head.decode("latin-1"), body


def request(port, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    h = {"Host": "127.0.0.1:%d" % port}
    if data is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return requests.request(method, "http://127.0.0.1:%d%s" % (port, path), data=data, headers=h, timeout=15)


SERVERS = ["registry", "scheduler", "console"]


@pytest.mark.parametrize("server", SERVERS)
def test_rebinding_host_refused(stack, server):
    port = stack.port(server)
    method, path, body = WRITES[server]
    evil = "rebind.evil.example:%d" % port
    before = written(stack, server)
    r = request(port, method, path, body, {"Host": evil, "Origin": "http://" + evil})
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == 403 and "Host" in r.json()["message"]
    assert request(port, "GET", "/", headers={"Host": evil}).status_code == 403
    assert written(stack, server) == before
    # The names it answers to: loopback names, IP literals, allowed_hosts.
    for host in ("localhost:%d" % port, "127.0.0.1:%d" % port, "sluice.test:%d" % port, "[::1]:%d" % port):
        r = request(port, "GET", "/api/v1/dags" if server == "scheduler" else "/subjects" if server == "registry"
                    else "/api/overview", headers={"Host": host})
        assert r.status_code == 200, (host, r.status_code, r.text)


@pytest.mark.parametrize("server", SERVERS)
def test_cross_origin_writes_refused(stack, server):
    port = stack.port(server)
    method, path, body = WRITES[server]
    before = written(stack, server)
    for origin in ("http://evil.example", "null", "https://127.0.0.1:%d" % port, "http://127.0.0.1:%d" % (port + 1)):
        r = request(port, method, path, body, {"Origin": origin})
        assert r.status_code == 403, (origin, r.status_code, r.text)
    # Two Origin headers: refused, whatever they say.
    payload = json.dumps(body).encode()
    st, _, _ = raw(port, (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
                          f"Origin: http://evil.example\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)
    assert st == 403
    assert written(stack, server) == before
    # The same write from the server's own origin goes through.
    r = request(port, method, path, body, {"Origin": "http://127.0.0.1:%d" % port})
    assert r.status_code == 200, r.text
    assert written(stack, server) == before + 1


@pytest.mark.parametrize("server", SERVERS)
def test_text_plain_and_missing_content_type_refused(stack, server):
    port = stack.port(server)
    method, path, body = WRITES[server]
    before = written(stack, server)
    payload = json.dumps(body).encode()
    for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        r = requests.request(method, "http://127.0.0.1:%d%s" % (port, path), data=payload, timeout=10,
                             headers={"Content-Type": ct} if ct else {})
        assert r.status_code == 415, (ct, r.status_code, r.text)
        assert r.json()["error_code"] == 415
    # An empty no-cors POST carries no Content-Type at all.
    st, _, _ = raw(port, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode())
    assert st == 415
    assert written(stack, server) == before
    if server == "registry":  # the content types Confluent's clients send
        for ct in ("application/vnd.schemaregistry.v1+json", "application/octet-stream"):
            r = requests.post("http://127.0.0.1:%d/subjects/ct-%d/versions" % (port, len(ct)), data=payload,
                              headers={"Content-Type": ct}, timeout=10)
            assert r.status_code == 200, (ct, r.text)


def test_registry_requires_its_credentials_and_read_only_reads(tmp_path):
    env = clean_env(SLUICE_CONSOLE_TOKEN="c-tok", SLUICE_REGISTRY_TOKEN="rw-tok", HH_REG_RO="ro-tok")
    s = Stack(str(tmp_path), env=env, rextra="  read_token_env: HH_REG_RO", only=("registry",))
    try:
        base = "http://127.0.0.1:%d" % s.rport
        ct = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
        # The review's three open writes: refused without credentials.
        assert requests.post(base + "/subjects/x/versions", data='{"schema":"\\"int\\""}', headers=ct,
                             timeout=10).status_code == 401
        assert requests.delete(base + "/subjects/x?permanent=true", timeout=10).status_code == 401
        assert requests.put(base + "/mode", data='{"mode":"READONLY"}', headers=ct, timeout=10).status_code == 401
        ro = {"Authorization": "Bearer ro-tok"}
        rw = {"Authorization": "Bearer rw-tok"}
        assert requests.get(base + "/subjects", headers=ro, timeout=10).json() == []
        r = requests.post(base + "/subjects/x/versions", data='{"schema":"\\"int\\""}', headers={**ct, **ro},
                          timeout=10)
        assert r.status_code == 403 and r.json()["error_code"] == 403
        assert requests.delete(base + "/subjects/x", headers=ro, timeout=10).status_code == 403
        r = requests.post(base + "/subjects/x/versions", data='{"schema":"\\"int\\""}', headers={**ct, **rw},
                          timeout=10)
        assert r.status_code == 200, r.text
        assert requests.get(base + "/subjects", headers=ro, timeout=10).json() == ["x"]
        # Probes need nothing, and learn nothing.
        r = requests.get(base + "/health", timeout=10)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    finally:
        s.stop()


@pytest.mark.parametrize("server", ["scheduler", "console"])
def test_read_only_credentials_read_but_do_not_write(tmp_path, server):
    env = clean_env(SLUICE_SCHEDULER_TOKEN="s-rw", HH_S_RO="s-ro", SLUICE_CONSOLE_TOKEN="c-rw", HH_C_RO="c-ro",
                    SLUICE_REGISTRY_TOKEN="r-rw")
    s = Stack(str(tmp_path), env=env, sextra="  read_token_env: HH_S_RO", cextra="  read_token_env: HH_C_RO",
              only=("scheduler", "console") if server == "console" else ("scheduler",))
    try:
        port = s.port(server)
        ro = "Bearer " + ("c-ro" if server == "console" else "s-ro")
        rw = "Bearer " + ("c-rw" if server == "console" else "s-rw")
        method, path, body = WRITES[server]
        listing = "/api/dags" if server == "console" else "/api/v1/dags"
        assert request(port, "GET", listing).status_code == 401
        assert request(port, "GET", listing, headers={"Authorization": ro}).status_code == 200
        r = request(port, method, path, body, {"Authorization": ro})
        assert r.status_code == 403, r.text
        runs = requests.get("http://127.0.0.1:%d/api/v1/dags/hx/dagRuns" % s.sport, timeout=10,
                            headers={"Authorization": "Bearer s-rw"}).json()
        assert runs["total_entries"] == 0
        if server == "scheduler":
            r = request(port, method, path, body, {"Authorization": rw})
            assert r.status_code == 200, r.text
        # Probes stay open with auth on.
        health = "/health" if server == "console" else "/api/v1/health"
        assert request(port, "GET", health).status_code == 200
    finally:
        s.stop()


def test_servers_without_credentials_warn_when_another_has_them(tmp_path):
    env = clean_env(SLUICE_CONSOLE_TOKEN="c-tok")
    s = Stack(str(tmp_path), env=env, only=("registry", "scheduler"))
    try:
        for name in ("registry", "scheduler"):
            assert "WITHOUT CREDENTIALS" in s.log(name), s.log(name)
        p = subprocess.run([SLUICE, "check", "-c", s.cfg], capture_output=True, text=True, env=env, timeout=30)
        assert p.returncode == 0 and "WITHOUT CREDENTIALS: registry, scheduler answer" in p.stderr, p.stderr
    finally:
        s.stop()
    assert "c-tok" not in s.log("registry")


@pytest.mark.parametrize("server", ["scheduler", "console"])
def test_path_decoded_once(stack, server):
    port = stack.port(server)
    prefix = "/api/dags/" if server == "console" else "/api/v1/dags/"
    assert request(port, "GET", prefix + "hx").status_code == 200
    assert request(port, "GET", prefix + "h%78").status_code == 200      # %78 is 'x': decoded once
    r = request(port, "GET", prefix + "h%2578")                          # the text "h%78": no such DAG
    assert r.status_code == 404, r.text
    r = request(port, "GET", prefix + "%252e%252e/dagRuns")
    assert r.status_code == 404 and "'..'" not in r.text, r.text
    assert request(port, "GET", prefix + "%2e%2e/dagRuns").status_code == 400  # ".." itself: refused


@pytest.mark.parametrize("server", SERVERS)
def test_long_target_414_long_header_431(stack, server):
    port = stack.port(server)
    st, _, body = raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert st == 414 and json.loads(body)["error_code"] == 414
    st, _, _ = raw(port, b"GET /?" + b"q=1&" * 2100 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert st == 414
    if server == "console":  # a 5,000-byte query is within console.max_uri: not a 400 for being long
        st, _, _ = raw(port, b"GET /api/overview?" + b"q=1&" * 1250 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert st == 200
    st, _, body = raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 20000 + b"\r\n\r\n")
    assert st == 431 and json.loads(body)["error_code"] == 431
    st, head, _ = raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for h in ("X-Content-Type-Options: nosniff", "X-Frame-Options: DENY", "Referrer-Policy: no-referrer"):
        assert h in head, (server, head)


# ---- slow clients ----


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def flood(port, n, every, budget, stop, opened):
    """Keeps n sockets open against port: half silent, half trickling a header byte every `every` seconds; a socket
    the server closes is opened again (at most 100 every 0.2 s, `budget` opens in all). Runs in its own process, so
    the normal clients' latencies do not include this loop's turns at the GIL."""
    line = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000

    def open_one(trickle):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        opened.value += 1
        return {"sock": s, "trickle": trickle, "sent": 0, "next": time.monotonic() + every}

    conns = [open_one(i % 2 == 1) for i in range(n)]
    while not stop.is_set():
        now = time.monotonic()
        reopened = 0
        for i, c in enumerate(conns):
            dead = False
            if c["trickle"] and now >= c["next"]:
                try:
                    c["sock"].send(line[c["sent"] % len(line):][:1])
                    c["sent"] += 1
                except OSError:
                    dead = True
                c["next"] = now + every
            if not dead:
                try:
                    if c["sock"].recv(1, socket.MSG_PEEK) == b"":
                        dead = True
                except BlockingIOError:
                    pass
                except OSError:
                    dead = True
            if dead and reopened < 100 and opened.value < budget:
                c["sock"].close()
                conns[i] = open_one(c["trickle"])
                reopened += 1
        stop.wait(0.2)
    for c in conns:
        c["sock"].close()


class Flood:
    def __init__(self, port, n, every=2.0, budget=20000):
        self.stop = multiprocessing.Event()
        self.opened = multiprocessing.Value("i", 0)
        self.proc = multiprocessing.Process(target=flood, args=(port, n, every, budget, self.stop, self.opened),
                                            daemon=True)

    def start(self):
        self.proc.start()

    def finish(self):
        self.stop.set()
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
        return self.opened.value


def normal_clients(port, path, headers, seconds, n=20):
    """n threads making requests on fresh connections for `seconds`; returns every request's latency (None: failed)."""
    lat = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def one():
        while time.monotonic() < stop:
            t0 = time.monotonic()
            try:
                r = requests.get("http://127.0.0.1:%d%s" % (port, path), headers=headers, timeout=5)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                lat.append(time.monotonic() - t0 if ok else None)
            time.sleep(0.05)

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


PROBE = {"registry": "/subjects", "scheduler": "/api/v1/dags", "console": "/api/overview"}


@pytest.mark.parametrize("server", SERVERS)
def test_slow_clients_do_not_lock_out_normal_ones(tmp_path, server):
    if raise_nofile() < 4500:
        pytest.skip("RLIMIT_NOFILE hard limit below 4500")
    s = Stack(str(tmp_path), only=("registry", "scheduler", "console") if server == "console" else (server,))
    try:
        port = s.port(server)
        pid = s.procs[server].pid
        base_rss = rss_mb(pid)
        fl = Flood(port, 2000, budget=200000 if LONG else 20000)
        fl.start()
        time.sleep(3)  # the flood is in place (2,000 sockets, the limit is 1,024)
        lat = normal_clients(port, PROBE[server], {}, 60 if LONG else 8)
        peak = rss_mb(pid)
        opened = fl.finish()
        failed = sum(1 for x in lat if x is None)
        worst = max((x for x in lat if x is not None), default=float("inf"))
        print(f"{server}: {len(lat)} normal requests, {failed} failed, worst {worst:.3f} s; flood opened "
              f"{opened} sockets; RSS {base_rss:.0f} -> {peak:.0f} MB")
        assert len(lat) > 100
        assert failed == 0
        assert worst < 1.0
        # 1,024 connections with at most a 4 KiB head each and their bookkeeping: well under 60 MB more.
        if not SANITIZED:
            assert peak - base_rss < 60, (base_rss, peak)
    finally:
        s.stop()


def test_slow_big_bodies_stay_within_the_buffer_cap(tmp_path):
    """30 connections each announcing a 15 MiB body and sending all but its last byte: the registry buffers at most
    max_buffered (64 MiB by default) of them, answers the others 503 at once, and gives the memory back."""
    raise_nofile()
    s = Stack(str(tmp_path), only=("registry",))
    try:
        port, pid = s.rport, s.procs["registry"].pid
        base = rss_mb(pid)
        size = 15 << 20
        head = (f"POST /subjects/big/versions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
        chunk = b"x" * (1 << 20)
        socks, refused = [], 0
        for _ in range(30):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(head)
            socks.append(c)
        for c in socks:
            try:
                left = size - 1
                while left:
                    n = c.send(chunk[:min(left, len(chunk))])
                    left -= n
            except OSError:
                refused += 1  # answered 503 and closed while we sent
        time.sleep(1)
        # Normal requests still answered.
        assert requests.get("http://127.0.0.1:%d/subjects" % port, timeout=5).status_code == 200
        peak = rss_mb(pid)
        print(f"registry: {refused} of 30 bodies refused; RSS {base:.0f} -> {peak:.0f} MB")
        assert refused >= 25
        if not SANITIZED:
            assert peak - base < 64 + 24, (base, peak)  # the cap plus a stated 24 MB margin
        for c in socks:
            c.close()
        time.sleep(1.5)
        after = rss_mb(pid)
        print(f"registry: RSS after the connections closed {after:.0f} MB")
        if not SANITIZED:
            assert after - base < 16, (base, after)
    finally:
        s.stop()


def test_console_keeps_encoded_slash_when_routing_to_the_registry(stack):
    """A subject with '/' (or '?', '#', '%') through the console's /api/schemas: the console must not decode those
    before routing, or "a%2Fb" becomes the route /subjects/a/b/versions."""
    c, r = stack.cport, stack.rport
    for subject, enc in (("a/b", "a%2Fb"), ("q?x", "q%3Fx"), ("h#1", "h%231"), ("p%41", "p%2541")):
        resp = request(c, "POST", "/api/schemas/subjects/%s/versions" % enc, {"schema": '"int"'})
        assert resp.status_code == 200, (subject, resp.status_code, resp.text)
        assert subject in requests.get("http://127.0.0.1:%d/subjects" % r, timeout=10).json()
        resp = request(c, "GET", "/api/schemas/subjects/%s/versions" % enc)
        assert resp.status_code == 200 and resp.json() == [1], (subject, resp.text)
