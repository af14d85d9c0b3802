-- pg_polyglot walkthrough: run by "make demo" against the local stack.
-- psql variables redis_port, mongo_uri, opensearch_url and elasticsearch_url
-- come from test/stack.sh env.

-- Start clean, so the demo can run again and again
DROP EXTENSION IF EXISTS pg_polyglot CASCADE;

-- 1. Install the extension: its objects live in schema polyglot
CREATE EXTENSION pg_polyglot;
\dx pg_polyglot

-- 2. One foreign server per store.  The same server objects will serve both
--    sync (changes pushed from Postgres) and foreign tables (queries).
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host '127.0.0.1', port :'redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'shop');
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'opensearch_url');
CREATE SERVER search8 FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'elasticsearch_url', connect_timeout '2s');

-- Secrets go in user mappings only; a password in a server is refused:
\set ON_ERROR_STOP 0
CREATE SERVER leaky FOREIGN DATA WRAPPER polyglot_redis OPTIONS (password 'secret');
-- and a misspelt option says which ones exist:
CREATE SERVER typo FOREIGN DATA WRAPPER polyglot_redis OPTIONS (hostname 'x');
\set ON_ERROR_STOP 1

-- 3. Ping all four stores: latency, version, and which search engine answers
SELECT s AS server, p->>'store' AS store, p->>'flavor' AS flavor,
       p->>'version' AS version, p->>'latency_ms' AS latency_ms
FROM unnest(ARRAY['cache', 'docs', 'search', 'search8']) AS s,
     LATERAL polyglot.ping(s::name) AS p;

-- 4. A store that is not there fails fast, with a clear error
CREATE SERVER nowhere FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '1', connect_timeout '1s');
\set ON_ERROR_STOP 0
SELECT polyglot.ping('nowhere');
\set ON_ERROR_STOP 1
DROP SERVER nowhere;

-- 5. Sync a table to Redis: C triggers capture changes in a transactional
--    outbox; the background worker delivers them.
DROP TABLE IF EXISTS products;
CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), cost numeric(10,2));
INSERT INTO products VALUES (1, 'desk lamp', 19.90, 7.10), (2, 'office chair', 149.00, 80.00);
SELECT polyglot.sync('products', 'cache', '{"key": "product:{id}", "exclude": ["cost"]}') AS route;

-- the worker delivers asynchronously; wait until the outbox is empty
CREATE OR REPLACE PROCEDURE pg_temp.wait_synced() LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM polyglot.outbox);
    PERFORM pg_sleep(0.05);
    COMMIT;
  END LOOP;
END $$;
CALL pg_temp.wait_synced();
\! redis-cli -p $REDIS_PORT GET product:1

-- a write in Postgres, a rolled-back one, and a delete
UPDATE products SET price = 17.50 WHERE id = 1;
BEGIN;
UPDATE products SET price = 0 WHERE id = 2;
ROLLBACK;
DELETE FROM products WHERE id = 2;
CALL pg_temp.wait_synced();
\! redis-cli -p $REDIS_PORT GET product:1
\! redis-cli -p $REDIS_PORT EXISTS product:2

SELECT route, source, server, pending, delivered, failed, state FROM polyglot.status;

-- ... and read back in SQL: a foreign table over the product:* keys, its
--    key looked up with GET (EXPLAIN VERBOSE shows the commands)
CREATE FOREIGN TABLE product_cache (key text, value jsonb, ttl int)
  SERVER cache OPTIONS (prefix 'product:');
SELECT key, value->>'name' AS name, value->>'price' AS price, ttl FROM product_cache;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT p.name, c.value->>'price' FROM products p JOIN product_cache c ON c.key = p.id::text;

-- 6. The same table synced to MongoDB: each row a document with native BSON
--    types, _id the primary key.  The same server serves foreign tables, so
--    the documents can be read back, filtered in MongoDB, and joined.
\! $MONGO_TOOL drop shop products
SELECT polyglot.sync('products', 'docs', '{"collection": "products"}') AS mongo_route;
INSERT INTO products VALUES (3, 'standing desk', 499.00, 260.00), (4, 'monitor arm', 89.00, 30.00);
CALL pg_temp.wait_synced();
DROP FOREIGN TABLE IF EXISTS product_docs;
CREATE FOREIGN TABLE product_docs (_id int, name text, price numeric, doc jsonb)
  SERVER docs OPTIONS (collection 'products');
SELECT _id, name, price FROM product_docs ORDER BY _id;
-- the WHERE clause runs in MongoDB: EXPLAIN VERBOSE shows the filter sent
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM product_docs WHERE price > 50;
SELECT p.id, p.name, d.doc->>'price' AS price_in_mongo
FROM products p JOIN product_docs d ON d._id = p.id
WHERE d.price > 50 ORDER BY p.id;

-- 7. And to OpenSearch, for search: one _bulk request per batch, each
--    document versioned (version_type=external), the cost column left out.
\! curl -s -o /dev/null -XDELETE "$OPENSEARCH_URL/products?ignore_unavailable=true"
SELECT polyglot.sync('products', 'search', '{"index": "products", "exclude": ["cost"]}') AS search_route;
UPDATE products SET name = 'standing desk, oak' WHERE id = 3;
CALL pg_temp.wait_synced();
\! curl -s -XPOST "$OPENSEARCH_URL/products/_refresh" -o /dev/null; curl -s "$OPENSEARCH_URL/products/_search?q=name:desk&filter_path=hits.hits._id,hits.hits._score,hits.hits._source"; echo
-- ... and searched from SQL: a foreign table on the same index; the query
--    column is a query_string search, ranked by OpenSearch, joined to the
--    table of record
CREATE FOREIGN TABLE product_hits (_id int, name text, _score real, query text)
  SERVER search OPTIONS (index 'products');
SELECT p.id, p.name, round(h._score::numeric, 3) AS score
FROM product_hits h JOIN products p ON p.id = h._id
WHERE h.query = 'desk OR lamp' ORDER BY h._score DESC LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id, _score FROM product_hits WHERE query = 'desk' ORDER BY _score DESC LIMIT 3;

SELECT route, source, server, store, pending, delivered, state FROM polyglot.status ORDER BY route;
