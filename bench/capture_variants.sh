#!/usr/bin/env bash
#
# bench/capture_variants.sh - row-level capture (the C trigger pg_polyglot
# installs) against statement-level capture with transition tables (one
# INSERT ... SELECT into the outbox per statement), for a multi-row
# INSERT ... SELECT of 100k rows and for single-row pgbench inserts.  The
# statement-level variant is written in PL/pgSQL: its cost is the executor's
# INSERT ... SELECT over the transition table, which a C version would run
# through SPI just the same.  Ratios are against the unsynced table.
#
# Usage: bench/capture_variants.sh [rounds, default 3] [pgbench seconds, default 10]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
ROUNDS=${1:-3}
SECS=${2:-10}
DB=bench_capture
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE t_plain (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), stock int, updated timestamptz DEFAULT now());
CREATE TABLE t_row (LIKE t_plain INCLUDING ALL);
CREATE TABLE t_stmt (LIKE t_plain INCLUDING ALL);
SELECT polyglot.pause(polyglot.sync('t_row', 'cache', '{"key": "cv:{id}"}'));
-- statement-level: a route row for bookkeeping, transition-table triggers
INSERT INTO polyglot.routes (id, source_relid, source_name, server_oid, server_name, store, key_columns, owner, paused)
SELECT 999, 't_stmt'::regclass, 'public.t_stmt', oid, srvname, 'redis', '{id}', 10, true
FROM pg_foreign_server WHERE srvname = 'cache';
CREATE FUNCTION stmt_capture_new() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO polyglot.outbox (route_id, op, key) SELECT 999, 'I', ARRAY[n.id::text] FROM new_rows n;
  RETURN NULL;
END \$\$;
CREATE TRIGGER cap AFTER INSERT ON t_stmt REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stmt_capture_new();
SQL

echo "== INSERT ... SELECT of 100k rows, $ROUNDS rounds (median ms)"
for t in plain row stmt; do : > "$TMP/$t"; done
for r in $(seq 1 "$ROUNDS"); do
	q -c "TRUNCATE t_plain, t_row, t_stmt" -c "DELETE FROM polyglot.outbox" -c "VACUUM polyglot.outbox"
	for t in plain row stmt; do
		q -c '\timing on' -c "INSERT INTO t_$t (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10 FROM generate_series(1, 100000) g" |
			awk '/^Time:/ { print $2 }' >> "$TMP/$t"
	done
done
p=$(median < "$TMP/plain"); r=$(median < "$TMP/row"); s=$(median < "$TMP/stmt")
awk -v p="$p" -v r="$r" -v s="$s" 'BEGIN { printf "unsynced %.0f ms | row-level C %.0f ms (%.2fx) | statement-level transition table %.0f ms (%.2fx)\n", p, r, r / p, s, s / p }'

echo "== pgbench single-row INSERT, 2 clients, ${SECS}s, synchronous_commit off (median tps)"
cat > "$TMP/ins.sql" <<'SQL'
\set id random(1, 1000000000)
INSERT INTO :tbl (id, name, price, stock) VALUES (:id, 'product ' || :id, 9.99, 10) ON CONFLICT DO NOTHING;
SQL
for t in plain row stmt; do : > "$TMP/p$t"; done
for r in $(seq 1 "$ROUNDS"); do
	for t in plain row stmt; do
		PGOPTIONS='-c synchronous_commit=off' pgbench -n -c 2 -j 2 -T "$SECS" -D tbl="t_$t" -f "$TMP/ins.sql" "$DB" 2>/dev/null |
			awk '/^tps = / { print $3 }' >> "$TMP/p$t"
	done
done
p=$(median < "$TMP/pplain"); r=$(median < "$TMP/prow"); s=$(median < "$TMP/pstmt")
awk -v p="$p" -v r="$r" -v s="$s" 'BEGIN { printf "unsynced %.0f tps | row-level C %.0f tps (%.2f) | statement-level transition table %.0f tps (%.2f)\n", p, r, r / p, s, s / p }'
psql -X -q -d postgres -c "DROP DATABASE $DB"
