#!/usr/bin/env bash
#
# bench/sync_redis.sh - what sync to Redis costs, as ratios against
# baselines measured in the same run (absolute times on these machines are
# noise; ratios are not).
#
#   1. write overhead, pgbench single-row INSERT and UPDATE:
#      synced table (C capture trigger) vs the same table unsynced vs a
#      PL/pgSQL trigger inserting to_jsonb(NEW) into an outbox table
#   2. INSERT ... SELECT of 100k rows: synced vs unsynced
#   3. drain of 100k pending events to Redis vs redis-benchmark's pipelined
#      SET of as many keys of the same size, same pipeline depth, on the
#      same server
#
# Runs against the local stack (test/stack.sh start), in database "bench",
# which it recreates.  Not a test: it never fails on a timing.
#
# Usage: [SYNC_COMMIT=on|off] bench/sync_redis.sh [seconds per pgbench run, default 15] [rounds, default 3]
# SYNC_COMMIT (default off) is synchronous_commit for the pgbench runs: off
# makes them CPU-bound, which shows the CPU cost of capture; on is the
# durable default, where WAL flushes dominate.

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
SECS=${1:-15}
ROUNDS=${2:-3}
DB=bench
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
-- three identical tables: plain, synced by pg_polyglot, DIY PL/pgSQL outbox
CREATE TABLE t_plain (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), stock int, updated timestamptz DEFAULT now());
CREATE TABLE t_synced (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_plpgsql (LIKE t_plain INCLUDING ALL);
CREATE TABLE diy_outbox (id bigserial PRIMARY KEY, tbl text, op text, row jsonb, at timestamptz DEFAULT now());
CREATE FUNCTION diy_capture() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO diy_outbox (tbl, op, row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
  ELSE
    INSERT INTO diy_outbox (tbl, op, row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END \$\$;
CREATE TRIGGER diy AFTER INSERT OR UPDATE OR DELETE ON t_plpgsql FOR EACH ROW EXECUTE FUNCTION diy_capture();
SELECT polyglot.sync('t_synced', 'cache', '{"key": "bench:{id}"}') AS route \gset
-- capture only: delivery would compete with pgbench for the two cores
SELECT polyglot.pause(:route);
SQL
ROUTE=$(psql_q -At -c "SELECT polyglot._route('t_synced', 'cache')")

cat > "$TMP/insert.sql" <<'SQL'
\set id random(1, 1000000000)
INSERT INTO :tbl (id, name, price, stock) VALUES (:id, 'product ' || :id, 9.99, 10) ON CONFLICT DO NOTHING;
SQL
cat > "$TMP/update.sql" <<'SQL'
\set id random(1, 100000)
UPDATE :tbl SET stock = stock + 1, updated = now() WHERE id = :id;
SQL

reset_tables() {
	psql_q -c "TRUNCATE t_plain, t_synced, t_plpgsql, diy_outbox" \
		-c "DELETE FROM polyglot.outbox" \
		-c "INSERT INTO t_plain (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10 FROM generate_series(1, 100000) g" \
		-c "INSERT INTO t_synced SELECT * FROM t_plain" -c "INSERT INTO t_plpgsql SELECT * FROM t_plain" \
		-c "DELETE FROM polyglot.outbox" -c "TRUNCATE diy_outbox" -c "VACUUM ANALYZE"
}

tps() { # script table
	PGOPTIONS="-c synchronous_commit=${SYNC_COMMIT:-off}" pgbench -n -c 2 -j 2 -T "$SECS" -D tbl="$2" -f "$TMP/$1.sql" "$DB" 2>/dev/null |
		awk '/^tps = / { print $3 }'
}

echo "== 1. write overhead: pgbench, 2 clients, synchronous_commit ${SYNC_COMMIT:-off}, ${SECS}s per run, $ROUNDS rounds (median tps)"
for kind in insert update; do
	: > "$TMP/plain"; : > "$TMP/synced"; : > "$TMP/plpgsql"
	for r in $(seq 1 "$ROUNDS"); do
		reset_tables
		# alternate the order so drift in the machine spreads evenly
		for t in plain synced plpgsql; do tps "$kind" "t_$t" >> "$TMP/$t"; done
	done
	p=$(median < "$TMP/plain"); s=$(median < "$TMP/synced"); d=$(median < "$TMP/plpgsql")
	printf '%-6s unsynced %8.0f tps | pg_polyglot %8.0f tps (%s of unsynced) | PL/pgSQL outbox %8.0f tps (%s of unsynced) | pg_polyglot / PL/pgSQL = %s\n' \
		"$kind" "$p" "$s" "$(ratio "$s" "$p")" "$d" "$(ratio "$d" "$p")" "$(ratio "$s" "$d")"
done

echo "== 2. INSERT ... SELECT of 100k rows, $ROUNDS rounds (median ms)"
: > "$TMP/ip"; : > "$TMP/is"
for r in $(seq 1 "$ROUNDS"); do
	psql_q -c "TRUNCATE t_plain, t_synced" -c "DELETE FROM polyglot.outbox" -c "VACUUM polyglot.outbox"
	for t in plain synced; do
		psql_q -At -c '\timing on' \
			-c "INSERT INTO t_$t (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10 FROM generate_series(1, 100000) g" |
			awk '/^Time:/ { print $2 }' >> "$TMP/i${t:0:1}"
	done
done
p=$(median < "$TMP/ip"); s=$(median < "$TMP/is")
printf 'unsynced %.0f ms | synced %.0f ms | synced / unsynced = %s\n' "$p" "$s" "$(ratio "$s" "$p")"

echo "== 3. drain of 100k events to Redis vs redis-benchmark (pipelined SET)"
BATCH=$(psql_q -At -c "SHOW polyglot.batch_size")
psql_q -c "TRUNCATE t_synced" -c "DELETE FROM polyglot.outbox" -c "VACUUM polyglot.outbox" \
	-c "INSERT INTO t_synced (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10 FROM generate_series(1, 100000) g"
SIZE=$(psql_q -At -c "SELECT avg(length(row_to_json(t)::text))::int FROM t_synced t")
redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null
# one untimed drain first: the worker's first batches of a route connect to
# Redis and prepare their plans, which redis-benchmark's timing leaves out too
psql_q -c "UPDATE t_synced SET stock = stock + 1" -c "SELECT polyglot.resume($ROUTE)" >/dev/null
until [ "$(psql_q -At -c 'SELECT count(*) FROM polyglot.outbox')" = 0 ]; do sleep 0.1; done
psql_q -c "SELECT polyglot.pause($ROUTE)" >/dev/null
: > "$TMP/drain"; : > "$TMP/rb"
for r in $(seq 1 "$ROUNDS"); do
	psql_q -c "VACUUM t_synced" -c "UPDATE t_synced SET stock = stock + 1"   # 100k pending events
	# timed inside one session that polls every 2 ms: starting a psql and a
	# backend per poll would take CPU from the worker on a 2-core machine
	psql_q -At >> "$TMP/drain" <<SQL
SELECT clock_timestamp() AS t0 \\gset
SELECT polyglot.resume($ROUTE) \\g /dev/null
DO \$\$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) LOOP PERFORM pg_sleep(0.002); END LOOP; END \$\$;
SELECT round(100000 / extract(epoch FROM clock_timestamp() - :'t0'));
SELECT polyglot.pause($ROUTE) \\g /dev/null
SQL
	redis-benchmark -p "$REDIS_PORT" -t set -n 100000 -r 100000 -P "$BATCH" -c 1 -d "$SIZE" -q 2>/dev/null |
		tr '\r' '\n' | awk '/^SET:/ && /requests per second/ { print $2 }' | tail -1 >> "$TMP/rb"
done
d=$(median < "$TMP/drain"); b=$(median < "$TMP/rb")
printf 'pg_polyglot drain %.0f events/s | redis-benchmark SET -P %s -d %s %.0f ops/s | drain / redis-benchmark = %s\n' \
	"$d" "$BATCH" "$SIZE" "$b" "$(ratio "$d" "$b")"

# leave the stack as it was
psql -X -q -d postgres -c "DROP DATABASE $DB"
for p in bench key; do redis-cli -p "$REDIS_PORT" --scan --pattern "$p:*" | xargs -r -n 5000 redis-cli -p "$REDIS_PORT" DEL >/dev/null; done
