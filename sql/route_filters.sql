--
-- route_filters: the "where" option of a route, a row filter.  sync()
-- checks it (one boolean expression over the table's columns, immutable
-- and stable functions only) and stores it as PostgreSQL prints it back;
-- the capture triggers record a change only when the row matched before
-- or after it; ALTER TABLE may not break it.  No store is needed: the
-- routes are paused, and the outbox is read (test/integration/sql/
-- sync_filters.sql checks the deliveries to the four stores).
--
\set VERBOSITY default
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');

\i test/integration/sql/setup.psql


CREATE SCHEMA f;
CREATE FUNCTION f.shown(status text) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS $$ SELECT status IS DISTINCT FROM 'hidden' $$;
CREATE FUNCTION f.coin() RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT random() < 0.5 $$;
CREATE TABLE docs (id int PRIMARY KEY, status text, deleted_at timestamptz, tenant int, day date);

-- filters that are refused, with nothing left behind
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": ""}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": true}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "no_such_column > 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "tenant +"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "tenant"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "f.coin()"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "random() < 0.5"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "id IN (SELECT 1)"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "EXISTS (SELECT FROM pg_class)"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "count(*) > 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "row_number() OVER () = 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "generate_series(1, 2) = 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "docs IS NOT NULL"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "xmin <> 0"}')$$);
-- no more than one expression: nothing can come with it
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true; DROP TABLE docs"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true) OR (true"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true UNION SELECT"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true ORDER BY 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true LIMIT 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true FOR UPDATE"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"where": "true GROUP BY 1"}')$$);
SELECT try_detail($$SELECT polyglot.sync('docs', 'cache', '{"replicated": "yes"}')$$);
SELECT count(*) AS routes FROM polyglot.routes;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'docs'::regclass;

-- A filter is stored as PostgreSQL prints it: names from other schemas
-- qualified (the caller's search_path resolved them), literals in ISO
-- form whatever the caller's DateStyle
SET search_path = f, public;
SET datestyle = 'SQL, DMY';
SELECT polyglot.sync('docs', 'cache',
  '{"key": "docs:{id}", "where": "shown(status) AND deleted_at IS NULL AND (day IS NULL OR day >= ''02/01/2024'')"}',
  backfill => false) AS route \gset
RESET search_path;
RESET datestyle;
SELECT options->>'where' AS stored FROM polyglot.routes WHERE id = :route;
SELECT regexp_replace(tgname, '\d+', 'N') AS tgname, pg_get_triggerdef(oid) ~ ' WHEN ' AS has_when,
       CASE WHEN tgtype & 2 <> 0 THEN 'before' ELSE 'after' END AS timing
  FROM pg_trigger WHERE tgrelid = 'docs'::regclass ORDER BY tgname;
SELECT regexp_replace(regexp_replace(pg_get_triggerdef(oid), 'polyglot_sync_\d+', 'polyglot_sync_N', 'g'),
                      ' EXECUTE FUNCTION .*', '') AS def
  FROM pg_trigger WHERE tgrelid = 'docs'::regclass AND tgname ~ '_update$';

-- Only changes of rows that matched before or after them are recorded
SELECT polyglot.pause(:route);
INSERT INTO docs VALUES (1, 'shown', NULL, 1, NULL);      -- in: recorded
INSERT INTO docs VALUES (2, 'hidden', NULL, 1, NULL);     -- out: not
UPDATE docs SET tenant = 2 WHERE id = 2;                  -- out to out: not
UPDATE docs SET status = 'shown' WHERE id = 2;            -- enters: recorded
UPDATE docs SET deleted_at = now() WHERE id = 1;          -- leaves: recorded
UPDATE docs SET tenant = 3 WHERE id = 1;                  -- out to out: not
INSERT INTO docs VALUES (3, 'shown', NULL, 1, '2023-12-31'); -- out (day): not
UPDATE docs SET id = 4 WHERE id = 3;                      -- out to out: not
UPDATE docs SET id = 5 WHERE id = 2;                      -- in, key changed: both keys
DELETE FROM docs WHERE id = 4;                            -- out: not
DELETE FROM docs WHERE id = 5;                            -- in: recorded
SELECT op, key FROM polyglot.outbox WHERE route_id = :route ORDER BY id;

-- TRUNCATE records the keys of the rows the filter takes, and only them
DELETE FROM polyglot.outbox WHERE route_id = :route;
INSERT INTO docs VALUES (10, 'shown', NULL, 1, NULL), (11, 'hidden', NULL, 1, NULL),
                        (12, NULL, NULL, 1, NULL);
DELETE FROM polyglot.outbox WHERE route_id = :route;
TRUNCATE docs;
SELECT op, key FROM polyglot.outbox WHERE route_id = :route ORDER BY id;
DELETE FROM polyglot.outbox WHERE route_id = :route;

-- ALTER TABLE may not take what the filter names: renaming its column is
-- refused; dropping it needs CASCADE, which stops the route
SELECT try_detail($$ALTER TABLE docs RENAME COLUMN deleted_at TO removed_at$$);
ALTER TABLE docs RENAME COLUMN tenant TO tenant_id;       -- not in the filter
SELECT try_detail($$ALTER TABLE docs ALTER COLUMN status TYPE varchar(10)$$);
SELECT try_detail($$ALTER TABLE docs DROP COLUMN status$$);
-- (it warns: pg_polyglot route N (public.docs to server cache) stopped:
-- column "status", which its filter uses, was dropped)
SET client_min_messages = error;
ALTER TABLE docs DROP COLUMN status CASCADE;
RESET client_min_messages;
SELECT count(*) AS routes FROM polyglot.routes WHERE id = :route;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'docs'::regclass;

-- a filter's function dropped with CASCADE takes the capture triggers
-- with it: the route stops (with a WARNING naming the trigger), rather
-- than stay and capture nothing
CREATE SCHEMA g;
CREATE FUNCTION g.positive(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 > 0 $$;
CREATE TABLE gt (id int PRIMARY KEY);
SELECT polyglot.sync('gt', 'cache', '{"key": "gt:{id}", "where": "g.positive(id)"}', backfill => false) AS route \gset
SELECT try_detail($$DROP SCHEMA g$$);
SET client_min_messages = error;
DROP SCHEMA g CASCADE;
RESET client_min_messages;
SELECT count(*) AS routes FROM polyglot.routes WHERE id = :route;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'gt'::regclass;
TRUNCATE gt;
-- temporary functions go with their session, and are refused
CREATE FUNCTION pg_temp.tmp_positive(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 > 0 $$;
SELECT try_detail($$SELECT polyglot.sync('gt', 'cache', '{"where": "pg_temp.tmp_positive(id)"}')$$);
CREATE OPERATOR pg_temp.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
SELECT try_detail($$SELECT polyglot.sync('gt', 'cache', '{"where": "id OPERATOR(pg_temp.===) 1"}')$$);
DROP TABLE gt;

-- verify reads the table as its owner, in a security-restricted
-- operation: a filter's function never runs as whoever calls verify (here
-- a superuser; the store is unreachable, after the table was read)
CREATE ROLE filter_owner;
GRANT USAGE ON SCHEMA f TO filter_owner;
GRANT USAGE ON FOREIGN SERVER cache TO filter_owner;
CREATE FUNCTION f.who(v text) RETURNS boolean LANGUAGE plpgsql STABLE
  AS $$ BEGIN RAISE NOTICE 'the filter runs as %', current_user; RETURN true; END $$;
CREATE TABLE owned (id int PRIMARY KEY, v text);
INSERT INTO owned VALUES (1, 'x');
ALTER TABLE owned OWNER TO filter_owner;
SET ROLE filter_owner;
SELECT polyglot.sync('owned', 'cache', '{"key": "owned:{id}", "where": "f.who(v)"}', backfill => false) AS route \gset
RESET ROLE;
SELECT try($$SELECT * FROM polyglot.verify($$ || :route || $$)$$) ~ 'could not connect' AS store_unreachable;
SELECT polyglot.unsync('owned', 'cache');
DROP TABLE owned;
DROP FUNCTION f.who(text);
REVOKE USAGE ON FOREIGN SERVER cache FROM filter_owner;
REVOKE USAGE ON SCHEMA f FROM filter_owner;
DROP ROLE filter_owner;

-- "replicated": the capture triggers fire for changes applied by logical
-- replication too (ENABLE ALWAYS), with a filter or without
SELECT polyglot.sync('docs', 'cache', '{"key": "docs:{id}", "replicated": true}', backfill => false) AS route \gset
SELECT tgname ~ '_truncate$' AS truncate, tgenabled FROM pg_trigger
 WHERE tgrelid = 'docs'::regclass ORDER BY tgname;
SELECT polyglot.pause(:route);
SET session_replication_role = replica;
INSERT INTO docs (id, deleted_at) VALUES (20, NULL);
RESET session_replication_role;
SELECT op, key FROM polyglot.outbox WHERE route_id = :route ORDER BY id;
SELECT polyglot.unsync('docs', 'cache');
SELECT polyglot.sync('docs', 'cache', '{"key": "docs:{id}", "replicated": true, "where": "deleted_at IS NULL"}',
                     backfill => false) AS route \gset
SELECT count(*) AS triggers, bool_and(tgenabled = 'A') AS always FROM pg_trigger
 WHERE tgrelid = 'docs'::regclass;
SELECT polyglot.unsync('docs', 'cache');
-- without it, a replica session's changes are not captured (PostgreSQL's
-- default for triggers)
SELECT polyglot.sync('docs', 'cache', '{"key": "docs:{id}"}', backfill => false) AS route \gset
SELECT polyglot.pause(:route);
SET session_replication_role = replica;
INSERT INTO docs (id) VALUES (21);
RESET session_replication_role;
SELECT count(*) AS captured FROM polyglot.outbox WHERE route_id = :route;
SELECT polyglot.unsync('docs', 'cache');

-- unsync drops every capture trigger of a filtered route
SELECT polyglot.sync('docs', 'cache', '{"key": "docs:{id}", "where": "id > 0"}', backfill => false) AS route \gset
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'docs'::regclass;
SELECT polyglot.unsync('docs', 'cache');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'docs'::regclass;

DROP TABLE docs;
DROP SCHEMA f CASCADE;
DROP SERVER cache;
