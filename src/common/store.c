/*-------------------------------------------------------------------------
 *
 * store.c
 *		The registry of stores: one entry per store, and the lookups by
 *		server and by name.
 *
 * Adding a store is one entry here (and its folder: see README, Layout).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/dispatch.h"
#include "elastic/elastic.h"
#include "http/http.h"
#include "mongo/mongo.h"
#include "redis/redis.h"

/*
 * A store's entry.  Its parts follow the names of its folder:
 * polyglot_<name>_options, _route_options, _check_route and _endpoint in
 * <name>_option.c, polyglot_<name>_sink in <name>_sink.c, polyglot_<name>_ping
 * and the wrapper's handler polyglot_<name>_handler (its validator is
 * polyglot_<name>_validator below).  check_options and init are optional:
 * init runs at library load in every backend.
 */
#define STORE(name_, label_, check_options_, init_) \
	{ \
		.name = #name_, \
		.label = label_, \
		.fdw_name = "polyglot_" #name_, \
		.handler = "polyglot_" #name_ "_handler", \
		.options = polyglot_##name_##_options, \
		.check_options = check_options_, \
		.route_options = polyglot_##name_##_route_options, \
		.check_route = polyglot_##name_##_check_route, \
		.endpoint = polyglot_##name_##_endpoint, \
		.sink = &polyglot_##name_##_sink, \
		.ping = polyglot_##name_##_ping, \
		.init = init_, \
	}

static const PolyglotStoreInfo polyglot_stores[] = {
	STORE(redis, "Redis", polyglot_redis_check_options, polyglot_redis_fdw_init),	/* init: the key joins' planner hook */
	STORE(mongo, "MongoDB", polyglot_mongo_check_options, NULL),
	STORE(elastic, "Elasticsearch", polyglot_elastic_check_options, NULL),
	STORE(http, "HTTP", polyglot_http_check_options, NULL),
};

#define NSTORES ((int) lengthof(polyglot_stores))

/* Each store's set-up at library load (_PG_init) */
void
polyglot_stores_init(void)
{
	int			i;

	for (i = 0; i < NSTORES; i++)
		if (polyglot_stores[i].init)
			polyglot_stores[i].init();
}

/* The store of a name in polyglot.routes.store, or NULL. */
const PolyglotStoreInfo *
polyglot_store_by_name(const char *name)
{
	int			i;

	for (i = 0; i < NSTORES; i++)
		if (strcmp(polyglot_stores[i].name, name) == 0)
			return &polyglot_stores[i];
	return NULL;
}

/*
 * Which store a foreign server belongs to, from the C symbol of its
 * wrapper's handler; NULL when the server is not one of ours.
 */
const PolyglotStoreInfo *
polyglot_server_store_or_null(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	HeapTuple	tp;
	char	   *prosrc = NULL;
	int			i;

	if (OidIsValid(fdw->fdwhandler))
	{
		Datum		datum;
		bool		isnull;

		tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fdw->fdwhandler));
		if (!HeapTupleIsValid(tp))
			elog(ERROR, "cache lookup failed for function %u", fdw->fdwhandler);
		datum = SysCacheGetAttr(PROCOID, tp, Anum_pg_proc_prosrc, &isnull);
		if (!isnull)
			prosrc = TextDatumGetCString(datum);
		ReleaseSysCache(tp);
	}

	for (i = 0; prosrc && i < NSTORES; i++)
		if (strcmp(prosrc, polyglot_stores[i].handler) == 0)
			return &polyglot_stores[i];
	return NULL;
}

/* The store of a server, or an error for a server of another wrapper */
const PolyglotStoreInfo *
polyglot_server_store(ForeignServer *server)
{
	const PolyglotStoreInfo *store = polyglot_server_store_or_null(server);
	ForeignDataWrapper *fdw;
	StringInfoData names;
	int			i;

	if (store != NULL)
		return store;
	fdw = GetForeignDataWrapper(server->fdwid);
	initStringInfo(&names);
	for (i = 0; i < NSTORES; i++)
		appendStringInfo(&names, "%s%s", i == 0 ? "" : i + 1 < NSTORES ? ", " : " and ",
						 polyglot_stores[i].fdw_name);
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("server \"%s\" does not belong to a pg_polyglot foreign-data wrapper",
					server->servername),
			 errdetail("Its foreign-data wrapper is \"%s\".", fdw->fdwname),
			 errhint("pg_polyglot serves %s servers.", names.data)));
	pg_unreachable();
}

PG_FUNCTION_INFO_V1(polyglot_server_store_sql);

/*
 * polyglot._server_store(server name): the store's name ('redis', 'mongo',
 * 'elastic', 'http') for a pg_polyglot server; an error for any other.
 */
Datum
polyglot_server_store_sql(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)), false);

	PG_RETURN_TEXT_P(cstring_to_text(polyglot_server_store(server)->name));
}

PG_FUNCTION_INFO_V1(polyglot_store_of_sql);

/*
 * polyglot._store_of(server oid): the store's name of a pg_polyglot server,
 * NULL when no server has that OID or its wrapper is not one of ours.
 */
Datum
polyglot_store_of_sql(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerExtended(PG_GETARG_OID(0), FSV_MISSING_OK);
	const PolyglotStoreInfo *store;

	if (server == NULL || (store = polyglot_server_store_or_null(server)) == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(store->name));
}

PG_FUNCTION_INFO_V1(polyglot_server_endpoint_sql);

/*
 * polyglot._server_endpoint(server oid): "<wrapper> <endpoint>" of a
 * pg_polyglot server, NULL when there is no such server.
 */
Datum
polyglot_server_endpoint_sql(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerExtended(PG_GETARG_OID(0), FSV_MISSING_OK);
	const PolyglotStoreInfo *store;

	if (server == NULL)
		PG_RETURN_NULL();
	store = polyglot_server_store(server);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s %s",
											  GetForeignDataWrapper(server->fdwid)->fdwname,
											  store->endpoint(server))));
}

/*
 * A wrapper's validator: the options given in a CREATE or ALTER of a catalog
 * object, checked against the store's table, then across each other.
 */
static void
store_validate(const char *name, Datum options, Oid catalog)
{
	const PolyglotStoreInfo *store = polyglot_store_by_name(name);
	List	   *list = untransformRelOptions(options);

	polyglot_validate_options(store->fdw_name, store->options, list, catalog);
	if (store->check_options)
		store->check_options(list, catalog);
}

/* polyglot_<name>_validator(options text[], catalog oid): ereports on the first invalid option */
#define VALIDATOR(name_) \
	PG_FUNCTION_INFO_V1(polyglot_##name_##_validator); \
	Datum \
	polyglot_##name_##_validator(PG_FUNCTION_ARGS) \
	{ \
		store_validate(#name_, PG_GETARG_DATUM(0), PG_GETARG_OID(1)); \
		PG_RETURN_VOID(); \
	}

VALIDATOR(redis)
VALIDATOR(mongo)
VALIDATOR(elastic)
VALIDATOR(http)
