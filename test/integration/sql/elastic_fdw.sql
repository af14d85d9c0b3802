--
-- elastic_fdw: foreign tables on an OpenSearch 2 and an Elasticsearch 8
-- index.  The same suite (elastic_fdw_suite.psql) runs once per server:
-- columns and conversions, every pushed WHERE / ORDER BY / LIMIT form
-- against the same query with pushdown off, a ranked full-text search,
-- count(*) by _count, a 50,000-document scan in pages of 500 under a point
-- in time, INSERT / UPDATE / DELETE through _bulk, and errors.
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');

-- options
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (page_size '0');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (page_size '10001');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (refresh 'maybe');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (pushdown 'perhaps');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (batch_size '0');
CREATE FOREIGN TABLE bad (a int) SERVER os OPTIONS (pagesize '10');
ALTER SERVER os OPTIONS (ADD page_size '1000', ADD batch_size '100', ADD refresh 'false',
                         ADD pushdown 'true', ADD use_remote_estimate 'true');
ALTER SERVER os OPTIONS (DROP page_size, DROP batch_size, DROP refresh, DROP pushdown,
                         DROP use_remote_estimate);

-- the source of truth the foreign tables are compared with
CREATE TABLE src (id int PRIMARY KEY, name text, tag text, qty int, price float8, ok bool,
                  body text);
INSERT INTO src
SELECT g,
       CASE WHEN g % 97 = 0 THEN NULL WHEN g = 1000 THEN repeat('x', 300)
            ELSE 'name ' || (g % 300) END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE 'tag' || (g % 7) END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE g % 50 END,
       (g % 100) / 4.0,
       CASE WHEN g % 17 = 0 THEN NULL ELSE g % 3 = 0 END,
       (ARRAY['red', 'green', 'blue', 'fast', 'slow'])[g % 5 + 1] || ' ' ||
       (ARRAY['wireless', 'wired', 'cable', 'phone', 'case', 'headphones'])[g % 6 + 1]
FROM generate_series(1, 2000) g;

-- the pushed forms, each compared with the same query with pushdown off
CREATE FUNCTION same_result(q text, ordered bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  local text;
  n bigint;
  agg text := CASE WHEN ordered THEN 'string_agg(x::text, '';'')'
                   ELSE 'string_agg(x::text, '';'' ORDER BY x::text)' END;
BEGIN
  PERFORM set_config('polyglot.elastic_pushdown', 'on', true);
  EXECUTE format('SELECT count(*), coalesce(%s, '''') FROM (%s) x', agg, q) INTO n, pushed;
  PERFORM set_config('polyglot.elastic_pushdown', 'off', true);
  EXECUTE format('SELECT coalesce(%s, '''') FROM (%s) x', agg, q) INTO local;
  PERFORM set_config('polyglot.elastic_pushdown', 'on', true);
  RETURN CASE WHEN pushed = local THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
-- what is sent (the query, sort and size of the body) and what stays local
CREATE FUNCTION plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line ~ 'Remote Body' THEN
      result := result || coalesce(substring(line from '"query":(.*),"_source"'), '') || ' ' ||
                coalesce(substring(line from '"sort":(\[[^]]*\])'), '') || ' ' ||
                coalesce('size ' || substring(line from '"size":([0-9]+)'), '') || ' ';
    ELSIF line ~ '^ *(->  )?(Sort|Limit|Aggregate|Nested Loop)\M' THEN
      result := result || 'local ' || regexp_replace(trim(line), '^->  ', '') || ' ';
    ELSIF line ~ '^ *Filter:' THEN
      result := result || 'local filter ';
    END IF;
  END LOOP;
  RETURN regexp_replace(trim(result), ' +', ' ', 'g');
END $$;
\i test/integration/sql/setup.psql
\i test/integration/sql/explain.psql

\set srv os
\set url :opensearch_url
\i test/integration/sql/elastic_fdw_suite.psql
\set srv es
\set url :elasticsearch_url
\i test/integration/sql/elastic_fdw_suite.psql

DROP SERVER os CASCADE;
DROP SERVER es CASCADE;
DROP FUNCTION same_result(text, bool), plan_of(text), explain_analyze(text, bool);
DROP TABLE src;
