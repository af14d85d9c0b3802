#!/usr/bin/env bash
#
# bench/scan_mongo.sh - MongoDB foreign table reads (the stack's FerretDB),
# with pushdown on and off, against a raw libmongoc find of the same
# documents from the same server (bench/mongo_raw_find.c, built here),
# measured in the same run.  The full scan is also compared with a raw find
# that projects every column's field (what the wrapper sent before it sent
# FerretDB an aggregation pipeline) and with the raw aggregate of an empty
# pipeline (what it sends now).  Also batched against row-by-row INSERT.
#
# Data: N generated documents (test/tools/mongo.py seed: int _id, name, qty
# 0..99, price, city, active, tags, dims, note), and a copy of their _id
# and name keyed by strings (FerretDB's SQLite backend serves only string
# and ObjectId _id equality from an index).  Each figure is the median of
# R runs; queries are timed inside one session.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_scan", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/scan_mongo.sh [N, default 100000] [R, default 5]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
R=${2:-5}
DB=bench_scan
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cc -O2 -o "$TMP/find" bench/mongo_raw_find.c $(pkg-config --cflags --libs libmongoc-1.0)
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
# raw COLLECTION FILTER [OPTIONS]: a find's median ms; raw_pipeline COLLECTION PIPELINE: an aggregate's
raw() { "$TMP/find" "$MONGO_URI" bench_scan "$1" "$2" "$R" ${3:+"$3"} 2>/dev/null | awk '{ print $2 }'; }
raw_pipeline() { "$TMP/find" "$MONGO_URI" bench_scan "$1" --pipeline "$2" "$R" 2>/dev/null | awk '{ print $2 }'; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$MONGO_TOOL drop bench_scan
$MONGO_TOOL seed bench_scan items "$N"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$MONGO_URI', database 'bench_scan');
CREATE FOREIGN TABLE items (_id int NOT NULL, name text NOT NULL, qty int NOT NULL,
                            price numeric, city text, active bool, tags text[],
                            w int OPTIONS (field 'dims.w'), note text)
  SERVER docs;
CREATE FOREIGN TABLE keyed (_id text, name text) SERVER docs;
CREATE FOREIGN TABLE written (_id int, name text, qty int) SERVER docs;
-- the median time of n runs of a query, in milliseconds
CREATE FUNCTION time_ms(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  t timestamptz;
  ms float8[] := '{}';
BEGIN
  FOR i IN 1..n LOOP
    t := clock_timestamp();
    EXECUTE q;
    ms := ms || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END \$\$;
INSERT INTO keyed SELECT 'k' || _id, name FROM items;
SQL

# the same query with pushdown on and off: "on_ms off_ms"
both() {
	psql_q -At -c "SET polyglot.mongo_pushdown = on" -c "SELECT round(time_ms(\$q\$$1\$q\$, $R)::numeric, 2)" \
		-c "SET polyglot.mongo_pushdown = off" -c "SELECT round(time_ms(\$q\$$1\$q\$, $R)::numeric, 2)" | paste -sd' '
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

printf 'server: %s, %d documents, median of %d runs, times in ms\n' \
	"$(psql_q -At -c "SELECT polyglot.ping('docs')->>'flavor'")" "$N" "$R"
printf '%-44s %10s %10s %10s %9s %9s\n' query pushdown no-push raw-find raw/push on/off
row() {
	read -r on off <<< "$(both "$2")"
	printf '%-44s %10s %10s %10s %9s %9s\n' "$1" "$on" "$off" "$3" "$(ratio "$3" "$on")" "$(ratio "$off" "$on")"
}
full=$(raw items '{}')
row "full scan, every column" "SELECT * FROM items" "$full"
row "qty = 7 (1%)" "SELECT * FROM items WHERE qty = 7" "$(raw items '{"qty": 7}')"
row "_id = 4242 (int _id)" "SELECT * FROM items WHERE _id = 4242" "$(raw items '{"_id": 4242}')"
row "_id = 'k4242' (string _id)" "SELECT * FROM keyed WHERE _id = 'k4242'" "$(raw keyed '{"_id": "k4242"}')"
row "count(*)" "SELECT count(*) FROM items" "$full"
row "ORDER BY qty DESC, _id LIMIT 10" "SELECT _id, qty FROM items ORDER BY qty DESC, _id LIMIT 10" "$full"
# the full scan again, beside the raw find with and without the projection
# of every column's field, and the raw aggregate, measured alternately
rate() { awk -v n="$N" -v ms="$1" 'BEGIN { printf "%.0f", n / ms * 1000 }'; }
read -r on off <<< "$(both "SELECT * FROM items")"
projected=$(raw items '{}' \
	'{"projection": {"_id": 1, "name": 1, "qty": 1, "price": 1, "city": 1, "active": 1, "tags": 1, "dims.w": 1, "note": 1}}')
full2=$(raw items '{}')
aggregate=$(raw_pipeline items '[]')
printf 'full scan rate: FDW %s rows/s (%s ms) | raw find without projection %s rows/s (%s ms, FDW / raw = %s; earlier %s ms, %s)\n' \
	"$(rate "$on")" "$on" "$(rate "$full2")" "$full2" "$(ratio "$full2" "$on")" "$full" "$(ratio "$full" "$on")"
printf '                raw find projecting every column %s rows/s (%s ms, FDW / raw = %s) | raw aggregate [] %s rows/s (%s ms, FDW / raw = %s)\n' \
	"$(rate "$projected")" "$projected" "$(ratio "$projected" "$on")" \
	"$(rate "$aggregate")" "$aggregate" "$(ratio "$aggregate" "$on")"

# INSERT: 20,000 rows at batch_size 1 and 100
ins() {
	$MONGO_TOOL drop bench_scan written
	psql_q -At -c "ALTER FOREIGN TABLE written OPTIONS (${2:-ADD} batch_size '$1')" \
		-c "SELECT round(time_ms('INSERT INTO written SELECT g, ''w'' || g, g FROM generate_series(1, 20000) g', 1)::numeric, 1)"
}
one=$(ins 1); hundred=$(ins 100 SET)
printf 'INSERT of 20000 rows: batch_size 1 %s ms, batch_size 100 %s ms (speed-up %s)\n' \
	"$one" "$hundred" "$(ratio "$one" "$hundred")"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
$MONGO_TOOL drop bench_scan
