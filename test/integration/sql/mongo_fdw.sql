--
-- mongo_fdw: MongoDB foreign tables on FerretDB: types back from BSON, the
-- whole document, dotted fields, and WHERE pushdown as plain find filters
-- (FerretDB is sent a find as an aggregation pipeline: the filter is its
-- $match).  Every pushed form shows in EXPLAIN VERBOSE and returns what the same
-- query returns with polyglot.mongo_pushdown off, on 1,000 documents: ten
-- of a scan's batches of 100 (the default batch_size), so every scan pages
-- across batches.  More documents prove nothing more, and FerretDB 1.x
-- reads the whole collection for every query (it finds by _id only for a
-- string or ObjectId _id, not for these integers).
--
\getenv mongo_uri MONGO_URI
\! $MONGO_TOOL drop polyglot_fdw
\! $MONGO_TOOL seed polyglot_fdw items 1000
CREATE SERVER fdw_docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'polyglot_fdw');
CREATE FOREIGN TABLE items (_id int, name text, qty int, price numeric, city text,
                            active bool, tags text[], w int OPTIONS (field 'dims.w'),
                            note text, doc jsonb)
  SERVER fdw_docs;

SELECT _id, name, qty, price, city, active, tags, w, note FROM items WHERE _id IN (1, 5, 10, 15) ORDER BY _id;
SELECT doc FROM items WHERE _id = 7;
SELECT count(*) FROM items;
-- A find goes to FerretDB as an aggregation pipeline of its filter (sort and
-- limit: mongo_pushdown), without $project: documents come whole, whichever
-- columns are read (a projection costs FerretDB a copy of every document,
-- more than the bytes it saves).  Other servers are sent a find with a
-- projection (mongo_java).
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, name FROM items WHERE qty = 7;
SELECT _id, name FROM items WHERE qty = 7 ORDER BY _id LIMIT 3;

-- the same rows with and without pushdown; returns the row count
CREATE FUNCTION both_ways(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  local text;
  n bigint;
BEGIN
  PERFORM set_config('polyglot.mongo_pushdown', 'on', true);
  EXECUTE format('SELECT count(*), coalesce(string_agg(md5(x::text), '','' ORDER BY md5(x::text)), '''') FROM (%s) x', q)
    INTO n, pushed;
  PERFORM set_config('polyglot.mongo_pushdown', 'off', true);
  EXECUTE format('SELECT coalesce(string_agg(md5(x::text), '','' ORDER BY md5(x::text)), '''') FROM (%s) x', q)
    INTO local;
  PERFORM set_config('polyglot.mongo_pushdown', 'on', true);
  RETURN CASE WHEN pushed = local THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
-- the filter sent for a query (the pipeline sent to FerretDB), and the
-- local one
CREATE FUNCTION remote_filter(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line ~ 'Remote (Filter|Pipeline)|  Filter:' THEN
      result := result || trim(line) || ' ';
    END IF;
  END LOOP;
  RETURN trim(result);
END $$;

CREATE TABLE forms (q text);
INSERT INTO forms VALUES
  ('SELECT _id FROM items WHERE qty = 7'),
  ('SELECT _id FROM items WHERE 7 = qty'),
  ('SELECT _id FROM items WHERE qty <> 7'),
  ('SELECT _id FROM items WHERE qty < 3'),
  ('SELECT _id FROM items WHERE qty <= 3'),
  ('SELECT _id FROM items WHERE qty > 97'),
  ('SELECT _id FROM items WHERE 97 < qty'),
  ('SELECT _id FROM items WHERE qty >= 97'),
  ('SELECT _id FROM items WHERE price > 249.5'),
  ('SELECT _id FROM items WHERE price = 12.25'),
  ('SELECT _id FROM items WHERE city = ''Oslo'''),
  ('SELECT _id FROM items WHERE city <> ''Oslo'''),
  ('SELECT _id FROM items WHERE city IN (''Lima'', ''Baku'')'),
  ('SELECT _id FROM items WHERE city NOT IN (''Lima'', ''Baku'', ''Oslo'')'),
  ('SELECT _id FROM items WHERE qty = ANY (ARRAY[1, 2, NULL])'),
  ('SELECT _id FROM items WHERE qty <> ALL (ARRAY[1, 2])'),
  ('SELECT _id FROM items WHERE qty <> ALL (ARRAY[1, NULL])'),
  ('SELECT _id FROM items WHERE note IS NULL'),
  ('SELECT _id FROM items WHERE note IS NOT NULL'),
  ('SELECT _id FROM items WHERE note = ''note 3'''),
  ('SELECT _id FROM items WHERE note <> ''note 3'''),
  ('SELECT _id FROM items WHERE active'),
  ('SELECT _id FROM items WHERE NOT active'),
  ('SELECT _id FROM items WHERE active = true'),
  ('SELECT _id FROM items WHERE w = 3 AND qty < 50'),
  ('SELECT _id FROM items WHERE qty = 1 OR city = ''Graz'''),
  ('SELECT _id FROM items WHERE (qty < 5 OR qty > 95) AND NOT active'),
  ('SELECT _id FROM items WHERE name = ''{"$gt": ""}'''),
  ('SELECT _id FROM items WHERE name = ''item 00042'''),
  ('SELECT _id FROM items WHERE _id = 424'),
  -- kept local: text ordering (collation), functions, casts
  ('SELECT _id FROM items WHERE city < ''M'''),
  ('SELECT _id FROM items WHERE lower(city) = ''oslo'''),
  ('SELECT _id FROM items WHERE qty + 1 = 8');
SELECT q, remote_filter(q), both_ways(q) FROM forms;

-- parameters push down like constants
PREPARE by_qty(int) AS SELECT count(*) FROM items WHERE qty = $1;
EXECUTE by_qty(7);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE by_qty(7);
-- a nested loop: each outer row's value goes into the inner scan's filter
CREATE TABLE wanted (id int PRIMARY KEY);
INSERT INTO wanted VALUES (3), (33), (333);
ANALYZE wanted;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT i.name FROM wanted w JOIN items i ON i._id = w.id;
\i test/integration/sql/explain.psql
SELECT explain_analyze('SELECT i.name FROM wanted w JOIN items i ON i._id = w.id');
SELECT i.name FROM wanted w JOIN items i ON i._id = w.id ORDER BY 1;
SELECT both_ways('SELECT i.name, w.id FROM wanted w JOIN items i ON i.qty = w.id');
RESET enable_hashjoin;
RESET enable_mergejoin;

-- a value that does not convert: the error names the column and the document
\! $MONGO_TOOL insert polyglot_fdw odd '[{"_id": 1, "n": "not a number"}, {"_id": 2, "n": 2147483648}]'
CREATE FOREIGN TABLE odd (_id int, n int) SERVER fdw_docs;
SELECT * FROM odd WHERE _id = 1;
SELECT * FROM odd WHERE _id = 2;
-- an ObjectId _id reads as its hex, and a text _id finds it
\! $MONGO_TOOL insert polyglot_fdw oids '[{"_id": {"$oid": "65a0a0a0a0a0a0a0a0a0a0a0"}, "v": 1}]'
CREATE FOREIGN TABLE oids (_id text, v int) SERVER fdw_docs;
SELECT * FROM oids;
SELECT * FROM oids WHERE _id = '65a0a0a0a0a0a0a0a0a0a0a0';
-- a server that is down: a clear error within the connect timeout
CREATE SERVER fdw_down FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri 'mongodb://127.0.0.1:1', database 'x', connect_timeout '300ms');
CREATE FOREIGN TABLE down_items (_id int) SERVER fdw_down;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM down_items;
SELECT clock_timestamp() - :'t0' < interval '5 seconds' AS within_timeout;
DROP SERVER fdw_down CASCADE;
-- IMPORT FOREIGN SCHEMA: a table per collection, columns from a sample
CREATE SCHEMA imported;
IMPORT FOREIGN SCHEMA polyglot_fdw LIMIT TO (items, oids) FROM SERVER fdw_docs INTO imported
  OPTIONS (sample_size '50');
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attfdwoptions
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'imported'::regnamespace AND a.attnum > 0
 ORDER BY c.relname, a.attnum;
SELECT _id, name, qty, price, city, active, tags, dims, note FROM imported.items WHERE _id = 5;
IMPORT FOREIGN SCHEMA polyglot_fdw FROM SERVER fdw_docs INTO imported OPTIONS (sample '1');
IMPORT FOREIGN SCHEMA polyglot_fdw FROM SERVER fdw_docs INTO imported OPTIONS (sample_size '0');
DROP SCHEMA imported CASCADE;
-- INSERT, UPDATE, DELETE by _id, with RETURNING
\! $MONGO_TOOL drop polyglot_fdw things
CREATE FOREIGN TABLE things (_id int, name text, price numeric, tags text[], doc jsonb)
  SERVER fdw_docs;
INSERT INTO things (_id, name, price, tags)
  VALUES (1, 'a', 1.5, '{x,y}'), (2, 'b', 2, NULL), (3, '{"$gt": ""}', 3, '{}') RETURNING _id, name;
SELECT _id, name, price, tags FROM things ORDER BY _id;
UPDATE things SET price = price * 2, name = 'bb' WHERE _id = 2 RETURNING _id, name, price;
DELETE FROM things WHERE name = 'a' RETURNING _id;
SELECT doc FROM things ORDER BY _id;
\! $MONGO_TOOL dump polyglot_fdw things
UPDATE things SET _id = 9;
CREATE FOREIGN TABLE noid (name text) SERVER fdw_docs OPTIONS (collection 'things');
DELETE FROM noid;
-- without an _id the server makes an ObjectId, which a text _id then finds
CREATE FOREIGN TABLE auto_ids (_id text, name text) SERVER fdw_docs;
INSERT INTO auto_ids (name) VALUES ('generated');
UPDATE auto_ids SET name = 'changed';
SELECT length(_id), name FROM auto_ids;
DELETE FROM auto_ids;
SELECT count(*) FROM auto_ids;
-- FerretDB drops the connection on a NaN double: it is refused before sending,
-- and the connection serves the next statement
CREATE FOREIGN TABLE floats (_id int, f float8) SERVER fdw_docs;
INSERT INTO floats VALUES (1, 'NaN');
INSERT INTO floats VALUES (2, 1.5), (3, 'Infinity');
SELECT _id, f FROM floats ORDER BY _id;
SELECT _id, f FROM floats WHERE f <> 'NaN' ORDER BY _id;
-- no database anywhere
CREATE SERVER fdw_nodb FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri');
CREATE FOREIGN TABLE lost (_id int) SERVER fdw_nodb;
SELECT * FROM lost;

DROP SERVER fdw_docs, fdw_nodb CASCADE;
DROP TABLE forms, wanted;
\! $MONGO_TOOL drop polyglot_fdw
