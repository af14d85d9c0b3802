--
-- elastic_options: validation of polyglot_elastic options at CREATE/ALTER
-- time, and of Elasticsearch route options at sync().
--
-- valid, with several nodes
CREATE SERVER e1 FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url 'http://127.0.0.1:9200, https://search.example.com:9243/prefix/', connect_timeout '1s');
CREATE USER MAPPING FOR PUBLIC SERVER e1 OPTIONS (user 'elastic', password 'changeme');
CREATE ROLE polyglot_regress_reader;
CREATE USER MAPPING FOR polyglot_regress_reader SERVER e1 OPTIONS (api_key 'a2V5OnNlY3JldA==');
-- one way to authenticate per mapping
ALTER USER MAPPING FOR polyglot_regress_reader SERVER e1 OPTIONS (ADD password 'x');
-- bad urls
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'ftp://127.0.0.1');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://127.0.0.1:9200,');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://127.0.0.1:9200/?pretty');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'not a url');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://elastic:secret@127.0.0.1:9200');
-- secrets and misplaced options
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (api_key 'k');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (index 'products');
CREATE SERVER e2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (uri 'http://127.0.0.1');
-- index names
CREATE FOREIGN TABLE et1 (id int, name text OPTIONS (field 'info.name'), _score real, query text)
  SERVER e1 OPTIONS (index 'products');
-- patterns and lists of indices, for reading
CREATE FOREIGN TABLE et_pattern (id int) SERVER e1 OPTIONS (index 'logs-*,metrics-2024');
DROP FOREIGN TABLE et_pattern;
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index 'logs-*,');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index 'Products');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index '_all');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index 'a/b');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index 'a?b');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index '..');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (index '');
CREATE FOREIGN TABLE et2 (id int OPTIONS (field '.a')) SERVER e1;
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (collection 'x');
-- highlight: the fields of a search's _highlight column
CREATE FOREIGN TABLE et2 (id int, query text, _highlight jsonb) SERVER e1 OPTIONS (highlight 'name, brand.name, desc*');
DROP FOREIGN TABLE et2;
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (highlight 'name,,body');
CREATE FOREIGN TABLE et2 (id int) SERVER e1 OPTIONS (highlight 'brand.');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'e1';
DROP SERVER e1 CASCADE;
DROP ROLE polyglot_regress_reader;
-- the SQLSTATEs applications can rely on
DO $$
BEGIN
  CREATE SERVER e3 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (nodes 'x');
EXCEPTION WHEN fdw_invalid_option_name THEN RAISE NOTICE 'unknown option: %', SQLSTATE;
END $$;
DO $$
BEGIN
  CREATE SERVER e3 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'gopher://x');
EXCEPTION WHEN fdw_invalid_attribute_value THEN RAISE NOTICE 'bad value: %', SQLSTATE;
END $$;
-- route options (polyglot.sync), refused before anything is sent: no
-- store listens at the server's address
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://127.0.0.1:1');
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, at timestamptz,
                    day date, tags text[], doc jsonb, raw bytea, ok bool, score float8);
SELECT polyglot.sync('items', 'os', '{"indx": "x"}');
SELECT polyglot.sync('items', 'os', '{"index": "Items"}');
SELECT polyglot.sync('items', 'os', '{"index": "a/b"}');
SELECT polyglot.sync('items', 'os', '{"index": 7}');
SELECT polyglot.sync('items', 'os', '{"index": "polyglot_sync_items", "routing": "name"}');
SELECT polyglot.sync('items', 'os', '{"index": "polyglot_sync_items", "columns": ["nope"]}');
-- mappings and settings: JSON objects, fields of the mappings objects with a
-- string type; checked before the store is asked
SELECT polyglot.sync('items', 'os', '{"mappings": {"properties": {"price": {"type": "double"}}}, "settings": "x"}');
SELECT polyglot.sync('items', 'os', '{"mappings": {"properties": {"tags": {"type": "keyword", "fields": {"raw": 1}}}}}');
SELECT polyglot.sync('items', 'os', '{"mappings": {"properties": {"doc": {"properties": {"k": {"type": ["keyword"]}}}}}}');
-- valid: the store is asked for the index when the route is created, and
-- sync() fails when it cannot be reached; no route is left
\set VERBOSITY terse
SELECT polyglot.sync('items', 'os', '{"mappings": {"properties": {"price": {"type": "double"}}}, "settings": {"number_of_shards": 1}}');
\set VERBOSITY default
SELECT count(*) AS routes FROM polyglot.routes;
CREATE TABLE "Upper" (id int PRIMARY KEY);
SELECT polyglot.sync('"Upper"', 'os');
DROP TABLE "Upper";
DROP TABLE items;
DROP SERVER os;
