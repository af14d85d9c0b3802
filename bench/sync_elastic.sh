#!/usr/bin/env bash
#
# bench/sync_elastic.sh - drain of N pending events to OpenSearch and to
# Elasticsearch (the stack's), against a raw _bulk load of the same
# documents by curl with the same batch size to the same server, measured
# in the same run.
#
# pg_polyglot: N rows inserted into a synced table while its route is
# paused, then timed from resume() to an empty outbox (polled from one
# session), into a new index.  Baseline: the same rows as _bulk index
# actions (with _id) in files of polyglot.batch_size (1000) documents, sent
# by one curl process over one kept-alive connection (--next), into a new
# index.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_elastic", which it recreates.  Not a test: it never fails on a
# timing.
#
# Usage: bench/sync_elastic.sh [N, default 100000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
DB=bench_elastic
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BATCH=1000

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
wait_empty='DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$;'

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$OPENSEARCH_URL');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$ELASTICSEARCH_URL');
CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                       stock int, updated timestamptz DEFAULT '2024-11-24 00:00:00+00');
SQL
# the baseline's documents, as pg_polyglot renders them
psql_q -At -F $'\n' -c "SELECT json_build_object('index', json_build_object('_id', g::text)),
                     json_build_object('id', g, 'name', 'product ' || g, 'price', 9.99, 'stock', 11,
                                       'updated', '2024-11-24T00:00:00+00:00')
                FROM generate_series(1, $N) g" > "$TMP/all.ndjson"
split -l $((BATCH * 2)) -d -a 4 "$TMP/all.ndjson" "$TMP/chunk."

for target in os es; do
	url=$([ "$target" = os ] && echo "$OPENSEARCH_URL" || echo "$ELASTICSEARCH_URL")
	: > "$TMP/drain.$target"; : > "$TMP/raw.$target"
	for r in $(seq 1 "$ROUNDS"); do
		curl -s -o /dev/null -XDELETE "$url/bench_sync,bench_raw?ignore_unavailable=true"
		psql_q -c "SELECT polyglot.unsync('products', server_name) FROM polyglot.routes WHERE source_relid = 'products'::regclass" \
			-c "TRUNCATE products" > /dev/null
		route=$(psql_q -At -c "SELECT polyglot.sync('products', '$target', '{\"index\": \"bench_sync\"}', false)")
		psql_q -c "SELECT polyglot.pause($route)" \
			-c "INSERT INTO products (id, name, price, stock) SELECT g, 'product ' || g, 9.99, 11 FROM generate_series(1, $N) g" \
			-c "VACUUM ANALYZE products" > /dev/null
		psql_q -At >> "$TMP/drain.$target" <<SQL
SELECT clock_timestamp() AS t0 \\gset
SELECT polyglot.resume($route) \\g /dev/null
$wait_empty
SELECT round($N / extract(epoch FROM clock_timestamp() - :'t0'));
SQL
		# raw: every chunk through one curl process and connection
		args=()
		for f in "$TMP"/chunk.*; do
			[ ${#args[@]} -gt 0 ] && args+=(--next)
			args+=(-s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/x-ndjson' -XPOST "$url/bench_raw/_bulk" --data-binary "@$f")
		done
		t0=$(date +%s.%N)
		curl "${args[@]}" > "$TMP/codes"
		t1=$(date +%s.%N)
		grep -qv '^200$' "$TMP/codes" && echo "warning: a raw _bulk request failed: $(sort "$TMP/codes" | uniq -c | tr '\n' ' ')" >&2
		awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }' >> "$TMP/raw.$target"
		for i in bench_sync bench_raw; do
			curl -s -XPOST "$url/$i/_refresh" -o /dev/null
			count=$(curl -s "$url/$i/_count" | sed 's/.*"count":\([0-9]*\).*/\1/')
			[ "$count" = "$N" ] || echo "warning: $target index $i has $count documents, not $N" >&2
		done
	done
	d=$(median < "$TMP/drain.$target"); b=$(median < "$TMP/raw.$target")
	printf '%s: %d events, %d rounds (medians): drain %.0f events/s | raw curl _bulk %.0f docs/s | drain / raw = %s\n' \
		"$target" "$N" "$ROUNDS" "$d" "$b" "$(ratio "$d" "$b")"
	curl -s -o /dev/null -XDELETE "$url/bench_sync,bench_raw?ignore_unavailable=true"
done

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
