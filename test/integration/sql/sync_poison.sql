--
-- sync_poison: a key Redis refuses (WRONGTYPE) is retried up to
-- polyglot.max_attempts, then moves to the dead letters with the error,
-- while the other keys flow; polyglot.retry() delivers it once fixed.
--
\getenv redis_port REDIS_PORT
ALTER SYSTEM SET polyglot.max_attempts = 3;
SELECT pg_reload_conf();
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql

-- someone else's string where a synced hash must go
\! redis-cli -p $REDIS_PORT DEL poison:1 poison:2 poison:3 poison:4 poison:5 poison:6 > /dev/null
\! redis-cli -p $REDIS_PORT SET poison:2 "not a hash"
CREATE TABLE poison (id int PRIMARY KEY, v text);
INSERT INTO poison SELECT g, 'v' || g FROM generate_series(1, 5) g;
SELECT polyglot.sync('poison', 'cache', '{"mode": "hash", "key": "poison:{id}"}') AS route \gset

SELECT wait_for($$(SELECT dead_letters = 1 FROM polyglot.status WHERE source = 'public.poison')$$);
-- the other keys went through
\! redis-cli -p $REDIS_PORT HGET poison:1 v
\! redis-cli -p $REDIS_PORT HGET poison:5 v
SELECT pending, failed, dead_letters, retries >= 2 AS retried, state,
       last_error LIKE 'WRONGTYPE%' AS wrongtype
FROM polyglot.status WHERE route = :route;
SELECT op, key, attempts, error LIKE 'WRONGTYPE%' AS wrongtype
FROM polyglot.dead_letters WHERE route_id = :route;
-- and keep going through
INSERT INTO poison VALUES (6, 'v6');
SELECT wait_for($$(SELECT pending = 0 FROM polyglot.status WHERE route = $$ || :route || ')');
\! redis-cli -p $REDIS_PORT HGET poison:6 v

-- fix the store, replay the dead letters
\! redis-cli -p $REDIS_PORT DEL poison:2
SELECT polyglot.retry(:route) AS replayed;
SELECT wait_for($$(SELECT pending = 0 FROM polyglot.status WHERE route = $$ || :route || ')');
\! redis-cli -p $REDIS_PORT HGET poison:2 v
SELECT pending, dead_letters, state FROM polyglot.status WHERE route = :route;

DROP TABLE poison;
DROP SERVER cache;
ALTER SYSTEM RESET polyglot.max_attempts;
SELECT pg_reload_conf();
\! redis-cli -p $REDIS_PORT DEL poison:1 poison:2 poison:3 poison:4 poison:5 poison:6 > /dev/null
