/* pg_polyglot--1.0.sql */

\echo Use "CREATE EXTENSION pg_polyglot" to load this file. \quit

-- Foreign-data wrappers: one per store.  Their handlers and validators are
-- private (underscore) functions; servers of these wrappers serve both the
-- foreign tables and sync.

CREATE FUNCTION polyglot._redis_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'polyglot_redis_handler'
LANGUAGE C STRICT;

CREATE FUNCTION polyglot._redis_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_redis_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER polyglot_redis
  HANDLER polyglot._redis_handler
  VALIDATOR polyglot._redis_validator;

COMMENT ON FOREIGN DATA WRAPPER polyglot_redis IS
  'pg_polyglot: Redis keys as foreign tables, and Redis as a sync target';

CREATE FUNCTION polyglot._mongo_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'polyglot_mongo_handler'
LANGUAGE C STRICT;

CREATE FUNCTION polyglot._mongo_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_mongo_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER polyglot_mongo
  HANDLER polyglot._mongo_handler
  VALIDATOR polyglot._mongo_validator;

COMMENT ON FOREIGN DATA WRAPPER polyglot_mongo IS
  'pg_polyglot: MongoDB collections as foreign tables, and MongoDB as a sync target';

CREATE FUNCTION polyglot._elastic_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'polyglot_elastic_handler'
LANGUAGE C STRICT;

CREATE FUNCTION polyglot._elastic_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_elastic_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER polyglot_elastic
  HANDLER polyglot._elastic_handler
  VALIDATOR polyglot._elastic_validator;

COMMENT ON FOREIGN DATA WRAPPER polyglot_elastic IS
  'pg_polyglot: Elasticsearch and OpenSearch indexes as foreign tables, and as sync targets';

-- Reach a store through a foreign server of one of the wrappers above.
CREATE FUNCTION polyglot.ping(server name)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'polyglot_ping'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION polyglot.ping(name) IS
  'Connects to the store behind a pg_polyglot foreign server and returns {"ok", "store", "server", "flavor", "version", "latency_ms"}; raises an error when the store cannot be reached';

-- Everyone may call ping; it checks USAGE on the server itself.
GRANT USAGE ON SCHEMA polyglot TO PUBLIC;
