--
-- route_cache: the worker keeps its routes from round to round, and reads
-- them again as soon as something they were read from changes: the routes
-- (pause, resume, a new route), a source table (a column, a rename, its
-- schema's name), the server and the user mapping.  With
-- polyglot.poll_interval at an hour, nothing here is read again by the
-- poll: each change must reach the worker through an invalidation, or the
-- change after it is delivered as before it (or not at all).
--
\getenv redis_port REDIS_PORT
CREATE SERVER rcache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');

\i test/integration/sql/setup.psql

\! redis-cli -p $REDIS_PORT KEYS 'rcache:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
ALTER SYSTEM SET polyglot.poll_interval = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

-- a route's columns are read with it ("exclude" lists them)
CREATE SCHEMA rc1;
CREATE TABLE rc1.items (id int PRIMARY KEY, name text, secret text);
INSERT INTO rc1.items VALUES (1, 'one', 'x');
SELECT polyglot.sync('rc1.items', 'rcache',
                     '{"key": "rcache:item:{id}", "exclude": ["secret"]}') AS route \gset
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- a column added: the next change carries it
ALTER TABLE rc1.items ADD COLUMN price int;
UPDATE rc1.items SET price = 10 WHERE id = 1;
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- the table renamed, then its schema: the rows are read under the new names
ALTER TABLE rc1.items RENAME TO things;
UPDATE rc1.things SET name = 'one, renamed' WHERE id = 1;
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
ALTER SCHEMA rc1 RENAME TO rc2;
UPDATE rc2.things SET name = 'one, in rc2' WHERE id = 1;
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
-- none of it failed on the way (a stale name would fail once, then retry)
SELECT failed, retries, last_error FROM polyglot.status WHERE route = :route;

-- paused: changes wait; resumed: they go
SELECT polyglot.pause(:route);
UPDATE rc2.things SET name = 'while paused' WHERE id = 1;
SELECT pg_sleep(0.5);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
SELECT polyglot.resume(:route);
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- the server moved to a port nothing listens on: the change waits, with the
-- error; moved back: it goes
ALTER SERVER rcache OPTIONS (SET port '1', ADD connect_timeout '1');
UPDATE rc2.things SET name = 'server moved' WHERE id = 1;
SELECT wait_for(format('(SELECT last_error IS NOT NULL FROM polyglot.status WHERE route = %s)', :route), 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
ALTER SERVER rcache OPTIONS (SET port :'redis_port');
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- a user mapping with a password Redis refuses, then the right one
\! redis-cli -p $REDIS_PORT ACL SETUSER polyglot_cache_test reset on '>right-password' '~rcache:*' '+@all' > /dev/null
CREATE USER MAPPING FOR CURRENT_USER SERVER rcache
  OPTIONS (user 'polyglot_cache_test', password 'wrong-password');
UPDATE rc2.things SET name = 'wrong password' WHERE id = 1;
SELECT wait_for(format('(SELECT last_error LIKE %L FROM polyglot.status WHERE route = %s)',
                       '%WRONGPASS%', :route), 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
ALTER USER MAPPING FOR CURRENT_USER SERVER rcache OPTIONS (SET password 'right-password');
SELECT wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- a new route is served at once, beside the first
CREATE TABLE rc2.more (id int PRIMARY KEY, v text);
INSERT INTO rc2.more VALUES (7, 'seven');
SELECT polyglot.sync('rc2.more', 'rcache', '{"key": "rcache:more:{id}"}') AS route2 \gset
SELECT wait_synced(:route2, 20);
\! redis-cli -p $REDIS_PORT GET rcache:more:7
UPDATE rc2.more SET v = 'seven, changed';
UPDATE rc2.things SET name = 'both' WHERE id = 1;
SELECT wait_synced(:route2, 20), wait_synced(:route, 20);
\! redis-cli -p $REDIS_PORT GET rcache:more:7
\! redis-cli -p $REDIS_PORT GET rcache:item:1

-- Commits to one route keep the workers busy with rounds that look only at
-- the routes the commits name; a route whose store comes back at the end of
-- its backoff, and a key due for a retry, are delivered all the same.
INSERT INTO rc2.more SELECT g, 'more ' || g FROM generate_series(1, 20) g ON CONFLICT DO NOTHING;
-- (no autovacuum of it: its invalidations would have the workers read the
-- routes again, and look at every route)
ALTER TABLE rc2.more SET (autovacuum_enabled = false);
CREATE PROCEDURE churn_until(condition text, timeout_s float8, INOUT result text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  ok boolean;
BEGIN
  LOOP
    UPDATE rc2.more SET v = clock_timestamp()::text WHERE id <= 20;
    COMMIT;
    EXECUTE 'SELECT ' || condition INTO ok;
    IF ok THEN
      result := 'done';
      RETURN;
    END IF;
    IF clock_timestamp() - t0 > timeout_s * interval '1 second' THEN
      result := 'timeout waiting for ' || condition;
      RETURN;
    END IF;
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$;
-- the route's Redis user is switched off (and its connection closed): the
-- route backs off; switched on again, with no change in PostgreSQL
\! redis-cli -p $REDIS_PORT ACL SETUSER polyglot_cache_test off > /dev/null
\! redis-cli -p $REDIS_PORT CLIENT KILL USER polyglot_cache_test > /dev/null
SELECT retries AS retries_before FROM polyglot.status WHERE route = :route \gset
UPDATE rc2.things SET name = 'store back' WHERE id = 1;
-- (a new failure: last_error still says WRONGPASS from the user mapping above)
CALL churn_until(format('(SELECT retries > %s AND last_error LIKE %L FROM polyglot.status WHERE route = %s)',
                        :retries_before, '%WRONGPASS%', :route), 20);
\! redis-cli -p $REDIS_PORT ACL SETUSER polyglot_cache_test on > /dev/null
CALL churn_until(format('(SELECT pending = 0 FROM polyglot.status WHERE route = %s)', :route), 20);
\! redis-cli -p $REDIS_PORT GET rcache:item:1
-- a key Redis refuses (a string where the hash route writes a hash) is put
-- back for a retry; the key freed, the retry goes
CREATE TABLE rc2.h (id int PRIMARY KEY, v text);
SELECT polyglot.sync('rc2.h', 'rcache', '{"key": "rcache:h:{id}", "mode": "hash"}') AS route3 \gset
\! redis-cli -p $REDIS_PORT SET rcache:h:1 not-a-hash > /dev/null
INSERT INTO rc2.h VALUES (1, 'hashed');
CALL churn_until(format('(SELECT retries > 0 FROM polyglot.status WHERE route = %s)', :route3), 20);
\! redis-cli -p $REDIS_PORT DEL rcache:h:1 > /dev/null
CALL churn_until(format('(SELECT pending = 0 FROM polyglot.status WHERE route = %s)', :route3), 20);
\! redis-cli -p $REDIS_PORT HGETALL rcache:h:1
SELECT polyglot.unsync('rc2.h', 'rcache');

-- A change that commits while a round is under way, after the round took its
-- routes: the round is held in a route before (Redis pauses writes, both
-- workers wait on it), the next route's table gains a column, and a row
-- of it changes.  The round must not deliver that row with the columns
-- it took at its start: the row goes with its new column.
-- (the workers of this database that are delivering a route now: a fresh
-- look at pg_stat_activity, which a transaction otherwise reads once)
CREATE FUNCTION workers_delivering(route int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_stat_clear_snapshot();
  RETURN (SELECT count(*) FROM pg_stat_activity
          WHERE backend_type = 'pg_polyglot worker' AND datname = current_database()
            AND state = 'active' AND query LIKE format('delivering %% of route %s', route));
END $$;
CREATE TABLE rc2.early (id int PRIMARY KEY);
CREATE TABLE rc2.late (id int PRIMARY KEY, v text);
INSERT INTO rc2.early SELECT generate_series(1, 20);
INSERT INTO rc2.late VALUES (1, 'one');
SELECT polyglot.sync('rc2.early', 'rcache', '{"key": "rcache:early:{id}"}') AS route4 \gset
SELECT polyglot.sync('rc2.late', 'rcache', '{"key": "rcache:late:{id}"}') AS route5 \gset
SELECT wait_synced(:route4, 20), wait_synced(:route5, 20);
\! redis-cli -p $REDIS_PORT CLIENT PAUSE 30000 WRITE > /dev/null
BEGIN;
UPDATE rc2.early SET id = id;
UPDATE rc2.late SET v = 'two';
COMMIT;
SELECT wait_for(format('workers_delivering(%s) = 2', :route4), 20);
ALTER TABLE rc2.late ADD COLUMN w int;
UPDATE rc2.late SET w = 3;
\! redis-cli -p $REDIS_PORT CLIENT UNPAUSE > /dev/null
SELECT wait_synced(:route4, 20), wait_synced(:route5, 20);
\! redis-cli -p $REDIS_PORT GET rcache:late:1
-- the same with a column the route reads dropped (it names its columns,
-- having an "exclude"): the read with the round's routes fails, which is not
-- the route's failure (no retry counted, no backoff)
CREATE TABLE rc2.named (id int PRIMARY KEY, v text, gone int, secret text);
INSERT INTO rc2.named VALUES (1, 'one', 1, 's');
SELECT polyglot.sync('rc2.named', 'rcache', '{"key": "rcache:named:{id}", "exclude": ["secret"]}') AS route6 \gset
SELECT wait_synced(:route6, 20);
\! redis-cli -p $REDIS_PORT CLIENT PAUSE 30000 WRITE > /dev/null
BEGIN;
UPDATE rc2.early SET id = id;
UPDATE rc2.named SET v = 'two';
COMMIT;
SELECT wait_for(format('workers_delivering(%s) = 2', :route4), 20);
ALTER TABLE rc2.named DROP COLUMN gone;
UPDATE rc2.named SET v = 'three';
\! redis-cli -p $REDIS_PORT CLIENT UNPAUSE > /dev/null
SELECT wait_synced(:route4, 20), wait_synced(:route6, 20);
\! redis-cli -p $REDIS_PORT GET rcache:named:1
SELECT failed, retries, last_error FROM polyglot.status WHERE route IN (:route4, :route5, :route6) ORDER BY route;
SELECT polyglot.unsync('rc2.named', 'rcache');
SELECT polyglot.unsync('rc2.early', 'rcache');
SELECT polyglot.unsync('rc2.late', 'rcache');
DROP FUNCTION workers_delivering(int);

SELECT polyglot.unsync('rc2.things', 'rcache');
SELECT polyglot.unsync('rc2.more', 'rcache');
DROP USER MAPPING FOR CURRENT_USER SERVER rcache;
DROP SCHEMA rc2 CASCADE;
DROP SERVER rcache;
\! redis-cli -p $REDIS_PORT ACL DELUSER polyglot_cache_test > /dev/null
\! redis-cli -p $REDIS_PORT KEYS 'rcache:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
ALTER SYSTEM RESET polyglot.poll_interval;
SELECT pg_reload_conf();
