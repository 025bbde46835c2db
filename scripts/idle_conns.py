#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to a loopback server and hold them.

Every connection sends one `GET PATH HTTP/1.1` and reads the complete
response, so the server sees an idle keep-alive connection afterwards (not a
half-open socket that never sent a request). Used by scripts/bench for the
"memory" case: the harness samples the server's memory before and while the
connections are held.

Output (stdout, one line each, flushed):
  READY established=E failed=F seconds=S      all connections attempted
  DONE held=H closed_by_peer=C                just before exiting

Bounded in time: connection setup gives up after --timeout seconds, holding
stops after --hold seconds or on SIGTERM/SIGINT, whichever comes first.
Standard library only.
"""

import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


class Conn:
    __slots__ = ("sock", "buf", "need")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.need = None  # total bytes of the response once known


def response_complete(conn):
    """True once a full response (Content-Length or chunked) has arrived."""
    if conn.need is None:
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = conn.buf[:end].decode("latin-1").lower()
        length = 0
        chunked = False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip()
            if name == "content-length":
                length = int(value.strip() or 0)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            return conn.buf.endswith(b"0\r\n\r\n")
        conn.need = end + 4 + length
    return len(conn.buf) >= conn.need


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", "--connections", type=int, default=10000)
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--concurrency", type=int, default=200,
                    help="connections being set up at once (default 200)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="give up setting up connections after this many seconds")
    ap.add_argument("--hold", type=float, default=30.0,
                    help="hold the idle connections this many seconds at most")
    args = ap.parse_args()

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("idle_conns.py only targets loopback")

    limit = raise_nofile(args.connections + 64)
    if limit < args.connections + 16:
        print(f"warning: RLIMIT_NOFILE is {limit}; fewer than "
              f"{args.connections} connections can be opened", file=sys.stderr)

    stop = False

    def on_signal(_signo, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    idle = []
    failed = 0
    started = 0
    in_flight = 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout

    def fail(conn):
        nonlocal failed, in_flight
        sel.unregister(conn.sock)
        conn.sock.close()
        failed += 1
        in_flight -= 1

    while not stop and (started < args.connections or in_flight) and time.monotonic() < deadline:
        while started < args.connections and in_flight < args.concurrency:
            started += 1
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                print(f"socket(): {e}", file=sys.stderr)
                failed += args.connections - started + 1
                started = args.connections
                break
            s.setblocking(False)
            rc = s.connect_ex((args.host, args.port))
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
                continue
            sel.register(s, selectors.EVENT_WRITE, Conn(s))
            in_flight += 1
        for key, events in sel.select(timeout=0.5):
            conn = key.data
            if events & selectors.EVENT_WRITE:
                if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    fail(conn)
                    continue
                try:
                    conn.sock.send(request)  # small: fits in one send
                except OSError:
                    fail(conn)
                    continue
                sel.modify(conn.sock, selectors.EVENT_READ, conn)
            elif events & selectors.EVENT_READ:
                try:
                    data = conn.sock.recv(65536)
                except OSError:
                    fail(conn)
                    continue
                if not data:
                    fail(conn)
                    continue
                conn.buf += data
                if response_complete(conn):
                    sel.unregister(conn.sock)
                    conn.buf = b""
                    idle.append(conn.sock)
                    in_flight -= 1

    # Anything still being set up at the deadline counts as failed.
    for key in list(sel.get_map().values()):
        fail(key.data)
    failed += args.connections - started

    print(f"READY established={len(idle)} failed={failed} "
          f"seconds={time.monotonic() - t0:.2f}", flush=True)

    # Hold: watch for the server closing idle connections.
    for s in idle:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    hold_until = time.monotonic() + args.hold
    while not stop and time.monotonic() < hold_until:
        for key, _ in sel.select(timeout=0.25):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                closed += 1
    print(f"DONE held={len(idle) - closed} closed_by_peer={closed}", flush=True)
    for s in idle:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
