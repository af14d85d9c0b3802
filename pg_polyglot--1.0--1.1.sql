/* pg_polyglot--1.0--1.1.sql */

\echo Use "ALTER EXTENSION pg_polyglot UPDATE TO '1.1'" to load this file. \quit

-- The changes of 1.1 to the SQL objects of 1.0.  pg_polyglot--1.1.sql
-- creates the same objects in a fresh database (test/t/020_extension_update.pl
-- compares the two).  Nothing of 1.0 is dropped or renamed, so that a dump
-- of a 1.0 database restores into 1.1, and the worker of a running server
-- delivers throughout: it reads only what both versions have, and its next
-- round waits for this transaction (the lock below) and reads the routes
-- as it left them.

-- Taken first, so that a worker round never holds a lock this script waits for.
LOCK TABLE polyglot.routes IN ACCESS EXCLUSIVE MODE;

---------------------------------------------------------------------------
-- A route records the cluster in which its server OID is valid.
-- pg_upgrade copies polyglot.routes as it is but gives foreign servers other
-- OIDs: in the first round after it the worker finds the servers of the
-- routes again by name (polyglot._rebind_servers()).
---------------------------------------------------------------------------

ALTER TABLE polyglot.routes ADD COLUMN server_cluster numeric;

-- The system identifier of this cluster: a route's server_oid is valid in
-- the cluster its server_cluster names.  pg_upgrade creates a new cluster
-- (initdb: another identifier) and gives foreign servers new OIDs; a
-- physical copy (base backup, promoted standby) keeps both.
CREATE FUNCTION polyglot._this_cluster()
RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT c.system_identifier FROM pg_catalog.pg_control_system() c)::pg_catalog.numeric;

-- The routes whose server OID was recorded in another cluster: copied by
-- pg_upgrade, which carried their servers over by name (its schema dump)
-- and gave them new OIDs.  Each such route finds its server again by name,
-- among the servers of its store, and records this cluster; one whose
-- server is not found keeps failing for want of a server, as a route whose
-- server was dropped does.  The worker calls this in its first round after
-- pg_upgrade, before anyone could create a server: the only moment a
-- server's name may stand for its identity.  A route whose server was
-- dropped in this cluster is never given another one of the same name.
-- Returns how many routes found their server.
CREATE FUNCTION polyglot._rebind_servers()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  srv oid;
  here numeric := polyglot._this_cluster();
  n int := 0;
BEGIN
  LOCK TABLE polyglot.routes IN SHARE ROW EXCLUSIVE MODE;
  FOR r IN SELECT x.* FROM polyglot.routes x
            WHERE x.server_cluster <> here ORDER BY x.id FOR UPDATE OF x LOOP
    SELECT s.oid INTO srv FROM pg_foreign_server s
     WHERE s.srvname = r.server_name
       AND NOT EXISTS (SELECT FROM polyglot.routes o
                        WHERE o.id <> r.id AND o.source_relid = r.source_relid
                          AND o.server_oid = s.oid);
    IF srv IS NOT NULL AND polyglot._server_store(r.server_name) IS DISTINCT FROM r.store THEN
      srv := NULL;
    END IF;
    IF srv IS NULL THEN
      RAISE WARNING 'pg_polyglot route % (% to server %) has no server',
        r.id, r.source_relid, r.server_name
        USING DETAIL = format('Its server OID %s names no server here, and no %s server is named %s.',
                              r.server_oid, r.store, r.server_name),
              HINT = 'Create the server, then unsync and sync the table again.';
      UPDATE polyglot.routes x SET server_cluster = here WHERE x.id = r.id;
    ELSE
      UPDATE polyglot.routes x SET server_oid = srv, server_cluster = here WHERE x.id = r.id;
      RAISE LOG 'pg_polyglot route % (% to server %) found its server again by name: OID % is now %',
        r.id, r.source_relid, r.server_name, r.server_oid, srv;
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

REVOKE ALL ON FUNCTION polyglot._this_cluster(), polyglot._rebind_servers() FROM PUBLIC;

-- A route whose server OID names a server of its store is of this cluster;
-- it takes the server's name, which the 1.0 library did not follow ALTER
-- SERVER ... RENAME TO.  A server named otherwise than its route says is
-- most likely that, but in a 1.0 database that went through pg_upgrade
-- (whose schema restore gives servers OIDs an old one may have had) it can
-- be another server: the update says which, for the administrator to check.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT x.id, x.source_relid, x.server_name, s.srvname
             FROM polyglot.routes x JOIN pg_catalog.pg_foreign_server s ON s.oid = x.server_oid
            WHERE s.srvname <> x.server_name ORDER BY x.id LOOP
    RAISE WARNING 'pg_polyglot route % (% to server %) has server "%", renamed under 1.0',
      r.id, r.source_relid, r.server_name, r.srvname
      USING HINT = 'If this database went through pg_upgrade at version 1.0, check that the route''s server is right; else unsync the table and sync it again.';
  END LOOP;
END
$$;
UPDATE polyglot.routes r
   SET server_name = s.srvname, server_cluster = polyglot._this_cluster()
  FROM pg_catalog.pg_foreign_server s
 WHERE s.oid = r.server_oid AND polyglot._server_store(s.srvname) = r.store;

-- A route whose server OID names no server of its store: of a 1.0
-- database that pg_upgrade copied, or whose server was dropped.  Version
-- 1.0 recorded no cluster, so both find a server of their name and store,
-- if there is one: this update is the administrator's own act (the README
-- says to update before pg_upgrade).  The others keep failing for want of
-- a server.  (A restored route not yet taken back is left to
-- polyglot._reattach_restored().)
UPDATE polyglot.routes r SET server_cluster = 0
 WHERE r.server_cluster IS NULL
   AND EXISTS (SELECT FROM polyglot.route_state st WHERE st.route_id = r.id);
SELECT polyglot._rebind_servers();

-- The functions that record the cluster (as pg_polyglot--1.1.sql defines them)
CREATE OR REPLACE FUNCTION polyglot._reattach_restored()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  srv oid;
  n int := 0;
BEGIN
  FOR r IN SELECT x.* FROM polyglot.routes x
            WHERE NOT EXISTS (SELECT FROM polyglot.route_state s WHERE s.route_id = x.id)
              AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = x.source_relid
                                                     AND t.tgname = 'polyglot_sync_' || x.id)
            ORDER BY x.id FOR UPDATE OF x LOOP
    SELECT s.oid INTO srv FROM pg_foreign_server s WHERE s.srvname = r.server_name;
    IF srv IS NOT NULL AND polyglot._server_store(r.server_name) IS DISTINCT FROM r.store THEN
      srv := NULL;
    END IF;
    IF srv IS NULL THEN
      -- the route is taken back all the same, and fails for want of a server
      RAISE WARNING 'pg_polyglot route % (% to server %) was restored without its server',
        r.id, r.source_relid, r.server_name
        USING HINT = 'Create the server, then unsync and sync the table again.';
    END IF;
    PERFORM polyglot._create_capture_triggers(r.id);
    UPDATE polyglot.routes x
       SET server_oid = coalesce(srv, 0), server_cluster = polyglot._this_cluster(),
           source_name = format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE x.id = r.id AND c.oid = r.source_relid;
    INSERT INTO polyglot.route_state (route_id) VALUES (r.id);
    PERFORM polyglot._start_backfill(r.id);
    RAISE LOG 'pg_polyglot route % (% to server %) was restored: its rows are sent again',
      r.id, r.source_relid, r.server_name;
    n := n + 1;
  END LOOP;
  IF n > 0 THEN
    PERFORM polyglot._wake();
  END IF;
  RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION polyglot._sync(source regclass, server name, options jsonb,
                               backfill boolean, route_owner oid)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel record;
  keys name[];
  attnums int2[];
  srv record;
  store text;
  opts jsonb;
  route_id int;
BEGIN
  PERFORM polyglot._require_worker();

  SELECT c.oid, c.relkind, c.relname, n.nspname, c.relpersistence, c.relforcerowsecurity
    INTO rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = source;
  IF rel.relkind IS DISTINCT FROM 'r' THEN
    RAISE EXCEPTION '"%" is not a table', source::text
      USING ERRCODE = 'wrong_object_type',
            DETAIL = 'Only ordinary tables can be synced.';
  END IF;
  IF rel.relpersistence = 't' THEN
    RAISE EXCEPTION 'cannot sync temporary table "%"', source::text
      USING ERRCODE = 'wrong_object_type';
  END IF;
  -- the worker reads rows as the table's owner: policies forced on the
  -- owner would hide rows, which the stores would then lose
  IF rel.relforcerowsecurity THEN
    RAISE EXCEPTION 'cannot sync table "%" with FORCE ROW LEVEL SECURITY', source::text
      USING ERRCODE = 'feature_not_supported',
            DETAIL = 'The worker reads the rows as the table''s owner, whom forced policies would filter.',
            HINT = 'ALTER TABLE ... NO FORCE ROW LEVEL SECURITY, then sync.';
  END IF;

  -- the key: primary key, else the replica identity index
  SELECT array_agg(a.attname ORDER BY k.ord), array_agg(a.attnum ORDER BY k.ord)
    INTO keys, attnums
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
   WHERE i.indrelid = source
     AND i.indexrelid = (SELECT x.indexrelid FROM pg_index x
                          WHERE x.indrelid = source AND (x.indisprimary OR x.indisreplident)
                          ORDER BY x.indisprimary DESC LIMIT 1);
  IF keys IS NULL THEN
    RAISE EXCEPTION 'table "%" has no primary key', source::text
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Add a primary key, or set REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns.';
  END IF;

  SELECT s.oid, s.srvname INTO srv FROM pg_foreign_server s WHERE s.srvname = server;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'server "%" does not exist', server USING ERRCODE = 'undefined_object';
  END IF;
  store := polyglot._server_store(server);

  opts := polyglot._route_options(source, server, keys, coalesce(options, '{}'));

  -- one sync() at a time checks its target against the others'
  LOCK TABLE polyglot.routes IN SHARE ROW EXCLUSIVE MODE;
  BEGIN
    INSERT INTO polyglot.routes (source_relid, source_name, server_oid, server_name, store,
                                 options, key_columns, owner, owner_mapping, server_cluster)
    VALUES (source, format('%I.%I', rel.nspname, rel.relname), srv.oid, srv.srvname, store,
            opts, keys, route_owner,
            EXISTS (SELECT FROM pg_user_mapping m
                     WHERE m.umuser = route_owner AND m.umserver = srv.oid),
            polyglot._this_cluster())
    RETURNING id INTO route_id;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'table "%" is already synced to server "%"', source::text, server
      USING ERRCODE = 'duplicate_object',
            HINT = 'Use polyglot.unsync() first to change the route.';
  END;
  PERFORM polyglot._check_target_overlap(route_id);
  INSERT INTO polyglot.route_state (route_id) VALUES (route_id);

  EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s '
                 'FOR EACH ROW EXECUTE FUNCTION polyglot._capture(%s)',
                 'polyglot_sync_' || route_id, source,
                 array_to_string(route_id::text || attnums::text[], ', '));
  EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture_truncate(%s)',
                 'polyglot_sync_' || route_id || '_truncate', source,
                 array_to_string(route_id::text || attnums::text[], ', '));

  IF backfill THEN
    PERFORM polyglot._start_backfill(route_id);
  END IF;

  PERFORM polyglot._wake();
  RETURN route_id;
END
$$;
