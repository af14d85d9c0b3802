--
-- backfill_verify: polyglot.backfill() and polyglot.verify() on every store.
--
-- A table of 25,000 rows is synced to Redis, OpenSearch and Elasticsearch
-- (and one of 2,500 to MongoDB: FerretDB 1.x on SQLite scans its whole
-- collection for each chunk verify looks up) while rows are updated and
-- deleted, each change in its own transaction, as the worker backfills.
-- The sizes are the smallest that cross every boundary: 25,000 rows are
-- three backfill chunks of 10,000 keys (the last one short), the second
-- and third enqueued only once the outbox has room again; 2,500 documents
-- are three of verify's chunks of 1,000 keys and of the outbox's.
-- Once caught up, verify finds no drift on any route.  Then drift made
-- behind the extension's back (a key deleted and one changed in Redis, a
-- document changed and one deleted in MongoDB, a document removed from
-- each index, keys no row accounts for) is reported, and repaired.
--
\getenv redis_port REDIS_PORT
\getenv mongo_uri MONGO_URI
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! redis-cli -p $REDIS_PORT -n 8 FLUSHDB > /dev/null
\! $MONGO_TOOL drop polyglot_verify
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_verify?ignore_unavailable=true"; done
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port', db '8');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri', database 'polyglot_verify');
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');

-- waits until every route is caught up (pending counts a running backfill);
-- on a timeout, says what each route still has pending and its last error
CREATE FUNCTION caught_up(timeout_s float8 DEFAULT 300) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  n bigint;
BEGIN
  LOOP
    SELECT sum(pending) INTO n FROM polyglot.status;
    IF n = 0 THEN
      RETURN 'caught up';
    END IF;
    IF clock_timestamp() - t0 > timeout_s * interval '1 second' THEN
      RETURN format('timeout: %s pending (%s)', n,
                    (SELECT string_agg(format('%s: %s pending, %s, %s', server, pending, state, last_error), '; ' ORDER BY route)
                       FROM polyglot.status WHERE pending > 0));
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;

-- updates and deletes, each in its own transaction
CREATE PROCEDURE churn(tbl regclass, n int, size int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    EXECUTE format('UPDATE %s SET qty = qty + 1, name = name || ''+'' WHERE id = $1', tbl)
      USING (i * 7919) % size + 1;
    IF i % 10 = 0 THEN
      EXECUTE format('DELETE FROM %s WHERE id = $1', tbl) USING (i * 104729) % size + 1;
    END IF;
    COMMIT;
  END LOOP;
END $$;

CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, price float8);
INSERT INTO items SELECT g, 'item ' || g, g % 100, g / 4.0 FROM generate_series(1, 25000) g;
CREATE TABLE docs_items (LIKE items INCLUDING ALL);
INSERT INTO docs_items SELECT * FROM items WHERE id <= 2500;
SELECT polyglot.sync('items', 'cache', '{"key": "item:{id}"}') AS redis_route \gset
SELECT polyglot.sync('items', 'os', '{"index": "polyglot_verify"}') AS os_route \gset
SELECT polyglot.sync('items', 'es', '{"index": "polyglot_verify"}') AS es_route \gset
SELECT polyglot.sync('docs_items', 'docs', '{"collection": "items"}') AS mongo_route \gset
-- the backfills are under way while the rows change
SELECT count(*) > 0 AS backfills_running FROM polyglot.status WHERE backfill = 'running';
CALL churn('items', 3000, 25000);
CALL churn('docs_items', 1000, 2500);
SELECT caught_up();
SELECT source, server, backfill, backfill_rows > 0 AS enqueued, failed, dead_letters
FROM polyglot.status ORDER BY route;
SELECT count(*) AS rows_left FROM items;
SELECT server, (SELECT count(*) FROM polyglot.verify(route)) AS drift FROM polyglot.status ORDER BY route;
-- the monitoring view behind metrics/postgres_exporter.yaml, and the file's own query
SELECT server, store, pending, lag_seconds, delivered >= backfill_rows AS delivered_all, failed,
       dead_letters, backing_off, paused, backfilling, backfill_rows > 0 AS backfilled
FROM polyglot.metrics ORDER BY route;
\set exporter_query `python3 -c "import re,sys; t=open('metrics/postgres_exporter.yaml').read(); print(re.search(r'query: >-\n((?:    .*\n)+)', t).group(1).replace('\n', ' '))"`
SELECT count(*) AS exporter_rows FROM (:exporter_query) q;

--
-- drift behind the extension's back
--
\! redis-cli -p $REDIS_PORT -n 8 DEL item:5 > /dev/null
\! redis-cli -p $REDIS_PORT -n 8 SET item:6 '{"id":6,"name":"edited by hand"}' > /dev/null
\! redis-cli -p $REDIS_PORT -n 8 SET item:200001 '{"id":200001}' > /dev/null
\! redis-cli -p $REDIS_PORT -n 8 SET item:007 '{}' > /dev/null
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_verify/_doc/5?refresh=true"; curl -s -o /dev/null -XPUT "$u/polyglot_verify/_doc/200001?refresh=true" -H 'Content-Type: application/json' -d '{"id": 200001}'; done
CREATE FOREIGN TABLE mongo_items (_id int, name text) SERVER docs OPTIONS (collection 'items');
UPDATE mongo_items SET name = 'edited by hand' WHERE _id = 6;
DELETE FROM mongo_items WHERE _id = 5;
INSERT INTO mongo_items VALUES (200001, 'no row');
SELECT server, kind, key, store_key FROM polyglot.status, LATERAL polyglot.verify(route) ORDER BY route, kind, store_key;
-- by table and server; repair enqueues the keys (an extra key no row could have stays);
-- its notices name route ids, which depend on earlier tests
SET client_min_messages = warning;
SELECT * FROM polyglot.verify('items', 'cache', repair => true) ORDER BY kind, store_key;
SELECT server, kind, key FROM polyglot.status, LATERAL polyglot.verify(route, true)
WHERE route <> :redis_route ORDER BY route, kind, store_key;
RESET client_min_messages;
SELECT caught_up();
SELECT server, kind, key, store_key FROM polyglot.status, LATERAL polyglot.verify(route) ORDER BY route, kind, store_key;
\! redis-cli -p $REDIS_PORT -n 8 GET item:6
\! redis-cli -p $REDIS_PORT -n 8 EXISTS item:200001
SELECT failed, dead_letters FROM polyglot.status ORDER BY route;

-- what cannot be verified
SELECT polyglot.sync('docs_items', 'cache', '{"mode": "invalidate", "key": "inv:{id}"}', false) AS inv \gset
DO $$
BEGIN
  PERFORM * FROM polyglot.verify('docs_items', 'cache');
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE '%: %', SQLSTATE, regexp_replace(SQLERRM, 'route [0-9]+', 'route N');
END $$;
SELECT * FROM polyglot.verify(12345);
SELECT * FROM polyglot.verify(NULL);

-- Keys do not depend on session settings: a timestamptz key written from
-- sessions in two time zones and date styles is one key, in UTC, and verify
-- run from a third finds no drift in Redis or OpenSearch (it renders dates
-- and the timestamptz column as the worker does)
CREATE TABLE events (at timestamptz PRIMARY KEY, day date, what text);
SELECT polyglot.sync('events', 'cache', '{"key": "event:{at}"}', false) AS ev_json \gset
SELECT polyglot.sync('events', 'os', '{"index": "polyglot_verify_events"}', false) AS ev_os \gset
SET timezone = 'America/New_York';
SET datestyle = 'SQL, DMY';
INSERT INTO events VALUES ('2026-03-01 12:00:00+00', '2026-03-01', 'launch');
SET timezone = 'Asia/Tokyo';
SET datestyle = 'German';
UPDATE events SET what = 'launch, moved' WHERE at = '2026-03-01 12:00:00+00';
INSERT INTO events VALUES ('2026-03-02 00:30:00+09', '2026-03-02', 'review');
SELECT caught_up();
\! redis-cli -p $REDIS_PORT -n 8 --scan --pattern 'event:*' | sort
SET timezone = 'Pacific/Auckland';
SET datestyle = 'Postgres, MDY';
SELECT r.server_name, count(v.kind) AS drift
FROM polyglot.routes r LEFT JOIN LATERAL polyglot.verify(r.id) v ON true
WHERE r.source_name = 'public.events' GROUP BY 1 ORDER BY 1;
RESET timezone;
RESET datestyle;
\! curl -s -o /dev/null -XDELETE "$OPENSEARCH_URL/polyglot_verify_events?ignore_unavailable=true"

-- the same for a domain over timestamptz, a float8 and a bytea in one key,
-- written under other time zones, extra_float_digits and bytea_output
CREATE DOMAIN stamp AS timestamptz;
CREATE TABLE oddkeys (s stamp, f float8, b bytea, v int, PRIMARY KEY (s, f, b));
SELECT polyglot.sync('oddkeys', 'cache', '{"key": "odd:{s}|{f}|{b}"}', false) AS odd \gset
SET timezone = 'America/New_York';
SET extra_float_digits = 0;
SET bytea_output = 'escape';
INSERT INTO oddkeys VALUES ('2026-03-01 12:00:00+00', 1.0 / 3, '\x00ff', 1);
SET timezone = 'Asia/Tokyo';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
UPDATE oddkeys SET v = 2;
RESET timezone;
RESET extra_float_digits;
RESET bytea_output;
SELECT caught_up();
\! redis-cli -p $REDIS_PORT -n 8 --scan --pattern 'odd:*'
-- verify from a session with other settings still reads the Redis key back
-- as the row's key
SET extra_float_digits = 0;
SET bytea_output = 'escape';
SELECT count(*) AS drift FROM polyglot.verify(:odd);
RESET extra_float_digits;
RESET bytea_output;

-- Repair deletes only keys the route could have written.  A template of
-- one text column, {k}, matches every key of its Redis database: a key
-- that holds a value of another shape (an application's string, the
-- document of a table of other columns, a hash) is reported as extra with
-- no key, and left alone; a document of the route's columns with no row
-- is deleted.
\! redis-cli -p $REDIS_PORT -n 9 FLUSHDB > /dev/null
CREATE SERVER cache9 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port', db '9');
CREATE TABLE kv (k text PRIMARY KEY, v text);
SELECT polyglot.sync('kv', 'cache9', '{"key": "{k}"}') AS kv \gset
INSERT INTO kv VALUES ('a', 'one'), ('b', 'two');
SELECT caught_up();
\! redis-cli -p $REDIS_PORT -n 9 SET app:config 'plain text' > /dev/null
\! redis-cli -p $REDIS_PORT -n 9 SET other:1 '{"id":1,"name":"a row of another table"}' > /dev/null
\! redis-cli -p $REDIS_PORT -n 9 SET nested '{"v":{"k":1},"w":[1]}' > /dev/null
\! redis-cli -p $REDIS_PORT -n 9 HSET ahash k x > /dev/null
\! redis-cli -p $REDIS_PORT -n 9 SET gone '{"k":"gone","v":"a row since deleted"}' > /dev/null
\! redis-cli -p $REDIS_PORT -n 9 SET gone2 '{"v":null}' > /dev/null
SET client_min_messages = warning;
SELECT * FROM polyglot.verify(:kv, repair => true) ORDER BY store_key;
RESET client_min_messages;
SELECT caught_up();
\! redis-cli -p $REDIS_PORT -n 9 --scan | sort
SELECT polyglot.unsync('kv', 'cache9');
DROP TABLE kv;
DROP SERVER cache9;
\! redis-cli -p $REDIS_PORT -n 9 FLUSHDB > /dev/null

DROP TABLE items, docs_items, events, oddkeys;
DROP DOMAIN stamp;
DROP PROCEDURE churn(regclass, int, int);
DROP FUNCTION caught_up(float8);
DROP SERVER cache, docs, os, es CASCADE;
\! redis-cli -p $REDIS_PORT -n 8 FLUSHDB > /dev/null
\! $MONGO_TOOL drop polyglot_verify
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_verify?ignore_unavailable=true"; done
