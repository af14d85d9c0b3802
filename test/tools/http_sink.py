#!/usr/bin/env python3
"""A webhook receiver for the tests of polyglot_http routes.

It takes the POSTs that pg_polyglot sends ({"events": [...]}) on any path,
checks each request's signature with the secret it was started with, and
records what it received, per path, for the tests to read back.  How it
answers a path is set through its control endpoints, so that a test can
make it fail, time out, refuse events or take a batch and still answer
with an error (so that the same events come again: duplicates):

  POST /_control   {"path": "/p", "fail": N, "delay": S, "delay_count": N,
                    "reject_keys": ["13"], "ack_then_fail": N, "status": 503}
      fail: answer the next N requests with status (default 500), taking nothing
      delay: sleep S seconds before answering the next delay_count requests
      reject_keys: answer 422 to a batch holding an event of one of these keys
                   (the key's first column's value), taking nothing
      ack_then_fail: take the next N batches, and answer them with 500
  POST /_reset     {"path": "/p"}      forgets the path's events and settings
  GET  /_events?path=/p                 every event taken, in order, each with
                                        "dup": its id was taken before
  GET  /_requests?path=/p               every request: status answered, events
                                        in it, signature verdict, headers
Each answer of the control endpoints is one line of JSON.

Run: http_sink.py --port PORT [--secret SECRET]
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
PATHS = {}


def state(path):
    """The record and settings of a path (under LOCK)."""
    return PATHS.setdefault(path, {"events": [], "requests": [], "ids": set(),
                                   "fail": 0, "status": 500, "delay": 0.0,
                                   "delay_count": 0, "reject_keys": set(),
                                   "ack_then_fail": 0})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    secret = None

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, payload):
        body = (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_HEAD(self):
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urlparse(self.path)
        path = parse_qs(url.query).get("path", ["/"])[0]
        with LOCK:
            st = state(path)
            if url.path == "/_events":
                return self.answer(200, st["events"])
            if url.path == "/_requests":
                return self.answer(200, st["requests"])
        self.answer(404, {"error": "no such endpoint"})

    def signature_ok(self, body):
        """True or False for a signed request, None for an unsigned one."""
        if self.secret is None:
            return None
        ts = self.headers.get("X-Polyglot-Timestamp")
        sig = self.headers.get("X-Polyglot-Signature")
        if ts is None and sig is None:
            return None         # an unsigned request: recorded as such
        if ts is None or sig is None:
            return False
        mac = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
        return (hmac.compare_digest(sig, "v1=" + mac.hexdigest())
                and abs(time.time() - int(ts)) < 300)

    def do_POST(self):
        url = urlparse(self.path)
        body = self.read_body()
        if url.path in ("/_control", "/_reset"):
            settings = json.loads(body or b"{}")
            path = settings.pop("path", "/")
            with LOCK:
                if url.path == "/_reset":
                    PATHS.pop(path, None)
                else:
                    st = state(path)
                    for k, v in settings.items():
                        st[k] = set(v) if k == "reject_keys" else v
            return self.answer(200, {"ok": True})

        path = url.path
        with LOCK:
            st = state(path)
            delay = 0.0
            if st["delay_count"] > 0:
                st["delay_count"] -= 1
                delay = st["delay"]
        if delay:
            time.sleep(delay)
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": "not a batch of events"})
        verdict = self.signature_ok(body)
        with LOCK:
            st = state(path)
            request = {"events": len(events), "signature_ok": verdict,
                       "ids": [e.get("id") for e in events],
                       "user_agent": self.headers.get("User-Agent"),
                       "team": self.headers.get("X-Team"),
                       "authorization": self.headers.get("Authorization")}
            st["requests"].append(request)
            if verdict is False:
                request["status"] = 401
                return self.answer(401, {"error": "bad signature"})
            if st["fail"] > 0:
                st["fail"] -= 1
                request["status"] = st["status"]
                return self.answer(st["status"], {"error": "failing on purpose"})
            refused = [e for e in events
                       if str(next(iter((e.get("key") or {"": None}).values()))) in st["reject_keys"]]
            if refused:
                request["status"] = 422
                return self.answer(422, {"error": "refused key", "keys": [e["key"] for e in refused]})
            for e in events:
                e["dup"] = e.get("id") in st["ids"]
                st["ids"].add(e.get("id"))
                st["events"].append(e)
            if st["ack_then_fail"] > 0:
                st["ack_then_fail"] -= 1
                request["status"] = 500
                return self.answer(500, {"error": "taken, but answering 500"})
            request["status"] = 200
        self.answer(200, {"taken": len(events)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret")
    args = parser.parse_args()
    Handler.secret = args.secret
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
