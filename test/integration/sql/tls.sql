--
-- tls: TLS to the stores, through the stack's TLS endpoints: OpenSearch
-- behind stunnel (https://localhost:59210) and FerretDB's TLS listener
-- (mongodb://localhost:57019), both with a certificate of the stack's own
-- authority and both asking for a client certificate of it.  Verification
-- is on by default; a client certificate is for superusers to set.
--
\i test/integration/sql/setup.psql
\i test/integration/sql/tls_files.psql
\getenv os_tls_url OPENSEARCH_TLS_URL
\getenv mongo_tls_uri MONGO_TLS_URI
-- the TLS endpoint's port, written <tls port> in the errors shown
SELECT set_config('tls.port', substring(:'os_tls_url' from ':(\d+)'), false) IS NOT NULL AS tls_port_set;

--
-- Elasticsearch/OpenSearch over https
--
CREATE SERVER os_tls FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'os_tls_url', tls_ca_file :'ca', tls_cert_file :'client_cert',
           tls_key_file :'client_key');
SELECT polyglot.ping('os_tls')->>'ok' AS ok, polyglot.ping('os_tls')->>'flavor' AS flavor;

-- both halves go through it: a sync route and a foreign table
CREATE TABLE tls_items (id int PRIMARY KEY, name text);
INSERT INTO tls_items VALUES (1, 'one'), (2, 'two');
CREATE FOREIGN TABLE tls_items_os (_id text, id int, name text) SERVER os_tls
  OPTIONS (index 'polyglot_tls_items', refresh 'true');
-- (documents of an earlier run, if any, go)
SELECT try('DELETE FROM tls_items_os') IS NOT NULL AS clean;
SELECT polyglot.sync('tls_items', 'os_tls', '{"index": "polyglot_tls_items"}') > 0 AS synced;
SELECT wait_synced((SELECT max(id) FROM polyglot.routes WHERE source_relid = 'tls_items'::regclass));
SELECT wait_for('(SELECT count(*) = 2 FROM tls_items_os)');
UPDATE tls_items SET name = 'uno' WHERE id = 1;
SELECT wait_for($$(SELECT name = 'uno' FROM tls_items_os WHERE id = 1)$$);
INSERT INTO tls_items_os VALUES ('3', 3, 'written over TLS');
SELECT id, name FROM tls_items_os ORDER BY id;
-- verify reads over TLS too: the document written above is none of the route's
SELECT count(*) FROM polyglot.verify((SELECT max(id) FROM polyglot.routes WHERE source_relid = 'tls_items'::regclass));
SELECT polyglot.unsync('tls_items', 'os_tls');
DELETE FROM tls_items_os;
DROP FOREIGN TABLE tls_items_os;

-- an encrypted client key: its passphrase in the user mapping
CREATE SERVER os_tls_enc FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'os_tls_url', tls_ca_file :'ca', tls_cert_file :'client_cert',
           tls_key_file :'client_enc_key');
SELECT tls_try($$SELECT polyglot.ping('os_tls_enc')$$);
CREATE USER MAPPING FOR CURRENT_USER SERVER os_tls_enc OPTIONS (tls_key_password 'wrong');
SELECT tls_try($$SELECT polyglot.ping('os_tls_enc')$$);
ALTER USER MAPPING FOR CURRENT_USER SERVER os_tls_enc OPTIONS (SET tls_key_password 'polyglot-key-pass');
SELECT polyglot.ping('os_tls_enc')->>'ok' AS ok;

-- verification: the system's authorities do not know the stack's, nor
-- does another one; tls_verify 'false' turns it off, explicitly
CREATE SERVER os_tls_system FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'os_tls_url', tls_cert_file :'client_cert', tls_key_file :'client_key');
SELECT tls_try($$SELECT polyglot.ping('os_tls_system')$$);
ALTER SERVER os_tls_system OPTIONS (ADD tls_ca_file :'other_ca');
SELECT tls_try($$SELECT polyglot.ping('os_tls_system')$$);
ALTER SERVER os_tls_system OPTIONS (DROP tls_ca_file, ADD tls_verify 'false');
SELECT polyglot.ping('os_tls_system')->>'ok' AS ok;
-- the endpoint asks for a client certificate
CREATE SERVER os_tls_anon FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'os_tls_url', tls_ca_file :'ca');
SELECT tls_try($$SELECT polyglot.ping('os_tls_anon')$$) ~ '^(HV00N|08006): ' AS refused;
-- files that are missing
ALTER SERVER os_tls_anon OPTIONS (ADD tls_cert_file '/nonexistent/client.pem');
SELECT tls_try($$SELECT polyglot.ping('os_tls_anon')$$);
ALTER SERVER os_tls_anon OPTIONS (DROP tls_cert_file, SET tls_ca_file '/nonexistent/ca.pem');
SELECT tls_try($$SELECT polyglot.ping('os_tls_anon')$$);

-- option checks
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'http://127.0.0.1:9200', tls_ca_file '/x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://a:9200, http://b:9200', tls_verify 'true')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://127.0.0.1:9200', tls_key_file '/x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://127.0.0.1:9200', tls_key_password 'x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://127.0.0.1:9200', tls_verify 'maybe')$$);

--
-- MongoDB over TLS (the certificate and its key in one file)
--
CREATE SERVER mongo_tls FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_tls_uri', database 'polyglot_tls', tls 'true', tls_ca_file :'ca',
           tls_cert_file :'client_combined', connect_timeout '3s');
SELECT polyglot.ping('mongo_tls')->>'ok' AS ok;
CREATE FOREIGN TABLE tls_items_mongo (_id int, name text) SERVER mongo_tls
  OPTIONS (collection 'tls_items');
DELETE FROM tls_items_mongo;
SELECT polyglot.sync('tls_items', 'mongo_tls', '{"collection": "tls_items"}') > 0 AS synced;
SELECT wait_synced((SELECT max(id) FROM polyglot.routes WHERE source_relid = 'tls_items'::regclass));
SELECT _id, name FROM tls_items_mongo ORDER BY _id;
SELECT count(*) FROM polyglot.verify((SELECT max(id) FROM polyglot.routes WHERE source_relid = 'tls_items'::regclass));
SELECT polyglot.unsync('tls_items', 'mongo_tls');
DELETE FROM tls_items_mongo;
DROP FOREIGN TABLE tls_items_mongo;

-- without a client certificate, with another authority, without TLS
CREATE SERVER mongo_tls_bad FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_tls_uri', tls 'true', tls_ca_file :'ca', connect_timeout '1s');
SELECT tls_try($$SELECT polyglot.ping('mongo_tls_bad')$$) ~ '^HV00N: could not connect' AS refused;
ALTER SERVER mongo_tls_bad OPTIONS (ADD tls_cert_file :'client_combined', SET tls_ca_file :'other_ca');
SELECT tls_try($$SELECT polyglot.ping('mongo_tls_bad')$$) ~ '^HV00N: could not connect' AS refused;
ALTER SERVER mongo_tls_bad OPTIONS (DROP tls_ca_file, ADD tls_verify 'false');
SELECT polyglot.ping('mongo_tls_bad')->>'ok' AS ok;
ALTER SERVER mongo_tls_bad OPTIONS (SET tls 'false', DROP tls_verify, DROP tls_cert_file);
SELECT tls_try($$SELECT polyglot.ping('mongo_tls_bad')$$) ~ '^HV00N: could not connect' AS refused;

-- option checks: TLS files need tls; MongoDB takes certificate and key in one file
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (tls_ca_file '/x')$$);
SELECT try($$CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (tls 'true', tls_key_file '/x')$$);

--
-- Only superusers make the server present its host's identity
--
CREATE ROLE regress_tls_user;
GRANT USAGE ON FOREIGN DATA WRAPPER polyglot_elastic, polyglot_mongo TO regress_tls_user;
SET ROLE regress_tls_user;
SELECT try(format($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://localhost:1', tls_cert_file %L)$$, :'client_cert'));
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (tls 'true', tls_cert_file '/etc/ssl/private/x.pem')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?tls=true&tlsCertificateKeyFile=/etc/ssl/x.pem')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?authMechanism=MONGODB-X509')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?authMechanism=GSSAPI')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?authMechanism=MONGODB-AWS')$$);
SELECT try(format($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri %L, tls 'true', tls_ca_file %L)$$, :'mongo_tls_uri', :'ca'));
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?tls=true&tlsCAFile=/dev/stdin')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?ssl=true&sslClientCertificateKeyFile=/etc/ssl/x.pem')$$);
SELECT try($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://localhost/?authMechanism=mongodb-aws')$$);
SELECT try($$CREATE SERVER u2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://localhost:1', tls_ca_file '/dev/stdin')$$);
-- verification and TLS itself are the user's to set
SELECT try(format($$CREATE SERVER u1 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri %L, tls 'true', tls_verify 'false')$$, :'mongo_tls_uri'));
SELECT try($$CREATE SERVER u2 FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url 'https://localhost:1', tls_verify 'false')$$);
-- a server a superuser gave a client certificate is the superusers' to alter
RESET ROLE;
ALTER SERVER u1 OWNER TO regress_tls_user;
ALTER SERVER u1 OPTIONS (ADD tls_cert_file :'client_combined');
SET ROLE regress_tls_user;
SELECT try($$ALTER SERVER u1 OPTIONS (ADD connect_timeout '2s')$$);
RESET ROLE;
DROP SERVER u1;
DROP SERVER u2;
REVOKE USAGE ON FOREIGN DATA WRAPPER polyglot_elastic, polyglot_mongo FROM regress_tls_user;
DROP ROLE regress_tls_user;

DROP TABLE tls_items;
DROP SERVER os_tls, os_tls_enc, os_tls_system, os_tls_anon, mongo_tls, mongo_tls_bad CASCADE;
DROP FUNCTION tls_try(text);
