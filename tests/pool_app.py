#!/usr/bin/env python3
"""A small HTTP application for application-pool tests.

    python3 tests/pool_app.py PORT
    python3 tests/pool_app.py /path/to.sock

Serves 127.0.0.1:PORT, or a Unix-domain socket at an absolute path
(HTTP/1.1, keep-alive, a thread per connection):
  /healthz   200 "ok" (503 "frozen" after /freeze)
  /freeze    from now on /healthz fails, as a hung application's would
  /crash     exits at once with status 3 (no answer)
  /slow      sleeps 200 ms, then answers as /
  anything   200 "pid=P instance=I port=N path=PATH"

Exits with status 2 before listening when a file named `crash-at-start`
is in the working directory (a release that cannot start). SIGTERM ends
it with status 0. Each request is logged on stderr.
"""
import os
import signal
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = sys.argv[1]
FROZEN = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global FROZEN
        if self.path == "/freeze":
            FROZEN = True
        if self.path == "/healthz" and FROZEN:
            body = b"frozen\n"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/crash":
            os._exit(3)
        if self.path == "/slow":
            time.sleep(0.2)
        if self.path == "/healthz":
            body = b"ok\n"
        else:
            body = "pid={} instance={} port={} path={}\n".format(
                os.getpid(), os.environ.get("PEREGRINE_INSTANCE"), PORT, self.path
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("pool_app %d: %s\n" % (os.getpid(), fmt % args))
        sys.stderr.flush()


def main():
    if os.path.exists("crash-at-start"):
        sys.stderr.write("pool_app: crash-at-start is here; exiting\n")
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if PORT.startswith("/"):
        class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        server = UnixServer(PORT, Handler)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
        server.daemon_threads = True
    sys.stderr.write("pool_app %d: listening on %s\n" % (os.getpid(), PORT))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
