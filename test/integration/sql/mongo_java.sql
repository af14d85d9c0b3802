--
-- mongo_java: the MongoDB paths FerretDB 1.x cannot take, against the
-- stack's second MongoDB-compatible server, mongo-java-server (it presents
-- itself as MongoDB 5.0 and stores decimal128): numeric as decimal128 both
-- ways, the sink's ordered bulk write of upserting replaces and deletes, and
-- several aggregates in one pipeline.  Collections are read back with
-- pymongo (test/tools/mongo.py) as canonical Extended JSON.
--
\getenv mongo_java_uri MONGO_JAVA_URI
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL drop polyglot_java
CREATE SERVER java FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_java_uri', database 'polyglot_java');
SELECT polyglot.ping('java') ->> 'flavor' AS flavor;

\i test/integration/sql/setup.psql
CREATE OR REPLACE FUNCTION java_synced(route int) RETURNS text LANGUAGE sql AS $$
  SELECT wait_for(format('(SELECT pending = 0 FROM polyglot.status WHERE route = %s)', route))
$$;

--
-- sync: numeric becomes decimal128 with every digit (up to 34); changes
-- arrive as one ordered bulk write of upserting replaces and deletes
--
CREATE TABLE money (id int PRIMARY KEY, amount numeric, note text);
INSERT INTO money VALUES
  (1, 1234567890123456789.012345678901234, 'thirty-four digits'),
  (2, 0.1, 'a tenth'),
  (3, -99999999999999999999999999999999.99, 'negative'),
  (4, 'NaN', 'not a number'),
  (5, NULL, 'null'),
  (6, 1e-30, 'small');
SELECT polyglot.sync('money', 'java') AS money \gset
SELECT java_synced(:money);
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL dump polyglot_java money
UPDATE money SET amount = amount + 1, note = 'updated' WHERE id = 2;
DELETE FROM money WHERE id = 3;
UPDATE money SET id = 30 WHERE id = 6;
INSERT INTO money VALUES (7, 7, 'inserted'), (8, 8, 'inserted then deleted');
DELETE FROM money WHERE id = 8;
SELECT java_synced(:money);
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL dump polyglot_java money
-- 35 significant digits do not fit decimal128: that key fails, alone
INSERT INTO money VALUES (9, 1.0000000000000000000000000000000000001, 'too precise'),
                         (10, 10, 'fine');
-- (until key 10 is delivered and key 9 waits with its error)
SELECT wait_for(format('(SELECT count(*) = 1 AND bool_and(last_error IS NOT NULL) FROM polyglot.outbox WHERE route_id = %s)', :money));
SELECT o.key, o.last_error FROM polyglot.outbox o WHERE o.route_id = :money;
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL count polyglot_java money
DELETE FROM money WHERE id = 9;
SELECT java_synced(:money);

--
-- foreign tables: decimal128 back to numeric, exactly; numeric values go
-- into filters and inserts as decimal128
--
CREATE FOREIGN TABLE money_docs (_id int, amount numeric, note text)
  SERVER java OPTIONS (collection 'money');
SELECT _id, amount, note FROM money_docs ORDER BY _id;
SELECT m.id, m.amount IS NOT DISTINCT FROM d.amount AS same
  FROM money m FULL JOIN money_docs d ON d._id = m.id ORDER BY 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM money_docs WHERE amount > 1.5;
SELECT _id FROM money_docs WHERE amount > 1.5 ORDER BY _id;
INSERT INTO money_docs VALUES (100, 3.141592653589793238462643383279503, 'pi');
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL dump polyglot_java money | grep pi
SELECT amount FROM money_docs WHERE _id = 100;

--
-- several aggregates in one $group, and a sort with a limit, compared with
-- the same query done locally
--
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL seed polyglot_java items 2000
CREATE FOREIGN TABLE java_items (_id int NOT NULL, name text COLLATE "C" NOT NULL,
                                 qty int NOT NULL, city text COLLATE "C" NOT NULL,
                                 active bool NOT NULL, note text COLLATE "C")
  SERVER java OPTIONS (collection 'items');
-- no $collStats on this server: the estimate comes from the count command
CREATE OR REPLACE FUNCTION java_rows(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  EXECUTE 'EXPLAIN ' || q INTO line;
  RETURN (regexp_match(line, 'rows=(\d+)'))[1]::int;
END $$;
SELECT java_rows('SELECT * FROM java_items');
CREATE OR REPLACE FUNCTION java_same(q text, ordered bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  local text;
  plan text := '';
  line text;
  n bigint;
  agg text := CASE WHEN ordered THEN 'string_agg(x::text, '';'')'
                   ELSE 'string_agg(x::text, '';'' ORDER BY x::text)' END;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line ~ 'Remote (Sort|Limit|Pipeline)' THEN
      plan := plan || trim(line) || ' ';
    END IF;
  END LOOP;
  EXECUTE format('SELECT count(*), coalesce(%s, '''') FROM (%s) x', agg, q) INTO n, pushed;
  PERFORM set_config('polyglot.mongo_pushdown', 'off', true);
  EXECUTE format('SELECT coalesce(%s, '''') FROM (%s) x', agg, q) INTO local;
  PERFORM set_config('polyglot.mongo_pushdown', 'on', true);
  RETURN trim(plan) || ' => ' ||
         CASE WHEN pushed = local THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
SELECT java_same('SELECT city, count(*), sum(qty) FROM java_items GROUP BY city', false);
SELECT java_same('SELECT count(*), sum(qty), sum(_id) FROM java_items WHERE active', false);
SELECT java_same('SELECT city, active, count(*), sum(qty) FROM java_items GROUP BY city, active', false);
SELECT java_same('SELECT _id, name FROM java_items WHERE qty < 10 ORDER BY name DESC LIMIT 7', true);
SELECT java_same('SELECT _id, note FROM java_items ORDER BY note NULLS FIRST, _id LIMIT 12', true);
-- a batched INSERT is one insert command per batch here too
CREATE FOREIGN TABLE java_written (_id int, name text) SERVER java OPTIONS (batch_size '50');
INSERT INTO java_written SELECT g, 'w' || g FROM generate_series(1, 120) g;
SELECT count(*), sum(_id) FROM java_written;

-- a jsonb key is matched literally: {"$ne": null} is an _id, no operator,
-- and its delete leaves the other documents alone
CREATE TABLE opkeys (k jsonb PRIMARY KEY, v text);
INSERT INTO opkeys VALUES ('1', 'one'), ('2', 'two'), ('{"$ne": null}', 'operator');
SELECT polyglot.sync('opkeys', 'java') AS opkeys \gset
SELECT java_synced(:opkeys);
UPDATE opkeys SET v = 'operator 2' WHERE k = '{"$ne": null}';
SELECT java_synced(:opkeys);
DELETE FROM opkeys WHERE k = '{"$ne": null}';
SELECT java_synced(:opkeys);
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL dump polyglot_java opkeys
SELECT delivered, dead_letters FROM polyglot.status WHERE route = :opkeys;
-- and so is a foreign table's _id, in a WHERE clause and an UPDATE or DELETE
CREATE FOREIGN TABLE java_opkeys (_id jsonb OPTIONS (field '_id'), v text) SERVER java OPTIONS (collection 'opkeys');
INSERT INTO java_opkeys VALUES ('{"$gt": 0}', 'operator');
EXPLAIN (VERBOSE, COSTS OFF) SELECT v FROM java_opkeys WHERE _id = '{"$gt": 0}';
SELECT v FROM java_opkeys WHERE _id = '{"$gt": 0}';
UPDATE java_opkeys SET v = 'updated' WHERE _id = '{"$gt": 0}';
DELETE FROM java_opkeys WHERE _id = '{"$gt": 0}';
SELECT _id, v FROM java_opkeys ORDER BY v;
SELECT polyglot.unsync('opkeys', 'java');
DROP TABLE opkeys;

-- a document nested deeper than 200 levels is an error, never cut off
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL insert polyglot_java deep "$(python3 -c 'print("[{\"_id\": 200, \"d\": " + "{\"a\": " * 200 + "1" + "}" * 200 + "}, {\"_id\": 201, \"d\": " + "{\"a\": " * 201 + "1" + "}" * 201 + "}]")')"
CREATE FOREIGN TABLE java_deep (_id int, d jsonb OPTIONS (field 'd')) SERVER java OPTIONS (collection 'deep');
SELECT _id, length(d::text), d::text LIKE '%...%' AS cut FROM java_deep WHERE _id = 200;
SELECT _id, length(d::text) FROM java_deep WHERE _id = 201;
CREATE FOREIGN TABLE java_deep_doc (_id int, doc jsonb) SERVER java OPTIONS (collection 'deep');
SELECT _id, length(doc::text) FROM java_deep_doc WHERE _id = 200;
SELECT _id, length(doc::text) FROM java_deep_doc WHERE _id = 201;
DROP FOREIGN TABLE java_deep, java_deep_doc;

SELECT polyglot.unsync('money', 'java');
DROP TABLE money;
DROP SERVER java CASCADE;
\! MONGO_URI=$MONGO_JAVA_URI $MONGO_TOOL drop polyglot_java
