#!/usr/bin/env bash
#
# bench/events.sh - event routes against raw clients, in the same run:
#   stream   N rows updated in one statement, drained to a Redis stream
#            (mode "stream": one scripted XADD per event, with its
#            redelivery check), against redis-cli --pipe sending N plain
#            XADDs of entries of the same fields and sizes to the same
#            server, and against the same rows drained to a json route
#            (SET per key), for scale
#   webhook  the same N rows drained to the stack's HTTP receiver
#            (test/tools/http_sink.py; mode polyglot_http, batches of
#            polyglot.batch_size), against bench/http_raw.py posting N
#            events of the same shape in batches of the same size, signed
#            the same way, to the same receiver
# Figures are events per second from the UPDATE's commit to an empty
# outbox (raw: from the first request to the last answer).
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_events", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/events.sh [N, default 100000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
DB=bench_events
BATCH=1000
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
wait_empty='DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) OR EXISTS (SELECT 1 FROM polyglot.route_state WHERE backfill_started_at IS NOT NULL AND backfill_finished_at IS NULL) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$;'
# drained TABLE: updates its N rows, waits for an empty outbox; prints rows/s
drained() {
	psql_q -At <<SQL
UPDATE $1 SET n = n + 1;
SELECT clock_timestamp() AS t0 \\gset
$wait_empty
SELECT round($N / extract(epoch FROM clock_timestamp() - :'t0'));
SQL
}
sink() { curl -sS -m 10 -o /dev/null -XPOST -d "{\"path\": \"$2\"}" "$HTTP_SINK_URL/_$1"; }
clean() {
	redis-cli -p "$REDIS_PORT" DEL bev:stream '{bev:stream}:seen' bev:raw > /dev/null
	redis-cli -p "$REDIS_PORT" --scan --pattern 'bev:k:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL > /dev/null
	sink reset /bench-events; sink reset /bench-raw
}

# N plain XADDs in Redis's protocol, entries like the route's
python3 - "$N" > "$TMP/xadd.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
def cmd(*args):
    out.write("*%d\r\n" % len(args))
    for a in args:
        b = a.encode()
        out.write("$%d\r\n%s\r\n" % (len(b), a))
for i in range(1, n + 1):
    cmd("XADD", "bev:raw", "MAXLEN", "~", "1000000", "*", "id", "1-%d-%016x" % (i, i * 2654435761 % (1 << 64)),
        "position", str(i), "op", "upsert", "table", "items", "key", '{"id": "%d"}' % i,
        "row", '{"id": %d, "name": "item %d", "n": 1}' % (i, i), "ts", "2026-12-06T21:07:45.123456+00:00")
PY

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
clean
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE SERVER hook FOREIGN DATA WRAPPER polyglot_http OPTIONS (url '$HTTP_SINK_URL/bench-events');
CREATE USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (secret '$HTTP_SINK_SECRET');
CREATE TABLE stream_items (id int PRIMARY KEY, name text, n int);
CREATE TABLE json_items (LIKE stream_items INCLUDING ALL);
CREATE TABLE hook_items (LIKE stream_items INCLUDING ALL);
INSERT INTO stream_items SELECT g, 'item ' || g, 0 FROM generate_series(1, $N) g;
INSERT INTO json_items SELECT * FROM stream_items;
INSERT INTO hook_items SELECT * FROM stream_items;
SELECT polyglot.sync('stream_items', 'cache', '{"mode": "stream", "stream": "bev:stream"}', backfill => false);
SELECT polyglot.sync('json_items', 'cache', '{"key": "bev:k:{id}"}', backfill => false);
SELECT polyglot.sync('hook_items', 'hook', backfill => false);
SQL

for r in $(seq 1 "$ROUNDS"); do
	drained stream_items >>"$TMP/stream"
	drained json_items >>"$TMP/json"
	redis-cli -p "$REDIS_PORT" DEL bev:raw > /dev/null
	t0=$(date +%s.%N)
	redis-cli -p "$REDIS_PORT" --pipe < "$TMP/xadd.resp" > /dev/null
	t1=$(date +%s.%N)
	awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d\n", n / (b - a) }' >>"$TMP/raw_xadd"
	drained hook_items >>"$TMP/hook"
	python3 bench/http_raw.py "$HTTP_SINK_URL/bench-raw" "$HTTP_SINK_SECRET" "$N" "$BATCH" >>"$TMP/raw_http"
	sink reset /bench-events; sink reset /bench-raw
done

stream=$(median <"$TMP/stream"); json=$(median <"$TMP/json"); raw_xadd=$(median <"$TMP/raw_xadd")
hook=$(median <"$TMP/hook"); raw_http=$(median <"$TMP/raw_http")
echo "drain of $N rows updated in one statement, median of $ROUNDS rounds, events/s"
printf '  Redis stream route              %8s   raw pipelined XADD (redis-cli --pipe) %8s   ratio %s\n' "$stream" "$raw_xadd" "$(ratio "$stream" "$raw_xadd")"
printf '  Redis json route (SET), for scale %6s   stream route against it: %s\n' "$json" "$(ratio "$stream" "$json")"
printf '  webhook route (polyglot_http)   %8s   raw client, same batches  %8s   ratio %s\n' "$hook" "$raw_http" "$(ratio "$hook" "$raw_http")"
clean
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
