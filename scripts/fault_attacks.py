"""Attacks for scripts/fault.

Every attack takes a started server and the options, is bounded by
`opts.hold` seconds and its own connection count, and returns rows of
(attack, server, result, probe, memory). A connection counts as cut when the
server answers it (e.g. 408), closes it, resets it, or when its server-side
socket leaves ESTABLISHED in /proc/net/tcp (which catches a close while the
client still has unread data buffered). Standard library only.
"""

import re
import selectors
import shutil
import socket
import ssl
import statistics
import subprocess
import time

from fault_servers import pinned

PAD = b"X-Pad: " + b"a" * 4096


def row(attack, server, result, probe="", memory=""):
    return {"attack": attack, "server": server.name, "result": result, "probe": probe,
            "memory": memory}


def mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f} MiB"


def server_side_open(server_port, client_ports):
    """The client ports whose server-side socket is ESTABLISHED, or None when
    /proc/net/tcp cannot be read."""
    found, readable = set(), False
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as f:
                readable = True
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 4 or parts[3] != "01":
                        continue
                    if int(parts[1].rsplit(":", 1)[1], 16) != server_port:
                        continue
                    port = int(parts[2].rsplit(":", 1)[1], 16)
                    if port in client_ports:
                        found.add(port)
        except OSError:
            continue
    return found if readable else None


def connect(port, rcvbuf=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def http_get(port, path, headers=(), timeout=5.0):
    """(status or None, seconds, error text) of one GET with Connection: close."""
    t0 = time.monotonic()
    try:
        with connect(port, timeout=timeout) as s:
            head = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except socket.timeout:
        return None, time.monotonic() - t0, f"no answer in {timeout:g} s"
    except OSError as e:
        return None, time.monotonic() - t0, e.strerror or str(e)
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    if not m:
        return None, time.monotonic() - t0, "closed without a response"
    return int(m.group(1)), time.monotonic() - t0, ""


def probe(server):
    """A normal request from a fresh client while the attack is still on."""
    status, secs, err = http_get(server.http_port, "/plaintext")
    return f"{status} in {secs * 1000:.0f} ms" if status else f"failed: {err}"


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_hello_bytes(ctx):
    """The bytes of a ClientHello: do_handshake writes it to the outgoing BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    if not hello:
        raise RuntimeError("the ssl module wrote no ClientHello")
    return hello


def tls_session(sock, ctx, timeout=5.0):
    """Completes a handshake over sock through memory BIOs; returns (obj, outgoing)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    sock.settimeout(timeout)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        data = outgoing.read()
        if data:
            sock.sendall(data)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        incoming.write(chunk)
    data = outgoing.read()
    if data:
        sock.sendall(data)
    return obj, outgoing


class Trickle:
    """One attacking connection: `head` at once, then `chunk` bytes of `data`
    (repeating `pad` after it) every `interval` seconds. With `answers`, any
    bytes from the server count as a cut (an HTTP error response); without
    (TLS, where the server may send session tickets), only a close does."""

    def __init__(self, sock, data, chunk, interval, head=b"", pad=b"", answers=True):
        self.sock, self.data, self.chunk, self.interval, self.pad = sock, data, chunk, interval, pad
        self.answers = answers
        self.port = sock.getsockname()[1]
        self.pos = 0
        self.sock.setblocking(True)
        self.sock.settimeout(5)
        if head:
            self.sock.sendall(head)
        self.sock.setblocking(False)
        self.t0 = self.next_at = time.monotonic()
        self.cut_at = None  # seconds after t0
        self.how = ""
        self.answer = b""

    def piece(self):
        if self.pos < len(self.data):
            out = self.data[self.pos:self.pos + self.chunk]
        else:
            k = (self.pos - len(self.data)) % len(self.pad) if self.pad else 0
            out = (self.pad[k:] + self.pad)[:self.chunk] if self.pad else b""
        return out

    def cut(self, now, how):
        if self.cut_at is None:
            self.cut_at, self.how = now - self.t0, how

    def send(self, now):
        self.next_at += self.interval
        piece = self.piece()
        if not piece:
            return
        try:
            n = self.sock.send(piece)
            self.pos += n
        except BlockingIOError:
            pass
        except OSError as e:
            self.cut(now, "send failed: " + (e.strerror or str(e)))

    def receive(self, now):
        try:
            b = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self.cut(now, "reset")
            return
        if not b:
            self.cut(now, "closed")
        elif self.answers:
            self.answer += b[:64]
            status = re.match(rb"HTTP/1\.[01] (\d{3})", self.answer)
            self.cut(now, status.group(1).decode() if status else "closed")


def run_trickles(conns, server_port, hold):
    """Feeds every connection until each is cut or `hold` seconds pass."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    end = time.monotonic() + hold
    next_check = 0.0
    while True:
        now = time.monotonic()
        live = [c for c in conns if c.cut_at is None]
        if not live or now >= end:
            break
        for c in live:
            if now >= c.next_at:
                c.send(now)
        if now >= next_check:
            open_ = server_side_open(server_port, {c.port for c in live})
            if open_ is not None:
                for c in live:
                    if c.port not in open_ and now - c.t0 > 0.2:
                        # Read what the server said before closing, if anything.
                        c.receive(now)
                        c.cut(now, "closed")
            next_check = now + 0.5
        live = [c for c in live if c.cut_at is None]
        wake = min([c.next_at for c in live] + [end, next_check])
        for key, _ in sel.select(max(0.0, wake - time.monotonic())):
            key.data.receive(time.monotonic())
        for c in conns:
            if c.cut_at is not None and c.sock.fileno() >= 0:
                try:
                    sel.unregister(c.sock)
                except (KeyError, ValueError):
                    pass
    sel.close()


def summary(conns, hold, failed=0):
    """'cut at 5.0 s (max 5.1 s, 20/20: 408)' or 'held 30 s (0/20 cut)'."""
    n = len(conns) + failed
    cut = [c for c in conns if c.cut_at is not None]
    hows = sorted({c.how for c in cut})
    extra = f", {failed} could not connect" if failed else ""
    if not conns:
        return f"no connection could be made{extra}"
    if not cut:
        return f"held {hold:g} s (0/{n} cut{extra})"
    times = [c.cut_at for c in cut]
    text = (f"cut at {statistics.median(times):.1f} s (max {max(times):.1f} s, "
            f"{len(cut)}/{n}: {', '.join(hows)}{extra})")
    if len(cut) < len(conns):
        text += f"; {len(conns) - len(cut)} held {hold:g} s"
    return text


def trickle_attack(name, server, opts, count, make):
    """Opens `count` connections with make(i) -> Trickle, runs them, and
    returns the row."""
    before = server.rss_kb()
    conns, failed = [], 0
    for i in range(count):
        try:
            conns.append(make(i))
        except OSError:
            failed += 1
    try:
        run_trickles(conns, conns[0].sock.getpeername()[1] if conns else 0, opts.hold)
        p = probe(server)
        after = server.rss_kb()
    finally:
        for c in conns:
            c.sock.close()
    return [row(name, server, summary(conns, opts.hold, failed), p,
                f"{mib(before)} -> {mib(after)}")]


def slowloris(server, opts):
    head = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n" + PAD
    return trickle_attack(
        "slowloris", server, opts, opts.conns,
        lambda i: Trickle(connect(server.http_port), head, 1, opts.trickle))


def tls_hello(server, opts):
    if not server.tls_port:
        return [row("tls-hello", server, "n/a: " + server.ws.cert_error)]
    ctx = client_context()
    return trickle_attack(
        "tls-hello", server, opts, opts.conns,
        lambda i: Trickle(connect(server.tls_port), tls_hello_bytes(ctx), 1, opts.trickle,
                          answers=False))


def tls_request(server, opts):
    if not server.tls_port:
        return [row("tls-request", server, "n/a: " + server.ws.cert_error)]
    ctx = client_context()
    head = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def make(i):
        s = connect(server.tls_port)
        try:
            obj, outgoing = tls_session(s, ctx)
        except (OSError, ssl.SSLError, ConnectionError) as e:
            s.close()
            raise OSError(str(e)) from e
        obj.write(head)
        record = outgoing.read()
        if not record:
            raise RuntimeError("the ssl module sealed no request")
        return Trickle(s, record, 1, opts.trickle, answers=False)

    return trickle_attack("tls-request", server, opts, opts.conns, make)


def slow_body(server, opts):
    size = opts.body_size
    head = (f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    # opts.rate bytes a second, in ten pieces. Only a close counts as a cut:
    # Peregrine's /echo streams the body back as it arrives.
    chunk = max(1, opts.rate // 10)
    return trickle_attack(
        "slow-body", server, opts, opts.body_conns,
        lambda i: Trickle(connect(server.http_port), b"", chunk, 0.1, head=head, pad=b"a" * 1024,
                          answers=False))


def slow_reader(server, opts):
    """GET a large file and read opts.rate bytes a second."""
    before = server.rss_kb()
    t0 = time.monotonic()
    read = 0
    how = ""
    cut_at = None
    try:
        s = connect(server.http_port, rcvbuf=4096)
    except OSError as e:
        return [row("slow-reader", server, f"could not connect: {e}")]
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.setblocking(False)
        port = s.getsockname()[1]
        end = t0 + opts.hold
        next_read = t0
        while time.monotonic() < end and cut_at is None:
            now = time.monotonic()
            if now >= next_read:
                next_read += 0.1
                try:
                    b = s.recv(max(1, opts.rate // 10))
                    if not b:
                        cut_at, how = now - t0, "closed"
                    read += len(b)
                except BlockingIOError:
                    pass
                except OSError:
                    cut_at, how = now - t0, "reset"
            open_ = server_side_open(server.http_port, {port})
            if cut_at is None and open_ is not None and port not in open_:
                cut_at, how = now - t0, "closed"
            time.sleep(0.1)
        p = probe(server)
        after = server.rss_kb()
    finally:
        s.close()
    if cut_at is None:
        result = f"held {opts.hold:g} s ({read:,} B read)"
    else:
        result = f"cut at {cut_at:.1f} s ({how}, {read:,} B read)"
    return [row("slow-reader", server, result, p, f"{mib(before)} -> {mib(after)}")]


def churn(server, opts):
    """One request per connection for opts.churn_seconds, then idle."""
    url = f"http://127.0.0.1:{server.http_port}/plaintext"
    t = opts.churn_seconds
    mark = min(5.0, t / 2)
    before = server.rss_kb()
    if shutil.which("wrk"):
        cmd = pinned(["wrk", "-t1", f"-c{opts.churn_conns}", f"-d{t}s", "--timeout", "2s",
                      "-H", "Connection: close", url], 1)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(mark)
        at_mark = server.rss_kb()
        out, _ = p.communicate(timeout=t + 60)
        m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
        rate = float(m.group(1)) if m else None
        errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        tool = f"wrk -c{opts.churn_conns}"
    else:
        out = ""
        rate, errs, non2xx, at_mark, tool = python_churn(server, opts, mark)
    at_end = server.rss_kb()
    time.sleep(opts.idle)
    idle = server.rss_kb()
    p = probe(server)
    if rate is None:
        last = out.strip().splitlines()[-1:]
        result = f"no rate ({tool} printed none{': ' + last[0][:80] if last else ''})"
    else:
        result = f"{rate:,.0f} conn/s ({tool}, {errs} errors"
        if non2xx:
            result += f", {int(non2xx.group(1))} non-2xx"
        result += ")"
    memory = (f"{mib(before)} -> {mib(at_mark)} at {mark:g} s -> {mib(at_end)} at end -> "
              f"{mib(idle)} after {opts.idle:g} s idle")
    return [row("churn", server, result, p, memory)]


def python_churn(server, opts, mark):
    """Sequential connect / request / close, when wrk is not installed."""
    t0 = time.monotonic()
    done = errs = 0
    at_mark = None
    while time.monotonic() - t0 < opts.churn_seconds:
        status, _, _ = http_get(server.http_port, "/plaintext", timeout=2)
        if status == 200:
            done += 1
        else:
            errs += 1
        if at_mark is None and time.monotonic() - t0 >= mark:
            at_mark = server.rss_kb()
    rate = done / (time.monotonic() - t0)
    return rate, errs, None, at_mark, "python loop"


def admin(server, opts):
    """opts.admin_conns connections on the admin listener, silent or sending a
    request without the token; then the operator's request with it."""
    if not server.admin_port:
        return [row("admin", server, "n/a (no admin listener)")]
    rows = []
    for mode in ("silent", "no-token"):
        before = server.rss_kb()
        socks, failed = [], 0
        for _ in range(opts.admin_conns):
            try:
                s = connect(server.admin_port, timeout=2)
                if mode == "no-token":
                    s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                socks.append(s)
            except OSError:
                failed += 1
        time.sleep(1)
        refused = 0
        for s in socks:
            s.setblocking(False)
            try:
                if re.match(rb"HTTP/1\.[01] 401", s.recv(4096)):
                    refused += 1
            except OSError:
                pass
        status, secs, err = http_get(server.admin_port, "/status",
                                     [f"Authorization: Bearer {server.token}"],
                                     timeout=opts.admin_wait)
        after = server.rss_kb()
        p = probe(server)
        for s in socks:
            s.close()
        held = f"{len(socks)} open" + (f", {failed} refused at connect" if failed else "")
        if mode == "no-token":
            held += f", {refused} got 401"
        if status:
            result = f"operator: {status} in {secs:.2f} s ({held})"
        else:
            result = f"operator: {err} ({held})"
        rows.append(row(f"admin-{mode}", server, result, p, f"{mib(before)} -> {mib(after)}"))
    return rows


ATTACKS = {
    "slowloris": slowloris,
    "tls-hello": tls_hello,
    "tls-request": tls_request,
    "slow-body": slow_body,
    "slow-reader": slow_reader,
    "churn": churn,
    "admin": admin,
}
# Run against one server at a time (they load the CPUs); the others run
# against every server at once.
SEQUENTIAL = {"churn"}
