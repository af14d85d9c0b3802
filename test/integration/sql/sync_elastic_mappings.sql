--
-- sync_elastic_mappings: route options "mappings" and "settings" on an
-- OpenSearch 2 and an Elasticsearch 8 server.  polyglot.sync() creates the
-- index with them; an existing index of a conflicting mapping fails the
-- sync() with the differences in DETAIL; fields the route adds are added
-- to an existing index (NOTICE); settings of an existing index stay.
-- The same part runs once per server (sync_elastic_mappings.psql).
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');
\i test/integration/sql/setup.psql

CREATE TABLE goods (id int PRIMARY KEY, name text, price numeric, sku text, added date);
INSERT INTO goods VALUES (1, 'red wireless headphones', 19.5, 'A-1', '2024-01-02'),
                         (2, 'blue cable', 3.25, 'B-2', '2024-02-03');

--
-- option values checked when the route is created, before any request
--
SELECT polyglot.sync('goods', 'os', '{"mappings": "price:double"}');
SELECT polyglot.sync('goods', 'os', '{"mappings": []}');
SELECT polyglot.sync('goods', 'os', '{"settings": 1}');
SELECT polyglot.sync('goods', 'os', '{"settings": null}');
SELECT polyglot.sync('goods', 'os', '{"mappings": {"properties": [1]}}');
SELECT polyglot.sync('goods', 'os', '{"mappings": {"properties": {"price": "double"}}}');
SELECT polyglot.sync('goods', 'os', '{"mappings": {"properties": {"price": {"type": 7}}}}');
SELECT polyglot.sync('goods', 'os', '{"mappings": {"properties": {"a": {"properties": {"b": {"fields": []}}}}}}');
SELECT polyglot.sync('goods', 'os', '{"mappings": {"properties": {"": {"type": "text"}}}}');
SELECT polyglot.sync('goods', 'os', '{"mapping": {}}');
SELECT count(*) AS routes FROM polyglot.routes;

\set srv os
\set url :opensearch_url
\i test/integration/sql/sync_elastic_mappings.psql
\set srv es
\set url :elasticsearch_url
\i test/integration/sql/sync_elastic_mappings.psql

DROP TABLE goods;
DROP SERVER os CASCADE;
DROP SERVER es CASCADE;
