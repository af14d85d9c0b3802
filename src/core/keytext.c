/*-------------------------------------------------------------------------
 *
 * keytext.c
 *		The text form of key values: one text per key value whatever the
 *		session's settings, as the capture triggers write keys to the
 *		outbox and as the worker, the backfill and verify compare them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

#include "core/core.h"

PG_FUNCTION_INFO_V1(polyglot_key_text_sql);

/*
 * The text form of a key value, typid being the base type of the column
 * (a domain's).  Date and time types are written in ISO style whatever the
 * session's DateStyle, timestamptz in UTC whatever its TimeZone, bytea in
 * hex and floats in their shortest exact form whatever bytea_output and
 * extra_float_digits say: one row has one key text in every session, and
 * the worker, which reads them back with its own settings, finds the same
 * value.
 */
static char *
key_output(FmgrInfo *outfunc, Oid typid, Datum value)
{
	static pg_tz *utc = NULL;
	int			save_datestyle = DateStyle;
	int			save_intervalstyle = IntervalStyle;
	int			save_bytea_output = bytea_output;
	int			save_extra_float_digits = extra_float_digits;
	pg_tz	   *save_timezone = session_timezone;
	char	   *result;

	switch (typid)
	{
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
		case INTERVALOID:
		case BYTEAOID:
		case FLOAT4OID:
		case FLOAT8OID:
			break;
		default:
			return OutputFunctionCall(outfunc, value);
	}
	if (typid == TIMESTAMPTZOID && utc == NULL)
	{
		utc = pg_tzset("UTC");
		if (utc == NULL)
			elog(ERROR, "pg_polyglot: time zone UTC is not available");
	}
	DateStyle = USE_ISO_DATES;
	IntervalStyle = INTSTYLE_POSTGRES;
	bytea_output = BYTEA_OUTPUT_HEX;
	extra_float_digits = 1;
	if (typid == TIMESTAMPTZOID)
		session_timezone = utc;
	PG_TRY();
	{
		result = OutputFunctionCall(outfunc, value);
	}
	PG_FINALLY();
	{
		DateStyle = save_datestyle;
		IntervalStyle = save_intervalstyle;
		session_timezone = save_timezone;
		bytea_output = save_bytea_output;
		extra_float_digits = save_extra_float_digits;
	}
	PG_END_TRY();
	return result;
}

/*
 * Sets up key_output() for a key column of type atttypid: its base type (a
 * domain's) in *typid, and its output function in *outfunc, in mcxt.
 */
static void
key_column_output(Oid atttypid, Oid *typid, FmgrInfo *outfunc, MemoryContext mcxt)
{
	Oid			func;
	bool		isvarlena;

	*typid = getBaseType(atttypid);
	getTypeOutputInfo(*typid, &func, &isvarlena);
	fmgr_info_cxt(func, outfunc, mcxt);
}

/*
 * The key texts of a row an SPI query returned, its columns being the key
 * columns in order (a NULL as ''), in elems, allocated in the current
 * context.
 */
void
polyglot_spi_key_texts(HeapTuple tuple, TupleDesc tupdesc, int ncols, Oid *typids,
					   FmgrInfo *outfuncs, Datum *elems)
{
	int			i;

	for (i = 0; i < ncols; i++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, tupdesc, i + 1, &isnull);

		elems[i] = CStringGetTextDatum(isnull ? "" :
									   key_output(&outfuncs[i], typids[i], value));
	}
}

/*
 * A value of a key column of type typid as the capture trigger writes it:
 * for code that compares keys with the outbox's (verify).
 */
char *
polyglot_key_text(Oid typid, Datum value)
{
	Oid			basetypid;
	FmgrInfo	flinfo;

	key_column_output(typid, &basetypid, &flinfo, CurrentMemoryContext);
	return key_output(&flinfo, basetypid, value);
}

/*
 * polyglot_key_text() in two steps, for code that renders many values of
 * one column: the set-up (base type and output function, in mcxt), then
 * each value's text.
 */
void
polyglot_key_output_setup(Oid atttypid, Oid *basetypid, FmgrInfo *outfunc, MemoryContext mcxt)
{
	key_column_output(atttypid, basetypid, outfunc, mcxt);
}

char *
polyglot_key_output(FmgrInfo *outfunc, Oid basetypid, Datum value)
{
	return key_output(outfunc, basetypid, value);
}

/*
 * polyglot._key_text(anyelement) returns text: polyglot_key_text() in SQL,
 * with the output function kept for the query.
 */
Datum
polyglot_key_text_sql(PG_FUNCTION_ARGS)
{
	typedef struct KeyTextCache
	{
		Oid			typid;
		Oid			basetypid;
		FmgrInfo	outfunc;
	}			KeyTextCache;
	KeyTextCache *cache = (KeyTextCache *) fcinfo->flinfo->fn_extra;
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);

	if (!OidIsValid(typid))
		elog(ERROR, "pg_polyglot: could not determine the type of a key");
	if (cache == NULL || cache->typid != typid)
	{
		cache = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(KeyTextCache));
		key_column_output(typid, &cache->basetypid, &cache->outfunc, fcinfo->flinfo->fn_mcxt);
		cache->typid = typid;
		fcinfo->flinfo->fn_extra = cache;
	}
	PG_RETURN_TEXT_P(cstring_to_text(key_output(&cache->outfunc, cache->basetypid,
												PG_GETARG_DATUM(0))));
}
