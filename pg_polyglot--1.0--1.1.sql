/* pg_polyglot--1.0--1.1.sql */

\echo Use "ALTER EXTENSION pg_polyglot UPDATE TO '1.1'" to load this file. \quit

-- The changes of 1.1 to the SQL objects of 1.0.  pg_polyglot--1.1.sql
-- creates the same objects in a fresh database (test/t/020_extension_update.pl
-- compares the two).  The worker of a running server delivers throughout:
-- it reads only what both versions have, and its next round waits for this
-- transaction.

-- Taken first, so that a worker round never holds a lock this script waits for.
LOCK TABLE polyglot.routes IN ACCESS EXCLUSIVE MODE;

---------------------------------------------------------------------------
-- Routes name their server instead of keeping its OID.  pg_upgrade copies
-- polyglot.routes as it is but gives foreign servers other OIDs, so a
-- server OID stored there named no server after an upgrade; the worker
-- now looks the server up by name, and ALTER SERVER ... RENAME TO renames
-- it in the routes.
---------------------------------------------------------------------------

-- a server renamed under 1.0 kept its routes by OID: they take its name now
UPDATE polyglot.routes r SET server_name = s.srvname
  FROM pg_catalog.pg_foreign_server s
 WHERE s.oid = r.server_oid AND s.srvname <> r.server_name;

DO $$
DECLARE
  d record;
BEGIN
  -- one table synced twice to one server name: the server was dropped and
  -- created again, and the table synced again to the new one
  SELECT r.source_relid, r.server_name, array_agg(r.id ORDER BY r.id) AS ids INTO d
    FROM polyglot.routes r
   GROUP BY r.source_relid, r.server_name HAVING count(*) > 1
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'pg_polyglot routes % both sync table % to server "%"',
      d.ids, d.source_relid, d.server_name
      USING ERRCODE = 'unique_violation',
            DETAIL = 'Version 1.1 knows a route''s server by name: the route whose server was dropped cannot stay.',
            HINT = 'Delete the route whose server was dropped (DELETE FROM polyglot.routes WHERE id = ...), then update again.';
  END IF;
END
$$;

ALTER TABLE polyglot.routes DROP CONSTRAINT routes_source_relid_server_oid_key;
ALTER TABLE polyglot.routes DROP COLUMN server_oid;
ALTER TABLE polyglot.routes ADD UNIQUE (source_relid, server_name);

-- The functions that knew the server by OID (as pg_polyglot--1.1.sql defines them)
CREATE OR REPLACE FUNCTION polyglot._reattach_restored()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN SELECT x.* FROM polyglot.routes x
            WHERE NOT EXISTS (SELECT FROM polyglot.route_state s WHERE s.route_id = x.id)
              AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = x.source_relid
                                                     AND t.tgname = 'polyglot_sync_' || x.id)
            ORDER BY x.id FOR UPDATE OF x LOOP
    IF NOT EXISTS (SELECT FROM pg_foreign_server s WHERE s.srvname = r.server_name)
       OR polyglot._server_store(r.server_name) IS DISTINCT FROM r.store THEN
      -- the route is taken back all the same, and fails for want of a server
      RAISE WARNING 'pg_polyglot route % (% to server %) was restored without its server',
        r.id, r.source_relid, r.server_name
        USING HINT = 'Create the server, then unsync and sync the table again.';
    END IF;
    PERFORM polyglot._create_capture_triggers(r.id);
    UPDATE polyglot.routes x
       SET source_name = format('%I.%I', n.nspname, c.relname)
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
  r record;
  db text;
BEGIN
  SELECT x.source_relid, s.oid, x.store, x.key_columns, x.options
    INTO source, server, kind, keys, opts
    FROM polyglot.routes x JOIN pg_foreign_server s ON s.srvname = x.server_name
   WHERE x.id = route;
  endpoint := polyglot._server_endpoint(server);
  IF kind = 'redis' THEN
    IF opts->>'mode' = 'publish' THEN
      RETURN;
    END IF;
    mine := polyglot._key_pattern(source, keys, opts->>'key');
  END IF;
  IF kind = 'mongo' THEN
    db := coalesce(opts->>'database',
                   (SELECT substr(o, length('database=') + 1)
                      FROM pg_foreign_server s, unnest(s.srvoptions) AS o
                     WHERE s.oid = server AND o LIKE 'database=%'));
  END IF;
  FOR r IN SELECT x.*, s.oid AS server_oid
             FROM polyglot.routes x
             JOIN pg_foreign_server s ON s.srvname = x.server_name
             JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
            WHERE x.store = kind AND x.id <> route AND w.fdwname = 'polyglot_' || kind
            ORDER BY x.id LOOP
    CONTINUE WHEN polyglot._server_endpoint(r.server_oid) IS DISTINCT FROM endpoint;
    IF kind = 'redis' THEN
      CONTINUE WHEN r.options->>'mode' = 'publish'
                 OR (r.options->>'mode' = 'invalidate' AND opts->>'mode' = 'invalidate');
      theirs := polyglot._key_pattern(r.source_relid::regclass, r.key_columns, r.options->>'key');
      IF polyglot._key_patterns_overlap(mine, theirs) THEN
        RAISE EXCEPTION 'key template "%" can produce keys of route % (server "%", key template "%")',
          opts->>'key', r.id, r.server_name, r.options->>'key'
          USING ERRCODE = 'duplicate_object',
                DETAIL = 'Two routes writing one Redis key would overwrite each other''s values, and verify(repair) could not tell them apart.',
                HINT = 'Give the route a "key" template whose fixed part no other route''s keys can have, such as a prefix of its own.';
      END IF;
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
    END IF;
  END LOOP;
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
    INSERT INTO polyglot.routes (source_relid, source_name, server_name, store,
                                 options, key_columns, owner, owner_mapping)
    VALUES (source, format('%I.%I', rel.nspname, rel.relname), srv.srvname, store,
            opts, keys, route_owner,
            EXISTS (SELECT FROM pg_user_mapping m
                     WHERE m.umuser = route_owner AND m.umserver = srv.oid))
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
