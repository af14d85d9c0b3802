--
-- sync_mongo: changes of synced tables reach a MongoDB collection (FerretDB)
-- as native BSON: every type, composite keys, key changes, TRUNCATE,
-- columns/exclude, rollbacks; a row MongoDB cannot hold fails alone.
-- The collections are read back with pymongo (test/tools/mongo.py), as
-- canonical Extended JSON, which shows each value's BSON type.
--
\getenv mongo_uri MONGO_URI
\! $MONGO_TOOL drop polyglot_sync
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'polyglot_sync');
CREATE SERVER docs_nodb FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri');

\i test/integration/sql/setup.psql
CREATE FUNCTION mongo_synced(route int) RETURNS text LANGUAGE sql AS $$
  SELECT wait_for(format('(SELECT pending = 0 FROM polyglot.status WHERE route = %s)', route))
$$;

CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), cost numeric);

--
-- inserts, updates, deletes, "exclude", the default collection (the table's
-- name) and a backfill
--
INSERT INTO products VALUES (1, 'lamp', 19.90, 7), (2, 'desk', 120, 60);
SELECT polyglot.sync('products', 'docs', '{"exclude": ["cost"]}') AS route \gset
SELECT options FROM polyglot.routes WHERE id = :route;
SELECT mongo_synced(:route);
\! $MONGO_TOOL dump polyglot_sync products
INSERT INTO products VALUES (3, 'chair', 45, 20);
UPDATE products SET price = 21.50 WHERE id = 1;
BEGIN;
UPDATE products SET name = 'desk v2' WHERE id = 2;
UPDATE products SET name = 'desk v3' WHERE id = 2;
COMMIT;
DELETE FROM products WHERE id = 3;
-- rolled back, at top level and in a savepoint: nothing reaches MongoDB
BEGIN;
INSERT INTO products VALUES (4, 'ghost', 1, 1);
ROLLBACK;
BEGIN;
INSERT INTO products VALUES (5, 'kept', 1, 1);
SAVEPOINT s;
INSERT INTO products VALUES (6, 'undone', 1, 1);
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- a key change: the old _id goes, the new one comes
UPDATE products SET id = 20 WHERE id = 2;
SELECT mongo_synced(:route);
\! $MONGO_TOOL dump polyglot_sync products

--
-- every type as native BSON, into a named collection of another database.
-- FerretDB 1.x has no decimal128: there a numeric goes as int64 or double
-- when that is the same number (else its key fails, below)
--
CREATE TYPE dims AS (w int, h int);
CREATE TABLE typed (id bigint PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 real,
                    f8 float8, n numeric, t text, vc varchar(10), c char(3), ts timestamp,
                    tz timestamptz, d date, u uuid, by bytea, jb jsonb, j json,
                    ai int[], at text[], a2 int[], comp dims, iv interval, ip inet, nul text);
INSERT INTO typed VALUES
  (1, true, -2, 2147483647, 9007199254740993, 1.5, 0.1,
   12345.678, E'unicode \u00e9 \u2603 "quoted"', 'vc', 'ab',
   '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.987654+02', '1969-07-20',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10',
   '{"a": [1, 2.5, "x", null, true], "o": {"k": "v"}, "big": 12345678901}', '{"j": [1]}',
   '{1,NULL,3}', '{"x","y"}', '{{1,2},{3,4}}', '(3,4)', '1 day 02:03:04', '10.0.0.1', NULL),
  (2, false, NULL, NULL, NULL, NULL, NULL, '-0.5', '', NULL, NULL,
   '1960-01-01 00:00:00', '1900-01-01 00:00:00+00', '2000-01-01', NULL, '\x', '[]', 'null',
   '{}', NULL, NULL, NULL, NULL, NULL, NULL);
\! $MONGO_TOOL drop polyglot_sync_other
SELECT polyglot.sync('typed', 'docs', '{"database": "polyglot_sync_other", "collection": "typed_docs"}') AS typed \gset
SELECT mongo_synced(:typed);
\! $MONGO_TOOL dump polyglot_sync_other typed_docs

--
-- a composite key becomes a subdocument _id; "columns"; TRUNCATE
--
CREATE TABLE stock (warehouse text, sku int, qty int, note text, PRIMARY KEY (warehouse, sku));
INSERT INTO stock VALUES ('north', 1, 10, 'fragile'), ('south', 1, 0, NULL);
SELECT polyglot.sync('stock', 'docs', '{"columns": ["qty", "note"]}') AS stock \gset
SELECT mongo_synced(:stock);
\! $MONGO_TOOL dump polyglot_sync stock
UPDATE stock SET warehouse = 'east' WHERE warehouse = 'south';
SELECT mongo_synced(:stock);
\! $MONGO_TOOL dump polyglot_sync stock
TRUNCATE stock;
SELECT mongo_synced(:stock);
\! $MONGO_TOOL count polyglot_sync stock

--
-- a value BSON cannot hold fails its key only, with the reason
--
CREATE TABLE odd (id int PRIMARY KEY, n numeric, t timestamptz);
INSERT INTO odd VALUES (1, 1, '2024-01-01'), (2, 1e40 + 1, '2024-01-01'), (3, 3, 'infinity'),
                       (4, 4.5, '2024-01-01');
SELECT polyglot.sync('odd', 'docs') AS odd \gset
-- (until keys 1 and 4 are delivered and keys 2 and 3 wait with their error)
SELECT wait_for(format('(SELECT delivered >= 2 FROM polyglot.route_state WHERE route_id = %s) AND '
                       '(SELECT count(*) = 2 AND bool_and(last_error IS NOT NULL) FROM polyglot.outbox WHERE route_id = %1$s)', :odd));
\! $MONGO_TOOL count polyglot_sync odd
SELECT k.key, o.last_error
  FROM polyglot.outbox o, LATERAL (SELECT o.key[1][1] AS key) k
 WHERE o.route_id = :odd ORDER BY 1;
SELECT last_error IS NOT NULL AS has_error FROM polyglot.status WHERE route = :odd;
-- fixed, the rows go on their next attempt
UPDATE odd SET n = 2 WHERE id = 2;
UPDATE odd SET t = '2024-01-01 00:00:00+00' WHERE id = 3;
SELECT mongo_synced(:odd);
\! $MONGO_TOOL dump polyglot_sync odd 

-- inserted rows go to FerretDB as plain inserts; one whose _id is already
-- taken (a stale document, a redelivery) is replaced, not lost or failed
CREATE TABLE fresh (id int PRIMARY KEY, v text);
-- (no backfill: one taking its step after the resume would enqueue the rows again)
SELECT polyglot.sync('fresh', 'docs', '{}', false) AS fresh \gset
SELECT polyglot.pause(:fresh);
\! $MONGO_TOOL insert polyglot_sync fresh '[{"_id": 2, "v": "stale"}, {"_id": 4, "v": "stale", "extra": true}]'
INSERT INTO fresh SELECT g, 'row ' || g FROM generate_series(1, 5) g;
SELECT polyglot.resume(:fresh);
SELECT mongo_synced(:fresh);
\! $MONGO_TOOL dump polyglot_sync fresh
SELECT delivered, failed FROM polyglot.status WHERE route = :fresh;

-- keys the store refuses fail alone, each with its reason, and the others
-- go: a jsonb key that looks like an operator is matched literally (on an
-- update it is deleted by {_id: {$eq: ...}}, never inside $in), a jsonb
-- number beyond a double, a NaN float (FerretDB drops the connection on one)
CREATE TABLE refused (k jsonb PRIMARY KEY, v text);
INSERT INTO refused VALUES ('1', 'one'), ('{"a": 1}', 'doc'), ('{"$ne": null}', 'operator'),
                           ('1e1000', 'huge');
CREATE TABLE fkeys (k float8 PRIMARY KEY, v text);
INSERT INTO fkeys VALUES (1.5, 'fine'), ('NaN', 'nan'), (2.5, 'fine too');
SELECT polyglot.sync('refused', 'docs') AS refused \gset
SELECT polyglot.sync('fkeys', 'docs') AS fkeys \gset
CREATE FUNCTION only_refused_left(route int, delivered int) RETURNS text LANGUAGE sql AS $$
  SELECT wait_for(format('(SELECT delivered >= %s FROM polyglot.route_state WHERE route_id = %s) AND '
                         'NOT EXISTS (SELECT FROM polyglot.outbox WHERE route_id = %2$s AND last_error IS NULL)',
                         delivered, route))
$$;
SELECT only_refused_left(:refused, 2);
UPDATE refused SET v = v || ' again';
SELECT only_refused_left(:refused, 4);
\! $MONGO_TOOL dump polyglot_sync refused
SELECT DISTINCT left(o.key[1][1], 20) AS key, regexp_replace(o.last_error, '[0-9]{20,}', '<digits>') AS last_error
  FROM polyglot.outbox o WHERE o.route_id = :refused ORDER BY 1;
SELECT only_refused_left(:fkeys, 2);
\! $MONGO_TOOL dump polyglot_sync fkeys
SELECT DISTINCT o.key[1][1] AS key, o.last_error
  FROM polyglot.outbox o WHERE o.route_id = :fkeys ORDER BY 1;
-- a document over MongoDB's 16 MB fails the whole write before it is sent:
-- the batch goes again in parts, and only that key fails
CREATE TABLE bigrows (id int PRIMARY KEY, v text);
INSERT INTO bigrows VALUES (1, 'small'), (2, repeat('x', 17 * 1024 * 1024)), (3, 'small too');
SELECT polyglot.sync('bigrows', 'docs') AS bigrows \gset
SELECT only_refused_left(:bigrows, 2);
\! $MONGO_TOOL count polyglot_sync bigrows
SELECT o.key[1][1] AS key, o.last_error
  FROM polyglot.outbox o WHERE o.route_id = :bigrows ORDER BY 1;
SELECT polyglot.unsync('bigrows', 'docs');
DROP TABLE bigrows;
SELECT polyglot.unsync('refused', 'docs'), polyglot.unsync('fkeys', 'docs');
DROP TABLE refused, fkeys;
DROP FUNCTION only_refused_left(int, int);

SELECT polyglot.unsync('products', 'docs'), polyglot.unsync('typed', 'docs'),
       polyglot.unsync('stock', 'docs'), polyglot.unsync('odd', 'docs'),
       polyglot.unsync('fresh', 'docs');
DROP TABLE products, typed, stock, odd, fresh;
DROP TYPE dims;
DROP SERVER docs, docs_nodb;
\! $MONGO_TOOL drop polyglot_sync
\! $MONGO_TOOL drop polyglot_sync_other
