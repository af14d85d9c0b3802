--
-- null_args: every function of the extension written in C, called with
-- NULL for each argument, returns or raises an error: none crashes.
--
SET client_min_messages = warning;
CREATE TABLE null_args_t (id int PRIMARY KEY);
INSERT INTO null_args_t VALUES (1), (2);

-- Calls a function with the given arguments; the SQLSTATE of its error, or ok
CREATE FUNCTION null_args_call(fn regprocedure, args text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
  EXECUTE format('SELECT %s(%s)', fn::oid::regproc, args);
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
  RETURN st;
END $$;

-- every C function that takes arguments (not the triggers and handlers),
-- all its arguments NULL of their types
SELECT p.oid::regprocedure AS function,
       null_args_call(p.oid::regprocedure,
                      (SELECT string_agg(format('NULL::%s', CASE WHEN t = 'anyelement'::regtype THEN 'int'::regtype ELSE t::regtype END), ', ' ORDER BY o)
                         FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, o))) AS result
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'polyglot'::regnamespace AND l.lanname = 'c' AND p.pronargs > 0
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'fdw_handler'::regtype)
 ORDER BY 1::text COLLATE "C";

-- polyglot._backfill_keys() takes a NULL "after" (the first chunk), not
-- the others
SELECT polyglot._backfill_keys('null_args_t', '{id}', NULL, 5);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', NULL, NULL, 5$$);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$NULL, '{id}', NULL, 5$$);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', '{id}', NULL, NULL$$);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', '{id,NULL}', NULL, 5$$);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', '{{id}}', NULL, 5$$);
-- a filter (the route's "where") is checked before it is used
SELECT polyglot._backfill_keys('null_args_t', '{id}', NULL, 5, 'id > 0');
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', '{id}', NULL, 5, 'true) OR (true'$$);
SELECT null_args_call('polyglot._backfill_keys(regclass, name[], text[], int, text)', $$'null_args_t', '{id}', NULL, 5, 'true; SELECT 1'$$);
-- polyglot._where_sql(): NULL for a NULL table or filter, checked otherwise
SELECT polyglot._where_sql('null_args_t', 'id > 0', NULL), polyglot._where_sql('null_args_t', 'id > 0', 't');
SELECT null_args_call('polyglot._where_sql(regclass, text, text)', $$'null_args_t', 'id >', NULL$$);
SELECT null_args_call('polyglot._where_sql(regclass, text, text)', $$'null_args_t', 'nope', NULL$$);

DROP FUNCTION null_args_call;
DROP TABLE null_args_t;
