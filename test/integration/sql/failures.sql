--
-- failures: unreachable servers, misbehaving servers and bad credentials
-- give clear errors within their timeouts, never a hang; ALTER SERVER and
-- ALTER USER MAPPING take effect on the next call in the same session.
--
\getenv redis_port REDIS_PORT
\getenv mongo_port MONGO_PORT
\getenv mongo_uri MONGO_URI
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL

-- messages name ports; the expected output shows them by name
SELECT set_config('test.redis_port', :'redis_port', false) IS NOT NULL AS set,
       set_config('test.mongo_port', :'mongo_port', false) IS NOT NULL AS set;

-- Runs ping and returns its error as "SQLSTATE: message / detail", with
-- the few varying bits of store messages (timings) normalised, and whether
-- the call came back within max_seconds.
CREATE FUNCTION ping_error(server name, max_seconds float8 DEFAULT 10)
RETURNS TABLE (error text, in_time boolean)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  msg text; det text; st text;
BEGIN
  PERFORM polyglot.ping(server);
  error := 'no error';
  in_time := extract(epoch FROM clock_timestamp() - t0) < max_seconds;
  RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                          st = RETURNED_SQLSTATE;
  det := regexp_replace(coalesce(det, ''), 'after \d+ ms', 'after N ms', 'g');
  det := replace(det, ':' || current_setting('test.redis_port'), ':<redis_port>');
  det := replace(det, ':' || current_setting('test.mongo_port'), ':<mongo_port>');
  error := st || ': ' || msg || ' / ' || det;
  in_time := extract(epoch FROM clock_timestamp() - t0) < max_seconds;
  RETURN NEXT;
END $$;

--
-- nothing listens on the port: connection refused, at once
--
CREATE SERVER cache_down FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '1', connect_timeout '2s');
CREATE SERVER docs_down FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri 'mongodb://127.0.0.1:1', connect_timeout '2s');
CREATE SERVER search_down FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url 'http://127.0.0.1:1', connect_timeout '2s');
SELECT * FROM ping_error('cache_down', 2);
SELECT * FROM ping_error('docs_down', 2);
SELECT * FROM ping_error('search_down', 2);

--
-- a server that accepts the connection but never answers in the store's
-- protocol: the I/O or connect timeout ends the wait
--
-- Redis client against FerretDB: FerretDB waits for the rest of a message
CREATE SERVER cache_mute FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port :'mongo_port', io_timeout '500ms');
SELECT * FROM ping_error('cache_mute', 5);
-- MongoDB client against Redis: Redis waits for the end of an inline command
\set redis_uri 'mongodb://127.0.0.1:' :redis_port
CREATE SERVER docs_mute FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'redis_uri', connect_timeout '500ms');
SELECT * FROM ping_error('docs_mute', 5);

--
-- bad credentials
--
-- Redis: the test harness created ACL user polyglot_test with password
-- polyglot-test-password; a wrong password is refused
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port :'redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER cache
  OPTIONS (user 'polyglot_test', password 'wrong');
SELECT * FROM ping_error('cache');
-- the right password, on the next call of the same session
ALTER USER MAPPING FOR PUBLIC SERVER cache
  OPTIONS (SET password 'polyglot-test-password');
SELECT polyglot.ping('cache')->>'ok' AS ok;
-- an unknown user
ALTER USER MAPPING FOR PUBLIC SERVER cache OPTIONS (SET user 'nobody');
SELECT * FROM ping_error('cache');
-- the user's own mapping wins over PUBLIC
CREATE USER MAPPING FOR CURRENT_USER SERVER cache
  OPTIONS (user 'polyglot_test', password 'polyglot-test-password');
SELECT polyglot.ping('cache')->>'ok' AS ok;
DROP USER MAPPING FOR CURRENT_USER SERVER cache;
SELECT * FROM ping_error('cache');
DROP USER MAPPING FOR PUBLIC SERVER cache;
SELECT polyglot.ping('cache')->>'ok' AS ok;

-- MongoDB: FerretDB of the stack runs without authentication and refuses
-- any attempt to authenticate
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri');
SELECT polyglot.ping('docs')->>'ok' AS ok;
CREATE USER MAPPING FOR PUBLIC SERVER docs OPTIONS (user 'app', password 'wrong');
SELECT * FROM ping_error('docs');
DROP USER MAPPING FOR PUBLIC SERVER docs;
SELECT polyglot.ping('docs')->>'ok' AS ok;

--
-- ALTER SERVER takes effect on the next call in the same session
--
SELECT polyglot.ping('cache')->>'ok' AS ok;
ALTER SERVER cache OPTIONS (SET port '1');
SELECT * FROM ping_error('cache');
ALTER SERVER cache OPTIONS (SET port :'redis_port');
SELECT polyglot.ping('cache')->>'ok' AS ok;

ALTER SERVER docs OPTIONS (SET uri 'mongodb://127.0.0.1:1');
SELECT * FROM ping_error('docs');
ALTER SERVER docs OPTIONS (SET uri :'mongo_uri');
SELECT polyglot.ping('docs')->>'ok' AS ok;

CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
SELECT polyglot.ping('search')->>'flavor' AS flavor;
ALTER SERVER search OPTIONS (SET url :'elasticsearch_url');
SELECT polyglot.ping('search')->>'flavor' AS flavor;
ALTER SERVER search OPTIONS (SET url 'http://127.0.0.1:1');
SELECT * FROM ping_error('search');
ALTER SERVER search OPTIONS (SET url :'opensearch_url');
SELECT polyglot.ping('search')->>'flavor' AS flavor;

-- an error inside a transaction, then the connection is used again
BEGIN;
SELECT polyglot.ping('cache')->>'ok' AS ok;
SELECT polyglot.ping('cache_down');
ROLLBACK;
SELECT polyglot.ping('cache')->>'ok' AS ok;

-- a dropped server is gone for ping too
DROP SERVER search;
SELECT polyglot.ping('search');

DROP SERVER cache, docs, cache_down, docs_down, search_down, cache_mute, docs_mute;
DROP FUNCTION ping_error;
