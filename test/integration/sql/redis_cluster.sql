--
-- redis_cluster: foreign tables and a sync route on the stack's Redis
-- Cluster (three primaries with a replica each), checked against the same
-- tables on one Redis server (database 6, emptied first): every table type
-- written and read, key lookups routed by slot (an IN list: one pipeline
-- per node), scans over every primary, writes routed, joins and
-- aggregates give the same rows on both; EXPLAIN shows the cluster.
--
\i test/integration/sql/setup.psql
\getenv redis_port REDIS_PORT
\getenv cluster_nodes REDIS_CLUSTER_NODES
\getenv cluster_ports REDIS_CLUSTER_PORTS
\! redis-cli -p $REDIS_PORT -n 6 FLUSHDB > /dev/null
\! for p in $REDIS_CLUSTER_PORTS; do redis-cli -p $p --scan --pattern 'rcl*' | xargs -r -n 1 redis-cli -c -p $p DEL > /dev/null; done
CREATE SERVER rcl_one FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port', db '6');
CREATE SERVER rcl FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster :'cluster_nodes');
SELECT polyglot.ping('rcl')->>'ok' AS ok;

-- the same tables on both servers: schema one (a server), schema cl (the cluster)
CREATE SCHEMA one;
CREATE SCHEMA cl;
DO $$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['one', 'cl'] LOOP
    EXECUTE format($f$
      CREATE FOREIGN TABLE %1$I.strings (key text, value text, ttl int) SERVER %2$I OPTIONS (prefix 'rcls:');
      CREATE FOREIGN TABLE %1$I.fields (key text, field text, value text) SERVER %2$I OPTIONS (type 'hash', prefix 'rclh:');
      CREATE FOREIGN TABLE %1$I.docs (key text, doc jsonb) SERVER %2$I OPTIONS (type 'hash', prefix 'rclh:');
      CREATE FOREIGN TABLE %1$I.lists (key text, index int, value text) SERVER %2$I OPTIONS (type 'list', prefix 'rcll:');
      CREATE FOREIGN TABLE %1$I.sets (key text, member text) SERVER %2$I OPTIONS (type 'set', prefix 'rclt:');
      CREATE FOREIGN TABLE %1$I.zsets (key text, member text, score float8) SERVER %2$I OPTIONS (type 'zset', prefix 'rclz:');
    $f$, s, CASE s WHEN 'one' THEN 'rcl_one' ELSE 'rcl' END);
  END LOOP;
END $$;

-- the same writes to both
DO $$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['one', 'cl'] LOOP
    EXECUTE format($f$
      INSERT INTO %1$I.strings SELECT g::text, 'value ' || g, CASE WHEN g %% 100 = 0 THEN 1000 END FROM generate_series(1, 5000) g;
      INSERT INTO %1$I.strings SELECT '{tag}:' || g, 'tagged ' || g FROM generate_series(1, 50) g;
      INSERT INTO %1$I.fields SELECT 'u' || (g / 3), 'f' || (g %% 3), 'v' || g FROM generate_series(1, 900) g;
      INSERT INTO %1$I.lists SELECT 'q' || (g %% 10), NULL, 'item ' || g FROM generate_series(1, 200) g;
      INSERT INTO %1$I.sets SELECT 't' || (g %% 25), 'm' || g FROM generate_series(1, 500) g;
      INSERT INTO %1$I.zsets SELECT 'b' || (g %% 7), 'p' || g, g * 1.5 FROM generate_series(1, 300) g;
      UPDATE %1$I.strings SET value = 'changed ' || key WHERE key IN ('7', '70', '700', '{tag}:3');
      UPDATE %1$I.strings SET ttl = NULL WHERE key = '100';
      DELETE FROM %1$I.strings WHERE key IN ('8', '80', '800', '{tag}:4');
      UPDATE %1$I.fields SET value = 'x' WHERE key IN ('u1', 'u2', 'u200') AND field = 'f1';
      DELETE FROM %1$I.fields WHERE key = 'u5';
      DELETE FROM %1$I.sets WHERE key IN ('t3', 't4') AND member LIKE 'm1%%';
    $f$, s);
  END LOOP;
END $$;
-- the cluster's keys are spread over its primaries; the hash-tagged ones share one
\! total=0; nodes=0; for p in $REDIS_CLUSTER_PORTS; do if redis-cli -p $p role | head -1 | grep -q master; then n=$(redis-cli -p $p --scan --pattern 'rcl*' | wc -l); total=$((total + n)); [ "$n" -gt 0 ] && nodes=$((nodes + 1)); fi; done; echo "keys $total on $nodes primaries"
\! for p in $REDIS_CLUSTER_PORTS; do redis-cli -p $p role | head -1 | grep -q master && redis-cli -p $p --scan --pattern 'rcls:{tag}*' | wc -l; done | grep -c -v '^0$' | sed 's/^/primaries with tagged keys: /'

-- the same rows on both: each query's rows, on the server and on the cluster
CREATE FUNCTION both_same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  a text;
  b text;
  n bigint;
BEGIN
  PERFORM set_config('search_path', 'one, public', true);
  EXECUTE format('SELECT count(*), coalesce(md5(string_agg(x::text, '';'' ORDER BY x::text)), '''') FROM (%s) x', q)
    INTO n, a;
  PERFORM set_config('search_path', 'cl, public', true);
  EXECUTE format('SELECT coalesce(md5(string_agg(x::text, '';'' ORDER BY x::text)), '''') FROM (%s) x', q)
    INTO b;
  PERFORM set_config('search_path', 'public', true);
  RETURN CASE WHEN a = b THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
SELECT q, both_same(q) FROM (VALUES
  ('SELECT key, value, ttl IS NOT NULL AS has_ttl FROM strings'),
  ('SELECT key, value FROM strings WHERE key = ''7'''),
  ('SELECT key, value FROM strings WHERE key IN (''1'', ''2'', ''3'', ''8'', ''4999'', ''nope'', ''{tag}:1'')'),
  ('SELECT key, value FROM strings WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 5000, 3) g))'),
  ('SELECT key FROM strings WHERE key LIKE ''{tag}%'''),
  ('SELECT key FROM strings WHERE key LIKE ''12%'''),
  ('SELECT count(*), min(value), max(value) FROM strings'),
  ('SELECT key, field, value FROM fields'),
  ('SELECT key, doc FROM docs WHERE key IN (''u1'', ''u2'', ''u5'', ''u299'')'),
  ('SELECT key, index, value FROM lists'),
  ('SELECT key, count(*) FROM sets GROUP BY key'),
  ('SELECT key, member, score FROM zsets WHERE key = ''b3'''),
  ('SELECT s.key, s.value, f.value FROM strings s JOIN fields f ON f.key = ''u'' || s.key AND f.field = ''f1'' WHERE s.key ~ ''^\d+$'' AND s.key::int < 50'),
  ('SELECT z.key, sum(z.score) FROM zsets z GROUP BY z.key')
) AS t(q);

-- EXPLAIN shows the cluster; ANALYZE its primaries and the round trips
-- (an IN list of 1,667 keys: one pipeline per primary in each)
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM cl.strings WHERE key IN ('1', '2');
CREATE FUNCTION cluster_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    IF line ~ 'Cluster|Round Trips|Foreign Scan' THEN
      -- (PostgreSQL 18 prints actual rows with two decimals)
      RETURN NEXT regexp_replace(line, 'actual rows=(\d+)\.00 ', 'actual rows=\1 ');
    END IF;
  END LOOP;
END $$;
SELECT cluster_lines('SELECT key FROM cl.strings WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 5000, 3) g))');
-- a scan's round trips depend on how each primary's SCAN pages its keys:
-- at least one per primary
SELECT CASE WHEN l ~ 'Round Trips' THEN 'Round Trips >= 3: ' || (substring(l from '\d+')::int >= 3)
            ELSE l END AS cluster_lines
FROM cluster_lines('SELECT count(*) FROM cl.strings') l;

-- a sync route to the cluster, hash tags in its key template
CREATE TABLE rcl_orders (customer int, id int, total numeric, PRIMARY KEY (customer, id));
INSERT INTO rcl_orders SELECT g % 10, g, g * 2.5 FROM generate_series(1, 500) g;
SELECT polyglot.sync('rcl_orders', 'rcl', '{"key": "rclo:{{customer}}:{id}"}') > 0 AS synced;
SELECT wait_synced(polyglot.route('rcl_orders@rcl'));
UPDATE rcl_orders SET total = 0 WHERE id % 50 = 0;
DELETE FROM rcl_orders WHERE id > 490;
SELECT wait_synced(polyglot.route('rcl_orders@rcl'));
CREATE FOREIGN TABLE cl.orders (key text, value jsonb) SERVER rcl OPTIONS (prefix 'rclo:');
SELECT count(*), sum((value->>'total')::numeric) = (SELECT sum(total) FROM rcl_orders) AS totals_equal,
       count(DISTINCT split_part(key, '}', 1)) AS hash_tags FROM cl.orders;
SELECT * FROM polyglot.verify(polyglot.route('rcl_orders@rcl'));
-- (every key of one customer in one slot)
\! for p in $REDIS_CLUSTER_PORTS; do redis-cli -p $p role | head -1 | grep -q master && redis-cli -p $p --scan --pattern 'rclo:{3}:*' | wc -l; done | grep -c -v '^0$' | sed 's/^/primaries with customer 3: /'
SELECT polyglot.unsync('rcl_orders', 'rcl');

-- a cluster that cannot be reached, a seed that is no cluster node
CREATE SERVER rcl_down FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster '127.0.0.1:1', connect_timeout '1s');
SELECT try_detail($$SELECT polyglot.ping('rcl_down')$$);
\set redis_seed 127.0.0.1: :redis_port
CREATE SERVER rcl_plain FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster :'redis_seed');
SELECT regexp_replace(try_detail($$SELECT polyglot.ping('rcl_plain')$$), ':\d+', ':PORT', 'g');

DROP TABLE rcl_orders;
DROP SCHEMA one, cl CASCADE;
DROP FUNCTION both_same(text);
DROP FUNCTION cluster_lines(text);
DROP SERVER rcl_one, rcl, rcl_down, rcl_plain CASCADE;
\! for p in $REDIS_CLUSTER_PORTS; do redis-cli -p $p --scan --pattern 'rcl*' | xargs -r -n 1 redis-cli -c -p $p DEL > /dev/null; done
