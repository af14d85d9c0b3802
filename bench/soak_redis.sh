#!/usr/bin/env bash
#
# bench/soak_redis.sh - sustained load: does the outbox stay bounded and
# the delivery rate steady?  pgbench writes at a fixed rate into a synced
# table for DURATION seconds while this script samples, every INTERVAL
# seconds, the events delivered, the events pending and the on-disk size of
# the outbox (heap and index).  The first and last intervals are compared.
#
# Usage: bench/soak_redis.sh [duration s, default 300] [rate tps, default 1000] [interval s, default 30]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
DURATION=${1:-300}
RATE=${2:-1000}
INTERVAL=${3:-30}
DB=soak
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_polyglot"
q "CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT')"
q "CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, name text, updated timestamptz DEFAULT now())"
q "INSERT INTO items SELECT g, 0, 'item ' || g FROM generate_series(1, 100000) g"
ROUTE=$(q "SELECT polyglot.sync('items', 'cache', '{\"key\": \"soak:{id}\"}')")
until [ "$(q 'SELECT count(*) FROM polyglot.outbox')" = 0 ]; do sleep 0.5; done

cat > "$TMP/w.sql" <<'SQL'
\set id random(1, 120000)
INSERT INTO items (id, qty, name) VALUES (:id, 1, 'new') ON CONFLICT (id) DO UPDATE SET qty = items.qty + 1, updated = now();
SQL
pgbench -n -c 4 -j 2 -R "$RATE" -T "$DURATION" -f "$TMP/w.sql" "$DB" > "$TMP/pgbench.out" 2>&1 &
PGB=$!

printf '%8s %14s %10s %14s %14s\n' "t (s)" "delivered/s" "pending" "outbox heap" "outbox index"
prev=$(q "SELECT delivered FROM polyglot.status WHERE route = $ROUTE")
first_rate=""; rate=0
for t in $(seq "$INTERVAL" "$INTERVAL" "$DURATION"); do
	sleep "$INTERVAL"
	read -r cur pending heap idx < <(q "SELECT s.delivered, s.pending, pg_relation_size('polyglot.outbox'), pg_relation_size('polyglot.outbox_route_id_idx') FROM polyglot.status s WHERE route = $ROUTE" | tr '|' ' ')
	rate=$(( (cur - prev) / INTERVAL ))
	prev=$cur
	[ -n "$first_rate" ] || first_rate=$rate
	printf '%8s %14s %10s %11s kB %11s kB\n' "$t" "$rate" "$pending" "$((heap / 1024))" "$((idx / 1024))"
done
wait $PGB || true
grep -E "number of failed|tps =" "$TMP/pgbench.out" | sed 's/^/pgbench: /'
awk -v a="$rate" -v b="$first_rate" 'BEGIN { printf "delivery rate, last interval / first interval = %.2f\n", a / b }'

# leave the stack as it was
psql -X -q -d postgres -c "DROP DATABASE $DB"
redis-cli -p "$REDIS_PORT" --scan --pattern 'soak:*' | xargs -r -n 5000 redis-cli -p "$REDIS_PORT" DEL >/dev/null
