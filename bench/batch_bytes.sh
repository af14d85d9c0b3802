#!/usr/bin/env bash
#
# bench/batch_bytes.sh - private memory of the delivery worker while it
# drains a backlog of big rows (default 10,000 rows of 1 MB), with
# polyglot.batch_bytes at its default and with the bound off, in one run.
#
# The rows go to Redis in `publish` mode, to a channel nobody listens to:
# each row is read, rendered and sent like any other, but Redis keeps
# nothing (10 GB would not fit in its memory).  The table's values are
# compressible (a repeated md5), so the table stays small on disk; the
# worker still detoasts and renders 1 MB per row.
#
# For each setting: the route is paused, one UPDATE of every row leaves N
# pending events (in outbox rows of 1,000 keys), the route is resumed, and
# the RssAnon (private memory: palloc, libc) of the database's workers (one
# per polyglot.workers slot, each with its share of the keys) is sampled
# every 50 ms from /proc until the outbox is empty; the table shows the peak
# of the biggest worker and the peak of their sum.  The bounded run goes first:
# memory the worker freed is not always given back to the kernel, so the
# unbounded run after it cannot look better than it is.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_batch_bytes", which it recreates; it changes polyglot.batch_bytes
# with ALTER SYSTEM and resets it at the end.  Not a test: it never fails
# on a figure.
#
# Usage: bench/batch_bytes.sh [rows, default 10000] [row size in bytes, default 1048576]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
ROWS=${1:-10000}
SIZE=${2:-1048576}
DB=bench_batch_bytes

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
set_bound() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER SYSTEM SET polyglot.batch_bytes = '$1'" \
		-c "SELECT pg_reload_conf()" > /dev/null
	sleep 1
}
cleanup() {
	psql -X -q -d postgres -c "ALTER SYSTEM RESET polyglot.batch_bytes" -c "SELECT pg_reload_conf()" \
		-c "DROP DATABASE IF EXISTS $DB" > /dev/null 2>&1 || true
}
trap cleanup EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE docs (id bigint PRIMARY KEY, v int NOT NULL, body text NOT NULL);
INSERT INTO docs SELECT g, 0, left(repeat(md5(g::text), $SIZE / 32 + 1), $SIZE)
  FROM generate_series(1, $ROWS) g;
SELECT polyglot.sync('docs', 'cache',
  '{"key": "bench:bb:{id}", "mode": "publish", "channel": "bench:batch_bytes:nobody"}',
  backfill => false) AS route \gset
SELECT polyglot.pause(:route) \gset
VACUUM ANALYZE docs;
SQL
ROUTE=$(psql_q -At -c "SELECT polyglot._route('docs', 'cache')")
ROWLEN=$(psql_q -At -c "SELECT octet_length(row_to_json(t)::text) FROM docs t WHERE id = 1")
echo "== $ROWS rows of $ROWLEN bytes as JSON, route $ROUTE (publish mode, no subscriber)"
echo "== workers of the database: $(psql_q -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = current_database()")"
printf '%-22s %8s %12s %14s %14s %8s %10s\n' "polyglot.batch_bytes" "events" "idle (sum)" "peak, 1 worker" "peak (sum)" "seconds" "delivered"

run() {
	local label=$1 bound=$2 workers idle peak peaksum a sum w start end delivered0 delivered pending
	set_bound "$bound"
	psql_q -c "SELECT polyglot.pause($ROUTE)" -c "UPDATE docs SET v = v + 1" > /dev/null
	pending=$(psql_q -At -c "SELECT pending FROM polyglot.status WHERE route = $ROUTE")
	delivered0=$(psql_q -At -c "SELECT delivered FROM polyglot.status WHERE route = $ROUTE")
	workers=$(psql_q -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = current_database()")
	idle=0; for w in $workers; do idle=$((idle + $(kb "$w" RssAnon))); done
	peak=0; peaksum=$idle
	start=$(date +%s.%N)
	psql_q -c "SELECT polyglot.resume($ROUTE)" > /dev/null
	# bounded in time (20 minutes) and by the machine's free memory
	while :; do
		sum=0
		for w in $workers; do
			a=$(kb "$w" RssAnon 2> /dev/null || echo 0)
			[ "${a:-0}" -gt "$peak" ] && peak=$a
			sum=$((sum + ${a:-0}))
		done
		[ "$sum" -gt "$peaksum" ] && peaksum=$sum
		[ "$(psql_q -At -c "SELECT count(*) = 0 FROM polyglot.outbox")" = t ] && break
		# the machine is shared: stop the drain before it runs out of memory
		if [ "$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)" -lt 3145728 ]; then
			psql_q -c "SELECT polyglot.pause($ROUTE)" > /dev/null
			echo "stopped: less than 3 GB of memory left on the machine" >&2; break
		fi
		if [ "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { print (n - s > 1200) }')" = 1 ]; then
			echo "gave up after 20 minutes" >&2; break
		fi
		sleep 0.05
	done
	end=$(date +%s.%N)
	delivered=$(psql_q -At -c "SELECT delivered FROM polyglot.status WHERE route = $ROUTE")
	printf '%-22s %8s %12s %14s %14s %8s %10s\n' "$label" "$pending" "$(mb "$idle")" "$(mb "$peak")" \
		"$(mb "$peaksum")" "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')" \
		"$((delivered - delivered0))"
}

run "16MB (default)" 16MB
run "off (2TB)" 2147483647kB
