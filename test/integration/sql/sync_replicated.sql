--
-- sync_replicated: a subscriber database as the source of a route.  A
-- table of this database is the subscriber of a publication in another
-- database of the stack's PostgreSQL; its changes arrive through logical
-- replication (the apply worker runs in session_replication_role replica,
-- where ordinary triggers do not fire).  A route with "replicated" (capture
-- triggers ENABLE ALWAYS) delivers them, the initial copy of the
-- subscription included; a route of the same table without it delivers
-- local writes only.
--
\getenv pgport PGPORT
\getenv redis_port REDIS_PORT
\! redis-cli -p $REDIS_PORT --scan --pattern 'repl:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
CREATE SERVER r_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql
SELECT current_database() AS subscriber \gset

-- the publisher, with a row before the subscription
DROP DATABASE IF EXISTS polyglot_publisher WITH (FORCE);
CREATE DATABASE polyglot_publisher;
\c polyglot_publisher
CREATE TABLE parts (id int PRIMARY KEY, name text);
INSERT INTO parts VALUES (1, 'bolt');
CREATE PUBLICATION polyglot_parts FOR TABLE parts;
-- (a subscription to a database of its own cluster cannot create its slot)
SELECT pg_create_logical_replication_slot('polyglot_parts', 'pgoutput') IS NOT NULL AS slot;

\c :subscriber
CREATE TABLE parts (id int PRIMARY KEY, name text);
SELECT polyglot.sync('parts', 'r_cache', '{"name": "parts replicated", "key": "repl:a:{id}", "replicated": true}',
                     backfill => false) AS ra \gset
SELECT polyglot.sync('parts', 'r_cache', '{"name": "parts local", "key": "repl:b:{id}"}', backfill => false) AS rb \gset
SELECT name, tgenabled FROM polyglot.routes r JOIN pg_trigger t
    ON t.tgrelid = r.source_relid AND t.tgname = 'polyglot_sync_' || r.id
 WHERE r.id IN (:ra, :rb) ORDER BY name;
-- (not echoed: the connection names this run's port and user)
\set ECHO none
SELECT format('CREATE SUBSCRIPTION polyglot_parts CONNECTION %L PUBLICATION polyglot_parts '
              'WITH (create_slot = false, slot_name = ''polyglot_parts'')',
              format('host=127.0.0.1 port=%s dbname=polyglot_publisher user=%s', :'pgport', current_user)) \gexec
\set ECHO all

-- the initial copy, then changes on the publisher
SELECT wait_for('(SELECT count(*) FROM parts) = 1');
\c polyglot_publisher
INSERT INTO parts VALUES (2, 'nut'), (3, 'washer');
UPDATE parts SET name = 'hex bolt' WHERE id = 1;
DELETE FROM parts WHERE id = 3;
\c :subscriber
SELECT wait_for($$(SELECT string_agg(id || '=' || name, ' ' ORDER BY id) FROM parts) = '1=hex bolt 2=nut'$$);
SELECT wait_synced(:ra), wait_synced(:rb);
\! redis-cli -p $REDIS_PORT --scan --pattern 'repl:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT GET $k)"; done

-- a local write on the subscriber: both routes
INSERT INTO parts VALUES (10, 'local');
SELECT wait_synced(:ra), wait_synced(:rb);
\! redis-cli -p $REDIS_PORT --scan --pattern 'repl:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT GET $k)"; done
SELECT name, (SELECT count(*) FROM polyglot.verify(name)) AS drift
  FROM polyglot.routes WHERE id IN (:ra, :rb) ORDER BY name;

DROP SUBSCRIPTION polyglot_parts;
DROP TABLE parts;
DROP DATABASE polyglot_publisher WITH (FORCE);
\! redis-cli -p $REDIS_PORT --scan --pattern 'repl:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
DROP SERVER r_cache;
