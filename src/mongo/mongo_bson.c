/*-------------------------------------------------------------------------
 *
 * mongo_bson.c
 *		PostgreSQL values as BSON: the one conversion that both sync to
 *		MongoDB and the MongoDB foreign tables use.
 *
 * Native types map to native BSON types:
 *		bool -> boolean, int2/int4 -> int32, int8 -> int64,
 *		float4/float8 -> double, numeric -> decimal128,
 *		text and the other character types -> string,
 *		timestamptz, timestamp (taken as UTC), date (midnight UTC) -> date,
 *		uuid -> binary subtype 4, bytea -> binary subtype 0,
 *		jsonb and json -> embedded document, array or scalar,
 *		arrays -> arrays (of the element type's conversion),
 *		composite types -> embedded documents, domains -> their base type,
 *		SQL NULL -> null,
 *		anything else -> its text output as a string.
 * BSON dates have millisecond precision: microseconds are truncated.
 * Values BSON cannot hold (a numeric of more than 34 significant digits,
 * an infinite timestamp) are reported to the caller, never turned into a
 * different value; the caller decides whether that is an ERROR (a foreign
 * table write) or a failed item (sync, which dead-letters it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "common/datum.h"
#include "mongo/mongo.h"

/* microseconds between the Unix epoch and PostgreSQL's (2000-01-01) */
#define POSTGRES_EPOCH_UNIX_US	(INT64CONST(946684800) * USECS_PER_SEC)

static void append_jsonb_value(bson_t *doc, const char *key, int keylen, JsonbValue *v);
static void append_jsonb_container(bson_t *doc, const char *key, int keylen,
								   JsonbContainer *container);

/*
 * A timestamp as BSON milliseconds since the Unix epoch; false when it
 * has none (infinite, or beyond what int64 microseconds since 1970 hold).
 */
static bool
timestamp_to_bson_ms(Timestamp ts, int64 *ms, char **error)
{
	if (TIMESTAMP_NOT_FINITE(ts) || pg_add_s64_overflow(ts, POSTGRES_EPOCH_UNIX_US, &ts))
	{
		*error = pstrdup("an infinite or out-of-range timestamp cannot be a BSON date");
		return false;
	}
	/* floor division: BSON dates before 1970 count down */
	*ms = ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000);
	return true;
}

static bool
append_numeric_string(bson_t *doc, const char *key, int keylen, const char *s, char **error)
{
	bson_decimal128_t dec;

	if (!bson_decimal128_from_string(s, &dec))
	{
		*error = psprintf("numeric value %s does not fit in a BSON decimal128 "
						  "(at most 34 significant digits)", s);
		return false;
	}
	bson_append_decimal128(doc, key, keylen, &dec);
	return true;
}

/*
 * A numeric for a server without decimal128 (FerretDB 1.x): a whole number
 * that fits as int64, else a double when the double is the same number,
 * else a failure rather than a silently rounded value.
 */
static bool
append_numeric_without_decimal(bson_t *doc, const char *key, int keylen, Datum value,
							   char **error)
{
	Numeric		num = DatumGetNumeric(value);
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, value));
	char	   *end;
	long long	ll;
	float8		d;

	if (!numeric_is_nan(num) && !numeric_is_inf(num) && strpbrk(s, ".eE") == NULL)
	{
		errno = 0;
		ll = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
		{
			bson_append_int64(doc, key, keylen, (int64) ll);
			return true;
		}
	}
	if (!numeric_is_nan(num) && !numeric_is_inf(num))
	{
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, value));
		if (!isinf(d) &&
			DatumGetBool(DirectFunctionCall2(numeric_eq, value,
											 DirectFunctionCall1(float8_numeric,
																 Float8GetDatum(d)))))
		{
			bson_append_double(doc, key, keylen, d);
			return true;
		}
	}
	*error = psprintf("numeric value %s has no exact BSON form on this server, "
					  "which lacks decimal128", s);
	return false;
}

/*
 * A JSON number: whole numbers as int32 or int64 when they fit, others as
 * double, which is what MongoDB's own JSON tools do.
 */
static void
append_jsonb_number(bson_t *doc, const char *key, int keylen, Numeric num)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	char	   *end;
	long long	ll;

	if (strpbrk(s, ".eE") == NULL)
	{
		errno = 0;
		ll = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
		{
			if (ll >= PG_INT32_MIN && ll <= PG_INT32_MAX)
				bson_append_int32(doc, key, keylen, (int32) ll);
			else
				bson_append_int64(doc, key, keylen, (int64) ll);
			return;
		}
	}
	bson_append_double(doc, key, keylen,
					   DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num))));
}

static void
append_jsonb_value(bson_t *doc, const char *key, int keylen, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			bson_append_null(doc, key, keylen);
			break;
		case jbvString:
			bson_append_utf8(doc, key, keylen, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			append_jsonb_number(doc, key, keylen, v->val.numeric);
			break;
		case jbvBool:
			bson_append_bool(doc, key, keylen, v->val.boolean);
			break;
		case jbvBinary:
			append_jsonb_container(doc, key, keylen, v->val.binary.data);
			break;
		default:
			elog(ERROR, "pg_polyglot: unexpected jsonb value type %d", (int) v->type);
	}
}

/* An object or array of a jsonb value, as an embedded document or array */
static void
append_jsonb_container(bson_t *doc, const char *key, int keylen, JsonbContainer *container)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbIteratorToken tok;
	JsonbValue	v;
	bson_t		child;
	bool		is_array = false;
	uint32		index = 0;
	char	   *field = NULL;
	int			fieldlen = 0;

	tok = JsonbIteratorNext(&it, &v, false);
	if (tok == WJB_BEGIN_ARRAY && v.val.array.rawScalar)
	{
		/* a scalar jsonb: the value itself */
		tok = JsonbIteratorNext(&it, &v, true);
		append_jsonb_value(doc, key, keylen, &v);
		return;
	}
	is_array = (tok == WJB_BEGIN_ARRAY);
	if (is_array)
		bson_append_array_begin(doc, key, keylen, &child);
	else
		bson_append_document_begin(doc, key, keylen, &child);

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_KEY:
				field = v.val.string.val;
				fieldlen = v.val.string.len;
				break;
			case WJB_VALUE:
				append_jsonb_value(&child, field, fieldlen, &v);
				break;
			case WJB_ELEM:
				{
					const char *ikey;
					char		buf[16];
					size_t		ilen = bson_uint32_to_string(index++, &ikey, buf, sizeof(buf));

					append_jsonb_value(&child, ikey, (int) ilen, &v);
					break;
				}
			default:
				break;
		}
	}
	if (is_array)
		bson_append_array_end(doc, &child);
	else
		bson_append_document_end(doc, &child);
}

static bool
append_array(bson_t *doc, const char *key, int keylen, Datum value, int flags, char **error)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems = polyglot_array_elements(value, &elemtype, &elems, &nulls);
	int			i;
	bson_t		child;

	/* a multidimensional array becomes one flat array, in storage order */
	bson_append_array_begin(doc, key, keylen, &child);
	for (i = 0; i < nelems; i++)
	{
		const char *ikey;
		char		buf[16];
		size_t		ilen = bson_uint32_to_string(i, &ikey, buf, sizeof(buf));

		if (!polyglot_bson_append_datum(&child, ikey, (int) ilen, elems[i], nulls[i], elemtype,
										flags, error))
			return false;
	}
	bson_append_array_end(doc, &child);
	return true;
}

static bool
append_composite(bson_t *doc, const char *key, int keylen, Datum value, int flags,
				 char **error)
{
	PolyglotRecordReader reader;
	Form_pg_attribute att;
	Datum		field;
	bool		isnull;
	bson_t		child;

	polyglot_record_begin(&reader, value);
	bson_append_document_begin(doc, key, keylen, &child);
	while (polyglot_record_next(&reader, &att, &field, &isnull))
	{
		if (!polyglot_bson_append_datum(&child, NameStr(att->attname), -1, field, isnull,
										att->atttypid, flags, error))
		{
			polyglot_record_end(&reader);
			return false;
		}
	}
	bson_append_document_end(doc, &child);
	polyglot_record_end(&reader);
	return true;
}

/*
 * Appends a PostgreSQL value of type typid under key (keylen -1: a C
 * string).  Returns false, with *error set, when BSON cannot hold the
 * value; doc is then incomplete and must be thrown away.  Other errors
 * (out of memory) are ereported.
 */
bool
polyglot_bson_append_datum(bson_t *doc, const char *key, int keylen, Datum value,
						   bool isnull, Oid typid, int flags, char **error)
{
	Oid			base;

	if (isnull)
	{
		bson_append_null(doc, key, keylen);
		return true;
	}
	base = getBaseType(typid);
	switch (base)
	{
		case BOOLOID:
			bson_append_bool(doc, key, keylen, DatumGetBool(value));
			return true;
		case INT2OID:
			bson_append_int32(doc, key, keylen, DatumGetInt16(value));
			return true;
		case INT4OID:
			bson_append_int32(doc, key, keylen, DatumGetInt32(value));
			return true;
		case INT8OID:
			bson_append_int64(doc, key, keylen, DatumGetInt64(value));
			return true;
		case FLOAT4OID:
		case FLOAT8OID:
			{
				double		d = base == FLOAT4OID ? DatumGetFloat4(value) : DatumGetFloat8(value);

				if (isnan(d) && (flags & POLYGLOT_BSON_NO_NAN))
				{
					*error = pstrdup("NaN cannot be stored on this server (FerretDB drops the connection)");
					return false;
				}
				bson_append_double(doc, key, keylen, d);
				return true;
			}
		case NUMERICOID:
			if (flags & POLYGLOT_BSON_NO_DECIMAL128)
				return append_numeric_without_decimal(doc, key, keylen, value, error);
			return append_numeric_string(doc, key, keylen,
										 DatumGetCString(DirectFunctionCall1(numeric_out, value)),
										 error);
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
		case DATEOID:
			{
				Timestamp	ts;
				int64		ms;

				if (base == DATEOID)
				{
					DateADT		d = DatumGetDateADT(value);

					/* infinite, or past what a timestamp holds */
					if (DATE_NOT_FINITE(d) || d > PG_INT64_MAX / USECS_PER_DAY - 1 ||
						d < PG_INT64_MIN / USECS_PER_DAY + 1)
					{
						*error = pstrdup("an infinite or out-of-range date cannot be a BSON date");
						return false;
					}
					ts = (Timestamp) d * USECS_PER_DAY;
				}
				else
					ts = DatumGetTimestamp(value);
				if (!timestamp_to_bson_ms(ts, &ms, error))
					return false;
				bson_append_date_time(doc, key, keylen, ms);
				return true;
			}
		case UUIDOID:
			bson_append_binary(doc, key, keylen, BSON_SUBTYPE_UUID,
							   DatumGetUUIDP(value)->data, UUID_LEN);
			return true;
		case BYTEAOID:
			{
				bytea	   *b = DatumGetByteaPP(value);

				bson_append_binary(doc, key, keylen, BSON_SUBTYPE_BINARY,
								   (const uint8_t *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
				return true;
			}
		case JSONBOID:
			append_jsonb_container(doc, key, keylen, &DatumGetJsonbP(value)->root);
			return true;
		case JSONOID:
			{
				/* stored json is valid json, which jsonb_in takes */
				Datum		jb = DirectFunctionCall1(jsonb_in,
													 CStringGetDatum(TextDatumGetCString(value)));

				append_jsonb_container(doc, key, keylen, &DatumGetJsonbP(jb)->root);
				return true;
			}
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			break;
		default:
			if (type_is_array(base))
				return append_array(doc, key, keylen, value, flags, error);
			if (type_is_rowtype(base))
				return append_composite(doc, key, keylen, value, flags, error);
			break;
	}

	/* everything else: the text output */
	{
		Oid			outfunc;
		bool		isvarlena;
		char	   *s;

		getTypeOutputInfo(base, &outfunc, &isvarlena);
		s = OidOutputFunctionCall(outfunc, value);
		bson_append_utf8(doc, key, keylen, s, -1);
	}
	return true;
}

/*
 * Appends {key: value} to a query filter so that it matches value itself.
 * A document goes as {key: {$eq: value}}: as it is, a filter reads a
 * document whose first field starts with $ as operators, and a key such as
 * {"$ne": null} would match any document.  Other values go as they are,
 * the form FerretDB serves from its _id index.
 */
void
polyglot_bson_append_eq(bson_t *doc, const char *key, int keylen, const bson_value_t *value)
{
	bson_t		cond;

	if (value->value_type != BSON_TYPE_DOCUMENT)
	{
		bson_append_value(doc, key, keylen, value);
		return;
	}
	bson_append_document_begin(doc, key, keylen, &cond);
	bson_append_value(&cond, "$eq", 3, value);
	bson_append_document_end(doc, &cond);
}

/*
 * Appends a filter matching the documents whose _id is one of ids,
 * literally: {_id: {$in: [...]}}, where an _id that is a document goes
 * beside it as {_id: {$eq: ...}} in an $or ($in cannot hold one that
 * looks like an operator).
 */
void
polyglot_bson_append_id_in(bson_t *filter, const bson_value_t *ids, int nids)
{
	bson_t		in,
				arr,
				or,
				clause;
	int			ndocs = 0;
	int			nin = 0;
	int			nor = 0;
	int			i;
	char		buf[16];
	const char *ikey;

	for (i = 0; i < nids; i++)
		if (ids[i].value_type == BSON_TYPE_DOCUMENT)
			ndocs++;
	if (ndocs > 0)
	{
		bson_append_array_begin(filter, "$or", 3, &or);
		bson_uint32_to_string(nor++, &ikey, buf, sizeof(buf));
		bson_append_document_begin(&or, ikey, -1, &clause);
	}
	bson_append_document_begin(ndocs > 0 ? &clause : filter, "_id", 3, &in);
	bson_append_array_begin(&in, "$in", 3, &arr);
	for (i = 0; i < nids; i++)
		if (ids[i].value_type != BSON_TYPE_DOCUMENT)
		{
			bson_uint32_to_string(nin++, &ikey, buf, sizeof(buf));
			bson_append_value(&arr, ikey, -1, &ids[i]);
		}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(ndocs > 0 ? &clause : filter, &in);
	if (ndocs == 0)
		return;
	bson_append_document_end(&or, &clause);
	for (i = 0; i < nids; i++)
		if (ids[i].value_type == BSON_TYPE_DOCUMENT)
		{
			bson_uint32_to_string(nor++, &ikey, buf, sizeof(buf));
			bson_append_document_begin(&or, ikey, -1, &clause);
			polyglot_bson_append_eq(&clause, "_id", 3, &ids[i]);
			bson_append_document_end(&or, &clause);
		}
	bson_append_array_end(filter, &or);
}

/* ---------------------------------------------------------------- BSON to PostgreSQL */

/* The BSON type of a value, for messages */
const char *
polyglot_bson_type_name(bson_type_t type)
{
	switch (type)
	{
		case BSON_TYPE_DOUBLE:
			return "double";
		case BSON_TYPE_UTF8:
			return "string";
		case BSON_TYPE_DOCUMENT:
			return "document";
		case BSON_TYPE_ARRAY:
			return "array";
		case BSON_TYPE_BINARY:
			return "binary";
		case BSON_TYPE_UNDEFINED:
			return "undefined";
		case BSON_TYPE_OID:
			return "objectId";
		case BSON_TYPE_BOOL:
			return "bool";
		case BSON_TYPE_DATE_TIME:
			return "date";
		case BSON_TYPE_NULL:
			return "null";
		case BSON_TYPE_REGEX:
			return "regex";
		case BSON_TYPE_INT32:
			return "int";
		case BSON_TYPE_TIMESTAMP:
			return "timestamp";
		case BSON_TYPE_INT64:
			return "long";
		case BSON_TYPE_DECIMAL128:
			return "decimal";
		default:
			return "other";
	}
}

/* libbson writes documents nested deeper than this as { ... } in JSON */
#define BSON_JSON_MAX_DEPTH 200

/* Does the value at iter nest documents or arrays deeper than max levels? */
static bool
bson_too_deep(const bson_iter_t *iter, int max)
{
	bson_iter_t child;

	if (!BSON_ITER_HOLDS_DOCUMENT(iter) && !BSON_ITER_HOLDS_ARRAY(iter))
		return false;
	if (max <= 0)
		return true;
	if (!bson_iter_recurse(iter, &child))
		return false;
	while (bson_iter_next(&child))
		if (bson_too_deep(&child, max - 1))
			return true;
	return false;
}

/*
 * A value as relaxed Extended JSON, in palloc'd memory, or a copy of
 * unrenderable when libbson cannot write it (a string that is not UTF-8).
 */
char *
polyglot_bson_value_json(const bson_value_t *value, const char *unrenderable)
{
	bson_t		wrap = BSON_INITIALIZER;
	char	   *json;
	char	   *result;
	size_t		len;
	char	   *start;

	/* libbson renders documents; wrap the value in {"v": ...} and cut */
	bson_append_value(&wrap, "v", 1, value);
	json = bson_as_relaxed_extended_json(&wrap, &len);
	bson_destroy(&wrap);
	if (json == NULL)
		return pstrdup(unrenderable);
	/* { "v" : VALUE } */
	start = strchr(json, ':');
	start = start ? start + 1 : json;
	while (*start == ' ')
		start++;
	len = strlen(start);
	while (len > 0 && (start[len - 1] == '}' || start[len - 1] == ' '))
	{
		if (start[len - 1] == '}')
		{
			len--;
			break;
		}
		len--;
	}
	while (len > 0 && start[len - 1] == ' ')
		len--;
	result = pnstrdup(start, len);
	bson_free(json);
	return result;
}

/*
 * The value at iter as relaxed Extended JSON.  A value nested deeper than
 * libbson writes is an error, never a document cut off.
 */
static char *
bson_value_json(const bson_iter_t *iter)
{
	if (bson_too_deep(iter, BSON_JSON_MAX_DEPTH))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("MongoDB value nested deeper than %d levels cannot be read as JSON",
						BSON_JSON_MAX_DEPTH)));
	return polyglot_bson_value_json(bson_iter_value((bson_iter_t *) iter), "null");
}

/*
 * A whole document as relaxed Extended JSON, in palloc'd memory; a document
 * nested deeper than libbson writes is an error, never a document cut off.
 */
char *
polyglot_bson_document_json(const bson_t *doc)
{
	bson_iter_t iter;
	char	   *json;
	char	   *result;

	if (bson_iter_init(&iter, doc))
		while (bson_iter_next(&iter))
			if (bson_too_deep(&iter, BSON_JSON_MAX_DEPTH))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("MongoDB value nested deeper than %d levels cannot be read as JSON",
								BSON_JSON_MAX_DEPTH)));
	json = bson_as_relaxed_extended_json(doc, NULL);
	result = pstrdup(json ? json : "null");
	bson_free(json);
	return result;
}

/* A number of a BSON value as text for a numeric input function, or NULL */
static char *
bson_number_text(const bson_iter_t *iter)
{
	switch (bson_iter_type(iter))
	{
		case BSON_TYPE_INT32:
			return psprintf("%d", bson_iter_int32(iter));
		case BSON_TYPE_INT64:
			return psprintf(INT64_FORMAT, (int64) bson_iter_int64(iter));
		case BSON_TYPE_DOUBLE:
			{
				double		d = bson_iter_double(iter);

				if (isnan(d))
					return pstrdup("NaN");
				if (isinf(d))
					return pstrdup(d > 0 ? "Infinity" : "-Infinity");
				/* the shortest text that reads back as the same double */
				return DatumGetCString(DirectFunctionCall1(float8out, Float8GetDatum(d)));
			}
		case BSON_TYPE_DECIMAL128:
			{
				bson_decimal128_t dec;
				char		buf[BSON_DECIMAL128_STRING];

				bson_iter_decimal128(iter, &dec);
				bson_decimal128_to_string(&dec, buf);
				return pstrdup(buf);
			}
		default:
			return NULL;
	}
}

static Datum
input_call(Oid typid, int32 typmod, const char *text)
{
	Oid			infunc;
	Oid			ioparam;

	getTypeInputInfo(typid, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, (char *) text, ioparam, typmod);
}

static void
mismatch(const bson_iter_t *iter, Oid typid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("BSON %s value cannot be converted to type %s",
					polyglot_bson_type_name(bson_iter_type(iter)), format_type_be(typid))));
}

/* A BSON number of any kind as a number type, through the type's input: range checked */
static Datum
number_datum(const bson_iter_t *iter, Oid typid, int32 typmod, Oid base)
{
	bson_type_t btype = bson_iter_type(iter);
	char	   *num;

	num = bson_number_text(iter);
	if (num == NULL)
		mismatch(iter, typid);
	if (base == INT2OID || base == INT4OID || base == INT8OID)
	{
		/* a double or decimal holding a whole number is fine */
		if (btype == BSON_TYPE_DOUBLE || btype == BSON_TYPE_DECIMAL128)
		{
			Datum		n = input_call(NUMERICOID, -1, num);

			if (!DatumGetBool(DirectFunctionCall2(numeric_eq, n,
												  DirectFunctionCall2(numeric_trunc, n,
																	  Int32GetDatum(0)))))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("BSON %s value %s is not a whole number for type %s",
								polyglot_bson_type_name(btype), num,
								format_type_be(typid))));
			num = DatumGetCString(DirectFunctionCall1(numeric_out,
													  DirectFunctionCall2(numeric_trunc, n,
																		  Int32GetDatum(0))));
		}
	}
	return input_call(typid, typmod, num);
}

/*
 * Converts the BSON value at iter to type typid.  NULL for BSON null and
 * undefined; an error when the value exists but does not convert (the
 * caller's error context names the column and document).
 */
Datum
polyglot_bson_to_datum(const bson_iter_t *iter, Oid typid, int32 typmod, bool *isnull)
{
	bson_type_t btype = bson_iter_type(iter);
	Oid			base = getBaseType(typid);

	*isnull = false;
	if (btype == BSON_TYPE_NULL || btype == BSON_TYPE_UNDEFINED)
	{
		*isnull = true;
		return (Datum) 0;
	}

	if (polyglot_number_type(base))
		return number_datum(iter, typid, typmod, base);
	switch (base)
	{
		case BOOLOID:
			if (btype != BSON_TYPE_BOOL)
				mismatch(iter, typid);
			return BoolGetDatum(bson_iter_bool(iter));
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				int64		ms;
				Timestamp	ts;

				if (btype != BSON_TYPE_DATE_TIME)
					mismatch(iter, typid);
				ms = bson_iter_date_time(iter);
				ts = (Timestamp) ms * 1000 - POSTGRES_EPOCH_UNIX_US;
				if (base == DATEOID)
					return DirectFunctionCall1(timestamp_date, TimestampGetDatum(ts));
				return TimestampGetDatum(ts);
			}
		case UUIDOID:
			if (btype == BSON_TYPE_BINARY)
			{
				bson_subtype_t subtype;
				uint32_t	len;
				const uint8_t *data;
				pg_uuid_t  *u;

				bson_iter_binary(iter, &subtype, &len, &data);
				if ((subtype != BSON_SUBTYPE_UUID && subtype != BSON_SUBTYPE_UUID_DEPRECATED) ||
					len != UUID_LEN)
					mismatch(iter, typid);
				u = palloc(sizeof(pg_uuid_t));
				memcpy(u->data, data, UUID_LEN);
				return UUIDPGetDatum(u);
			}
			if (btype == BSON_TYPE_UTF8)
				return input_call(typid, typmod, bson_iter_utf8(iter, NULL));
			mismatch(iter, typid);
			break;
		case BYTEAOID:
			{
				bson_subtype_t subtype;
				uint32_t	len;
				const uint8_t *data;
				bytea	   *b;

				if (btype != BSON_TYPE_BINARY)
					mismatch(iter, typid);
				bson_iter_binary(iter, &subtype, &len, &data);
				b = palloc(VARHDRSZ + len);
				SET_VARSIZE(b, VARHDRSZ + len);
				memcpy(VARDATA(b), data, len);
				return PointerGetDatum(b);
			}
		case JSONBOID:
		case JSONOID:
			{
				char	   *json = bson_value_json(iter);

				return input_call(typid, typmod, json);
			}
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			{
				const char *s;
				char	   *owned = NULL;

				if (btype == BSON_TYPE_UTF8)
					s = bson_iter_utf8(iter, NULL);
				else if (btype == BSON_TYPE_OID)
				{
					char		hex[25];

					bson_oid_to_string(bson_iter_oid(iter), hex);
					s = owned = pstrdup(hex);
				}
				else
				{
					/* anything else as its JSON: numbers, documents, arrays... */
					char	   *num = bson_number_text(iter);

					s = owned = num ? num : bson_value_json(iter);
				}
				return input_call(typid, typmod, s);
			}
		default:
			if (type_is_array(base) && btype == BSON_TYPE_ARRAY)
			{
				Oid			elemtype = get_element_type(base);
				int16		typlen;
				bool		typbyval;
				char		typalign;
				bson_iter_t child;
				List	   *values = NIL;
				List	   *nulls = NIL;
				Datum	   *elems;
				bool	   *elemnulls;
				int			n = 0,
							dims[1],
							lbs[1] = {1};
				ListCell   *vc,
						   *nc;

				if (!bson_iter_recurse(iter, &child))
					mismatch(iter, typid);
				while (bson_iter_next(&child))
				{
					bool		null;
					Datum		v = polyglot_bson_to_datum(&child, elemtype, -1, &null);

					values = lappend(values, (void *) DatumGetPointer(v));
					nulls = lappend_int(nulls, null);
				}
				elems = palloc(sizeof(Datum) * Max(list_length(values), 1));
				elemnulls = palloc(sizeof(bool) * Max(list_length(values), 1));
				forboth(vc, values, nc, nulls)
				{
					elems[n] = PointerGetDatum(lfirst(vc));
					elemnulls[n] = lfirst_int(nc);
					n++;
				}
				dims[0] = n;
				get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
				if (n == 0)
					return PointerGetDatum(construct_empty_array(elemtype));
				return PointerGetDatum(construct_md_array(elems, elemnulls, 1, dims, lbs,
														  elemtype, typlen, typbyval, typalign));
			}
			/* other types: from a string, through their input function */
			if (btype == BSON_TYPE_UTF8)
				return input_call(typid, typmod, bson_iter_utf8(iter, NULL));
			mismatch(iter, typid);
	}
	pg_unreachable();
}
