/*-------------------------------------------------------------------------
 *
 * json_writer.h
 *		PostgreSQL values as JSON text.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_JSON_WRITER_H
#define POLYGLOT_JSON_WRITER_H

#include "lib/stringinfo.h"

/* in json_writer.c */
extern void polyglot_elastic_append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid);

#endif							/* POLYGLOT_JSON_WRITER_H */
