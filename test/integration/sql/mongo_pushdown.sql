--
-- mongo_pushdown: ORDER BY, LIMIT and aggregates pushed down to MongoDB
-- (FerretDB), batched INSERT, remote row estimates and the options that
-- turn pushdown off.  Every pushed form shows in EXPLAIN VERBOSE and
-- returns what the same query returns with polyglot.mongo_pushdown off, in
-- the same order, on 1,000 documents: ten of a scan's batches of 100 (the
-- default batch_size), so an unlimited sorted scan (city = 'Oslo', 143
-- rows) pages across batches.  More documents prove nothing more, and
-- FerretDB 1.x reads the whole collection for every query.  FerretDB is
-- sent a find as an aggregation pipeline: a pushed sort and limit are its
-- $sort and $limit stages.
--
\getenv mongo_uri MONGO_URI
\! $MONGO_TOOL drop polyglot_pushdown
\! $MONGO_TOOL seed polyglot_pushdown items 1000
CREATE SERVER pd_docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'polyglot_pushdown');
-- fields as they come: any may be null or missing
CREATE FOREIGN TABLE items (_id int, name text COLLATE "C", qty int, price numeric,
                            city text, active bool, w int OPTIONS (field 'dims.w'),
                            note text COLLATE "C")
  SERVER pd_docs;
-- the same collection, with the fields every document has declared NOT NULL
CREATE FOREIGN TABLE items_nn (_id int NOT NULL, name text COLLATE "C" NOT NULL,
                               qty int NOT NULL, price numeric NOT NULL,
                               city text COLLATE "C" NOT NULL, active bool NOT NULL,
                               w int OPTIONS (field 'dims.w') NOT NULL,
                               note text COLLATE "C")
  SERVER pd_docs OPTIONS (collection 'items');

-- the same rows with and without pushdown, in the same order when ordered
-- (groups of an aggregation come in no particular order)
CREATE FUNCTION same_result(q text, ordered bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  local text;
  n bigint;
  agg text := CASE WHEN ordered THEN 'string_agg(x::text, '';'')'
                   ELSE 'string_agg(x::text, '';'' ORDER BY x::text)' END;
BEGIN
  PERFORM set_config('polyglot.mongo_pushdown', 'on', true);
  EXECUTE format('SELECT count(*), coalesce(%s, '''') FROM (%s) x', agg, q) INTO n, pushed;
  PERFORM set_config('polyglot.mongo_pushdown', 'off', true);
  EXECUTE format('SELECT coalesce(%s, '''') FROM (%s) x', agg, q) INTO local;
  PERFORM set_config('polyglot.mongo_pushdown', 'on', true);
  RETURN CASE WHEN pushed = local THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
-- what is sent, and what PostgreSQL still does itself
CREATE FUNCTION plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line ~ 'Remote (Sort|Limit|Pipeline)' THEN
      result := result || trim(line) || ' ';
    ELSIF line ~ '^ *(->  Sort\M|Sort Key:)' AND result ~ 'local Aggregate $' THEN
      -- the input of count(DISTINCT x) sorted for the aggregate (the Sort
      -- and its key), a plan
      -- PostgreSQL 16 and later make: local either way
      NULL;
    ELSIF line ~ '^ *(->  )?(Sort|Limit|Aggregate|HashAggregate|GroupAggregate)\M' THEN
      result := result || 'local ' || regexp_replace(trim(line), '^->  ', '') || ' ';
    END IF;
  END LOOP;
  RETURN trim(result);
END $$;

-- ORDER BY and LIMIT
CREATE TABLE ordered (q text);
INSERT INTO ordered VALUES
  ('SELECT _id, qty FROM items_nn ORDER BY qty, _id LIMIT 10'),
  ('SELECT _id, qty FROM items_nn ORDER BY qty DESC, _id DESC LIMIT 10 OFFSET 20'),
  ('SELECT _id, name FROM items_nn WHERE qty = 7 ORDER BY name DESC LIMIT 5'),
  ('SELECT _id, qty FROM items_nn WHERE city = ''Oslo'' ORDER BY qty DESC, _id'),
  ('SELECT _id, note FROM items_nn ORDER BY note NULLS FIRST, _id LIMIT 30'),
  ('SELECT _id, note FROM items_nn ORDER BY note DESC NULLS LAST, _id LIMIT 30'),
  ('SELECT _id, note FROM items_nn WHERE note > ''note 6'' ORDER BY note, _id LIMIT 20'),
  ('SELECT _id, note FROM items_nn WHERE note IS NOT NULL ORDER BY note DESC, _id LIMIT 20'),
  ('SELECT _id, w FROM items_nn WHERE w IN (3, 4) ORDER BY w, qty, _id LIMIT 15'),
  ('SELECT name FROM items_nn ORDER BY _id LIMIT 3'),
  -- kept local: NULLs where MongoDB does not put them, collations, booleans,
  -- numeric and floating point (MongoDB sorts NaN first), expressions; a
  -- LIMIT above a condition that stays local
  ('SELECT _id, note FROM items_nn ORDER BY note, _id LIMIT 10'),
  ('SELECT _id, qty FROM items ORDER BY qty, _id LIMIT 10'),
  ('SELECT _id, city FROM items ORDER BY city NULLS FIRST, _id NULLS FIRST LIMIT 10'),
  ('SELECT _id, active FROM items_nn ORDER BY active, _id LIMIT 10'),
  ('SELECT _id, price FROM items_nn ORDER BY price DESC, _id LIMIT 10'),
  ('SELECT _id, qty FROM items_nn ORDER BY qty + 1, _id LIMIT 10'),
  ('SELECT _id, qty FROM items_nn WHERE qty + 1 = 8 ORDER BY _id LIMIT 3'),
  -- comparisons with NaN or an infinity: MongoDB orders NaN below every
  -- number, FerretDB has no numeric infinity and drops the connection on NaN
  ('SELECT _id FROM items_nn WHERE price < ''Infinity'' ORDER BY _id LIMIT 5'),
  ('SELECT _id FROM items_nn WHERE price > ''-Infinity''::numeric ORDER BY _id LIMIT 5'),
  ('SELECT _id FROM items_nn WHERE price <> ''NaN'' ORDER BY _id LIMIT 5'),
  -- (prices 1 and 2 are two documents of the 1,000: the LIMIT cuts)
  ('SELECT _id FROM items_nn WHERE price IN (1, 2, ''Infinity'') ORDER BY _id LIMIT 1');
SELECT q, plan_of(q), same_result(q, true) FROM ordered;

-- a LIMIT without ORDER BY: any documents will do, so count them
SELECT plan_of('SELECT _id FROM items WHERE qty = 3 LIMIT 5');
SELECT count(*) FROM (SELECT _id FROM items WHERE qty = 3 LIMIT 5) s;
SELECT count(*) FROM (SELECT _id FROM items LIMIT 0) s;
-- a join keeps its LIMIT, and the inner scan stays whole
CREATE TABLE picks (id int PRIMARY KEY);
INSERT INTO picks SELECT g FROM generate_series(1, 40) g;
SELECT plan_of('SELECT i._id FROM items_nn i JOIN picks p ON p.id = i._id ORDER BY i.qty, i._id LIMIT 5');
SELECT i._id, i.qty FROM items_nn i JOIN picks p ON p.id = i._id ORDER BY i.qty, i._id LIMIT 5;

-- aggregates
CREATE TABLE grouped (q text);
INSERT INTO grouped VALUES
  ('SELECT count(*) FROM items'),
  ('SELECT count(*) FROM items WHERE qty > 1000'),
  ('SELECT sum(qty) FROM items_nn WHERE qty > 1000'),
  ('SELECT sum(qty) FROM items_nn WHERE city = ''Lima'''),
  ('SELECT city, count(*) FROM items GROUP BY city'),
  ('SELECT qty, sum(w) FROM items WHERE w IS NOT NULL GROUP BY qty'),
  ('SELECT note, count(*) FROM items GROUP BY note'),
  ('SELECT count(*) FROM items GROUP BY note'),
  ('SELECT city, active, sum(qty) FROM items_nn GROUP BY city, active'),
  ('SELECT count(*) * 2 AS twice, city FROM items GROUP BY city'),
  ('SELECT count(qty) FROM items_nn WHERE active'),
  ('SELECT sum(_id) + 1 FROM items_nn WHERE active'),
  -- kept local on FerretDB 1.x, which feeds a group's documents to the
  -- first of several aggregates only (MongoDB runs this as one pipeline)
  ('SELECT city, count(*), sum(qty) FROM items_nn GROUP BY city'),
  -- kept local
  ('SELECT sum(w) FROM items'),
  ('SELECT sum(price) FROM items_nn'),
  ('SELECT avg(qty) FROM items_nn'),
  ('SELECT count(DISTINCT city) FROM items'),
  ('SELECT city, count(*) FROM items GROUP BY city HAVING count(*) > 142'),
  ('SELECT city, note, count(*) FROM items GROUP BY city, note'),
  ('SELECT lower(city), count(*) FROM items GROUP BY lower(city)'),
  ('SELECT count(*) FROM items WHERE qty + 1 = 8');
SELECT q, plan_of(q), same_result(q, false) FROM grouped;
SELECT city, sum(qty) FROM items_nn GROUP BY city ORDER BY city;
SELECT sum(qty) FROM items_nn WHERE qty > 1000;
SELECT count(*) FROM items WHERE qty > 1000;

-- a sum MongoDB cannot hold in 64 bits comes back a double: an error, not a
-- rounded number; PostgreSQL's own sum is exact
\! $MONGO_TOOL insert polyglot_pushdown big '[{"_id": 1, "n": {"$numberLong": "4611686018427387904"}}, {"_id": 2, "n": {"$numberLong": "4611686018427387904"}}, {"_id": 3, "n": {"$numberLong": "4611686018427387904"}}]'
CREATE FOREIGN TABLE big (_id int, n bigint NOT NULL) SERVER pd_docs;
SELECT sum(n) FROM big;
SET polyglot.mongo_pushdown = off;
SELECT sum(n) FROM big;
RESET polyglot.mongo_pushdown;

-- a sum of an integer column over values that are not all integers
\! $MONGO_TOOL insert polyglot_pushdown frac '[{"_id": 1, "n": 2.5}, {"_id": 2, "n": 0.25}]'
CREATE FOREIGN TABLE frac (_id int, n bigint NOT NULL) SERVER pd_docs;
SELECT sum(n) FROM frac;
SET polyglot.mongo_pushdown = off;
SELECT sum(n) FROM frac;
RESET polyglot.mongo_pushdown;

-- pushdown off for one table, or one server
ALTER FOREIGN TABLE items_nn OPTIONS (ADD pushdown 'false');
SELECT plan_of('SELECT count(*) FROM items_nn WHERE qty = 3');
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM items_nn WHERE qty = 3 ORDER BY _id LIMIT 2;
ALTER FOREIGN TABLE items_nn OPTIONS (DROP pushdown);
ALTER SERVER pd_docs OPTIONS (ADD pushdown 'off');
SELECT plan_of('SELECT count(*) FROM items_nn WHERE qty = 3');
ALTER SERVER pd_docs OPTIONS (DROP pushdown);
SELECT plan_of('SELECT count(*) FROM items_nn WHERE qty = 3');
ALTER FOREIGN TABLE items OPTIONS (ADD pushdown 'sometimes');
ALTER FOREIGN TABLE items OPTIONS (ADD batch_size '0');
ALTER SERVER pd_docs OPTIONS (ADD use_remote_estimate 'maybe');

-- row estimates: the server's document count, else a thousand
CREATE FUNCTION estimated_rows(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  EXECUTE 'EXPLAIN ' || q INTO line;
  RETURN (regexp_match(line, 'rows=(\d+)'))[1]::int;
END $$;
SELECT estimated_rows('SELECT * FROM items');
SELECT estimated_rows('SELECT * FROM items WHERE _id = 42');
ALTER FOREIGN TABLE items OPTIONS (ADD use_remote_estimate 'false');
SELECT estimated_rows('SELECT * FROM items');
ALTER FOREIGN TABLE items OPTIONS (DROP use_remote_estimate);

-- batched INSERT: 250 rows in insert commands of batch_size documents
CREATE FOREIGN TABLE written (_id int, name text, qty int)
  SERVER pd_docs OPTIONS (batch_size '100');
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO written SELECT g, 'w' || g, g FROM generate_series(1, 250) g;
INSERT INTO written SELECT g, 'w' || g, g FROM generate_series(1, 250) g;
SELECT count(*), sum(qty), min(name COLLATE "C"), max(_id) FROM written;
-- RETURNING goes row by row, and still works
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO written VALUES (251, 'w251', 251) RETURNING _id;
INSERT INTO written VALUES (251, 'w251', 251), (252, 'w252', 252) RETURNING _id, name;
-- a duplicate _id in the middle of a batch fails the statement with
-- MongoDB's message; the documents before it in the batch were written
-- (MongoDB is not part of the transaction)
INSERT INTO written SELECT g, 'again', g FROM generate_series(253, 260) g
  UNION ALL SELECT 1, 'dup', 1;
SELECT count(*) FROM written WHERE name = 'again';
-- COPY into the table, and rows routed to it as a partition
COPY written (_id, name, qty) FROM STDIN;
301	copied	1
302	copied	2
\.
CREATE TABLE parts (_id int, name text, qty int) PARTITION BY RANGE (_id);
CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (400);
ALTER TABLE parts ATTACH PARTITION written FOR VALUES FROM (400) TO (1000);
INSERT INTO parts VALUES (5, 'local', 5), (405, 'routed', 405), (406, 'routed', 406);
SELECT name, count(*) FROM written WHERE name IN ('copied', 'routed') GROUP BY name ORDER BY name;
SELECT * FROM parts_low;

DROP TABLE parts, ordered, grouped, picks;
DROP SERVER pd_docs CASCADE;
DROP FUNCTION same_result(text, bool), plan_of(text), estimated_rows(text);
\! $MONGO_TOOL drop polyglot_pushdown
