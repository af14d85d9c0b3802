/*-------------------------------------------------------------------------
 *
 * json_writer.c
 *		PostgreSQL values as JSON text: the rows sync delivers to Redis as
 *		JSON (json mode, publish messages), as row_to_json() writes them,
 *		and the documents it sends to Elasticsearch and OpenSearch, which
 *		foreign-table writes send too.
 *
 * The rules (json_writer.h) name each point where a store's JSON differs
 * from row_to_json()'s.  Values are written into the caller's buffer;
 * anything else is allocated in the current memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "common/datum.h"
#include "common/json_writer.h"

/* The elements of an array, in storage order (a multidimensional one flattened) */
static void
append_json_array(StringInfo buf, Datum value, int rules)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			n = polyglot_array_elements(value, &elemtype, &elems, &nulls);
	PolyglotJsonType elem;
	int			i;

	polyglot_json_type_init(&elem, elemtype, rules, CurrentMemoryContext);
	appendStringInfoChar(buf, '[');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		polyglot_json_append(buf, &elem, elems[i], nulls[i]);
	}
	appendStringInfoChar(buf, ']');
}

/* The fields of a composite value, but its dropped columns */
static void
append_json_record(StringInfo buf, Datum value, int rules)
{
	PolyglotRecordReader reader;
	Form_pg_attribute att;
	Datum		v;
	bool		isnull;
	bool		first = true;

	polyglot_record_begin(&reader, value);
	appendStringInfoChar(buf, '{');
	while (polyglot_record_next(&reader, &att, &v, &isnull))
	{
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, NameStr(att->attname));
		appendStringInfoChar(buf, ':');
		polyglot_json_append_value(buf, v, isnull, att->atttypid, rules);
	}
	appendStringInfoChar(buf, '}');
	polyglot_record_end(&reader);
}

/*
 * Makes type ready to write values of typid (or of a domain over it) by
 * rules, looking up what that takes once; the output function's
 * FmgrInfo lives in cxt.
 */
void
polyglot_json_type_init(PolyglotJsonType *type, Oid typid, int rules, MemoryContext cxt)
{
	Oid			base = getBaseType(typid);
	PolyglotJsonKind kind;

	switch (base)
	{
		case BOOLOID:
			kind = POLYGLOT_JSON_KIND_BOOL;
			break;
		case OIDOID:
			kind = (rules & POLYGLOT_JSON_OID_NUMBER) ?
				POLYGLOT_JSON_KIND_NUMBER : POLYGLOT_JSON_KIND_STRING;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			kind = POLYGLOT_JSON_KIND_DATETIME;
			break;
		case TIMEOID:
		case TIMETZOID:
			kind = (rules & POLYGLOT_JSON_TIME_ISO8601) ?
				POLYGLOT_JSON_KIND_DATETIME : POLYGLOT_JSON_KIND_STRING;
			break;
		case JSONOID:
		case JSONBOID:
			kind = POLYGLOT_JSON_KIND_JSON;
			break;
		case BYTEAOID:
			kind = (rules & POLYGLOT_JSON_BYTEA_BASE64) ?
				POLYGLOT_JSON_KIND_BASE64 : POLYGLOT_JSON_KIND_STRING;
			break;
		default:
			if (polyglot_number_type(base))
				kind = POLYGLOT_JSON_KIND_NUMBER;
			else if (type_is_array(base))
				kind = POLYGLOT_JSON_KIND_ARRAY;
			else if (type_is_rowtype(base))
				kind = POLYGLOT_JSON_KIND_RECORD;
			else
				kind = POLYGLOT_JSON_KIND_STRING;
			break;
	}
	type->base = base;
	type->rules = rules;
	type->kind = kind;
	if (kind == POLYGLOT_JSON_KIND_NUMBER || kind == POLYGLOT_JSON_KIND_STRING)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(base, &outfunc, &isvarlena);
		fmgr_info_cxt(outfunc, &type->output, cxt);
	}
}

/* Appends a value (NULL: null) of a type made ready by polyglot_json_type_init() */
void
polyglot_json_append(StringInfo buf, PolyglotJsonType *type, Datum value, bool isnull)
{
	char	   *out;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (type->kind)
	{
		case POLYGLOT_JSON_KIND_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case POLYGLOT_JSON_KIND_NUMBER:
			out = OutputFunctionCall(&type->output, value);
			if (IsValidJsonNumber(out, strlen(out)))
				appendStringInfoString(buf, out);
			else
				escape_json(buf, out); /* NaN, Infinity */
			return;
		case POLYGLOT_JSON_KIND_DATETIME:
			{
				char		iso[MAXDATELEN + 1];
				int			utc = 0;
				bool		in_utc = type->base == TIMESTAMPTZOID &&
					(type->rules & POLYGLOT_JSON_TIMESTAMPTZ_UTC);

				/* nothing in ISO 8601 text needs escaping */
				JsonEncodeDateTime(iso, value, type->base, in_utc ? &utc : NULL);
				appendStringInfoChar(buf, '"');
				appendStringInfoString(buf, iso);
				appendStringInfoChar(buf, '"');
				return;
			}
		case POLYGLOT_JSON_KIND_JSON:
			if (type->base == JSONBOID)
			{
				Jsonb	   *jb = DatumGetJsonbP(value);

				(void) JsonbToCString(buf, &jb->root, VARSIZE(jb));
				return;
			}
			out = TextDatumGetCString(value);
			if (type->rules & POLYGLOT_JSON_ONE_LINE)
			{
				/*
				 * A newline in valid JSON is whitespace between tokens
				 * (strings escape theirs), so a space will do.
				 */
				char	   *c;

				for (c = out; *c; c++)
					if (*c == '\n' || *c == '\r')
						*c = ' ';
			}
			appendStringInfoString(buf, out);
			return;
		case POLYGLOT_JSON_KIND_BASE64:
			{
				bytea	   *b = DatumGetByteaPP(value);
				int			len = VARSIZE_ANY_EXHDR(b);
				int			enclen = pg_b64_enc_len(len);
				int			n;

				out = palloc(enclen + 1);
#if PG_VERSION_NUM >= 180000
				/* 18 takes the bytes as uint8 */
				n = pg_b64_encode((const uint8 *) VARDATA_ANY(b), len, out, enclen);
#else
				n = pg_b64_encode(VARDATA_ANY(b), len, out, enclen);
#endif
				if (n < 0)
					elog(ERROR, "pg_polyglot: base64 encoding failed");
				out[n] = '\0';
				escape_json(buf, out);
				return;
			}
		case POLYGLOT_JSON_KIND_ARRAY:
			append_json_array(buf, value, type->rules);
			return;
		case POLYGLOT_JSON_KIND_RECORD:
			append_json_record(buf, value, type->rules);
			return;
		case POLYGLOT_JSON_KIND_STRING:
			escape_json(buf, OutputFunctionCall(&type->output, value));
			return;
	}
}

/*
 * Appends value, of type typid, as JSON by rules: for a single value; a
 * caller writing many of one type makes it ready once with
 * polyglot_json_type_init().
 */
void
polyglot_json_append_value(StringInfo buf, Datum value, bool isnull, Oid typid, int rules)
{
	PolyglotJsonType type;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	polyglot_json_type_init(&type, typid, rules, CurrentMemoryContext);
	polyglot_json_append(buf, &type, value, isnull);
}
