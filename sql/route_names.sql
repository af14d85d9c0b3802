--
-- route_names: a route has a name, unique in the database: the "name"
-- given to sync(), by default <table>@<server> (<schema>.<table>@<server>
-- outside schema public).  A table may have several routes to one server,
-- each of its own name and target; the functions that take a route take
-- its name, and a table and a server that name several routes are refused
-- with their names.  No store is needed: the routes are paused or never
-- written to.
--
\set VERBOSITY default
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://127.0.0.1:1');

\i test/integration/sql/setup.psql

CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, sku text, v text);
CREATE TABLE items (id int PRIMARY KEY, v text);

-- default names
SELECT polyglot.sync('items', 'cache', '{"key": "n:items:{id}"}', backfill => false) AS plain \gset
SELECT polyglot.sync('shop.items', 'cache', '{"key": "n:shop:{id}"}', backfill => false) AS shop \gset
SELECT name, source, server FROM polyglot.status WHERE route IN (:plain, :shop) ORDER BY route;
-- the same table and server again, without a name: refused as before
SELECT try($$SELECT polyglot.sync('items', 'cache', '{"key": "n:items2:{id}"}')$$);

-- a second route of a table to one server, of a name and target of its own
SELECT polyglot.sync('shop.items', 'cache',
                     '{"name": "item cache by sku", "mode": "invalidate", "key": "n:sku:{id}"}',
                     backfill => false) AS by_sku \gset
SELECT polyglot.sync('shop.items', 'search', '{"name": "items_a", "index": "items_a"}', backfill => false) AS ia \gset
SELECT polyglot.sync('shop.items', 'search', '{"name": "items_b", "index": "items_b", "columns": ["id", "sku"]}',
                     backfill => false) AS ib \gset
SELECT name, server_name, options FROM polyglot.routes WHERE source_relid = 'shop.items'::regclass ORDER BY id;
-- targets may still not overlap, and names not repeat
SELECT try($$SELECT polyglot.sync('shop.items', 'search', '{"name": "items_c", "index": "items_a"}')$$);
SELECT try($$SELECT polyglot.sync('shop.items', 'cache', '{"name": "items_d", "key": "n:shop:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('items', 'search', '{"name": "items_b", "index": "other"}')$$);
SELECT try($$SELECT polyglot.sync('items', 'search', '{"name": ""}')$$);
SELECT try($$SELECT polyglot.sync('items', 'search', '{"name": 7}')$$);
-- a number is an id: untyped ids (a driver's parameters, '5') reach the
-- functions that take a name, which take them as ids
SELECT try($$SELECT polyglot.sync('items', 'search', '{"name": "42"}')$$);
SELECT polyglot.route(:'plain') = :plain AS id_as_text;
-- a renamed table is still synced: sync() without a name is refused
ALTER TABLE items RENAME TO items_renamed;
SELECT try($$SELECT polyglot.sync('items_renamed', 'cache', '{"key": "n:renamed:{id}"}')$$);
ALTER TABLE items_renamed RENAME TO items;
-- each route has its own capture triggers
SELECT count(*) AS triggers FROM pg_trigger
 WHERE tgrelid = 'shop.items'::regclass AND tgname LIKE 'polyglot_sync_%';

-- a table and a server that name several routes are refused, with the names
SELECT try_detail($$SELECT polyglot.pause('shop.items', 'search')$$);
SELECT try($$SELECT polyglot.verify('shop.items', 'cache')$$);
SELECT polyglot._route('items', 'cache') = :plain AS one_route;

-- by name: route(), pause, resume, backfill, retry, verify, unsync
SELECT polyglot.route('items_a') = :ia AS found, polyglot.route('item cache by sku') = :by_sku AS found;
SELECT try($$SELECT polyglot.route('no such route')$$);
SELECT polyglot.pause('items_a'), polyglot.pause('items_b');
SELECT name, state FROM polyglot.status WHERE route IN (:ia, :ib) ORDER BY name;
SELECT polyglot.resume('items_b');
SELECT name, state FROM polyglot.status WHERE route IN (:ia, :ib) ORDER BY name;
INSERT INTO shop.items VALUES (1, 'a-1', 'one');
SELECT route_id = :ia AS items_a, key FROM polyglot.outbox WHERE route_id IN (:ia, :ib) ORDER BY route_id;
SELECT polyglot.backfill('items_a') >= 0 AS backfill;
SELECT polyglot.retry('items_a') AS replayed;
SELECT try($$SELECT * FROM polyglot.verify('item cache by sku')$$);
SELECT try($$SELECT polyglot.pause('no such route')$$);
-- verify(table, server) still takes two untyped literals
SELECT try($$SELECT * FROM polyglot.verify('items', 'cache')$$);

-- another role: its own routes only; unsync needs the table's owner
CREATE ROLE names_other;
GRANT USAGE ON SCHEMA shop TO names_other;
SET ROLE names_other;
SELECT try($$SELECT polyglot.pause('items_a')$$);
SELECT try($$SELECT polyglot.unsync('items_a')$$);
RESET ROLE;

-- unsync by name drops that route alone, with its triggers and events
SELECT polyglot.unsync('items_a');
SELECT name FROM polyglot.routes WHERE source_relid = 'shop.items'::regclass ORDER BY id;
SELECT count(*) AS triggers FROM pg_trigger
 WHERE tgrelid = 'shop.items'::regclass AND tgname LIKE 'polyglot_sync_' || :ia || '%';
SELECT count(*) AS events FROM polyglot.outbox WHERE route_id = :ia;
SELECT try($$SELECT polyglot.unsync('items_a')$$);
-- one route of the table to the server is left: (table, server) finds it
SELECT polyglot.unsync('shop.items', 'search');
SELECT polyglot.unsync('item cache by sku');
SELECT polyglot.unsync('shop.items', 'cache');
SELECT polyglot.unsync('items@cache');
SELECT count(*) AS routes FROM polyglot.routes;

REVOKE USAGE ON SCHEMA shop FROM names_other;
DROP ROLE names_other;
DROP TABLE items, shop.items;
DROP SCHEMA shop;
DROP SERVER cache, search;
