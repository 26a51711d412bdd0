#!/usr/bin/env python3
"""A real CQL round trip with the standard library only, for tests/services/run's readiness and status checks.

It speaks native protocol v4: STARTUP, SASL PLAIN (PasswordAuthenticator) when the node asks for it, one QUERY, and
prints the first column of each row of the result. No driver, so `run up` needs no virtualenv.

Exit codes: 0 the query answered; 1 the node did not answer (refused, closed, timed out); 2 authentication failed;
3 the node answered with any other error.
"""
import argparse
import socket
import ssl
import struct
import sys

OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_QUERY, OP_RESULT, OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x07, 0x08, 0x0F, 0x10
ERR_BAD_CREDENTIALS = 0x0100
RESULT_ROWS = 0x0002
CONSISTENCY_ONE = 0x0001


class CqlError(Exception):
    def __init__(self, code, message):
        super().__init__(f"error 0x{code:04x}: {message}")
        self.code = code


def _string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the node")
        buf += chunk
    return buf


def _request(sock, stream, opcode, body):
    sock.sendall(struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body)
    version, _flags, _stream, op, length = struct.unpack(">BBhBi", _recv_exact(sock, 9))
    if version != 0x84:
        raise ConnectionError(f"unexpected response version 0x{version:02x}")
    body = _recv_exact(sock, length)
    if op == OP_ERROR:
        code = struct.unpack(">i", body[:4])[0]
        n = struct.unpack(">H", body[4:6])[0]
        raise CqlError(code, body[6:6 + n].decode(errors="replace"))
    return op, body


class _Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode(errors="replace")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def option(self):
        # Enough for the simple types a readiness query returns; collections carry nested options.
        tid = self.short()
        if tid == 0x0000:
            self.string()
        elif tid in (0x0020, 0x0022):
            self.option()
        elif tid == 0x0021:
            self.option()
            self.option()
        elif tid in (0x0030, 0x0031):
            raise ValueError("UDT and tuple columns are not supported here")
        return tid


def _connect(host, port, timeout, tls_ca=None, tls_cert=None, tls_key=None):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    if tls_ca is None:
        return sock
    ctx = ssl.create_default_context(cafile=tls_ca)
    if tls_cert:
        ctx.load_cert_chain(tls_cert, tls_key)
    return ctx.wrap_socket(sock, server_hostname=host)


def query(host, port, cql, user=None, password=None, timeout=5.0, tls_ca=None, tls_cert=None, tls_key=None):
    with _connect(host, port, timeout, tls_ca, tls_cert, tls_key) as sock:
        op, body = _request(sock, 0, OP_STARTUP, struct.pack(">H", 1) + _string("CQL_VERSION") + _string("3.0.0"))
        if op == OP_AUTHENTICATE:
            if user is None:
                raise CqlError(ERR_BAD_CREDENTIALS, "the node requires a user and password")
            token = b"\0" + user.encode() + b"\0" + password.encode()
            op, body = _request(sock, 1, OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token)
            if op != OP_AUTH_SUCCESS:
                raise ConnectionError(f"unexpected opcode 0x{op:02x} after AUTH_RESPONSE")
        elif op != OP_READY:
            raise ConnectionError(f"unexpected opcode 0x{op:02x} after STARTUP")
        q = cql.encode()
        op, body = _request(sock, 2, OP_QUERY, struct.pack(">i", len(q)) + q + struct.pack(">HB", CONSISTENCY_ONE, 0))
        if op != OP_RESULT:
            raise ConnectionError(f"unexpected opcode 0x{op:02x} after QUERY")
        r = _Reader(body)
        if r.int() != RESULT_ROWS:
            return []
        flags, ncols = r.int(), r.int()
        if flags & 0x0002:
            r.bytes()
        if not flags & 0x0004:
            if flags & 0x0001:
                r.string(), r.string()
            for _ in range(ncols):
                if not flags & 0x0001:
                    r.string(), r.string()
                r.string()
                r.option()
        rows = []
        for _ in range(r.int()):
            rows.append([r.bytes() for _ in range(ncols)])
        return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--tls-ca", help="TLS: CA file that verifies the node (turns TLS on)")
    ap.add_argument("--tls-cert", help="TLS: client certificate (PEM)")
    ap.add_argument("--tls-key", help="TLS: client key (PEM)")
    ap.add_argument("--query", default="SELECT release_version FROM system.local")
    a = ap.parse_args()
    try:
        rows = query(a.host, a.port, a.query, a.user, a.password, a.timeout, a.tls_ca, a.tls_cert, a.tls_key)
    except CqlError as e:
        print(f"cqlping: {a.host}:{a.port}: {e}", file=sys.stderr)
        return 2 if e.code == ERR_BAD_CREDENTIALS else 3
    except (OSError, ConnectionError, struct.error) as e:  # ssl.SSLError is an OSError
        print(f"cqlping: {a.host}:{a.port}: {e}", file=sys.stderr)
        return 1
    for row in rows:
        v = row[0]
        print("null" if v is None else v.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
