#!/usr/bin/env python3
"""An HTTP/1.1 upstream for end-to-end proxy tests that misbehaves on cue.

    python3 tests/upstream.py --port 0 --name NAME [--fail-health]
    python3 tests/upstream.py --unix PATH --name NAME [--fail-health]

Binds 127.0.0.1 (port 0: any free one), prints `PORT <n>` as its first line
of output (with --unix: listens on a Unix-domain socket at PATH instead,
replacing a stale one, and prints `UNIX <path>`) and serves until killed: one thread per connection, keep-alive,
pipelined requests answered in order, request bodies read by Content-Length
or chunked (`Expect: 100-continue` is answered). Every answer but the raw
ones (/garbage, /smuggle) carries `X-Upstream: NAME`. HEAD gets no body.

Cues (by path; query parameters in brackets):
  /healthz              200 "ok", or 503 with --fail-health; SIGUSR1 toggles
  /headers              200 JSON: the request's [name, value] pairs as received
  /echo                 the request body streamed back: Content-Length when the
                        request had one, else chunked, chunk for chunk
  /status/<code>        that status, body "<code>\\n" (none for 1xx, 204, 304)
  /close-mid-body       Content-Length: 1000, 10 bytes, then close
  /garbage              a head with `Content-Length: zz`, then close
  /smuggle              Content-Length: 5 and Transfer-Encoding: chunked, then
                        bytes that look like a second response, then close
  /stall [ms=500]       sleep, then answer as /
  /stall-body [ms=500]  head and half the body, sleep, the rest
  /sse [n=3, ms=100]    text/event-stream, chunked: n events ms apart
  /big [bytes=1048576]  that many bytes of PATTERN, Content-Length, 64 KiB writes
  /chunked [n=3, size=16]  n * size bytes of PATTERN in n chunks
  /close-after          answers with `Connection: close`, then closes
  /keepalive-close      answers as a keep-alive response, then closes anyway
  /count                "requests=R connections=C\\n" so far (this one counted)
  /cache/<any> [cc, etag, lm, vary, cookie, status, size, ms, expires, chunked]
                        200 (or status) "NAME n=N <method> <target>" padded to size,
                        N counting this path's requests; fields from the query:
                        Cache-Control cc, ETag etag, Last-Modified lm, Vary vary,
                        Set-Cookie cookie, Expires `expires` seconds ahead; ms: a
                        sleep first; a matching If-None-Match (or, without one,
                        an If-Modified-Since equal to lm) gets 304; after
                        /fail?path=P, P answers 503 until /fail?path=P&off=1
  /counts [path]        how many times path was asked for (after /cache/)
  /ws                   a WebSocket (RFC 6455): text, binary and continuation
                        frames echoed unmasked, pings answered, close echoed
  CONNECT <host:port>   a forward proxy's tunnel: a host starting with "deny"
                        gets 403 "denied" and the close; 127.0.0.1:<port>
                        gets 200 and a relay to that port (a 502 when it
                        refuses); any other 200, then the line "TUNNEL NAME
                        <target> host=<Host> xff=<X-Forwarded-For>" and every
                        byte echoed until the client closes
  anything else         200 text/plain "NAME <method> <target>\\n"

PATTERN is byte i = PATTERN[i % 64]: the 64 characters below, repeated.
"""

import argparse
import base64
import hashlib
import http
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
BLOCK = PATTERN * 1024  # 64 KiB
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

NAME = "upstream"
STATE = {"requests": 0, "connections": 0, "healthy": True}
COUNTS = {}
FAILING = set()
LOCK = threading.Lock()


class Close(Exception):
    """The connection ends here."""


def pattern(n):
    """n bytes of PATTERN."""
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


def reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class Exchange:
    """One connection, read through a buffered file, answered in order."""

    def __init__(self, sock):
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.method = self.target = self.version = ""
        self.headers = []

    # Reading.

    def line(self):
        line = self.rfile.readline(65537)
        if not line:
            raise Close
        return line

    def read_head(self):
        """The next request head; False at a clean end of the connection."""
        line = self.rfile.readline(65537)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(65537)
        if not line:
            return False
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3:
            self.respond(400, b"bad request line\n", close=True)
            raise Close
        self.method, self.target, self.version = parts
        self.headers = []
        while (line := self.line()) not in (b"\r\n", b"\n"):
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            self.headers.append([name, value.strip()])
        return True

    def header(self, name):
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def chunked(self):
        return "chunked" in (self.header("transfer-encoding") or "").lower()

    def body_pieces(self):
        """The request body as it arrives, piece by piece."""
        if self.chunked():
            while size := int(self.line().split(b";")[0].strip(), 16):
                yield self.rfile.read(size)
                self.line()
            while self.line() not in (b"\r\n", b"\n"):
                pass  # trailers
            return
        left = int(self.header("content-length") or 0)
        while left > 0:
            piece = self.rfile.read1(min(left, 65536))
            if not piece:
                raise Close
            left -= len(piece)
            yield piece

    def keep_alive(self):
        conn = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    # Writing.

    def head(self, status, fields=(), length=None, close=False):
        lines = [f"HTTP/1.1 {status} {reason(status)}", f"X-Upstream: {NAME}"]
        lines += [f"{n}: {v}" for n, v in fields]
        if length is None:
            lines.append("Transfer-Encoding: chunked")
        elif not (status < 200 or status in (204, 304)):
            lines.append(f"Content-Length: {length}")
        if close:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, status, body=b"", ctype="text/plain", fields=(), close=False):
        self.head(status, [("Content-Type", ctype), *fields], len(body), close)
        if self.method != "HEAD" and not (status < 200 or status in (204, 304)):
            self.sock.sendall(body)

    def chunk(self, data):
        if data and self.method != "HEAD":
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def last_chunk(self):
        if self.method != "HEAD":
            self.sock.sendall(b"0\r\n\r\n")

    # Serving.

    def serve(self):
        while self.read_head():
            with LOCK:
                STATE["requests"] += 1
            url = urlsplit(self.target)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            expect = (self.header("expect") or "").lower() == "100-continue"
            if expect and self.version == "HTTP/1.1":
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if self.method == "CONNECT":
                return self.tunnel()
            if url.path == "/echo":
                self.echo()
            else:
                for _ in self.body_pieces():
                    pass
                self.route(url.path, query)
            if not self.keep_alive():
                return

    def route(self, path, q):
        def num(key, default):
            return int(q.get(key, default))

        if path == "/healthz":
            ok = STATE["healthy"]
            self.respond(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n")
        elif path == "/headers":
            body = json.dumps(self.headers).encode()
            self.respond(200, body, "application/json")
        elif path.startswith("/status/"):
            code = int(path[len("/status/"):])
            self.respond(code, b"%d\n" % code)
        elif path == "/close-mid-body":
            self.head(200, [("Content-Type", "text/plain")], 1000)
            self.sock.sendall(pattern(10))
            raise Close
        elif path == "/garbage":
            self.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\nhello")
            raise Close
        elif path == "/smuggle":
            self.sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
            )
            raise Close
        elif path == "/stall":
            time.sleep(num("ms", 500) / 1000)
            self.default()
        elif path == "/stall-body":
            body = f"{NAME} stalled body\n".encode() * 4
            self.head(200, [("Content-Type", "text/plain")], len(body))
            if self.method != "HEAD":
                self.sock.sendall(body[: len(body) // 2])
                time.sleep(num("ms", 500) / 1000)
                self.sock.sendall(body[len(body) // 2:])
        elif path == "/sse":
            fields = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
            self.head(200, fields)
            for i in range(num("n", 3)):
                if i:
                    time.sleep(num("ms", 100) / 1000)
                self.chunk(f"id: {i}\ndata: {NAME} event {i}\n\n".encode())
            self.last_chunk()
        elif path == "/big":
            left = num("bytes", 1 << 20)
            self.head(200, [("Content-Type", "application/octet-stream")], left)
            while left > 0 and self.method != "HEAD":
                piece = BLOCK[: min(left, len(BLOCK))]
                self.sock.sendall(piece)
                left -= len(piece)
        elif path == "/chunked":
            self.head(200, [("Content-Type", "application/octet-stream")])
            size = num("size", 16)
            body = pattern(num("n", 3) * size)
            for at in range(0, len(body), size):
                self.chunk(body[at : at + size])
            self.last_chunk()
        elif path == "/close-after":
            self.respond(200, f"{NAME} closing\n".encode(), close=True)
            raise Close
        elif path == "/keepalive-close":
            self.default()
            raise Close
        elif path == "/count":
            with LOCK:
                text = "requests={requests} connections={connections}\n".format(**STATE)
            self.respond(200, text.encode())
        elif path.startswith("/cache/"):
            self.cached(path, q)
        elif path == "/counts":
            with LOCK:
                n = COUNTS.get(q.get("path", ""), 0)
            self.respond(200, b"%d\n" % n)
        elif path == "/fail":
            with LOCK:
                if "off" in q:
                    FAILING.discard(q.get("path", ""))
                else:
                    FAILING.add(q.get("path", ""))
            self.respond(200, b"ok\n")
        elif path == "/ws":
            self.websocket()
        else:
            self.default()

    def cached(self, path, q):
        with LOCK:
            COUNTS[path] = n = COUNTS.get(path, 0) + 1
            failing = path in FAILING
        if "ms" in q:
            time.sleep(int(q["ms"]) / 1000)
        if failing:
            self.respond(503, b"failing\n")
            return
        fields = []
        for key, name in (("cc", "Cache-Control"), ("etag", "ETag"), ("lm", "Last-Modified"),
                          ("vary", "Vary"), ("cookie", "Set-Cookie")):
            if key in q:
                fields.append((name, q[key]))
        if "expires" in q:
            at = time.time() + int(q["expires"])
            fields.append(("Expires", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(at))))
        tag = q.get("etag")
        inm = self.header("if-none-match")
        if tag and inm and tag.removeprefix("W/") in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            self.respond(304, b"", fields=fields)
            return
        if "lm" in q and not inm and self.header("if-modified-since") == q["lm"]:
            self.respond(304, b"", fields=fields)
            return
        body = f"{NAME} n={n} {self.method} {self.target}\n".encode()
        size = int(q.get("size", 0))
        if size > len(body):
            body += pattern(size - len(body))
        status = int(q.get("status", 200))
        if "chunked" in q:
            self.head(status, [("Content-Type", "text/plain"), *fields])
            self.chunk(body)
            self.last_chunk()
        else:
            self.respond(status, body, fields=fields)

    def default(self):
        self.respond(200, f"{NAME} {self.method} {self.target}\n".encode())

    def echo(self):
        ctype = self.header("content-type") or "application/octet-stream"
        if self.chunked():
            self.head(200, [("Content-Type", ctype)])
            for piece in self.body_pieces():
                self.chunk(piece)
            self.last_chunk()
        else:
            length = int(self.header("content-length") or 0)
            self.head(200, [("Content-Type", ctype)], length)
            for piece in self.body_pieces():
                if self.method != "HEAD":
                    self.sock.sendall(piece)

    def tunnel(self):
        if self.target.startswith("deny"):
            self.respond(403, b"denied\n", close=True)
            return
        if self.target.startswith("127.0.0.1:"):
            return self.relay(int(self.target.split(":")[1]))
        self.sock.sendall(
            f"HTTP/1.1 200 Connection Established\r\nX-Upstream: {NAME}\r\n\r\n".encode()
        )
        line = "TUNNEL {} {} host={} xff={}\n".format(
            NAME, self.target, self.header("host"), self.header("x-forwarded-for")
        )
        self.sock.sendall(line.encode("latin-1"))
        while piece := self.rfile.read1(65536):
            self.sock.sendall(piece)

    def relay(self, port):
        try:
            far = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            self.respond(502, b"cannot connect\n", close=True)
            return
        far.settimeout(None)
        self.sock.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")

        def back():
            while data := far.recv(65536):
                self.sock.sendall(data)
            self.sock.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=back, daemon=True)
        t.start()
        while piece := self.rfile.read1(65536):
            far.sendall(piece)
        far.shutdown(socket.SHUT_WR)
        t.join()
        far.close()

    def websocket(self):
        key = self.header("sec-websocket-key")
        if not key or (self.header("upgrade") or "").lower() != "websocket":
            self.respond(400, b"not a websocket handshake\n")
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
        self.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Upstream: %s\r\n\r\n"
            % (accept, NAME.encode())
        )
        while True:
            fin_op, second = self.exactly(2)
            op, size = fin_op & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self.exactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self.exactly(8))
            mask = self.exactly(4) if second & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.exactly(size)))
            if op == 0x9:  # ping
                fin_op = 0x80 | 0xA
            elif op == 0xA:  # pong
                continue
            self.sock.sendall(frame(fin_op, data))
            if op == 0x8:  # close
                raise Close

    def exactly(self, n):
        data = self.rfile.read(n)
        if len(data) < n:
            raise Close
        return data


def frame(fin_op, data):
    """An unmasked frame with the first byte `fin_op`."""
    n = len(data)
    if n < 126:
        size = bytes([n])
    elif n < 1 << 16:
        size = bytes([126]) + struct.pack("!H", n)
    else:
        size = bytes([127]) + struct.pack("!Q", n)
    return bytes([fin_op]) + size + data


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        with LOCK:
            STATE["connections"] += 1
        try:
            Exchange(self.request).serve()
        except (Close, ConnectionError, ValueError, OSError):
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def toggle_health(_sig, _frame):
    with LOCK:
        STATE["healthy"] = not STATE["healthy"]


def main():
    global NAME
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--unix", metavar="PATH")
    parser.add_argument("--fail-health", action="store_true")
    args = parser.parse_args()
    NAME = args.name
    STATE["healthy"] = not args.fail_health
    signal.signal(signal.SIGUSR1, toggle_health)
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = UnixServer(args.unix, Handler)
        first = f"UNIX {args.unix}"
    else:
        server = Server(("127.0.0.1", args.port), Handler)
        first = f"PORT {server.server_address[1]}"
    with server:
        print(first, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
