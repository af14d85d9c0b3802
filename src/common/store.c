/*-------------------------------------------------------------------------
 *
 * store.c
 *		Which store a foreign server belongs to.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"
#include "common/store.h"

/*
 * Which store a foreign server belongs to, from the C symbol of its
 * wrapper's handler.  Ereports when the server is not one of ours.
 */
PolyglotStore
polyglot_server_store(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	HeapTuple	tp;
	char	   *prosrc = NULL;

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

	if (prosrc && strcmp(prosrc, "polyglot_redis_handler") == 0)
		return POLYGLOT_STORE_REDIS;
	if (prosrc && strcmp(prosrc, "polyglot_mongo_handler") == 0)
		return POLYGLOT_STORE_MONGO;
	if (prosrc && strcmp(prosrc, "polyglot_elastic_handler") == 0)
		return POLYGLOT_STORE_ELASTIC;

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("server \"%s\" does not belong to a pg_polyglot foreign-data wrapper",
					server->servername),
			 errdetail("Its foreign-data wrapper is \"%s\".", fdw->fdwname),
			 errhint("pg_polyglot serves polyglot_redis, polyglot_mongo and polyglot_elastic servers.")));
	pg_unreachable();
}

PG_FUNCTION_INFO_V1(polyglot_server_store_sql);

/*
 * polyglot._server_store(server name): 'redis', 'mongo' or 'elastic' for a
 * pg_polyglot server; an error for any other.
 */
Datum
polyglot_server_store_sql(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)), false);

	switch (polyglot_server_store(server))
	{
		case POLYGLOT_STORE_REDIS:
			PG_RETURN_TEXT_P(cstring_to_text("redis"));
		case POLYGLOT_STORE_MONGO:
			PG_RETURN_TEXT_P(cstring_to_text("mongo"));
		case POLYGLOT_STORE_ELASTIC:
			PG_RETURN_TEXT_P(cstring_to_text("elastic"));
	}
	PG_RETURN_NULL();
}
