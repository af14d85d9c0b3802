#!/usr/bin/env bash
#
# bench/scan_redis.sh - Redis foreign table reads (the stack's Redis), against
# the same reads done directly with hiredis (bench/redis_raw.c, built here),
# measured in the same run:
#
# - key IN (...) of K keys (default 1000): the FDW looks them up batch_size
#   (1000) keys per pipelined round trip; EXPLAIN ANALYZE counts its round
#   trips.  Baseline: the same GETs in one hiredis pipeline.
# - full scan of N keys (default 100000): SCAN MATCH prefix* COUNT 1000
#   TYPE string, the GETs of each page pipelined, in rows/s.  Baseline: the
#   same SCAN and pipelines with hiredis.
# - a join of a J-row (default 1000) PostgreSQL table to the Redis table on
#   key: the planner's choice, a Redis key join (the outer rows' keys looked
#   up batch_size per pipelined round trip), against a nested loop with one
#   GET per outer row (a LATERAL ... LIMIT 1), a hash join over a full scan
#   (pushdown off), the keys collected into key = ANY(ARRAY(SELECT ...)), and
#   the same J GETs in one hiredis pipeline.
# - L (default 1000) statements each looking one key up by a literal
#   (EXECUTE of SELECT value FROM kv WHERE key = '<literal>' in PL/pgSQL, so
#   each is parsed and planned), in microseconds per statement, against a
#   GET in a round trip of its own with hiredis, and against the same
#   statements on a PostgreSQL table of those keys (the cost of a statement
#   without any store).
#
# Each figure is the median of R runs, timed inside one session.  Runs
# against the local stack (test/stack.sh start) in Redis database 11, which
# it empties, and PostgreSQL database "bench_scan_redis", which it recreates.
# Not a test: it never fails on a timing.
#
# Usage: bench/scan_redis.sh [N, default 100000] [R, default 5] [K, default 1000] [J, default 1000]
#                           [L, default 1000]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
R=${2:-5}
K=${3:-1000}
J=${4:-1000}
L=${5:-1000}
DB=bench_scan_redis
RDB=11
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cc -O2 -o "$TMP/raw" bench/redis_raw.c $(pkg-config --cflags --libs hiredis)
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
redis-cli -p "$REDIS_PORT" -n $RDB FLUSHDB > /dev/null
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT', db '$RDB');
CREATE FOREIGN TABLE kv (key text, value text) SERVER cache OPTIONS (prefix 'kv:');
CREATE TABLE ids (id int PRIMARY KEY);
INSERT INTO ids SELECT g * ($N / $J) FROM generate_series(1, $J) g;
ANALYZE ids;
CREATE FUNCTION time_ms(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  t timestamptz;
  ms float8[] := '{}';
BEGIN
  EXECUTE q;
  FOR i IN 1..n LOOP
    t := clock_timestamp();
    EXECUTE q;
    ms := ms || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END \$\$;
-- the median over n runs of the time per statement, in microseconds, of l
-- statements each looking key 1..l up by a literal in table tab
CREATE FUNCTION lookup_us(tab text, l int, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  t timestamptz;
  us float8[] := '{}';
  v text;
  found_rows int;
BEGIN
  FOR r IN 0..n LOOP
    found_rows := 0;
    t := clock_timestamp();
    FOR i IN 1..l LOOP
      EXECUTE 'SELECT value FROM ' || tab || ' WHERE key = ' || quote_literal(i::text) INTO v;
      IF v IS NOT NULL THEN
        found_rows := found_rows + 1;
      END IF;
    END LOOP;
    IF found_rows <> l THEN
      RAISE 'lookup_us: % of % keys found in %', found_rows, l, tab;
    END IF;
    -- the first run warms the caches up, untimed
    IF r > 0 THEN
      us := us || extract(epoch FROM clock_timestamp() - t)::float8 * 1000000 / l;
    END IF;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(us) x);
END \$\$;
CREATE TABLE kv_local (key text PRIMARY KEY, value text);
INSERT INTO kv_local SELECT g::text, 'value ' || g FROM generate_series(1, $L) g;
ANALYZE kv_local;
SQL
t0=$(date +%s.%N)
psql_q -c "INSERT INTO kv SELECT g::text, 'value ' || g FROM generate_series(1, $N) g"
t1=$(date +%s.%N)
ms() { psql_q -At -c "SELECT round(time_ms(\$q\$$1\$q\$, $R)::numeric, 2)"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%d", n / ms * 1000 }'; }

keys=$(psql_q -At -c "SELECT string_agg(quote_literal(g::text), ',') FROM generate_series(1, $K) g")
in_q="SELECT count(value) FROM kv WHERE key IN ($keys)"
in_trips=$(psql_q -At -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) $in_q" | sed -n 's/^ *Round Trips: //p')
in_ms=$(ms "$in_q")
read -r raw_in raw_in_rows <<< "$("$TMP/raw" "$REDIS_PORT" $RDB get kv: "$K" "$R")"

scan_q="SELECT count(value) FROM kv"
scan_ms=$(ms "$scan_q")
scan_trips=$(psql_q -At -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) $scan_q" | sed -n 's/^ *Round Trips: //p')
read -r raw_scan raw_scan_rows <<< "$("$TMP/raw" "$REDIS_PORT" $RDB scan kv: 1000 "$R")"

join_q="SELECT count(k.value) FROM ids i JOIN kv k ON k.key = i.id::text"
join_plan=$(psql_q -At -c "EXPLAIN $join_q" | grep -o -m1 'Redis Key Join\|Nested Loop\|Hash Join\|Merge Join' || true)
join_trips=$(psql_q -At -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) $join_q" | sed -n 's/^ *Round Trips: //p')
join_ms=$(ms "$join_q")
# a LATERAL subquery with a LIMIT stays a nested loop: one GET per outer row
loop_q="SELECT count(x.value) FROM ids i, LATERAL (SELECT value FROM kv k WHERE k.key = i.id::text LIMIT 1) x"
loop_ms=$(ms "$loop_q")
hash_ms=$(psql_q -At -c "SET polyglot.redis_pushdown = off; SELECT round(time_ms(\$q\$$join_q\$q\$, $R)::numeric, 2)" | tail -1)
any_q="SELECT count(value) FROM kv WHERE key = ANY (ARRAY(SELECT id::text FROM ids))"
any_ms=$(ms "$any_q")
read -r raw_join raw_join_rows <<< "$("$TMP/raw" "$REDIS_PORT" $RDB get kv: "$J" "$R")"

lookup_us=$(psql_q -At -c "SELECT round(lookup_us('kv', $L, $R)::numeric, 2)")
local_us=$(psql_q -At -c "SELECT round(lookup_us('kv_local', $L, $R)::numeric, 2)")
read -r raw_lookup raw_lookup_rows <<< "$("$TMP/raw" "$REDIS_PORT" $RDB lookup kv: "$L" "$R")"
raw_lookup_us=$(awk -v ms="$raw_lookup" -v l="$L" 'BEGIN { printf "%.2f", ms * 1000 / l }')

printf 'Redis %s, %d keys, medians of %d runs\n' "$(redis-cli -p "$REDIS_PORT" INFO server | sed -n 's/^redis_version:\([^\r]*\).*/\1/p')" "$N" "$R"
printf '  load:       INSERT of %d rows, batch_size 1000 pipelines: %s rows/s\n' "$N" \
	"$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')"
printf '  key IN (%d keys): FDW %s ms, %s round trips | raw pipelined GETs %s ms (%s rows) | FDW / raw = %s\n' \
	"$K" "$in_ms" "$in_trips" "$raw_in" "$raw_in_rows" "$(ratio "$in_ms" "$raw_in")"
printf '  full scan:  FDW %s rows/s (%s ms, %s round trips) | raw SCAN + pipelines %s rows/s (%s ms) | FDW / raw = %s\n' \
	"$(rate "$N" "$scan_ms")" "$scan_ms" "$scan_trips" "$(rate "$raw_scan_rows" "$raw_scan")" "$raw_scan" \
	"$(ratio "$raw_scan" "$scan_ms")"
printf '  join of %d rows on key: %s %s ms, %s round trips | nested loop, a GET per row %s ms | hash join over a scan %s ms | key = ANY(ARRAY(SELECT ...)) %s ms | raw pipelined GETs of %d keys %s ms | key join / raw = %s, nested loop / key join = %s\n' \
	"$J" "$join_plan" "$join_ms" "$join_trips" "$loop_ms" "$hash_ms" "$any_ms" "$J" "$raw_join" \
	"$(ratio "$join_ms" "$raw_join")" "$(ratio "$loop_ms" "$join_ms")"
printf '  %d literal lookups (EXECUTE of SELECT value FROM kv WHERE key = <literal>): FDW %s us per statement | raw GET round trip %s us (%s rows) | the same statements on a PostgreSQL table %s us | FDW / raw = %s, FDW - PostgreSQL table - raw = %s us\n' \
	"$L" "$lookup_us" "$raw_lookup_us" "$raw_lookup_rows" "$local_us" "$(ratio "$lookup_us" "$raw_lookup_us")" \
	"$(awk -v a="$lookup_us" -v b="$local_us" -v c="$raw_lookup_us" 'BEGIN { printf "%.2f", a - b - c }')"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
redis-cli -p "$REDIS_PORT" -n $RDB FLUSHDB > /dev/null
