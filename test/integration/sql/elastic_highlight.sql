--
-- elastic_highlight: the _highlight column of foreign tables on an
-- OpenSearch 2 and an Elasticsearch 8 index: the fragments of a search
-- (query column), by field, for the fields of table option highlight (or
-- every field); NULL without a search; EXPLAIN VERBOSE shows the highlight
-- of the request.  The same part runs once per server
-- (elastic_highlight.psql).
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');
\i test/integration/sql/setup.psql

-- options and column types
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (highlight '');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (highlight 'name,,body');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (highlight 'name, .body');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (highlight 'brand..name');
ALTER SERVER os OPTIONS (ADD highlight 'name');
CREATE FOREIGN TABLE bad_highlight (_id text, _highlight text, query text)
  SERVER os OPTIONS (index 'polyglot_hl_items', highlight 'name');
SELECT * FROM bad_highlight WHERE query = 'x';
DROP FOREIGN TABLE bad_highlight;
CREATE FOREIGN TABLE ok_options (_id text, _highlight jsonb, query text)
  SERVER os OPTIONS (index 'polyglot_hl_items', highlight ' name , brand.name,desc* ');
ALTER FOREIGN TABLE ok_options OPTIONS (SET highlight 'name');
ALTER FOREIGN TABLE ok_options OPTIONS (SET highlight 'name,');
DROP FOREIGN TABLE ok_options;

\set srv os
\set url :opensearch_url
\i test/integration/sql/elastic_highlight.psql
\set srv es
\set url :elasticsearch_url
\i test/integration/sql/elastic_highlight.psql

DROP SERVER os CASCADE;
DROP SERVER es CASCADE;
