--
-- elastic_reindex: polyglot.reindex() and polyglot.reindex_cancel() on an
-- OpenSearch 2 and an Elasticsearch 8 server.  A route's index is rebuilt
-- with new mappings and settings behind its name, which becomes an alias;
-- a second reindex moves the alias and deletes the index before; new
-- mappings that refuse rows leave the name where it was.  Searches while
-- a reindex runs are the TAP test t/030_reindex_search.pl's.
-- The same part runs once per server (elastic_reindex.psql).  Errors of
-- CALL show as their SQLSTATE (their messages hold route ids).
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
CREATE SERVER ros FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER res FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');
\i test/integration/sql/setup.psql

CREATE TABLE books (id int PRIMARY KEY, title text, year int);
INSERT INTO books SELECT g, 'book number ' || g, 1900 + g % 120 FROM generate_series(1, 300) g;

\set srv ros
\set url :opensearch_url
\i test/integration/sql/elastic_reindex.psql
\set srv res
\set url :elasticsearch_url
\i test/integration/sql/elastic_reindex.psql

--
-- misuse
--
\setenv SUITE_URL :opensearch_url
\! for i in polyglot_reindex_misuse__1 polyglot_reindex_misuse__2 polyglot_reindex_misuse__3 polyglot_reindex_misuse polyglot_reindex_misuse__x; do curl -s -o /dev/null -XDELETE "$SUITE_URL/$i?ignore_unavailable=true"; done
SELECT polyglot.sync('books', 'ros', '{"name": "books_misuse", "index": "polyglot_reindex_misuse"}') AS route \gset
SELECT wait_synced(:route);
\set VERBOSITY sqlstate
-- in a transaction block: nothing is done
BEGIN;
CALL polyglot.reindex('books_misuse');
ROLLBACK;
-- mappings and settings are JSON objects
CALL polyglot.reindex('books_misuse', '[]');
CALL polyglot.reindex('books_misuse', NULL, '"shards"');
-- no such route
CALL polyglot.reindex('no_such_route');
CALL polyglot.reindex(0);
-- a paused route: its backfill would never come
SELECT polyglot.pause('books_misuse');
CALL polyglot.reindex('books_misuse');
SELECT polyglot.resume('books_misuse');
\set VERBOSITY default
SELECT options ? 'reindex' AS reindexing FROM polyglot.routes WHERE id = :route;
-- the steps check their arguments and the route
SELECT try($$SELECT polyglot._reindex(0, 'delivered', '{}')$$);
SELECT try($$SELECT polyglot._reindex(-1, 'begin', '{}')$$);
SELECT try(format($$SELECT polyglot._reindex(%s, 'fence', '"timeout_ms"')$$, :route));
SELECT try(format($$SELECT polyglot._reindex(%s, 'swap', '{}')$$, :route));
SELECT try(format($$SELECT polyglot._reindex(%s, 'unknown', '{}')$$, :route));
SELECT polyglot._reindex(:route, NULL, NULL) IS NULL AS strict;
-- another role may not operate the route: not even a step of it
CREATE ROLE regress_reindex_other;
SET ROLE regress_reindex_other;
SELECT try(format($$SELECT polyglot._reindex(%s, 'begin', '{}')$$, :route));
SELECT try(format($$SELECT polyglot._reindex(%s, 'cancel', '{}')$$, :route));
SELECT try(format($$SELECT count(*) FROM polyglot._verify_reindex(%s, true, 'polyglot_reindex_misuse__1')$$, :route));
\set VERBOSITY sqlstate
CALL polyglot.reindex(:route);
\set VERBOSITY default
RESET ROLE;
DROP ROLE regress_reindex_other;
-- a reindex that another session runs (here: as if a session busy with a
-- statement had begun it) is not cancelled by a reindex; a reindex of a
-- session that is idle now was interrupted, and is; reindex_cancel()
-- stops either
SELECT current_database() AS db \gset
\setenv HOLDER_DB :db
\! "$PG_CLIENT_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -d "$HOLDER_DB" -c "SET application_name = 'regress_reindex_holder'" -c "SELECT pg_sleep(30)" > /dev/null 2>&1 &
DO $$
BEGIN
  FOR i IN 1..1200 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                      WHERE application_name = 'regress_reindex_holder' AND state = 'active');
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT pid AS holder, backend_start AS holder_start FROM pg_stat_activity
 WHERE application_name = 'regress_reindex_holder' \gset
UPDATE polyglot.routes SET options = options || jsonb_build_object('reindex',
  jsonb_build_object('index', 'polyglot_reindex_misuse__7', 'pid', :holder,
                     'backend_start', :'holder_start'))
 WHERE id = :route;
\set VERBOSITY sqlstate
CALL polyglot.reindex('books_misuse');
\set VERBOSITY default
SELECT pg_terminate_backend(:holder);
-- a session that is idle (connected, running nothing): its reindex was
-- interrupted, and the next reindex cancels it first
\! (sleep 30) | PGAPPNAME=regress_reindex_idle "$PG_CLIENT_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -d "$HOLDER_DB" > /dev/null 2>&1 &
DO $$
BEGIN
  FOR i IN 1..1200 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                      WHERE application_name = 'regress_reindex_idle' AND state = 'idle');
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT pid AS holder, backend_start AS holder_start FROM pg_stat_activity
 WHERE application_name = 'regress_reindex_idle' \gset
UPDATE polyglot.routes SET options = options || jsonb_build_object('reindex',
  jsonb_build_object('index', 'polyglot_reindex_misuse__7', 'pid', :holder,
                     'backend_start', :'holder_start'))
 WHERE id = :route;
SET client_min_messages = warning;
CALL polyglot.reindex('books_misuse');
RESET client_min_messages;
SELECT options->'reindex' IS NULL AS done, options ? 'reindex_cancelled' AS cancelling
  FROM polyglot.routes WHERE id = :route;
SELECT pg_terminate_backend(:holder);
-- and a reindex in progress in another session again, stopped by reindex_cancel()
UPDATE polyglot.routes SET options = options || jsonb_build_object('reindex',
  jsonb_build_object('index', 'polyglot_reindex_misuse__7'))
 WHERE id = :route;
SET client_min_messages = warning;
CALL polyglot.reindex_cancel('books_misuse');
RESET client_min_messages;
SELECT options ? 'reindex' OR options ? 'reindex_cancelled' AS reindexing FROM polyglot.routes WHERE id = :route;
-- no reindex under way: nothing to cancel
CALL polyglot.reindex_cancel('books_misuse');
-- a route may not write to a name a reindex of another route makes
SELECT try($$SELECT polyglot.sync('books', 'ros', '{"name": "books_clash", "index": "polyglot_reindex_misuse__1"}')$$);
SELECT try($$SELECT polyglot.sync('books', 'ros', '{"name": "books_clash", "index": "polyglot_reindex_misuse__x"}')$$);
SELECT polyglot.unsync('books_clash');
SELECT polyglot.unsync('books_misuse');

--
-- the reason to reindex, often: the index refuses a row (a code that is
-- no number, in a field mapped long); the key is retried, and does not
-- hold the reindex up (the new index takes it), which mends it
--
CREATE TABLE codes (id int PRIMARY KEY, code text);
INSERT INTO codes SELECT g, g::text FROM generate_series(1, 50) g;
INSERT INTO codes VALUES (51, 'A-51');
SELECT polyglot.sync('codes', 'ros', '{"name": "codes_search", "index": "polyglot_reindex_codes",
  "mappings": {"properties": {"code": {"type": "long"}}}}') AS route \gset
SELECT wait_for(format('(SELECT retries > 0 FROM polyglot.status WHERE route = %s)', :route));
SET client_min_messages = warning;
CALL polyglot.reindex('codes_search', '{"properties": {"code": {"type": "keyword"}}}');
RESET client_min_messages;
SELECT wait_synced(:route);
SELECT count(*) AS dead_letters FROM polyglot.dead_letters WHERE route_id = :route;
SELECT count(*) AS drift FROM polyglot.verify(:route);
SELECT polyglot.unsync('codes_search');
\setenv SUITE_URL :opensearch_url
\! for i in polyglot_reindex_codes__1 polyglot_reindex_codes__2; do curl -s -o /dev/null -XDELETE "$SUITE_URL/$i?ignore_unavailable=true"; done
\setenv SUITE_URL :opensearch_url
\! for i in polyglot_reindex_misuse__1 polyglot_reindex_misuse__2 polyglot_reindex_misuse__3 polyglot_reindex_misuse polyglot_reindex_misuse__x; do curl -s -o /dev/null -XDELETE "$SUITE_URL/$i?ignore_unavailable=true"; done
