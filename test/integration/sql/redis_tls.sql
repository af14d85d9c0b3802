--
-- redis_tls: Redis over TLS, on the stack Redis's TLS port (a certificate
-- of the stack's own authority for 127.0.0.1 and localhost; client
-- certificates required).  Verification is on by default, against
-- tls_ca_file or the system's authorities, and checks the name connected
-- to; client certificate and key files are for superusers to set.
--
-- pg_polyglot built with a hiredis without hiredis_ssl (Debian 12's 0.14)
-- refuses tls 'true' with an error, and this suite stops after saying so
-- (expected/redis_tls_1.out).
--
\i test/integration/sql/setup.psql
\i test/integration/sql/tls_files.psql
\getenv redis_port REDIS_PORT
\getenv redis_tls_port REDIS_TLS_PORT
\getenv redis_tls_dns_port REDIS_TLS_DNS_PORT
-- error texts without the stack's ports
SELECT set_config('tls.port', :'redis_tls_port', false) IS NOT NULL AS tls_port_set,
       set_config('tls.plain_port', :'redis_port', false) IS NOT NULL AS port_set;

SELECT tls_try(format($$CREATE SERVER redis_tls FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host '127.0.0.1', port %L, tls 'true', tls_ca_file %L, tls_cert_file %L,
           tls_key_file %L)$$, :'redis_tls_port', :'ca', :'client_cert', :'client_key'));
SELECT NOT EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'redis_tls') AS without_tls \gset
\if :without_tls
-- without TLS in the build: tls 'false' is still accepted
CREATE SERVER redis_no_tls FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port', tls 'false');
SELECT polyglot.ping('redis_no_tls')->>'ok' AS ok;
DROP SERVER redis_no_tls;
DROP FUNCTION tls_try(text);
\quit
\endif

SELECT polyglot.ping('redis_tls')->>'ok' AS ok;

-- a foreign table over TLS: 5 MB written and read back in pipelines
CREATE FOREIGN TABLE rtls_strings (key text, value text) SERVER redis_tls
  OPTIONS (prefix 'rtls:');
DELETE FROM rtls_strings;
INSERT INTO rtls_strings SELECT g::text, repeat(chr(64 + g % 26), 100000) FROM generate_series(1, 50) g;
SELECT count(*), sum(length(value)), count(DISTINCT left(value, 1)) FROM rtls_strings;
SELECT key, length(value) FROM rtls_strings WHERE key IN ('7', '42', 'none') ORDER BY key;
UPDATE rtls_strings SET value = 'small' WHERE key = '7';
SELECT value FROM rtls_strings WHERE key = '7';

-- a sync route over TLS
CREATE TABLE rtls_items (id int PRIMARY KEY, name text);
INSERT INTO rtls_items SELECT g, 'item ' || g FROM generate_series(1, 200) g;
SELECT polyglot.sync('rtls_items', 'redis_tls', '{"key": "rtls_item:{id}"}') > 0 AS synced;
SELECT wait_synced(polyglot.route('rtls_items@redis_tls'));
UPDATE rtls_items SET name = 'renamed' WHERE id <= 10;
DELETE FROM rtls_items WHERE id > 190;
SELECT wait_synced(polyglot.route('rtls_items@redis_tls'));
CREATE FOREIGN TABLE rtls_item_keys (key text, value jsonb) SERVER redis_tls
  OPTIONS (prefix 'rtls_item:');
SELECT count(*), count(*) FILTER (WHERE value->>'name' = 'renamed') AS renamed FROM rtls_item_keys;
SELECT count(*) FROM polyglot.verify('rtls_items@redis_tls');
SELECT polyglot.unsync('rtls_items', 'redis_tls');
DELETE FROM rtls_item_keys;
DELETE FROM rtls_strings;
DROP FOREIGN TABLE rtls_strings, rtls_item_keys;
DROP TABLE rtls_items;

-- the name connected to is checked: localhost is in the certificate too;
-- certificate and key in one file
CREATE SERVER redis_tls_name FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host 'localhost', port :'redis_tls_port', tls 'true', tls_ca_file :'ca',
           tls_cert_file :'client_combined');
SELECT polyglot.ping('redis_tls_name')->>'ok' AS ok;
-- 127.1 is 127.0.0.1 to the resolver, but not a name the certificate has
ALTER SERVER redis_tls_name OPTIONS (SET host '127.1');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_name')$$);

-- an IP address is checked as one: through the stack's endpoint whose
-- certificate names localhost only (stunnel in front of the plain port)
CREATE SERVER redis_tls_dns FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host 'localhost', port :'redis_tls_dns_port', tls 'true', tls_ca_file :'ca',
           tls_cert_file :'client_combined');
SELECT polyglot.ping('redis_tls_dns')->>'ok' AS ok;
ALTER SERVER redis_tls_dns OPTIONS (SET host '127.0.0.1');
SELECT replace(tls_try($$SELECT polyglot.ping('redis_tls_dns')$$), :'redis_tls_dns_port', '<dns port>');

-- an encrypted client key: its passphrase in the user mapping
CREATE SERVER redis_tls_enc FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host 'localhost', port :'redis_tls_port', tls 'true', tls_ca_file :'ca',
           tls_cert_file :'client_cert', tls_key_file :'client_enc_key');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_enc')$$);
CREATE USER MAPPING FOR CURRENT_USER SERVER redis_tls_enc OPTIONS (tls_key_password 'wrong');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_enc')$$);
ALTER USER MAPPING FOR CURRENT_USER SERVER redis_tls_enc OPTIONS (SET tls_key_password 'polyglot-key-pass');
SELECT polyglot.ping('redis_tls_enc')->>'ok' AS ok;

-- verification: the system's authorities do not know the stack's, nor
-- does another one; tls_verify 'false' turns it off, explicitly
CREATE SERVER redis_tls_verify FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port :'redis_tls_port', tls 'true', tls_cert_file :'client_cert',
           tls_key_file :'client_key');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_verify')$$);
ALTER SERVER redis_tls_verify OPTIONS (ADD tls_ca_file :'other_ca');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_verify')$$);
ALTER SERVER redis_tls_verify OPTIONS (DROP tls_ca_file, ADD tls_verify 'false');
SELECT polyglot.ping('redis_tls_verify')->>'ok' AS ok;

-- the server asks for a client certificate (TLS 1.3 refuses it after the
-- handshake: the first command's write may meet the server's reset before
-- the alert is read)
CREATE SERVER redis_tls_anon FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port :'redis_tls_port', tls 'true', tls_ca_file :'ca');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_anon')$$)
  ~ '^08006: lost connection to Redis server "redis_tls_anon" during PING \((Connection reset by peer|Server closed the connection, TLS: tlsv13 alert certificate required) \(127\.0\.0\.1:<tls port>\)\.\)$' AS refused;
-- the same seen by AUTH, the first command when the user mapping has a
-- password
CREATE USER MAPPING FOR CURRENT_USER SERVER redis_tls_anon
  OPTIONS (user 'polyglot_test', password 'polyglot-test-password');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_anon')$$)
  ~ '^HV00N: could not connect to Redis server "redis_tls_anon" \(AUTH failed at 127\.0\.0\.1:<tls port>: (Connection reset by peer|.*TLS: tlsv13 alert certificate required)\)$' AS refused;
DROP USER MAPPING FOR CURRENT_USER SERVER redis_tls_anon;
-- files that are missing
ALTER SERVER redis_tls_anon OPTIONS (ADD tls_cert_file '/nonexistent/client.pem');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_anon')$$);
ALTER SERVER redis_tls_anon OPTIONS (DROP tls_cert_file, SET tls_ca_file '/nonexistent/ca.pem');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_anon')$$);
-- TLS to the plain port (Redis waits for a command's end), plain to the TLS port
ALTER SERVER redis_tls_anon OPTIONS (SET tls_ca_file :'ca', SET port :'redis_port',
                                     ADD connect_timeout '1s');
SELECT tls_try($$SELECT polyglot.ping('redis_tls_anon')$$);
-- a handshake that does not end is cancelled (statement_timeout), and the
-- backend connects again afterwards
ALTER SERVER redis_tls_anon OPTIONS (SET connect_timeout '30s');
SET statement_timeout = '300ms';
SELECT polyglot.ping('redis_tls_anon');
RESET statement_timeout;
ALTER SERVER redis_tls_dns OPTIONS (SET host 'localhost');
SELECT polyglot.ping('redis_tls_dns')->>'ok' AS ok;
CREATE SERVER redis_plain_to_tls FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port :'redis_tls_port', io_timeout '2s');
SELECT tls_try($$SELECT polyglot.ping('redis_plain_to_tls')$$) ~ '^08006: lost connection' AS refused;

-- option checks
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls_ca_file '/x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'false', tls_verify 'false')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_key_file '/x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_key_password 'x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'maybe')$$);
SELECT try($$CREATE FOREIGN TABLE bad (key text, value text) SERVER redis_tls OPTIONS (tls 'true')$$);

-- only superusers make the server read its host's files
CREATE ROLE regress_rtls_user;
GRANT USAGE ON FOREIGN DATA WRAPPER polyglot_redis TO regress_rtls_user;
SET ROLE regress_rtls_user;
SELECT try(format($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_cert_file %L)$$, :'client_cert'));
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_ca_file '/dev/stdin')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_key_file '/etc/ssl/private/x.key')$$);
-- TLS and verification are the user's to set
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true', tls_verify 'false')$$);
RESET ROLE;
DROP SERVER u1;
REVOKE USAGE ON FOREIGN DATA WRAPPER polyglot_redis FROM regress_rtls_user;
DROP ROLE regress_rtls_user;

DROP SERVER redis_tls, redis_tls_name, redis_tls_dns, redis_tls_enc, redis_tls_verify, redis_tls_anon,
  redis_plain_to_tls CASCADE;
DROP FUNCTION tls_try(text);
