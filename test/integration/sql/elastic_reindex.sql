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
SELECT try(format($$SELECT count(*) FROM polyglot._verify_reindex(%s, true, true)$$, :route));
\set VERBOSITY sqlstate
CALL polyglot.reindex(:route);
\set VERBOSITY default
RESET ROLE;
DROP ROLE regress_reindex_other;
-- no reindex under way: nothing to cancel
CALL polyglot.reindex_cancel('books_misuse');
-- a route may not write to a name a reindex of another route makes
SELECT try($$SELECT polyglot.sync('books', 'ros', '{"name": "books_clash", "index": "polyglot_reindex_misuse__1"}')$$);
SELECT try($$SELECT polyglot.sync('books', 'ros', '{"name": "books_clash", "index": "polyglot_reindex_misuse__x"}')$$);
SELECT polyglot.unsync('books_clash');
SELECT polyglot.unsync('books_misuse');
\setenv SUITE_URL :opensearch_url
\! for i in polyglot_reindex_misuse polyglot_reindex_misuse__x; do curl -s -o /dev/null -XDELETE "$SUITE_URL/$i?ignore_unavailable=true"; done
