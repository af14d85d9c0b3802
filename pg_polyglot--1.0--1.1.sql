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
           source_name = format('%I.%I', n.nspname, c.relname)
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
END
$$;

-- Route options "where" (a row filter) and "replicated" (changes applied
-- by logical replication are captured too): a route's capture triggers are
-- made and dropped in one place, the backfill reads only the rows of the
-- filter, and ALTER TABLE may not break a filter.
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
BEGIN
  FOR name IN SELECT t.tgname FROM pg_trigger t
               WHERE t.tgrelid = source
                 AND t.tgname = ANY (ARRAY['polyglot_sync_' || route, 'polyglot_sync_' || route || '_update',
                                           'polyglot_sync_' || route || '_delete',
                                           'polyglot_sync_' || route || '_truncate'])
               ORDER BY t.tgname LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', name, source);
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
  IF (r.options->'replicated') = 'true'::jsonb THEN
    FOR name IN SELECT t.tgname FROM pg_trigger t
                 WHERE t.tgrelid = r.source_relid
                   AND t.tgname = ANY (ARRAY['polyglot_sync_' || route, 'polyglot_sync_' || route || '_update',
                                             'polyglot_sync_' || route || '_delete',
                                             'polyglot_sync_' || route || '_truncate'])
                 ORDER BY t.tgname LOOP
      EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', r.source_relid, name);
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
  SELECT * INTO st FROM polyglot.route_state s WHERE s.route_id = route FOR UPDATE;
  IF NOT FOUND OR st.backfill_started_at IS NULL OR st.backfill_finished_at IS NOT NULL THEN
    RETURN false;
  END IF;
  -- bounded: the next chunk waits until the worker has delivered most of the last
  IF polyglot._outbox_rows(route, 'B', 3 * polyglot._nslots()) >= 3 * polyglot._nslots() THEN
    RETURN false;
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
                  c.relforcerowsecurity, x.options->>'where' AS filter
             FROM polyglot.routes x JOIN pg_class c ON c.oid = x.source_relid
            WHERE x.source_relid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                                      WHERE d.classid = 'pg_catalog.pg_class'::regclass)
            ORDER BY x.id LOOP
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

CREATE FUNCTION polyglot._unsync_route(route int, source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
  polyglot.retry(text), polyglot.backfill(text), polyglot.verify(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  polyglot.unsync(text), polyglot.pause(text), polyglot.resume(text), polyglot.retry(text),
  polyglot.backfill(text), polyglot.verify(text),
  polyglot.route(text)
  TO PUBLIC;
