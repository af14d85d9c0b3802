/*-------------------------------------------------------------------------
 *
 * mongo_fdw.c
 *		The polyglot_mongo foreign-data wrapper handler (MongoDB).
 *
 * Scans and writes of MongoDB foreign tables are not built yet: the handler
 * hands out the shared "not supported yet" routine, so that servers and
 * tables can already be created, validated and pinged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"

#include "pg_polyglot.h"

PG_FUNCTION_INFO_V1(polyglot_mongo_handler);

Datum
polyglot_mongo_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(polyglot_unsupported_fdw_routine());
}
