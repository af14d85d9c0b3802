--
-- redis_options: validation of polyglot_redis options at CREATE/ALTER time.
--
-- valid server options
CREATE SERVER r1 FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host '127.0.0.1', port '6379', db '2', connect_timeout '2s', io_timeout '1500');
ALTER SERVER r1 OPTIONS (SET connect_timeout '250ms', SET io_timeout '1min');
-- unknown option: the hint lists the valid ones
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (hostname 'x');
ALTER SERVER r1 OPTIONS (ADD bogus 'x');
-- an option of another object
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (prefix 'p:');
-- bad values
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '0');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '70000');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port 'six');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (db '-1');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (connect_timeout 'soon');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (connect_timeout '0');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (io_timeout '2h');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (io_timeout '5 parsecs');
-- a Sentinel-managed primary: sentinels and master_name, not host or port
CREATE SERVER rs1 FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (sentinels '127.0.0.1:26379, [::1]:26380,sentinel.example:26381', master_name 'mymaster',
           wait_replicas '1');
ALTER SERVER rs1 OPTIONS (SET sentinels '127.0.0.1:26379');
ALTER SERVER rs1 OPTIONS (ADD host '127.0.0.1');
ALTER SERVER rs1 OPTIONS (DROP master_name);
SELECT polyglot._server_endpoint(oid) FROM pg_foreign_server WHERE srvname = 'rs1';
DROP SERVER rs1;
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels '127.0.0.1:26379');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels '127.0.0.1', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels '127.0.0.1:1,,h:2', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels 'h:0', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels '[::1:26379', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels 'fe80::1', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels 'h: +26379', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (sentinels 'h:026379', master_name 'm');
-- a Redis Cluster: seed nodes, and nothing of one server
CREATE SERVER rc1 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster '127.0.0.1:7000, 127.0.0.1:7001');
SELECT polyglot._server_endpoint(oid) FROM pg_foreign_server WHERE srvname = 'rc1';
ALTER SERVER rc1 OPTIONS (ADD db '0');
ALTER SERVER rc1 OPTIONS (SET db '1');
ALTER SERVER rc1 OPTIONS (ADD host 'h');
ALTER SERVER rc1 OPTIONS (SET cluster 'h');
DROP SERVER rc1;
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (cluster 'h:1', sentinels 'h:2', master_name 'm');
CREATE USER MAPPING FOR CURRENT_USER SERVER r1 OPTIONS (sentinel_user 'u', sentinel_password 'p');
DROP USER MAPPING FOR CURRENT_USER SERVER r1;
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1', sentinels 'h:1', master_name 'm');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (wait_replicas '-1');
-- secrets only in user mappings
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (password 'secret');
CREATE SERVER r2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (user 'app');
CREATE USER MAPPING FOR PUBLIC SERVER r1 OPTIONS (user 'app', password 'secret');
ALTER USER MAPPING FOR PUBLIC SERVER r1 OPTIONS (SET password 'other');
CREATE USER MAPPING FOR CURRENT_USER SERVER r1 OPTIONS (host 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER r1 OPTIONS (password '');
-- foreign table options
CREATE FOREIGN TABLE rt1 (key text, value text) SERVER r1 OPTIONS (type 'string', prefix 'product:');
CREATE FOREIGN TABLE rt2 (key text, value jsonb) SERVER r1 OPTIONS (type 'hash');
CREATE FOREIGN TABLE rt3 (key text, member text, score float8) SERVER r1 OPTIONS (type 'zset', prefix '');
CREATE FOREIGN TABLE rt4 (key text) SERVER r1 OPTIONS (type 'stream');
CREATE FOREIGN TABLE rt4 (key text) SERVER r1 OPTIONS (port '1');
CREATE FOREIGN TABLE rt4 (key text) SERVER r1 OPTIONS (password 'x');
ALTER FOREIGN TABLE rt1 OPTIONS (SET type 'list');
ALTER FOREIGN TABLE rt1 OPTIONS (SET type 'lists');
-- columns take no options
ALTER FOREIGN TABLE rt1 ALTER COLUMN value OPTIONS (field 'x');
-- the wrapper itself takes none
ALTER FOREIGN DATA WRAPPER polyglot_redis OPTIONS (ADD host 'x');
-- the stored options
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'r1';
SELECT ftrelid::regclass, ftoptions FROM pg_foreign_table
WHERE ftrelid IN ('rt1'::regclass, 'rt2'::regclass, 'rt3'::regclass) ORDER BY 1;
DROP SERVER r1 CASCADE;
-- the SQLSTATEs applications can rely on
DO $$
BEGIN
  CREATE SERVER r3 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (hostname 'x');
EXCEPTION WHEN fdw_invalid_option_name THEN RAISE NOTICE 'unknown option: %', SQLSTATE;
END $$;
DO $$
BEGIN
  CREATE SERVER r3 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (password 'x');
EXCEPTION WHEN fdw_invalid_option_name THEN RAISE NOTICE 'secret in a server: %', SQLSTATE;
END $$;
DO $$
BEGIN
  CREATE SERVER r3 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '0');
EXCEPTION WHEN fdw_invalid_attribute_value THEN RAISE NOTICE 'bad value: %', SQLSTATE;
END $$;
