"""The sample service of `nsdebug demo`: a tiny HTTP API on loopback with a memory leak.

Every request's context is appended to an audit log that nothing ever trims,
and a background worker recomputes a report in a nested call: a small,
realistic heap and stack to explore.
"""

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RequestContext:
    def __init__(self, path, number):
        self.path = path
        self.number = number
        self.user = "user-%d" % (number % 17)
        self.payload = "x" * 256 + path


_audit_log = []          # the leak: every RequestContext ever made stays here


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        _audit_log.append(RequestContext(self.path, len(_audit_log)))
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def summarize(entries, window):
    recent = entries[-window:]
    users = {}
    for ctx in recent:
        users[ctx.user] = users.get(ctx.user, 0) + 1
    time.sleep(0.5)
    return users


def report_worker():
    while True:
        summarize(_audit_log, 50)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=report_worker, name="report-worker", daemon=True).start()
    print("ready %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
