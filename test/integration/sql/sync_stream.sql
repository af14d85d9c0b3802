--
-- sync_stream: Redis routes in stream mode.  Each delivered change is an
-- entry of a Redis stream (XADD, MAXLEN ~), with the fields of a change
-- event (id, position, op, table, key, row, ts); a consumer group reads
-- them with XREADGROUP.  Per key the entries come in the order of the
-- changes, no event id repeats, a redelivered change is not appended again
-- (counted as stale), the stream stays bounded, TRUNCATE appends deletes.  The
-- options are checked, and so are the keys a stream route writes against
-- other routes' keys.  A stream on the stack's Redis Cluster too.
--
\i test/integration/sql/setup.psql
\getenv redis_port REDIS_PORT
\getenv cluster_nodes REDIS_CLUSTER_NODES
\! redis-cli -p $REDIS_PORT DEL st:events '{st:events}:seen' st:small '{st:small}:seen' st:other '{st:other}:seen' > /dev/null
\! for p in $REDIS_CLUSTER_PORTS; do redis-cli -c -p $p DEL st:cluster '{st:cluster}:seen' > /dev/null 2>&1; done
CREATE SERVER st_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER st_cluster FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster :'cluster_nodes');

-- The entries redis-cli prints for a command (XRANGE, or XREADGROUP with
-- skip 1 for the stream's name), one row each, in stream order.
CREATE FUNCTION st_entries(port text, command text, skip int DEFAULT 0)
RETURNS TABLE (n int, entry text, id text, pos bigint, op text, tbl text, key jsonb,
               row_ jsonb, ts timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.st_lines') IS NULL THEN
    CREATE TEMP TABLE st_lines (n serial, line text);
  END IF;
  TRUNCATE st_lines;
  ALTER SEQUENCE st_lines_n_seq RESTART;
  -- csv with separators that never come: no backslash of the JSON is read as an escape
  EXECUTE format('COPY st_lines (line) FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')',
                 format('redis-cli -c -p %s --raw %s', port, command));
  RETURN QUERY
    WITH l AS (SELECT (s.n - 1 - skip) / 15 AS e, (s.n - 1 - skip) % 15 AS i, s.line
               FROM st_lines s WHERE s.n > skip)
    SELECT e::int + 1,
           max(line) FILTER (WHERE i = 0),
           max(line) FILTER (WHERE i = 2),
           max(line) FILTER (WHERE i = 4)::bigint,
           max(line) FILTER (WHERE i = 6),
           max(line) FILTER (WHERE i = 8),
           max(line) FILTER (WHERE i = 10)::jsonb,
           max(line) FILTER (WHERE i = 12)::jsonb,
           max(line) FILTER (WHERE i = 14)::timestamptz
    FROM l GROUP BY e ORDER BY e;
END $$;

CREATE TABLE st_orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(10,2), note text);
INSERT INTO st_orders VALUES (1, 'ann', 10.50, 'first'), (2, 'bob', 20.00, NULL);

-- options
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream"}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": ""}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": 7}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:a}b"}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:events", "maxlen": 0}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:events", "maxlen": 1.5}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:events", "maxlen": "10"}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:events", "ttl": 60}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "json", "stream": "st:events"}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "publish", "channel": "c", "maxlen": 10}')$$);
SELECT try($$SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "fifo"}')$$);

-- the route: the existing rows first (backfill), then changes
SELECT polyglot.sync('st_orders', 'st_cache', '{"mode": "stream", "stream": "st:events"}') AS route \gset
SELECT options FROM polyglot.routes WHERE id = :route;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT XGROUP CREATE st:events analytics 0
UPDATE st_orders SET total = 11.00, note = 'line "2"\ttab' WHERE id = 1;
INSERT INTO st_orders VALUES (3, 'cy', 5.25, NULL);
DELETE FROM st_orders WHERE id = 2;
SELECT wait_synced(:route);

-- what a consumer group reads: every change, the deletes with a null row
-- (in the order of the changes per key; across keys none is promised)
SELECT op, tbl, key, row_ FROM st_entries(:'redis_port',
  'XREADGROUP GROUP analytics worker-1 COUNT 100 STREAMS st:events ">"', 1)
ORDER BY key->>'id', n;
-- the fields every entry has: an id of route, position and key, the time of the change
SELECT bool_and(id ~ ('^' || :route || '-' || pos || '-[0-9a-f]{16}$')) AS ids_of_route_and_position,
       count(DISTINCT id) = count(*) AS ids_distinct,
       bool_and(ts BETWEEN now() - interval '10 minutes' AND clock_timestamp()) AS ts_recent,
       bool_and(entry ~ '^[0-9]+-[0-9]+$') AS entry_ids
FROM st_entries(:'redis_port', 'XRANGE st:events - +');
-- per key, the entries in the order of the changes
SELECT key->>'id' AS id, array_agg(op ORDER BY n) AS ops,
       array_agg(coalesce(row_->>'total', '-') ORDER BY n) AS totals
FROM st_entries(:'redis_port', 'XRANGE st:events - +')
GROUP BY key->>'id' ORDER BY 1;
-- the group acknowledges what it read; the next read gets only new changes
\! redis-cli -p $REDIS_PORT XREADGROUP GROUP analytics worker-1 STREAMS st:events 0 | grep -E '^[0-9]+-[0-9]+$' | xargs -r redis-cli -p $REDIS_PORT XACK st:events analytics > /dev/null
UPDATE st_orders SET customer = 'cyd' WHERE id = 3;
SELECT wait_synced(:route);
SELECT n, op, key, row_->>'customer' AS customer FROM st_entries(:'redis_port',
  'XREADGROUP GROUP analytics worker-1 COUNT 100 STREAMS st:events ">"', 1);

-- a redelivery: the outbox row of key 3's last change comes back, as
-- after a crash between Redis taking the entry and the outbox forgetting
-- it; the stream has that position for the key: nothing is appended, and
-- it counts as stale.  A change of nothing the route delivers is not
-- appended either (the key's last entry has that state); a real change is.
SELECT count(*) AS entries_before FROM st_entries(:'redis_port', 'XRANGE st:events - +') \gset
SELECT stale AS stale_before FROM polyglot.status WHERE route = :route \gset
SELECT max(pos) AS pos3 FROM st_entries(:'redis_port', 'XRANGE st:events - +') WHERE key->>'id' = '3' \gset
INSERT INTO polyglot.outbox (id, route_id, op, key, slot, nslots)
VALUES (:pos3, :route, 'U', '{{3}}', polyglot._slot('{{3}}'), polyglot._nslots());
SELECT wait_synced(:route);
UPDATE st_orders SET note = note WHERE id = 1;
SELECT wait_synced(:route);
UPDATE st_orders SET note = 'appended' WHERE id = 1;
SELECT wait_synced(:route);
SELECT count(*) - :entries_before AS new_entries,
       array_agg(key->>'id' || ': ' || (row_->>'note')) FILTER (WHERE n > :entries_before) AS appended
FROM st_entries(:'redis_port', 'XRANGE st:events - +');
SELECT stale - :stale_before AS counted_stale FROM polyglot.status WHERE route = :route;

-- TRUNCATE: a delete entry for every key
TRUNCATE st_orders;
SELECT wait_synced(:route);
SELECT array_agg(key->>'id' ORDER BY key->>'id') AS deleted
FROM st_entries(:'redis_port', 'XRANGE st:events - +') WHERE n > :entries_before + 1 AND op = 'delete';

-- verify has nothing to compare
SELECT try(format('SELECT polyglot.verify(%s)', :route));

-- the stream's keys are the route's: no other route may write them ...
CREATE TABLE st_cached (id text PRIMARY KEY, v text);
SELECT try($$SELECT polyglot.sync('st_cached', 'st_cache', '{"key": "st:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('st_cached', 'st_cache', '{"key": "{st:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('st_cached', 'st_cache', '{"mode": "invalidate", "key": "st:event{id}"}')$$);
-- ... a stream route's may not be another's keys ...
SELECT polyglot.sync('st_cached', 'st_cache', '{"key": "stc:{id}"}', backfill => false) AS cached \gset
CREATE TABLE st_other (id int PRIMARY KEY, v text);
SELECT try($$SELECT polyglot.sync('st_other', 'st_cache', '{"mode": "stream", "stream": "stc:1"}')$$);
SELECT polyglot.unsync('st_cached', 'st_cache');
-- ... but stream routes of several tables may share one stream, keys alike
SELECT polyglot.sync('st_other', 'st_cache', '{"mode": "stream", "stream": "st:events"}', backfill => false) AS other \gset
INSERT INTO st_other VALUES (1, 'other one');
INSERT INTO st_orders VALUES (1, 'ann', 1, 'again');
SELECT wait_synced(:route), wait_synced(:other);
SELECT tbl, key, row_ FROM st_entries(:'redis_port', 'XRANGE st:events - +')
WHERE n > (SELECT max(n) FROM st_entries(:'redis_port', 'XRANGE st:events - +')) - 2 ORDER BY tbl;
SELECT polyglot.unsync('st_other', 'st_cache');

-- maxlen bounds the stream (about: MAXLEN ~ trims whole nodes)
CREATE TABLE st_many (id int PRIMARY KEY, v int);
SELECT polyglot.sync('st_many', 'st_cache', '{"mode": "stream", "stream": "st:small", "maxlen": 100}', backfill => false) AS many \gset
INSERT INTO st_many SELECT g, g FROM generate_series(1, 3000) g;
SELECT wait_synced(:many);
\! n=$(redis-cli -p $REDIS_PORT XLEN st:small); [ "$n" -ge 100 ] && [ "$n" -lt 1000 ] && echo "st:small bounded" || echo "st:small holds $n entries"
SELECT delivered FROM polyglot.status WHERE route = :many;
SELECT polyglot.unsync('st_many', 'st_cache');

-- a stream on a Redis Cluster: the stream and its hash share a slot
CREATE TABLE st_cl (id int PRIMARY KEY, v text);
INSERT INTO st_cl SELECT g, 'v' || g FROM generate_series(1, 50) g;
SELECT polyglot.sync('st_cl', 'st_cluster', '{"mode": "stream", "stream": "st:cluster"}') AS cl \gset
SELECT wait_synced(:cl);
UPDATE st_cl SET v = 'changed' WHERE id <= 10;
SELECT wait_synced(:cl);
SELECT count(*) AS entries, count(DISTINCT key) AS keys, count(DISTINCT id) AS ids,
       count(*) FILTER (WHERE row_->>'v' = 'changed') AS changed
FROM st_entries(split_part(split_part(:'cluster_nodes', ',', 1), ':', 2), 'XRANGE st:cluster - +');
SELECT polyglot.unsync('st_cl', 'st_cluster');

SELECT polyglot.unsync('st_orders', 'st_cache');
DROP TABLE st_orders, st_cached, st_other, st_many, st_cl;
DROP FUNCTION st_entries(text, text, int);
DROP SERVER st_cache, st_cluster CASCADE;
\! redis-cli -p $REDIS_PORT DEL st:events '{st:events}:seen' st:small '{st:small}:seen' > /dev/null
