/*-------------------------------------------------------------------------
 *
 * datum.h
 *		Taking values apart: the elements of an array, the fields of a
 *		composite value, as the JSON and BSON writers walk them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_DATUM_H
#define POLYGLOT_DATUM_H

#include "access/htup.h"
#include "access/tupdesc.h"

/* The fields of a composite value, read one after the other */
typedef struct PolyglotRecordReader
{
	TupleDesc	desc;			/* pinned until polyglot_record_end() */
	HeapTupleData tuple;
	int			next;			/* the next attribute, 0-based */
} PolyglotRecordReader;

/* in datum.c */
extern int	polyglot_array_elements(Datum array, Oid *elemtype, Datum **elems, bool **nulls);
extern void polyglot_record_begin(PolyglotRecordReader *reader, Datum record);
extern bool polyglot_record_next(PolyglotRecordReader *reader, Form_pg_attribute *att,
								 Datum *value, bool *isnull);
extern void polyglot_record_end(PolyglotRecordReader *reader);
extern bool polyglot_number_type(Oid base);

#endif							/* POLYGLOT_DATUM_H */
