/*-------------------------------------------------------------------------
 *
 * elastic_hit.c
 *		A search hit as the column values of a polyglot_elastic foreign
 *		table: its _id, _score and _source fields in the columns' types.
 *
 * The way back, PostgreSQL values as JSON, is elastic_json.c, beside it.
 * Hits are read from the jsonb of the parsed response; a value that does
 * not convert fails the scan with an error naming the column and document.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

static void
scan_error_context(void *arg)
{
	ElasticScanState *st = (ElasticScanState *) arg;

	if (st->current_column)
		errcontext("column \"%s\" of document %s in index \"%s\"", st->current_column,
				   st->current_id ? st->current_id : "(without _id)", st->index);
}

/* The value at a dotted path of the _source: the key as written, else nested objects */
static bool
source_value(JsonbContainer *source, const char *path, JsonbValue *result)
{
	const char *dot;

	if (source == NULL || !JsonContainerIsObject(source))
		return false;
	if (getKeyJsonValueFromContainer(source, path, strlen(path), result))
		return true;
	while ((dot = strchr(path, '.')) != NULL)
	{
		if (!getKeyJsonValueFromContainer(source, path, dot - path, result) ||
			result->type != jbvBinary || !JsonContainerIsObject(result->val.binary.data))
			return false;
		source = result->val.binary.data;
		path = dot + 1;
		if (getKeyJsonValueFromContainer(source, path, strlen(path), result))
			return true;
	}
	return false;
}

static Datum convert_value(JsonbValue *v, Oid typid, int32 typmod, Oid typinput,
						   Oid typioparam, bool *isnull);

/* An ISO 8601 date or date and time without a zone designator or offset */
static bool
iso_without_zone(const char *s)
{
	size_t		len = strlen(s);

	if (len < 10 || !isdigit((unsigned char) s[0]) || s[4] != '-' || s[7] != '-')
		return false;
	if (len == 10)
		return true;
	if (s[10] != 'T' && s[10] != ' ')
		return false;
	return strpbrk(s + 10, "Zz+-") == NULL;
}

/* A JSON array as a PostgreSQL array of elemtype */
static Datum
convert_array(JsonbContainer *arr, Oid elemtype)
{
	int			n = JsonContainerSize(arr);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			typinput,
				typioparam;
	int			i;

	getTypeInputInfo(elemtype, &typinput, &typioparam);
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

		elems[i] = convert_value(e, elemtype, -1, typinput, typioparam, &nulls[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

/*
 * A JSON value as a value of the column's type: strings through the type's
 * input function (bytea from base64), numbers through it too (epoch
 * milliseconds for dates and timestamps), objects and arrays as jsonb or
 * json, or as their JSON text for text, arrays element by element for
 * array types.  Anything else is an error naming the column.
 */
static Datum convert_json(JsonbValue *v, Oid typid, int32 typmod, Oid typinput,
						  Oid typioparam, bool *isnull);

static Datum
convert_value(JsonbValue *v, Oid typid, int32 typmod, Oid typinput, Oid typioparam,
			  bool *isnull)
{
	Datum		result = convert_json(v, typid, typmod, typinput, typioparam, isnull);

	/* a domain's constraints, also on values that skip its input function */
	if (getBaseType(typid) != typid)
		domain_check(result, *isnull, typid, NULL, NULL);
	return result;
}

static Datum
convert_json(JsonbValue *v, Oid typid, int32 typmod, Oid typinput, Oid typioparam,
			 bool *isnull)
{
	Oid			base = getBaseType(typid);
	char	   *text;

	*isnull = false;
	if (v->type == jbvNull)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (base == JSONBOID)
		return JsonbPGetDatum(JsonbValueToJsonb(v));
	if (base == JSONOID)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (v->type == jbvBinary)
			(void) JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
		else
		{
			Jsonb	   *jb = JsonbValueToJsonb(v);

			(void) JsonbToCString(&buf, &jb->root, VARSIZE(jb));
		}
		return OidInputFunctionCall(typinput, buf.data, typioparam, typmod);
	}
	switch (v->type)
	{
		case jbvString:
			text = pnstrdup(v->val.string.val, v->val.string.len);
			if (base == TIMESTAMPTZOID && iso_without_zone(text))
			{
				/* Elasticsearch reads a date without an offset as UTC */
				text = psprintf(strlen(text) == 10 ? "%s 00:00:00+00" : "%s+00", text);
			}
			if (base == BYTEAOID)
			{
				int			len = pg_b64_dec_len(strlen(text));
				bytea	   *result = palloc(VARHDRSZ + len);
#if PG_VERSION_NUM >= 180000
				/* 18 gives the bytes as uint8 */
				int			n = pg_b64_decode(text, strlen(text), (uint8 *) VARDATA(result), len);
#else
				int			n = pg_b64_decode(text, strlen(text), VARDATA(result), len);
#endif

				if (n < 0)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("invalid base64 value for a bytea column")));
				SET_VARSIZE(result, VARHDRSZ + n);
				return PointerGetDatum(result);
			}
			return OidInputFunctionCall(typinput, text, typioparam, typmod);
		case jbvNumeric:
			if (base == TIMESTAMPTZOID || base == TIMESTAMPOID || base == DATEOID)
			{
				/* epoch milliseconds in UTC, as Elasticsearch stores dates */
				float8		ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																	NumericGetDatum(v->val.numeric)));
				float8		us = rint(ms * 1000.0) -
					(float8) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
				Timestamp	ts;

				if (isnan(us) || us < (float8) MIN_TIMESTAMP || us >= (float8) END_TIMESTAMP)
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("epoch milliseconds out of the range of a timestamp")));
				ts = (Timestamp) us;
				if (base == DATEOID)
					return DirectFunctionCall1(timestamp_date, TimestampGetDatum(ts));
				return TimestampGetDatum(ts);
			}
			text = DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
			return OidInputFunctionCall(typinput, text, typioparam, typmod);
		case jbvBool:
			return OidInputFunctionCall(typinput, v->val.boolean ? "true" : "false",
										typioparam, typmod);
		case jbvBinary:
			{
				JsonbContainer *c = v->val.binary.data;
				Oid			elemtype = get_element_type(base);

				if (JsonContainerIsArray(c) && OidIsValid(elemtype))
					return convert_array(c, elemtype);
				if (base == TEXTOID || base == VARCHAROID)
				{
					StringInfoData buf;

					initStringInfo(&buf);
					(void) JsonbToCString(&buf, c, v->val.binary.len);
					return OidInputFunctionCall(typinput, buf.data, typioparam, typmod);
				}
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("cannot convert a JSON %s to type %s",
								JsonContainerIsArray(c) ? "array" : "object",
								format_type_be(typid)),
						 errhint("Declare the column as jsonb, as an array type, or as text.")));
			}
			break;
		default:
			break;
	}
	*isnull = true;
	return (Datum) 0;
}

/*
 * Stores a hit's columns in the slot: the wanted ones from its _id,
 * _score and _source, the others NULL.  Conversion errors name the column
 * and the document.
 */
void
polyglot_elastic_store_hit(ElasticScanState *st, JsonbContainer *h, TupleTableSlot *slot)
{
	JsonbContainer *source = NULL;
	JsonbValue	source_jv;
	JsonbValue	v;
	ErrorContextCallback errcallback;
	int			i;

	st->current_id = polyglot_elastic_json_string(h, "_id");
	if (getKeyJsonValueFromContainer(h, "_source", 7, &source_jv) && source_jv.type == jbvBinary)
		source = source_jv.val.binary.data;

	errcallback.callback = scan_error_context;
	errcallback.arg = st;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (i = 0; i < st->natts; i++)
	{
		ElasticColumn *col = &st->columns[i];

		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (!st->wanted[i])
			continue;
		st->current_column = col->name;
		switch (col->kind)
		{
			case ECOL_ID:
				if (st->current_id)
				{
					slot->tts_values[i] = OidInputFunctionCall(st->typinput[i], st->current_id,
															   st->typioparam[i], col->typmod);
					slot->tts_isnull[i] = false;
				}
				break;
			case ECOL_SCORE:
				if (getKeyJsonValueFromContainer(h, "_score", 6, &v))
					slot->tts_values[i] = convert_value(&v, col->typid, col->typmod,
														st->typinput[i], st->typioparam[i],
														&slot->tts_isnull[i]);
				break;
			case ECOL_QUERY:
				if (st->query_text)
				{
					slot->tts_values[i] = CStringGetTextDatum(st->query_text);
					slot->tts_isnull[i] = false;
				}
				break;
			case ECOL_SOURCE:
				if (source)
				{
					slot->tts_values[i] = convert_value(&source_jv, col->typid, col->typmod,
														st->typinput[i], st->typioparam[i],
														&slot->tts_isnull[i]);
				}
				break;
			case ECOL_FIELD:
				if (source_value(source, col->field, &v))
					slot->tts_values[i] = convert_value(&v, col->typid, col->typmod,
														st->typinput[i], st->typioparam[i],
														&slot->tts_isnull[i]);
				break;
			case ECOL_HIGHLIGHT:
				/* a search's hit: its fragments by field, {} for none */
				if (st->query_text == NULL)
					break;
				if (getKeyJsonValueFromContainer(h, "highlight", 9, &v) &&
					v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
					slot->tts_values[i] = convert_value(&v, col->typid, col->typmod,
														st->typinput[i], st->typioparam[i],
														&slot->tts_isnull[i]);
				else
				{
					slot->tts_values[i] = OidInputFunctionCall(st->typinput[i], "{}",
															   st->typioparam[i], col->typmod);
					slot->tts_isnull[i] = false;
				}
				break;
			case ECOL_DROPPED:
				break;
		}
	}
	st->current_column = NULL;
	error_context_stack = errcallback.previous;
}
