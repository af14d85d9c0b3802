#!/usr/bin/env bash
#
# bench/rss_redis.sh - memory of the delivery worker while it drains a
# backlog of a million events to Redis.
#
# A table of N rows (default 1,000,000) is synced with its route paused;
# one UPDATE of every row leaves N pending events.  The route is resumed
# and the worker's memory is sampled every 50 ms from /proc until the
# outbox is empty:
#   VmHWM     peak resident set, as the kernel counts it: includes the pages
#             of PostgreSQL's shared buffers the worker touched
#   RssShmem  the part of it that is shared memory (shared buffers...)
#   RssAnon   private memory (palloc, libraries): what the worker itself holds
# Baseline, measured in the same run: the same figures of the idle worker
# just before the drain.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_rss", which it recreates.  Not a test: it never fails on a figure.
#
# Usage: bench/rss_redis.sh [rows, default 1000000]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
ROWS=${1:-1000000}
DB=bench_rss

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                    stock int, updated timestamptz DEFAULT now());
INSERT INTO items (id, name, price, stock)
  SELECT g, 'item ' || g, 9.99, 10 FROM generate_series(1, $ROWS) g;
SELECT polyglot.sync('items', 'cache', '{"key": "bench:rss:{id}"}', backfill => false) AS route \gset
SELECT polyglot.pause(:route);
UPDATE items SET stock = stock + 1;
VACUUM ANALYZE items;
SQL
ROUTE=$(psql_q -At -c "SELECT polyglot._route('items', 'cache')")
PENDING=$(psql_q -At -c "SELECT pending FROM polyglot.status WHERE route = $ROUTE")
WORKER=$(psql_q -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = current_database()")
idle_rss=$(kb "$WORKER" VmRSS); idle_anon=$(kb "$WORKER" RssAnon); idle_shm=$(kb "$WORKER" RssShmem)

echo "== drain of $PENDING pending events, worker pid $WORKER"
start=$(date +%s.%N)
psql_q -c "SELECT polyglot.resume($ROUTE)" > /dev/null
peak_anon=$idle_anon; peak_shm=$idle_shm
while :; do
	a=$(kb "$WORKER" RssAnon); m=$(kb "$WORKER" RssShmem)
	[ "$a" -gt "$peak_anon" ] && peak_anon=$a
	[ "$m" -gt "$peak_shm" ] && peak_shm=$m
	[ "$(psql_q -At -c "SELECT count(*) = 0 FROM polyglot.outbox")" = t ] && break
	sleep 0.05
done
end=$(date +%s.%N)
hwm=$(kb "$WORKER" VmHWM)
delivered=$(psql_q -At -c "SELECT delivered FROM polyglot.status WHERE route = $ROUTE")

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
printf '%-34s %12s %12s %12s\n' "" "VmRSS/VmHWM" "RssShmem" "RssAnon"
printf '%-34s %12s %12s %12s\n' "idle worker (baseline)" "$(mb "$idle_rss")" "$(mb "$idle_shm")" "$(mb "$idle_anon")"
printf '%-34s %12s %12s %12s\n' "peak while draining" "$(mb "$hwm")" "$(mb "$peak_shm")" "$(mb "$peak_anon")"
awk -v a="$peak_anon" -v b="$idle_anon" -v h="$hwm" -v r="$idle_rss" \
	'BEGIN { printf "peak / idle: RSS %.2f, private %.2f\n", h / r, a / b }'
awk -v n="$delivered" -v s="$start" -v e="$end" \
	'BEGIN { printf "delivered %d events in %.1f s\n", n, e - s }'

psql -X -q -d postgres -c "DROP DATABASE $DB"
redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:rss:*' | xargs -r -n 5000 redis-cli -p "$REDIS_PORT" DEL > /dev/null
