/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *		One delivery round of a worker: load the routes, and for each route
 *		that is due, read a batch of events with the rows' current state,
 *		deliver it to the store, and acknowledge it.
 *
 * Only short transactions: the batch is read in one (events and rows in
 * the same snapshot), delivered with no transaction open, and acknowledged
 * in a second one that deletes exactly the events it read.  While a
 * backlog drains, a batch starts after the previous full batch's last id
 * (so acknowledged rows' index entries are not walked again); once a
 * batch is not full, the next starts from the first row again, and an
 * event whose id is lower than one already delivered (its transaction
 * committed later) is found then.  Delivery is state-based: a key's events coalesce into one write of
 * the row as it is now, or a delete when the row is gone, so replays and
 * reordering between batches cannot leave an older state behind.
 *
 * A failure of the whole batch (store unreachable, timeout, transient
 * errors such as LOADING) puts the route in exponential backoff with
 * jitter; other routes go on.  A failure of one key (WRONGTYPE...) counts
 * an attempt for that key's events, which are retried with their own
 * backoff and become dead letters after polyglot.max_attempts.  A batch
 * the store refuses as a whole for what it holds, or does not answer within
 * io_timeout while answering a ping, goes again in parts to find the keys
 * at fault.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/outbox.h"
#include "core/dispatch.h"
#include "common/store.h"

/* how long one route may keep the worker when it has a backlog */
#define POLYGLOT_ROUTE_SLICE_MS		500
/* how soon a backfill or fan-out step waiting for delivery looks again */
#define POLYGLOT_STEP_RECHECK_MS	20
/* batches of a route dropped in a row for invalidations that may concern it */
#define POLYGLOT_STALE_STREAK_MAX	3
/* relations invalidated while the routes are read, kept to compare with them */
#define POLYGLOT_LOADING_RELIDS		256
/* rounds in a row cut short because every route was stale, at most */
#define POLYGLOT_STALE_CUTS_MAX		50

/* first retry of a failed event or route, doubled per failure */
#define POLYGLOT_BACKOFF_BASE_MS	200

/* ---------------------------------------------------------------- helpers */

/* the plans of the statements every batch runs, kept for the worker's life */
static SPIPlanPtr state_plan = NULL;

PG_FUNCTION_INFO_V1(polyglot_routes_changed);

/*
 * lappend into a given memory context: results built inside a transaction
 * must outlive it.
 */
static List *
lappend_in(MemoryContext cxt, List *list, void *datum)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	list = lappend(list, datum);
	MemoryContextSwitchTo(old);
	return list;
}

/* ---------------------------------------------------------------- routes */

/*
 * Why a route's owner may no longer reach its server, or NULL: the worker
 * writes with the owner's rights, which sync() checked, and must stop when
 * they go.  USAGE on the server must still be the owner's, and a route
 * created with the owner's own user mapping does not fall back to the
 * PUBLIC one when that mapping is dropped.  Allocated in the current
 * memory context.
 */
static char *
route_access_error(PolyglotRoute *r)
{
	AclResult	aclresult;
	const char *role = GetUserNameFromId(r->owner, true);
	const PolyglotStoreInfo *store = polyglot_store_by_name(r->store);

	if (role == NULL)
		role = psprintf("%u", r->owner);	/* dropped since */

	/* the OID names a server of another wrapper (a 1.0 route after pg_upgrade) */
	if (store == NULL || polyglot_server_store_or_null(r->server) != store)
		return psprintf("server \"%s\" of route %d is not a %s server",
						r->server->servername, r->id, store ? store->label : r->store);

#if PG_VERSION_NUM >= 160000
	aclresult = object_aclcheck(ForeignServerRelationId, r->server_oid, r->owner, ACL_USAGE);
#else
	aclresult = pg_foreign_server_aclcheck(r->server_oid, r->owner, ACL_USAGE);
#endif
	if (aclresult != ACLCHECK_OK)
		return psprintf("role \"%s\", owner of route %d, no longer has USAGE on server \"%s\"",
						role, r->id, r->server->servername);
	if (r->owner_mapping &&
		!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(r->owner),
							   ObjectIdGetDatum(r->server_oid)))
		return psprintf("the user mapping of role \"%s\", owner of route %d, for server \"%s\" was dropped",
						role, r->id, r->server->servername);
	return NULL;
}

/*
 * Loads every route (route_id 0) or one, with its state, the columns to
 * deliver and the key column types, in one query, and their servers and
 * user mappings; in the current transaction, connected to SPI.  The result
 * lives in cxt.
 *
 * The query reads only what every served version of the SQL objects has
 * (served_versions below), so that it runs on a database not yet updated.
 */
List *
polyglot_load_routes(int32 route_id, MemoryContext cxt)
{
	List	   *routes = NIL;
	ListCell   *lc;
	uint64		i;
	int			rc;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(route_id)};

	rc = SPI_execute_with_args(
					 "SELECT r.id, r.source_relid, r.server_oid, r.store, r.options, "
					 "       r.key_columns::text[], r.owner, r.paused, "
					 "       coalesce(s.backoff_until, '-infinity'), "
					 "       coalesce(s.consecutive_failures, 0), "
					 "       c.oid IS NOT NULL, "
					 "       format('%I.%I', n.nspname, c.relname), c.relname, "
					 "       (SELECT array_agg(a.attname::text ORDER BY a.attnum) "
					 "        FROM pg_catalog.pg_attribute a "
					 "        WHERE a.attrelid = r.source_relid AND a.attnum > 0 AND NOT a.attisdropped "
					 "          AND (NOT r.options ? 'columns' OR r.options->'columns' ? a.attname) "
					 "          AND (NOT r.options ? 'exclude' OR NOT r.options->'exclude' ? a.attname)), "
					 "       (SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) "
					 "        FROM unnest(r.key_columns) WITH ORDINALITY AS k(name, ord) "
					 "        JOIN pg_catalog.pg_attribute a ON a.attrelid = r.source_relid "
					 "             AND a.attname = k.name AND NOT a.attisdropped), "
					 "       (SELECT array_agg(a.atttypid ORDER BY k.ord)::pg_catalog.text[] "
					 "        FROM unnest(r.key_columns) WITH ORDINALITY AS k(name, ord) "
					 "        JOIN pg_catalog.pg_attribute a ON a.attrelid = r.source_relid "
					 "             AND a.attname = k.name AND NOT a.attisdropped), "
					 "       s.backfill_started_at IS NOT NULL AND s.backfill_finished_at IS NULL, "
					 "       c.relowner, r.owner_mapping, s.route_id IS NULL, "
					 "       EXISTS (SELECT FROM polyglot.outbox o "
					 "               WHERE o.route_id = r.id AND o.slot < 0), "
					 "       r.created_at "
					 "FROM polyglot.routes r "
					 "LEFT JOIN polyglot.route_state s ON s.route_id = r.id "
					 "LEFT JOIN pg_catalog.pg_class c ON c.oid = r.source_relid "
					 "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					 "WHERE $1 = 0 OR r.id = $1 "
					 "ORDER BY r.id", 1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_polyglot: reading routes failed: %s", SPI_result_code_string(rc));

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		PolyglotRoute *r = MemoryContextAllocZero(cxt, sizeof(PolyglotRoute));
		bool		isnull;

		r->id = DatumGetInt32(spi_datum(tup, 1, &isnull));
		r->source_relid = DatumGetObjectId(spi_datum(tup, 2, &isnull));
		r->server_oid = DatumGetObjectId(spi_datum(tup, 3, &isnull));
		r->store = spi_text(tup, 4, cxt);
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			r->options = DatumGetJsonbPCopy(spi_datum(tup, 5, &isnull));
			MemoryContextSwitchTo(old);
		}
		r->key_columns = spi_text_array(tup, 6, cxt);
		r->owner = DatumGetObjectId(spi_datum(tup, 7, &isnull));
		r->paused = DatumGetBool(spi_datum(tup, 8, &isnull));
		r->backoff_until = DatumGetTimestampTz(spi_datum(tup, 9, &isnull));
		r->consecutive_failures = DatumGetInt32(spi_datum(tup, 10, &isnull));
		r->source_exists = DatumGetBool(spi_datum(tup, 11, &isnull));
		r->source_name = spi_text(tup, 12, cxt);
		r->table_name = spi_text(tup, 13, cxt);
		/* the columns each route delivers: all, or as options say */
		r->columns = spi_text_array(tup, 14, cxt);
		/* key column types, for the casts that find rows by key */
		r->key_types = spi_text_array(tup, 15, cxt);
		{
			List	   *typids = spi_text_array(tup, 16, cxt);
			ListCell   *tc;
			MemoryContext old = MemoryContextSwitchTo(cxt);

			foreach(tc, typids)
				r->key_typids = lappend_oid(r->key_typids, atooid((char *) lfirst(tc)));
			MemoryContextSwitchTo(old);
		}
		r->backfilling = DatumGetBool(spi_datum(tup, 17, &isnull)) && !isnull;
		r->source_owner = DatumGetObjectId(spi_datum(tup, 18, &isnull));
		if (isnull)
			r->source_owner = InvalidOid;
		r->owner_mapping = DatumGetBool(spi_datum(tup, 19, &isnull)) && !isnull;
		r->restored = DatumGetBool(spi_datum(tup, 20, &isnull));
		r->fanning_out = DatumGetBool(spi_datum(tup, 21, &isnull)) && !isnull;
		r->created_at = DatumGetTimestampTz(spi_datum(tup, 22, &isnull));
		/* a key column is gone: the route cannot be served */
		if (list_length(r->key_types) != list_length(r->key_columns))
			r->source_exists = false;
		/* the document's fields from related tables come after the columns */
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);
			List	   *fields = polyglot_document_field_names(r->options);

			r->nfields = list_length(fields);
			r->columns = list_concat(r->columns, fields);
			MemoryContextSwitchTo(old);
		}
		routes = lappend_in(cxt, routes, r);
	}

	/*
	 * The server and user mapping of each route, looked up here, in a
	 * transaction, so that sinks talk to their store with none open.
	 */
	foreach(lc, routes)
	{
		PolyglotRoute *r = (PolyglotRoute *) lfirst(lc);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		r->server = GetForeignServerExtended(r->server_oid, FSV_MISSING_OK);
		if (r->server)
			r->access_error = route_access_error(r);
		if (r->server && r->access_error == NULL)
			r->user = polyglot_find_user_mapping(r->owner, r->server_oid);
		MemoryContextSwitchTo(old);
	}
	return routes;
}

/*
 * The versions of the extension's SQL objects this library serves: the
 * control file's default_version and every release before it that ALTER
 * EXTENSION UPDATE brings to it.  After a new library is installed and the
 * server restarted, a database keeps the objects of its version until
 * ALTER EXTENSION pg_polyglot UPDATE: the worker delivers meanwhile, with
 * queries that read only what every version listed here has.  A version
 * not listed (objects newer than the library) is not touched: the worker
 * waits, and the events wait in the outbox.
 */
static const char *const served_versions[] = {"1.0", "1.1"};

/*
 * The index in served_versions of the extension's installed version, or -1
 * when the library does not serve it (logged once: the worker waits).  In a
 * transaction, connected to SPI.
 */
int
polyglot_served_version(void)
{
	static char reported[64] = "";
	char	   *version = NULL;
	int			i;

	spi_exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_polyglot'",
			 0, NULL, NULL, NULL, true, SPI_OK_SELECT, "read the extension's version");
	if (SPI_processed == 1)
		version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (version == NULL)
		return -1;
	for (i = 0; i < (int) lengthof(served_versions); i++)
		if (strcmp(version, served_versions[i]) == 0)
		{
			reported[0] = '\0';
			return i;
		}
	if (strcmp(reported, version) != 0)
	{
		ereport(WARNING,
				(errmsg("pg_polyglot worker of database \"%s\" waits: the extension's version %s is newer than the library",
						get_database_name(MyDatabaseId), version),
				 errdetail("The library serves versions %s to %s; events wait in the outbox.",
						   served_versions[0], served_versions[lengthof(served_versions) - 1]),
				 errhint("Install the pg_polyglot library of version %s and restart the server.",
						 version)));
		strlcpy(reported, version, sizeof(reported));
	}
	return -1;
}

/* A fresh snapshot for what the transaction reads next (READ COMMITTED) */
static void
fresh_snapshot(void)
{
	CommandCounterIncrement();
	PopActiveSnapshot();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* ---------------------------------------------------------------- the route cache */

/*
 * The routes, with their servers and user mappings, are kept from round to
 * round and read again only when something they were read from changed:
 * polyglot.routes and the state columns of polyglot.route_state that a
 * round reads (their triggers send a relcache invalidation of
 * polyglot.routes, polyglot._routes_changed()), a source table (relcache),
 * a server, user mapping, wrapper, role, membership or schema (syscache).
 * A route with documents ("include", "embed") also reads related tables:
 * any relation's invalidation but the outbox's and route_state's then
 * counts.  The worker's own bookkeeping (route_state's counters, the outbox)
 * sends none of these.  As a last resort, and for a database whose
 * extension objects predate the triggers (1.0), the routes are read again
 * at least every polyglot.poll_interval.
 *
 * An invalidation that comes during a round, once the round has its
 * routes, may be of a change that a batch read later in the round sees
 * (a column added, then a row of it updated): the batch's rows would be
 * read with the round's routes, from before the change.  So the callbacks
 * mark the routes an invalidation concerns (PolyglotRoute.stale: its source
 * table; every route for polyglot.routes, a syscache or a full reset:
 * routes_stale_count) or may concern (stale_maybe: any relation, for a
 * route with documents, whose related tables are not known here), and a
 * batch of a route marked since the routes were read is dropped unsent:
 * the route's turn ends, and a new round reads the routes again (see
 * routes_stale()).  The invalidations of a change committed before
 * the batch's snapshot are in by the time it is checked: taken in at the
 * start of the read's transaction or at its first lock (the outbox's),
 * which comes after the snapshot.  A change made in the same transaction
 * as the rows it changes is not always: a server's options, say, in the
 * moment between that transaction's commit and its invalidations.
 */
static MemoryContext routes_cxt = NULL;
static List *cached_routes = NIL;
static bool routes_valid = false;
static bool routes_any_documents = false;
static TimestampTz routes_loaded_at = 0;
static Oid	routes_relid = InvalidOid;
static Oid	quiet_relids[8];		/* outbox, route_state, dead_letters... */
static uint64 routes_inval_count = 0;	/* invalidations that may concern them */
static uint64 routes_stale_count = 0;	/* invalidations that concern them all */
static uint64 routes_stale_at_load = 0; /* routes_stale_count when they were read */
static Oid	loading_relids[POLYGLOT_LOADING_RELIDS];	/* while they are read */
static int	loading_nrelids = 0;
static int32 resume_route = 0;	/* where the next round starts, or 0 */
static int	stale_cuts = 0;		/* rounds cut short in a row */
static TimestampTz retry_due = 0;	/* earliest retry_at the worker wrote, or 0 */

static void
routes_relcache_callback(Datum arg, Oid relid)
{
	ListCell   *lc;
	int			i;

	for (i = 0; i < (int) lengthof(quiet_relids); i++)
		if (OidIsValid(relid) && relid == quiet_relids[i])
			return;
	/* a reload under way compares it (see reload_routes()) */
	routes_inval_count++;
	if (!OidIsValid(relid) || relid == routes_relid)
	{
		routes_valid = false;
		routes_stale_count++;
		return;
	}

	/*
	 * While the routes are being read (no context yet), the relation is
	 * kept, for the routes read to be compared with (mark_loading_stale()).
	 */
	if (routes_cxt == NULL)
	{
		for (i = 0; i < loading_nrelids; i++)
			if (loading_relids[i] == relid)
				return;
		if (loading_nrelids < POLYGLOT_LOADING_RELIDS)
			loading_relids[loading_nrelids++] = relid;
		else
			routes_stale_count++;	/* too many to tell: every route */
		return;
	}
	/* a route with documents also reads related tables: any relation */
	foreach(lc, cached_routes)
	{
		PolyglotRoute *r = (PolyglotRoute *) lfirst(lc);

		if (r->source_relid == relid)
			r->stale = true;
		else if (r->nfields > 0)
			r->stale_maybe = true;
		else
			continue;
		routes_valid = false;
	}
}

/* The routes just read that the relations invalidated meanwhile concern */
static void
mark_loading_stale(List *routes)
{
	ListCell   *lc;
	int			i;

	foreach(lc, routes)
	{
		PolyglotRoute *r = (PolyglotRoute *) lfirst(lc);

		for (i = 0; i < loading_nrelids; i++)
			if (r->source_relid == loading_relids[i])
				r->stale = true;
			else if (r->nfields > 0)
				r->stale_maybe = true;
	}
}

static void
routes_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	routes_inval_count++;
	routes_stale_count++;
	routes_valid = false;
}

/*
 * polyglot._routes_changed(): the AFTER triggers of polyglot.routes and
 * polyglot.route_state (row triggers, and statement triggers for TRUNCATE).
 * Sends a relcache invalidation of polyglot.routes (once per transaction),
 * which every worker takes for "read the routes again" at the start of its
 * next round, once the transaction has committed.
 */
Datum
polyglot_routes_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			routes;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("polyglot._routes_changed() must be called as an AFTER trigger")));
	routes = get_relname_relid("routes", RelationGetNamespace(trigdata->tg_relation));
	if (OidIsValid(routes))
		CacheInvalidateRelcacheByRelid(routes);
	return PointerGetDatum(NULL);
}

/*
 * Whether every route is of before a change: see routes_stale().  Not
 * after POLYGLOT_STALE_CUTS_MAX rounds in a row were cut short for it:
 * changes that concern every route (a route's failure recorded, a role
 * altered) coming faster than a round reads its routes and a batch would
 * otherwise have the workers read routes and deliver nothing.
 */
static bool
routes_all_stale(void)
{
	return routes_stale_count != routes_stale_at_load &&
		stale_cuts < POLYGLOT_STALE_CUTS_MAX;
}

/*
 * Whether an invalidation that concerns the route came since it was read:
 * a batch read since then may have rows that need the route as it is now,
 * and is dropped (see above).  For one that only may concern it, only a
 * few batches of the route in a row: when invalidations of any relation
 * come faster than a round reads its routes and a batch (a route with
 * documents, in a database that creates temporary tables all the time),
 * its batches go with the routes of their round, as every batch did before
 * this check, rather than never.
 */
static bool
routes_stale(PolyglotRoute *route)
{
	if (route->stale || routes_all_stale())
		return true;
	if (!route->stale_maybe)
	{
		route->stale_streak = 0;
		return false;
	}
	if (route->stale_streak >= POLYGLOT_STALE_STREAK_MAX)
		return false;
	route->stale_streak++;
	return true;
}

/* Forgets the cached routes: the next round reads them again. */
void
polyglot_forget_routes(void)
{
	routes_valid = false;
}

static Oid
polyglot_relid(Oid nsp, const char *name)
{
	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/* The TOAST table of a relation, or InvalidOid */
static Oid
toast_of(Oid relid)
{
	HeapTuple	tup;
	Oid			toast = InvalidOid;

	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		toast = ((Form_pg_class) GETSTRUCT(tup))->reltoastrelid;
		ReleaseSysCache(tup);
	}
	return toast;
}

/*
 * Reads every route into a new memory context; in a transaction, connected
 * to SPI.  Sets *extension_gone when pg_polyglot is no longer installed; no
 * routes when the library does not serve the installed version.  Returns
 * whether the routes can be kept until an invalidation says otherwise (the
 * installed version has the triggers that send them).
 *
 * The routes are read under a lock on polyglot.routes and a snapshot taken
 * once it is granted: a round that starts while ALTER EXTENSION UPDATE holds
 * its lock reads the routes as the update left them, never those before it.
 * From 1.1 on, routes whose server OID was recorded in another cluster (the
 * cluster pg_upgrade copied them from: an OID of its servers names no
 * server here, or another one)
 * find their server again by name first: polyglot._rebind_servers().
 */
static bool
reload_routes(bool *extension_gone)
{
	MemoryContext cxt;
	List	   *routes;
	ListCell   *lc;
	Oid			nsp;
	int			version;
	uint64		invals = routes_inval_count;
	bool		signalled;
	List	   *streaks = NIL;	/* route id, streak, ... */
	int			i;

	routes_stale_at_load = routes_stale_count;
	loading_nrelids = 0;
	/* the streaks of dropped batches go on with the routes read again */
	foreach(lc, cached_routes)
		if (((PolyglotRoute *) lfirst(lc))->stale_streak > 0)
			streaks = lappend_int(lappend_int(streaks, ((PolyglotRoute *) lfirst(lc))->id),
								  ((PolyglotRoute *) lfirst(lc))->stale_streak);
	if (routes_cxt)
		MemoryContextDelete(routes_cxt);
	routes_cxt = NULL;
	cached_routes = NIL;
	routes_any_documents = false;
	if (!OidIsValid(get_extension_oid("pg_polyglot", true)))
	{
		*extension_gone = true;
		return false;
	}
	nsp = get_namespace_oid("polyglot", true);
	routes_relid = polyglot_relid(nsp, "routes");
	quiet_relids[0] = polyglot_relid(nsp, "outbox");
	quiet_relids[1] = polyglot_relid(nsp, "outbox_pkey");
	quiet_relids[2] = polyglot_relid(nsp, "route_state");
	quiet_relids[3] = polyglot_relid(nsp, "route_state_pkey");
	quiet_relids[4] = polyglot_relid(nsp, "dead_letters");
	quiet_relids[5] = polyglot_relid(nsp, "dead_letters_route_id_idx");
	quiet_relids[6] = toast_of(quiet_relids[0]);
	quiet_relids[7] = toast_of(quiet_relids[2]);
	if (OidIsValid(routes_relid))
		LockRelationOid(routes_relid, AccessShareLock);
	fresh_snapshot();
	version = polyglot_served_version();
	if (version < 0)
		return false;
	if (version >= 1 &&
		spi_exec(psprintf("SELECT polyglot._rebind_servers() "
						  "WHERE EXISTS (SELECT FROM polyglot.routes r "
						  "              WHERE r.server_cluster OPERATOR(pg_catalog.<>) "
						  INT64_FORMAT "::pg_catalog.numeric)",
						  (int64) GetSystemIdentifier()),	/* as _this_cluster() */
				 0, NULL, NULL, NULL, false, SPI_OK_SELECT, "find the servers of routes again") > 0)
		fresh_snapshot();

	/*
	 * The triggers that tell of changes (1.1): all there, and firing
	 * whatever session_replication_role says.
	 */
	signalled = version >= 1 &&
		spi_exec("SELECT FROM pg_catalog.pg_trigger t "
				 "WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY['polyglot.routes'::pg_catalog.regclass, "
				 "'polyglot.route_state'::pg_catalog.regclass]) "
				 "AND t.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('polyglot._routes_changed()') "
				 "AND t.tgenabled OPERATOR(pg_catalog.=) 'A'",
				 0, NULL, NULL, NULL, true, SPI_OK_SELECT, "look for the routes' triggers") == 6;

	/*
	 * Read into a context of the round until it is complete (an error frees
	 * it with the round's), then keep it.
	 */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot routes",
								ALLOCSET_SMALL_SIZES);
	routes = polyglot_load_routes(0, cxt);
	MemoryContextSetParent(cxt, TopMemoryContext);
	routes_cxt = cxt;
	cached_routes = routes;
	mark_loading_stale(routes);
	for (i = 0; i + 1 < list_length(streaks); i += 2)
		foreach(lc, routes)
			if (((PolyglotRoute *) lfirst(lc))->id == list_nth_int(streaks, i))
				((PolyglotRoute *) lfirst(lc))->stale_streak = (uint8) list_nth_int(streaks, i + 1);
	foreach(lc, routes)
		routes_any_documents |= ((PolyglotRoute *) lfirst(lc))->nfields > 0;
	routes_loaded_at = GetCurrentTimestamp();

	/*
	 * An invalidation taken in while the routes were read (at a lock, from
	 * the snapshot on) may be of a change the read did not see: read them
	 * again next round.
	 */
	return signalled && routes_inval_count == invals;
}

/*
 * Marks the routes with documents that have fan-out rows waiting (see
 * polyglot_fanout_step()); in a transaction, connected to SPI.
 */
static void
refresh_fanning_out(List *routes)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *ids = palloc(sizeof(Datum) * Max(list_length(routes), 1));
	int			n = 0;
	Oid			argtypes[1] = {INT4ARRAYOID};
	Datum		args[1];
	ListCell   *lc;
	uint64		i;

	foreach(lc, routes)
	{
		PolyglotRoute *r = (PolyglotRoute *) lfirst(lc);

		if (r->nfields > 0)
		{
			ids[n++] = Int32GetDatum(r->id);
			r->fanning_out = false;
		}
	}
	if (n == 0)
		return;
	args[0] = PointerGetDatum(construct_array(ids, n, INT4OID, sizeof(int32), true,
											  TYPALIGN_INT));
	(void) spi_exec_plan(&plan, "SELECT DISTINCT o.route_id FROM polyglot.outbox o "
						 "WHERE o.route_id OPERATOR(pg_catalog.=) ANY ($1) "
						 "AND o.slot OPERATOR(pg_catalog.<) 0",
						 1, argtypes, args, NULL, true, SPI_OK_SELECT,
						 "look for fan-out rows");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		id = DatumGetInt32(spi_datum(SPI_tuptable->vals[i], 1, &isnull));

		foreach(lc, routes)
			if (((PolyglotRoute *) lfirst(lc))->id == id)
				((PolyglotRoute *) lfirst(lc))->fanning_out = true;
	}
}

/*
 * The routes for this round, in a transaction of their own: the cached ones,
 * or read again (see above).  *reloaded tells which.  Worker 0 also looks
 * again at which routes with documents have fan-out rows waiting, which
 * commits to related tables write without any invalidation.
 */
static List *
round_routes(bool *extension_gone, bool *reloaded)
{
	static bool callbacks = false;

	if (!callbacks)
	{
		CacheRegisterRelcacheCallback(routes_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, routes_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNDATAWRAPPEROID, routes_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, routes_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, routes_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, routes_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, routes_syscache_callback, (Datum) 0);
		callbacks = true;
	}

	*reloaded = false;
	begin_tx();					/* takes the invalidations in */
	if (!routes_valid ||
		TimestampDifferenceExceeds(routes_loaded_at, GetCurrentTimestamp(),
								   polyglot_poll_interval))
	{
		routes_valid = false;
		routes_valid = reload_routes(extension_gone);
		*reloaded = true;
	}
	else if (polyglot_worker_slot == 0 && routes_any_documents)
		refresh_fanning_out(cached_routes);
	end_tx();
	return cached_routes;
}

/* A top-level option of a route, or false when it has none. */
static bool
route_option_value(PolyglotRoute *route, const char *name, JsonbValue *v)
{
	return getKeyJsonValueFromContainer(&route->options->root, name, strlen(name), v) != NULL;
}

/* ---------------------------------------------------------------- batches */

/*
 * The query that reads the rows of a batch's keys, passed as one text array
 * per key column: each key's ordinal, whether its row exists, and what the
 * sink delivers of it.
 */
static char *
rows_query(PolyglotRoute *route, PolyglotPayload payload)
{
	StringInfoData sql;
	ListCell   *lc,
			   *tc;
	int			i;
	int			nkeys = list_length(route->key_columns);
	JsonbValue	unused;
	const char *fields = NULL;
	int			ncols;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT k.i, t.ctid IS NOT NULL AS found");
	if (route->nfields > 0)
		fields = polyglot_route_fields(route);
	ncols = list_length(route->columns) - route->nfields;
	if (payload == POLYGLOT_PAYLOAD_JSON && !route_option_value(route, "columns", &unused) &&
		!route_option_value(route, "exclude", &unused) && fields == NULL)
	{
		/* every column: the whole row, with no subquery per row */
		/* t.*, not t, which a column named t would be */
		appendStringInfoString(&sql, ", pg_catalog.row_to_json(t.*)::text");
	}
	else if (payload == POLYGLOT_PAYLOAD_JSON)
	{
		appendStringInfoString(&sql, ", CASE WHEN t.ctid IS NULL THEN NULL ELSE "
							   "(SELECT pg_catalog.row_to_json(x.*) FROM (SELECT ");
		i = 0;
		foreach(lc, route->columns)
		{
			if (i >= ncols)
				break;
			appendStringInfo(&sql, "%st.%s", i++ ? ", " : "",
							 quote_identifier((char *) lfirst(lc)));
		}
		if (ncols == 0)
			appendStringInfoString(&sql, "NULL::text AS \"?\"");
		if (fields)
			appendStringInfoString(&sql, fields);
		appendStringInfoString(&sql, ") x)::text END");
	}
	else if (payload == POLYGLOT_PAYLOAD_COLUMNS)
	{
		foreach(lc, route->columns)
			appendStringInfo(&sql, ", t.%s::text", quote_identifier((char *) lfirst(lc)));
	}
	else if (payload == POLYGLOT_PAYLOAD_DATUMS)
	{
		i = 0;
		foreach(lc, route->columns)
		{
			if (i++ >= ncols)
				break;
			appendStringInfo(&sql, ", t.%s", quote_identifier((char *) lfirst(lc)));
		}
		/* the fields, NULL for a row that is gone */
		if (fields)
			appendStringInfoString(&sql, fields);
	}
	appendStringInfoString(&sql, " FROM ROWS FROM (");
	for (i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%spg_catalog.unnest($%d::text[])", i ? ", " : "", i + 1);
	appendStringInfoString(&sql, ") WITH ORDINALITY AS k(");
	for (i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "c%d, ", i + 1);
	appendStringInfo(&sql, "i) LEFT JOIN ONLY %s t ON ", route->source_name);
	/*
	 * The row of a key is the row whose key prints as the key's text: a
	 * row whose key is equal but prints otherwise (numeric 1.0 and 1.000,
	 * interval '1 day' and '24:00:00') is another key's, and this one's is
	 * gone.
	 */
	i = 0;
	forboth(lc, route->key_columns, tc, route->key_types)
	{
		const char *col = quote_identifier((char *) lfirst(lc));

		appendStringInfo(&sql, "%st.%s = k.c%d::%s AND polyglot._key_text(t.%s) = k.c%d",
						 i ? " AND " : "", col, i + 1, (char *) lfirst(tc), col, i + 1);
		i++;
	}
	/* a row outside the route's filter is not the store's: it reads as gone */
	if (polyglot_route_filter(route) != NULL)
		appendStringInfo(&sql, " AND (%s)", polyglot_route_filter(route));
	return sql.data;
}

/*
 * What an event's rendered row weighs in memory, for polyglot.batch_bytes:
 * its JSON, its columns as text, or the sink's rendering of it.
 */
Size
polyglot_event_bytes(PolyglotEvent *ev, int ncols)
{
	Size		n = ev->json_len + ev->row_len;
	int			c;

	if (ev->values)
		for (c = 0; c < ncols; c++)
			if (ev->values[c])
				n += strlen(ev->values[c]);
	return n;
}

/* Takes one row of the rows query into the event of its item; returns its index or -1. */
static int
load_row(PolyglotRoute *route, const PolyglotSink *sink, PolyglotPayload payload,
		 HeapTuple tup, PolyglotItem **byord, int nitems, MemoryContext cxt)
{
	int			ncols = list_length(route->columns);
	bool		isnull;
	int64		ord = DatumGetInt64(spi_datum(tup, 1, &isnull));
	PolyglotEvent *ev;
	int			c;

	if (ord < 1 || ord > nitems)
		return -1;
	ev = byord[ord - 1]->event;
	ev->found = DatumGetBool(spi_datum(tup, 2, &isnull));
	if (payload == POLYGLOT_PAYLOAD_JSON)
	{
		ev->json = spi_text(tup, 3, cxt);
		ev->json_len = ev->json ? strlen(ev->json) : 0;
	}
	else if (payload == POLYGLOT_PAYLOAD_COLUMNS && ncols > 0)
	{
		ev->values = MemoryContextAllocZero(cxt, sizeof(char *) * ncols);
		for (c = 0; c < ncols; c++)
			ev->values[c] = spi_text(tup, 3 + c, cxt);
	}
	else if (payload == POLYGLOT_PAYLOAD_DATUMS && !ev->found)
		sink->render_row(route, ev, NULL, NULL, NULL, cxt);
	else if (payload == POLYGLOT_PAYLOAD_DATUMS)
	{
		Datum	   *values = palloc(sizeof(Datum) * Max(ncols, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(ncols, 1));
		Oid		   *types = palloc(sizeof(Oid) * Max(ncols, 1));

		for (c = 0; c < ncols; c++)
		{
			values[c] = spi_datum(tup, 3 + c, &nulls[c]);
			types[c] = SPI_gettypeid(SPI_tuptable->tupdesc, 3 + c);
		}
		sink->render_row(route, ev, values, nulls, types, cxt);
	}
	return (int) (ord - 1);
}

/*
 * Reads the current state of the rows of the items' keys into each item's
 * first event, until the rows read weigh limit bytes (0: no limit): the
 * items whose row was read are marked in loaded (one flag per item, may be
 * NULL without a limit), the others are left unread.  At least one row is
 * read whatever it weighs.  Without a limit the rows come in one query;
 * with one, through a cursor a row at a time, so that no more than the
 * bound (and one row) is ever held.
 */
void
polyglot_read_rows_bounded(PolyglotRoute *route, const PolyglotSink *sink,
						   PolyglotPayload payload, List *items, MemoryContext cxt,
						   Size limit, bool *loaded)
{
	int			nkeycols = list_length(route->key_columns);
	int			nitems = list_length(items);
	int			ncols = list_length(route->columns);
	Oid		   *argtypes = palloc(sizeof(Oid) * nkeycols);
	Datum	   *args = palloc(sizeof(Datum) * nkeycols);
	Datum	   *elems = palloc(sizeof(Datum) * Max(nitems, 1));
	PolyglotItem **byord = palloc(sizeof(PolyglotItem *) * Max(nitems, 1));
	ListCell   *lc;
	uint64		r;
	int			c,
				i;

	i = 0;
	foreach(lc, items)
		byord[i++] = (PolyglotItem *) lfirst(lc);
	if (polyglot_read_rows_direct(route, sink, payload, byord, nitems, cxt, limit, loaded))
		return;
	for (c = 0; c < nkeycols; c++)
	{
		for (i = 0; i < nitems; i++)
			elems[i] = CStringGetTextDatum((char *) list_nth(byord[i]->event->key, c));
		argtypes[c] = TEXTARRAYOID;
		args[c] = PointerGetDatum(construct_array(elems, nitems, TEXTOID, -1, false,
												  TYPALIGN_INT));
	}
	if (limit == 0)
	{
		(void) spi_exec(rows_query(route, payload), nkeycols, argtypes, args, NULL, true,
						SPI_OK_SELECT, "reading rows");
		for (r = 0; r < SPI_processed; r++)
		{
			i = load_row(route, sink, payload, SPI_tuptable->vals[r], byord, nitems, cxt);
			if (i >= 0 && loaded)
				loaded[i] = true;
		}
	}
	else
	{
		Portal		portal;
		Size		bytes = 0;

		portal = SPI_cursor_open_with_args(NULL, rows_query(route, payload), nkeycols,
										   argtypes, args, NULL, true, 0);
		/* the rows may come in any order: an item is loaded when its row came */
		while (bytes < limit)
		{
			SPI_cursor_fetch(portal, true, 1);
			if (SPI_processed == 0)
				break;
			i = load_row(route, sink, payload, SPI_tuptable->vals[0], byord, nitems, cxt);
			if (i >= 0)
			{
				loaded[i] = true;
				bytes += polyglot_event_bytes(byord[i]->event, ncols);
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
	}
}

/*
 * Reads the current state of the rows of the items' keys into each item's
 * first event.
 */
void
polyglot_read_rows(PolyglotRoute *route, const PolyglotSink *sink, PolyglotPayload payload,
				   List *items, MemoryContext cxt)
{
	polyglot_read_rows_bounded(route, sink, payload, items, cxt, 0, NULL);
}

/* The key of an event as one string, to coalesce events of one key (built in scratch). */
char *
polyglot_key_string(List *key, StringInfo scratch)
{
	ListCell   *lc;

	resetStringInfo(scratch);
	foreach(lc, key)
	{
		const char *v = (const char *) lfirst(lc);

		/* length-prefixed, so no value can imitate a separator */
		appendStringInfo(scratch, "%zu:%s", strlen(v), v);
	}
	return pnstrdup(scratch->data, scratch->len);
}

/*
 * Coalesces events into items, one per key, in the order of each key's
 * first event; every item carries all its events.  All events of a key were
 * read in one snapshot, so any of them describes the row.
 */
typedef struct KeyBucket
{
	uint32		hash;			/* hash key */
	List	   *items;			/* items whose key string has this hash */
} KeyBucket;

static List *
coalesce_events(List *events)
{
	HASHCTL		ctl;
	HTAB	   *seen;
	List	   *items = NIL;
	ListCell   *lc;
	StringInfoData scratch;

	initStringInfo(&scratch);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(KeyBucket);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pg_polyglot batch keys", Max(list_length(events), 16), &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	foreach(lc, events)
	{
		PolyglotEvent *ev = (PolyglotEvent *) lfirst(lc);
		char	   *k = polyglot_key_string(ev->key, &scratch);
		uint32		h = hash_bytes((const unsigned char *) k, strlen(k));
		KeyBucket  *bucket;
		bool		found;
		ListCell   *ic;
		PolyglotItem *item = NULL;

		bucket = hash_search(seen, &h, HASH_ENTER, &found);
		if (!found)
			bucket->items = NIL;
		foreach(ic, bucket->items)
		{
			PolyglotItem *candidate = (PolyglotItem *) lfirst(ic);

			if (strcmp(candidate->key_string, k) == 0)
			{
				item = candidate;
				break;
			}
		}
		if (item)
		{
			item->events = lappend(item->events, ev);
			continue;
		}
		item = palloc0(sizeof(PolyglotItem));
		item->event = ev;
		item->key_string = k;
		item->events = list_make1(ev);
		bucket->items = lappend(bucket->items, item);
		items = lappend(items, item);
	}
	hash_destroy(seen);
	return items;
}

/* ---------------------------------------------------------------- acknowledgement */

/*
 * Acknowledges a delivered batch in one transaction: deletes every outbox
 * row it read, puts each key that failed back as a row of its own with one
 * more attempt and a later retry_at, or in the dead letters when it is out
 * of attempts or was rejected, puts back the keys the batch left out
 * (deferred), and updates the route's counters.
 */
static void
ack_batch(PolyglotRoute *route, List *events, List *items, PolyglotItemResult *results,
		  List *deferred)
{
	int64		ndone = 0,
				nretry = 0,
				ndead = 0,
				nstale = 0,
				nrejected = 0;
	char	   *last_error = NULL;
	char	   *last_rejection = NULL;
	ListCell   *lc;
	int			i;

	begin_tx();
	polyglot_outbox_ack(route->id, events);
	if (deferred != NIL)
		polyglot_outbox_requeue(route, deferred);

	i = 0;
	foreach(lc, items)
	{
		PolyglotItem *item = (PolyglotItem *) lfirst(lc);
		int32		attempts = 0;
		ListCell   *ec;

		if (results[i].status == POLYGLOT_ITEM_OK || results[i].status == POLYGLOT_ITEM_STALE)
		{
			ndone += list_length(item->events);
			if (results[i].status == POLYGLOT_ITEM_STALE)
				nstale += list_length(item->events);
			i++;
			continue;
		}
		foreach(ec, item->events)
			attempts = Max(attempts, ((PolyglotEvent *) lfirst(ec))->attempts);
		attempts++;
		last_error = results[i].error ? results[i].error : "unknown error";
		if (results[i].status == POLYGLOT_ITEM_REJECTED)
		{
			polyglot_outbox_dead_letter(route, item, attempts, last_error);
			last_rejection = last_error;
			nrejected++;
			ndead++;
			i++;
			continue;
		}
		if (attempts >= polyglot_max_attempts)
		{
			polyglot_outbox_dead_letter(route, item, attempts, last_error);
			ndead++;
			i++;
			continue;
		}
		{
			int			retry_ms = polyglot_backoff_ms(attempts, POLYGLOT_BACKOFF_BASE_MS,
													   polyglot_backoff_max);
			TimestampTz due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms);

			polyglot_outbox_retry_later(route, item, attempts, last_error, retry_ms);
			/* no commit names the route when the key is due: see polyglot_dispatch_round() */
			if (retry_due == 0 || due < retry_due)
				retry_due = due;
		}
		nretry++;
		i++;
	}
	if (nrejected > 0)
		ereport(LOG,
				(errmsg("pg_polyglot route %d: " INT64_FORMAT " keys moved to dead letters without retries",
						route->id, nrejected),
				 errdetail_internal("%s", last_rejection)));
	if (ndead > nrejected)
		ereport(LOG,
				(errmsg("pg_polyglot route %d: " INT64_FORMAT " keys moved to dead letters after %d attempts",
						route->id, ndead - nrejected, polyglot_max_attempts),
				 errdetail_internal("%s", last_error ? last_error : "")));

	{
		Oid			argtypes[6] = {INT4OID, INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID};
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		args[0] = Int32GetDatum(route->id);
		args[1] = Int64GetDatum(ndone);
		args[2] = Int64GetDatum(ndead);
		args[3] = Int64GetDatum(nretry);
		if (last_error)
			args[4] = CStringGetTextDatum(last_error);
		else
			nulls[4] = 'n';
		args[5] = Int64GetDatum(nstale);
		/* (resetting consecutive_failures fires route_state_updated only when it changes) */
		(void) spi_exec_plan(&state_plan, "UPDATE polyglot.route_state SET "
							 "delivered = delivered + $2, failed = failed + $3, "
							 "retries = retries + $4, stale = stale + $6, "
							 "consecutive_failures = 0, "
							 "backoff_until = NULL, "
							 "last_delivery_at = CASE WHEN $2 > 0 THEN now() ELSE last_delivery_at END, "
							 "last_error = coalesce($5, last_error), "
							 "last_error_at = CASE WHEN $5 IS NULL THEN last_error_at ELSE now() END "
							 "WHERE route_id = $1",
							 6, argtypes, args, nulls, false, SPI_OK_UPDATE,
							 "updating route state");
	}
	end_tx();
}

/*
 * Records a failure of a whole batch: the route backs off, its events stay
 * where they are.  Returns the backoff in milliseconds.
 */
long
polyglot_record_route_failure(PolyglotRoute *route, ErrorData *edata)
{
	int			failures = route->consecutive_failures + 1;
	int			backoff = polyglot_backoff_ms(failures, POLYGLOT_BACKOFF_BASE_MS,
											  polyglot_backoff_max);
	char	   *message;
	Oid			argtypes[4] = {INT4OID, INT4OID, INT4OID, TEXTOID};
	Datum		args[4];

	message = edata->detail ? psprintf("%s: %s", edata->message, edata->detail)
		: pstrdup(edata->message);

	/* the first failure in a row is worth a line in the log */
	if (failures == 1)
		ereport(LOG,
				(errmsg("pg_polyglot route %d (%s) is backing off: %s",
						route->id, route->source_name ? route->source_name : "?", message)));

	begin_tx();
	args[0] = Int32GetDatum(route->id);
	args[1] = Int32GetDatum(failures);
	args[2] = Int32GetDatum(backoff);
	args[3] = CStringGetTextDatum(message);
	(void) spi_exec("UPDATE polyglot.route_state SET "
					"consecutive_failures = $2, retries = retries + 1, "
					"backoff_until = now() + $3 * interval '1 millisecond', "
					"last_error = $4, last_error_at = now() "
					"WHERE route_id = $1",
					4, argtypes, args, NULL, false, SPI_OK_UPDATE, "recording a route failure");
	end_tx();
	return backoff;
}

/* ---------------------------------------------------------------- a route */

const PolyglotSink *
polyglot_sink_for(PolyglotRoute *route)
{
	const PolyglotStoreInfo *store = polyglot_store_by_name(route->store);

	return store ? store->sink : NULL;
}

/* A batch from its reading to its acknowledgement, in a context of its own */
typedef struct Batch
{
	MemoryContext cxt;
	List	   *events;
	List	   *items;
	int			nevents;
	List	   *rejected;		/* items whose rows could not be read */
	List	   *rejected_errors;	/* of char *: why, one per rejected item */
	List	   *deferred;		/* items left out by polyglot.batch_bytes */
	bool		full;			/* more may follow: polyglot.batch_size keys
								 * read, or some left out */
	void	   *sent;			/* the sink's state once sent */
} Batch;

/*
 * Reads the rows of items in a subtransaction of the read transaction.
 * Returns NULL, or the error that aborted the subtransaction (in the
 * caller's memory context).
 */
static ErrorData *
try_read_rows(PolyglotRoute *route, const PolyglotSink *sink, PolyglotPayload payload,
			  List *items, MemoryContext cxt, Size limit, bool *loaded)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		polyglot_read_rows_bounded(route, sink, payload, items, cxt, limit, loaded);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * Reads the current state of a batch's rows.  When that fails with a data
 * exception (SQLSTATE class 22), one key's text is to blame, typically: it
 * no longer parses as the key column's type (the type changed while the
 * key's events were pending; a money key written under another
 * lc_monetary).  Such a key would fail every later read of the route too,
 * so the rows are read again key by key: the keys that fail are taken out
 * of the batch into batch->rejected, with their error, and become dead
 * letters when the batch is acknowledged; the others are delivered.  Any
 * other error, or a data exception of every key of a batch of several
 * (not one key's fault), fails the whole batch as before.
 */
static void
read_batch_rows(PolyglotRoute *route, const PolyglotSink *sink, PolyglotPayload payload,
				Batch *batch)
{
	ErrorData  *edata;
	List	   *kept = NIL;
	ListCell   *lc;
	StringInfoData scratch;
	MemoryContext old = MemoryContextSwitchTo(batch->cxt);
	Size		limit = (Size) polyglot_batch_bytes * 1024;
	Size		bytes = 0;
	int			ncols = list_length(route->columns);
	bool	   *loaded = palloc0(sizeof(bool) * Max(list_length(batch->items), 1));

	edata = try_read_rows(route, sink, payload, batch->items, batch->cxt, limit, loaded);
	if (edata == NULL)
	{
		/* the keys whose rows were left unread wait for a later batch */
		foreach(lc, batch->items)
		{
			if (loaded[foreach_current_index(lc)])
				kept = lappend(kept, lfirst(lc));
			else
				batch->deferred = lappend(batch->deferred, lfirst(lc));
		}
		batch->items = kept;
		MemoryContextSwitchTo(old);
		return;
	}
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
		ReThrowError(edata);

	initStringInfo(&scratch);
	foreach(lc, batch->items)
	{
		PolyglotItem *item = (PolyglotItem *) lfirst(lc);
		ErrorData  *e;

		CHECK_FOR_INTERRUPTS();
		if (bytes >= limit)
		{
			batch->deferred = lappend(batch->deferred, item);
			continue;
		}
		e = try_read_rows(route, sink, payload, list_make1(item), batch->cxt, 0, NULL);
		if (e == NULL)
		{
			kept = lappend(kept, item);
			bytes += polyglot_event_bytes(item->event, ncols);
			continue;
		}
		if (ERRCODE_TO_CATEGORY(e->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			ReThrowError(e);
		resetStringInfo(&scratch);
		appendStringInfo(&scratch, "could not read the row of this key: %s", e->message);
		if (e->detail)
			appendStringInfo(&scratch, ": %s", e->detail);
		batch->rejected = lappend(batch->rejected, item);
		batch->rejected_errors = lappend(batch->rejected_errors, pstrdup(scratch.data));
		FreeErrorData(e);
	}
	/* every key read failed on its own too: not one key's fault */
	if (kept == NIL && list_length(batch->rejected) > 1)
		ReThrowError(edata);
	batch->items = kept;
	FreeErrorData(edata);
	MemoryContextSwitchTo(old);
}

/*
 * Reads a batch in one short transaction: its events, leaving out those of
 * the batch in flight (if any), and the current state of their rows, both
 * in one snapshot.
 */
static Batch *
read_batch(PolyglotRoute *route, const PolyglotSink *sink, PolyglotPayload payload,
		   Batch *inflight, MemoryContext parent)
{
	Batch	   *batch = MemoryContextAllocZero(parent, sizeof(Batch));
	Datum		inflight_ids;

	batch->cxt = AllocSetContextCreate(parent, "pg_polyglot batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(batch->cxt);
	inflight_ids = inflight ? polyglot_outbox_ids(inflight->events) :
		PointerGetDatum(construct_empty_array(INT8OID));

	begin_tx();
	batch->events = polyglot_outbox_read(route, inflight_ids, batch->cxt);
	batch->nevents = list_length(batch->events);

	/*
	 * A full batch: the next one starts after it.  Otherwise the backlog is
	 * drained, and the next batch starts from the first row again, to find
	 * rows that committed late with lower ids.
	 */
	*polyglot_outbox_position(route->id) = batch->nevents >= polyglot_batch_size ?
		((PolyglotEvent *) llast(batch->events))->id : 0;
	batch->full = batch->nevents >= polyglot_batch_size;
	if (batch->nevents > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(batch->cxt);
		Oid			save_userid;
		int			save_sec_context;

		batch->items = coalesce_events(batch->events);
		MemoryContextSwitchTo(old);

		/*
		 * The rows are read as the table's owner, in a security-restricted
		 * operation (as autovacuum reads a table): casts and functions the
		 * owner defined on the table's types then run with the owner's
		 * rights, never with the worker's.
		 */
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		if (OidIsValid(route->source_owner))
			SetUserIdAndSecContext(route->source_owner,
								   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
		read_batch_rows(route, sink, payload, batch);
		SetUserIdAndSecContext(save_userid, save_sec_context);

		/*
		 * Cut short by polyglot.batch_bytes: there is more to do, and the
		 * next batch goes on after this one (its keys left out come back
		 * with new ids, after it).
		 */
		if (batch->deferred != NIL)
		{
			batch->full = true;
			*polyglot_outbox_position(route->id) = ((PolyglotEvent *) llast(batch->events))->id;
		}
	}
	end_tx();
	MemoryContextSwitchTo(parent);
	return batch;
}

/*
 * Results for a batch's delivered items, then its rejected ones (whose
 * rows could not be read), which ack_batch() makes dead letters.
 */
static PolyglotItemResult *
batch_results(Batch *batch)
{
	int			i = list_length(batch->items);
	PolyglotItemResult *results =
		palloc0(sizeof(PolyglotItemResult) * Max(i + list_length(batch->rejected), 1));
	ListCell   *lc;

	foreach(lc, batch->rejected_errors)
	{
		results[i].status = POLYGLOT_ITEM_REJECTED;
		results[i++].error = (char *) lfirst(lc);
	}
	return results;
}

/* Acknowledges a batch with its results (batch_results()) and frees it. */
static void
ack_whole_batch(PolyglotRoute *route, Batch *batch, PolyglotItemResult *results,
				MemoryContext old)
{
	ack_batch(route, batch->events, list_concat(batch->items, batch->rejected), results,
			  batch->deferred);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batch->cxt);
}

/* Waits for the outcome of a sent batch and acknowledges it. */
static void
finish_batch(PolyglotRoute *route, const PolyglotSink *sink, Batch *batch)
{
	PolyglotItemResult *results;
	MemoryContext old = MemoryContextSwitchTo(batch->cxt);

	results = batch_results(batch);
	if (batch->items != NIL)
		sink->finish(route, batch->items, batch->sent, results);
	batch->sent = NULL;
	ack_whole_batch(route, batch, results, old);
}

/*
 * Is a failure of a whole batch one that a key of it may have caused?  A
 * sink says so with SQLSTATE 22000 (data_exception) when the store refused
 * the request for what it holds (an Elasticsearch _bulk answered HTTP 400,
 * a MongoDB bulk write refused as a whole for a document).  Nothing else
 * is: connection failures, a route's invalid option (22023) back the
 * route off, and no key is charged an attempt; a timeout is judged by
 * is_slow_key().
 */
static bool
is_key_fault(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_DATA_EXCEPTION;
}

/*
 * For a sink, inside PG_CATCH: the error being handled, thrown again as a
 * key fault (SQLSTATE 22000, message and details kept).  cxt is the memory
 * context current before PG_TRY.
 */
void
polyglot_rethrow_as_data_exception(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	edata->sqlerrcode = ERRCODE_DATA_EXCEPTION;
	ReThrowError(edata);
}

bool		polyglot_io_timed_out = false;

/*
 * A batch goes in parts because a request of it timed out (is_slow_key):
 * each part waits for the store to answer a ping first, so that a part is
 * never charged for the store still working through an abandoned request.
 */
static bool slow_split = false;

/*
 * Ereports when the route's server was dropped since the route was loaded:
 * a sink's first step, before it asks for a connection.
 */
void
polyglot_route_require_server(PolyglotRoute *route)
{
	if (route->server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the server of route %d no longer exists", route->id),
				 errhint("Drop the route with polyglot.unsync().")));
}

/*
 * Does the route's store answer a ping (its registry entry's ping: a round
 * trip on a connection of the route's server and user mapping, within
 * io_timeout)?  Never ereports.
 */
static bool
store_answers_ping(PolyglotRoute *route)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	if (route->server == NULL)
		return false;
	PG_TRY();
	{
		const PolyglotStoreInfo *store = polyglot_store_by_name(route->store);

		if (store)
			(void) store->ping(route->server, route->user);
		else
			ok = false;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * A request that got no answer within io_timeout while the store answers a
 * ping at once may be too large to go within io_timeout: like a refusal
 * for what a key holds, it goes again in parts, and a key that times out
 * on its own counts an attempt.  A store that does not answer the ping is
 * down or hung: an outage, which counts no attempts.  Call right after the
 * failure (polyglot_io_timed_out is the failed request's).
 */
static bool
is_slow_key(PolyglotRoute *route)
{
	bool		timed_out = polyglot_io_timed_out;

	polyglot_io_timed_out = false;
	if (timed_out && store_answers_ping(route))
	{
		slow_split = true;
		return true;
	}
	return false;
}

/*
 * Delivers items first .. first + count - 1 of a batch, filling their
 * results.  When the store refuses them as a whole (is_key_fault), or does
 * not answer them within io_timeout while it answers a ping (is_slow_key),
 * each half goes on its own, down to single keys: a key refused or timed
 * out on its own fails with the store's error, and every other key is
 * delivered.  Any
 * other failure is ereported, for the route to back off.
 */
static void
deliver_part(PolyglotRoute *route, const PolyglotSink *sink, List *items, int first,
			 int count, PolyglotItemResult *results, int *refused_alone)
{
	List	   *part = list_copy_tail(items, first);
	void	   *volatile sent = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	volatile bool slow = false;

	part = list_truncate(part, count);
	if (slow_split && !store_answers_ping(route))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("server \"%s\" did not answer a ping after a request timed out",
						route->server->servername)));
	polyglot_io_timed_out = false;
	PG_TRY();
	{
		sent = sink->send(route, part);
		sink->finish(route, part, sent, results + first);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (sent)
			sink->abandon(route, sent);
		if (!is_key_fault(edata) && !(slow = is_slow_key(route)))
			ReThrowError(edata);
	}
	PG_END_TRY();
	if (edata == NULL)
		return;
	if (count == 1)
	{
		(*refused_alone)++;
		results[first].status = POLYGLOT_ITEM_FAILED;
		results[first].error = edata->detail ?
			psprintf("%s%s: %s", slow ? "the row could not be delivered within io_timeout: " : "",
					 edata->message, edata->detail) :
			psprintf("%s%s", slow ? "the row could not be delivered within io_timeout: " : "",
					 edata->message);
		return;
	}
	deliver_part(route, sink, items, first, count / 2, results, refused_alone);
	deliver_part(route, sink, items, first + count / 2, count - count / 2, results,
				 refused_alone);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Delivers a batch that the store refused as a whole, in parts
 * (deliver_part), and acknowledges it: the keys at fault are retried, then
 * dead-lettered, while the others go.  The batch is freed.  When the store
 * refuses every key of a batch of several on its own too, the fault is the
 * route's, not the keys' (a proxy or a server that refuses every write):
 * that ereports, for the route to back off with no attempt counted.
 */
static void
isolate_batch(PolyglotRoute *route, const PolyglotSink *sink, Batch *batch)
{
	int			n = list_length(batch->items);
	MemoryContext old = MemoryContextSwitchTo(batch->cxt);
	PolyglotItemResult *results = batch_results(batch);
	int			refused_alone = 0;

	batch->sent = NULL;
	if (n > 0)
		deliver_part(route, sink, batch->items, 0, n, results, &refused_alone);
	if (n > 1 && refused_alone == n)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the store refused each of the %d keys of a batch on its own", n),
				 errdetail_internal("%s", results[0].error),
				 errhint("A store that refuses every write is taken for a route failure, not for the keys' fault.")));
	ack_whole_batch(route, batch, results, old);
}

/*
 * Inside PG_CATCH of a route's round: the error, copied into cxt (which
 * becomes current), with its transaction, if any, aborted.
 */
static ErrorData *
take_route_error(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	return edata;
}

/*
 * Delivers a route's backlog, batch after batch, until a batch is not full
 * or the time slice ends.  Batches overlap: batch N+1 is read from
 * PostgreSQL while the store works through batch N, then sent, and only
 * then is batch N finished and acknowledged.  Returns true when the slice
 * ended with more to do.  A failure puts the route in backoff (and
 * shortens *sleep_ms to its end); what was not acknowledged is read again
 * later.
 */
static bool
process_route(PolyglotRoute *route, TimestampTz slice_end, long *sleep_ms, bool *did_work,
			  bool *stale)
{
	MemoryContext route_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"pg_polyglot route",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext outer = MemoryContextSwitchTo(route_cxt);
	const PolyglotSink *volatile sink = polyglot_sink_for(route);
	Batch	   *volatile prev = NULL;
	Batch	   *volatile cur = NULL;
	volatile bool more = false;
	volatile bool isolate = false;

	if (sink == NULL)
	{
		MemoryContextSwitchTo(outer);
		MemoryContextDelete(route_cxt);
		return false;
	}

	polyglot_io_timed_out = false;
	slow_split = false;
	PG_TRY();
	{
		PolyglotPayload payload = sink->payload(route);

		if (route->access_error)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s", route->access_error),
					 errhint("Grant USAGE on the server or create the user mapping again, or drop the route with polyglot.unsync().")));
		if (sink->prepare)
			sink->prepare(route);
		for (;;)
		{
			bool		requeued = false;

			cur = read_batch(route, sink, payload, prev, route_cxt);

			/*
			 * Read with routes from before a change that its snapshot
			 * sees: dropped unsent, and read again by the next round,
			 * which reads the routes again (the batch in flight is of
			 * before, and is finished).
			 */
			if (cur->nevents > 0 && routes_stale(route))
			{
				MemoryContextDelete(cur->cxt);
				cur = NULL;
				*polyglot_outbox_position(route->id) = 0;
				*stale = true;
				more = true;
				break;
			}
			if (cur->nevents > 0)
			{
				*did_work = true;
				pgstat_report_activity(STATE_RUNNING,
									   psprintf("delivering %d changes of route %d",
												cur->nevents, route->id));
				MemoryContextSwitchTo(cur->cxt);
				if (cur->items != NIL)
					cur->sent = sink->send(route, cur->items);
				MemoryContextSwitchTo(route_cxt);
			}
			if (prev)
			{
				/* its keys left out are back in the outbox once it is acknowledged */
				requeued = prev->deferred != NIL;
				finish_batch(route, sink, prev);
				prev = NULL;
			}
			if (cur->nevents == 0)
			{
				MemoryContextDelete(cur->cxt);
				cur = NULL;
				if (!requeued)
					break;
			}
			else
			{
				prev = cur;
				cur = NULL;
				if (!prev->full && !requeued)
					break;
			}
			CHECK_FOR_INTERRUPTS();
			if (GetCurrentTimestamp() >= slice_end)
			{
				more = true;
				break;
			}
		}
		if (prev)
		{
			finish_batch(route, sink, prev);
			prev = NULL;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata = take_route_error(route_cxt);
		long		backoff;

		if (prev && prev->sent)
			sink->abandon(route, prev->sent);
		if (cur && cur->sent)
			sink->abandon(route, cur->sent);
		more = false;
		/* what was not acknowledged is read again, from the first row */
		*polyglot_outbox_position(route->id) = 0;
		if (!*stale && routes_stale(route))
		{
			/*
			 * Not the route's failure, likely: the route is of before a
			 * change (a column it reads dropped, say).  A new round reads
			 * it again, and tries again at once.
			 */
			*stale = true;
			more = true;
		}
		else if ((prev || cur) && (is_key_fault(edata) || is_slow_key(route)))
		{
			isolate = true;
			ereport(LOG,
					(errmsg("pg_polyglot route %d: the store refused a batch as a whole, or did not answer it within io_timeout while answering pings; delivering it in parts to find the keys at fault",
							route->id),
					 errdetail_internal("%s%s%s", edata->message, edata->detail ? ": " : "",
										edata->detail ? edata->detail : "")));
		}
		else
		{
			backoff = polyglot_record_route_failure(route, edata);
			*sleep_ms = Min(*sleep_ms, backoff);
		}
	}
	PG_END_TRY();

	/*
	 * A batch refused for what a key of it holds: the unacknowledged
	 * batches (the one in flight first, for order per key) go in parts.
	 */
	if (isolate)
	{
		PG_TRY();
		{
			if (prev)
			{
				isolate_batch(route, sink, prev);
				prev = NULL;
			}
			if (cur && cur->nevents > 0)
				isolate_batch(route, sink, cur);
			cur = NULL;
			more = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata = take_route_error(route_cxt);
			long		backoff;

			more = false;
			backoff = polyglot_record_route_failure(route, edata);
			*sleep_ms = Min(*sleep_ms, backoff);
		}
		PG_END_TRY();
	}

	slow_split = false;
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(route_cxt);
	route->sink_private = NULL;		/* it lived in route_cxt */
	return more;
}

/*
 * The number of transactions of this database that were prepared before
 * the server started, and so may have written outbox rows under another
 * polyglot.workers: rows that the start-up re-split could not see, which
 * appear at COMMIT PREPARED.  Runs in a transaction of its own.
 */
int
polyglot_old_prepared_xacts(void)
{
	bool		isnull;
	int			n;

	begin_tx();
	(void) spi_exec("SELECT pg_catalog.count(*)::int4 FROM pg_catalog.pg_prepared_xacts "
					"WHERE database = pg_catalog.current_database() "
					"AND prepared < pg_catalog.pg_postmaster_start_time()",
					0, NULL, NULL, NULL, true, SPI_OK_SELECT, "count prepared transactions");
	n = DatumGetInt32(spi_datum(SPI_tuptable->vals[0], 1, &isnull));
	end_tx();
	return n;
}

/*
 * One round over the routes of the database: every route in a full round,
 * else only those that the wake-up hints name (polyglot_take_route_hints)
 * and, on worker 0, those with a backfill or fan-out under way.  Returns
 * true when some route had a full batch, so the worker should go on without
 * sleeping (with a full round); *sleep_ms is shortened to the end of the
 * nearest backoff.
 */
bool
polyglot_dispatch_round(bool full, long *sleep_ms, bool *extension_gone, bool *did_work)
{
	uint64		hints[POLYGLOT_ROUTE_HINT_BITS / 64];
	bool		use_hints = polyglot_take_route_hints(hints) && !full;
	bool		reloaded;
	List	   *routes = round_routes(extension_gone, &reloaded);
	ListCell   *lc;
	bool		more = false;
	TimestampTz now = GetCurrentTimestamp();
	bool		restored = false;
	bool		stale = false;
	int			nroutes;
	int			first = 0;
	int			turn;

	/* routes read again: look at all of them, whatever changed */
	if (reloaded)
		use_hints = false;
	/* a key put back for a retry is due: no commit names its route */
	if (retry_due != 0 && retry_due <= now)
	{
		use_hints = false;
		retry_due = 0;
	}
	foreach(lc, routes)
		restored |= ((PolyglotRoute *) lfirst(lc))->restored;
	if (restored && polyglot_worker_slot == 0)
	{
		/* routes that pg_dump wrote and a restore loaded: take them back */
		begin_tx();
		(void) spi_exec("SELECT polyglot._reattach_restored()", 0, NULL, NULL, NULL, false,
						SPI_OK_SELECT, "reattach restored routes");
		end_tx();
	}

	/*
	 * A round cut short because every route was of before a change starts
	 * the next one where it stopped, so that the routes after a busy one
	 * still get their turn.
	 */
	nroutes = list_length(routes);
	if (resume_route != 0)
	{
		for (first = 0; first < nroutes; first++)
			if (((PolyglotRoute *) list_nth(routes, first))->id >= resume_route)
				break;
		if (first == nroutes)
			first = 0;
		resume_route = 0;
	}
	for (turn = 0; turn < nroutes; turn++)
	{
		PolyglotRoute *route = (PolyglotRoute *) list_nth(routes, (first + turn) % nroutes);
		uint32		bit = (uint32) route->id % POLYGLOT_ROUTE_HINT_BITS;

		CHECK_FOR_INTERRUPTS();
		/* a restored route waits until it is reattached (its server's OID is the dump's) */
		if (route->paused || !route->source_exists || route->restored)
			continue;
		if (route->backoff_until > now)
		{
			long		wait = (long) ((route->backoff_until - now) / 1000) + 1;

			*sleep_ms = Min(*sleep_ms, wait);
			continue;
		}

		/*
		 * A round woken by commits looks at the routes they name, at
		 * worker 0's steps under way, and at a route whose backoff has just
		 * ended (no commit names it when its store comes back).
		 */
		if (use_hints && (hints[bit / 64] & (UINT64CONST(1) << (bit % 64))) == 0 &&
			!(polyglot_worker_slot == 0 && (route->backfilling || route->fanning_out)) &&
			route->backoff_until == DT_NOBEGIN)
			continue;
		/* the first worker enqueues backfills, for every slot */
		/*
		 * ... and the documents that changes of related rows touch.  A step
		 * that waits for its last chunk to be delivered, by other workers
		 * too, is tried again soon: they do not wake this one.
		 */
		if (polyglot_worker_slot == 0 && (route->backfilling || route->fanning_out))
		{
			bool		waiting = false;

			if (route->backfilling && polyglot_backfill_step(route, &waiting))
				more = true;
			if (waiting)
				*sleep_ms = Min(*sleep_ms, POLYGLOT_STEP_RECHECK_MS);
			waiting = false;
			if (route->fanning_out && polyglot_fanout_step(route, &waiting))
				more = true;
			if (waiting)
				*sleep_ms = Min(*sleep_ms, POLYGLOT_STEP_RECHECK_MS);
		}

		/*
		 * A route with a backlog gets several batches in a row, up to a
		 * time slice, so that other routes still get their turn.
		 */
		if (process_route(route,
						  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  POLYGLOT_ROUTE_SLICE_MS),
						  sleep_ms, did_work, &stale))
			more = true;
		/*
		 * A route of before a change: a full round follows at once, which
		 * reads the routes again; the others go on unless they all are.
		 */
		if (stale)
		{
			more = true;
			if (routes_all_stale())
			{
				resume_route = route->id;
				stale_cuts++;
				break;
			}
			stale = false;
		}
	}
	if (!stale)
		stale_cuts = 0;
	if (retry_due != 0)
		*sleep_ms = Min(*sleep_ms,
						(long) Max((retry_due - GetCurrentTimestamp()) / 1000 + 1, 1));
	return more;
}
