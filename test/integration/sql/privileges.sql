--
-- privileges: pg_polyglot for roles that are not superusers.  The owner of
-- a table with USAGE on a server syncs and operates it; another role can
-- neither sync that table, nor operate its route, nor see the route, its
-- dead letters or the owner's user mapping, nor call the internal
-- functions or write the extension's tables.  A monitoring role sees
-- every route's status but no dead letter.
--
\getenv redis_port REDIS_PORT
\set VERBOSITY default
\! redis-cli -p $REDIS_PORT --scan --pattern 'priv:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null

\i test/integration/sql/setup.psql

-- (roles outlive the test database: a run stopped half-way left them)
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_alice, regress_bob, regress_watcher;
RESET client_min_messages;
CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
CREATE ROLE regress_watcher IN ROLE pg_monitor;
CREATE SERVER priv_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
GRANT USAGE ON FOREIGN SERVER priv_cache TO regress_alice;
CREATE USER MAPPING FOR regress_alice SERVER priv_cache
  OPTIONS (user 'polyglot_test', password 'polyglot-test-password');
CREATE SCHEMA priv;
GRANT USAGE, CREATE ON SCHEMA priv TO regress_alice, regress_bob;

-- The owner of a table with USAGE on the server syncs it and operates it
SET ROLE regress_alice;
CREATE TABLE priv.items (id int PRIMARY KEY, name text);
INSERT INTO priv.items SELECT g, 'item ' || g FROM generate_series(1, 10) g;
SELECT polyglot.sync('priv.items', 'priv_cache', '{"key": "priv:{id}"}') AS route \gset
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET priv:3
UPDATE priv.items SET name = 'renamed' WHERE id = 3;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET priv:3
SELECT source, server, state FROM polyglot.status;
SELECT source_name, owner::regrole FROM polyglot.routes;
SELECT polyglot.pause(:route), polyglot.resume(:route);
SELECT polyglot.backfill('priv.items', 'priv_cache');
SELECT wait_synced(:route);
SELECT count(*) AS drift FROM polyglot.verify(:route);
-- drift made behind the extension's back, repaired by the owner
\! redis-cli -p $REDIS_PORT DEL priv:5 > /dev/null
SET client_min_messages = warning;
SELECT kind, key FROM polyglot.verify(:route, true);
RESET client_min_messages;
SELECT wait_synced(:route);
SELECT count(*) AS drift FROM polyglot.verify(:route);
-- its own user mapping, secrets included
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'priv_cache';
RESET ROLE;

-- Rights the worker relies on, taken away after sync().  The route stops,
-- and says why, when its owner loses USAGE on the server, or the user
-- mapping it was created with (it does not fall back to the PUBLIC one);
-- it resumes when they are back.  FORCE ROW LEVEL SECURITY, which would
-- hide rows from the worker, is refused on a synced table.
CREATE FUNCTION priv_error(route int, since timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE e text;
BEGIN
  FOR i IN 1 .. 300 LOOP
    SELECT s.last_error INTO e FROM polyglot.status s
     WHERE s.route = priv_error.route AND s.last_error_at > since;
    IF e IS NOT NULL THEN RETURN regexp_replace(e, 'route \d+', 'route N'); END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN 'no error';
END $$;
SET ROLE regress_alice;
SELECT try($$ALTER TABLE priv.items ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY$$);
RESET ROLE;
SELECT now() AS t0 \gset
REVOKE USAGE ON FOREIGN SERVER priv_cache FROM regress_alice;
UPDATE priv.items SET name = 'without usage' WHERE id = 4;
SELECT priv_error(:route, :'t0');
\! redis-cli -p $REDIS_PORT GET priv:4
SELECT try($$SELECT * FROM polyglot.verify($$ || :route || $$)$$);
GRANT USAGE ON FOREIGN SERVER priv_cache TO regress_alice;
SELECT polyglot.resume(:route);
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET priv:4
CREATE USER MAPPING FOR PUBLIC SERVER priv_cache;
DROP USER MAPPING FOR regress_alice SERVER priv_cache;
SELECT now() AS t0 \gset
UPDATE priv.items SET name = 'without its mapping' WHERE id = 4;
SELECT priv_error(:route, :'t0');
\! redis-cli -p $REDIS_PORT GET priv:4
CREATE USER MAPPING FOR regress_alice SERVER priv_cache
  OPTIONS (user 'polyglot_test', password 'polyglot-test-password');
DROP USER MAPPING FOR PUBLIC SERVER priv_cache;
SELECT polyglot.resume(:route);
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT GET priv:4
DROP FUNCTION priv_error;

-- a dead letter of the route (made here by hand)
INSERT INTO polyglot.dead_letters (id, route_id, op, key, enqueued_at, attempts, error)
VALUES (nextval('polyglot.outbox_id_seq'), :route, 'U', '{{7}}', now(), 5, 'made by hand');

-- Another role can do none of it
SET ROLE regress_bob;
CREATE TABLE priv.bobs (id int PRIMARY KEY);
SELECT try($$SELECT polyglot.sync('priv.items', 'priv_cache')$$);
SELECT try($$SELECT polyglot.sync('priv.bobs', 'priv_cache')$$);
SELECT try($$SELECT polyglot.unsync('priv.items', 'priv_cache')$$);
SELECT try(format('SELECT polyglot.%s(%s)', f, :route))
FROM unnest(ARRAY['pause', 'resume', 'retry', 'backfill']) f;
SELECT try(format('SELECT * FROM polyglot.verify(%s)', :route));
-- by table and server, the route is not even visible
SELECT try($$SELECT polyglot.pause('priv.items', 'priv_cache')$$);
SELECT try($$SELECT polyglot.ping('priv_cache')$$);
-- the internals and the tables
SELECT try($$SELECT polyglot._sync('priv.bobs', 'priv_cache', '{}', true, 10)$$);
SELECT try(format('SELECT polyglot._pause(%s)', :route));
SELECT try($$SELECT polyglot._backfill_step(1)$$);
SELECT try($$INSERT INTO polyglot.routes (source_relid, source_name, server_oid, server_name, store, key_columns, owner)
                  VALUES ('priv.items'::regclass, 'x', 1, 'x', 'redis', '{id}', 10)$$);
SELECT try($$UPDATE polyglot.routes SET paused = true$$);
SELECT try($$DELETE FROM polyglot.outbox$$);
SELECT try($$SELECT * FROM polyglot.outbox$$);
SELECT try($$DELETE FROM polyglot.dead_letters$$);
SELECT try($$UPDATE polyglot.route_state SET delivered = 0$$);
-- what it sees: no route, no status, no dead letter, no secret
SELECT count(*) AS routes FROM polyglot.routes;
SELECT count(*) AS status_rows FROM polyglot.status;
SELECT count(*) AS dead_letters FROM polyglot.dead_letters;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'priv_cache';
-- an operator planted in its own schema, first in its search_path, is
-- never used by what runs as the extension's owner
CREATE TABLE priv.pwned (who name);
CREATE FUNCTION priv.eq(int, int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO priv.pwned VALUES (current_user);
  RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR priv.= (LEFTARG = int, RIGHTARG = int, FUNCTION = priv.eq);
SET search_path = priv, pg_catalog;
SELECT public.try(format('SELECT polyglot.pause(%s)', :route));
SELECT public.try(format('SELECT * FROM polyglot.verify(%s)', :route));
SELECT public.try($$SELECT polyglot.sync('priv.bobs', 'priv_cache')$$);
SELECT count(*) AS status_rows FROM polyglot.status;
RESET search_path;
SELECT count(*) AS planted_operator_ran FROM priv.pwned;
RESET ROLE;

-- The owner sees its dead letter and replays it
SET ROLE regress_alice;
SELECT op, key, error FROM polyglot.dead_letters;
SELECT polyglot.retry(:route);
SELECT wait_synced(:route);
RESET ROLE;

-- A monitoring role sees every route's status, and no dead letter
SET ROLE regress_watcher;
SELECT count(*) > 0 AS sees_routes FROM polyglot.status WHERE source = 'priv.items';
SELECT count(*) > 0 AS sees_metrics FROM polyglot.metrics WHERE source = 'priv.items';
SELECT count(*) AS dead_letters FROM polyglot.dead_letters;
RESET ROLE;

-- A table with FORCE ROW LEVEL SECURITY is refused: the worker reads rows
-- as the owner, whom the policies would filter
SET ROLE regress_alice;
CREATE TABLE priv.forced (id int PRIMARY KEY);
ALTER TABLE priv.forced ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
SELECT try($$SELECT polyglot.sync('priv.forced', 'priv_cache')$$);
RESET ROLE;

-- status (and metrics, built on it) is a security barrier: a function in a
-- WHERE clause cannot see the rows of other roles' routes
SELECT relname, reloptions FROM pg_class
WHERE relnamespace = 'polyglot'::regnamespace AND relname = 'status';

-- Every SECURITY DEFINER function pins search_path
SELECT p.oid::regprocedure, p.proconfig FROM pg_proc p
WHERE p.pronamespace = 'polyglot'::regnamespace AND p.prosecdef ORDER BY p.oid::regprocedure::text COLLATE "C";
-- What any role may execute
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'polyglot'::regnamespace
  AND has_function_privilege('regress_bob', p.oid, 'EXECUTE') ORDER BY p.oid::regprocedure::text COLLATE "C";

-- The worker reads a table as its owner, in a security-restricted
-- operation: a cast the owner wrote on its key type (here, one that records
-- who runs it) runs as the owner, never as a superuser.
SET ROLE regress_alice;
CREATE TABLE priv.who (who name);
CREATE TYPE priv.code AS (c text);
CREATE FUNCTION priv.code_of(text) RETURNS priv.code LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO priv.who VALUES (current_user);
  RETURN ROW(trim(both '()' from $1))::priv.code;
END $$;
CREATE CAST (text AS priv.code) WITH FUNCTION priv.code_of(text);
CREATE TABLE priv.coded (c priv.code PRIMARY KEY, v int);
INSERT INTO priv.coded VALUES (ROW('a'), 1), (ROW('b'), 2), (ROW('c'), 3);
SELECT polyglot.sync('priv.coded', 'priv_cache', '{"key": "priv:coded:{c}"}') AS coded \gset
SELECT wait_synced(:coded);
UPDATE priv.coded SET v = v + 10;
SELECT wait_synced(:coded);
\! redis-cli -p $REDIS_PORT GET 'priv:coded:(b)'
-- a backfill in chunks of one row compares keys through the cast too (the
-- route paused, so that the worker takes no step of its own)
RESET ROLE;
SELECT polyglot.pause(:coded);
SELECT polyglot._start_backfill(:coded) IS NOT NULL AS started;
SELECT polyglot._backfill_step(:coded, 1) FROM generate_series(1, 4);
SELECT polyglot.resume(:coded);
SET ROLE regress_alice;
SELECT wait_synced(:coded);
SELECT who, count(*) > 0 AS ran FROM priv.who GROUP BY who;
RESET ROLE;

-- The owner truncates and drops its table: the route goes with it
SET ROLE regress_alice;
TRUNCATE priv.items;
SELECT wait_synced(:route);
\! redis-cli -p $REDIS_PORT --scan --pattern 'priv:*' | wc -l
DROP TABLE priv.items;
RESET ROLE;
SELECT count(*) AS routes_left FROM polyglot.routes WHERE id = :route;

DROP SCHEMA priv CASCADE;
DROP USER MAPPING FOR regress_alice SERVER priv_cache;
DROP SERVER priv_cache;
DROP ROLE regress_alice, regress_bob, regress_watcher;
