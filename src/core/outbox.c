/*-------------------------------------------------------------------------
 *
 * outbox.c
 *		The outbox and the dead letters, the only code that knows their row
 *		layout: append keys (capture triggers, backfill, verify's repairs),
 *		read a batch, acknowledge it, put a failed key back for a retry,
 *		dead-letter, replay dead letters, forget a removed route's events,
 *		and re-split rows written under another polyglot.workers.
 *
 * An outbox row holds up to POLYGLOT_OUTBOX_CHUNK_KEYS keys of one route
 * and one worker slot (its key column a [nkeys][ncolumns] text array).
 * Appended rows are written directly (heap and index insert, as catalog
 * updates do) rather than through SPI: writers need no privilege on the
 * extension's tables.  The outbox is an internal table of the extension
 * with plain-column indexes only.  The worker's statements run in its
 * short transactions (spi_util.c), their plans kept for its life.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/dispatch.h"
#include "core/outbox.h"

PG_FUNCTION_INFO_V1(polyglot_key_slot_sql);
PG_FUNCTION_INFO_V1(polyglot_nslots_sql);
PG_FUNCTION_INFO_V1(polyglot_outbox_append_sql);
PG_FUNCTION_INFO_V1(polyglot_outbox_rows_sql);
PG_FUNCTION_INFO_V1(polyglot_outbox_retry_sql);
PG_FUNCTION_INFO_V1(polyglot_outbox_drop_sql);

/* where the outbox is, looked up once per backend and on invalidation */
typedef struct OutboxInfo
{
	bool		valid;
	Oid			relid;
	Oid			seqid;
	AttrNumber	att_id;
	AttrNumber	att_route;
	AttrNumber	att_op;
	AttrNumber	att_key;
	AttrNumber	att_nkeys;
	AttrNumber	att_enqueued;
	AttrNumber	att_attempts;
	AttrNumber	att_slot;
	AttrNumber	att_nslots;
	int			nindexes;
	Oid			index_oids[4];
	IndexInfo  *index_info[4];
	MemoryContext cxt;			/* holds index_info */
} OutboxInfo;

static OutboxInfo outbox = {false};
static bool inval_registered = false;

/* ---------------------------------------------------------------- worker slots */

/*
 * How many worker slots keys are split into: polyglot.workers, fixed for
 * the server's lifetime (1 where the library is not preloaded, and no
 * worker runs anyway).
 */
int
polyglot_nslots(void)
{
	return Max(1, Min(polyglot_workers, POLYGLOT_MAX_WORKERS));
}

/*
 * The worker slot of a key, given as the text values of its columns: a
 * hash of the values modulo polyglot_nslots().  Every writer of outbox
 * rows uses this one function (the replay of dead letters and the re-split
 * through polyglot._slot()), so all events of a key go to the same worker,
 * which keeps them in order.
 */
int
polyglot_key_slot(Datum *texts, int ncols)
{
	uint32		h = 0;
	int			i;

	if (polyglot_nslots() == 1)
		return 0;
	for (i = 0; i < ncols; i++)
	{
		text	   *t = DatumGetTextPP(texts[i]);

		h = hash_combine(h, hash_bytes((unsigned char *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
	}
	return (int) (h % (uint32) polyglot_nslots());
}

/*
 * polyglot._slot(key text[]) returns int: the worker slot of one key, given
 * as a [ncols] or [1][ncols] text array (NULL elements count as '').
 */
Datum
polyglot_key_slot_sql(PG_FUNCTION_ARGS)
{
	ArrayType  *key = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(key, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (nulls[i])
			elems[i] = CStringGetTextDatum("");
	PG_RETURN_INT32(polyglot_key_slot(elems, n));
}

/* polyglot._nslots() returns int: polyglot_nslots(). */
Datum
polyglot_nslots_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(polyglot_nslots());
}

/* ---------------------------------------------------------------- appending */

static void
outbox_inval_callback(Datum arg, Oid relid)
{
	int			i;

	if (!OidIsValid(relid) || relid == outbox.relid)
		outbox.valid = false;
	for (i = 0; i < outbox.nindexes; i++)
		if (relid == outbox.index_oids[i])
			outbox.valid = false;
}

static AttrNumber
outbox_attnum(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "pg_polyglot: column \"%s\" of polyglot.outbox is missing", name);
	return attnum;
}

void
polyglot_outbox_load(void)
{
	Oid			nsp;

	if (!inval_registered)
	{
		CacheRegisterRelcacheCallback(outbox_inval_callback, (Datum) 0);
		inval_registered = true;
	}
	if (outbox.valid)
		return;
	nsp = get_namespace_oid("polyglot", false);
	outbox.relid = get_relname_relid("outbox", nsp);
	outbox.seqid = get_relname_relid("outbox_id_seq", nsp);
	if (!OidIsValid(outbox.relid) || !OidIsValid(outbox.seqid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the pg_polyglot outbox is missing"),
				 errhint("Is the extension pg_polyglot installed in this database?")));
	outbox.att_id = outbox_attnum(outbox.relid, "id");
	outbox.att_route = outbox_attnum(outbox.relid, "route_id");
	outbox.att_op = outbox_attnum(outbox.relid, "op");
	outbox.att_key = outbox_attnum(outbox.relid, "key");
	outbox.att_nkeys = outbox_attnum(outbox.relid, "nkeys");
	outbox.att_enqueued = outbox_attnum(outbox.relid, "enqueued_at");
	outbox.att_attempts = outbox_attnum(outbox.relid, "attempts");
	outbox.att_slot = outbox_attnum(outbox.relid, "slot");
	outbox.att_nslots = outbox_attnum(outbox.relid, "nslots");
	if (outbox.cxt == NULL)
		outbox.cxt = AllocSetContextCreate(CacheMemoryContext, "pg_polyglot outbox",
										   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(outbox.cxt);
	outbox.nindexes = 0;
	{
		Relation	rel = table_open(outbox.relid, AccessShareLock);
		List	   *indexes = RelationGetIndexList(rel);
		ListCell   *lc;

		foreach(lc, indexes)
		{
			Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
			MemoryContext old = MemoryContextSwitchTo(outbox.cxt);
			IndexInfo  *ii = BuildIndexInfo(index);

			MemoryContextSwitchTo(old);
			if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL ||
				outbox.nindexes >= (int) lengthof(outbox.index_oids))
				elog(ERROR, "pg_polyglot: index \"%s\" on the outbox is not supported",
					 RelationGetRelationName(index));
			outbox.index_oids[outbox.nindexes] = lfirst_oid(lc);
			outbox.index_info[outbox.nindexes] = ii;
			outbox.nindexes++;
			index_close(index, AccessShareLock);
		}
		list_free(indexes);
		table_close(rel, AccessShareLock);
	}
	outbox.valid = true;
}

/*
 * Inserts one outbox tuple, heap and indexes, as the outbox owner would.
 * The caller has opened the outbox with RowExclusiveLock.
 */
static void
outbox_insert(Relation rel, int32 route, int slot, char op, Datum key, int32 nkeys)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Datum	   *values = palloc0(sizeof(Datum) * tupdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * tupdesc->natts);
	HeapTuple	tuple;
	int			i;

	memset(nulls, true, sizeof(bool) * tupdesc->natts);
	values[outbox.att_id - 1] = Int64GetDatum(nextval_internal(outbox.seqid, false));
	nulls[outbox.att_id - 1] = false;
	values[outbox.att_route - 1] = Int32GetDatum(route);
	nulls[outbox.att_route - 1] = false;
	values[outbox.att_op - 1] = CharGetDatum(op);
	nulls[outbox.att_op - 1] = false;
	values[outbox.att_key - 1] = key;
	nulls[outbox.att_key - 1] = false;
	values[outbox.att_nkeys - 1] = Int32GetDatum(nkeys);
	nulls[outbox.att_nkeys - 1] = false;
	values[outbox.att_enqueued - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	nulls[outbox.att_enqueued - 1] = false;
	values[outbox.att_attempts - 1] = Int32GetDatum(0);
	nulls[outbox.att_attempts - 1] = false;
	values[outbox.att_slot - 1] = Int16GetDatum(slot);
	nulls[outbox.att_slot - 1] = false;
	values[outbox.att_nslots - 1] = Int16GetDatum(polyglot_nslots());
	nulls[outbox.att_nslots - 1] = false;

	tuple = heap_form_tuple(tupdesc, values, nulls);
	simple_heap_insert(rel, tuple);

	for (i = 0; i < outbox.nindexes; i++)
	{
		Relation	index = index_open(outbox.index_oids[i], RowExclusiveLock);
		IndexInfo  *ii = outbox.index_info[i];
		Datum		ivalues[INDEX_MAX_KEYS];
		bool		inulls[INDEX_MAX_KEYS];
		int			k;

		for (k = 0; k < ii->ii_NumIndexAttrs; k++)
		{
			AttrNumber	attnum = ii->ii_IndexAttrNumbers[k];

			ivalues[k] = values[attnum - 1];
			inulls[k] = nulls[attnum - 1];
		}
		index_insert(index, ivalues, inulls, &tuple->t_self, rel,
					 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
#if PG_VERSION_NUM >= 140000
					 false,
#endif
					 ii);
		index_close(index, RowExclusiveLock);
	}
	heap_freetuple(tuple);
	pfree(values);
	pfree(nulls);
}

/*
 * Appends one outbox row of nkeys keys of a route and worker slot, elems
 * holding nkeys * ncols text values.
 */
void
polyglot_outbox_append(int32 route, int slot, char op, Datum *elems, int nkeys, int ncols)
{
	Relation	rel;
	int			dims[2];
	int			lbs[2] = {1, 1};
	ArrayType  *keys;

	/* for polyglot.await_delivery() in this backend */
	polyglot_fence_note(route, slot);
	polyglot_outbox_load();
	dims[0] = nkeys;
	dims[1] = ncols;
	keys = construct_md_array(elems, NULL, 2, dims, lbs, TEXTOID, -1, false,
							  TYPALIGN_INT);
	/* direct heap and index inserts check no privileges: no user switch */
	rel = table_open(outbox.relid, RowExclusiveLock);
	outbox_insert(rel, route, slot, op, PointerGetDatum(keys), nkeys);
	table_close(rel, RowExclusiveLock);
	pfree(keys);
}

/*
 * Appends keys of a route as outbox rows, as the capture trigger writes
 * them: the keys of one worker slot together, up to
 * POLYGLOT_OUTBOX_CHUNK_KEYS per row, in the order given within a slot.
 * elems holds nkeys * ncols text values.
 */
void
polyglot_outbox_append_keys(int32 route, char op, Datum *elems, int nkeys, int ncols)
{
	int			nslots = polyglot_nslots();
	Datum	  **chunk = palloc0(sizeof(Datum *) * nslots);
	int		   *n = palloc0(sizeof(int) * nslots);
	int			k;
	int			slot;

	for (k = 0; k < nkeys; k++)
	{
		Datum	   *key = &elems[k * ncols];

		slot = polyglot_key_slot(key, ncols);
		if (chunk[slot] == NULL)
			chunk[slot] = palloc(sizeof(Datum) * POLYGLOT_OUTBOX_CHUNK_KEYS * ncols);
		memcpy(&chunk[slot][n[slot] * ncols], key, sizeof(Datum) * ncols);
		if (++n[slot] == POLYGLOT_OUTBOX_CHUNK_KEYS)
		{
			polyglot_outbox_append(route, slot, op, chunk[slot], n[slot], ncols);
			n[slot] = 0;
		}
	}
	for (slot = 0; slot < nslots; slot++)
	{
		if (n[slot] > 0)
			polyglot_outbox_append(route, slot, op, chunk[slot], n[slot], ncols);
		if (chunk[slot])
			pfree(chunk[slot]);
	}
	pfree(chunk);
	pfree(n);
}

/*
 * polyglot._outbox_append(route int, op "char", keys text[]) returns int:
 * polyglot_outbox_append_keys() in SQL, keys being a [nkeys][ncols] text
 * array (NULL elements count as ''); returns the number of keys.
 */
Datum
polyglot_outbox_append_sql(PG_FUNCTION_ARGS)
{
	int32		route = PG_GETARG_INT32(0);
	char		op = PG_GETARG_CHAR(1);
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(2);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems,
				ncols,
				i;

	if (ARR_NDIM(keys) == 0)
		PG_RETURN_INT32(0);
	if (ARR_NDIM(keys) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the keys of polyglot._outbox_append() are a [keys][key columns] array")));
	ncols = ARR_DIMS(keys)[1];
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (i = 0; i < nelems; i++)
		if (nulls[i])
			elems[i] = CStringGetTextDatum("");
	polyglot_outbox_append_keys(route, op, elems, nelems / ncols, ncols);
	PG_RETURN_INT32(nelems / ncols);
}

/* ---------------------------------------------------------------- pending rows, dead letters, removal */

/*
 * The number of outbox rows of a route, of operation op ('\0': any),
 * counted up to upto.
 */
int64
polyglot_outbox_rows(int32 route, char op, int64 upto)
{
	Oid			argtypes[3] = {INT4OID, CHAROID, INT8OID};
	Datum		args[3] = {Int32GetDatum(route), CharGetDatum(op), Int64GetDatum(upto)};
	char		nulls[3] = {' ', op ? ' ' : 'n', ' '};
	bool		isnull;
	int64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	(void) spi_exec("SELECT pg_catalog.count(*) FROM (SELECT FROM polyglot.outbox o "
					"WHERE o.route_id = $1 AND ($2 IS NULL OR o.op = $2) LIMIT $3) w",
					3, argtypes, args, nulls, true, SPI_OK_SELECT, "counting outbox rows");
	n = DatumGetInt64(spi_datum(SPI_tuptable->vals[0], 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * polyglot._outbox_rows(route int, op "char", upto int) returns int:
 * polyglot_outbox_rows() in SQL.
 */
Datum
polyglot_outbox_rows_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) polyglot_outbox_rows(PG_GETARG_INT32(0), PG_GETARG_CHAR(1),
												 PG_GETARG_INT32(2)));
}

/*
 * polyglot._outbox_retry(route int) returns bigint: moves the dead letters
 * of a route back to the outbox, each key a row of its own with its first
 * id and enqueue time, and fresh attempts; returns how many.
 */
Datum
polyglot_outbox_retry_sql(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {PG_GETARG_DATUM(0)};
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	n = spi_exec("WITH moved AS ("
				 "  DELETE FROM polyglot.dead_letters d WHERE d.route_id = $1 RETURNING d.*) "
				 "INSERT INTO polyglot.outbox (id, route_id, op, key, enqueued_at, slot, nslots) "
				 "SELECT m.id, m.route_id, m.op, m.key, m.enqueued_at, polyglot._slot(m.key), "
				 "       polyglot._nslots() "
				 "FROM moved m",
				 1, argtypes, args, NULL, false, SPI_OK_INSERT, "putting dead letters back");
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}

/*
 * polyglot._outbox_drop(route int): forgets a route's pending events: the
 * keys this backend captured and has not yet written, its outbox rows and
 * its dead letters.  Removing a route (unsync, a dropped table or key
 * column) calls it, after dropping the capture triggers.
 */
Datum
polyglot_outbox_drop_sql(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {PG_GETARG_DATUM(0)};

	polyglot_capture_forget(PG_GETARG_INT32(0));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	(void) spi_exec("DELETE FROM polyglot.outbox o WHERE o.route_id = $1", 1, argtypes, args,
					NULL, false, SPI_OK_DELETE, "dropping a route's outbox rows");
	(void) spi_exec("DELETE FROM polyglot.dead_letters d WHERE d.route_id = $1", 1, argtypes,
					args, NULL, false, SPI_OK_DELETE, "dropping a route's dead letters");
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- reading a batch */

static SPIPlanPtr events_plan = NULL;

/*
 * The events of a batch: the route's due outbox rows, oldest first, as many
 * as it takes to reach polyglot.batch_size keys (a row holds up to a
 * thousand keys of one transaction).  Only the rows kept are detoasted: the
 * running count uses the nkeys column, not the key arrays.
 *
 * A batch starts after $6, the last outbox id of the route's previous
 * batch when that one was full (see polyglot_outbox_position()), else 0: while a
 * backlog drains, a batch does not walk again the index entries of the
 * rows already acknowledged, which stay in the index as long as something
 * holds back xmin (a long transaction, pg_dump, a replication slot) and
 * would make the drain quadratic.  A row that committed late with a lower
 * id is found when the backlog is drained: the first batch that is not
 * full sets the position back to 0.
 *
 * Rows written under another polyglot.workers (nslots differs: a prepared
 * transaction committed after a restart that changed it) are left alone
 * until worker 0 re-splits them: their slot is not this number of workers'.
 *
 * The route is checked again for a pause in the snapshot that reads the
 * rows: the round read the route list in an earlier transaction, and a
 * pause committed in between must hold back any change written after it
 * (a snapshot that sees such a change sees the pause too).
 */
static const char *const events_sql =
"SELECT id, attempts, op, enqueued_at, key, nkeys FROM polyglot.outbox"
"  WHERE route_id = $1 AND slot = $4 AND id > $6 AND nslots = $5"
"    AND (retry_at IS NULL OR retry_at <= now())"
"    AND id <> ALL ($3)"
"    AND NOT EXISTS (SELECT FROM polyglot.routes r"
"                    WHERE r.id = $1 AND r.paused)"
"  ORDER BY id LIMIT $2";

/* Where the next batch of each route starts reading, by route id */
typedef struct RoutePosition
{
	int32		route_id;		/* hash key */
	int64		after;			/* outbox id */
} RoutePosition;

static HTAB *positions = NULL;

/*
 * The outbox id after which the next batch of a route starts (0: from the
 * first); kept for the worker's life, in TopMemoryContext.
 */
int64 *
polyglot_outbox_position(int32 route_id)
{
	RoutePosition *pos;
	bool		found;

	if (positions == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(RoutePosition);
		ctl.hcxt = TopMemoryContext;
		positions = hash_create("pg_polyglot route positions", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	pos = hash_search(positions, &route_id, HASH_ENTER, &found);
	if (!found)
		pos->after = 0;
	return &pos->after;
}

/*
 * Reads the events of a batch (in cxt, one per key, oldest first), leaving
 * out the outbox rows of a batch still in flight; the number of keys read
 * is the length of the list.
 */
List *
polyglot_outbox_read(PolyglotRoute *route, Datum inflight_ids, MemoryContext cxt)
{
	Oid			argtypes[6] = {INT4OID, INT4OID, INT8ARRAYOID, INT2OID, INT2OID, INT8OID};
	Datum		args[6];
	List	   *events = NIL;
	int			ncols = list_length(route->key_columns);
	uint64		r;
	int64		upto = 0;		/* keys of the rows taken */

	args[0] = Int32GetDatum(route->id);
	args[1] = Int32GetDatum(polyglot_batch_size);
	args[2] = inflight_ids;
	args[3] = Int16GetDatum(polyglot_worker_slot);
	args[4] = Int16GetDatum(polyglot_nslots());
	args[5] = Int64GetDatum(*polyglot_outbox_position(route->id));
	(void) spi_exec_plan(&events_plan, events_sql, 6, argtypes, args, NULL, true, SPI_OK_SELECT,
						 "reading a batch");

	/* rows as long as fewer keys than the batch size came before them */
	for (r = 0; r < SPI_processed && upto < polyglot_batch_size; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		int64		id = DatumGetInt64(spi_datum(tup, 1, &isnull));
		int32		attempts = DatumGetInt32(spi_datum(tup, 2, &isnull));
		char		op = DatumGetChar(spi_datum(tup, 3, &isnull));
		TimestampTz enqueued = DatumGetTimestampTz(spi_datum(tup, 4, &isnull));
		ArrayType  *keys;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems,
					k;

		upto += DatumGetInt32(spi_datum(tup, 6, &isnull));
		keys = DatumGetArrayTypeP(spi_datum(tup, 5, &isnull));
		deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
		if (ncols == 0 || nelems % ncols != 0)
			elog(ERROR, "pg_polyglot: outbox row " INT64_FORMAT " has a malformed key", id);
		for (k = 0; k < nelems / ncols; k++)
		{
			PolyglotEvent *ev = MemoryContextAllocZero(cxt, sizeof(PolyglotEvent));
			MemoryContext old = MemoryContextSwitchTo(cxt);
			int			c;

			ev->id = id;
			ev->attempts = attempts;
			ev->op = op;
			ev->enqueued_at = enqueued;
			for (c = 0; c < ncols; c++)
				ev->key = lappend(ev->key, nulls[k * ncols + c] ? pstrdup("") :
								  TextDatumGetCString(elems[k * ncols + c]));
			events = lappend(events, ev);
			MemoryContextSwitchTo(old);
		}
	}
	return events;
}

/* ---------------------------------------------------------------- acknowledgement */

static SPIPlanPtr ack_plan = NULL;
static SPIPlanPtr retry_plan = NULL;
static SPIPlanPtr requeue_plan = NULL;

/* The distinct outbox ids of a batch's events, as a bigint[]. */
Datum
polyglot_outbox_ids(List *events)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(events), 1));
	ListCell   *lc;
	int			n = 0;
	int64		last = -1;

	/* events come oldest first, the keys of one row together */
	foreach(lc, events)
	{
		int64		id = ((PolyglotEvent *) lfirst(lc))->id;

		if (id != last)
			elems[n++] = Int64GetDatum(id);
		last = id;
	}
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* One key as a [1][ncols] text array, the form of outbox and dead letter keys. */
static Datum
key_array(List *key)
{
	int			n = list_length(key);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			dims[2] = {1, n};
	int			lbs[2] = {1, 1};
	ListCell   *lc;
	int			i = 0;

	foreach(lc, key)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_md_array(elems, NULL, 2, dims, lbs, TEXTOID, -1, false,
											  TYPALIGN_INT));
}

/*
 * Deletes the outbox rows of a route that a batch's events came from: the
 * batch is acknowledged.  Runs inside the acknowledging transaction.
 */
void
polyglot_outbox_ack(int32 route_id, List *events)
{
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		args[2] = {Int32GetDatum(route_id), polyglot_outbox_ids(events)};

	(void) spi_exec_plan(&ack_plan, "DELETE FROM polyglot.outbox WHERE route_id = $1 AND id = ANY($2)",
						 2, argtypes, args, NULL, false, SPI_OK_DELETE, "acknowledging");
}

/*
 * The first six parameters of a failed key's row, in the outbox or the
 * dead letters: route, operation and key of the item's first event, the
 * oldest enqueue time of its events, the attempts made and the error.
 * (The oldest: polyglot.await_delivery() counts a key as pending while a
 * row of it is enqueued no later than a change it waits for; the first
 * event may be a younger one, a backfill's say, that the key's change was
 * coalesced with.)
 */
static void
failed_key_args(PolyglotRoute *route, PolyglotItem *item, int32 attempts, const char *error,
				Datum *args)
{
	TimestampTz oldest = item->event->enqueued_at;
	ListCell   *lc;

	foreach(lc, item->events)
	{
		PolyglotEvent *ev = (PolyglotEvent *) lfirst(lc);

		if (ev->enqueued_at < oldest)
			oldest = ev->enqueued_at;
	}
	args[0] = Int32GetDatum(route->id);
	args[1] = CharGetDatum(item->event->op);
	args[2] = key_array(item->event->key);
	args[3] = TimestampTzGetDatum(oldest);
	args[4] = Int32GetDatum(attempts);
	args[5] = CStringGetTextDatum(error);
}

/*
 * Puts the key of an item that failed back in the outbox as a row of its
 * own, with its attempts so far and the error, due again in retry_ms.  Its
 * slot is this worker's: its retries stay here.  Runs inside the
 * acknowledging transaction.
 */
void
polyglot_outbox_retry_later(PolyglotRoute *route, PolyglotItem *item, int32 attempts,
							const char *error, int retry_ms)
{
	Oid			argtypes[9] = {INT4OID, CHAROID, TEXTARRAYOID, TIMESTAMPTZOID, INT4OID,
	TEXTOID, INT4OID, INT2OID, INT2OID};
	Datum		args[9];

	failed_key_args(route, item, attempts, error, args);
	args[6] = Int32GetDatum(retry_ms);
	args[7] = Int16GetDatum(polyglot_worker_slot);
	args[8] = Int16GetDatum(polyglot_nslots());
	(void) spi_exec_plan(&retry_plan, "INSERT INTO polyglot.outbox "
						 "(route_id, op, key, enqueued_at, attempts, last_error, retry_at, slot, nslots) "
						 "VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond', $8, $9)",
						 9, argtypes, args, NULL, false, SPI_OK_INSERT, "recording a failure");
}

/*
 * Moves the events of one key to the dead letters, as one dead letter row
 * with the key, its first event's operation, its events' oldest enqueue
 * time, the attempts made and the error.  Runs inside the acknowledging transaction, which
 * also deletes the key's outbox rows, so neither is lost without the
 * other.  Every way into the dead letters goes through here: a key out of
 * attempts, and a key rejected outright (POLYGLOT_ITEM_REJECTED, by the
 * batch read or by a sink).
 */
void
polyglot_outbox_dead_letter(PolyglotRoute *route, PolyglotItem *item, int32 attempts, const char *error)
{
	static SPIPlanPtr dead_plan = NULL;
	Oid			argtypes[6] = {INT4OID, CHAROID, TEXTARRAYOID, TIMESTAMPTZOID, INT4OID, TEXTOID};
	Datum		args[6];

	failed_key_args(route, item, attempts, error, args);
	(void) spi_exec_plan(&dead_plan, "INSERT INTO polyglot.dead_letters "
						 "(id, route_id, op, key, enqueued_at, attempts, error) "
						 "VALUES (nextval('polyglot.outbox_id_seq'), $1, $2, $3, $4, $5, $6)",
						 6, argtypes, args, NULL, false, SPI_OK_INSERT, "dead-lettering");
}

/* Orders events by outbox row */
static int
event_id_cmp(const ListCell *a, const ListCell *b)
{
	int64		ia = ((PolyglotEvent *) lfirst(a))->id;
	int64		ib = ((PolyglotEvent *) lfirst(b))->id;

	return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/*
 * Puts the events of the keys that polyglot.batch_bytes left out of a batch
 * back in the outbox, unchanged: the events that came from one outbox row go
 * back as one row, with its operation, enqueue time and attempts, due at
 * once (a key with events of several rows keeps each, so the delivered
 * count stays one per event).  They get new ids, after every row of the
 * batches in flight, so they are read by a later batch, in a later
 * snapshot: the state of their rows then is never older than what a batch
 * in flight delivers of the same keys.
 */
void
polyglot_outbox_requeue(PolyglotRoute *route, List *deferred)
{
	int			ncols = list_length(route->key_columns);
	List	   *events = NIL;
	ListCell   *lc;
	Datum	   *elems;
	int			nevents;
	int			first = 0;

	foreach(lc, deferred)
		events = list_concat(events, ((PolyglotItem *) lfirst(lc))->events);
	list_sort(events, event_id_cmp);
	nevents = list_length(events);
	elems = palloc(sizeof(Datum) * Max(Min(nevents, POLYGLOT_OUTBOX_CHUNK_KEYS) * ncols, 1));

	while (first < nevents)
	{
		PolyglotEvent *head = (PolyglotEvent *) list_nth(events, first);
		int			n = 0;
		int			dims[2];
		int			lbs[2] = {1, 1};
		Oid			argtypes[8] = {INT4OID, CHAROID, TEXTARRAYOID, INT4OID, TIMESTAMPTZOID,
		INT4OID, INT2OID, INT2OID};
		Datum		args[8];

		while (first + n < nevents && n < POLYGLOT_OUTBOX_CHUNK_KEYS)
		{
			PolyglotEvent *ev = (PolyglotEvent *) list_nth(events, first + n);
			ListCell   *kc;
			int			c = 0;

			if (ev->id != head->id)
				break;
			foreach(kc, ev->key)
				elems[n * ncols + c++] = CStringGetTextDatum((char *) lfirst(kc));
			n++;
		}
		dims[0] = n;
		dims[1] = ncols;
		args[0] = Int32GetDatum(route->id);
		args[1] = CharGetDatum(head->op);
		args[2] = PointerGetDatum(construct_md_array(elems, NULL, 2, dims, lbs, TEXTOID, -1,
													 false, TYPALIGN_INT));
		args[3] = Int32GetDatum(n);
		args[4] = TimestampTzGetDatum(head->enqueued_at);
		args[5] = Int32GetDatum(head->attempts);
		/* the keys' slot is this worker's */
		args[6] = Int16GetDatum(polyglot_worker_slot);
		args[7] = Int16GetDatum(polyglot_nslots());
		(void) spi_exec_plan(&requeue_plan, "INSERT INTO polyglot.outbox "
							 "(route_id, op, key, nkeys, enqueued_at, attempts, slot, nslots) "
							 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							 8, argtypes, args, NULL, false, SPI_OK_INSERT,
							 "putting back the keys a batch left out");
		first += n;
	}
}

/* ---------------------------------------------------------------- re-split */

/*
 * Makes every outbox row fit polyglot.workers: a row written while the
 * server ran with another number of workers (its nslots differs) is split
 * into rows of one slot each, in one transaction.  Worker 0 runs this
 * before the other workers start, so that no two workers ever hold events
 * of one key.  Errors are fatal to the worker, which the launcher restarts.
 * Nothing is done to the objects of a version the library does not serve.
 */
void
polyglot_resplit_outbox(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(polyglot_nslots())};
	uint64		n;

	begin_tx();
	if (!OidIsValid(get_extension_oid("pg_polyglot", true)) || polyglot_served_version() < 0)
	{
		end_tx();
		return;
	}
	n = spi_exec("WITH old AS (DELETE FROM polyglot.outbox WHERE nslots <> $1 AND slot >= 0 RETURNING *), "
				 "k AS (SELECT o.id, o.route_id, o.op, o.enqueued_at, o.attempts, o.retry_at, "
				 "             o.last_error, i, "
				 "             ARRAY(SELECT pg_catalog.unnest(o.key[i:i][:])) AS k "
				 "      FROM old o, pg_catalog.generate_subscripts(o.key, 1) i), "
				 "s AS (SELECT k.*, polyglot._slot(k.k) AS slot FROM k) "
				 "INSERT INTO polyglot.outbox (route_id, op, key, nkeys, enqueued_at, attempts, "
				 "                             retry_at, last_error, slot, nslots) "
				 "SELECT route_id, op, pg_catalog.array_agg(k ORDER BY i), pg_catalog.count(*), "
				 "       enqueued_at, attempts, retry_at, last_error, slot, $1 "
				 "FROM s GROUP BY id, route_id, op, enqueued_at, attempts, retry_at, last_error, slot",
				 1, argtypes, args, NULL, false, SPI_OK_INSERT, "re-split the outbox");
	end_tx();
	if (n > 0)
		ereport(LOG,
				(errmsg("pg_polyglot re-split pending events into " UINT64_FORMAT " outbox rows for %d workers",
						n, polyglot_nslots())));
}
