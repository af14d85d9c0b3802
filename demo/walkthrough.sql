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

-- 5. The products table, synced to three stores.  First Redis, as a
--    cache-aside cache: the application fills product:<id> on a miss, and
--    pg_polyglot deletes the key whenever the row changes (mode invalidate),
--    from C triggers that capture changes in a transactional outbox and a
--    background worker that delivers them.
DROP TABLE IF EXISTS products;
CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), cost numeric(10,2));
INSERT INTO products VALUES (1, 'desk lamp', 19.90, 7.10), (2, 'office chair', 149.00, 80.00);
\! redis-cli -p $REDIS_PORT --scan --pattern 'product:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
SELECT polyglot.sync('products', 'cache', '{"mode": "invalidate", "key": "product:{id}"}') AS cache_route;

-- the worker delivers asynchronously: wait (at most 30 s) until nothing is
-- pending, or until a route is in a given state
CREATE OR REPLACE PROCEDURE pg_temp.wait_synced() LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN (SELECT coalesce(sum(pending), 0) FROM polyglot.status) = 0;
    PERFORM pg_sleep(0.05);
    COMMIT;
  END LOOP;
END $$;
CREATE OR REPLACE PROCEDURE pg_temp.wait_state(srv name, want text) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN (SELECT state FROM polyglot.status WHERE server = srv) = want;
    PERFORM pg_sleep(0.05);
    COMMIT;
  END LOOP;
END $$;
CALL pg_temp.wait_synced();

-- the application's cache, as a foreign table over the product:* keys: it
-- fills the cache from the table of record (one pipelined SET per row)
CREATE FOREIGN TABLE product_cache (key text, value jsonb, ttl int)
  SERVER cache OPTIONS (prefix 'product:');
INSERT INTO product_cache (key, value)
  SELECT id::text, to_jsonb(p) - 'cost' FROM products p;
SELECT key, value->>'name' AS name, value->>'price' AS price FROM product_cache ORDER BY key;

-- a write in Postgres invalidates its key; a rolled-back write does nothing
UPDATE products SET price = 17.50 WHERE id = 1;
BEGIN;
UPDATE products SET price = 0 WHERE id = 2;
ROLLBACK;
CALL pg_temp.wait_synced();
SELECT key, value->>'price' AS price FROM product_cache ORDER BY key;
-- a join of the table of record to its cache looks up only the keys it
-- needs, in one round trip (EXPLAIN VERBOSE shows the commands sent)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT p.name, c.value->>'price' FROM products p JOIN product_cache c ON c.key = p.id::text;

-- 6. MongoDB, for the catalog documents: each row a document with native
--    BSON types, _id the primary key.  The same server serves foreign
--    tables, so the documents are read back, filtered in MongoDB, and joined.
\! $MONGO_TOOL drop shop products
SELECT polyglot.sync('products', 'docs', '{"collection": "products"}') AS docs_route;
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

-- 7. Elasticsearch, for search: one _bulk request per batch, each document
--    versioned (version_type=external) so that a late write never
--    overwrites a newer one, the cost column left out.
\! curl -s -o /dev/null -XDELETE "$ELASTICSEARCH_URL/products?ignore_unavailable=true"
SELECT polyglot.sync('products', 'search8', '{"index": "products", "exclude": ["cost"]}') AS search_route;
UPDATE products SET name = 'standing desk, oak' WHERE id = 3;
CALL pg_temp.wait_synced();
-- (Elasticsearch makes new documents searchable at its next refresh, within
-- a second; ask for it now)
\! curl -s -o /dev/null -XPOST "$ELASTICSEARCH_URL/products/_refresh"
-- ... searched from SQL: a foreign table on the index; the query column is a
--    query_string search, ranked by Elasticsearch, joined back to the table
--    of record
CREATE FOREIGN TABLE product_hits (_id int, name text, _score real, query text)
  SERVER search8 OPTIONS (index 'products');
SELECT p.id, p.name, p.price, round(h._score::numeric, 3) AS score
FROM product_hits h JOIN products p ON p.id = h._id
WHERE h.query = 'desk OR lamp' ORDER BY h._score DESC LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id, _score FROM product_hits WHERE query = 'desk' ORDER BY _score DESC LIMIT 3;

-- 8. A store goes down: MongoDB (FerretDB) is stopped.  Writes in Postgres
--    go on as if nothing happened; only the MongoDB route backs off, and
--    status says why.
\! test/stack.sh stop ferretdb
UPDATE products SET price = round(price * 0.9, 2);   -- a 10% sale
INSERT INTO products VALUES (5, 'desk mat', 24.00, 6.00);
CALL pg_temp.wait_state('docs', 'backing off');
SELECT server, state, pending, last_error FROM polyglot.status ORDER BY route;
-- the store comes back; resume() ends the backoff at once, and the route
-- catches up
\! test/stack.sh start ferretdb
SELECT polyglot.resume('products', 'docs');
CALL pg_temp.wait_synced();
SELECT _id, name, price FROM product_docs ORDER BY _id;

-- 9. Drift made behind pg_polyglot's back (a document deleted directly in
--    Elasticsearch) is found by verify, which compares the table with the
--    store key by key, and repaired.
\! curl -s -o /dev/null -XDELETE "$ELASTICSEARCH_URL/products/_doc/4?refresh=true"
SELECT kind, key FROM polyglot.verify('products', 'search8');
SELECT kind, key FROM polyglot.verify('products', 'search8', repair => true);
CALL pg_temp.wait_synced();

-- In the end: every route active and caught up, and no drift in MongoDB or
-- Elasticsearch (an invalidate route holds no copy of the rows to compare)
SELECT route, source, server, store, pending, delivered, failed, dead_letters, state
FROM polyglot.status ORDER BY route;
SELECT r.server_name AS server, (SELECT count(*) FROM polyglot.verify(r.id)) AS drift
FROM polyglot.routes r WHERE r.store <> 'redis' ORDER BY r.id;
