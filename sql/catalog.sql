--
-- catalog: the objects CREATE EXTENSION makes, settings, and misuse of
-- polyglot.ping() that needs no store.
--
-- the extension lives in schema polyglot and is not relocatable
SELECT extname, extnamespace::regnamespace, extrelocatable
FROM pg_extension WHERE extname = 'pg_polyglot';

-- three foreign-data wrappers, each with a handler and a validator
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc,
       obj_description(oid, 'pg_foreign_data_wrapper') IS NOT NULL AS has_comment
FROM pg_foreign_data_wrapper WHERE fdwname LIKE 'polyglot%' ORDER BY 1;

-- every user-facing function is documented
SELECT p.oid::regprocedure, obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p WHERE p.pronamespace = 'polyglot'::regnamespace
  AND p.proname NOT LIKE '\_%' ORDER BY 1;

-- tables and views, each documented
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') IS NOT NULL AS has_comment
FROM pg_class c WHERE c.relnamespace = 'polyglot'::regnamespace AND c.relkind IN ('r', 'v')
ORDER BY 1;

-- settings, with their defaults and whether they need a restart or a reload
SELECT name, boot_val, unit, context FROM pg_settings
WHERE name LIKE 'polyglot.%' ORDER BY name;

-- the polyglot. prefix is reserved: a misspelt setting is an error
SET polyglot.batchsize = 10;
-- worker settings change with a reload, not per session
SET polyglot.batch_size = 500;

-- ping: unknown server
SELECT polyglot.ping('no_such_server');
-- ping: NULL in, NULL out
SELECT polyglot.ping(NULL) IS NULL AS is_null;
-- ping: a server of some other foreign-data wrapper
CREATE FOREIGN DATA WRAPPER not_polyglot;
CREATE SERVER elsewhere FOREIGN DATA WRAPPER not_polyglot;
SELECT polyglot.ping('elsewhere');
DROP SERVER elsewhere;
DROP FOREIGN DATA WRAPPER not_polyglot;

-- ping: a role without USAGE on the server is refused before any I/O
CREATE SERVER private_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
CREATE ROLE polyglot_catalog_nobody;
SET ROLE polyglot_catalog_nobody;
SELECT polyglot.ping('private_cache');
RESET ROLE;
DROP ROLE polyglot_catalog_nobody;
DROP SERVER private_cache;

-- a foreign table whose columns do not fit its store: a clear error when
-- it is used, before any connection
CREATE SERVER later FOREIGN DATA WRAPPER polyglot_redis;
CREATE FOREIGN TABLE later_keys (key text, payload text) SERVER later;
SELECT * FROM later_keys;
DROP FOREIGN TABLE later_keys;
DROP SERVER later;
