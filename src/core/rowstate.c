/*-------------------------------------------------------------------------
 *
 * rowstate.c
 *		Reads the current state of a batch's rows straight through the
 *		source table's key index, without SQL.
 *
 * The worker needs, for each key of a batch, whether its row exists and
 * what the sink delivers of it: the row as JSON (what row_to_json would
 * make of the delivered columns) or each delivered column as text (what a
 * ::text cast would make of it).  Doing that through a query costs a plan,
 * a nested loop, a function scan, SPI's copies and row_to_json's catalog
 * lookups per row; doing it here costs one index probe per key and the
 * output functions, looked up once per batch.
 *
 * The direct path only takes what it can reproduce exactly: a plain table,
 * a valid unique btree index on exactly the key columns, and delivered
 * columns of built-in scalar types (or domains over them).  Anything else
 * (arrays, composites, user-defined types, which row_to_json may turn into
 * nested JSON or through casts) makes polyglot_read_rows_direct() return
 * false, and the caller reads the rows with a query instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "common/json_writer.h"
#include "core/core.h"
#include "core/dispatch.h"

/* How a ::text cast renders a value */
typedef enum TextKind
{
	TEXT_KIND_OUTPUT,			/* the output function */
	TEXT_KIND_BOOL,				/* booltext: true / false */
	TEXT_KIND_BPCHAR			/* trailing blanks removed */
} TextKind;

typedef struct DeliveredColumn
{
	AttrNumber	attnum;
	Oid			typid;
	char	   *json_name;		/* "name": with its quotes and colon */
	PolyglotJsonType json;		/* as row_to_json writes it */
	TextKind	text_kind;
	FmgrInfo	output;			/* for the text */
} DeliveredColumn;

typedef struct KeyColumn
{
	AttrNumber	attnum;			/* in the table */
	int			index_column;	/* 1-based, in the index */
	Oid			collation;
	RegProcedure eqproc;
	FmgrInfo	input;
	Oid			ioparam;
	int32		typmod;
	Oid			key_basetype;	/* for the key's text, as capture writes it */
	FmgrInfo	key_output;
} KeyColumn;

/*
 * How row_to_json and ::text render a column of type typid, made ready in
 * the current memory context; false for the types only the SQL path
 * renders faithfully.
 */
static bool
classify_type(Oid typid, PolyglotJsonType *json, TextKind *text_kind)
{
	polyglot_json_type_init(json, typid, POLYGLOT_JSON_AS_ROW_TO_JSON, CurrentMemoryContext);
	*text_kind = TEXT_KIND_OUTPUT;
	switch (json->kind)
	{
		case POLYGLOT_JSON_KIND_BOOL:
			*text_kind = TEXT_KIND_BOOL;
			return true;
		case POLYGLOT_JSON_KIND_NUMBER:
		case POLYGLOT_JSON_KIND_DATETIME:
		case POLYGLOT_JSON_KIND_JSON:
			return true;
		case POLYGLOT_JSON_KIND_STRING:
			break;
		default:
			/* arrays and composites, which row_to_json may write otherwise */
			return false;
	}
	switch (json->base)
	{
		case BPCHAROID:
			*text_kind = TEXT_KIND_BPCHAR;
			return true;
		case TEXTOID:
		case VARCHAROID:
		case NAMEOID:
		case UUIDOID:
		case BYTEAOID:
		case TIMEOID:
		case TIMETZOID:
		case INTERVALOID:
		case OIDOID:
		case MONEYOID:
		case XMLOID:
		case MACADDROID:
		case MACADDR8OID:
		case BITOID:
		case VARBITOID:
		case TSVECTOROID:
			return true;
		default:
			/* inet (text(inet) differs), types with casts... */
			return false;
	}
}

/*
 * The unique btree index on exactly the route's key columns, opened, with
 * what a probe needs; NULL when there is none the direct path can use.
 */
static Relation
find_key_index(Relation rel, PolyglotRoute *route, KeyColumn *keys)
{
	int			nkeys = list_length(route->key_columns);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		bool		usable;
		int			i;

		usable = form->indisunique && form->indisvalid && form->indislive &&
			form->indimmediate && idx->rd_rel->relam == BTREE_AM_OID &&
			form->indnkeyatts == nkeys && RelationGetIndexPredicate(idx) == NIL;
		for (i = 0; usable && i < nkeys; i++)
		{
			AttrNumber	attnum = form->indkey.values[i];
			Form_pg_attribute att;
			ListCell   *kc;
			int			k = 0;
			bool		matched = false;

			if (attnum <= 0)
			{
				usable = false;	/* an expression */
				break;
			}
			att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
			foreach(kc, route->key_columns)
			{
				if (strcmp(NameStr(att->attname), (char *) lfirst(kc)) == 0)
				{
					matched = true;
					break;
				}
				k++;
			}
			/* the column's type must be the operator class's, or binary-coercible to it */
			if (!matched || !IsBinaryCoercible(att->atttypid, idx->rd_opcintype[i]))
			{
				usable = false;
				break;
			}
			keys[k].attnum = attnum;
			keys[k].index_column = i + 1;
			keys[k].collation = idx->rd_indcollation[i];
			keys[k].eqproc = get_opcode(get_opfamily_member(idx->rd_opfamily[i],
															idx->rd_opcintype[i],
															idx->rd_opcintype[i],
															BTEqualStrategyNumber));
			keys[k].typmod = att->atttypmod;
			if (!RegProcedureIsValid(keys[k].eqproc))
				usable = false;
			else
			{
				Oid			infunc;

				getTypeInputInfo(att->atttypid, &infunc, &keys[k].ioparam);
				fmgr_info(infunc, &keys[k].input);
				polyglot_key_output_setup(att->atttypid, &keys[k].key_basetype,
										  &keys[k].key_output, CurrentMemoryContext);
			}
		}
		if (usable)
		{
			list_free(indexes);
			return idx;
		}
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return NULL;
}

/* A value as a ::text cast renders it, in cxt. */
static char *
text_value(DeliveredColumn *col, Datum value, MemoryContext cxt)
{
	char	   *out;
	int			len;

	switch (col->text_kind)
	{
		case TEXT_KIND_BOOL:
			return MemoryContextStrdup(cxt, DatumGetBool(value) ? "true" : "false");
		case TEXT_KIND_BPCHAR:
			out = OutputFunctionCall(&col->output, value);
			len = strlen(out);
			while (len > 0 && out[len - 1] == ' ')
				len--;
			out[len] = '\0';
			return MemoryContextStrdup(cxt, out);
		case TEXT_KIND_OUTPUT:
			break;
	}
	return MemoryContextStrdup(cxt, OutputFunctionCall(&col->output, value));
}

bool
polyglot_read_rows_direct(PolyglotRoute *route, const PolyglotSink *sink,
						  PolyglotPayload payload, PolyglotItem **items, int nitems,
						  MemoryContext cxt, Size limit, bool *loaded)
{
	Size		bytes = 0;
	int			nkeys = list_length(route->key_columns);
	int			ncols = list_length(route->columns);
	KeyColumn  *keys;
	DeliveredColumn *cols;
	ScanKeyData *skeys;
	Relation	rel;
	Relation	idx;
	TupleDesc	desc;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext rowcxt;
	MemoryContext old;
	StringInfoData json;
	Datum	   *values;
	bool	   *nulls;
	Oid		   *types;
	ListCell   *lc;
	int			c,
				i;

	/*
	 * no key, a JSON object of no column, or a row filter (the query
	 * path's business)
	 */
	if (nkeys == 0 || (payload == POLYGLOT_PAYLOAD_JSON && ncols == 0) ||
		polyglot_route_filter(route) != NULL || route->nfields > 0)
		return false;
	rel = try_table_open(route->source_relid, AccessShareLock);
	if (rel == NULL)
		return false;
	if (rel->rd_rel->relkind != RELKIND_RELATION)
	{
		table_close(rel, NoLock);
		return false;
	}
	desc = RelationGetDescr(rel);

	/* the delivered columns, by name; every one must be renderable here */
	cols = palloc0(sizeof(DeliveredColumn) * Max(ncols, 1));
	c = 0;
	foreach(lc, route->columns)
	{
		const char *name = (const char *) lfirst(lc);
		DeliveredColumn *col = &cols[c++];
		Oid			outfunc;
		bool		isvarlena;
		StringInfoData jn;

		col->attnum = InvalidAttrNumber;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			{
				col->attnum = att->attnum;
				break;
			}
		}
		if (col->attnum == InvalidAttrNumber)
		{
			table_close(rel, NoLock);
			return false;
		}
		col->typid = TupleDescAttr(desc, col->attnum - 1)->atttypid;
		/* the sink renders datums of any type; text and JSON are ours */
		if (payload == POLYGLOT_PAYLOAD_DATUMS)
			continue;
		if (!classify_type(col->typid, &col->json, &col->text_kind))
		{
			table_close(rel, NoLock);
			return false;
		}
		getTypeOutputInfo(col->json.base, &outfunc, &isvarlena);
		fmgr_info(outfunc, &col->output);
		initStringInfo(&jn);
		escape_json(&jn, name);
		appendStringInfoChar(&jn, ':');
		col->json_name = jn.data;
	}

	values = palloc(sizeof(Datum) * Max(ncols, 1));
	nulls = palloc(sizeof(bool) * Max(ncols, 1));
	types = palloc(sizeof(Oid) * Max(ncols, 1));
	for (c = 0; c < ncols; c++)
		types[c] = cols[c].typid;

	keys = palloc0(sizeof(KeyColumn) * nkeys);
	idx = find_key_index(rel, route, keys);
	if (idx == NULL)
	{
		table_close(rel, NoLock);
		return false;
	}

	skeys = palloc0(sizeof(ScanKeyData) * nkeys);
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), NULL, nkeys, 0);
#else
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), nkeys, 0);
#endif
	slot = table_slot_create(rel, NULL);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot row",
								   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&json);

	for (i = 0; i < nitems; i++)
	{
		PolyglotEvent *ev = items[i]->event;
		ListCell   *vc;
		int			k = 0;

		/* past the bound (limit 0: none), the other keys are left unread */
		if (limit > 0 && bytes >= limit)
			break;

		old = MemoryContextSwitchTo(rowcxt);
		foreach(vc, ev->key)
		{
			KeyColumn  *key = &keys[k];
			Datum		value = InputFunctionCall(&key->input, (char *) lfirst(vc),
												  key->ioparam, key->typmod);

			ScanKeyEntryInitialize(&skeys[key->index_column - 1], 0, key->index_column,
								   BTEqualStrategyNumber, InvalidOid, key->collation,
								   key->eqproc, value);
			k++;
		}
		/* the scan keeps state (killed items...) in the context it runs in */
		MemoryContextSwitchTo(old);
		index_rescan(scan, skeys, nkeys, NULL, 0);
		ev->found = index_getnext_slot(scan, ForwardScanDirection, slot);

		/*
		 * A row whose key is equal but prints otherwise (numeric 1.0 and
		 * 1.000) is another key's: this one's row is gone.
		 */
		if (ev->found)
		{
			old = MemoryContextSwitchTo(rowcxt);
			k = 0;
			foreach(vc, ev->key)
			{
				KeyColumn  *key = &keys[k++];
				bool		isnull;
				Datum		value = slot_getattr(slot, key->attnum, &isnull);

				if (isnull || strcmp(polyglot_key_output(&key->key_output, key->key_basetype, value),
									 (char *) lfirst(vc)) != 0)
					ev->found = false;
			}
			MemoryContextSwitchTo(old);
		}

		if (ev->found && payload == POLYGLOT_PAYLOAD_JSON)
		{
			/* built in a scratch buffer, copied out at its exact size */
			resetStringInfo(&json);
			old = MemoryContextSwitchTo(rowcxt);
			slot_getallattrs(slot);
			appendStringInfoChar(&json, '{');
			for (c = 0; c < ncols; c++)
			{
				DeliveredColumn *col = &cols[c];

				if (c > 0)
					appendStringInfoChar(&json, ',');
				appendStringInfoString(&json, col->json_name);
				polyglot_json_append(&json, &col->json, slot->tts_values[col->attnum - 1],
									 slot->tts_isnull[col->attnum - 1]);
			}
			appendStringInfoChar(&json, '}');
			MemoryContextSwitchTo(old);
			ev->json = MemoryContextAlloc(cxt, json.len + 1);
			memcpy(ev->json, json.data, json.len + 1);
			ev->json_len = json.len;
		}
		else if (payload == POLYGLOT_PAYLOAD_DATUMS && !ev->found)
			sink->render_row(route, ev, NULL, NULL, NULL, cxt);
		else if (payload == POLYGLOT_PAYLOAD_DATUMS)
		{
			old = MemoryContextSwitchTo(rowcxt);
			slot_getallattrs(slot);
			for (c = 0; c < ncols; c++)
			{
				values[c] = slot->tts_values[cols[c].attnum - 1];
				nulls[c] = slot->tts_isnull[cols[c].attnum - 1];
			}
			sink->render_row(route, ev, values, nulls, types, cxt);
			MemoryContextSwitchTo(old);
		}
		else if (ev->found && payload == POLYGLOT_PAYLOAD_COLUMNS && ncols > 0)
		{
			ev->values = MemoryContextAllocZero(cxt, sizeof(char *) * ncols);
			old = MemoryContextSwitchTo(rowcxt);
			slot_getallattrs(slot);
			for (c = 0; c < ncols; c++)
			{
				DeliveredColumn *col = &cols[c];

				if (!slot->tts_isnull[col->attnum - 1])
					ev->values[c] = text_value(col, slot->tts_values[col->attnum - 1], cxt);
			}
			MemoryContextSwitchTo(old);
		}
		ExecClearTuple(slot);
		MemoryContextReset(rowcxt);
		if (loaded)
			loaded[i] = true;
		bytes += polyglot_event_bytes(ev, ncols);
	}

	MemoryContextDelete(rowcxt);
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return true;
}
