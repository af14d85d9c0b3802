/*-------------------------------------------------------------------------
 *
 * datum.c
 *		Taking values apart: the elements of an array, the fields of a
 *		composite value, as the JSON and BSON writers walk them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "common/datum.h"

/*
 * The number of elements of an array, in storage order (a
 * multidimensional array flattened), with their type; *elems and *nulls
 * are palloc'd in the current memory context.
 */
int
polyglot_array_elements(Datum array, Oid *elemtype, Datum **elems, bool **nulls)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	*elemtype = ARR_ELEMTYPE(arr);
	get_typlenbyvalalign(*elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, *elemtype, typlen, typbyval, typalign, elems, nulls, &n);
	return n;
}

/*
 * Starts reading the fields of a composite value.  Its row type stays
 * pinned until polyglot_record_end(), which every path that began must
 * call (an ERROR releases it with the resource owner).
 */
void
polyglot_record_begin(PolyglotRecordReader *reader, Datum record)
{
	HeapTupleHeader rec = DatumGetHeapTupleHeader(record);

	reader->desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
										  HeapTupleHeaderGetTypMod(rec));
	reader->tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&reader->tuple.t_self);
	reader->tuple.t_tableOid = InvalidOid;
	reader->tuple.t_data = rec;
	reader->next = 0;
}

/*
 * The next field, its dropped columns passed over: its attribute (name
 * and type) and value; false after the last.
 */
bool
polyglot_record_next(PolyglotRecordReader *reader, Form_pg_attribute *att, Datum *value,
					 bool *isnull)
{
	while (reader->next < reader->desc->natts)
	{
		int			i = reader->next++;

		*att = TupleDescAttr(reader->desc, i);
		if ((*att)->attisdropped)
			continue;
		*value = heap_getattr(&reader->tuple, i + 1, reader->desc, isnull);
		return true;
	}
	return false;
}

void
polyglot_record_end(PolyglotRecordReader *reader)
{
	ReleaseTupleDesc(reader->desc);
}

/* Is base (a base type) one of SQL's numbers, which every store holds as a number? */
bool
polyglot_number_type(Oid base)
{
	return base == INT2OID || base == INT4OID || base == INT8OID ||
		base == FLOAT4OID || base == FLOAT8OID || base == NUMERICOID;
}
