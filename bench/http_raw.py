#!/usr/bin/env python3
"""bench/http_raw.py - the baseline of bench/events.sh's webhook drain: a raw
client posting N events, in batches of B, to a receiver, one request at a
time on one kept-alive connection, each body shaped as pg_polyglot's
({"events": [...]}, events of the same fields and sizes) and signed the same
way.  Prints the events per second.

Usage: http_raw.py URL SECRET N B
"""
import hashlib
import hmac
import http.client
import json
import sys
import time
from urllib.parse import urlparse

url, secret, n, b = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
u = urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
ts_text = "2026-12-06T21:07:45.123456+00:00"
bodies = []
for start in range(1, n + 1, b):
    events = [{"id": "1-%d-%016x" % (i, i * 2654435761 % (1 << 64)), "position": i, "op": "upsert",
               "table": "items", "key": {"id": str(i)},
               "row": {"id": i, "name": "item %d" % i, "n": 1}, "ts": ts_text}
              for i in range(start, min(start + b, n + 1))]
    bodies.append(json.dumps({"events": events}).encode())
t0 = time.monotonic()
for body in bodies:
    ts = str(int(time.time()))
    sig = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    conn.request("POST", u.path, body, {"Content-Type": "application/json", "X-Polyglot-Timestamp": ts,
                                        "X-Polyglot-Signature": sig})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("HTTP %d" % r.status)
print(round(n / (time.monotonic() - t0)))
