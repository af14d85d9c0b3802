--
-- sync_errors: wrong uses of sync and of the capture triggers give clear
-- errors with SQLSTATEs, never a crash; a target that two routes would
-- share is refused at sync().  No store is needed: the servers point at a
-- port nothing listens on, and nothing here waits for a delivery (the
-- suite test/integration/sql/sync_misuse.sql checks those).  sync() needs
-- the library preloaded: make installcheck starts a server with
-- test/regress.conf.
--
\set VERBOSITY default
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo;
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER other_fdw;

\i test/integration/sql/setup.psql

CREATE TABLE keyless (a int, b text);
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE VIEW v AS SELECT * FROM t;
CREATE TABLE ri (code text NOT NULL, v text);
CREATE UNIQUE INDEX ri_code ON ri (code);
ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_code;

-- the source
SELECT try($$SELECT polyglot.sync('keyless', 'cache')$$);
SELECT try($$SELECT polyglot.sync('v', 'cache')$$);
SELECT try($$SELECT polyglot.sync('no_such_table', 'cache')$$);
-- a replica identity index serves as the key
SELECT try($$SELECT polyglot.sync('ri', 'cache', '{"key": "misuse:ri:{code}"}')$$);
SELECT key_columns FROM polyglot.routes WHERE source_relid = 'ri'::regclass;
-- the server
SELECT try($$SELECT polyglot.sync('t', 'nowhere')$$);
SELECT try($$SELECT polyglot.sync('t', 'other')$$);
SELECT try($$SELECT polyglot.sync('t', 'docs')$$);
-- the options
SELECT try($$SELECT polyglot.sync('t', 'cache', '[]')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"mode": "set"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"mode": 1}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"modes": "json"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "t:{v}"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "t:static"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": ""}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"ttl": 0}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"ttl": "10"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"ttl": 1.5}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"mode": "invalidate", "ttl": 10}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"mode": "publish"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"channel": "c"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"columns": ["v"], "exclude": ["id"]}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"columns": ["nope"]}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"columns": "v"}')$$);
-- a source dropped between sync()'s own checks and those of the route's
-- options (a concurrent DROP TABLE): an error, not a crash, for each store's
-- default target
SELECT try($$SELECT polyglot._route_options(4294967295::oid::regclass, 'cache', '{id}', '{}')$$);
SELECT try($$SELECT polyglot._route_options(4294967295::oid::regclass, 'docs', '{id}', '{"database": "d"}')$$);
-- nothing was left behind by the failed calls
SELECT count(*) AS routes FROM polyglot.routes WHERE source_relid = 't'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 't'::regclass;
-- twice the same route (without a backfill: the worker would enqueue the
-- table's rows whenever it got to it, and the outbox is counted below)
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}', backfill => false)$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}')$$);
-- routes that do not exist
SELECT try($$SELECT polyglot.unsync('keyless', 'cache')$$);
SELECT try($$SELECT polyglot.pause(12345)$$);
SELECT try($$SELECT polyglot.retry(12345)$$);

SELECT polyglot.backfill(12345);
-- the trigger functions called other ways than sync installs them
SELECT try($$SELECT polyglot._capture()$$);
SELECT try($$SELECT polyglot._capture_truncate()$$);
CREATE TABLE t2 (id int PRIMARY KEY);
CREATE TRIGGER bad_before BEFORE INSERT ON t2 FOR EACH ROW EXECUTE FUNCTION polyglot._capture('1', '1');
SELECT try($$INSERT INTO t2 VALUES (1)$$);
DROP TRIGGER bad_before ON t2;
CREATE TRIGGER bad_stmt AFTER INSERT ON t2 FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture('1', '1');
SELECT try($$INSERT INTO t2 VALUES (1)$$);
DROP TRIGGER bad_stmt ON t2;
CREATE TRIGGER bad_args AFTER INSERT ON t2 FOR EACH ROW EXECUTE FUNCTION polyglot._capture();
SELECT try($$INSERT INTO t2 VALUES (1)$$);
DROP TRIGGER bad_args ON t2;
CREATE TRIGGER bad_attnum AFTER INSERT ON t2 FOR EACH ROW EXECUTE FUNCTION polyglot._capture('1', '9');
SELECT try($$INSERT INTO t2 VALUES (1)$$);
DROP TRIGGER bad_attnum ON t2;
CREATE TRIGGER bad_number AFTER INSERT ON t2 FOR EACH ROW EXECUTE FUNCTION polyglot._capture('x', '1');
SELECT try($$INSERT INTO t2 VALUES (1)$$);
DROP TRIGGER bad_number ON t2;
CREATE TRIGGER bad_truncate AFTER TRUNCATE ON t2 FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture_truncate('1', '1');
SELECT try($$TRUNCATE t2$$);
DROP TRIGGER bad_truncate ON t2;
SELECT count(*) AS nothing_captured FROM polyglot.outbox WHERE route_id = 1;

-- a writer without any privilege on the extension's tables can write to a
-- synced table: capture needs no grant (the route is paused, so the events
-- stay in the outbox to be looked at)
SELECT polyglot.pause(polyglot._route('t', 'cache'));
-- (roles outlive the test database: a run stopped half-way left them)
SET client_min_messages = warning;
DROP ROLE IF EXISTS polyglot_writer;
RESET client_min_messages;
CREATE ROLE polyglot_writer;
GRANT INSERT, UPDATE, DELETE, SELECT, TRUNCATE ON t TO polyglot_writer;
SET ROLE polyglot_writer;
INSERT INTO t VALUES (1, 'by a plain role');
UPDATE t SET v = 'changed' WHERE id = 1;
TRUNCATE t;
SELECT try($$SELECT count(*) FROM polyglot.outbox$$);
RESET ROLE;
SELECT op, key FROM polyglot.outbox WHERE route_id = polyglot._route('t', 'cache') ORDER BY id;

-- Two rows never write one store key, whichever routes they are of; what
-- could is refused at sync().
-- Tables of one name in two schemas: default targets outside schema public
-- are schema-qualified (products in public keeps "products")
CREATE SERVER docs_db FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (database 'polyglot_misuse');
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic;
SELECT try($$SELECT polyglot._route_options(4294967295::oid::regclass, 'search', '{id}', '{}')$$);
CREATE SCHEMA sa;
CREATE SCHEMA sb;
CREATE TABLE sa.products (id int PRIMARY KEY, v text);
CREATE TABLE sb.products (id int PRIMARY KEY, v text);
CREATE TABLE products (id int PRIMARY KEY, v text);
SELECT polyglot.sync('sa.products', 'cache', backfill => false) AS sa_cache \gset
SELECT polyglot.sync('sb.products', 'cache', backfill => false) AS sb_cache \gset
SELECT polyglot.sync('products', 'cache', backfill => false) AS p_cache \gset
SELECT polyglot.sync('sa.products', 'docs_db', backfill => false) IS NOT NULL AS sa_docs;
SELECT polyglot.sync('sb.products', 'docs_db', backfill => false) IS NOT NULL AS sb_docs;
SELECT polyglot.sync('sa.products', 'search', backfill => false) IS NOT NULL AS sa_search;
SELECT polyglot.sync('sb.products', 'search', backfill => false) IS NOT NULL AS sb_search;
SELECT source_name, server_name, options->>'key' AS key, options->>'collection' AS collection,
       options->>'index' AS index
  FROM polyglot.routes WHERE source_name LIKE '%products' ORDER BY id;
-- (no store behind these servers: paused)
SELECT polyglot.pause(polyglot._route('sa.products', 'docs_db')), polyglot.pause(polyglot._route('sb.products', 'docs_db')),
       polyglot.pause(polyglot._route('sa.products', 'search')), polyglot.pause(polyglot._route('sb.products', 'search'));
-- a target another route has: the same template, collection or index
SELECT try($$SELECT polyglot.sync('t2', 'cache', '{"key": "products:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('t2', 'docs_db', '{"collection": "sa.products"}')$$);
SELECT try($$SELECT polyglot.sync('t2', 'search', '{"index": "sb.products"}')$$);
-- ... through another server object of the same store
CREATE SERVER cache_again FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '1', db '0');
SELECT try($$SELECT polyglot.sync('t2', 'cache_again', '{"key": "sa.products:{id}"}')$$);
-- ... or a template that can produce another's keys: {id} of a text key
-- is any key; a numeric {id} after "products:" is not "products:x:..."
CREATE TABLE tk (k text PRIMARY KEY, v text);
SELECT try($$SELECT polyglot.sync('tk', 'cache', '{"key": "{k}"}')$$);
SELECT try($$SELECT polyglot.sync('tk', 'cache', '{"key": "products:{k}"}')$$);
SELECT try($$SELECT polyglot.sync('tk', 'cache', '{"key": "products:x:{k}"}')$$);
SELECT polyglot.unsync('tk', 'cache');
-- the same table to the same collection through two server objects
CREATE SERVER docs_again FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (database 'polyglot_misuse');
SELECT try($$SELECT polyglot.sync('sa.products', 'docs_again')$$);
-- another database, or another Redis db, is another target
CREATE SERVER cache_db1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1', db '1');
SELECT try($$SELECT polyglot.sync('t2', 'cache_db1', '{"key": "products:{id}"}')$$);
SELECT polyglot.unsync('t2', 'cache_db1');
SELECT try($$SELECT polyglot.sync('t2', 'docs', '{"database": "polyglot_misuse2", "collection": "sa.products"}')$$);
SELECT polyglot.unsync('t2', 'docs');
-- publish routes write no key; invalidate routes may share keys, as they
-- only delete them
SELECT try($$SELECT polyglot.sync('tk', 'cache', '{"mode": "publish", "channel": "products:1"}')$$);
SELECT polyglot.unsync('tk', 'cache');
SELECT try($$SELECT polyglot.sync('t2', 'cache', '{"mode": "invalidate", "key": "inval:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('tk', 'cache', '{"mode": "invalidate", "key": "inval:{k}"}')$$);
SELECT try($$SELECT polyglot.sync('tk', 'cache_db1', '{"key": "inval:{k}"}')$$);
SELECT try($$SELECT polyglot.sync('tk', 'cache_again', '{"key": "inval:{k}"}')$$);
SELECT polyglot.unsync('tk', 'cache'), polyglot.unsync('tk', 'cache_db1'), polyglot.unsync('t2', 'cache');
-- a template whose values can hold what separates them: rows ('x:y', 'z')
-- and ('x', 'y:z') would share one key.  Placeholders side by side are
-- refused; a separator the values can hold is warned of at sync() (the
-- rows whose value holds it are refused at delivery: sync_misuse)
CREATE TABLE pair (a text, b text, n int, u uuid, PRIMARY KEY (a, b));
CREATE TABLE pair2 (n int, s text, PRIMARY KEY (n, s));
CREATE TABLE pair3 (n int, u uuid, PRIMARY KEY (n, u));
SELECT try($$SELECT polyglot.sync('pair', 'cache', '{"key": "pair:{a}{b}"}')$$);
SELECT polyglot.sync('pair', 'cache', '{"key": "misuse:pair:{a}:{b}"}') IS NOT NULL AS synced;
SELECT polyglot.unsync('pair', 'cache');
SELECT try($$SELECT polyglot.sync('pair', 'cache')$$);
SELECT polyglot.unsync('pair', 'cache');
-- a number ends at the colon, a uuid at the dot; the last placeholder
-- takes the rest; a number can hold a minus sign
SELECT try($$SELECT polyglot.sync('pair2', 'cache', '{"key": "pair2:{n}:{s}"}')$$);
SELECT try($$SELECT polyglot.sync('pair3', 'cache', '{"key": "pair3:{u}.{n}"}')$$);
SELECT try($$SELECT polyglot.sync('pair3', 'cache', '{"key": "pair3:{n}-{u}"}')$$);
SELECT polyglot.unsync('pair2', 'cache'), polyglot.unsync('pair3', 'cache');
DROP TABLE sa.products, sb.products, products, tk, pair, pair2, pair3;
DROP SCHEMA sa, sb;
DROP SERVER docs_db, docs_again, search, cache_again, cache_db1;

-- A key column of a synced table cannot be renamed (a column renamed,
-- then dropped, escaped the drop handler, and every write to the table
-- failed in the trigger); other columns can
CREATE TABLE rn (id int PRIMARY KEY, v text);
SELECT polyglot.sync('rn', 'cache', '{"key": "misuse:rn:{id}"}', false) IS NOT NULL AS synced;
SELECT try($$ALTER TABLE rn RENAME COLUMN id TO ident$$);
ALTER TABLE rn RENAME COLUMN v TO w;
ALTER TABLE rn DROP COLUMN w;
SELECT try($$INSERT INTO rn VALUES (1)$$);
SET client_min_messages = error;
ALTER TABLE rn DROP COLUMN id;
RESET client_min_messages;
SELECT count(*) AS routes FROM polyglot.routes WHERE source_relid = 'rn'::regclass;
ALTER TABLE rn ADD COLUMN id int;
SELECT try($$INSERT INTO rn VALUES (1)$$);
DROP TABLE rn;

SELECT polyglot.unsync('t', 'cache');
SELECT polyglot.unsync('ri', 'cache');

-- a route removed in the transaction that wrote to its table leaves no
-- outbox rows behind (routes without a backfill: a backfill step of the
-- worker holding the route's state could deadlock with the DROP)
SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}', backfill => false) AS route \gset
BEGIN;
INSERT INTO t VALUES (2, 'written, then unsynced');
SELECT polyglot.unsync('t', 'cache');
COMMIT;
SELECT count(*) AS orphans FROM polyglot.outbox WHERE route_id = :route;
SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}', backfill => false) AS route \gset
BEGIN;
INSERT INTO t VALUES (3, 'written, then dropped');
DROP TABLE t CASCADE;
COMMIT;
SELECT count(*) AS orphans FROM polyglot.outbox WHERE route_id = :route;
DROP TABLE keyless, ri, t2 CASCADE;
DROP ROLE polyglot_writer;
DROP SERVER cache, docs, other;
DROP FOREIGN DATA WRAPPER other_fdw;
