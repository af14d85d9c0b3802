/*-------------------------------------------------------------------------
 *
 * redis_fdw.c
 *		The polyglot_redis foreign-data wrapper handler (Redis).
 *
 * Scans and writes of Redis foreign tables are not built yet: the handler
 * hands out the shared "not supported yet" routine, so that servers and
 * tables can already be created, validated and pinged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"

#include "pg_polyglot.h"

PG_FUNCTION_INFO_V1(polyglot_redis_handler);

Datum
polyglot_redis_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(polyglot_unsupported_fdw_routine());
}
