--
-- routes_rebind: a route knows its server by OID; where that OID is no
-- longer valid (a cluster made by pg_upgrade, a database restored from a
-- dump) the route finds its server again by name, and only then.  Each case
-- simulates what pg_upgrade or a restore leaves in polyglot.routes, inside a
-- transaction that is rolled back, so that the worker never sees it: the
-- servers' OIDs swapped between two routes of one table, a server dropped
-- and created again under its name, a server of another wrapper under a
-- route's name.  No store is needed (the servers point at a closed port).
--
\i test/integration/sql/setup.psql
CREATE SERVER rb_a FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
CREATE SERVER rb_b FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
CREATE FOREIGN DATA WRAPPER rb_other_fdw;
CREATE SERVER rb_other FOREIGN DATA WRAPPER rb_other_fdw;
CREATE TABLE rb (id int PRIMARY KEY, v text);
SELECT polyglot.sync('rb', 'rb_a', '{"key": "rb:a:{id}"}', false) > 0 AS synced;
SELECT polyglot.sync('rb', 'rb_b', '{"key": "rb:b:{id}"}', false) > 0 AS synced;
-- each route of rb, the server its OID names, and whether it is of this cluster
CREATE VIEW rb_routes AS
  SELECT r.server_name, s.srvname AS server_of_oid, r.server_oid = 0 AS stopped,
         r.server_cluster = polyglot._this_cluster() AS this_cluster,
         EXISTS (SELECT FROM polyglot.route_state st WHERE st.route_id = r.id) AS has_state
    FROM polyglot.routes r LEFT JOIN pg_foreign_server s ON s.oid = r.server_oid
   WHERE r.source_relid = 'rb'::regclass
   ORDER BY r.id;
SELECT * FROM rb_routes;
SET client_min_messages = error;   -- the WARNINGs name route ids

-- pg_upgrade: another cluster, and each route holds the other's server OID
BEGIN;
UPDATE polyglot.routes r
   SET server_oid = (SELECT s.oid FROM pg_foreign_server s
                      WHERE s.srvname = CASE r.server_name WHEN 'rb_a' THEN 'rb_b' ELSE 'rb_a' END),
       server_cluster = 1
 WHERE r.source_relid = 'rb'::regclass;
SELECT server_name, server_of_oid FROM rb_routes;
SELECT polyglot._rebind_servers() AS found;
SELECT * FROM rb_routes;
ROLLBACK;

-- a restore: the routes come without their state, the OIDs swapped
BEGIN;
DELETE FROM polyglot.route_state WHERE route_id IN
  (SELECT id FROM polyglot.routes WHERE source_relid = 'rb'::regclass);
UPDATE polyglot.routes r
   SET server_oid = (SELECT s.oid FROM pg_foreign_server s
                      WHERE s.srvname = CASE r.server_name WHEN 'rb_a' THEN 'rb_b' ELSE 'rb_a' END),
       server_cluster = NULL
 WHERE r.source_relid = 'rb'::regclass;
SELECT polyglot._reattach_restored() AS reattached;
SELECT * FROM rb_routes;
ROLLBACK;

-- a server dropped: its route goes with it (its triggers and events too),
-- so that a server created again under its name takes it neither now, nor
-- after pg_upgrade, nor after a restore; the table can be synced to the
-- new server
BEGIN;
DROP SERVER rb_a;
SELECT * FROM rb_routes;
-- no capture trigger is left but those of rb_b's route
SELECT count(*) AS other_triggers FROM pg_trigger t, polyglot.routes r
 WHERE t.tgrelid = 'rb'::regclass AND t.tgname LIKE 'polyglot_sync_%'
   AND r.server_name = 'rb_b'
   AND t.tgname NOT IN ('polyglot_sync_' || r.id, 'polyglot_sync_' || r.id || '_truncate');
CREATE SERVER rb_a FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
UPDATE polyglot.routes SET server_cluster = 1 WHERE source_relid = 'rb'::regclass;
SELECT polyglot._rebind_servers() AS found;
SELECT * FROM rb_routes;
SELECT polyglot.sync('rb', 'rb_a', '{"key": "rb:a2:{id}"}', false) > 0 AS synced;
SELECT * FROM rb_routes;
ROLLBACK;

-- a route whose server is not found again keeps its server's name (and
-- its own), and a route to a new server of that name (of a name of its
-- own) comes first for polyglot._route() (unsync)
BEGIN;
UPDATE polyglot.routes SET server_oid = 4000000000, server_cluster = 1
 WHERE source_relid = 'rb'::regclass AND server_name = 'rb_a';
ALTER SERVER rb_a RENAME TO rb_a_old;
SELECT polyglot._rebind_servers() AS found;
CREATE SERVER rb_a FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '1');
SELECT try($$SELECT polyglot.sync('rb', 'rb_a', '{"key": "rb:a2:{id}"}', false)$$);
SELECT polyglot.sync('rb', 'rb_a', '{"key": "rb:a2:{id}", "name": "rb@rb_a again"}', false) > 0 AS synced;
SELECT * FROM rb_routes;
SELECT polyglot._route('rb', 'rb_a') = max(id) AS newest_route FROM polyglot.routes;
ROLLBACK;

-- after pg_upgrade a route's name names a server of another wrapper: the
-- route finds no server (and the rebind does not fail on it)
BEGIN;
UPDATE polyglot.routes SET server_name = 'rb_other', server_oid = 4000000000, server_cluster = 1
 WHERE source_relid = 'rb'::regclass AND server_name = 'rb_b';
SELECT polyglot._rebind_servers() AS found;
SELECT * FROM rb_routes;
ROLLBACK;

-- two routes of one table naming one server (routes of names of their
-- own): each finds it
BEGIN;
UPDATE polyglot.routes SET server_name = 'rb_a', server_oid = 4000000000, server_cluster = 1
 WHERE source_relid = 'rb'::regclass AND server_name = 'rb_b';
UPDATE polyglot.routes SET server_cluster = 1 WHERE source_relid = 'rb'::regclass;
SELECT polyglot._rebind_servers() AS found;
SELECT * FROM rb_routes;
ROLLBACK;

RESET client_min_messages;
SELECT * FROM rb_routes;
SELECT polyglot.unsync('rb', 'rb_a');
SELECT polyglot.unsync('rb', 'rb_b');
DROP VIEW rb_routes;
DROP TABLE rb;
DROP SERVER rb_a, rb_b, rb_other;
DROP FOREIGN DATA WRAPPER rb_other_fdw;
