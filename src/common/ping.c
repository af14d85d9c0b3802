/*-------------------------------------------------------------------------
 *
 * ping.c
 *		polyglot.ping(server name): reach a store through a foreign server
 *		and report its latency and version as jsonb.
 *
 * The caller needs USAGE on the server, as for any foreign table on it.
 * The connection used is the cached one of the caller's user mapping (or
 * the PUBLIC one, or none), so ping exercises exactly the path that scans
 * and sync take.  An unreachable store is an ERROR, not {"ok": false}:
 * the message says which server and why.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_foreign_server.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/store.h"

PG_FUNCTION_INFO_V1(polyglot_ping);

/* Milliseconds since start, with microsecond resolution. */
double
polyglot_elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * Builds {"ok": true, "store": ..., "server": ..., "flavor": ...,
 * "version": ..., "latency_ms": ...}; flavor only when given.
 */
Jsonb *
polyglot_ping_result(const char *store, const char *server, double latency_ms,
					 const char *version, const char *flavor)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"ok\": true, \"store\": ");
	escape_json(&buf, store);
	appendStringInfoString(&buf, ", \"server\": ");
	escape_json(&buf, server);
	if (flavor)
	{
		appendStringInfoString(&buf, ", \"flavor\": ");
		escape_json(&buf, flavor);
	}
	appendStringInfoString(&buf, ", \"version\": ");
	escape_json(&buf, version ? version : "unknown");
	appendStringInfo(&buf, ", \"latency_ms\": %.3f}", rint(latency_ms * 1000.0) / 1000.0);

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * polyglot.ping(server name) returns jsonb
 */
Datum
polyglot_ping(PG_FUNCTION_ARGS)
{
	Name		servername = PG_GETARG_NAME(0);
	ForeignServer *server;
	UserMapping *user;
	AclResult	aclresult;
	Jsonb	   *result = NULL;

	server = GetForeignServerByName(NameStr(*servername), false);

#if PG_VERSION_NUM >= 160000
	aclresult = object_aclcheck(ForeignServerRelationId, server->serverid,
								GetUserId(), ACL_USAGE);
#else
	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
#endif
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);

	user = polyglot_find_user_mapping(GetUserId(), server->serverid);

	result = polyglot_server_store(server)->ping(server, user);
	PG_RETURN_JSONB_P(result);
}
