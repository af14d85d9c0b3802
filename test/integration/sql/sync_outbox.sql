--
-- sync_outbox: the outbox goes on draining whatever else the database
-- holds: a publication of every table (logical replication, Debezium)
-- needs a replica identity on each table the worker updates or deletes
-- from; a key that no longer parses as the key column's type becomes a
-- dead letter at once, and the other keys flow.
--
\getenv redis_port REDIS_PORT
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql

\! redis-cli -p $REDIS_PORT KEYS 'outbox:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null

--
-- A publication FOR ALL TABLES, and one of the polyglot schema: every
-- table of the extension that the worker or the functions update or
-- delete from has a replica identity, so delivery goes on
--
SET client_min_messages = error;  -- whatever the wal_level
CREATE PUBLICATION everything FOR ALL TABLES;
DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 150000 THEN
    EXECUTE 'CREATE PUBLICATION polyglot_schema FOR TABLES IN SCHEMA polyglot';
  ELSE  -- 14 publishes no schema: its tables, one by one
    EXECUTE (SELECT 'CREATE PUBLICATION polyglot_schema FOR TABLE ' || string_agg(oid::regclass::text, ', ')
             FROM pg_class WHERE relnamespace = 'polyglot'::regnamespace AND relkind = 'r');
  END IF;
END $$;
RESET client_min_messages;
SELECT c.relname, c.relreplident,
       EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pkey
FROM pg_class c WHERE c.relnamespace = 'polyglot'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname;

CREATE TABLE pub_items (id int PRIMARY KEY, v text);
INSERT INTO pub_items SELECT g, 'v' || g FROM generate_series(1, 3) g;
SELECT polyglot.sync('pub_items', 'cache', '{"key": "outbox:pub:{id}"}') AS route \gset
SELECT wait_for($$(SELECT pending = 0 AND delivered >= 3 FROM polyglot.status WHERE route = $$ || :route || ')');
UPDATE pub_items SET v = 'changed' WHERE id = 2;
DELETE FROM pub_items WHERE id = 3;
SELECT wait_for($$(SELECT pending = 0 AND delivered >= 5 FROM polyglot.status WHERE route = $$ || :route || ')');
\! redis-cli -p $REDIS_PORT GET outbox:pub:1
\! redis-cli -p $REDIS_PORT GET outbox:pub:2
\! redis-cli -p $REDIS_PORT EXISTS outbox:pub:3
SELECT state, last_error FROM polyglot.status WHERE route = :route;
-- pause, resume and unsync under the publication
SELECT polyglot.pause(:route);
SELECT polyglot.resume(:route);
SELECT polyglot.retry(:route);
SELECT polyglot.unsync('pub_items', 'cache');
SELECT count(*) FROM polyglot.routes WHERE id = :route;
DROP TABLE pub_items;

--
-- A key that no longer parses as the key column's type: the column's
-- type changed while its delete was pending.  That key becomes a dead
-- letter with the error; the others are delivered.  (The publications
-- are still there: dead letters are written and replayed under them.)
--
CREATE TABLE badkey (id text PRIMARY KEY, v text);
INSERT INTO badkey VALUES ('1', 'one'), ('2', 'two'), ('x', 'ex');
SELECT polyglot.sync('badkey', 'cache', '{"key": "outbox:badkey:{id}"}') AS route \gset
SELECT wait_for($$(SELECT pending = 0 AND delivered >= 3 FROM polyglot.status WHERE route = $$ || :route || ')');
SELECT polyglot.pause(:route);
DELETE FROM badkey WHERE id = 'x';
UPDATE badkey SET v = 'uno' WHERE id = '1';
ALTER TABLE badkey ALTER COLUMN id TYPE int USING id::int;
UPDATE badkey SET v = 'dos' WHERE id = 2;
INSERT INTO badkey VALUES (3, 'tres');
SELECT polyglot.resume(:route);
SELECT wait_for($$(SELECT pending = 0 FROM polyglot.status WHERE route = $$ || :route || ')', 20);
\! redis-cli -p $REDIS_PORT GET outbox:badkey:1
\! redis-cli -p $REDIS_PORT GET outbox:badkey:2
\! redis-cli -p $REDIS_PORT GET outbox:badkey:3
SELECT state, dead_letters, failed FROM polyglot.status WHERE route = :route;
SELECT op, key, attempts, error FROM polyglot.dead_letters WHERE route_id = :route;
-- the route goes on; a replayed bad key is a dead letter again
UPDATE badkey SET v = 'one' WHERE id = 1;
SELECT polyglot.retry(:route);
SELECT wait_for($$(SELECT pending = 0 AND failed = 2 FROM polyglot.status WHERE route = $$ || :route || ')', 20);
\! redis-cli -p $REDIS_PORT GET outbox:badkey:1
SELECT state, dead_letters, failed FROM polyglot.status WHERE route = :route;

DROP TABLE badkey;
DROP PUBLICATION everything, polyglot_schema;
DROP SERVER cache;
\! redis-cli -p $REDIS_PORT KEYS 'outbox:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
