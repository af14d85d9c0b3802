/*-------------------------------------------------------------------------
 *
 * fdw_stub.c
 *		The FdwRoutine of a store whose scans and writes are not built yet.
 *
 * The foreign-data wrappers exist from the start so that servers, user
 * mappings and foreign tables can be created and validated, and so that
 * polyglot.ping() and sync can use the servers.  Planning a query on a
 * foreign table of a store without scan support stops with a clear
 * "not supported" error instead of a crash.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "utils/lsyscache.h"

#include "pg_polyglot.h"

static void
stubGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	ForeignServer *server = GetForeignServer(table->serverid);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("foreign tables of foreign-data wrapper \"%s\" cannot be queried yet",
					fdw->fdwname),
			 errdetail("Foreign table \"%s\" is defined, but this version of pg_polyglot cannot scan it.",
					   get_rel_name(foreigntableid))));
}

static void
stubGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	elog(ERROR, "pg_polyglot: foreign scan planned without support");
}

static ForeignScan *
stubGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				   ForeignPath *best_path, List *tlist, List *scan_clauses,
				   Plan *outer_plan)
{
	elog(ERROR, "pg_polyglot: foreign scan planned without support");
	return NULL;
}

static void
stubBeginForeignScan(ForeignScanState *node, int eflags)
{
	elog(ERROR, "pg_polyglot: foreign scan started without support");
}

static TupleTableSlot *
stubIterateForeignScan(ForeignScanState *node)
{
	elog(ERROR, "pg_polyglot: foreign scan started without support");
	return NULL;
}

static void
stubReScanForeignScan(ForeignScanState *node)
{
}

static void
stubEndForeignScan(ForeignScanState *node)
{
}

/*
 * A palloc'd FdwRoutine whose planning entry point reports that the store's
 * foreign tables cannot be queried yet.
 */
FdwRoutine *
polyglot_unsupported_fdw_routine(void)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = stubGetForeignRelSize;
	routine->GetForeignPaths = stubGetForeignPaths;
	routine->GetForeignPlan = stubGetForeignPlan;
	routine->BeginForeignScan = stubBeginForeignScan;
	routine->IterateForeignScan = stubIterateForeignScan;
	routine->ReScanForeignScan = stubReScanForeignScan;
	routine->EndForeignScan = stubEndForeignScan;
	return routine;
}
