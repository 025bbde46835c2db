"""Servers for scripts/fault: Peregrine and nginx on free loopback ports.

Each attack gets freshly started servers; they are stopped by PID (SIGTERM,
then SIGKILL after a grace period). Standard library only.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX_TEMPLATE = os.path.join(HERE, "fault_nginx.conf.in")


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(pid):
    """pid and all its descendants."""
    out = [pid]
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for child in children:
            out += tree_pids(child)
    return out


def tree_rss_kb(pid):
    """VmRSS summed over the process tree, in KiB (None once it is gone)."""
    total, seen = 0, False
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        seen = True
                        break
        except OSError:
            pass
    return total if seen else None


def pinned(cmd, cpu):
    """cmd run on one CPU with taskset, when there are two CPUs to split."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)] + cmd
    return cmd


class Workspace:
    """The temporary folder: document root, certificate, settings."""

    def __init__(self, tmp, opts):
        self.tmp = tmp
        self.opts = opts
        self.root = os.path.join(tmp, "root")
        os.makedirs(self.root)
        with open(os.path.join(self.root, "plaintext"), "w", encoding="ascii") as f:
            f.write("Hello, World!")
        # Sparse: 64 MiB of zeros without writing them.
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.truncate(opts.file_size)
        self.cert = self.key = None
        self.cert_error = ""
        if shutil.which("openssl") is None:
            self.cert_error = "openssl is not installed (needed for the test certificate)"
            return
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        rc = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", key, "-out", cert],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False).returncode
        if rc == 0:
            self.cert, self.key = cert, key
        else:
            self.cert_error = "openssl could not make a certificate"


class Server:
    """One server process. Subclasses write the configuration and command."""

    name = "?"

    def __init__(self, ws):
        self.ws = ws
        self.http_port = free_port()
        self.tls_port = free_port() if ws.cert else None
        self.admin_port = None
        self.token = None
        self.proc = None
        self.log = os.path.join(ws.tmp, f"{self.name}.log")

    def command(self):
        raise NotImplementedError

    def start(self):
        cmd = pinned(self.command(), 0)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {self.log_tail()}")

    def ready(self):
        ports = [p for p in (self.http_port, self.tls_port, self.admin_port) if p]
        for port in ports:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def log_tail(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                lines = [x.strip() for x in f if x.strip()]
        except OSError:
            return "no log"
        return lines[-1][:200] if lines else "no output"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        return tree_rss_kb(self.proc.pid) if self.alive() else None

    def stop(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


class Peregrine(Server):
    name = "peregrine"

    def __init__(self, ws):
        super().__init__(ws)
        self.admin_port = free_port()
        self.token = secrets.token_hex(16)

    def command(self):
        o = self.ws.opts
        conf = os.path.join(self.ws.tmp, "peregrine.toml")
        t = f'"{o.timeout:g}s"'
        lines = [
            f'listen = ["127.0.0.1:{self.http_port}"]',
            "workers = 1",
            f'root = "{self.ws.root}"',
            "builtins = true",
            "[limits]",
            "max_request_body_size = 30000000",
            "[timeouts]",
            f"request_headers_timeout = {t}",
            f"request_body_timeout = {t}",
            f"send_timeout = {t}",
            f'keep_alive_timeout = "{o.keep_alive:g}s"',
            'shutdown_timeout = "2s"',
            "[admin]",
            f'listen = "127.0.0.1:{self.admin_port}"',
            f'token = "{self.token}"',
            "[access_log]",
            "enabled = false",
        ]
        if self.tls_port:
            lines += ["[tls]", f'listen = ["127.0.0.1:{self.tls_port}"]',
                      f'cert = "{self.ws.cert}"', f'key = "{self.ws.key}"']
        with open(conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return [o.bin, "serve", "--config", conf]


class Nginx(Server):
    name = "nginx"

    def command(self):
        o, tmp = self.ws.opts, self.ws.tmp
        prefix = os.path.join(tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        with open(NGINX_TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        # /echo is proxied to a port nobody listens on: nginx reads the whole
        # body first (proxy_request_buffering), under client_body_timeout.
        values = {"TMP": tmp, "ROOT": self.ws.root, "PORT": self.http_port,
                  "TLS_PORT": self.tls_port, "CERT": self.ws.cert, "KEY": self.ws.key,
                  "TIMEOUT": f"{o.timeout:g}s", "KEEPALIVE": f"{o.keep_alive:g}s",
                  "DEAD_PORT": free_port(), "USER": "root"}
        out = []
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            if line.startswith("@TLS@"):
                if not self.tls_port:
                    continue
                line = line[len("@TLS@"):]
            if line.startswith("@IF_ROOT@"):
                if os.geteuid() != 0:
                    continue
                line = line[len("@IF_ROOT@"):]
            for k, v in values.items():
                line = line.replace(f"@{k}@", str(v))
            out.append(line)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        return ["nginx", "-p", prefix, "-e", os.path.join(tmp, "nginx-error.log"), "-c", conf]


SERVERS = {"peregrine": Peregrine, "nginx": Nginx}
