--
-- sync_http: routes to a polyglot_http server, a webhook.  The stack's
-- receiver (test/tools/http_sink.py) records every batch it takes and
-- checks its signature; its control endpoint makes it fail (500), refuse
-- the endpoint (404), time out, refuse one key (422), or take a batch and
-- answer 500 (the same events come again: duplicates, with the same ids).
-- What comes through: every change, signed, in order; a failing
-- or slow receiver is retried with backoff and nothing is lost; a key it
-- refuses is dead-lettered while the others flow.  The options are
-- checked, foreign tables refused.
--
\i test/integration/sql/setup.psql
\getenv sink_url HTTP_SINK_URL
\getenv sink_secret HTTP_SINK_SECRET
\set url_orders :sink_url '/orders'
\set url_flaky :sink_url '/flaky'
\set url_dups :sink_url '/dups'
\set url_slow :sink_url '/slow'
\set url_gone :sink_url '/gone'
\set url_picky :sink_url '/picky'
ALTER SYSTEM SET polyglot.max_attempts = 2;
SELECT pg_reload_conf();

-- What the receiver recorded for a path (GET /_events or /_requests), as
-- jsonb.  curl runs without LD_PRELOAD: under make test-asan the server
-- preloads the sanitizer's runtime, which the programs COPY runs inherit,
-- and curl hangs with it.
CREATE FUNCTION sink(what text, path text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
  TRUNCATE sink_out;
  EXECUTE format('COPY sink_out FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')',
                 format('env -u LD_PRELOAD curl -sS %s/_%s?path=%s', current_setting('sink.url'), what, path));
  SELECT doc::jsonb INTO r FROM sink_out;
  RETURN r;
END $$;
-- Sets how the receiver answers a path (POST /_control), or forgets it (/_reset)
CREATE FUNCTION sink_control(what text, settings jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('COPY sink_out FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')',
                 format('env -u LD_PRELOAD curl -sS -X POST -d %s %s/_%s', quote_literal(settings::text),
                        current_setting('sink.url'), what));
END $$;
SELECT set_config('sink.url', :'sink_url', false) IS NOT NULL AS sink_url;
CREATE TEMP TABLE IF NOT EXISTS sink_out (doc text);
SELECT sink_control('reset', jsonb_build_object('path', p))
FROM unnest(ARRAY['/orders', '/flaky', '/slow', '/picky', '/gone', '/dups']) p;

-- options
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http;
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'ftp://127.0.0.1/x');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://me:pw@127.0.0.1/x');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'ftp://me:pw@127.0.0.1/x');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '["X-Team"]');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '{"Authorization": "Bearer x"}');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '{"X-Team": "a\r\nX-Evil: 1"}');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '{"Bad Name": "x"}');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '{"X-Polyglot-Route": "7"}');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', headers '{"Cookie": "session=1"}');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', secret 'in the open');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', tls_verify 'false');
CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_http OPTIONS (url 'http://127.0.0.1/x', index 'i');
CREATE SERVER hook FOREIGN DATA WRAPPER polyglot_http
  OPTIONS (url :'sink_url', headers '{"X-Team": "search"}', io_timeout '2s');
ALTER SERVER hook OPTIONS (SET url :'sink_url');
ALTER SERVER hook OPTIONS (DROP url);
ALTER SERVER hook OPTIONS (SET url 'nonsense');
CREATE USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (secret 'wrong', token 't0k', bogus 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (token 't0k', user 'u', password 'p');
CREATE USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (token E't0k\r\nX-Evil: 1');
CREATE USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (secret :'sink_secret', token 't0k');
CREATE FOREIGN TABLE hook_table (id int) SERVER hook;
SELECT polyglot.ping('hook') - 'latency_ms' AS ping;

-- a route: the existing rows, then changes, each an event of the documented schema
CREATE TABLE hk_orders (id int PRIMARY KEY, customer text, total numeric(10,2));
INSERT INTO hk_orders VALUES (1, 'ann', 10.50), (2, 'bob', 20);
ALTER SERVER hook OPTIONS (SET url :'url_orders');
SELECT try($$SELECT polyglot.sync('hk_orders', 'hook', '{"mode": "json"}')$$);
SELECT polyglot.sync('hk_orders', 'hook') AS route \gset
SELECT wait_synced(:route);
UPDATE hk_orders SET total = 11 WHERE id = 1;
INSERT INTO hk_orders VALUES (3, 'cy', NULL);
DELETE FROM hk_orders WHERE id = 2;
SELECT wait_synced(:route);
SELECT e->>'op' AS op, e->>'table' AS tbl, e->'key' AS key, e->'row' AS row
FROM jsonb_array_elements(sink('events', '/orders')) WITH ORDINALITY AS x(e, n)
ORDER BY e->'key'->>'id', n;
SELECT bool_and(e->>'id' = format('%s-%s-', :route, e->>'position') || right(e->>'id', 16)) AS ids_of_route_and_position,
       count(DISTINCT e->>'id') = count(*) AS ids_distinct,
       bool_and((e->>'ts')::timestamptz BETWEEN now() - interval '10 minutes' AND clock_timestamp()) AS ts_recent,
       bool_and(NOT (e->>'dup')::boolean) AS no_dups
FROM jsonb_array_elements(sink('events', '/orders')) e;
-- every request signed with the secret, with the server's headers and the token
SELECT DISTINCT r->>'status' AS status, r->>'signature_ok' AS signed, r->>'team' AS team,
       r->>'authorization' AS authorization, r->>'user_agent' AS agent
FROM jsonb_array_elements(sink('requests', '/orders')) r;

-- a receiver that fails three times: the route backs off, then delivers
-- the same events (same ids) and nothing is lost
SELECT sink_control('control', '{"path": "/flaky", "fail": 3}');
ALTER SERVER hook OPTIONS (SET url :'url_flaky');
SELECT retries AS retries_before FROM polyglot.status WHERE route = :route \gset
UPDATE hk_orders SET customer = 'ann 2' WHERE id = 1;
-- (a route failure counts a retry and sets the backoff; the state reads
-- 'backing off' only until the fourth request succeeds, too short to poll)
SELECT wait_for($$(SELECT retries > $$ || :retries_before || $$ AND last_error LIKE '%HTTP 500%' FROM polyglot.status WHERE route = $$ || :route || ')');
SELECT wait_synced(:route);
SELECT r->>'status' AS status, r->'ids' = (sink('requests', '/flaky')->-1->'ids') AS same_ids
FROM jsonb_array_elements(sink('requests', '/flaky')) r;
SELECT e->'row'->>'customer' AS customer FROM jsonb_array_elements(sink('events', '/flaky')) e;

-- a receiver that takes a batch and answers 500: the events come again,
-- with the same ids, and a receiver deduplicating on id keeps one of each
SELECT sink_control('control', '{"path": "/dups", "ack_then_fail": 1}');
ALTER SERVER hook OPTIONS (SET url :'url_dups');
UPDATE hk_orders SET customer = 'cy 2' WHERE id = 3;
SELECT wait_synced(:route);
SELECT count(*) AS received, count(DISTINCT e->>'id') AS distinct_ids,
       count(*) FILTER (WHERE (e->>'dup')::boolean) AS duplicates
FROM jsonb_array_elements(sink('events', '/dups')) e;

-- a receiver slower than io_timeout (2s): the request times out, goes again
SELECT sink_control('control', '{"path": "/slow", "delay": 4, "delay_count": 1}');
ALTER SERVER hook OPTIONS (SET url :'url_slow');
UPDATE hk_orders SET total = 12 WHERE id = 1;
SELECT wait_for($$(SELECT last_error LIKE '%timed out%' FROM polyglot.status WHERE route = $$ || :route || ')');
SELECT wait_synced(:route);
SELECT e->'row'->>'total' AS total FROM jsonb_array_elements(sink('events', '/slow')) e
WHERE NOT (e->>'dup')::boolean;

-- a secret the receiver does not share: it refuses the signature (401),
-- and the route backs off until the user mapping has the right one
ALTER USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (SET secret 'not the secret');
UPDATE hk_orders SET total = 14 WHERE id = 3;
SELECT wait_for($$(SELECT last_error LIKE '%takes no events at its url: HTTP 401%' FROM polyglot.status WHERE route = $$ || :route || ')');
ALTER USER MAPPING FOR CURRENT_USER SERVER hook OPTIONS (SET secret :'sink_secret');
SELECT wait_synced(:route);
SELECT e->'row'->>'total' AS total FROM jsonb_array_elements(sink('events', '/slow')) e
WHERE e->'key'->>'id' = '3';

-- an endpoint that is not there (404): the route backs off, no key is
-- charged, and it delivers once the endpoint answers
SELECT sink_control('control', '{"path": "/gone", "fail": 100000, "status": 404}');
ALTER SERVER hook OPTIONS (SET url :'url_gone');
UPDATE hk_orders SET total = 13 WHERE id = 1;
SELECT wait_for($$(SELECT last_error LIKE '%takes no events at its url: HTTP 404%' FROM polyglot.status WHERE route = $$ || :route || ')');
SELECT failed, dead_letters FROM polyglot.status WHERE route = :route;
SELECT sink_control('control', '{"path": "/gone", "fail": 0}');
SELECT wait_synced(:route);
SELECT e->'row'->>'total' AS total FROM jsonb_array_elements(sink('events', '/gone')) e;

-- a receiver that refuses one key (422): that key is retried, then
-- dead-lettered; the others of its batch go
SELECT sink_control('control', '{"path": "/picky", "reject_keys": ["13"]}');
ALTER SERVER hook OPTIONS (SET url :'url_picky');
INSERT INTO hk_orders VALUES (12, 'x', 1), (13, 'poison', 1), (14, 'z', 1);
SELECT wait_for($$(SELECT dead_letters = 1 AND pending = 0 FROM polyglot.status WHERE route = $$ || :route || ')');
SELECT array_agg(e->'key'->>'id' ORDER BY e->'key'->>'id') AS taken FROM jsonb_array_elements(sink('events', '/picky')) e;
SELECT key, attempts, error LIKE '%HTTP 422%' AS refused FROM polyglot.dead_letters WHERE route_id = :route;

-- verify has nothing to compare; the route goes
SELECT try(format('SELECT polyglot.verify(%s)', :route));
SELECT polyglot.unsync('hk_orders', 'hook');

ALTER SYSTEM RESET polyglot.max_attempts;
SELECT pg_reload_conf();
DROP TABLE hk_orders;
DROP FUNCTION sink(text, text), sink_control(text, jsonb);
DROP USER MAPPING FOR CURRENT_USER SERVER hook;
DROP SERVER hook;
