#!/usr/bin/env bash
#
# bench/sync_mongo.sh - drain of N pending events to MongoDB (the stack's
# FerretDB) against a raw libmongoc bulk insert of the same documents to the
# same server, measured in the same run.
#
# The synced table is delivered once, then one UPDATE of every row leaves N
# pending events, whose drain is timed from resume() to an empty outbox
# (polled from one session).  Baselines (bench/mongo_raw_insert.c, built
# here), N documents of the same shape, 1000 at a time:
#   insert   into an empty collection (insert_many)
#   rewrite  over the same documents already there, the way pg_polyglot
#            writes to FerretDB (deleteMany of the _ids, then insert_many)
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_mongo", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/sync_mongo.sh [events, default 100000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
DB=bench_mongo
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cc -O2 -o "$TMP/raw" bench/mongo_raw_insert.c $(pkg-config --cflags --libs libmongoc-1.0)
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$MONGO_TOOL drop bench_mongo
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$MONGO_URI', database 'bench_mongo');
CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                       stock int, updated timestamptz DEFAULT '2024-11-24 00:00:00+00');
INSERT INTO products (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 10
  FROM generate_series(1, $N) g;
SELECT polyglot.sync('products', 'docs') \g /dev/null
DO \$\$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) LOOP PERFORM pg_sleep(0.01); END LOOP; END \$\$;
SELECT polyglot.pause(polyglot._route('products', 'docs')) \g /dev/null
SQL
ROUTE=$(psql_q -At -c "SELECT polyglot._route('products', 'docs')")

: > "$TMP/drain"; : > "$TMP/raw.out"; : > "$TMP/rewrite.out"
for r in $(seq 1 "$ROUNDS"); do
	psql_q -c "VACUUM products" -c "UPDATE products SET stock = stock + 1"
	psql_q -At >> "$TMP/drain" <<SQL
SELECT clock_timestamp() AS t0 \\gset
SELECT polyglot.resume($ROUTE) \\g /dev/null
DO \$\$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) LOOP PERFORM pg_sleep(0.002); END LOOP; END \$\$;
SELECT round($N / extract(epoch FROM clock_timestamp() - :'t0'));
SELECT polyglot.pause($ROUTE) \\g /dev/null
SQL
	"$TMP/raw" "$MONGO_URI" bench_mongo raw "$N" insert >> "$TMP/raw.out"
	"$TMP/raw" "$MONGO_URI" bench_mongo raw "$N" rewrite >> "$TMP/rewrite.out"
done
d=$(median < "$TMP/drain"); b=$(median < "$TMP/raw.out"); w=$(median < "$TMP/rewrite.out")
flavor=$(psql_q -At -c "SELECT polyglot.ping('docs')->>'flavor'")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf 'server: %s, %d events, %d rounds (medians)\n' "$flavor" "$N" "$ROUNDS"
printf 'pg_polyglot drain %.0f events/s | raw insert_many %.0f docs/s (drain / raw = %s) | raw rewrite %.0f docs/s (drain / rewrite = %s)\n' \
	"$d" "$b" "$(ratio "$d" "$b")" "$w" "$(ratio "$d" "$w")"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
$MONGO_TOOL drop bench_mongo
