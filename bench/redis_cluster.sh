#!/usr/bin/env bash
#
# bench/redis_cluster.sh - pg_polyglot on the stack's Redis Cluster (three
# primaries), against one Redis server and against raw hiredis, in the
# same run:
#   drain    N rows updated in one statement, the events drained to one
#            Redis server and to the cluster (json mode): rows/s from the
#            UPDATE's commit to an empty outbox, and the cluster's with
#            wait_replicas 1 (a WAIT on every primary written, each batch)
#   lookup   a foreign-table lookup of 1,000 keys (key = ANY(array)) on the
#            cluster and on the one server, against the same GETs sent by
#            raw hiredis (bench/redis_cluster_raw.c, bench/redis_raw.c,
#            built here): on the cluster one pipeline per primary, all
#            written before any reply is read
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_cluster", which it recreates.  Not a test: it never fails on a timing.
#
# Usage: bench/redis_cluster.sh [N, default 100000] [rounds, default 3]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
LOOKUPS=1000
RUNS=21
DB=bench_cluster
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SEED_PORT=${REDIS_CLUSTER_PORTS%% *}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
wait_empty='DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM polyglot.outbox) OR EXISTS (SELECT 1 FROM polyglot.route_state WHERE backfill_started_at IS NOT NULL AND backfill_finished_at IS NULL) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$;'
# drained TABLE: updates its N rows, waits for an empty outbox; prints rows/s
drained() {
	psql_q -At <<SQL
UPDATE $1 SET n = n + 1;
SELECT clock_timestamp() AS t0 \\gset
$wait_empty
SELECT round($N / extract(epoch FROM clock_timestamp() - :'t0'));
SQL
}
# looked_up TABLE: the median ms of RUNS lookups of keys 1..LOOKUPS
looked_up() {
	psql_q -At <<SQL
DO \$\$
DECLARE t0 timestamptz; ms float8[] := '{}'; n bigint; keys text[] := ARRAY(SELECT g::text FROM generate_series(1, $LOOKUPS) g);
BEGIN
  FOR i IN 1..$RUNS LOOP
    t0 := clock_timestamp();
    SELECT count(*) INTO n FROM $1 WHERE key = ANY (keys);
    ms := ms || extract(epoch FROM clock_timestamp() - t0) * 1000;
    IF n <> $LOOKUPS THEN RAISE EXCEPTION 'found % keys of %', n, $LOOKUPS; END IF;
  END LOOP;
  RAISE NOTICE '%', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY m) FROM unnest(ms) m);
END \$\$;
SQL
}
clean() {
	redis-cli -p "$REDIS_PORT" --scan --pattern 'bcl:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL > /dev/null
	for p in $REDIS_CLUSTER_PORTS; do
		redis-cli -p "$p" --scan --pattern 'bcl*' | xargs -r -n 1 redis-cli -c -p "$p" DEL > /dev/null 2>&1 || true
	done
}

cc -O2 -o "$TMP/cluster_raw" bench/redis_cluster_raw.c $(pkg-config --cflags --libs hiredis)
cc -O2 -o "$TMP/raw" bench/redis_raw.c $(pkg-config --cflags --libs hiredis)

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
clean
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER one FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE SERVER cl FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster '$REDIS_CLUSTER_NODES');
CREATE SERVER cl_wait FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster '$REDIS_CLUSTER_NODES', wait_replicas '1');
CREATE TABLE one_items (id int PRIMARY KEY, name text, n int);
CREATE TABLE cl_items (LIKE one_items INCLUDING ALL);
CREATE TABLE wait_items (LIKE one_items INCLUDING ALL);
INSERT INTO one_items SELECT g, 'item ' || g, 0 FROM generate_series(1, $N) g;
INSERT INTO cl_items SELECT * FROM one_items;
INSERT INTO wait_items SELECT * FROM one_items;
SELECT polyglot.sync('one_items', 'one', '{"key": "bcl:{id}"}');
SELECT polyglot.sync('cl_items', 'cl', '{"key": "bcl:{id}"}');
SELECT polyglot.sync('wait_items', 'cl_wait', '{"key": "bclw:{id}"}');
CREATE FOREIGN TABLE one_keys (key text, value text) SERVER one OPTIONS (prefix 'bcl:');
CREATE FOREIGN TABLE cl_keys (key text, value text) SERVER cl OPTIONS (prefix 'bcl:');
SQL
psql_q -c "$wait_empty"

for r in $(seq 1 "$ROUNDS"); do
	drained one_items >>"$TMP/one"
	drained cl_items >>"$TMP/cl"
	drained wait_items >>"$TMP/wait"
	looked_up one_keys 2>&1 | sed -n 's/.*NOTICE: *//p' >>"$TMP/one_lookup"
	looked_up cl_keys 2>&1 | sed -n 's/.*NOTICE: *//p' >>"$TMP/cl_lookup"
	"$TMP/raw" "$REDIS_PORT" 0 get bcl: "$LOOKUPS" "$RUNS" | awk '{ print $1 }' >>"$TMP/one_raw"
	"$TMP/cluster_raw" 127.0.0.1 "$SEED_PORT" bcl: "$LOOKUPS" "$RUNS" | awk '{ print $1 }' >>"$TMP/cl_raw"
done

one=$(median <"$TMP/one"); cl=$(median <"$TMP/cl"); wait=$(median <"$TMP/wait")
one_l=$(median <"$TMP/one_lookup"); cl_l=$(median <"$TMP/cl_lookup")
one_raw=$(median <"$TMP/one_raw"); cl_raw=$(median <"$TMP/cl_raw")
primaries=$(for p in $REDIS_CLUSTER_PORTS; do redis-cli -p "$p" role | head -1; done | grep -c master)
echo "drain of $N rows, median of $ROUNDS rounds (rows/s from the UPDATE's commit to an empty outbox)"
printf '  one Redis server                %8s rows/s\n' "$one"
printf '  cluster (%s primaries)           %8s rows/s  %s of one server\n' "$primaries" "$cl" "$(ratio "$cl" "$one")"
printf '  cluster, wait_replicas 1        %8s rows/s  %s of one server\n' "$wait" "$(ratio "$wait" "$one")"
echo "lookup of $LOOKUPS keys (key = ANY(array)), median ms of $RUNS runs, median of $ROUNDS rounds"
printf '  one server: pg_polyglot %7.2f ms, raw hiredis %7.2f ms, ratio %s\n' "$one_l" "$one_raw" "$(ratio "$one_l" "$one_raw")"
printf '  cluster:    pg_polyglot %7.2f ms, raw hiredis %7.2f ms, ratio %s\n' "$cl_l" "$cl_raw" "$(ratio "$cl_l" "$cl_raw")"
printf '  cluster against one server: pg_polyglot %s, raw %s\n' "$(ratio "$cl_l" "$one_l")" "$(ratio "$cl_raw" "$one_raw")"
clean
