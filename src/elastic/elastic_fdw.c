/*-------------------------------------------------------------------------
 *
 * elastic_fdw.c
 *		The polyglot_elastic foreign-data wrapper handler (Elasticsearch and OpenSearch).
 *
 * Scans and writes of Elasticsearch and OpenSearch foreign tables are not built yet: the handler
 * hands out the shared "not supported yet" routine, so that servers and
 * tables can already be created, validated and pinged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"

#include "pg_polyglot.h"

PG_FUNCTION_INFO_V1(polyglot_elastic_handler);

Datum
polyglot_elastic_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(polyglot_unsupported_fdw_routine());
}
