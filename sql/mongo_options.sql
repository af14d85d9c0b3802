--
-- mongo_options: validation of polyglot_mongo options at CREATE/ALTER time,
-- and of MongoDB route options at sync().
--
-- valid
CREATE SERVER m1 FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri 'mongodb://127.0.0.1:27017,127.0.0.1:27018/?replicaSet=rs0', database 'shop',
           connect_timeout '3s', io_timeout '10s');
CREATE USER MAPPING FOR PUBLIC SERVER m1 OPTIONS (user 'app', password 'p@ss:w/rd%');
-- unknown and misplaced options
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (url 'mongodb://x');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (collection 'c');
CREATE USER MAPPING FOR CURRENT_USER SERVER m1 OPTIONS (api_key 'k');
-- bad uris
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'http://127.0.0.1');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '');
-- credentials never in the server's uri
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://app:secret@127.0.0.1');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (password 'secret');
-- database names
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (database 'a.b');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (database 'a$b');
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (database '');
-- timeouts
CREATE SERVER m2 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (connect_timeout '-1s');
-- foreign tables and columns
CREATE FOREIGN TABLE mt1 (_id text, name text OPTIONS (field 'info.name'), doc jsonb)
  SERVER m1 OPTIONS (database 'other', collection 'products');
CREATE FOREIGN TABLE mt2 (_id text) SERVER m1 OPTIONS (collection 'a$b');
CREATE FOREIGN TABLE mt2 (_id text) SERVER m1 OPTIONS (collection 'system.users');
CREATE FOREIGN TABLE mt2 (_id text) SERVER m1 OPTIONS (collection 'orders.');
CREATE FOREIGN TABLE mt2 (_id text) SERVER m1 OPTIONS (index 'x');
CREATE FOREIGN TABLE mt2 (_id text OPTIONS (field '')) SERVER m1;
CREATE FOREIGN TABLE mt2 (_id text OPTIONS (field 'a..b')) SERVER m1;
CREATE FOREIGN TABLE mt2 (_id text OPTIONS (field '$where')) SERVER m1;
CREATE FOREIGN TABLE mt2 (_id text OPTIONS (name 'x')) SERVER m1;
ALTER FOREIGN TABLE mt1 ALTER COLUMN name OPTIONS (SET field 'info.title');
-- odd but legal collection names are kept as they are
CREATE FOREIGN TABLE mt3 (_id text) SERVER m1 OPTIONS (collection 'order items "2024"');
SELECT ftrelid::regclass, ftoptions FROM pg_foreign_table
WHERE ftrelid IN ('mt1'::regclass, 'mt3'::regclass) ORDER BY 1;
SELECT attname, attfdwoptions FROM pg_attribute
WHERE attrelid = 'mt1'::regclass AND attfdwoptions IS NOT NULL;
DROP SERVER m1 CASCADE;
-- the SQLSTATEs applications can rely on
DO $$
BEGIN
  CREATE SERVER m3 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://u:p@h');
EXCEPTION WHEN fdw_invalid_attribute_value THEN RAISE NOTICE 'credentials in uri: %', SQLSTATE;
END $$;
DO $$
BEGIN
  CREATE SERVER m3 FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (collection 'c');
EXCEPTION WHEN fdw_invalid_option_name THEN RAISE NOTICE 'misplaced option: %', SQLSTATE;
END $$;
-- route options (polyglot.sync), refused before anything is sent: no
-- store listens at these servers' address
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri 'mongodb://127.0.0.1:1', database 'polyglot_sync');
CREATE SERVER docs_nodb FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri 'mongodb://127.0.0.1:1');
CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), cost numeric);
SELECT polyglot.sync('products', 'docs', '{"colection": "x"}');
SELECT polyglot.sync('products', 'docs', '{"collection": "system.users"}');
SELECT polyglot.sync('products', 'docs', '{"collection": "a$b"}');
SELECT polyglot.sync('products', 'docs', '{"database": "bad.name"}');
SELECT polyglot.sync('products', 'docs', '{"database": 5}');
SELECT polyglot.sync('products', 'docs_nodb');
SELECT polyglot.sync('products', 'docs', '{"exclude": ["nope"]}');
SELECT polyglot.sync('products', 'docs', '{"columns": ["name"], "exclude": ["cost"]}');
DROP TABLE products;
DROP SERVER docs, docs_nodb;
