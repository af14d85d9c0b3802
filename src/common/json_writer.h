/*-------------------------------------------------------------------------
 *
 * json_writer.h
 *		PostgreSQL values as JSON text, by one set of rules with a flag for
 *		each point where a store wants other than what row_to_json() does.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_JSON_WRITER_H
#define POLYGLOT_JSON_WRITER_H

#include "fmgr.h"
#include "lib/stringinfo.h"

/*
 * Rules, or'ed together.  With none, a value of a built-in scalar type is
 * written as row_to_json() writes it in the same session: bool as true or
 * false, the integer, float and numeric types as JSON numbers (NaN and
 * infinities, which JSON has not, as strings), date, timestamp and
 * timestamptz in ISO 8601 (timestamptz in the session's TimeZone), json and
 * jsonb as they are, anything else as its text output in a string.
 * Arrays are JSON arrays, flattened when multidimensional (row_to_json
 * nests the dimensions), and composite values objects of their fields.
 */
#define POLYGLOT_JSON_AS_ROW_TO_JSON	0
#define POLYGLOT_JSON_TIMESTAMPTZ_UTC	0x01	/* timestamptz in UTC, "+00:00",
												 * whatever the session's TimeZone */
#define POLYGLOT_JSON_TIME_ISO8601		0x02	/* time and timetz in ISO 8601
												 * (a zone as +hh:mm), not their
												 * text output */
#define POLYGLOT_JSON_OID_NUMBER		0x04	/* oid as a number, not a string */
#define POLYGLOT_JSON_BYTEA_BASE64		0x08	/* bytea in base64, not its text
												 * output (\x and hex digits) */
#define POLYGLOT_JSON_ONE_LINE			0x10	/* json on one line: its newlines
												 * (between tokens) as spaces */

/* How a type is written, by its base type and the rules */
typedef enum PolyglotJsonKind
{
	POLYGLOT_JSON_KIND_BOOL,	/* true / false */
	POLYGLOT_JSON_KIND_NUMBER,	/* bare when a valid JSON number, else quoted */
	POLYGLOT_JSON_KIND_DATETIME,	/* ISO 8601, quoted */
	POLYGLOT_JSON_KIND_JSON,	/* json or jsonb: the JSON itself */
	POLYGLOT_JSON_KIND_BASE64,	/* bytea, quoted */
	POLYGLOT_JSON_KIND_ARRAY,	/* [elements], each by the same rules */
	POLYGLOT_JSON_KIND_RECORD,	/* {"field":value,...} */
	POLYGLOT_JSON_KIND_STRING	/* the text output, quoted */
} PolyglotJsonKind;

/* A type made ready for writing many values of it */
typedef struct PolyglotJsonType
{
	Oid			base;			/* the type, or a domain's base type */
	int			rules;			/* POLYGLOT_JSON_* */
	PolyglotJsonKind kind;
	FmgrInfo	output;			/* NUMBER and STRING: the base type's output */
} PolyglotJsonType;

/* in json_writer.c */
extern void polyglot_json_type_init(PolyglotJsonType *type, Oid typid, int rules,
									MemoryContext cxt);
extern void polyglot_json_append(StringInfo buf, PolyglotJsonType *type, Datum value,
								 bool isnull);
extern void polyglot_json_append_value(StringInfo buf, Datum value, bool isnull, Oid typid,
									   int rules);

#endif							/* POLYGLOT_JSON_WRITER_H */
