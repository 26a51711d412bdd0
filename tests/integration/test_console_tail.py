"""The message browser's live tail over server-sent events (issue 22): GET /api/kafka/tail streams each new message
of a topic as an event carrying the same JSON as the browser's rows, in offset order, with heartbeat comments while
nothing comes; it needs the viewer role like every API route; at most console.max_tails are open at once (503
beyond); each ends after console.tail_max_time with an "end" event, and as soon as its client goes away, giving its
thread and its socket back (counted in /proc). On the embedded default and on the real Kafka."""
import json
import os
import re
import socket
import time

import pytest

from test_console import wait_for
from test_console_oncall import OP, VIEWER, Console, configs, env, jget, jpost, kafka_up


class Tail:
    """A raw-socket SSE client: reads the head, then events as they come."""

    def __init__(self, con, query, headers=VIEWER):
        host, port = con.addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.s.sendall(f"GET /api/kafka/tail?{query} HTTP/1.1\r\nHost: {con.addr}\r\nAccept: text/event-stream\r\n"
                       f"{hdrs}\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, self.buf
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in lines[1:])}
        self.closed = False

    def body(self):
        """The whole body of a non-streamed answer."""
        n = int(self.headers["content-length"])
        while len(self.buf) < n:
            self.buf += self.s.recv(4096)
        return json.loads(self.buf[:n])

    def next(self, timeout=10):
        """The next block: ("comment", text) or (event, data dict); ("closed", None) when the server closed."""
        end = time.time() + timeout
        while b"\n\n" not in self.buf:
            left = end - time.time()
            assert left > 0, f"no event within {timeout}s: {self.buf!r}"
            self.s.settimeout(left)
            chunk = self.s.recv(65536)
            if not chunk:
                self.closed = True
                return ("closed", None)
            self.buf += chunk
        block, self.buf = self.buf.split(b"\n\n", 1)
        text = block.decode()
        if text.startswith(":"):
            return ("comment", text[1:].strip())
        ev, data = "message", None
        for ln in text.split("\n"):
            k, _, v = ln.partition(": ")
            if k == "event":
                ev = v
            elif k == "data":
                data = json.loads(v)
        return (ev, data)

    def events(self, n, timeout=20):
        got, end = [], time.time() + timeout
        while len(got) < n:
            ev, d = self.next(max(0.1, end - time.time()))
            assert ev != "closed", got
            if ev == "message":
                got.append(d)
        return got

    def close(self):
        self.s.close()


def counts(pid):
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def live_tails(con):
    st, _, body = con.get("/metrics", OP)
    return int(re.search(rb"^sluice_console_live_tails (\d+)$", body, re.M).group(1))


@pytest.mark.parametrize("backend", ["embedded", "kafka"])
def test_live_tail_streams_in_order_bounded_and_ends(tmp_path, backend):
    if backend == "kafka" and not kafka_up():
        pytest.skip("Kafka is not running on 127.0.0.1:9092")
    strict, _ = configs(tmp_path)
    text = open(strict).read() + "  max_tails: 2\n  tail_max_time: 15s\n  tail_heartbeat: 300ms\n"
    if backend == "kafka":
        text = text.replace("\npipelines:", "\nkafka: { brokers: 127.0.0.1:9092 }\npipelines:", 1)
    open(strict, "w").write(text)
    topic = "h22e_tail_" + os.urandom(4).hex()
    con = Console(strict, env=env())
    try:
        assert jpost(con, "/api/kafka/topics", {"topic": topic, "partitions": 2})[0] == 201
        assert jpost(con, "/api/kafka/produce", {"topic": topic, "partition": 0, "value": "before"})[0] == 200
        # (the embedded log is opened by the collector's next round once it exists)
        wait_for(lambda: jget(con, f"/api/kafka/messages?topic={topic}")[0] == 200, "the topic in the browser", 10)
        # Refusals before anything streams: credentials, unknown topic or partition, a bad query.
        assert Tail(con, f"topic={topic}", headers={}).status == 401
        t = Tail(con, "topic=no_such_" + topic)
        assert t.status == 404 and "no_such_" in t.body()["error"]
        t = Tail(con, f"topic={topic}&partition=2")
        assert t.status == 404 and "no partition 2" in t.body()["error"]
        assert Tail(con, "partition=0").status == 400
        # A first tail warms up what stays open once used (the log's own handles for reading); then the baseline.
        w = Tail(con, f"topic={topic}&partition=0")
        assert w.next()[0] == "open"
        assert jpost(con, "/api/kafka/produce", {"topic": topic, "partition": 0, "value": "warm"})[0] == 200
        assert [m["value"] for m in w.events(1)] == ["warm"]
        w.close()
        wait_for(lambda: live_tails(con) == 0, "the first tail to end", timeout=10)
        time.sleep(1)
        threads0, fds0 = counts(con.p.pid)

        a = Tail(con, f"topic={topic}")  # a viewer may tail
        assert a.status == 200 and a.headers["content-type"] == "text/event-stream", a.headers
        assert "content-length" not in a.headers and a.headers["connection"] == "close"
        ev, d = a.next()
        assert ev == "open" and d["ok"] is True and d["topic"] == topic and d["max_ms"] == 15000, (ev, d)
        # From the end: "before" is not sent. New messages come in offset order, as the browser's rows.
        sent = [jpost(con, "/api/kafka/produce", {"topic": topic, "partition": 0, "key": f"k{i}", "value": f"v{i}",
                                                  "headers": {"n": str(i)}})[1] for i in range(6)]
        got = a.events(6)
        assert [(m["partition"], m["offset"], m["value"]) for m in got] == \
            [(0, r["offset"], f"v{i}") for i, r in enumerate(sent)], got
        st, rows = jget(con, f"/api/kafka/messages?topic={topic}&partition=0&offset={sent[0]['offset']}&limit=6")
        assert st == 200 and rows["messages"] == got, (rows, got)
        # Nothing new: heartbeats.
        assert a.next(3) == ("comment", "heartbeat")

        b = Tail(con, f"topic={topic}&partition=1", OP)
        assert b.status == 200 and b.next()[0] == "open"
        assert jpost(con, "/api/kafka/produce", {"topic": topic, "partition": 1, "value": "p1"})[0] == 200
        assert [m["value"] for m in b.events(1)] == ["p1"]
        # Two open: the third gets 503 without streaming.
        c3 = Tail(con, f"topic={topic}")
        assert c3.status == 503 and "max_tails" in c3.body()["error"]
        c3.close()
        assert live_tails(con) == 2

        # The client goes away: its tail ends, the slot is free again.
        a.close()
        wait_for(lambda: live_tails(con) == 1, "the closed tail to end", timeout=10)
        c = Tail(con, f"topic={topic}")
        assert c.status == 200 and c.next()[0] == "open"
        c.close()
        # The other ends at tail_max_time with an "end" event, and the server closes the connection.
        deadline = time.time() + 30
        while True:
            ev, d = b.next(max(0.1, deadline - time.time()))
            if ev != "comment":
                break
        assert (ev, d["reason"]) == ("end", "max time"), (ev, d)
        assert b.next(5)[0] == "closed"
        b.close()
        # Every tail's thread and socket are given back.
        wait_for(lambda: live_tails(con) == 0, "every tail to end", timeout=10)
        end = time.time() + 15
        while time.time() < end and not all(x <= y for x, y in zip(counts(con.p.pid), (threads0, fds0))):
            time.sleep(0.2)
        th, fd = counts(con.p.pid)
        assert th <= threads0 and fd <= fds0, (th, fd, threads0, fds0)
    finally:
        con.close()
