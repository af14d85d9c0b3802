/*-------------------------------------------------------------------------
 *
 * json_writer.c
 *		PostgreSQL values as JSON for Elasticsearch and OpenSearch documents:
 *		what the sync sink indexes and what foreign-table writes send.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "common/json_writer.h"

static void
append_json_array(StringInfo buf, Datum value, Oid elemtype, bool *first)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (!*first)
			appendStringInfoChar(buf, ',');
		*first = false;
		polyglot_elastic_append_json_value(buf, elems[i], nulls[i], elemtype);
	}
}

static void
append_json_record(StringInfo buf, Datum value)
{
	HeapTupleHeader rec = DatumGetHeapTupleHeader(value);
	TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
											  HeapTupleHeaderGetTypMod(rec));
	HeapTupleData tuple;
	bool		first = true;
	int			i;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	appendStringInfoChar(buf, '{');
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		v;

		if (att->attisdropped)
			continue;
		v = heap_getattr(&tuple, i + 1, desc, &isnull);
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, NameStr(att->attname));
		appendStringInfoChar(buf, ':');
		polyglot_elastic_append_json_value(buf, v, isnull, att->atttypid);
	}
	appendStringInfoChar(buf, '}');
	ReleaseTupleDesc(desc);
}

/* A number's text output as a JSON number; NaN and infinities as strings */
static void
append_json_number(StringInfo buf, char *text)
{
	if (IsValidJsonNumber(text, strlen(text)))
		appendStringInfoString(buf, text);
	else
		escape_json(buf, text);
}

/*
 * Appends value as JSON to buf: numbers as JSON numbers with every digit
 * (NaN and infinities as strings), dates and times in ISO 8601 (timestamptz
 * in UTC with its zone), jsonb and json nested (json on one line), arrays
 * as arrays (a multidimensional one flattened), composite values as
 * objects, bytea in base64, anything else as its text output in a string.
 * Allocates in the current memory context.
 */
void
polyglot_elastic_append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	Oid			base;
	Oid			outfunc;
	bool		varlena;
	char		dtbuf[MAXDATELEN + 1];

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	base = getBaseType(typid);
	switch (base)
	{
		case BOOLOID:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			getTypeOutputInfo(base, &outfunc, &varlena);
			append_json_number(buf, OidOutputFunctionCall(outfunc, value));
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
			/* ISO 8601, in UTC for timestamptz (no session time zone here) */
			{
				int			utc = 0;

				escape_json(buf, JsonEncodeDateTime(dtbuf, value, base,
													base == TIMESTAMPTZOID ? &utc : NULL));
			}
			return;
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);

				(void) JsonbToCString(buf, &jb->root, VARSIZE(jb));
			}
			return;
		case JSONOID:
			{
				/*
				 * As written, but on one line: a _bulk body is one JSON
				 * text per line.  A newline in valid JSON is whitespace
				 * between tokens (strings escape theirs), so a space will do.
				 */
				char	   *json = TextDatumGetCString(value);
				char	   *c;

				for (c = json; *c; c++)
					if (*c == '\n' || *c == '\r')
						*c = ' ';
				appendStringInfoString(buf, json);
			}
			return;
		case BYTEAOID:
			{
				bytea	   *b = DatumGetByteaPP(value);
				int			len = VARSIZE_ANY_EXHDR(b);
				int			enclen = pg_b64_enc_len(len);
				char	   *enc = palloc(enclen + 1);
				int			n = pg_b64_encode(VARDATA_ANY(b), len, enc, enclen);

				if (n < 0)
					elog(ERROR, "pg_polyglot: base64 encoding failed");
				enc[n] = '\0';
				escape_json(buf, enc);
			}
			return;
		default:
			break;
	}
	if (OidIsValid(get_element_type(base)) && type_is_array(base))
	{
		bool		first = true;

		appendStringInfoChar(buf, '[');
		append_json_array(buf, value, get_element_type(base), &first);
		appendStringInfoChar(buf, ']');
		return;
	}
	if (type_is_rowtype(base))
	{
		append_json_record(buf, value);
		return;
	}
	getTypeOutputInfo(base, &outfunc, &varlena);
	escape_json(buf, OidOutputFunctionCall(outfunc, value));
}
