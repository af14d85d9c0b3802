--
-- sync_documents: documents built from related tables (route options
-- "include" and "embed", nested) on every store: Redis json, MongoDB,
-- OpenSearch and Elasticsearch.  A product document includes its brand
-- and embeds its best reviews; an order document embeds its lines, each
-- including its product, which includes its brand (three levels).  Every
-- change of a parent, child or grandchild row (insert, update, delete, key
-- change, a child moved to another parent, a TRUNCATE) re-delivers the
-- documents that contain it: after each step, verify compares every
-- store's documents with those computed from the tables and finds none
-- differing, and a few documents are shown whole.
--
\getenv redis_port REDIS_PORT
\getenv mongo_uri MONGO_URI
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! redis-cli -p $REDIS_PORT --scan --pattern 'doc:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! $MONGO_TOOL drop polyglot_documents
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do for i in polyglot_doc_products polyglot_doc_orders; do curl -s -o /dev/null -XDELETE "$u/$i?ignore_unavailable=true"; done; done
CREATE SERVER d_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER d_docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri', database 'polyglot_documents');
CREATE SERVER d_os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER d_es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');
\i test/integration/sql/setup.psql
-- every route delivered, fan-outs included, and no store differing from the tables
CREATE FUNCTION documents_checked() RETURNS TABLE (route text, drift bigint) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM wait_for('NOT EXISTS (SELECT FROM polyglot.status s WHERE s.name LIKE ''doc_%'' AND s.pending > 0)');
  RETURN QUERY SELECT r.name, (SELECT count(*) FROM polyglot.verify(r.id))
                 FROM polyglot.routes r WHERE r.name LIKE 'doc_%' ORDER BY r.name;
END
$$;

CREATE TABLE brands (id int PRIMARY KEY, name text NOT NULL, country text);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2),
                       brand_id int REFERENCES brands ON UPDATE CASCADE);
CREATE TABLE reviews (id int PRIMARY KEY, product_id int REFERENCES products, stars int, body text);
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL);
CREATE TABLE lines (order_id int REFERENCES orders ON DELETE CASCADE, no int, qty int NOT NULL,
                    product_id int NOT NULL REFERENCES products,
                    PRIMARY KEY (order_id, no));
INSERT INTO brands VALUES (1, 'Acme', 'US'), (2, 'Bolt', 'DE');
INSERT INTO products VALUES (1, 'lamp', 20, 1), (2, 'fan', 35.5, 1), (3, 'kettle', 12, 2), (4, 'plain', 1, NULL);
INSERT INTO reviews VALUES (1, 1, 5, 'bright'), (2, 1, 3, 'ok'), (3, 1, 4, 'good'), (4, 1, 1, 'broke'),
                           (5, 2, 4, 'quiet'), (6, NULL, 2, 'no product');
INSERT INTO orders VALUES (10, 'ann'), (11, 'bob'), (12, 'cy');
INSERT INTO lines VALUES (10, 1, 2, 1), (10, 2, 1, 3), (11, 1, 5, 2), (12, 1, 1, 3);

-- products: the brand (its name and country), the three best reviews
\set products_doc '"include": {"brand": {"table": "brands", "exclude": ["id"]}}, "embed": {"reviews": {"table": "reviews", "columns": ["stars", "body"], "order_by": "stars DESC, id", "limit": 3}}'
-- orders: the lines in order, each with its product and the product's brand
\set orders_doc '"embed": {"lines": {"table": "lines", "columns": ["no", "qty"], "order_by": "no", "include": {"product": {"table": "products", "columns": ["name", "price"], "include": {"brand": {"table": "brands", "columns": ["name"]}}}}}}'
SELECT polyglot.sync('products', 'd_cache', format('{"name": "doc_products_redis", "key": "doc:p:{id}", %s}', :'products_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('orders', 'd_cache', format('{"name": "doc_orders_redis", "key": "doc:o:{id}", %s}', :'orders_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('products', 'd_docs', format('{"name": "doc_products_mongo", %s}', :'products_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('orders', 'd_docs', format('{"name": "doc_orders_mongo", %s}', :'orders_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('products', 'd_os', format('{"name": "doc_products_os", "index": "polyglot_doc_products", %s}', :'products_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('orders', 'd_os', format('{"name": "doc_orders_os", "index": "polyglot_doc_orders", %s}', :'orders_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('products', 'd_es', format('{"name": "doc_products_es", "index": "polyglot_doc_products", %s}', :'products_doc')::jsonb) > 0 AS ok;
SELECT polyglot.sync('orders', 'd_es', format('{"name": "doc_orders_es", "index": "polyglot_doc_orders", %s}', :'orders_doc')::jsonb) > 0 AS ok;
-- sync() stores the relations as it will use them: tables qualified, "on" from the foreign keys
SELECT jsonb_pretty(options - 'name' - 'key') FROM polyglot.routes WHERE name = 'doc_orders_redis';
-- the capture triggers: one per relation on each related table, with its TRUNCATE one
SELECT tgrelid::regclass AS tbl, count(*) AS triggers FROM pg_trigger
 WHERE tgname LIKE 'polyglot_sync_%' GROUP BY 1 ORDER BY 1;

-- the backfill builds the documents
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT GET doc:p:1; redis-cli -p $REDIS_PORT GET doc:p:4; redis-cli -p $REDIS_PORT GET doc:o:10
\! $MONGO_TOOL dump polyglot_documents orders
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_doc_orders/_refresh" -o /dev/null; curl -s "$u/polyglot_doc_orders/_doc/11" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["_source"], sort_keys=True))'; done

-- the parent: a product renamed, added, removed, its key changed
UPDATE products SET name = 'desk lamp' WHERE id = 1;
INSERT INTO products VALUES (5, 'toaster', 25, 2);
DELETE FROM products WHERE id = 4;
UPDATE products SET id = 50 WHERE id = 5;
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT --scan --pattern 'doc:p:*' | sort
\! redis-cli -p $REDIS_PORT GET doc:o:10

-- the embedded children: a review added, changed, removed, and moved to
-- another product (both documents change); a review of no product changes none
INSERT INTO reviews VALUES (7, 2, 5, 'love it');
UPDATE reviews SET stars = 2 WHERE id = 1;
DELETE FROM reviews WHERE id = 3;
UPDATE reviews SET product_id = 3 WHERE id = 5;
UPDATE reviews SET body = 'still none' WHERE id = 6;
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT GET doc:p:1; redis-cli -p $REDIS_PORT GET doc:p:2; redis-cli -p $REDIS_PORT GET doc:p:3
\! $MONGO_TOOL dump polyglot_documents products

-- order lines: added, changed, removed, and moved to another order
INSERT INTO lines VALUES (12, 2, 3, 2);
UPDATE lines SET qty = 4 WHERE order_id = 10 AND no = 1;
DELETE FROM lines WHERE order_id = 10 AND no = 2;
UPDATE lines SET order_id = 10, no = 2 WHERE order_id = 11 AND no = 1;
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT GET doc:o:10; redis-cli -p $REDIS_PORT GET doc:o:11; redis-cli -p $REDIS_PORT GET doc:o:12

-- the grandchildren: a product of the lines renamed (orders 10 and 12
-- change), a brand renamed (its products, and the orders that have them),
-- a line pointed at another product, a brand's key changed (cascading to
-- its products)
UPDATE products SET name = 'big kettle' WHERE id = 3;
UPDATE brands SET name = 'ACME' WHERE id = 1;
UPDATE lines SET product_id = 50 WHERE order_id = 12 AND no = 1;
UPDATE brands SET id = 20 WHERE id = 2;
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT GET doc:o:10; redis-cli -p $REDIS_PORT GET doc:o:12; redis-cli -p $REDIS_PORT GET doc:p:50
\! $MONGO_TOOL dump polyglot_documents orders
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_doc_products/_refresh" -o /dev/null; curl -s "$u/polyglot_doc_products/_doc/3" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["_source"], sort_keys=True))'; done

-- a change to a brand no order reaches re-delivers no order: its fan-out
-- finds no document (the products route re-delivers the brand's products)
INSERT INTO brands VALUES (3, 'Cog', 'FR');
SELECT * FROM documents_checked();

-- a TRUNCATE of a related table: every document of the routes it is in
TRUNCATE reviews;
SELECT * FROM documents_checked();
\! redis-cli -p $REDIS_PORT GET doc:p:1

-- verify compares whole documents: a store whose embedded array differs
-- is drift, and repair writes the document again
\! redis-cli -p $REDIS_PORT SET doc:o:10 '{"id": 10, "customer": "ann", "lines": []}' > /dev/null
SELECT kind, key FROM polyglot.verify(polyglot.route('doc_orders_redis'));
SET client_min_messages = warning;
SELECT count(*) FROM polyglot.verify(polyglot.route('doc_orders_redis'), true);
RESET client_min_messages;
SELECT * FROM documents_checked();

-- an embed by a key whose equal values print differently (numeric 5 and
-- 5.00): its changes are not the documents' keys as they are, but a
-- fan-out, and re-deliver the document all the same
CREATE TABLE gadgets (id numeric PRIMARY KEY, name text);
CREATE TABLE gadget_notes (id int PRIMARY KEY, gadget_id numeric REFERENCES gadgets, note text);
INSERT INTO gadgets VALUES (5.00, 'five');
INSERT INTO gadget_notes VALUES (1, 5, 'a');
SELECT polyglot.sync('gadgets', 'd_cache', '{"name": "doc_gadgets", "key": "doc:g:{id}", "embed": {"notes": {"table": "gadget_notes", "columns": ["note"]}}}') > 0 AS ok;
SELECT x->>'direct' AS direct, r.options->'embed'->'notes'->>'order_by' AS order_by
  FROM polyglot.routes r, jsonb_array_elements(polyglot._route_relations(r.options, r.source_relid, r.key_columns)) x
 WHERE r.name = 'doc_gadgets';
UPDATE gadget_notes SET note = 'b' WHERE id = 1;
SELECT * FROM documents_checked() WHERE route = 'doc_gadgets';
\! redis-cli -p $REDIS_PORT GET doc:g:5.00
SELECT polyglot.unsync('doc_gadgets');
DROP TABLE gadget_notes, gadgets;
-- the same when a type change makes the key columns differ: the triggers
-- are made again, of the other kind
CREATE TABLE widgets (id int PRIMARY KEY, name text);
CREATE TABLE widget_parts (id int PRIMARY KEY, widget_id int, part text);
INSERT INTO widgets VALUES (7, 'seven');
INSERT INTO widget_parts VALUES (1, 7, 'bolt');
SELECT polyglot.sync('widgets', 'd_cache', '{"name": "doc_widgets", "key": "doc:w:{id}", "embed": {"parts": {"table": "widget_parts", "on": {"id": "widget_id"}, "columns": ["part"]}}}') > 0 AS ok;
CREATE FUNCTION widget_kind() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(x->>'direct' || ' ' || (string_to_array(encode(t.tgargs, 'escape'), '\000'))[3], ', ')
    FROM polyglot.routes r, jsonb_array_elements(polyglot._route_relations(r.options, r.source_relid, r.key_columns)) x,
         pg_trigger t
   WHERE r.name = 'doc_widgets' AND t.tgname = 'polyglot_sync_' || r.id || '_r1'
$$;
SELECT widget_kind();
ALTER TABLE widget_parts ALTER COLUMN widget_id TYPE numeric;
SELECT widget_kind();
UPDATE widget_parts SET part = 'nut', widget_id = 7.0 WHERE id = 1;
SELECT * FROM documents_checked() WHERE route = 'doc_widgets';
\! redis-cli -p $REDIS_PORT GET doc:w:7
SELECT polyglot.unsync('doc_widgets');
DROP FUNCTION widget_kind();
DROP TABLE widget_parts, widgets;

-- options that cannot make a document are refused at sync()
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "embed": {"x": {"table": "brands"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "mode": "hash", "include": {"brand": {"table": "brands"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "embed": {"reviews": {"table": "reviews", "order_by": "stars; DROP TABLE x"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"name": {"table": "brands"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "brands", "columns": ["nope"]}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "brands", "sort": "x"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "brands", "on": {"brand_id": "nope"}}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "embed": {"reviews": {"table": "reviews", "limit": 0}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "nope"}}}')$$);
SELECT try($$SELECT polyglot.sync('products', 'd_cache', '{"name": "bad", "key": "bad:{id}", "embed": {"reviews": {"table": "reviews", "order_by": "nope DESC"}}}')$$);
-- the caller makes triggers on the related tables (TRIGGER), and the
-- synced table's owner reads them (SELECT)
CREATE ROLE doc_owner;
GRANT USAGE ON FOREIGN SERVER d_cache TO doc_owner;
CREATE USER MAPPING FOR doc_owner SERVER d_cache;
CREATE TABLE owned (id int PRIMARY KEY, brand_id int REFERENCES brands);
ALTER TABLE owned OWNER TO doc_owner;
SET ROLE doc_owner;
SELECT try($$SELECT polyglot.sync('owned', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "brands"}}}')$$);
RESET ROLE;
GRANT SELECT ON brands TO doc_owner;
SET ROLE doc_owner;
SELECT try_detail($$SELECT polyglot.sync('owned', 'd_cache', '{"name": "bad", "key": "bad:{id}", "include": {"brand": {"table": "brands"}}}')$$);
RESET ROLE;
DROP TABLE owned;
DROP USER MAPPING FOR doc_owner SERVER d_cache;
REVOKE ALL ON brands FROM doc_owner;
REVOKE ALL ON FOREIGN SERVER d_cache FROM doc_owner;
DROP ROLE doc_owner;
SELECT count(*) FROM polyglot.routes WHERE name = 'bad';

-- the tables of a document keep what the routes use: renaming a table or
-- a column a document uses is refused; other changes go through
SELECT try($$ALTER TABLE lines RENAME COLUMN qty TO quantity$$);
SELECT try($$ALTER TABLE brands RENAME TO makers$$);
SELECT try($$ALTER TABLE lines RENAME COLUMN product_id TO item_id$$);
SELECT try($$ALTER TABLE lines RENAME COLUMN no TO line_no$$);
SELECT try($$ALTER TABLE products ADD COLUMN brand text$$);
-- (order_by "stars DESC, id" of reviews: the products' id is not reviews')
SELECT try($$ALTER TABLE reviews RENAME COLUMN id TO review_id$$);
ALTER TABLE reviews ADD COLUMN helpful int;
ALTER TABLE reviews RENAME COLUMN helpful TO helpful_votes;
ALTER TABLE reviews DROP COLUMN helpful_votes;
SELECT * FROM documents_checked();

-- unsync removes the route's triggers from every related table
SELECT polyglot.unsync('doc_orders_redis');
SELECT polyglot.unsync('doc_products_redis');
SELECT tgrelid::regclass AS tbl, count(*) AS triggers FROM pg_trigger
 WHERE tgname LIKE 'polyglot_sync_%' GROUP BY 1 ORDER BY 1;

-- dropping a column or a table a document uses stops its routes, as
-- dropping a key column does, and takes their triggers away
-- (the warnings name the routes by ids, which vary: the routes left are shown)
SET client_min_messages = error;
ALTER TABLE reviews DROP COLUMN stars;
SELECT name FROM polyglot.routes WHERE name LIKE 'doc_%' ORDER BY name;
DROP TABLE brands CASCADE;
SELECT name FROM polyglot.routes WHERE name LIKE 'doc_%' ORDER BY name;
RESET client_min_messages;
CREATE TABLE parts (id int PRIMARY KEY, product_id int REFERENCES products, label text);
SELECT polyglot.sync('products', 'd_docs', '{"name": "doc_parts", "collection": "parts_docs", "embed": {"parts": {"table": "parts"}}}', backfill => false) > 0 AS ok;
SET client_min_messages = error;
DROP TABLE parts;
RESET client_min_messages;
SELECT count(*) FROM polyglot.routes WHERE name = 'doc_parts';
-- a schema dropped with a related table in it: the route stops
CREATE SCHEMA extras;
CREATE TABLE extras.parts (id int PRIMARY KEY, product_id int REFERENCES products, label text);
SELECT polyglot.sync('products', 'd_docs', '{"name": "doc_extras", "collection": "extras_docs", "embed": {"parts": {"table": "extras.parts"}}}', backfill => false) > 0 AS ok;
SET client_min_messages = error;
DROP SCHEMA extras CASCADE;
RESET client_min_messages;
SELECT count(*) FROM polyglot.routes WHERE name = 'doc_extras';
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'polyglot_sync_%';
DROP TABLE lines, orders, reviews, products;
\! redis-cli -p $REDIS_PORT --scan --pattern 'doc:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! $MONGO_TOOL drop polyglot_documents
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do for i in polyglot_doc_products polyglot_doc_orders; do curl -s -o /dev/null -XDELETE "$u/$i?ignore_unavailable=true"; done; done
DROP SERVER d_cache, d_docs, d_os, d_es CASCADE;
