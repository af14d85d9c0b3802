--
-- await_delivery: read-your-writes.  polyglot.await_delivery() returns
-- once every change this session committed is in every store it goes to
-- (Redis and MongoDB here, read back at once through foreign tables), or
-- false when its timeout passes first: a paused route, a change given up.
-- A loop of 100 commits, each awaited and then read from both stores,
-- shows it never returns early; documents that include a related row
-- (a fan-out, which the worker expands) are awaited too.
--
\i test/integration/sql/setup.psql
\getenv redis_port REDIS_PORT
\getenv mongo_uri MONGO_URI
CREATE SERVER aw_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER aw_docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'polyglot_await');
\! redis-cli -p $REDIS_PORT --scan --pattern 'aw:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null

-- nothing committed yet: nothing to wait for
SELECT polyglot.await_delivery();

CREATE TABLE aw_items (id int PRIMARY KEY, n int NOT NULL, label text);
INSERT INTO aw_items SELECT g, 0, 'item ' || g FROM generate_series(1, 20) g;
SELECT polyglot.sync('aw_items', 'aw_cache', '{"key": "aw:{id}"}') > 0 AS synced;
SELECT polyglot.sync('aw_items', 'aw_docs', '{"collection": "aw_items"}') > 0 AS synced;
CREATE FOREIGN TABLE aw_items_redis (key text, value jsonb) SERVER aw_cache OPTIONS (prefix 'aw:');
CREATE FOREIGN TABLE aw_items_mongo (_id int, n int, label text) SERVER aw_docs
  OPTIONS (collection 'aw_items');
SELECT wait_synced(polyglot.route('aw_items@aw_cache')), wait_synced(polyglot.route('aw_items@aw_docs'));

-- one change, awaited, read back from both stores
UPDATE aw_items SET label = 'first' WHERE id = 1;
SELECT polyglot.await_delivery('30s');
SELECT value->>'label' AS redis, (SELECT label FROM aw_items_mongo WHERE _id = 1) AS mongo
FROM aw_items_redis WHERE key = '1';

-- 100 commits, each awaited and read back at once: never early
CREATE PROCEDURE aw_loop() LANGUAGE plpgsql AS $$
DECLARE i int; k int; r jsonb; m int; early int := 0;
BEGIN
  FOR i IN 1..100 LOOP
    k := 1 + i % 20;
    UPDATE aw_items SET n = i WHERE id = k;
    IF i % 10 = 0 THEN
      DELETE FROM aw_items WHERE id = 21;
      INSERT INTO aw_items VALUES (21, i, 'again');
    END IF;
    COMMIT;
    IF NOT polyglot.await_delivery('30s') THEN
      RAISE EXCEPTION 'commit % was not delivered within 30 s', i;
    END IF;
    SELECT value INTO r FROM aw_items_redis WHERE key = k::text;
    SELECT n INTO m FROM aw_items_mongo WHERE _id = k;
    IF (r->>'n')::int IS DISTINCT FROM i OR m IS DISTINCT FROM i THEN
      early := early + 1;
      RAISE NOTICE 'commit %: Redis has n = %, MongoDB n = %', i, r->>'n', m;
    END IF;
  END LOOP;
  RAISE NOTICE 'reads that missed an awaited commit: %', early;
END $$;
CALL aw_loop();

-- a rolled-back change is nothing to wait for
BEGIN;
UPDATE aw_items SET label = 'rolled back' WHERE id = 2;
ROLLBACK;
SELECT polyglot.await_delivery('0s');

-- a paused route: false once the timeout passes; true after the resume
SELECT polyglot.pause('aw_items@aw_docs');
UPDATE aw_items SET label = 'while paused' WHERE id = 3;
SELECT polyglot.await_delivery('200ms');
SELECT wait_synced(polyglot.route('aw_items@aw_cache'));
SELECT value->>'label' AS redis_has_it FROM aw_items_redis WHERE key = '3';
SELECT polyglot.resume('aw_items@aw_docs');
SELECT polyglot.await_delivery('30s');
SELECT label FROM aw_items_mongo WHERE _id = 3;

-- documents that include a related row: a change of the brand is a
-- fan-out the worker expands into the products' documents
CREATE TABLE aw_brands (id int PRIMARY KEY, name text);
CREATE TABLE aw_products (id int PRIMARY KEY, brand_id int REFERENCES aw_brands, title text);
INSERT INTO aw_brands VALUES (1, 'Acme'), (2, 'Other');
INSERT INTO aw_products SELECT g, 1 + g % 2, 'product ' || g FROM generate_series(1, 300) g;
SELECT polyglot.sync('aw_products', 'aw_cache',
  '{"key": "aw:product:{id}", "include": {"brand": {"table": "aw_brands"}}}') > 0 AS synced;
CREATE FOREIGN TABLE aw_product_docs (key text, value jsonb) SERVER aw_cache
  OPTIONS (prefix 'aw:product:');
SELECT wait_synced(polyglot.route('aw_products@aw_cache'));
UPDATE aw_brands SET name = 'Acme Corporation' WHERE id = 1;
SELECT polyglot.await_delivery('30s');
SELECT value->'brand'->>'name' AS brand, count(*) FROM aw_product_docs GROUP BY 1 ORDER BY 1;

-- a change given up (a dead letter: a string where a synced hash must go)
-- is not delivered: false; once replayed and delivered, true
ALTER SYSTEM SET polyglot.max_attempts = 1;
SELECT pg_reload_conf();
\! redis-cli -p $REDIS_PORT SET aw:tag:6 notahash > /dev/null
CREATE TABLE aw_tags (id int PRIMARY KEY, v text);
-- (no backfill: its own event of the key would be a second dead letter)
SELECT polyglot.sync('aw_tags', 'aw_cache', '{"mode": "hash", "key": "aw:tag:{id}"}', false) > 0 AS synced;
INSERT INTO aw_tags VALUES (6, 'six');
SELECT wait_for($$(SELECT dead_letters = 1 FROM polyglot.status WHERE source = 'public.aw_tags')$$);
SELECT polyglot.await_delivery('300ms');
\! redis-cli -p $REDIS_PORT DEL aw:tag:6 > /dev/null
SELECT polyglot.retry('aw_tags@aw_cache');
SELECT polyglot.await_delivery('30s');
\! redis-cli -p $REDIS_PORT HGET aw:tag:6 v
ALTER SYSTEM RESET polyglot.max_attempts;
SELECT pg_reload_conf();

-- anyone may wait: a role that writes to a synced table
CREATE ROLE regress_aw_user;
GRANT SELECT, UPDATE ON aw_items TO regress_aw_user;
SET ROLE regress_aw_user;
UPDATE aw_items SET label = 'by another role' WHERE id = 5;
SELECT polyglot.await_delivery('30s');
RESET ROLE;

-- in a transaction that has written: its changes are not committed yet
BEGIN;
UPDATE aw_items SET label = 'not yet' WHERE id = 8;
SELECT polyglot.await_delivery('1s');
COMMIT;
SELECT polyglot.await_delivery('30s');
SELECT value->>'label' AS label FROM aw_items_redis WHERE key = '8';

-- errors
SELECT try($$SELECT polyglot.await_delivery('-1s')$$);
SELECT try($$SELECT polyglot.await_delivery('1 month')$$);
SELECT try($$SELECT polyglot.await_delivery('1 day -1 hour')$$);
SELECT polyglot.await_delivery(NULL) IS NULL AS strict;

DELETE FROM aw_items_redis;
DELETE FROM aw_items_mongo;
DELETE FROM aw_product_docs;
\! redis-cli -p $REDIS_PORT DEL aw:tag:6 aw:tag:7 > /dev/null
SELECT polyglot.unsync('aw_items', 'aw_cache'), polyglot.unsync('aw_items', 'aw_docs'),
       polyglot.unsync('aw_products', 'aw_cache'), polyglot.unsync('aw_tags', 'aw_cache');
DROP PROCEDURE aw_loop();
REVOKE ALL ON aw_items FROM regress_aw_user;
DROP ROLE regress_aw_user;
DROP TABLE aw_items, aw_products, aw_brands, aw_tags;
DROP SERVER aw_cache, aw_docs CASCADE;
