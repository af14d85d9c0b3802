/*-------------------------------------------------------------------------
 *
 * elastic_import.c
 *		IMPORT FOREIGN SCHEMA for the polyglot_elastic wrapper (placeholder:
 *		being written).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

List *
elasticImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("IMPORT FOREIGN SCHEMA is not supported yet by polyglot_elastic")));
	return NIL;
}
