/*-------------------------------------------------------------------------
 *
 * backfill.c
 *		Backfill: the keys of a table's rows, in key order and a chunk at a
 *		time, and the worker's step that enqueues the next chunk.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "core/core.h"

PG_FUNCTION_INFO_V1(polyglot_backfill_keys);
PG_FUNCTION_INFO_V1(polyglot_fanout_keys);

static Datum keys_after(FunctionCallInfo fcinfo, Jsonb *options, int relation, Datum vals);

/*
 * polyglot._backfill_keys(source regclass, key_columns name[], after text[],
 * chunk int, filter text) returns text[]: the next chunk keys of the table
 * after the key after (from the first when NULL), of the rows that the
 * route's filter takes (all without one), in key order, as a [n][ncols] text
 * array rendered as the capture trigger renders keys; NULL when none is
 * left.  The table is read as its owner, in a security-restricted
 * operation: casts or functions the owner defined on the key types never
 * run with the worker's rights.
 */
Datum
polyglot_backfill_keys(PG_FUNCTION_ARGS)
{
	return keys_after(fcinfo, NULL, 0, (Datum) 0);
}

/*
 * polyglot._fanout_keys(source regclass, key_columns name[], after text[],
 * chunk int, filter text, options jsonb, relation int, vals text[]) returns
 * text[]: as polyglot._backfill_keys(), the keys of the documents that
 * contain the rows of the route's relation whose link values are vals (a
 * [n][link columns] text array; NULL: every document).
 */
Datum
polyglot_fanout_keys(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(5) || PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("polyglot._fanout_keys() needs a route's options and a relation")));
	return keys_after(fcinfo, PG_GETARG_JSONB_P(5), PG_GETARG_INT32(6),
					  PG_ARGISNULL(7) ? (Datum) 0 : PG_GETARG_DATUM(7));
}

/*
 * The next keys of a table after a key (fcinfo's first five arguments, as
 * polyglot._backfill_keys() takes them); with options, only those of the
 * documents that contain the rows of relation whose link values are vals.
 */
static Datum
keys_after(FunctionCallInfo fcinfo, Jsonb *options, int relation, Datum vals)
{
	Oid			relid;
	ArrayType  *cols;
	int32		chunk;
	Datum	   *colnames;
	int			ncols;
	Oid			typids[INDEX_MAX_KEYS];
	FmgrInfo	outfuncs[INDEX_MAX_KEYS];
	StringInfoData sql;
	StringInfoData order;
	StringInfoData after;
	Relation	rel;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	bool		where = false;
	Datum	   *elems;
	uint64		n,
				r;
	int			i;
	int			dims[2];
	int			lbs[2] = {1, 1};
	ArrayType  *result;

	/* not STRICT: after is NULL for the first chunk; the others may not be */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("polyglot._backfill_keys() needs a table, its key columns and a chunk size")));
	relid = PG_GETARG_OID(0);
	cols = PG_GETARG_ARRAYTYPE_P(1);
	chunk = PG_GETARG_INT32(3);
	if (ARR_NDIM(cols) > 1 || array_contains_nulls(cols))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key columns of polyglot._backfill_keys() are a list of names")));
	deconstruct_array(cols, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &colnames, NULL, &ncols);
	if (ncols < 1 || ncols > INDEX_MAX_KEYS)
		elog(ERROR, "pg_polyglot: a key has 1 to %d columns", INDEX_MAX_KEYS);

	rel = table_open(relid, AccessShareLock);
	owner = rel->rd_rel->relowner;
	initStringInfo(&order);
	initStringInfo(&after);
	for (i = 0; i < ncols; i++)
	{
		const char *name = NameStr(*DatumGetName(colnames[i]));
		AttrNumber	attnum = get_attnum(relid, name);
		Form_pg_attribute att;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" of \"%s\" does not exist", name,
							RelationGetRelationName(rel))));
		att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
		polyglot_key_output_setup(att->atttypid, &typids[i], &outfuncs[i], CurrentMemoryContext);
		appendStringInfo(&order, "%st.%s", i ? ", " : "", quote_identifier(name));
		appendStringInfo(&after, "%s$1[%d]::%s", i ? ", " : "", i + 1,
						 format_type_with_typemod(att->atttypid, att->atttypmod));
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s FROM ONLY %s.%s t ", order.data,
					 quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
					 quote_identifier(RelationGetRelationName(rel)));
	if (!PG_ARGISNULL(2))
	{
		appendStringInfo(&sql, "WHERE (%s) > (%s) ", order.data, after.data);
		where = true;
	}
	/* a route's filter: only the rows it takes (checked again, as t's) */
	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		appendStringInfo(&sql, "%s (%s) ", where ? "AND" : "WHERE",
						 polyglot_where_text(relid, text_to_cstring(PG_GETARG_TEXT_PP(4)), "t",
											 false));
		where = true;
	}
	/* a fan-out: the documents that contain the related rows */
	if (options && vals != (Datum) 0)
	{
		char	   *cond = polyglot_relation_condition(options, relation, "$2");

		if (cond == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the route has no relation %d", relation)));
		appendStringInfo(&sql, "%s %s ", where ? "AND" : "WHERE", cond);
	}
	appendStringInfo(&sql, "ORDER BY %s LIMIT %d", order.data, Max(chunk, 1));
	/* keep the lock: the output functions chosen above must stay right */
	table_close(rel, NoLock);

	args[0] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(2))
		nulls[0] = 'n';
	args[1] = vals;
	if (vals == (Datum) 0)
		nulls[1] = 'n';

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	if (SPI_execute_with_args(sql.data, 2, argtypes, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_polyglot: reading the keys of \"%s\" failed", get_rel_name(relid));
	n = SPI_processed;
	elems = palloc(sizeof(Datum) * Max(n, 1) * ncols);
	for (r = 0; r < n; r++)
		polyglot_spi_key_texts(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, ncols, typids, outfuncs,
					  &elems[r * ncols]);
	if (n == 0)
	{
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
		PG_RETURN_NULL();
	}
	dims[0] = (int) n;
	dims[1] = ncols;
	result = construct_md_array(elems, NULL, 2, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
	result = (ArrayType *) SPI_datumTransfer(PointerGetDatum(result), false, -1);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * Runs one step (sql, "SELECT polyglot._x_step($1)") of a route in its own
 * transaction.  The step returns true when it has more to do at once,
 * false when it is over, NULL when it waits for the chunks it enqueued to
 * be delivered (by other workers too): *waiting says so, and the caller
 * looks again soon rather than after a poll interval.
 */
static bool
run_step(PolyglotRoute *route, SPIPlanPtr *plan, const char *sql, const char *what,
		 const char *activity, bool *waiting)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool more = false;
	volatile bool wait = false;

	PG_TRY();
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		args[1];
		bool		isnull = true;

		pgstat_report_activity(STATE_RUNNING, psprintf("%s route %d", activity, route->id));
		begin_tx();
		args[0] = Int32GetDatum(route->id);
		(void) spi_exec_plan(plan, sql, 1, argtypes, args, NULL, false, SPI_OK_SELECT, what);
		if (SPI_processed == 1)
		{
			bool		v = DatumGetBool(spi_datum(SPI_tuptable->vals[0], 1, &isnull));

			more = !isnull && v;
			wait = isnull;
		}
		end_tx();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		(void) polyglot_record_route_failure(route, edata);
		more = false;
		wait = false;
	}
	PG_END_TRY();
	if (waiting)
		*waiting = wait;
	return more;
}

/*
 * One step of a route's backfill, in its own transaction: the next chunk
 * of rows, in key order, into the outbox, with the position reached, so
 * that a backfill cut short by a crash resumes after its last chunk.  The
 * step waits (enqueues nothing) while earlier chunks are still pending.
 * Returns true when the backfill has more to do at once.
 */
bool
polyglot_backfill_step(PolyglotRoute *route, bool *waiting)
{
	static SPIPlanPtr step_plan = NULL;

	return run_step(route, &step_plan, "SELECT polyglot._backfill_step($1)",
					"enqueue a backfill chunk", "backfilling", waiting);
}

/*
 * One step of a route's fan-out, in its own transaction: the documents
 * that contain related rows changed since (the fan-out rows of the route,
 * written by polyglot._capture_related()), up to a chunk of keys, into the
 * outbox as 'R' events, each fan-out row deleted once it is expanded
 * whole or else keeping the position it reached.  Like a backfill step, it
 * waits while earlier chunks are pending.
 */
bool
polyglot_fanout_step(PolyglotRoute *route, bool *waiting)
{
	static SPIPlanPtr step_plan = NULL;

	return run_step(route, &step_plan, "SELECT polyglot._fanout_step($1)",
					"enqueue the documents of changed related rows", "fanning out", waiting);
}
