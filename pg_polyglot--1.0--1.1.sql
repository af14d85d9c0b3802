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

-- A route has a name, unique in the database (named below, once the
-- routes know their servers' names); a table may have several routes to
-- one server, each of its own name.
ALTER TABLE polyglot.routes
  DROP CONSTRAINT routes_source_relid_server_oid_key,
  ADD COLUMN name text;

-- The system identifier of this cluster: a route's server_oid is valid in
-- the cluster its server_cluster names.  pg_upgrade creates a new cluster
-- (initdb: another identifier) and gives foreign servers new OIDs; a
-- physical copy (base backup, promoted standby) keeps both.
CREATE FUNCTION polyglot._this_cluster()
RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT c.system_identifier FROM pg_catalog.pg_control_system() c)::pg_catalog.numeric;

-- The store of a pg_polyglot server ('redis', 'mongo', 'elastic'), NULL
-- for no server or a server of another wrapper.
CREATE FUNCTION polyglot._store_of(server oid)
RETURNS text
AS 'MODULE_PATHNAME', 'polyglot_store_of_sql'
LANGUAGE C STRICT STABLE;

-- Gives each route of ids that has a server OID (not 0: not found before) the
-- server its server_name names among the servers of its store.  One
-- statement for all, under a deferred constraint: pg_upgrade and a restore
-- give servers new OIDs, possibly those two routes had in the other order.
-- A server already bound to a route of the same table outside ids stays
-- that route's; of several routes of ids of one table naming one server,
-- the newest gets it.  A route that finds no server gets OID 0: it never
-- keeps an OID that may now name another server.  warn: a WARNING for each
-- of those.  Only the routes whose OID changes are written (and logged).
-- Returns how many routes found another server OID.
CREATE FUNCTION polyglot._rebind_by_name(ids int[], warn boolean)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN
    WITH found AS (
      SELECT x.id, x.source_relid, x.server_name, x.store, x.server_oid AS old_oid,
             (SELECT s.oid FROM pg_foreign_server s
               WHERE s.srvname = x.server_name AND polyglot._store_of(s.oid) = x.store) AS new_oid
        FROM polyglot.routes x
       WHERE x.id = ANY (ids) AND x.server_oid <> 0)
    UPDATE polyglot.routes x SET server_oid = coalesce(f.new_oid, 0)
      FROM found f
     WHERE x.id = f.id AND x.server_oid <> coalesce(f.new_oid, 0)
    RETURNING f.id, f.source_relid, f.server_name, f.store, f.old_oid, f.new_oid
  LOOP
    IF r.new_oid IS NOT NULL THEN
      RAISE LOG 'pg_polyglot route % (% to server %) found its server again by name: OID % is now %',
        r.id, r.source_relid, r.server_name, r.old_oid, r.new_oid;
      n := n + 1;
    ELSIF warn THEN
      RAISE WARNING 'pg_polyglot route % (% to server %) has no server',
        r.id, r.source_relid, r.server_name
        USING DETAIL = format('No %s server is named %s here.', r.store, r.server_name),
              HINT = 'Create the server, then unsync and sync the table again.';
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- The routes whose server OID was recorded in another cluster: copied by
-- pg_upgrade, which carried their servers over by name (its schema dump)
-- and gave them new OIDs.  They find their servers again by name
-- (polyglot._rebind_by_name()) and record this cluster; one whose server is
-- not found gets server OID 0 and fails for want of a server.  The worker
-- calls this in its first round after pg_upgrade, before anyone could
-- create a server: the only moment a server's name may stand for its
-- identity (DROP SERVER drops its routes: a route never outlives its
-- server to be given another one of the same name).
-- Returns how many routes found another server OID.
CREATE FUNCTION polyglot._rebind_servers()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  here numeric := polyglot._this_cluster();
  ids int[];
  n int;
BEGIN
  LOCK TABLE polyglot.routes IN SHARE ROW EXCLUSIVE MODE;
  SELECT array_agg(x.id) INTO ids FROM polyglot.routes x WHERE x.server_cluster <> here;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  n := polyglot._rebind_by_name(ids, true);
  UPDATE polyglot.routes x SET server_cluster = here WHERE x.id = ANY (ids);
  RETURN n;
END
$$;

REVOKE ALL ON FUNCTION polyglot._this_cluster(), polyglot._store_of(oid),
  polyglot._rebind_by_name(int[], boolean), polyglot._rebind_servers() FROM PUBLIC;

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
 WHERE s.oid = r.server_oid AND polyglot._store_of(s.oid) = r.store;

-- 1.0 kept a route whose server was dropped, with the dropped server's
-- OID; a route of the same table to a server made again under that name
-- may have replaced it.  Such a route stays without a server (OID 0), as
-- does any but the newest of several of them: finding their server again
-- by name below would make two routes of one target.
UPDATE polyglot.routes r SET server_oid = 0
 WHERE r.server_cluster IS NULL AND r.server_oid <> 0
   AND EXISTS (SELECT FROM polyglot.routes o
                WHERE o.source_relid = r.source_relid AND o.server_name = r.server_name
                  AND o.id <> r.id AND (o.server_cluster IS NOT NULL OR o.id > r.id));

-- The routes' names: the default of each (1.0 had no other), and when
-- two routes would share it, the default followed by _<id> after the first.
-- The default name of a route of a table to a server: <table>@<server>
-- (<schema>.<table>@<server> outside schema public).
CREATE FUNCTION polyglot._default_route_name(source regclass, server name)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT CASE WHEN n.nspname = 'public' THEN c.relname::text
              ELSE n.nspname || '.' || c.relname END || '@' || server
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = source;
END;

-- A route inserted without a name (by the restore of a dump of version
-- 1.0, whose routes had none) takes the default one, or, when that is
-- taken, the default followed by _<id>.
CREATE FUNCTION polyglot._name_route()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NEW.name IS NULL THEN
    NEW.name := coalesce(polyglot._default_route_name(NEW.source_relid, NEW.server_name),
                         NEW.source_name || '@' || NEW.server_name);
    IF EXISTS (SELECT FROM polyglot.routes x WHERE x.name = NEW.name AND x.id <> NEW.id) THEN
      NEW.name := NEW.name || '_' || NEW.id;
    END IF;
  END IF;
  RETURN NEW;
END
$$;
DO $$
DECLARE
  r record;
  n text;
BEGIN
  -- the routes with a server first: a route kept without one (above) gets
  -- the suffix, not the route that replaced it
  FOR r IN SELECT x.id, x.source_relid, x.source_name, x.server_name
             FROM polyglot.routes x ORDER BY x.server_oid = 0, x.id LOOP
    n := coalesce(polyglot._default_route_name(r.source_relid, r.server_name),
                  r.source_name || '@' || r.server_name);
    IF EXISTS (SELECT FROM polyglot.routes x WHERE x.name = n) THEN
      n := n || '_' || r.id;
    END IF;
    UPDATE polyglot.routes x SET name = n WHERE x.id = r.id;
  END LOOP;
END
$$;
ALTER TABLE polyglot.routes
  ALTER COLUMN name SET NOT NULL,
  ADD CONSTRAINT routes_name UNIQUE (name);
CREATE TRIGGER routes_name BEFORE INSERT ON polyglot.routes
  FOR EACH ROW WHEN (NEW.name IS NULL) EXECUTE FUNCTION polyglot._name_route();

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
  ids int[];
  n int := 0;
BEGIN
  SELECT array_agg(x.id) INTO ids FROM polyglot.routes x
   WHERE NOT EXISTS (SELECT FROM polyglot.route_state s WHERE s.route_id = x.id);
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  -- every restored route at once, those whose triggers are not there yet
  -- too: their dumped OIDs may be those the others get
  PERFORM polyglot._rebind_by_name(ids, false);
  FOR r IN SELECT x.* FROM polyglot.routes x
            WHERE x.id = ANY (ids)
              AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = x.source_relid
                                                     AND t.tgname = 'polyglot_sync_' || x.id)
            ORDER BY x.id FOR UPDATE OF x LOOP
    IF r.server_oid = 0 THEN
      -- the route is taken back all the same, and fails for want of a server
      RAISE WARNING 'pg_polyglot route % (% to server %) was restored without its server',
        r.id, r.source_relid, r.server_name
        USING HINT = 'Create the server, then unsync and sync the table again.';
    END IF;
    PERFORM polyglot._create_capture_triggers(r.id);
    UPDATE polyglot.routes x
       SET server_cluster = polyglot._this_cluster(),
           source_name = format('%I.%I', n.nspname, c.relname),
           -- a reindex under way at the dump is not: the route writes to its index only
           options = x.options - 'reindex' - 'reindex_cancelled'
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE x.id = r.id AND c.oid = r.source_relid;
    INSERT INTO polyglot.route_state (route_id) VALUES (r.id);
    IF r.server_oid <> 0 THEN
      PERFORM polyglot._start_backfill(r.id);
    END IF;
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
  route_name text;
  violated text;
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
  -- the name is the route's, not an option of its store
  route_name := coalesce(opts->>'name', polyglot._default_route_name(source, srv.srvname));
  opts := opts - 'name';

  -- one sync() at a time checks its target against the others'
  LOCK TABLE polyglot.routes IN SHARE ROW EXCLUSIVE MODE;
  -- without a name, a second route of the table to the server is taken for
  -- a mistake, whatever the first one's name (the table or the server may
  -- have been renamed since)
  IF NOT coalesce(options, '{}') ? 'name'
     AND EXISTS (SELECT FROM polyglot.routes x WHERE x.source_relid = source AND x.server_oid = srv.oid) THEN
    RAISE EXCEPTION 'table "%" is already synced to server "%"', source::text, server
      USING ERRCODE = 'duplicate_object',
            HINT = 'Use polyglot.unsync() first to change the route, or give another route of the table a "name" of its own.';
  END IF;
  BEGIN
    INSERT INTO polyglot.routes (source_relid, source_name, server_oid, server_name, store,
                                 options, key_columns, owner, owner_mapping, server_cluster, name)
    VALUES (source, format('%I.%I', rel.nspname, rel.relname), srv.oid, srv.srvname, store,
            opts, keys, route_owner,
            EXISTS (SELECT FROM pg_user_mapping m
                     WHERE m.umuser = route_owner AND m.umserver = srv.oid),
            polyglot._this_cluster(), route_name)
    RETURNING id INTO route_id;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
    IF violated IS DISTINCT FROM 'routes_name' THEN
      RAISE;
    END IF;
    RAISE EXCEPTION 'route "%" already exists', route_name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Give the route another "name".';
  END;
  PERFORM polyglot._check_target_overlap(route_id);
  INSERT INTO polyglot.route_state (route_id) VALUES (route_id);

  PERFORM polyglot._create_capture_triggers(route_id);

  IF backfill THEN
    PERFORM polyglot._start_backfill(route_id);
  END IF;

  PERFORM polyglot._wake();
  RETURN route_id;
END
$$;

-- DROP SERVER drops the server's routes; polyglot._route() takes a route
-- with a server before one whose server was not found again.
CREATE OR REPLACE FUNCTION polyglot._route(source regclass, server name)
RETURNS int
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rid int;
  n int;
  names text;
BEGIN
  SELECT count(*), min(r.id), string_agg(quote_literal(r.name), ', ' ORDER BY r.name)
    INTO n, rid, names
    FROM polyglot.routes r
   WHERE r.source_relid = source AND r.server_name = server AND r.server_oid <> 0;
  IF n > 1 THEN
    RAISE EXCEPTION 'table "%" is synced to server "%" by % routes', source::text, server, n
      USING ERRCODE = 'cardinality_violation',
            DETAIL = 'The routes are ' || names || '.',
            HINT = 'Name the route: polyglot.route(''<name>'') is its id, and the functions that take a route take its name.';
  END IF;
  IF rid IS NULL THEN
    -- a route whose server was not found again (OID 0) keeps the server's
    -- name; the newest of them
    SELECT r.id INTO rid FROM polyglot.routes r
     WHERE r.source_relid = source AND r.server_name = server
     ORDER BY r.id DESC LIMIT 1;
  END IF;
  IF rid IS NULL THEN
    RAISE EXCEPTION 'table "%" is not synced to server "%"', source::text, server
      USING ERRCODE = 'undefined_object';
  END IF;
  RETURN rid;
END
$$;

CREATE OR REPLACE FUNCTION polyglot._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- a table's owner drops it; the routes table is not theirs
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  obj record;
  r record;
BEGIN
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() d
             WHERE d.classid = 'pg_catalog.pg_class'::regclass LOOP
    FOR r IN SELECT * FROM polyglot.routes x
             WHERE x.source_relid = obj.objid
               AND (obj.objsubid = 0 OR obj.address_names[3] = ANY (x.key_columns)) LOOP
      IF obj.objsubid <> 0 THEN
        PERFORM polyglot._drop_capture_triggers(r.id, obj.objid::regclass);
        RAISE WARNING 'pg_polyglot route % (% to server %) stopped: key column "%" was dropped',
          r.id, r.source_name, r.server_name, obj.address_names[3];
      END IF;
      PERFORM polyglot._outbox_drop(r.id);
      DELETE FROM polyglot.routes x WHERE x.id = r.id;
    END LOOP;
  END LOOP;
  -- A capture trigger dropped with something it depends on (a column, a
  -- function, a type or a schema its WHEN clause uses, dropped with
  -- CASCADE), not by a DROP TRIGGER of its own nor with its table: the
  -- route would capture nothing, and stops, with its other triggers.
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() d
             WHERE d.classid = 'pg_catalog.pg_trigger'::regclass AND NOT d.original AND d.normal
               AND d.address_names[3] ~ '^polyglot_sync_[0-9]+(_update|_delete)?$' LOOP
    FOR r IN SELECT x.* FROM polyglot.routes x JOIN pg_class c ON c.oid = x.source_relid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = obj.address_names[1] AND c.relname = obj.address_names[2]
                AND obj.address_names[3] ~ ('^polyglot_sync_' || x.id || '(_update|_delete)?$') LOOP
      PERFORM polyglot._drop_capture_triggers(r.id, r.source_relid);
      PERFORM polyglot._outbox_drop(r.id);
      DELETE FROM polyglot.routes x WHERE x.id = r.id;
      RAISE WARNING 'pg_polyglot route % (% to server %) stopped: its capture trigger % was dropped with an object it depends on',
        r.id, r.source_name, r.server_name, obj.address_names[3]
        USING HINT = 'Sync the table again.';
    END LOOP;
  END LOOP;
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() d
             WHERE d.classid = 'pg_catalog.pg_foreign_server'::regclass LOOP
    FOR r IN SELECT * FROM polyglot.routes x
              WHERE x.server_oid = obj.objid AND x.server_cluster = polyglot._this_cluster() LOOP
      IF EXISTS (SELECT FROM pg_class c WHERE c.oid = r.source_relid) THEN
        PERFORM polyglot._drop_capture_triggers(r.id, r.source_relid::regclass);
      END IF;
      PERFORM polyglot._outbox_drop(r.id);
      DELETE FROM polyglot.routes x WHERE x.id = r.id;
      RAISE WARNING 'pg_polyglot route % (% to server %) was dropped with its server',
        r.id, r.source_name, r.server_name;
    END LOOP;
  END LOOP;
  -- A table or column that a route's document uses ("include", "embed"),
  -- dropped: the document no longer builds, and the route stops, as when
  -- a key column is dropped.
  FOR r IN SELECT x.* FROM polyglot.routes x JOIN pg_class c ON c.oid = x.source_relid
            WHERE (x.options ? 'include' OR x.options ? 'embed')
              AND (-- a table of its documents (its triggers went with it)
                   x.id::text IN (SELECT substring(d.address_names[3] FROM '^polyglot_sync_([0-9]+)_r[0-9]+$')
                              FROM pg_event_trigger_dropped_objects() d
                             WHERE d.classid = 'pg_catalog.pg_trigger'::regclass
                               AND d.address_names[3] ~ '^polyglot_sync_[0-9]+_r[0-9]+$')
                   -- a column of its table or of a table of its documents
                   OR EXISTS (SELECT FROM pg_event_trigger_dropped_objects() d
                               WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid <> 0
                                 AND (d.objid = x.source_relid
                                      OR d.objid IN (SELECT t.tgrelid FROM pg_trigger t
                                                      WHERE t.tgname ~ ('^polyglot_sync_' || x.id || '_r[0-9]+$')))))
            ORDER BY x.id LOOP
    BEGIN
      PERFORM polyglot._check_document(r.source_relid::regclass, r.options);
    EXCEPTION WHEN undefined_table OR undefined_column OR undefined_function OR undefined_object
                   OR invalid_schema_name OR invalid_parameter_value OR feature_not_supported THEN
      PERFORM polyglot._drop_capture_triggers(r.id, r.source_relid);
      PERFORM polyglot._outbox_drop(r.id);
      DELETE FROM polyglot.routes x WHERE x.id = r.id;
      RAISE WARNING 'pg_polyglot route % (% to server %) stopped: its documents no longer build',
        r.id, r.source_name, r.server_name
        USING DETAIL = SQLERRM, HINT = 'Sync the table again with the relations that remain.';
    END;
  END LOOP;
END
$$;

-- Route options "where" (a row filter) and "replicated" (changes applied
-- by logical replication are captured too): a route's capture triggers are
-- made and dropped in one place, the backfill reads only the rows of the
-- filter, and ALTER TABLE may not break a filter.
CREATE FUNCTION polyglot._capture_related()
RETURNS trigger
AS 'MODULE_PATHNAME', 'polyglot_capture_related'
LANGUAGE C;
COMMENT ON FUNCTION polyglot._capture_related() IS
  'pg_polyglot capture trigger of a table in a route''s documents (include, embed): records the link values of changed rows, or a TRUNCATE';

CREATE FUNCTION polyglot._where_sql(source regclass, filter text, alias text)
RETURNS text
AS 'MODULE_PATHNAME', 'polyglot_where_sql'
LANGUAGE C STABLE;

CREATE FUNCTION polyglot._drop_capture_triggers(route int, source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  name name;
  r record;
BEGIN
  FOR name IN SELECT t.tgname FROM pg_trigger t
               WHERE t.tgrelid = source
                 AND t.tgname = ANY (ARRAY['polyglot_sync_' || route, 'polyglot_sync_' || route || '_update',
                                           'polyglot_sync_' || route || '_delete',
                                           'polyglot_sync_' || route || '_truncate'])
               ORDER BY t.tgname LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', name, source);
  END LOOP;
  -- the triggers on the tables of the route's document
  FOR r IN SELECT t.tgrelid::regclass AS rel, t.tgname FROM pg_trigger t
            WHERE t.tgname ~ ('^polyglot_sync_' || route || '_r[0-9]+(_truncate)?$')
            ORDER BY t.tgname LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', r.tgname, r.rel);
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION polyglot._create_capture_triggers(route int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  attnums int2[];
  args text;
  filter text;
  name text;
  rel record;
BEGIN
  SELECT * INTO r FROM polyglot.routes x WHERE x.id = route;
  SELECT array_agg(a.attnum ORDER BY k.ord) INTO attnums
    FROM unnest(r.key_columns) WITH ORDINALITY AS k(name, ord)
    JOIN pg_attribute a ON a.attrelid = r.source_relid AND a.attname = k.name
                       AND a.attnum > 0 AND NOT a.attisdropped;
  IF coalesce(array_length(attnums, 1), 0) <> array_length(r.key_columns, 1) THEN
    RAISE EXCEPTION 'key columns % of route % are missing in %', r.key_columns, route, r.source_relid
      USING ERRCODE = 'undefined_column';
  END IF;
  PERFORM polyglot._drop_capture_triggers(route, r.source_relid);
  args := array_to_string(route::text || attnums::text[], ', ');
  filter := r.options->>'where';
  IF filter IS NULL THEN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION polyglot._capture(%s)',
                   'polyglot_sync_' || route, r.source_relid, args);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture_truncate(%s)',
                   'polyglot_sync_' || route || '_truncate', r.source_relid, args);
  ELSE
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s FOR EACH ROW WHEN (%s) '
                   'EXECUTE FUNCTION polyglot._capture(%s)',
                   'polyglot_sync_' || route, r.source_relid,
                   polyglot._where_sql(r.source_relid, filter, 'new'), args);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s FOR EACH ROW WHEN ((%s) OR (%s)) '
                   'EXECUTE FUNCTION polyglot._capture(%s)',
                   'polyglot_sync_' || route || '_update', r.source_relid,
                   polyglot._where_sql(r.source_relid, filter, 'old'),
                   polyglot._where_sql(r.source_relid, filter, 'new'), args);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s FOR EACH ROW WHEN (%s) '
                   'EXECUTE FUNCTION polyglot._capture(%s)',
                   'polyglot_sync_' || route || '_delete', r.source_relid,
                   polyglot._where_sql(r.source_relid, filter, 'old'), args);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture_truncate(%s, %L)',
                   'polyglot_sync_' || route || '_truncate', r.source_relid, args,
                   'where:' || filter);
  END IF;
  -- each table of the document ("include", "embed", nested): a trigger
  -- records the link values of its changed rows (polyglot._capture_related())
  FOR rel IN SELECT x.* FROM jsonb_to_recordset(polyglot._route_relations(r.options, r.source_relid, r.key_columns))
                          AS x(relation int, "table" text, attnums int2[], direct boolean)
              ORDER BY x.relation LOOP
    args := array_to_string(ARRAY[route::text, rel.relation::text,
                                  CASE WHEN rel.direct THEN '0' ELSE '1' END] || rel.attnums::text[], ', ');
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION polyglot._capture_related(%s)',
                   'polyglot_sync_' || route || '_r' || rel.relation, rel."table", args);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION polyglot._capture_related(%s)',
                   'polyglot_sync_' || route || '_r' || rel.relation || '_truncate', rel."table", args);
  END LOOP;
  IF (r.options->'replicated') = 'true'::jsonb THEN
    FOR rel IN SELECT t.tgrelid::regclass AS tbl, t.tgname FROM pg_trigger t
                WHERE (t.tgrelid = r.source_relid
                       AND t.tgname = ANY (ARRAY['polyglot_sync_' || route, 'polyglot_sync_' || route || '_update',
                                                 'polyglot_sync_' || route || '_delete',
                                                 'polyglot_sync_' || route || '_truncate']))
                   OR t.tgname ~ ('^polyglot_sync_' || route || '_r[0-9]+(_truncate)?$')
                ORDER BY t.tgname LOOP
      EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', rel.tbl, rel.tgname);
    END LOOP;
  END IF;
END
$$;

DROP FUNCTION polyglot._backfill_keys(regclass, name[], text[], int);
CREATE FUNCTION polyglot._backfill_keys(source regclass, key_columns name[], after text[], chunk int,
                                        filter text DEFAULT NULL)
RETURNS text[]
AS 'MODULE_PATHNAME', 'polyglot_backfill_keys'
LANGUAGE C VOLATILE;

CREATE OR REPLACE FUNCTION polyglot._backfill_step(route int, chunk int DEFAULT 10000)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  st record;
  r record;
  ks text[];
  n bigint;
  last_key text[];
BEGIN
  -- (as polyglot._fanout_step(): its table first without waiting, then
  -- the route, for which an unsync waits)
  BEGIN
    PERFORM polyglot._lock_for_step(x.source_relid, '{}') FROM polyglot.routes x WHERE x.id = route;
  EXCEPTION WHEN lock_not_available OR undefined_table THEN
    RETURN NULL;
  END;
  PERFORM FROM polyglot.routes x WHERE x.id = route FOR KEY SHARE;
  SELECT * INTO st FROM polyglot.route_state s WHERE s.route_id = route FOR UPDATE;
  IF NOT FOUND OR st.backfill_started_at IS NULL OR st.backfill_finished_at IS NOT NULL THEN
    RETURN false;
  END IF;
  -- bounded: the next chunk waits until the workers have delivered most
  -- of the last (NULL: the worker looks again soon)
  -- (events that wait to be retried do not count: the worker would look
  -- again every few milliseconds until they are due)
  IF (SELECT count(*) FROM (SELECT FROM polyglot.outbox o
                             WHERE o.route_id = route AND o.slot >= 0 AND o.op = 'B'
                               AND (o.retry_at IS NULL OR o.retry_at <= now())
                             LIMIT 3 * polyglot._nslots()) w) >= 3 * polyglot._nslots() THEN
    RETURN NULL;
  END IF;
  SELECT * INTO r FROM polyglot.routes x WHERE x.id = route;
  ks := polyglot._backfill_keys(r.source_relid::regclass, r.key_columns, st.backfill_after, chunk,
                                r.options->>'where');
  n := coalesce(array_length(ks, 1), 0);
  IF n > 0 THEN
    last_key := ARRAY(SELECT unnest(ks[n:n][:]));
    PERFORM polyglot._outbox_append(route, 'B', ks);
    -- every worker may have keys in the chunk
    PERFORM polyglot._wake();
  END IF;
  UPDATE polyglot.route_state s
     SET backfill_after = coalesce(last_key, s.backfill_after),
         backfill_rows = s.backfill_rows + n,
         backfill_finished_at = CASE WHEN n < chunk THEN now() END
   WHERE s.route_id = route;
  RETURN n >= chunk;
END
$$;

CREATE OR REPLACE FUNCTION polyglot._on_alter_table()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- a table's owner alters it; the routes table is not theirs
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  col name;
BEGIN
  FOR r IN SELECT x.id, x.source_name, x.server_name, x.key_columns, c.oid AS relid,
                  c.relforcerowsecurity, x.options->>'where' AS filter, x.options,
                  x.source_relid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                                      WHERE d.classid = 'pg_catalog.pg_class'::regclass) AS altered
             FROM polyglot.routes x JOIN pg_class c ON c.oid = x.source_relid
            WHERE x.source_relid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                                      WHERE d.classid = 'pg_catalog.pg_class'::regclass)
               -- a table of the route's documents: it has the route's triggers
               OR x.id::text IN (SELECT substring(t.tgname FROM '^polyglot_sync_([0-9]+)_r[0-9]+$')
                             FROM pg_trigger t
                            WHERE t.tgname ~ '^polyglot_sync_[0-9]+_r[0-9]+$'
                              AND t.tgrelid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                                                 WHERE d.classid = 'pg_catalog.pg_class'::regclass))
            ORDER BY x.id LOOP
    -- the tables of a document: renaming one, or a column it uses, is refused
    IF r.options ? 'include' OR r.options ? 'embed' THEN
      BEGIN
        PERFORM polyglot._check_document(r.relid::regclass, r.options);
      EXCEPTION WHEN undefined_table OR undefined_column OR undefined_function OR undefined_object
                     OR invalid_schema_name OR duplicate_column OR syntax_error
                     OR datatype_mismatch OR undefined_parameter THEN
        RAISE EXCEPTION 'cannot alter table: the documents of pg_polyglot route % (%) would no longer build',
          r.id, r.source_name
          USING ERRCODE = 'feature_not_supported',
                DETAIL = SQLERRM,
                HINT = 'Drop the route with polyglot.unsync() first, and sync again after the change.';
      END;
      -- a type changed: a related table's trigger may now need the other
      -- kind (its values the documents' keys, or a fan-out): made again
      IF EXISTS (SELECT FROM jsonb_to_recordset(polyglot._route_relations(r.options, r.relid, r.key_columns))
                               AS x(relation int, "table" text, attnums int2[], direct boolean)
                   JOIN pg_trigger t ON t.tgname = 'polyglot_sync_' || r.id || '_r' || x.relation
                  WHERE (string_to_array(encode(t.tgargs, 'escape'), '\000'))[3]
                        IS DISTINCT FROM CASE WHEN x.direct THEN '0' ELSE '1' END) THEN
        PERFORM polyglot._create_capture_triggers(r.id);
      END IF;
    END IF;
    CONTINUE WHEN NOT r.altered;
    IF r.relforcerowsecurity THEN
      RAISE EXCEPTION 'cannot force row level security on table "%", synced by pg_polyglot route %',
        r.source_name, r.id
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'The worker reads the rows as the table''s owner, whom forced policies would filter.',
              HINT = 'Drop the route with polyglot.unsync() first.';
    END IF;
    SELECT k INTO col FROM unnest(r.key_columns) k
     WHERE NOT EXISTS (SELECT FROM pg_attribute a
                        WHERE a.attrelid = r.relid AND a.attname = k AND NOT a.attisdropped)
     LIMIT 1;
    IF col IS NOT NULL THEN
      RAISE EXCEPTION 'cannot rename key column "%" of table "%", synced by pg_polyglot route %',
        col, r.source_name, r.id
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'Routes know their key columns by name.',
              HINT = 'Drop the route with polyglot.unsync() first, and sync again after the rename.';
    END IF;
    -- the filter names columns too (a type change of one is refused by
    -- PostgreSQL: the capture triggers' WHEN uses it)
    IF r.filter IS NOT NULL THEN
      BEGIN
        PERFORM polyglot._where_sql(r.relid, r.filter, NULL);
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'cannot alter table "%": the filter of pg_polyglot route % would no longer apply',
          r.source_name, r.id
          USING ERRCODE = 'feature_not_supported',
                DETAIL = format('The filter is %s; checking it now: %s', r.filter, SQLERRM),
                HINT = 'Drop the route with polyglot.unsync() first, and sync again after the change.';
      END;
    END IF;
  END LOOP;
END
$$;


-- Documents from related tables (route options "include" and "embed"): the outbox
-- holds fan-out rows too (negative slots), with the position each reached.
ALTER TABLE polyglot.outbox ADD COLUMN fanout_after text[];
COMMENT ON TABLE polyglot.outbox IS
  'pg_polyglot transactional outbox: keys of pending changes per route, up to a thousand per row (op: I insert, U update, D delete, M mixed, T truncate, B backfill, R a document of a fan-out); fan-out rows in negative slots (F related rows changed, A related table truncated)';

-- Locks a step's tables (ACCESS SHARE, in OID order) without waiting:
-- lock_not_available when a DROP or ALTER holds one.
CREATE FUNCTION polyglot._lock_for_step(source oid, tables regclass[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t oid;
BEGIN
  FOR t IN SELECT DISTINCT u FROM unnest(source || tables::oid[]) u ORDER BY u LOOP
    IF EXISTS (SELECT FROM pg_class c WHERE c.oid = t) THEN
      EXECUTE format('LOCK TABLE %s IN ACCESS SHARE MODE NOWAIT', t::regclass);
    END IF;
  END LOOP;
END
$$;

-- The fan-out of changed related rows: their capture triggers record
-- their link values as fan-out rows of the route, in its negative slots
-- (-n for relation n); the worker expands them into the keys of the
-- documents that contain those rows, a chunk at a time in key order, as
-- 'R' events, read as the route's table's owner (polyglot._fanout_keys()).
CREATE FUNCTION polyglot._fanout_keys(source regclass, key_columns name[], after text[], chunk int,
                                      filter text, options jsonb, relation int, vals text[])
RETURNS text[]
AS 'MODULE_PATHNAME', 'polyglot_fanout_keys'
LANGUAGE C VOLATILE;

-- The relations of a route's document and the link columns their capture
-- triggers record: [{"relation", "table", "attnums", "direct"}]
CREATE FUNCTION polyglot._route_relations(options jsonb, source regclass, key_columns name[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'polyglot_route_relations'
LANGUAGE C STABLE STRICT;

-- One step of a route's fan-out, run by the worker in its own transaction:
-- up to chunk document keys from the oldest fan-out rows, each row deleted
-- once expanded whole, else keeping its position (fanout_after); waits
-- while earlier chunks are pending (returns NULL).  Returns true when it
-- has more to do at once.
-- Errors when a route's document no longer builds from its tables
CREATE FUNCTION polyglot._check_document(source regclass, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_check_document'
LANGUAGE C STABLE STRICT;

CREATE FUNCTION polyglot._fanout_step(route int, chunk int DEFAULT 10000)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  f record;
  ks text[];
  n int;
  done int := 0;
  keep bigint;
  oldest timestamptz;
BEGIN
  SELECT * INTO r FROM polyglot.routes x WHERE x.id = route;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  -- the tables first, without waiting: a DROP or ALTER that holds one
  -- would otherwise wait for this step's lock on the route below while
  -- this step waited for it (NULL: looked at again soon)
  BEGIN
    PERFORM polyglot._lock_for_step(r.source_relid,
                                    ARRAY(SELECT (x->>'table')::regclass
                                            FROM jsonb_array_elements(polyglot._route_relations(
                                                   r.options, r.source_relid, r.key_columns)) x));
  EXCEPTION WHEN lock_not_available OR undefined_table OR invalid_schema_name THEN
    RETURN NULL;
  END;
  -- (FOR KEY SHARE: an unsync waits for this step's chunk, and empties
  -- the outbox after it)
  PERFORM FROM polyglot.routes x WHERE x.id = route FOR KEY SHARE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  -- bounded: the next chunk waits while the workers still have the last
  -- chunk's worth of its events to deliver (NULL: the worker looks again
  -- soon): about two chunks at most in the outbox; only the fan-out's own
  -- events ('R') count, and not those that wait to be retried
  IF (SELECT count(*) FROM (SELECT FROM polyglot.outbox o
                             WHERE o.route_id = route AND o.slot >= 0 AND o.op = 'R'
                               AND (o.retry_at IS NULL OR o.retry_at <= now())
                             LIMIT 10 * polyglot._nslots()) w) >= 10 * polyglot._nslots() THEN
    RETURN NULL;
  END IF;
  -- TRUNCATEs of related tables not yet expanded: one expansion of every
  -- document, starting now, covers them all; the row kept takes the oldest
  -- enqueue time of those it stands for (polyglot.await_delivery() waits
  -- for a change while a row of it is enqueued no later than the change)
  SELECT min(a.id), min(a.enqueued_at) INTO keep, oldest FROM polyglot.outbox a
   WHERE a.route_id = route AND a.slot < 0 AND a.op = 'A' AND a.fanout_after IS NULL;
  IF keep IS NOT NULL THEN
    DELETE FROM polyglot.outbox o
     WHERE o.route_id = route AND o.slot < 0 AND o.op = 'A' AND o.fanout_after IS NULL
       AND o.id > keep;
    UPDATE polyglot.outbox o SET enqueued_at = oldest
     WHERE o.route_id = route AND o.slot < 0 AND o.id = keep AND o.enqueued_at > oldest;
  END IF;
  FOR f IN SELECT o.id, o.slot, o.op, o.key, o.fanout_after FROM polyglot.outbox o
            WHERE o.route_id = route AND o.slot < 0
            ORDER BY o.id LIMIT 1000 LOOP
    ks := polyglot._fanout_keys(r.source_relid::regclass, r.key_columns, f.fanout_after, chunk - done,
                                r.options->>'where', r.options, -f.slot,
                                CASE WHEN f.op = 'F' THEN f.key END);
    n := coalesce(array_length(ks, 1), 0);
    IF n > 0 THEN
      PERFORM polyglot._outbox_append(route, 'R', ks);
    END IF;
    IF n < chunk - done THEN
      DELETE FROM polyglot.outbox o WHERE o.route_id = route AND o.slot = f.slot AND o.id = f.id;
    ELSE
      UPDATE polyglot.outbox o SET fanout_after = ARRAY(SELECT unnest(ks[n:n][:]))
       WHERE o.route_id = route AND o.slot = f.slot AND o.id = f.id;
    END IF;
    done := done + n;
    EXIT WHEN done >= chunk;
  END LOOP;
  IF done > 0 THEN
    -- every worker may have keys in the chunk
    PERFORM polyglot._wake();
  END IF;
  RETURN done >= chunk
         OR EXISTS (SELECT FROM polyglot.outbox o WHERE o.route_id = route AND o.slot < 0);
END
$$;

REVOKE ALL ON FUNCTION polyglot._fanout_keys(regclass, name[], text[], int, text, jsonb, int, text[]),
  polyglot._route_relations(jsonb, regclass, name[]), polyglot._check_document(regclass, jsonb),
  polyglot._fanout_step(int, int), polyglot._capture_related(),
  polyglot._lock_for_step(oid, regclass[]) FROM PUBLIC;
-- end of the documents section

-- Route names: several routes of one table to one server, each named
-- (routes.name, unique; the constraint and the default names are made at
-- the top of this script); unsync by route, and every function that takes
-- a table and a server takes a route's name.
CREATE FUNCTION polyglot.route(name text)
RETURNS int
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rid int;
BEGIN
  SELECT r.id INTO rid FROM polyglot.routes r WHERE r.name = route.name;
  -- a number is a route's id (no route is named so): an id passed as an
  -- untyped literal or parameter calls the functions that take a name
  IF rid IS NULL AND route.name ~ '^[0-9]{1,9}$' THEN
    SELECT r.id INTO rid FROM polyglot.routes r WHERE r.id = route.name::int;
  END IF;
  IF rid IS NULL THEN
    RAISE EXCEPTION 'route "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  RETURN rid;
END
$$;
COMMENT ON FUNCTION polyglot.route(text) IS 'The id of the route of a name';

-- Read-your-writes (src/core/fence.c)
CREATE FUNCTION polyglot.await_delivery(timeout interval DEFAULT '30s')
RETURNS boolean
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'polyglot_await_delivery';
COMMENT ON FUNCTION polyglot.await_delivery(interval) IS
  'Waits until every change this session has committed is delivered to every route it went to: true, or false once the timeout passes';

CREATE FUNCTION polyglot._unsync_route(route int, source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- first: a backfill or fan-out step under way (it holds the route FOR
  -- KEY SHARE) commits its chunk before the outbox is emptied below
  PERFORM FROM polyglot.routes r WHERE r.id = route FOR UPDATE;
  PERFORM polyglot._drop_capture_triggers(route, source);
  PERFORM polyglot._outbox_drop(route);
  DELETE FROM polyglot.routes r WHERE r.id = route;
END
$$;

DROP FUNCTION polyglot._unsync(regclass, name);
CREATE FUNCTION polyglot._unsync(source regclass, server name)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT polyglot._unsync_route(polyglot._route(source, server), source);
END;
CREATE FUNCTION polyglot._route_source(route_name text)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT r.source_relid FROM polyglot.routes r WHERE r.id = polyglot.route(route_name);
END;
CREATE FUNCTION polyglot._unsync_named(route_name text, source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rid int;
BEGIN
  SELECT r.id INTO rid FROM polyglot.routes r
   WHERE r.name = route_name AND r.source_relid = source FOR UPDATE;
  IF rid IS NULL THEN
    RAISE EXCEPTION 'route "%" does not exist', route_name USING ERRCODE = 'undefined_object';
  END IF;
  PERFORM polyglot._unsync_route(rid, source);
END
$$;
CREATE FUNCTION polyglot.unsync(route text)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_unsync_name'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION polyglot.unsync(text) IS 'polyglot.unsync() of a route by its name';

-- by the route's name (verify takes a name alone: verify(text, boolean)
-- would make a call verify('table', 'server') ambiguous; to repair,
-- verify(polyglot.route('name'), true))
CREATE FUNCTION polyglot.pause(route text) RETURNS void
LANGUAGE sql BEGIN ATOMIC SELECT polyglot.pause(polyglot.route(route)); END;
CREATE FUNCTION polyglot.resume(route text) RETURNS void
LANGUAGE sql BEGIN ATOMIC SELECT polyglot.resume(polyglot.route(route)); END;
CREATE FUNCTION polyglot.retry(route text) RETURNS bigint
LANGUAGE sql BEGIN ATOMIC SELECT polyglot.retry(polyglot.route(route)); END;
CREATE FUNCTION polyglot.backfill(route text) RETURNS bigint
LANGUAGE sql BEGIN ATOMIC SELECT polyglot.backfill(polyglot.route(route)); END;
CREATE FUNCTION polyglot.verify(route text)
RETURNS TABLE (kind text, key text[], store_key text)
LANGUAGE sql BEGIN ATOMIC SELECT * FROM polyglot.verify(polyglot.route(route), false); END;
COMMENT ON FUNCTION polyglot.pause(text) IS 'polyglot.pause() by route name';
COMMENT ON FUNCTION polyglot.resume(text) IS 'polyglot.resume() by route name';
COMMENT ON FUNCTION polyglot.retry(text) IS 'polyglot.retry() by route name';
COMMENT ON FUNCTION polyglot.backfill(text) IS 'polyglot.backfill() by route name';
COMMENT ON FUNCTION polyglot.verify(text) IS 'polyglot.verify() by route name, without repair';

CREATE OR REPLACE VIEW polyglot.status WITH (security_barrier) AS
SELECT r.id AS route,
       r.source_name AS source,
       r.server_name AS server,
       r.store,
       -- the keys in the outbox, and those a running backfill has still to
       -- enqueue (at least one while it runs: pending = 0 means caught up)
       coalesce(p.pending, 0) +
         CASE WHEN s.backfill_started_at IS NOT NULL AND s.backfill_finished_at IS NULL
              THEN greatest(coalesce(s.backfill_total, 0) - s.backfill_rows, 1) ELSE 0 END
         AS pending,
       now() - p.oldest AS oldest_pending_age,
       coalesce(s.delivered, 0) AS delivered,
       coalesce(s.failed, 0) AS failed,
       coalesce(s.retries, 0) AS retries,
       coalesce(s.stale, 0) AS stale,
       (SELECT count(*) FROM polyglot.dead_letters d WHERE d.route_id = r.id) AS dead_letters,
       s.last_error,
       s.last_error_at,
       s.last_delivery_at,
       CASE WHEN r.paused THEN 'paused'
            WHEN s.backoff_until > now() THEN 'backing off'
            ELSE 'active' END AS state,
       s.backoff_until,
       CASE WHEN s.backfill_started_at IS NULL THEN NULL
            WHEN s.backfill_finished_at IS NULL THEN 'running'
            ELSE 'done' END AS backfill,
       s.backfill_rows,
       s.backfill_total,
       s.backfill_started_at,
       s.backfill_finished_at,
       r.name
FROM polyglot.routes r
LEFT JOIN polyglot.route_state s ON s.route_id = r.id
LEFT JOIN LATERAL (SELECT sum(o.nkeys) AS pending, min(o.enqueued_at) AS oldest
                   FROM polyglot.outbox o WHERE o.route_id = r.id) p ON true
-- a role sees its own routes; monitoring roles (pg_read_all_stats, which
-- pg_monitor includes) and superusers see every route
WHERE pg_catalog.pg_has_role(r.owner, 'USAGE')
   OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE');
COMMENT ON VIEW polyglot.status IS
  'pg_polyglot: one row per route: pending events (with the rows a running backfill has yet to enqueue) and the age of the oldest, delivered/failed/retried/stale counts, dead letters, last error, state (active, backing off, paused), backfill progress';
COMMENT ON TABLE polyglot.routes IS
  'pg_polyglot sync routes: one per route of a table to a server, by a name unique in the database; managed by polyglot.sync() and polyglot.unsync()';

REVOKE ALL ON FUNCTION polyglot._where_sql(regclass, text, text),
  polyglot._drop_capture_triggers(int, regclass),
  polyglot._backfill_keys(regclass, name[], text[], int, text),
  polyglot._unsync_route(int, regclass), polyglot._unsync(regclass, name),
  polyglot._route_source(text), polyglot._unsync_named(text, regclass),
  polyglot._default_route_name(regclass, name), polyglot._name_route(),
  polyglot.route(text), polyglot.unsync(text), polyglot.pause(text), polyglot.resume(text),
  polyglot.retry(text), polyglot.backfill(text), polyglot.verify(text),
  polyglot.await_delivery(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  polyglot.unsync(text), polyglot.pause(text), polyglot.resume(text), polyglot.retry(text),
  polyglot.backfill(text), polyglot.verify(text),
  polyglot.route(text), polyglot.await_delivery(interval)
  TO PUBLIC;

-- Stream routes (Redis mode "stream") write their stream and the hash
-- beside it: no other route's keys may be either.
-- The Redis keys a route writes, for polyglot._check_target_overlap():
-- its key template, or for a stream route its stream and the hash beside
-- it (src/redis/redis_option.c, polyglot_redis_stream_seen_key: the
-- stream's name and ":seen", with the name as the hash tag when it has
-- none).
CREATE FUNCTION polyglot._redis_route_keys(options jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN options->>'mode' = 'stream' THEN
           ARRAY[options->>'stream',
                 CASE WHEN options->>'stream' ~ '^[^{]*[{][^}]+[}]'
                      THEN (options->>'stream') || ':seen'
                      ELSE '{' || (options->>'stream') || '}:seen' END]
         ELSE ARRAY[options->>'key'] END
$$;

-- Is candidate a name polyglot.reindex() gives the indices of a route of
-- index name: <name>__<n>?
CREATE FUNCTION polyglot._reindex_name_of(candidate text, name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT starts_with(candidate, name || '__')
     AND substr(candidate, length(name) + 3) ~ '^[1-9][0-9]{0,8}$'
$$;

CREATE OR REPLACE FUNCTION polyglot._check_target_overlap(route int)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  source regclass;
  server oid;
  kind text;
  keys name[];
  opts jsonb;
  endpoint text;
  mine text[];
  theirs text[];
  mine_keys text[];
  their_keys text[];
  t text;
  u text;
  r record;
  db text;
BEGIN
  SELECT x.source_relid, x.server_oid, x.store, x.key_columns, x.options
    INTO source, server, kind, keys, opts
    FROM polyglot.routes x WHERE x.id = route;
  endpoint := polyglot._server_endpoint(server);
  -- HTTP routes post events, which receivers tell apart: no key to share
  IF kind = 'http' THEN
    RETURN;
  END IF;
  IF kind = 'redis' THEN
    IF opts->>'mode' = 'publish' THEN
      RETURN;
    END IF;
    mine_keys := polyglot._redis_route_keys(opts);
  END IF;
  IF kind = 'mongo' THEN
    db := coalesce(opts->>'database',
                   (SELECT substr(o, length('database=') + 1)
                      FROM pg_foreign_server s, unnest(s.srvoptions) AS o
                     WHERE s.oid = server AND o LIKE 'database=%'));
  END IF;
  FOR r IN SELECT x.* FROM polyglot.routes x
            WHERE x.store = kind AND x.id <> route
              AND polyglot._server_endpoint(x.server_oid) = endpoint
            ORDER BY x.id LOOP
    IF kind = 'redis' THEN
      CONTINUE WHEN r.options->>'mode' = 'publish'
                 OR (r.options->>'mode' = 'invalidate' AND opts->>'mode' = 'invalidate')
                 -- stream routes may share a stream: each appends its own entries
                 OR (r.options->>'mode' = 'stream' AND opts->>'mode' = 'stream'
                     AND r.options->>'stream' = opts->>'stream');
      their_keys := polyglot._redis_route_keys(r.options);
      FOREACH t IN ARRAY mine_keys LOOP
        -- a stream route's keys are names, a key template's placeholders name key columns
        mine := polyglot._key_pattern(source, CASE WHEN opts->>'mode' = 'stream' THEN '{}' ELSE keys END, t);
        FOREACH u IN ARRAY their_keys LOOP
          theirs := polyglot._key_pattern(r.source_relid::regclass,
                                          CASE WHEN r.options->>'mode' = 'stream' THEN '{}' ELSE r.key_columns END, u);
          IF polyglot._key_patterns_overlap(mine, theirs) AND opts->>'mode' <> 'stream'
             AND r.options->>'mode' <> 'stream' THEN
            RAISE EXCEPTION 'key template "%" can produce keys of route % (server "%", key template "%")',
              t, r.id, r.server_name, u
              USING ERRCODE = 'duplicate_object',
                    DETAIL = 'Two routes writing one Redis key would overwrite each other''s values, and verify(repair) could not tell them apart.',
                    HINT = 'Give the route a "key" template whose fixed part no other route''s keys can have, such as a prefix of its own.';
          ELSIF polyglot._key_patterns_overlap(mine, theirs) THEN
            RAISE EXCEPTION '%', CASE
                WHEN opts->>'mode' <> 'stream' THEN
                  format('key template "%s" can produce Redis key "%s" of route %s (server "%s")',
                         t, u, r.id, r.server_name)
                WHEN r.options->>'mode' <> 'stream' THEN
                  format('Redis key "%s" can be a key of route %s (server "%s", key template "%s")',
                         t, r.id, r.server_name, u)
                ELSE format('Redis key "%s" is a key of route %s (server "%s")', t, r.id, r.server_name) END
              USING ERRCODE = 'duplicate_object',
                    DETAIL = 'A stream route writes its stream and the hash beside it (the stream''s name and ":seen"); another route''s writes there would break it, or its entries theirs.',
                    HINT = 'Give the stream a name no other route''s keys can have.';
          END IF;
        END LOOP;
      END LOOP;
    ELSIF kind = 'mongo' THEN
      IF r.options->>'collection' = opts->>'collection'
         AND coalesce(r.options->>'database',
                      (SELECT substr(o, length('database=') + 1)
                         FROM pg_foreign_server s, unnest(s.srvoptions) AS o
                        WHERE s.oid = r.server_oid AND o LIKE 'database=%')) = db THEN
        RAISE EXCEPTION 'collection "%.%" is already the target of route % (server "%")',
          db, opts->>'collection', r.id, r.server_name
          USING ERRCODE = 'duplicate_object',
                DETAIL = 'Two routes writing one collection would overwrite each other''s documents.',
                HINT = 'Give the route a "collection" option of its own.';
      END IF;
    ELSIF r.options->>'index' = opts->>'index' THEN
      RAISE EXCEPTION 'index "%" is already the target of route % (server "%")',
        opts->>'index', r.id, r.server_name
        USING ERRCODE = 'duplicate_object',
              DETAIL = 'Two routes writing one index would overwrite each other''s documents.',
              HINT = 'Give the route an "index" option of its own.';
    -- polyglot.reindex() of a route makes indices <index>__<n>
    ELSIF polyglot._reindex_name_of(opts->>'index', r.options->>'index')
          OR polyglot._reindex_name_of(r.options->>'index', opts->>'index') THEN
      RAISE EXCEPTION 'index "%" and index "%" of route % (server "%") are one index and its reindex',
        opts->>'index', r.options->>'index', r.id, r.server_name
        USING ERRCODE = 'duplicate_object',
              DETAIL = 'polyglot.reindex() of a route of index "x" makes indices "x__1", "x__2" and so on, and puts "x" on them as an alias.',
              HINT = 'Give the route an "index" option of its own.';
    END IF;
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION polyglot._redis_route_keys(jsonb) FROM PUBLIC;

-- A fourth store: polyglot_http, webhooks that sync routes post change
-- events to.

CREATE FUNCTION polyglot._http_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'polyglot_http_handler'
LANGUAGE C STRICT;

CREATE FUNCTION polyglot._http_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'polyglot_http_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER polyglot_http
  HANDLER polyglot._http_handler
  VALIDATOR polyglot._http_validator;

COMMENT ON FOREIGN DATA WRAPPER polyglot_http IS
  'pg_polyglot: webhooks (any HTTP endpoint) as sync targets, sent batches of change events';

ALTER TABLE polyglot.routes DROP CONSTRAINT routes_store_check;
ALTER TABLE polyglot.routes ADD CONSTRAINT routes_store_check
  CHECK (store IN ('redis', 'mongo', 'elastic', 'http'));

REVOKE ALL ON FUNCTION polyglot._http_handler(), polyglot._http_validator(text[], oid) FROM PUBLIC;

-- Rebuilding the index of an Elasticsearch/OpenSearch route behind an
-- alias (src/elastic/elastic_reindex.c has the steps)
CREATE FUNCTION polyglot._reindex(route int, step text, args jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'polyglot_reindex_step'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION polyglot._reindex(int, text, jsonb) IS
  'One step of polyglot.reindex(): cancel, drop, begin, fence, backfill, delivered or swap';

CREATE FUNCTION polyglot._verify_reindex(route int, repair boolean, index text)
RETURNS TABLE (kind text, key text[], store_key text)
AS 'MODULE_PATHNAME', 'polyglot_verify'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION polyglot._verify_reindex(int, boolean, text) IS
  'polyglot.verify() of the index a reindex is filling';

-- The milliseconds left until deadline, as an int (at least 1)
CREATE FUNCTION polyglot._ms_until(deadline timestamptz)
RETURNS int
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT least(greatest(1, date_part('epoch', deadline - clock_timestamp()) * 1000),
               2000000000)::int
$$;

-- Procedures, to commit between their steps: CALL them outside a
-- transaction block.  No SET clause (a procedure with one cannot commit):
-- every name is schema-qualified.  The steps check the caller's right to
-- operate the route, and lock its row while they change it.

-- Stops a reindex (args: the cancel step's): the route writes to its own
-- index only from then on; once the workers have read that, the index the
-- reindex was filling is deleted.
CREATE PROCEDURE polyglot._reindex_stop(route int, args jsonb, deadline timestamptz)
LANGUAGE plpgsql
AS $$
DECLARE
  r jsonb;
BEGIN
  r := polyglot._reindex(route, 'cancel', args);
  IF r OPERATOR(pg_catalog.->>) 'index' IS NULL THEN
    RETURN;
  END IF;
  COMMIT;
  -- the workers write to the index no more once they have read the route again
  PERFORM polyglot._reindex(route, 'fence',
                            pg_catalog.jsonb_build_object('timeout_ms', polyglot._ms_until(deadline)));
  r := polyglot._reindex(route, 'drop', '{}') OPERATOR(pg_catalog.||) r;
  COMMIT;
  RAISE NOTICE 'reindex of route % cancelled%', route,
    CASE WHEN (r OPERATOR(pg_catalog.->>) 'deleted')::boolean
         THEN pg_catalog.format(': index "%s" deleted', r OPERATOR(pg_catalog.->>) 'index') ELSE '' END;
END
$$;
COMMENT ON PROCEDURE polyglot._reindex_stop(int, jsonb, timestamptz) IS
  'The steps of polyglot.reindex_cancel()';

CREATE PROCEDURE polyglot.reindex_cancel(route int, timeout interval DEFAULT '1 min')
LANGUAGE plpgsql
AS $$
BEGIN
  IF route IS NULL OR timeout IS NULL THEN
    RAISE EXCEPTION 'polyglot.reindex_cancel() needs a route and a timeout'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  COMMIT;	-- fails in a transaction block, before anything is done
  CALL polyglot._reindex_stop(route, '{"force": true}',
                              pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) timeout);
END
$$;
COMMENT ON PROCEDURE polyglot.reindex_cancel(int, interval) IS
  'Stops a reindex of a route (one that failed, was interrupted, or runs in another session): the route writes to its own index only, and the index the reindex was filling is deleted';
CREATE PROCEDURE polyglot.reindex_cancel(route text, timeout interval DEFAULT '1 min')
LANGUAGE plpgsql
AS $$
BEGIN
  CALL polyglot.reindex_cancel(polyglot.route(route), timeout);
END
$$;
COMMENT ON PROCEDURE polyglot.reindex_cancel(text, interval) IS
  'polyglot.reindex_cancel() of a route by its name';

CREATE PROCEDURE polyglot.reindex(route int, mappings jsonb DEFAULT NULL,
                                  settings jsonb DEFAULT NULL,
                                  timeout interval DEFAULT '1 hour')
LANGUAGE plpgsql
AS $$
DECLARE
  deadline timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) timeout;
  started jsonb;
  this jsonb;
  r jsonb;
  upto bigint;
  drift bigint := 0;
  pass int;
  failure text;
BEGIN
  IF route IS NULL OR timeout IS NULL THEN
    RAISE EXCEPTION 'polyglot.reindex() needs a route and a timeout'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  COMMIT;	-- fails in a transaction block, before anything is done

  -- 0. a reindex that failed or was interrupted: cancelled first (one
  -- that another session runs: an error)
  CALL polyglot._reindex_stop(route, '{"force": false}', deadline);

  -- 1. the new index, which the worker writes to as well from its next round
  started := polyglot._reindex(route, 'begin',
                               pg_catalog.jsonb_build_object('mappings', mappings, 'settings', settings));
  this := pg_catalog.jsonb_build_object('index', started OPERATOR(pg_catalog.->) 'index');
  RAISE NOTICE 'reindex of route %: building index "%" for "%"', route,
    started OPERATOR(pg_catalog.->>) 'index', started OPERATOR(pg_catalog.->>) 'alias';
  COMMIT;

  -- From here on, an error cancels the reindex (its index is deleted)
  -- before it is raised.  Each step is in a block of its own: no commit
  -- may happen inside one.
  BEGIN
    PERFORM polyglot._reindex(route, 'fence',
                              pg_catalog.jsonb_build_object('timeout_ms', polyglot._ms_until(deadline)));
    -- 2. every row again: to both indices
    PERFORM polyglot._reindex(route, 'backfill', this);
  EXCEPTION WHEN OTHERS THEN
    failure := SQLERRM;
  END;
  COMMIT;

  -- 3. the backfill delivered; then the new index compared with the table
  -- and its differences enqueued (keys changed meanwhile, as a rule), and
  -- delivered too, with no key the new index refused still pending.  Keys
  -- it refused again and again, or gave up (dead letters), stop it.
  FOR pass IN 1..2 LOOP
    EXIT WHEN failure IS NOT NULL;
    upto := NULL;
    LOOP
      BEGIN
        r := polyglot._reindex(route, 'delivered',
                               this OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('upto', upto));
      EXCEPTION WHEN OTHERS THEN
        failure := SQLERRM;
      END;
      EXIT WHEN failure IS NOT NULL;
      IF (r OPERATOR(pg_catalog.->>) 'dead_letters')::bigint OPERATOR(pg_catalog.>) 0
         OR (r OPERATOR(pg_catalog.->>) 'failing')::bigint OPERATOR(pg_catalog.>) 0 THEN
        failure := pg_catalog.format('index "%s" refuses %s keys of route %s: %s',
                                     started OPERATOR(pg_catalog.->>) 'index',
                                     (r OPERATOR(pg_catalog.->>) 'failing')::bigint
                                       OPERATOR(pg_catalog.+) (r OPERATOR(pg_catalog.->>) 'dead_letters')::bigint,
                                     route, coalesce(r OPERATOR(pg_catalog.->>) 'error', 'see polyglot.dead_letters'));
        EXIT;
      END IF;
      EXIT WHEN (r OPERATOR(pg_catalog.->>) 'done')::boolean
            AND (pass OPERATOR(pg_catalog.=) 1 OR (r OPERATOR(pg_catalog.->>) 'refused')::bigint OPERATOR(pg_catalog.=) 0);
      upto := (r OPERATOR(pg_catalog.->>) 'upto')::bigint;
      IF pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>) deadline THEN
        failure := pg_catalog.format('the reindex of route %s did not finish within %s', route, timeout);
        EXIT;
      END IF;
      COMMIT;
      PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
    EXIT WHEN failure IS NOT NULL OR pass OPERATOR(pg_catalog.=) 2;
    BEGIN
      SELECT pg_catalog.count(*) INTO drift
        FROM polyglot._verify_reindex(route, true, started OPERATOR(pg_catalog.->>) 'index');
    EXCEPTION WHEN OTHERS THEN
      failure := SQLERRM;
    END;
    COMMIT;
  END LOOP;

  -- 4. the name to the new index, in one request; the old index goes
  IF failure IS NULL THEN
    BEGIN
      r := polyglot._reindex(route, 'swap', this);
    EXCEPTION WHEN OTHERS THEN
      failure := SQLERRM;
    END;
  END IF;
  COMMIT;
  IF failure IS NOT NULL THEN
    -- (said first: should the cancel fail too, its error is the one raised)
    RAISE WARNING 'reindex of route % failed: %', route, failure;
    -- (this reindex only: another session may have cancelled it, and begun its own)
    CALL polyglot._reindex_stop(route, this OPERATOR(pg_catalog.||) '{"force": true}',
                                pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) '1 min'::interval);
    RAISE EXCEPTION '%', failure
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('The reindex is cancelled: index "%s" is deleted, and "%s" stands for the index it stood for.',
                                       started OPERATOR(pg_catalog.->>) 'index', started OPERATOR(pg_catalog.->>) 'alias'),
            HINT = 'New mappings that refuse rows are a common cause; see polyglot.status and polyglot.dead_letters.';
  END IF;
  RAISE NOTICE 'reindex of route %: "%" is index "%"%', route, r OPERATOR(pg_catalog.->>) 'alias',
    r OPERATOR(pg_catalog.->>) 'index',
    CASE WHEN r OPERATOR(pg_catalog.->>) 'dropped' IS NOT NULL
         THEN pg_catalog.format(', index "%s" deleted', r OPERATOR(pg_catalog.->>) 'dropped') ELSE '' END
    USING DETAIL = pg_catalog.format('%s keys differed after the backfill, and were sent again.', drift);
END
$$;
COMMENT ON PROCEDURE polyglot.reindex(int, jsonb, jsonb, interval) IS
  'Rebuilds the index of an Elasticsearch/OpenSearch route with new mappings and settings (by default its own) behind an alias of the index name: a new index filled while the old one serves, both kept current, verified, then swapped in one _aliases request; CALL outside a transaction block';

CREATE PROCEDURE polyglot.reindex(route text, mappings jsonb DEFAULT NULL,
                                  settings jsonb DEFAULT NULL,
                                  timeout interval DEFAULT '1 hour')
LANGUAGE plpgsql
AS $$
BEGIN
  CALL polyglot.reindex(polyglot.route(route), mappings, settings, timeout);
END
$$;
COMMENT ON PROCEDURE polyglot.reindex(text, jsonb, jsonb, interval) IS
  'polyglot.reindex() of a route by its name';

-- (they check the caller themselves, as polyglot.verify() does)
REVOKE ALL ON FUNCTION polyglot._reindex(int, text, jsonb),
  polyglot._verify_reindex(int, boolean, text), polyglot._ms_until(timestamptz),
  polyglot._reindex_name_of(text, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE polyglot._reindex_stop(int, jsonb, timestamptz),
  polyglot.reindex(int, jsonb, jsonb, interval),
  polyglot.reindex(text, jsonb, jsonb, interval),
  polyglot.reindex_cancel(int, interval), polyglot.reindex_cancel(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION polyglot._reindex(int, text, jsonb),
  polyglot._verify_reindex(int, boolean, text), polyglot._ms_until(timestamptz) TO PUBLIC;
GRANT EXECUTE ON PROCEDURE polyglot._reindex_stop(int, jsonb, timestamptz),
  polyglot.reindex(int, jsonb, jsonb, interval),
  polyglot.reindex(text, jsonb, jsonb, interval),
  polyglot.reindex_cancel(int, interval), polyglot.reindex_cancel(text, interval) TO PUBLIC;

-- The worker keeps the routes from round to round and reads them again when
-- they change: a change of the routes, or of the columns of their state that
-- the worker reads, sends a relcache invalidation of polyglot.routes at
-- commit (src/core/dispatch.c).  Row triggers, so that a statement that
-- changes nothing sends nothing; the worker's counters (delivered,
-- last_delivery_at...) send none.  ENABLE ALWAYS: they fire under
-- session_replication_role = replica too (the worker reads the routes every
-- round when they are missing or disabled).
CREATE FUNCTION polyglot._routes_changed()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'polyglot_routes_changed';
CREATE TRIGGER routes_changed AFTER INSERT OR DELETE ON polyglot.routes
  FOR EACH ROW EXECUTE FUNCTION polyglot._routes_changed();
CREATE TRIGGER routes_updated AFTER UPDATE ON polyglot.routes
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
  EXECUTE FUNCTION polyglot._routes_changed();
CREATE TRIGGER routes_truncated AFTER TRUNCATE ON polyglot.routes
  FOR EACH STATEMENT EXECUTE FUNCTION polyglot._routes_changed();
CREATE TRIGGER route_state_changed AFTER INSERT OR DELETE ON polyglot.route_state
  FOR EACH ROW EXECUTE FUNCTION polyglot._routes_changed();
CREATE TRIGGER route_state_updated AFTER UPDATE ON polyglot.route_state
  FOR EACH ROW WHEN (OLD.consecutive_failures IS DISTINCT FROM NEW.consecutive_failures
                     OR OLD.backoff_until IS DISTINCT FROM NEW.backoff_until
                     OR OLD.backfill_started_at IS DISTINCT FROM NEW.backfill_started_at
                     OR OLD.backfill_finished_at IS DISTINCT FROM NEW.backfill_finished_at)
  EXECUTE FUNCTION polyglot._routes_changed();
CREATE TRIGGER route_state_truncated AFTER TRUNCATE ON polyglot.route_state
  FOR EACH STATEMENT EXECUTE FUNCTION polyglot._routes_changed();
ALTER TABLE polyglot.routes ENABLE ALWAYS TRIGGER routes_changed,
  ENABLE ALWAYS TRIGGER routes_updated, ENABLE ALWAYS TRIGGER routes_truncated;
ALTER TABLE polyglot.route_state ENABLE ALWAYS TRIGGER route_state_changed,
  ENABLE ALWAYS TRIGGER route_state_updated, ENABLE ALWAYS TRIGGER route_state_truncated;
REVOKE ALL ON FUNCTION polyglot._routes_changed() FROM PUBLIC;
