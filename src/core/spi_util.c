/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *		The worker's SPI helpers: a short transaction with an SPI connection
 *		and a snapshot, statements whose plans are kept for the worker's
 *		life, and values of the current SPI result.
 *
 * Callers run between begin_tx() and end_tx(); an unexpected result code
 * is an internal error naming what was being done.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "core/core.h"

void
begin_tx(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
end_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Runs one statement with parameters through SPI; anything but the expected
 * result code is an internal error naming what was being done.  Returns the
 * number of rows processed.  With a plan cache, the statement is prepared
 * once per worker and kept (the plan cache replans it when the tables it
 * uses change); the worker's fixed statements run this way.
 */
uint64
spi_exec_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes, Datum *args,
			  const char *nulls, bool read_only, int expected, const char *what)
{
	int			rc;

	if (cache == NULL)
		rc = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, read_only, 0);
	else
	{
		if (*cache == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

			if (plan == NULL)
				elog(ERROR, "pg_polyglot: preparing to %s failed: %s", what,
					 SPI_result_code_string(SPI_result));
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "pg_polyglot: keeping the plan to %s failed", what);
			*cache = plan;
		}
		rc = SPI_execute_plan(*cache, args, nulls, read_only, 0);
	}
	if (rc != expected)
		elog(ERROR, "pg_polyglot: %s failed: %s", what, SPI_result_code_string(rc));
	return SPI_processed;
}

/* A statement that is not worth keeping a plan for */
uint64
spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args, const char *nulls,
		 bool read_only, int expected, const char *what)
{
	return spi_exec_plan(NULL, sql, nargs, argtypes, args, nulls, read_only, expected, what);
}

/* A text value of the current SPI result, copied to the caller's context. */
char *
spi_text(HeapTuple tup, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, SPI_tuptable->tupdesc, col);
	char	   *result;

	if (v == NULL)
		return NULL;
	result = MemoryContextStrdup(cxt, v);
	pfree(v);
	return result;
}

Datum
spi_datum(HeapTuple tup, int col, bool *isnull)
{
	return SPI_getbinval(tup, SPI_tuptable->tupdesc, col, isnull);
}

/* A text[] of the current SPI result as a List of C strings in cxt. */
List *
spi_text_array(HeapTuple tup, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = spi_datum(tup, col, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	List	   *result = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	arr = DatumGetArrayTypeP(d);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	old = MemoryContextSwitchTo(cxt);
	for (i = 0; i < n; i++)
		result = lappend(result, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return result;
}
