--
-- redis_fdw: Redis keys as rows, on the stack's Redis (database 5, emptied
-- first): every table type read and written, ttl, prefix isolation, the
-- lookups a WHERE clause pushes down (shown by EXPLAIN VERBOSE, with the
-- same rows as a scan without pushdown, on 10,000 keys), joins, binary
-- content, and a key holding another type.
--
\getenv redis_port REDIS_PORT
\! redis-cli -p $REDIS_PORT -n 5 FLUSHDB > /dev/null
CREATE SERVER rs FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port', db '5');

-- columns are found by name, per type
CREATE FOREIGN TABLE bad (key text, nope text) SERVER rs OPTIONS (type 'string');
SELECT * FROM bad;
DROP FOREIGN TABLE bad;
CREATE FOREIGN TABLE bad (value text) SERVER rs OPTIONS (type 'string');
SELECT * FROM bad;
DROP FOREIGN TABLE bad;
CREATE FOREIGN TABLE bad (key text, field text, doc jsonb) SERVER rs OPTIONS (type 'hash');
SELECT * FROM bad;
DROP FOREIGN TABLE bad;
CREATE FOREIGN TABLE bad (key text) SERVER rs OPTIONS (type 'stream');
CREATE FOREIGN TABLE bad (key text) SERVER rs OPTIONS (batch_size '0');

--
-- strings, with ttl
--
CREATE FOREIGN TABLE cache (key text, value text, ttl int)
  SERVER rs OPTIONS (type 'string', prefix 'cache:');
CREATE FOREIGN TABLE cache_json (key text, value jsonb) SERVER rs OPTIONS (prefix 'cache:');
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO cache SELECT g::text, 'v' || g, NULL FROM generate_series(1, 3) g;
INSERT INTO cache SELECT g::text, 'value ' || g, NULL FROM generate_series(1, 10000) g;
INSERT INTO cache VALUES ('ttl', 'expires', 100), ('json', '{"a": [1, "x"]}', NULL);
-- keys outside the prefix, and keys of other types under it, are not rows
\! redis-cli -p $REDIS_PORT -n 5 SET other:1 x > /dev/null; redis-cli -p $REDIS_PORT -n 5 SET cache x > /dev/null; redis-cli -p $REDIS_PORT -n 5 HSET cache:h f v > /dev/null
-- (a ttl is in whole seconds, rounded up: 100 within the first second only,
-- so it is shown as a range that a slow machine still meets)
SELECT count(*), count(DISTINCT key), count(ttl) AS with_ttl,
       max(ttl) BETWEEN 90 AND 100 AS ttl_in_range FROM cache;
SELECT key, value, ttl BETWEEN 90 AND 100 AS ttl_in_range FROM cache
 WHERE key IN ('ttl', '1', 'json') ORDER BY key;
SELECT value->'a' FROM cache_json WHERE key = 'json';
SELECT value FROM cache_json WHERE key = '1';
\! redis-cli -p $REDIS_PORT -n 5 PTTL cache:ttl | awk '{ print ($1 > 90000 && $1 <= 100000) ? "pttl in range" : "pttl " $1 }'
UPDATE cache SET value = 'changed' WHERE key = 'ttl'
 RETURNING key, value, ttl BETWEEN 90 AND 100 AS ttl_in_range;
UPDATE cache SET ttl = NULL WHERE key = 'ttl' RETURNING key, value, ttl;
UPDATE cache SET ttl = 5000 WHERE key = '2';
UPDATE cache SET key = 'renamed' WHERE key = '3';
SELECT key, value, ttl BETWEEN 4900 AND 5000 AS ttl_about_5000 FROM cache
 WHERE key IN ('ttl', '2', '3', 'renamed') ORDER BY key;
DELETE FROM cache WHERE key IN ('renamed', 'json') RETURNING key;
INSERT INTO cache VALUES ('null', NULL);
INSERT INTO cache VALUES ('neg', 'x', 0);
INSERT INTO cache VALUES ('x', 'y') ON CONFLICT DO NOTHING;

-- the lookups pushed down, and the same rows without pushdown
CREATE FUNCTION same_result(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  local text;
  n bigint;
BEGIN
  PERFORM set_config('polyglot.redis_pushdown', 'on', true);
  EXECUTE format('SELECT count(*), coalesce(string_agg(x::text, '';'' ORDER BY x::text), '''') FROM (%s) x', q)
    INTO n, pushed;
  PERFORM set_config('polyglot.redis_pushdown', 'off', true);
  EXECUTE format('SELECT coalesce(string_agg(x::text, '';'' ORDER BY x::text), '''') FROM (%s) x', q)
    INTO local;
  PERFORM set_config('polyglot.redis_pushdown', 'on', true);
  RETURN CASE WHEN pushed = local THEN n || ' rows, same' ELSE 'DIFFERENT' END;
END $$;
CREATE FUNCTION commands_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
  filtered boolean := false;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line ~ 'Join Type' THEN
      result := result || regexp_replace(line, '^.*Join Type: ', '') || ' key join: ';
    ELSIF line ~ 'Redis Commands' THEN
      result := result || regexp_replace(line, '^.*Redis Commands: ', '');
    ELSIF line ~ '^ *(Join )?Filter:' THEN
      filtered := true;
    END IF;
  END LOOP;
  RETURN result || CASE WHEN filtered THEN ' + local filter' ELSE '' END;
END $$;
\i test/integration/sql/explain.psql
CREATE TABLE forms (q text);
INSERT INTO forms VALUES
  ('SELECT key, value FROM cache WHERE key = ''42'''),
  ('SELECT key, value FROM cache WHERE ''42'' = key'),
  ('SELECT key, value FROM cache WHERE key = ''missing'''),
  ('SELECT key, value FROM cache WHERE key IN (''1'', ''2'', ''3'', ''1'', NULL, ''nope'')'),
  ('SELECT key, value FROM cache WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 2500) g))'),
  -- batches of missing keys first: batches that make no row
  ('SELECT key, value FROM cache WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(20001, 22500) g UNION ALL SELECT g::text FROM generate_series(1, 1500) g))'),
  ('SELECT key, value FROM cache WHERE key LIKE ''99%'''),
  ('SELECT key, value FROM cache WHERE key LIKE ''9_9%'''),
  ('SELECT key, value FROM cache WHERE key = ''5'' AND value LIKE ''value%'''),
  ('SELECT key, value FROM cache WHERE value = ''value 77'''),
  ('SELECT key FROM cache WHERE key > ''9995''');
SELECT q, commands_of(q), same_result(q) FROM forms;

-- round trips: one per batch of keys; a scan's first SCAN call, then per page
-- one pipeline of its reads and the next SCAN call
SELECT explain_analyze('SELECT key FROM cache WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 2500) g))');
ALTER FOREIGN TABLE cache OPTIONS (ADD batch_size '5000');
SELECT explain_analyze('SELECT key FROM cache WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 2500) g))');
ALTER FOREIGN TABLE cache OPTIONS (DROP batch_size);

-- parameters: a prepared statement, and the inner side of a nested loop
PREPARE one(text) AS SELECT value FROM cache WHERE key = $1;
EXECUTE one('7');
EXECUTE one(NULL);
DEALLOCATE one;
CREATE TABLE wanted (id int PRIMARY KEY);
INSERT INTO wanted SELECT g * 1000 FROM generate_series(1, 5) g;
ANALYZE wanted;
-- (a subquery with a LIMIT stays a nested loop: the key join below does not apply)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT w.id, x.value FROM wanted w, LATERAL (SELECT value FROM cache c WHERE c.key = w.id::text LIMIT 1) x;
SELECT w.id, x.value FROM wanted w, LATERAL (SELECT value FROM cache c WHERE c.key = w.id::text LIMIT 1) x ORDER BY w.id;
SELECT w.id, x.value FROM wanted w
  LEFT JOIN LATERAL (SELECT value FROM cache c WHERE c.key = (w.id + 1)::text || 'x' LIMIT 1) x ON true ORDER BY w.id;

--
-- hashes: a row per field, or the whole hash as jsonb
--
CREATE FOREIGN TABLE fields (key text, field text, value text, ttl int)
  SERVER rs OPTIONS (type 'hash', prefix 'user:');
CREATE FOREIGN TABLE users (key text, doc jsonb, ttl numeric) SERVER rs OPTIONS (type 'hash', prefix 'user:');
INSERT INTO fields VALUES ('1', 'name', 'Ada', NULL), ('1', 'lang', 'en', NULL), ('2', 'name', 'Bo', 6000);
INSERT INTO users VALUES ('3', '{"name": "Cy", "age": 41, "tags": ["a"]}', 3000.5);
SELECT key, field, value, ttl IS NOT NULL AS expires FROM fields ORDER BY key, field;
SELECT key, doc, ttl > 2900 AND ttl <= 6000 AS ttl_in_range, ttl::text ~ '\.' AS fractional FROM users ORDER BY key;
UPDATE fields SET value = 'Ada L.' WHERE key = '1' AND field = 'name' RETURNING *;
UPDATE fields SET field = 'language' WHERE key = '1' AND field = 'lang';
UPDATE users SET doc = '{"name": "Bo", "age": 7}' WHERE key = '2';
DELETE FROM fields WHERE key = '3' AND field = 'tags';
SELECT key, doc FROM users ORDER BY key;
INSERT INTO users VALUES ('4', '[1, 2]');
DELETE FROM users WHERE key = '4' RETURNING key;
SELECT key, doc FROM users WHERE key IN ('1', '3') ORDER BY key;

--
-- lists, sets, sorted sets
--
CREATE FOREIGN TABLE queue (key text, index int, value text) SERVER rs OPTIONS (type 'list', prefix 'q:');
INSERT INTO queue (key, value) VALUES ('jobs', 'first') RETURNING *;
INSERT INTO queue (key, value) SELECT 'jobs', 'job ' || g FROM generate_series(1, 5) g;
INSERT INTO queue VALUES ('jobs', 3, 'at an index');
DELETE FROM queue WHERE key = 'jobs' AND value IN ('job 2', 'job 4');
UPDATE queue SET value = upper(value) WHERE key = 'jobs' AND index = 0;
SELECT * FROM queue ORDER BY key, index;
UPDATE queue SET index = 9 WHERE index = 1;
CREATE FOREIGN TABLE tags (key text, member text, ttl int) SERVER rs OPTIONS (type 'set', prefix 'tags:');
INSERT INTO tags VALUES ('p1', 'red', NULL), ('p1', 'blue', NULL), ('p2', 'red', 20);
UPDATE tags SET member = 'green' WHERE key = 'p1' AND member = 'blue';
DELETE FROM tags WHERE key = 'p2' AND member = 'red';
SELECT key, member, ttl FROM tags ORDER BY key, member;
CREATE FOREIGN TABLE board (key text, member text, score float8) SERVER rs OPTIONS (type 'zset', prefix 'board:');
INSERT INTO board VALUES ('game', 'ann', 10), ('game', 'bob', 2.5), ('game', 'cid', 7);
UPDATE board SET score = score + 10 WHERE member = 'bob';
UPDATE board SET member = 'ann2' WHERE member = 'ann';
DELETE FROM board WHERE member = 'cid';
SELECT key, member, score FROM board ORDER BY score DESC;
INSERT INTO board VALUES ('game', 'nobody', NULL);
-- an error reply fails the statement
UPDATE board SET score = 'NaN' WHERE member = 'bob';

--
-- writes that must not lose or repeat rows
--
-- a statement that writes SCANs every key before it reads one
CREATE FOREIGN TABLE grow (key text, value text) SERVER rs OPTIONS (prefix 'grow:', batch_size '100');
INSERT INTO grow SELECT g::text, 'v' FROM generate_series(1, 5000) g;
UPDATE grow SET key = key || 'x';
INSERT INTO grow SELECT key || 'y', value FROM grow;
SELECT count(*), count(*) FILTER (WHERE key LIKE '%xy') AS copies FROM grow;
-- UPDATE and DELETE over a scan of the same table (one connection)
UPDATE grow SET value = 'w' WHERE key LIKE '1%';
DELETE FROM grow WHERE key LIKE '%xy';
SELECT count(*), count(*) FILTER (WHERE value = 'w') AS updated FROM grow;
-- moving a row onto another is a unique violation, and nothing is lost
CREATE FOREIGN TABLE pair (key text, value text) SERVER rs OPTIONS (prefix 'pair:');
INSERT INTO pair VALUES ('a', 'va'), ('b', 'vb');
UPDATE pair SET key = 'b' WHERE key = 'a';
SELECT * FROM pair ORDER BY key;
UPDATE fields SET field = 'name' WHERE key = '1' AND field = 'language';
UPDATE tags SET member = 'red' WHERE key = 'p1' AND member = 'green';
UPDATE board SET member = 'bob' WHERE member = 'ann2';
SELECT key, member, score FROM board ORDER BY score DESC;
-- list elements deleted by a statement that fails stay
INSERT INTO queue (key, value) VALUES ('q2', 'a'), ('q2', 'b'), ('q2', 'c');
DELETE FROM queue WHERE key = 'q2' AND 1 / (index - 1) IS NOT NULL;
SELECT index, value FROM queue WHERE key = 'q2' ORDER BY index;
DELETE FROM queue WHERE key = 'q2' AND index <> 1 RETURNING *;
SELECT index, value FROM queue WHERE key = 'q2' ORDER BY index;
-- a list index of another integer type, and RETURNING with a ttl
CREATE FOREIGN TABLE queue8 (key text, index bigint, value text, ttl int) SERVER rs OPTIONS (type 'list', prefix 'q:');
INSERT INTO queue8 (key, value, ttl) VALUES ('q3', 'x', 60) RETURNING key, index, value, ttl;
CREATE FOREIGN TABLE bad_index (key text, index numeric, value text) SERVER rs OPTIONS (type 'list', prefix 'q:');
SELECT * FROM bad_index;
CREATE FOREIGN TABLE bad_ttl (key text, value text, ttl text) SERVER rs OPTIONS (prefix 'cache:');
SELECT * FROM bad_ttl;
-- the whole-hash form keeps a key's expiry it does not assign
INSERT INTO users VALUES ('exp', '{"a": "1"}', 1000);
UPDATE users SET doc = '{"a": "2"}' WHERE key = 'exp';
\! redis-cli -p $REDIS_PORT -n 5 PTTL user:exp | awk '{ print ($1 > 990000) ? "expiry kept" : "pttl " $1 }'
-- scores as the doubles they are
INSERT INTO board VALUES ('tenth', 'x', 0.1);
CREATE FOREIGN TABLE board_numeric (key text, member text, score numeric) SERVER rs OPTIONS (type 'zset', prefix 'board:');
SELECT score FROM board_numeric WHERE key = 'tenth';
\! redis-cli -p $REDIS_PORT -n 5 ZSCORE board:tenth x
--
-- binary-unsafe keys and values round-trip exactly
--
CREATE FOREIGN TABLE raw (key text, value bytea) SERVER rs OPTIONS (prefix 'raw:');
INSERT INTO cache VALUES
  (E'with space\nand newline\ttab', E'value \u0001 é 😀 "quoted" \\ end', NULL),
  (repeat('k', 5000), repeat('v', 1000000), NULL),
  ('😀 key', '', NULL);
SELECT length(key), length(value), value = E'value \u0001 é 😀 "quoted" \\ end' AS same
FROM cache WHERE key IN (E'with space\nand newline\ttab', repeat('k', 5000), '😀 key') ORDER BY 1;
SELECT count(*) FROM cache WHERE key LIKE 'with space%' OR key LIKE '😀%';
-- glob characters in a prefix or pattern are matched literally
CREATE FOREIGN TABLE globby (key text, value text) SERVER rs OPTIONS (prefix 'g*[?]\:');
INSERT INTO globby VALUES ('a*b', '1'), ('a?b', '2'), ('axb', '3');
\! redis-cli -p $REDIS_PORT -n 5 SET 'gXX\:axb' other > /dev/null
SELECT key, value FROM globby ORDER BY key;
SELECT key, value FROM globby WHERE key LIKE 'a*%';
INSERT INTO raw VALUES ('zero', '\x00ff00'), ('text', convert_to('plain', 'UTF8'));
SELECT key, value FROM raw ORDER BY key;
CREATE FOREIGN TABLE raw_text (key text, value text) SERVER rs OPTIONS (prefix 'raw:');
SELECT key, value FROM raw_text WHERE key = 'zero';
-- bytes that are not text: an error pointing to bytea
\! printf 'bad \351 byte' | redis-cli -p $REDIS_PORT -n 5 -x SET raw:latin1 > /dev/null
SELECT value FROM raw_text WHERE key = 'latin1';
SELECT value FROM raw WHERE key = 'latin1';
-- every type round-trips arbitrary bytes through bytea columns: zero bytes, 1 MB values
CREATE TABLE blobs (n int, b bytea);
INSERT INTO blobs VALUES (1, '\x6162006364'), (2, '\x00'), (3, '\x00ff00'),
  (4, decode(repeat('00ff', 262144), 'hex') || '\x00'::bytea), (5, '');
CREATE FOREIGN TABLE raw_list (key text, index int, value bytea) SERVER rs OPTIONS (type 'list', prefix 'rawl:');
CREATE FOREIGN TABLE raw_set (key text, member bytea) SERVER rs OPTIONS (type 'set', prefix 'raws:');
CREATE FOREIGN TABLE raw_zset (key text, member bytea, score float8) SERVER rs OPTIONS (type 'zset', prefix 'rawz:');
CREATE FOREIGN TABLE raw_fields (key text, field bytea, value bytea) SERVER rs OPTIONS (type 'hash', prefix 'rawh:');
INSERT INTO raw VALUES ('blob', decode(repeat('00ff', 524288), 'hex'));
INSERT INTO raw_list (key, value) SELECT 'l', b FROM blobs ORDER BY n;
INSERT INTO raw_set SELECT 's', b FROM blobs;
INSERT INTO raw_zset SELECT 'z', b, n FROM blobs;
INSERT INTO raw_fields SELECT 'h', b, b || b FROM blobs;
\! redis-cli -p $REDIS_PORT -n 5 LINDEX rawl:l 0 | od -An -c
SELECT length(value), value = decode(repeat('00ff', 524288), 'hex') AS same FROM raw WHERE key = 'blob';
SELECT l.index, length(l.value), l.value = b.b AS same FROM raw_list l JOIN blobs b ON b.n = l.index + 1 ORDER BY 1;
SELECT (SELECT count(*) FROM raw_set) AS members,
  (SELECT count(*) FROM raw_set s JOIN blobs b ON s.member = b.b) AS same;
SELECT z.score, length(z.member), z.member = b.b AS same FROM raw_zset z JOIN blobs b ON b.n = z.score ORDER BY 1;
SELECT length(f.field), length(f.value), f.value = b.b || b.b AS same
FROM raw_fields f JOIN blobs b ON f.field = b.b ORDER BY b.n;
SELECT key, value FROM raw_list WHERE key = 'l' AND index = 0;
-- a hash whose bytes are not text is a row: only its jsonb column cannot be read
CREATE FOREIGN TABLE raw_doc (key text, doc jsonb) SERVER rs OPTIONS (type 'hash', prefix 'rawh:');
SELECT key FROM raw_doc;
SELECT key, doc FROM raw_doc;

--
-- joins on the key: a Redis key join reads the outer rows batch_size at a
-- time and looks each batch's distinct keys up in one pipelined round trip
--
CREATE TABLE outer_rows (id int, k text);
INSERT INTO outer_rows SELECT g, g::text FROM generate_series(1, 2500) g;
INSERT INTO outer_rows SELECT g, '42' FROM generate_series(2501, 2510) g;
INSERT INTO outer_rows VALUES (9998, NULL), (9999, 'missing'), (10000, E'with space\nand newline\ttab'),
  (10001, 'p1'), (10002, 'game');
ANALYZE outer_rows;
SELECT explain_analyze('SELECT o.id, c.value FROM outer_rows o JOIN cache c ON c.key = o.k');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k AND c.value <> 'value 5' WHERE o.id > 2400;
SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k AND c.value <> 'value 5'
WHERE o.id IN (1, 5, 42, 2505, 9998, 9999, 10000) ORDER BY o.id;
-- each form gives the same rows as without pushdown (a hash or nested loop join)
CREATE TABLE join_forms (q text);
INSERT INTO join_forms VALUES
  ('SELECT o.id, c.value FROM outer_rows o JOIN cache c ON c.key = o.k'),
  ('SELECT o.id, c.value, c.ttl FROM outer_rows o JOIN cache c ON o.k = c.key WHERE c.value LIKE ''value 1%'''),
  ('SELECT o.id, c.value FROM outer_rows o JOIN cache c ON c.key = (o.id * 3)::text AND c.value > o.k'),
  ('SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k AND c.value <> ''value 5'''),
  ('SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k WHERE c.value IS NULL OR c.value LIKE ''%7'''),
  ('SELECT o.id FROM outer_rows o WHERE EXISTS (SELECT FROM cache c WHERE c.key = o.k AND c.value <> ''value 9'')'),
  ('SELECT o.id FROM outer_rows o WHERE NOT EXISTS (SELECT FROM cache c WHERE c.key = o.k)'),
  ('SELECT o.id, f.field, f.value FROM outer_rows o JOIN fields f ON f.key = o.k'),
  ('SELECT o.id, u.doc FROM outer_rows o LEFT JOIN users u ON u.key = o.k'),
  ('SELECT o.id, t.member FROM outer_rows o JOIN tags t ON t.key = o.k'),
  ('SELECT o.id, b.member, b.score FROM outer_rows o LEFT JOIN board b ON b.key = o.k AND b.score > 5'),
  ('SELECT o.id FROM outer_rows o WHERE EXISTS (SELECT FROM cache c WHERE c.key = o.k AND c.value > ''value '' || (o.id % 10))'),
  ('SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k AND c.value <> ''value '' || (o.id % 10)'),
  ('SELECT o.id, p.id, c.value FROM outer_rows o JOIN outer_rows p ON p.id = o.id + 1 JOIN cache c ON c.key = p.k'),
  ('SELECT o.id, x.v FROM outer_rows o LEFT JOIN (SELECT c.key, coalesce(c.value, ''none'') AS v FROM cache c) x ON x.key = o.k'),
  -- a whole-row value of the Redis side, made by its scan for each row (not
  -- key '2', whose ttl counts down between the two runs of the query)
  ('SELECT o.id, c FROM outer_rows o JOIN cache c ON c.key = o.k WHERE o.k <> ''2'''),
  -- a condition of no column gates the Redis scan: no key join
  ('SELECT o.id, c.value FROM outer_rows o LEFT JOIN (SELECT * FROM cache WHERE now() > ''2000-01-01'') c ON c.key = o.k');
SELECT q, commands_of(q), same_result(q) FROM join_forms;
-- the outer order is kept; batches of 7 rows; NULL and missing keys
ALTER FOREIGN TABLE cache OPTIONS (ADD batch_size '7');
SELECT explain_analyze('SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k WHERE o.id % 100 = 0 OR o.id > 9000', false);
SELECT o.id, c.value FROM outer_rows o LEFT JOIN cache c ON c.key = o.k WHERE o.id % 500 = 0 OR o.id > 9000;
ALTER FOREIGN TABLE cache OPTIONS (DROP batch_size);
-- rescanned once per row of an enclosing query
SELECT w.id, (SELECT count(c.value) FROM outer_rows o JOIN cache c ON c.key = o.k WHERE o.id <= w.id / 10)
FROM wanted w ORDER BY w.id;
PREPARE joined(int) AS SELECT o.id, c.value FROM outer_rows o JOIN cache c ON c.key = o.k WHERE o.id < $1 ORDER BY o.id;
EXECUTE joined(4);
EXECUTE joined(3);
DEALLOCATE joined;

--
-- a key of another type, looked up by name, is an error naming it
--
CREATE FOREIGN TABLE wrong (key text, value text) SERVER rs OPTIONS (prefix 'user:');
SELECT * FROM wrong WHERE key = '1';
SELECT count(*) FROM wrong;
CREATE FOREIGN TABLE wrong_value (key text, value int) SERVER rs OPTIONS (prefix 'cache:');
SELECT * FROM wrong_value WHERE key = '1';
SELECT o.id, w.value FROM outer_rows o JOIN wrong w ON w.key = o.k;

--
-- one connection, several scans: a scan sends its next batch's reads
-- before the executor takes its rows (and a key join its keys' reads while
-- it reads its outer rows); whoever sends on the connection meanwhile
-- first reads those replies for it
--
-- a key join whose outer rows come from scans of the same server
SELECT same_result('SELECT a.key, b.value FROM (SELECT key FROM cache WHERE key LIKE ''9%'') a JOIN cache b ON b.key = a.key');
SELECT same_result('SELECT a.key, b.value, c.field FROM cache a JOIN cache b ON b.key = a.key LEFT JOIN fields c ON c.key = a.key');
-- a cursor's scan between other statements, reads and writes
DO $$
DECLARE
  c refcursor;
  k text;
  n int := 0;
  distinct_keys int;
  v text;
  m int;
BEGIN
  CREATE TEMP TABLE seen_keys (key text);
  OPEN c FOR SELECT key FROM cache;
  LOOP
    FETCH c INTO k;
    EXIT WHEN NOT FOUND;
    INSERT INTO seen_keys VALUES (k);
    n := n + 1;
    IF n % 1000 = 3 THEN
      SELECT value INTO v FROM cache WHERE key = '42';
      SELECT count(*) INTO m FROM cache WHERE key IN ('1', '2', 'nope');
      SELECT count(*) INTO m FROM (SELECT key FROM cache LIMIT 1500) x;
      INSERT INTO pair VALUES ('c' || n, 'v');
      IF v IS DISTINCT FROM 'value 42' OR m <> 1500 THEN
        RAISE 'wrong rows between the cursor''s batches: %, %', v, m;
      END IF;
    END IF;
  END LOOP;
  CLOSE c;
  SELECT count(DISTINCT key) INTO distinct_keys FROM seen_keys;
  RAISE NOTICE 'cursor: % rows, % distinct, % keys in cache', n, distinct_keys,
    (SELECT count(*) FROM cache);
  DROP TABLE seen_keys;
END $$;
SELECT count(*) FROM pair;
-- a scan that stops early (after its second batch, which sent the third's
-- reads): the reads in flight are read and dropped
SELECT count(*) FROM (SELECT key FROM cache LIMIT 1500) x;
SELECT value FROM cache WHERE key = '42';
-- an error with reads in flight (after 1500 rows): the connection keeps
-- them and reads and drops them before its next command
CREATE FOREIGN TABLE not_int (key text, value text) SERVER rs OPTIONS (prefix 'ni:');
INSERT INTO not_int SELECT g::text, 'x' FROM generate_series(1, 3000) g;
CREATE SEQUENCE rows_read;
SELECT count(*) FROM not_int WHERE CASE WHEN nextval('rows_read') > 1500 THEN value::int ELSE 0 END = 0;
SELECT currval('rows_read');
SELECT value FROM cache WHERE key = '42';
SELECT count(*) FROM not_int;
DROP SEQUENCE rows_read;
-- ... so the scans that share the connection go on: an outer loop's, an
-- open cursor's.  flight's keys by name, 50 a batch: the error at key 120
-- (the third batch) has the fourth batch's reads in flight.
CREATE FOREIGN TABLE flight (key text, value text) SERVER rs OPTIONS (prefix 'fl:', batch_size '50');
INSERT INTO flight SELECT g::text, 'v' || g FROM generate_series(1, 3000) g;
CREATE VIEW fails_in_flight AS
  SELECT key FROM flight WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 500) g))
   AND 1 / (CASE WHEN key = '120' THEN 0 ELSE 1 END) = 1;
DO $$
DECLARE
  r record;
  n int := 0;
  wrong int := 0;
  caught int := 0;
BEGIN
  FOR r IN SELECT key, value FROM flight LOOP
    n := n + 1;
    IF r.value IS DISTINCT FROM 'v' || r.key THEN
      wrong := wrong + 1;
    END IF;
    IF n IN (10, 200, 2000) THEN
      BEGIN
        PERFORM count(*) FROM fails_in_flight;
      EXCEPTION WHEN division_by_zero THEN
        caught := caught + 1;
      END;
    END IF;
  END LOOP;
  RAISE NOTICE 'loop: % rows, % wrong, % errors caught', n, wrong, caught;
END $$;
SELECT value FROM flight WHERE key = '7';
BEGIN;
DECLARE c CURSOR FOR SELECT key, value FROM flight
  WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 3000) g));
MOVE FORWARD 100 IN c;
SAVEPOINT s;
SELECT count(*) FROM fails_in_flight;
ROLLBACK TO s;
FETCH 3 FROM c;
SELECT count(*) FROM fails_in_flight;
ROLLBACK;
SELECT value FROM flight WHERE key = '8';
-- ALTER SERVER (or USER MAPPING) with a cursor's reads in flight: later
-- statements connect again, the cursor reads its replies where it sent
-- them (the connection it holds until then)
BEGIN;
DECLARE c CURSOR FOR SELECT key, value FROM flight
  WHERE key = ANY (ARRAY(SELECT g::text FROM generate_series(1, 3000) g));
MOVE FORWARD 100 IN c;
ALTER SERVER rs OPTIONS (ADD io_timeout '5000');
SELECT value FROM flight WHERE key = '9';
FETCH 3 FROM c;
MOVE FORWARD ALL IN c;
COMMIT;
ALTER SERVER rs OPTIONS (DROP io_timeout);

DROP SERVER rs CASCADE;
DROP FUNCTION same_result(text), commands_of(text), explain_analyze(text, bool);
DROP TABLE forms, join_forms, outer_rows, wanted, blobs;
\! redis-cli -p $REDIS_PORT -n 5 FLUSHDB > /dev/null
