#!/usr/bin/env bash
#
# bench/fanout.sh - the fan-out of a change to a related row: one UPDATE of
# a brand that N products include (route option "include") re-delivers N
# product documents to Redis.  Measured from the UPDATE's commit to the
# last document delivered (an empty outbox, polled from one session),
# against, in the same run:
#   plain     N products updated in one statement, synced by a plain route
#             (no include): N events drained, the drain of issue 16
#   document  the same UPDATE of N products whose route includes the brand:
#             N events, each document built with its brand
#   fan-out   one UPDATE of the brand: its fan-out row expanded by the
#             worker into N document keys, 10,000 per transaction, then
#             delivered as the document drain is
# While the fan-out runs, 20 single-row UPDATEs of the brands table (another
# brand: one of this brand would fan out again) and of the brand's products
# are timed: the fan-out holds no lock they wait for.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_fanout", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/fanout.sh [N, default 100000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
DB=bench_fanout
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
wait_empty='DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) OR EXISTS (SELECT 1 FROM polyglot.route_state WHERE backfill_started_at IS NOT NULL AND backfill_finished_at IS NULL) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$;'
# timed STATEMENT: runs it (its own transaction), waits for an empty
# outbox; prints N / seconds from its commit
timed() {
	psql_q -At <<SQL
$1;
SELECT clock_timestamp() AS t0 \\gset
$wait_empty
SELECT round($N / extract(epoch FROM clock_timestamp() - :'t0'));
SQL
}
clean_redis() { redis-cli -p "$REDIS_PORT" --scan --pattern 'bfan:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL > /dev/null; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
clean_redis
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE brands (id int PRIMARY KEY, name text NOT NULL, country text);
CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), stock int,
                       brand_id int REFERENCES brands);
CREATE INDEX ON products (brand_id);
CREATE TABLE plain_products (LIKE products INCLUDING ALL);
INSERT INTO brands VALUES (1, 'Acme', 'US'), (2, 'Bolt', 'DE');
INSERT INTO products SELECT g, 'product ' || g, 9.99, 10, 1 FROM generate_series(1, $N) g;
INSERT INTO plain_products SELECT * FROM products;
VACUUM ANALYZE;
SELECT polyglot.sync('plain_products', 'cache', '{"key": "bfan:plain:{id}"}') \g /dev/null
SELECT polyglot.sync('products', 'cache', '{"key": "bfan:doc:{id}", "include": {"brand": {"table": "brands", "exclude": ["id"]}}}') \g /dev/null
$wait_empty
SQL

: > "$TMP/plain"; : > "$TMP/doc"; : > "$TMP/fan"; : > "$TMP/lat"
for r in $(seq 1 "$ROUNDS"); do
	psql_q -c "VACUUM plain_products" -c "VACUUM products"
	timed "UPDATE plain_products SET stock = stock + 1" >> "$TMP/plain"
	timed "UPDATE products SET stock = stock + 1" >> "$TMP/doc"
	psql_q -c "VACUUM products"
	# the fan-out, with writes to the brand and its products beside it
	( sleep 0.3; for i in $(seq 1 10); do
		psql_q -At <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
\timing on
UPDATE brands SET country = country WHERE id = 2;
UPDATE products SET stock = stock WHERE id = $((i * 997 % N + 1));
SQL
	done ) > "$TMP/lat.$r" &
	timed "UPDATE brands SET name = 'Acme $r' WHERE id = 1" >> "$TMP/fan"
	wait
	cat "$TMP/lat.$r" >> "$TMP/lat"
done
# the documents are those of the tables
drift=$(psql_q -At -c "SELECT count(*) FROM polyglot.verify(polyglot.route('products@cache'))")
sample=$(redis-cli -p "$REDIS_PORT" GET "bfan:doc:$N")

p=$(median < "$TMP/plain"); d=$(median < "$TMP/doc"); f=$(median < "$TMP/fan")
printf '%d products of one brand, %d rounds (medians), Redis json\n' "$N" "$ROUNDS"
printf 'plain drain:    %.0f events/s (%d rows updated, route without include)\n' "$p" "$N"
printf 'document drain: %.0f documents/s (the same update, route with include) | / plain = %s\n' "$d" "$(ratio "$d" "$p")"
printf 'fan-out:        %.0f documents/s (one brand UPDATE to the last document: %.2f s) | / plain = %s, / document drain = %s\n' \
	"$f" "$(awk -v n="$N" -v f="$f" 'BEGIN { print n / f }')" "$(ratio "$f" "$p")" "$(ratio "$f" "$d")"
printf 'writes beside the fan-out: %d UPDATEs of brands and of the products, max %s ms, median %s ms\n' \
	"$(wc -l < "$TMP/lat")" "$(sort -n "$TMP/lat" | tail -1)" "$(median < "$TMP/lat")"
printf 'verify after the runs: %s keys differ; a document: %s\n' "$drift" "$sample"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
clean_redis
