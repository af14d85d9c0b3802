--
-- sync_misuse: wrong uses of sync and of the capture triggers give clear
-- errors with SQLSTATEs, never a crash.
--
\getenv redis_port REDIS_PORT
\set VERBOSITY default
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo;
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER other_fdw;

-- Shows the SQLSTATE and message of a statement's error
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE msg text; st text; hint text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
  RETURN st || ': ' || msg || CASE WHEN hint <> '' THEN ' (' || hint || ')' ELSE '' END;
END $$;

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
-- nothing was left behind by the failed calls
SELECT count(*) AS routes FROM polyglot.routes WHERE source_relid = 't'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 't'::regclass;
-- twice the same route
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}')$$);
SELECT try($$SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}')$$);
-- routes that do not exist
SELECT try($$SELECT polyglot.unsync('keyless', 'cache')$$);
SELECT try($$SELECT polyglot.pause(12345)$$);
SELECT try($$SELECT polyglot.retry(12345)$$);

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

SELECT polyglot.unsync('t', 'cache');
SELECT polyglot.unsync('ri', 'cache');

-- a route removed in the transaction that wrote to its table leaves no
-- outbox rows behind
SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}') AS route \gset
BEGIN;
INSERT INTO t VALUES (2, 'written, then unsynced');
SELECT polyglot.unsync('t', 'cache');
COMMIT;
SELECT count(*) AS orphans FROM polyglot.outbox WHERE route_id = :route;
SELECT polyglot.sync('t', 'cache', '{"key": "misuse:t:{id}"}') AS route \gset
BEGIN;
INSERT INTO t VALUES (3, 'written, then dropped');
DROP TABLE t CASCADE;
COMMIT;
SELECT count(*) AS orphans FROM polyglot.outbox WHERE route_id = :route;
DROP TABLE keyless, ri, t2 CASCADE;
DROP ROLE polyglot_writer;
DROP SERVER cache, docs, other;
DROP FOREIGN DATA WRAPPER other_fdw;
DROP FUNCTION try;
\! redis-cli -p $REDIS_PORT KEYS 'misuse:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
