#!/usr/bin/env bash
#
# bench/sync_mongo.sh - drains of pending events to MongoDB (the stack's
# FerretDB) against raw libmongoc writes of the same documents to the same
# server, measured in the same run.
#
# Two workloads, each timed from resume() to an empty outbox (polled from
# one session):
#   insert  N rows inserted into a synced table whose collection is empty:
#           N INSERT events.  Baseline: insert_many of N documents of the
#           same shape into an empty collection, 1000 at a time.
#   update  M rows already delivered, then one UPDATE of every row: M
#           UPDATE events, each replacing a document.  Baseline: the same
#           replacement done raw, the way pg_polyglot writes to FerretDB
#           (deleteMany of a batch's _ids, then insert_many).
# Both baselines are bench/mongo_raw_insert.c, built here.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_mongo", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/sync_mongo.sh [N, default 100000] [M, default 20000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
M=${2:-20000}
ROUNDS=${3:-3}
DB=bench_mongo
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cc -O2 -o "$TMP/raw" bench/mongo_raw_insert.c $(pkg-config --cflags --libs libmongoc-1.0)
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
# an empty outbox, and no backfill still to enqueue rows (a backfill goes in
# steps: the outbox can be empty between two)
wait_empty='DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) OR EXISTS (SELECT 1 FROM polyglot.route_state WHERE backfill_started_at IS NOT NULL AND backfill_finished_at IS NULL) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$;'
# timed_drain ROUTE EVENTS: resume, wait for an empty outbox, pause; prints events/s
timed_drain() {
	psql_q -At <<SQL
SELECT clock_timestamp() AS t0 \\gset
SELECT polyglot.resume($1) \\g /dev/null
$wait_empty
SELECT round($2 / extract(epoch FROM clock_timestamp() - :'t0'));
SELECT polyglot.pause($1) \\g /dev/null
SQL
}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$MONGO_TOOL drop bench_mongo
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$MONGO_URI', database 'bench_mongo');
CREATE TABLE fresh (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                    stock int, updated timestamptz DEFAULT '2024-11-24 00:00:00+00');
CREATE TABLE products (LIKE fresh INCLUDING ALL);
INSERT INTO products (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10
  FROM generate_series(1, $M) g;
SELECT polyglot.sync('products', 'docs') \g /dev/null
$wait_empty
SELECT polyglot.pause(polyglot._route('products', 'docs')) \g /dev/null
SQL
PRODUCTS=$(psql_q -At -c "SELECT polyglot._route('products', 'docs')")

: > "$TMP/ins"; : > "$TMP/ins_raw"; : > "$TMP/upd"; : > "$TMP/upd_raw"
for r in $(seq 1 "$ROUNDS"); do
	# insert: an empty table, a new route to an empty collection, N new rows
	# (a TRUNCATE would be delivered as a delete of every key: slow on FerretDB)
	psql_q -c "SELECT polyglot.unsync('fresh', 'docs') FROM polyglot.routes WHERE source_relid = 'fresh'::regclass" \
		-c "TRUNCATE fresh" > /dev/null
	$MONGO_TOOL drop bench_mongo fresh
	psql_q -c "SELECT polyglot.sync('fresh', 'docs', '{}', false)" > /dev/null
	FRESH=$(psql_q -At -c "SELECT polyglot._route('fresh', 'docs')")
	psql_q -c "SELECT polyglot.pause($FRESH)" > /dev/null
	psql_q -c "INSERT INTO fresh (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 11 FROM generate_series(1, $N) g" \
		-c "VACUUM ANALYZE fresh"
	timed_drain "$FRESH" "$N" >> "$TMP/ins"
	"$TMP/raw" "$MONGO_URI" bench_mongo raw "$N" insert >> "$TMP/ins_raw"

	# update: every delivered row changes once
	psql_q -c "VACUUM products" -c "UPDATE products SET stock = stock + 1"
	timed_drain "$PRODUCTS" "$M" >> "$TMP/upd"
	"$TMP/raw" "$MONGO_URI" bench_mongo rawupd "$M" insert > /dev/null
	"$TMP/raw" "$MONGO_URI" bench_mongo rawupd "$M" rewrite >> "$TMP/upd_raw"
done
flavor=$(psql_q -At -c "SELECT polyglot.ping('docs')->>'flavor'")
i=$(median < "$TMP/ins"); ib=$(median < "$TMP/ins_raw")
u=$(median < "$TMP/upd"); ub=$(median < "$TMP/upd_raw")
printf 'server: %s, %d rounds (medians)\n' "$flavor" "$ROUNDS"
printf 'insert: %d events: drain %.0f events/s | raw insert_many %.0f docs/s | drain / raw = %s\n' \
	"$N" "$i" "$ib" "$(ratio "$i" "$ib")"
printf 'update: %d events: drain %.0f events/s | raw deleteMany + insert_many %.0f docs/s | drain / raw = %s\n' \
	"$M" "$u" "$ub" "$(ratio "$u" "$ub")"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
$MONGO_TOOL drop bench_mongo
