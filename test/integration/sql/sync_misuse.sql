--
-- sync_misuse: what the store shows of routes that could go wrong: tables
-- of one name in two schemas, each delivered to its own key; rows whose
-- key values hold the template's separator, refused at delivery; source
-- columns named like the worker's aliases; keys equal but written
-- otherwise.  The errors of sync() and of the capture triggers, which need
-- no store, are in sql/sync_errors.sql.
--
\getenv redis_port REDIS_PORT
\set VERBOSITY default
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql

-- Tables of one name in two schemas: each is delivered to its own key
CREATE SCHEMA sa;
CREATE SCHEMA sb;
CREATE TABLE sa.products (id int PRIMARY KEY, v text);
CREATE TABLE sb.products (id int PRIMARY KEY, v text);
SELECT polyglot.sync('sa.products', 'cache', backfill => false) AS sa_cache \gset
SELECT polyglot.sync('sb.products', 'cache', backfill => false) AS sb_cache \gset
INSERT INTO sa.products VALUES (1, 'from sa');
INSERT INTO sb.products VALUES (1, 'from sb');
SELECT wait_for($$(SELECT sum(delivered) FROM polyglot.status WHERE route IN (
                    polyglot._route('sa.products', 'cache'), polyglot._route('sb.products', 'cache'))) >= 2$$);
\! redis-cli -p $REDIS_PORT GET sa.products:1
\! redis-cli -p $REDIS_PORT GET sb.products:1
SELECT polyglot.unsync('sa.products', 'cache'), polyglot.unsync('sb.products', 'cache');
DROP TABLE sa.products, sb.products;
DROP SCHEMA sa, sb;
\! redis-cli -p $REDIS_PORT DEL sa.products:1 sb.products:1 > /dev/null
-- a template whose values can hold what separates them: rows ('x:y', 'z')
-- and ('x', 'y:z') would share one key.  The rows whose value holds the
-- separator are refused at delivery, each with an error (the table is
-- empty: with a backfill, its events could make the two deliveries waited
-- for those of one worker, before the other had written p:q)
CREATE TABLE pair (a text, b text, n int, u uuid, PRIMARY KEY (a, b));
SELECT polyglot.sync('pair', 'cache', '{"key": "misuse:pair:{a}:{b}"}', backfill => false) AS pair \gset
INSERT INTO pair VALUES ('x:y', 'z'), ('x', 'y:z'), ('p', 'q');
SELECT wait_for($$EXISTS (SELECT FROM polyglot.outbox o WHERE o.route_id = polyglot._route('pair', 'cache')
                            AND o.last_error IS NOT NULL)
                  AND (SELECT delivered FROM polyglot.status WHERE route = polyglot._route('pair', 'cache')) >= 2$$);
SELECT key, last_error FROM polyglot.outbox WHERE route_id = :pair AND last_error IS NOT NULL;
\! redis-cli -p $REDIS_PORT --scan --pattern 'misuse:pair:*' | sort
\! redis-cli -p $REDIS_PORT GET misuse:pair:x:y:z
SELECT polyglot.unsync('pair', 'cache');
DROP TABLE pair;

-- A source column named t is delivered as a column, not taken for the row
-- (a composite t was delivered instead of the row; a text t stuck the
-- route on "function row_to_json(text) does not exist"); the same for a
-- column named x when the route lists its columns (each route is waited
-- for, and the tables are empty so no backfill is asked: with one, a route's
-- two deliveries could have ended the wait before the other's first)
CREATE TYPE misuse_pair AS (a int, b int);
CREATE TABLE colt (id int PRIMARY KEY, t misuse_pair, x text);
CREATE TABLE colt2 (id int PRIMARY KEY, t text, x int[]);
SELECT polyglot.sync('colt', 'cache', '{"key": "misuse:colt:{id}"}', backfill => false) IS NOT NULL AS synced;
SELECT polyglot.sync('colt2', 'cache', '{"key": "misuse:colt2:{id}", "columns": ["id", "t", "x"]}', backfill => false) IS NOT NULL AS synced;
INSERT INTO colt VALUES (1, ROW(2, 3), 'x');
INSERT INTO colt2 VALUES (1, 'tee', '{4,5}');
SELECT wait_for($$(SELECT min(delivered) FROM polyglot.status
                    WHERE route IN (polyglot._route('colt', 'cache'), polyglot._route('colt2', 'cache'))) >= 1$$);
\! redis-cli -p $REDIS_PORT GET misuse:colt:1
\! redis-cli -p $REDIS_PORT GET misuse:colt2:1
SELECT count(*) AS drift FROM polyglot.verify(polyglot._route('colt', 'cache'));
SELECT polyglot.unsync('colt', 'cache'), polyglot.unsync('colt2', 'cache');
DROP TABLE colt, colt2;
DROP TYPE misuse_pair;

-- Keys equal but written otherwise are two keys: changing numeric 1.0 to
-- 1.000 (or interval '1 day' to '24:00:00') moves the row to the new key
-- and deletes the old one; a stale key of the old writing is repaired
-- away by verify
CREATE TABLE numkey (id numeric PRIMARY KEY, v text);
CREATE TABLE ivkey (id interval PRIMARY KEY, v text);
SELECT polyglot.sync('numkey', 'cache', '{"key": "misuse:num:{id}"}', backfill => false) IS NOT NULL AS synced;
SELECT polyglot.sync('ivkey', 'cache', '{"key": "misuse:iv:{id}"}', backfill => false) IS NOT NULL AS synced;
CREATE FUNCTION misuse_idle() RETURNS text LANGUAGE sql AS $f$
  SELECT wait_for($$NOT EXISTS (SELECT FROM polyglot.status
                                 WHERE route IN (polyglot._route('numkey', 'cache'), polyglot._route('ivkey', 'cache'))
                                   AND pending > 0)$$)
$f$;
INSERT INTO numkey VALUES (1.0, 'one');
INSERT INTO ivkey VALUES ('1 day', 'a day');
SELECT misuse_idle();
UPDATE numkey SET id = 1.000;
UPDATE ivkey SET id = '24:00:00';
SELECT misuse_idle();
\! redis-cli -p $REDIS_PORT --scan --pattern 'misuse:num:*' | sort
\! redis-cli -p $REDIS_PORT --scan --pattern 'misuse:iv:*' | sort
\! redis-cli -p $REDIS_PORT SET misuse:num:1.00 '{"id":1.00,"v":"one"}' > /dev/null
SET client_min_messages = warning;
SELECT kind, key, store_key FROM polyglot.verify(polyglot._route('numkey', 'cache'), true);
RESET client_min_messages;
SELECT misuse_idle();
\! redis-cli -p $REDIS_PORT --scan --pattern 'misuse:num:*' | sort
SELECT count(*) AS drift FROM polyglot.verify(polyglot._route('numkey', 'cache'));
SELECT polyglot.unsync('numkey', 'cache'), polyglot.unsync('ivkey', 'cache');
DROP TABLE numkey, ivkey;
DROP FUNCTION misuse_idle;
\! redis-cli -p $REDIS_PORT --scan --pattern 'misuse:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null

DROP SERVER cache;
\! redis-cli -p $REDIS_PORT KEYS 'misuse:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
