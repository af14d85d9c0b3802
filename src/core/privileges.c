/*-------------------------------------------------------------------------
 *
 * privileges.c
 *		Who may create and operate routes, checked in C as the caller, then
 *		done as the owner of the extension.
 *
 * The extension's tables (routes, outbox, route state, dead letters) are
 * writable by their owner only.  polyglot.sync(), unsync(), pause(),
 * resume(), retry() and backfill() are C functions that run with the
 * caller's identity (not SECURITY DEFINER, so GetUserId() is whoever called
 * them, even from another function), check it, then switch to the owner of
 * the extension's tables to call the internal function that does the work
 * (polyglot._sync() and the like, which PUBLIC may not execute):
 *
 *	- sync(source, server): the caller owns the table (or is a member of its
 *	  owning role) and has USAGE on the server; the route belongs to the
 *	  caller, and the worker reaches the store with the caller's user
 *	  mapping.
 *	- unsync(source, server): the caller owns the table.
 *	- pause, resume, retry, backfill (route): the caller has the privileges
 *	  of the route's owner, or owns its table.
 *
 * Superusers pass every check.  polyglot.verify() makes the same route check
 * itself (verify.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/dispatch.h"

PG_FUNCTION_INFO_V1(polyglot_sync);
PG_FUNCTION_INFO_V1(polyglot_unsync);
PG_FUNCTION_INFO_V1(polyglot_unsync_name);
PG_FUNCTION_INFO_V1(polyglot_route_call);

/* Does a role own a relation (directly or through membership)? */
static bool
owns_relation(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/* The caller must own the table; the standard error otherwise. */
static void
check_table_owner(Oid relid)
{
	char	   *name;

	if (owns_relation(relid, GetUserId()))
		return;
	name = get_rel_name(relid);
	if (name == NULL)
		return;					/* gone: the internal function says so */
	aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, name);
}

/*
 * Sets search_path to pg_catalog, pg_temp until AtEOXact_GUC(true, level)
 * with the level returned (or the end of the (sub)transaction): for SQL run
 * as the extension's owner, which must not resolve a name to an object the
 * caller created.
 */
int
polyglot_pin_search_path(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", POLYGLOT_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/*
 * The settings the worker delivers under and verify compares under,
 * whatever the server's or the session's: dates and intervals in ISO
 * style, times with time zone in UTC, bytea in hex, floats in their
 * shortest exact form (as the capture trigger writes keys), the
 * search_path of polyglot_pin_search_path(), and string and array literals
 * read in the standard way.
 */
static const char *const fixed_settings[][2] = {
	{"datestyle", "ISO"},
	{"intervalstyle", "postgres"},
	{"timezone", "UTC"},
	{"bytea_output", "hex"},
	{"extra_float_digits", "1"},
	{"search_path", POLYGLOT_SAFE_SEARCH_PATH},
	/* how a route filter's literals read back (src/core/rowfilter.c) */
	{"standard_conforming_strings", "on"},
	{"array_nulls", "on"},
};

/*
 * Sets fixed_settings: for the process's lifetime (the worker, where no
 * ALTER ROLE or ALTER DATABASE setting overrides them; returns 0), or
 * until AtEOXact_GUC(true, level) with the level returned (verify).
 */
int
polyglot_fix_settings(bool for_process)
{
	int			level = for_process ? 0 : NewGUCNestLevel();
	int			i;

	for (i = 0; i < (int) lengthof(fixed_settings); i++)
		(void) set_config_option(fixed_settings[i][0], fixed_settings[i][1],
								 for_process ? PGC_SUSET : PGC_USERSET,
								 for_process ? PGC_S_OVERRIDE : PGC_S_SESSION,
								 for_process ? GUC_ACTION_SET : GUC_ACTION_SAVE,
								 true, 0, false);
	return level;
}

/* The owner of the extension's tables, who does the work. */
Oid
polyglot_extension_owner(void)
{
	Oid			nsp = get_namespace_oid("polyglot", false);
	Oid			relid = get_relname_relid("routes", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the pg_polyglot table polyglot.routes is missing")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* An internal function of the extension, by name and argument types. */
static Oid
internal_function(const char *name, int nargs, Oid *argtypes)
{
	return LookupFuncName(list_make2(makeString("polyglot"), makeString(pstrdup(name))),
						  nargs, argtypes, false);
}

/*
 * Calls an internal function as the owner of the extension, with the
 * caller's arguments.  An error on the way restores the caller's identity
 * with the (sub)transaction's abort.
 */
static Datum
call_as_owner(Oid fnoid, int nargs, Datum *args, bool *isnull)
{
	Oid			save_userid;
	int			save_sec_context;
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
	FmgrInfo	flinfo;
	Datum		result;
	int			i;

	fmgr_info(fnoid, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, nargs, InvalidOid, NULL, NULL);
	for (i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(polyglot_extension_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	result = FunctionCallInvoke(fcinfo);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * Runs what follows as the owner of the extension's tables, with a
 * search_path the caller cannot have planted operators in, connected to
 * SPI.  polyglot_owner_spi_end() disconnects and gives both back; an error
 * on the way gives them back with the (sub)transaction's abort.
 */
void
polyglot_owner_spi_begin(PolyglotOwnerSpi *saved)
{
	saved->nestlevel = polyglot_pin_search_path();
	GetUserIdAndSecContext(&saved->save_userid, &saved->save_sec_context);
	SetUserIdAndSecContext(polyglot_extension_owner(),
						   saved->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
}

void
polyglot_owner_spi_end(PolyglotOwnerSpi *saved)
{
	SPI_finish();
	SetUserIdAndSecContext(saved->save_userid, saved->save_sec_context);
	AtEOXact_GUC(true, saved->nestlevel);
}

/*
 * Checks that the caller may operate a route: a superuser, a role with the
 * privileges of the route's owner, or the owner of its table.  A route that
 * does not exist passes: the internal function reports it.
 */
void
polyglot_check_route_privilege(int32 route)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(route)};
	Oid			caller = GetUserId();
	Oid			owner = InvalidOid;
	Oid			relid = InvalidOid;
	PolyglotOwnerSpi saved;

	if (superuser_arg(caller))
		return;

	/*
	 * The routes table is the owner's: read it as the owner, with a
	 * search_path the caller cannot have planted operators in.
	 */
	polyglot_owner_spi_begin(&saved);
	if (SPI_execute_with_args("SELECT r.owner, r.source_relid FROM polyglot.routes r "
							  "WHERE r.id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_polyglot: reading route %d failed", route);
	if (SPI_processed == 1)
	{
		bool		isnull;

		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	polyglot_owner_spi_end(&saved);

	if (!OidIsValid(owner))
		return;
	if (has_privs_of_role(caller, owner))
		return;
	if (OidIsValid(relid) && get_rel_name(relid) != NULL && owns_relation(relid, caller))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for route %d", route),
			 errdetail("Only the route's owner and the owner of its table may operate it.")));
}

/*
 * After polyglot.sync() created route route_id: the store's target, when
 * its sink makes one (PolyglotSink.create_target: an Elasticsearch index
 * of given mappings).  The route is read as the owner of the extension,
 * the store reached as the caller, the route's owner.
 */
static void
create_route_target(int32 route_id)
{
	PolyglotRoute *route = polyglot_load_route_as_owner(route_id);
	const PolyglotSink *sink;

	if (route == NULL)
		return;
	sink = polyglot_sink_for(route);
	if (sink == NULL || sink->create_target == NULL)
		return;
	polyglot_route_require_server(route);
	if (route->access_error)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", route->access_error)));
	sink->create_target(route);
}

/*
 * A route as the worker loads it (its server and the user mapping of its
 * owner included), read as the owner of the extension in the current
 * statement's snapshot, with what this transaction wrote so far; NULL when
 * there is no such route.  Allocated in the caller's memory context.  The
 * caller checks that it may operate the route first.
 */
PolyglotRoute *
polyglot_load_route_as_owner(int32 route_id)
{
	MemoryContext cxt = CurrentMemoryContext;	/* not SPI's, which SPI_finish() frees */
	List	   *routes;
	PolyglotOwnerSpi saved;

	/* (polyglot_load_routes() takes 0 for every route) */
	if (route_id <= 0)
		return NULL;
	polyglot_owner_spi_begin(&saved);
	/* the statement's snapshot, with the route _sync() just inserted */
	CommandCounterIncrement();
	PushCopiedSnapshot(GetActiveSnapshot());
	UpdateActiveSnapshotCommandId();
	routes = polyglot_load_routes(route_id, cxt);
	PopActiveSnapshot();
	polyglot_owner_spi_end(&saved);
	if (routes == NIL || ((PolyglotRoute *) linitial(routes))->id != route_id)
		return NULL;
	return (PolyglotRoute *) linitial(routes);
}

/*
 * polyglot.sync(source regclass, server name, options jsonb, backfill
 * boolean) returns int.
 */
Datum
polyglot_sync(PG_FUNCTION_ARGS)
{
	Oid			source;
	Name		server;
	ForeignServer *fs;
	Oid			argtypes[5] = {REGCLASSOID, NAMEOID, JSONBOID, BOOLOID, OIDOID};
	Datum		args[5];
	bool		isnull;
	Datum		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("polyglot.sync() needs a table and a server")));
	source = PG_GETARG_OID(0);
	server = PG_GETARG_NAME(1);

	check_table_owner(source);
	fs = GetForeignServerByName(NameStr(*server), true);
	if (fs != NULL)
	{
		AclResult	aclresult;

#if PG_VERSION_NUM >= 160000
		aclresult = object_aclcheck(ForeignServerRelationId, fs->serverid, GetUserId(), ACL_USAGE);
#else
		aclresult = pg_foreign_server_aclcheck(fs->serverid, GetUserId(), ACL_USAGE);
#endif
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, fs->servername);
	}

	args[0] = ObjectIdGetDatum(source);
	args[1] = NameGetDatum(server);
	args[2] = PG_ARGISNULL(2) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) :
		JsonbPGetDatum(polyglot_document_as_given(source,
												  polyglot_where_as_given(source, PG_GETARG_JSONB_P(2))));
	args[3] = BoolGetDatum(PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3));
	args[4] = ObjectIdGetDatum(GetUserId());	/* the route's owner */
	result = call_as_owner(internal_function("_sync", 5, argtypes), 5, args, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	create_route_target(DatumGetInt32(result));
	PG_RETURN_DATUM(result);
}

/* polyglot.unsync(source regclass, server name) */
Datum
polyglot_unsync(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {REGCLASSOID, NAMEOID};
	Datum		args[2];
	bool		isnull;

	check_table_owner(PG_GETARG_OID(0));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	(void) call_as_owner(internal_function("_unsync", 2, argtypes), 2, args, &isnull);
	PG_RETURN_VOID();
}

/*
 * polyglot.unsync(route text): the route of that name, by the owner of its
 * table, as unsync(source, server).
 */
Datum
polyglot_unsync_name(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTOID, REGCLASSOID};
	Datum		args[2];
	bool		isnull;
	Datum		source;

	args[0] = PG_GETARG_DATUM(0);
	/*
	 * The caller sees the route (polyglot.route(), under the row security
	 * of polyglot.routes), as pause() and the others do: a route of another
	 * role is not found, rather than found and refused
	 */
	(void) OidFunctionCall1(LookupFuncName(list_make2(makeString("polyglot"), makeString("route")),
										   1, argtypes, false),
							args[0]);
	source = call_as_owner(internal_function("_route_source", 1, argtypes), 1, args, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("route \"%s\" does not exist", text_to_cstring(PG_GETARG_TEXT_PP(0)))));
	check_table_owner(DatumGetObjectId(source));
	args[1] = source;
	(void) call_as_owner(internal_function("_unsync_named", 2, argtypes), 2, args, &isnull);
	PG_RETURN_VOID();
}

/*
 * polyglot.pause(route), resume(route), retry(route), backfill(route): the
 * route check, then polyglot._<name>(route) as the owner.
 */
Datum
polyglot_route_call(PG_FUNCTION_ARGS)
{
	int32		route = PG_GETARG_INT32(0);
	char	   *name = get_func_name(fcinfo->flinfo->fn_oid);
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	bool		isnull;
	Datum		result;

	if (name == NULL)
		elog(ERROR, "pg_polyglot: cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	polyglot_check_route_privilege(route);
	args[0] = Int32GetDatum(route);
	result = call_as_owner(internal_function(psprintf("_%s", name), 1, argtypes), 1, args, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/*
 * ALTER SERVER ... RENAME TO (the ProcessUtility hook, worker.c, once the
 * rename is done): the routes of the server, known by its OID, take its
 * new name, which they keep for messages, polyglot.unsync() and a restore,
 * in the renaming transaction.  Nothing happens in a database without
 * pg_polyglot.  Runs as the owner of the extension, with a safe
 * search_path: the renaming role owns the server, not the routes.
 */
void
polyglot_rename_server_routes(const char *newname)
{
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		args[2];
	Oid			server;
	PolyglotOwnerSpi saved;

	CommandCounterIncrement();	/* the renamed server */
	server = get_foreign_server_oid(newname, true);
	if (!OidIsValid(server) || !OidIsValid(get_extension_oid("pg_polyglot", true)))
		return;
	args[0] = ObjectIdGetDatum(server);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(newname));
	polyglot_owner_spi_begin(&saved);
	(void) spi_exec("UPDATE polyglot.routes SET server_name = $2 "
					"WHERE server_oid OPERATOR(pg_catalog.=) $1",
					2, argtypes, args, NULL, false, SPI_OK_UPDATE, "rename the server of routes");
	polyglot_owner_spi_end(&saved);
}
