--
-- sync_redis: changes of synced tables reach Redis through the outbox and
-- the worker: every mode, key templates, composite keys, key changes,
-- TRUNCATE, ttl, columns/exclude, rollbacks, pause/resume.
--
\getenv redis_port REDIS_PORT
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

-- Waits until the worker has delivered every pending event of a route.
CREATE FUNCTION wait_synced(route int, timeout_s float8 DEFAULT 30)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  n bigint;
BEGIN
  LOOP
    SELECT count(*) INTO n FROM polyglot.outbox o WHERE o.route_id = route;
    IF n = 0 THEN
      RETURN 'synced';
    END IF;
    IF clock_timestamp() - t0 > timeout_s * interval '1 second' THEN
      RETURN format('timeout: %s events pending', n);
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;

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
-- 2,500 keys in three outbox rows
SELECT count(*) AS outbox_rows, sum(array_length(key, 1)) AS keys
FROM polyglot.outbox WHERE route_id = :route;
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
  '{"mode": "hash", "key": "sync:stock:{warehouse}:{sku}", "columns": ["sku", "qty", "note"], "ttl": 3600}')
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
-- json mode with "columns" and a default key (<table>:<key>), ttl
--
CREATE TABLE sessions (token uuid PRIMARY KEY, user_id int, data jsonb);
SELECT polyglot.sync('sessions', 'cache', '{"columns": ["user_id", "data"], "ttl": 60}') AS route \gset
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
SELECT polyglot.sync('orders', 'cache', '{"mode": "publish", "channel": "sync:orders"}') AS route \gset
\! (timeout 3 redis-cli -p $REDIS_PORT SUBSCRIBE sync:orders > /tmp/pg_polyglot_publish.out 2>&1 < /dev/null &) ; sleep 0.5
INSERT INTO orders VALUES (1, 'new');
SELECT wait_synced(:route);
UPDATE orders SET status = 'paid' WHERE id = 1;
SELECT wait_synced(:route);
DELETE FROM orders WHERE id = 1;
SELECT wait_synced(:route);
\! sleep 0.3; grep '^{' /tmp/pg_polyglot_publish.out; rm -f /tmp/pg_polyglot_publish.out

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

DROP TABLE products, stock, sessions, prices;
DROP SERVER cache;
\! redis-cli -p $REDIS_PORT KEYS 'sync:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
