#!/usr/bin/env bash
#
# bench/held_snapshot.sh - the drain of a backlog while something holds
# back xmin (a long transaction, pg_dump, a replication slot), against the
# same drain without, measured in the same run.
#
# A backlog of N outbox rows of one key each (as N single-row transactions
# write it) waits on a paused Redis route; the route is resumed and timed
# until nothing is pending.  In the "held" run a REPEATABLE READ transaction
# of another session holds its snapshot from before the backlog was written
# to the end of the drain, so the index entries of acknowledged rows cannot
# be removed.  Prints both times and their ratio (held / free; 1 is ideal).
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_snapshot", which it recreates.  Not a test: it never fails on a
# timing.
#
# Usage: bench/held_snapshot.sh [events, default 100000] [rounds, default 1]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-1}
DB=bench_snapshot
HOLDER=

psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
stop_holders()
{
	psql -X -q -At -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench_snapshot_holder'" >/dev/null
}
cleanup() { [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null; stop_holders; }
trap cleanup EXIT

stop_holders
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE items (id int PRIMARY KEY, v text);
INSERT INTO items SELECT g, 'value ' || g FROM generate_series(1, $N) g;
SELECT polyglot.sync('items', 'cache', '{"key": "bench:snap:{id}"}', false);
SELECT polyglot.pause(1);
SQL

# one drain of N events; with "held", under a snapshot held from before the
# backlog was written; prints the seconds it took
drain()
{
	local held=$1 t0 t1
	if [ "$held" = held ]; then
		PGAPPNAME=bench_snapshot_holder psql -X -q -d "$DB" -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
			-c "SELECT count(*) FROM items" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
		HOLDER=$!
		until [ "$(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_snapshot_holder' AND backend_xmin IS NOT NULL AND query LIKE '%pg_sleep%'")" -ge 1 ]; do
			sleep 0.1
		done
	fi
	psql_q -c "INSERT INTO polyglot.outbox (route_id, op, key, nkeys, slot, nslots)
	           SELECT 1, 'U', ARRAY[ARRAY[g::text]], 1, polyglot._slot(ARRAY[g::text]), polyglot._nslots()
	           FROM generate_series(1, $N) g"
	# statistics as autovacuum would soon have them: the first drain is
	# otherwise planned on an empty outbox
	psql_q -c "ANALYZE polyglot.outbox"
	t0=$(date +%s.%N)
	psql_q -c "SELECT polyglot.resume(1)" >/dev/null
	# bounded: give up after 20 minutes
	for _ in $(seq 1 12000); do
		[ "$(psql_q -c "SELECT pending FROM polyglot.status WHERE route = 1")" = 0 ] && break
		sleep 0.1
	done
	t1=$(date +%s.%N)
	psql_q -c "SELECT polyglot.pause(1)" >/dev/null
	if [ -n "$HOLDER" ]; then
		kill "$HOLDER" 2>/dev/null || true
		wait "$HOLDER" 2>/dev/null || true
		HOLDER=
		stop_holders
	fi
	psql_q -c "VACUUM polyglot.outbox"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

for r in $(seq 1 "$ROUNDS"); do
	free=$(drain free)
	held=$(drain held)
	echo "round $r: drain of $N events: free ${free}s, snapshot held ${held}s, ratio $(awk -v a="$held" -v b="$free" 'BEGIN { printf "%.2f", a / b }')"
done
redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:snap:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null
psql -X -q -d postgres -c "DROP DATABASE $DB"
