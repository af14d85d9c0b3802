#!/usr/bin/env bash
#
# bench/workers.sh - delivery throughput with one and with two workers
# (polyglot.workers), as a ratio measured in the same run.
#
# For each store (Redis, OpenSearch, MongoDB through FerretDB) and each
# number of workers, in alternating rounds: the server restarts with that
# many workers, a synced table's route is paused while one UPDATE changes
# every row (N pending keys), then the route resumes and the time until
# polyglot.status shows nothing pending is the drain time.  Keys per
# second with two workers over keys per second with one is the speed-up.
#
# Runs against the local stack (test/stack.sh start), in database "bench",
# which it recreates; it restarts PostgreSQL and leaves it with the stack's
# own setting.  Not a test: it never fails on a timing.
#
# Usage: bench/workers.sh [keys, default 100000] [rounds, default 3]
# (MongoDB gets a fifth of the keys: FerretDB on SQLite is slower.)

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
ROUNDS=${2:-3}
DB=bench

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now_ms() { date +%s%3N; }

set_workers() {
	psql -X -q -d postgres -c "ALTER SYSTEM SET polyglot.workers = $1"
	test/stack.sh restart postgres >/dev/null
	# wait for the workers of the database
	for _ in $(seq 1 100); do
		n=$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = '$DB'")
		[ "$n" = "$1" ] && return 0
		psql -X -q -d "$DB" -c "SELECT polyglot._wake()" >/dev/null
		sleep 0.1
	done
	echo "the $1 workers did not start" >&2
	exit 1
}
trap 'psql -X -q -d postgres -c "ALTER SYSTEM RESET polyglot.workers"; test/stack.sh restart postgres >/dev/null' EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
curl -s -o /dev/null -XDELETE "$OPENSEARCH_URL/bench_workers?ignore_unavailable=true"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$OPENSEARCH_URL');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$MONGO_URI', database 'bench');
CREATE TABLE t_redis (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), stock int, n int DEFAULT 0);
CREATE TABLE t_search (LIKE t_redis INCLUDING ALL);
CREATE TABLE t_mongo (LIKE t_redis INCLUDING ALL);
INSERT INTO t_redis (id, name, price, stock)
  SELECT g, 'product ' || g, g % 1000 + 0.99, g % 50 FROM generate_series(1, $N) g;
INSERT INTO t_search SELECT * FROM t_redis;
INSERT INTO t_mongo SELECT * FROM t_redis WHERE id <= $N / 5;
VACUUM ANALYZE t_redis, t_search, t_mongo;
SELECT polyglot.sync('t_redis', 'cache', '{"key": "benchw:{id}"}');
SELECT polyglot.sync('t_search', 'search', '{"index": "bench_workers"}');
SELECT polyglot.sync('t_mongo', 'docs', '{"collection": "workers"}');
SQL
echo "backfilling $N rows to Redis and OpenSearch, $((N / 5)) to MongoDB ..."
until [ "$(psql_q -At -c 'SELECT coalesce(sum(pending), 0) FROM polyglot.status')" = 0 ]; do sleep 1; done

# One drain: pause, change every row, resume, and time from resume() to an
# empty outbox in one session, polling every 2 ms (a shell loop of psql
# calls would add tens of milliseconds to a Redis drain of a few hundred).
drain() {
	local table=$1 route
	route=$(psql_q -At -c "SELECT id FROM polyglot.routes WHERE source_relid = '$table'::regclass")
	psql_q -c "SELECT polyglot.pause($route)" >/dev/null
	psql_q -c "UPDATE $table SET n = n + 1" >/dev/null
	psql_q -c "CHECKPOINT" >/dev/null 2>&1 || true
	psql_q -At <<SQL
DO \$\$
DECLARE
  keys bigint := (SELECT pending FROM polyglot.status WHERE route = $route);
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM polyglot.resume($route);
  COMMIT;
  WHILE (SELECT pending FROM polyglot.status WHERE route = $route) > 0 LOOP
    PERFORM pg_sleep(0.002);
  END LOOP;
  RAISE NOTICE '%', round(keys / extract(epoch FROM clock_timestamp() - t0));
END
\$\$;
SQL
}
declare -A rate
for round in $(seq 1 "$ROUNDS"); do
	for w in 1 2; do
		set_workers "$w"
		for t in t_redis t_search t_mongo; do
			r=$(drain "$t" 2>&1 | sed -n 's/^NOTICE: *//p')
			rate[$t.$w]="${rate[$t.$w]:-} $r"
			echo "round $round, $w worker(s), $t: $r keys/s"
		done
	done
done

echo
echo "median keys per second drained, and the speed-up of two workers over one"
printf '%-10s %12s %12s %9s\n' store "1 worker" "2 workers" speed-up
for t in t_redis t_search t_mongo; do
	one=$(echo "${rate[$t.1]}" | tr ' ' '\n' | grep . | median)
	two=$(echo "${rate[$t.2]}" | tr ' ' '\n' | grep . | median)
	printf '%-10s %12s %12s %9s\n' "${t#t_}" "$one" "$two" "$(ratio "$two" "$one")"
done
