/*-------------------------------------------------------------------------
 *
 * capture.c
 *		The capture triggers: record (route, key, operation) in the outbox
 *		in the writing transaction, and wake the worker at commit.
 *
 * polyglot._capture() is an AFTER ... FOR EACH ROW trigger; its arguments
 * are the route id and the attribute numbers of the key columns.  It does
 * not write an outbox row per changed row: keys gather in memory in chunks
 * (POLYGLOT_OUTBOX_CHUNK_KEYS), and each chunk becomes one outbox row
 * (polyglot_outbox_append()) when it is full or just before commit.
 * Multi-row statements thus cost a fraction of a row each.
 *
 * polyglot._capture_truncate() is a BEFORE TRUNCATE trigger: it records
 * every key of the table as deleted, so TRUNCATE reaches the stores.
 *
 * Neither does any network I/O.  Writers need no privilege on the
 * extension's tables: outbox.c's direct inserts check none.  The TRUNCATE
 * trigger reads the keys as the table's owner, in a security-restricted
 * operation.
 *
 * A transaction that captured something sets a flag; the transaction
 * callback sets the worker's latch when it commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/rel.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/outbox.h"

PG_FUNCTION_INFO_V1(polyglot_capture);
PG_FUNCTION_INFO_V1(polyglot_capture_related);
PG_FUNCTION_INFO_V1(polyglot_capture_truncate);

static uint64 wake_at_commit = 0;	/* the worker slots to wake at commit */

/*
 * Which routes the transaction wrote outbox rows of, for which worker: the
 * workers look only at those routes when they wake (polyglot_wake_routes).
 * Past POLYGLOT_CAPTURE_HINTS distinct ones, or when something asked for
 * every worker to be woken, they look at every route.
 */
#define POLYGLOT_CAPTURE_HINTS 16
static PolyglotWakeHint wake_hints[POLYGLOT_CAPTURE_HINTS];
static int	nwake_hints = 0;
static bool wake_all_routes = false;
static bool committed = false;	/* the transaction committed: wake once its
								 * invalidations are out */
static bool callbacks_registered = false;

/*
 * Captured keys wait in chunks, one outbox row per chunk: a chunk holds up
 * to POLYGLOT_OUTBOX_CHUNK_KEYS keys of one route captured at one
 * subtransaction level.  A full chunk is written at once; the rest are written just
 * before the transaction or subtransaction that filled them commits (or
 * prepares).  A rolled-back subtransaction drops the chunks it filled;
 * chunks it had already written are rolled back with it.
 */
typedef struct CaptureChunk
{
	int32		route;
	int			slot;			/* the worker the keys hash to */
	int			level;			/* subtransaction nesting level */
	char		op;				/* the keys' operation, 'M' when mixed */
	int			ncols;
	int			nkeys;
	int			capacity;		/* keys elems has room for; grows */
	Datum	   *elems;			/* nkeys * ncols text values */
} CaptureChunk;

static List *chunks = NIL;		/* of CaptureChunk *, in chunk_cxt */
static MemoryContext chunk_cxt = NULL;

static void flush_chunk(CaptureChunk *chunk);
static void flush_all_chunks(void);

static void
reset_chunks(void)
{
	chunks = NIL;
	if (chunk_cxt)
		MemoryContextReset(chunk_cxt);
}

static void
forget_wake(void)
{
	wake_at_commit = 0;
	nwake_hints = 0;
	wake_all_routes = false;
	committed = false;
}

/*
 * Wakes the workers for a committed transaction, once its invalidations
 * are sent: PostgreSQL sends them after the commit callbacks (and before
 * the locks are released), and a worker woken earlier could read its
 * cached routes before the invalidation of a change this transaction made
 * to them (a resume, a new route) and leave the change's events waiting.
 * Called for each resource owner of each release phase: wakes once, in
 * the phase after the locks.
 */
static void
capture_release_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel, void *arg)
{
	if (!committed || phase != RESOURCE_RELEASE_AFTER_LOCKS || !isTopLevel)
		return;
	if (isCommit)
		polyglot_wake_routes(MyDatabaseId, wake_at_commit,
							 wake_all_routes ? NULL : wake_hints,
							 wake_all_routes ? 0 : nwake_hints);
	forget_wake();
}

/* Notes that the transaction wrote outbox rows of a route for a worker slot */
static inline void
hint_wake(int32 route, int slot)
{
	int			i;

	wake_at_commit |= UINT64CONST(1) << slot;
	if (wake_all_routes)
		return;
	for (i = nwake_hints - 1; i >= 0; i--)
		if (wake_hints[i].route == route && wake_hints[i].slot == slot)
			return;
	if (nwake_hints == POLYGLOT_CAPTURE_HINTS)
	{
		wake_all_routes = true;
		return;
	}
	wake_hints[nwake_hints].route = route;
	wake_hints[nwake_hints].slot = slot;
	nwake_hints++;
}

static void
capture_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			flush_all_chunks();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* the wake-up itself waits: see capture_release_callback() */
			committed = wake_at_commit != 0;
			if (!committed)
				forget_wake();
			reset_chunks();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_wake();
			reset_chunks();
			break;
		default:
			break;
	}
}

static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (chunks == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* what the rolled-back subtransaction captured is gone */
		foreach(lc, chunks)
		{
			CaptureChunk *chunk = (CaptureChunk *) lfirst(lc);

			if (chunk->level >= level)
				chunks = foreach_delete_current(chunks, lc);
		}
	}
	else if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
	{
		/*
		 * Released: write its chunks now, inside it, rather than hand them
		 * to the parent; a loop of subtransactions then never piles up
		 * chunks in memory.
		 */
		foreach(lc, chunks)
		{
			CaptureChunk *chunk = (CaptureChunk *) lfirst(lc);

			if (chunk->level >= level)
			{
				flush_chunk(chunk);
				chunks = foreach_delete_current(chunks, lc);
			}
		}
	}
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
	RegisterResourceReleaseCallback(capture_release_callback, NULL);
	chunk_cxt = AllocSetContextCreate(TopMemoryContext, "pg_polyglot captured keys",
									  ALLOCSET_DEFAULT_SIZES);
	callbacks_registered = true;
}

/* Asks for the workers of this database to be woken when the transaction commits. */
void
polyglot_request_wake_at_commit(void)
{
	register_callbacks();
	wake_at_commit = ~UINT64CONST(0);
	wake_all_routes = true;
}


static int32
trigger_int_arg(Trigger *trigger, int i)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(trigger->tgargs[i], &end, 10);
	if (*trigger->tgargs[i] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" has malformed pg_polyglot arguments", trigger->tgname),
				 errhint("Capture triggers are created by polyglot.sync().")));
	return (int32) v;
}

/*
 * Parses the trigger arguments: route id, nlead - 1 more numbers (into
 * lead: a related table's relation number and kind), then key attribute
 * numbers.  Ereports on a malformed definition.
 */
static int32
parse_trigger_args(Trigger *trigger, TupleDesc tupdesc, int nlead, int32 *lead,
				   AttrNumber *attnums, int *nkeys)
{
	int			i;
	int32		route;

	if (trigger->tgnargs < nlead + 1 || trigger->tgnargs > INDEX_MAX_KEYS + nlead)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" has malformed pg_polyglot arguments", trigger->tgname),
				 errhint("Capture triggers are created by polyglot.sync().")));
	route = trigger_int_arg(trigger, 0);
	for (i = 1; i < nlead; i++)
		lead[i - 1] = trigger_int_arg(trigger, i);
	for (i = nlead; i < trigger->tgnargs; i++)
	{
		int32		attnum = trigger_int_arg(trigger, i);

		if (attnum < 1 || attnum > tupdesc->natts ||
			TupleDescAttr(tupdesc, attnum - 1)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("trigger \"%s\" names a key column that does not exist", trigger->tgname)));
		attnums[i - nlead] = (AttrNumber) attnum;
	}
	*nkeys = trigger->tgnargs - nlead;
	return route;
}

/*
 * What a capture trigger needs for every row, worked out on its first row
 * of a statement and kept in fn_extra: route, key columns, their output
 * functions.
 */
typedef struct CaptureCache
{
	Oid			tgoid;
	int32		route;
	int32		relation;		/* a related table's: its relation in the document */
	bool		direct;			/* ... whose columns hold the route's key */
	int			nkeys;
	AttrNumber	attnums[INDEX_MAX_KEYS];
	Oid			typids[INDEX_MAX_KEYS];
	FmgrInfo	outfuncs[INDEX_MAX_KEYS];
} CaptureCache;

static CaptureCache *
capture_cache(FunctionCallInfo fcinfo, TriggerData *trigdata, bool related)
{
	int32		lead[2] = {0, 0};
	CaptureCache *cache = (CaptureCache *) fcinfo->flinfo->fn_extra;
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			i;

	if (cache && cache->tgoid == trigdata->tg_trigger->tgoid)
		return cache;
	cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CaptureCache));
	cache->tgoid = trigdata->tg_trigger->tgoid;
	cache->route = parse_trigger_args(trigdata->tg_trigger, tupdesc, related ? 3 : 1, lead,
									  cache->attnums, &cache->nkeys);
	cache->relation = lead[0];
	cache->direct = lead[1] == 0;
	if (related && (cache->relation < 1 || cache->relation > POLYGLOT_MAX_RELATIONS))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" has malformed pg_polyglot arguments",
						trigdata->tg_trigger->tgname)));
	for (i = 0; i < cache->nkeys; i++)
		polyglot_key_output_setup(TupleDescAttr(tupdesc, cache->attnums[i] - 1)->atttypid,
						  &cache->typids[i], &cache->outfuncs[i], fcinfo->flinfo->fn_mcxt);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * The key of a row as text values in elems (allocated in the current
 * context); ereports on a NULL key column.
 */
static bool
row_key(HeapTuple tuple, TupleDesc tupdesc, CaptureCache *cache, Relation rel,
		Datum *elems, bool null_is_none)
{
	int			i;

	for (i = 0; i < cache->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, cache->attnums[i] - 1);
		bool		isnull;
		Datum		value = heap_getattr(tuple, cache->attnums[i], tupdesc, &isnull);

		if (isnull && null_is_none)
			return false;
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key column \"%s\" of \"%s\" is null",
							NameStr(att->attname), RelationGetRelationName(rel)),
					 errdetail("pg_polyglot identifies rows by their key, which must not be null.")));
		elems[i] = CStringGetTextDatum(polyglot_key_output(&cache->outfuncs[i], cache->typids[i], value));
	}
	return true;
}

/* Two keys from row_key() are equal when every text value is. */
static bool
keys_equal(Datum *a, Datum *b, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!datumIsEqual(a[i], b[i], false, -1))
			return false;
	return true;
}

/*
 * Adds a key to the chunk being filled for a route at this subtransaction
 * level, starting a chunk when needed and writing a full one.
 */
static void
capture_key_in(int32 route, int slot, char op, Datum *key, int ncols)
{
	int			level = GetCurrentTransactionNestLevel();
	CaptureChunk *chunk = NULL;
	MemoryContext old;
	ListCell   *lc;
	int			i;

	/*
	 * Full chunks are written at once, so the list holds at most one chunk
	 * per route, worker slot and level: a transaction that alternates
	 * between tables still fills its chunks.
	 */
	foreach(lc, chunks)
	{
		CaptureChunk *c = (CaptureChunk *) lfirst(lc);

		if (c->route == route && c->slot == slot && c->level == level && c->ncols == ncols)
		{
			chunk = c;
			break;
		}
	}
	if (chunk == NULL)
	{
		old = MemoryContextSwitchTo(chunk_cxt);
		chunk = palloc(sizeof(CaptureChunk));
		/* most transactions change a row or two: start small */
		chunk->capacity = 4;
		chunk->elems = palloc(sizeof(Datum) * chunk->capacity * ncols);
		chunk->route = route;
		chunk->slot = slot;
		chunk->level = level;
		chunk->op = op;
		chunk->ncols = ncols;
		chunk->nkeys = 0;
		chunks = lappend(chunks, chunk);
		MemoryContextSwitchTo(old);
	}
	if (chunk->op != op)
		chunk->op = 'M';
	if (chunk->nkeys == chunk->capacity)
	{
		chunk->capacity = Min(chunk->capacity * 4, POLYGLOT_OUTBOX_CHUNK_KEYS);
		chunk->elems = repalloc(chunk->elems, sizeof(Datum) * chunk->capacity * ncols);
	}
	old = MemoryContextSwitchTo(chunk_cxt);
	for (i = 0; i < ncols; i++)
		chunk->elems[chunk->nkeys * ncols + i] = PointerGetDatum(PG_DETOAST_DATUM_COPY(key[i]));
	MemoryContextSwitchTo(old);
	chunk->nkeys++;
	/* fan-out rows (negative slots) are worker 0's */
	hint_wake(chunk->route, Max(slot, 0));

	if (chunk->nkeys >= POLYGLOT_OUTBOX_CHUNK_KEYS)
	{
		flush_chunk(chunk);
		chunks = list_delete_ptr(chunks, chunk);
		pfree(chunk->elems);
		pfree(chunk);
	}
}

/* Adds a key to the chunk of its worker slot */
static void
capture_key(int32 route, char op, Datum *key, int ncols)
{
	capture_key_in(route, polyglot_key_slot(key, ncols), op, key, ncols);
}

/* Writes one chunk as an outbox row. */
static void
flush_chunk(CaptureChunk *chunk)
{
	if (chunk->nkeys == 0)
		return;
	polyglot_outbox_append(chunk->route, chunk->slot, chunk->op, chunk->elems, chunk->nkeys,
						   chunk->ncols);
}

static void
flush_all_chunks(void)
{
	ListCell   *lc;

	foreach(lc, chunks)
		flush_chunk((CaptureChunk *) lfirst(lc));
	reset_chunks();
}

static void
check_trigger_call(FunctionCallInfo fcinfo, const char *fname)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be called as a trigger", fname),
				 errhint("polyglot.sync() installs it on the tables it syncs.")));
}

/*
 * polyglot._capture(): AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW.
 * An UPDATE that changes the key records a delete of the old key and an
 * insert of the new one.
 */
Datum
polyglot_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	CaptureCache *cache;
	Datum		oldkey[INDEX_MAX_KEYS];
	Datum		newkey[INDEX_MAX_KEYS];

	check_trigger_call(fcinfo, "polyglot._capture()");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("polyglot._capture() must be an AFTER INSERT, UPDATE or DELETE trigger FOR EACH ROW")));

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	cache = capture_cache(fcinfo, trigdata, false);
	register_callbacks();
	polyglot_outbox_load();

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		row_key(trigdata->tg_trigtuple, tupdesc, cache, trigdata->tg_relation, newkey, false);
		capture_key(cache->route, 'I', newkey, cache->nkeys);
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		row_key(trigdata->tg_trigtuple, tupdesc, cache, trigdata->tg_relation, oldkey, false);
		capture_key(cache->route, 'D', oldkey, cache->nkeys);
	}
	else
	{
		row_key(trigdata->tg_trigtuple, tupdesc, cache, trigdata->tg_relation, oldkey, false);
		row_key(trigdata->tg_newtuple, tupdesc, cache, trigdata->tg_relation, newkey, false);
		if (keys_equal(oldkey, newkey, cache->nkeys))
			capture_key(cache->route, 'U', newkey, cache->nkeys);
		else
		{
			capture_key(cache->route, 'D', oldkey, cache->nkeys);
			capture_key(cache->route, 'I', newkey, cache->nkeys);
		}
	}

	return PointerGetDatum(NULL);
}

/* Records what a related row's link values say: see polyglot_capture_related() */
static void
capture_link(CaptureCache *cache, Datum *values)
{
	if (cache->direct)
		capture_key(cache->route, 'U', values, cache->nkeys);
	else
		capture_key_in(cache->route, -cache->relation, 'F', values, cache->nkeys);
}

/*
 * polyglot._capture_related(route, relation, kind, attnums...): the capture
 * trigger of a table whose rows are in a route's documents ("include",
 * "embed"), AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW and AFTER
 * TRUNCATE.  The attnums are the row's link columns: those that name the
 * row of the table above it in the document (an embed's foreign key, or the
 * key an include's foreign key points to).  A changed row records its link
 * values, old and new (none when one is NULL); nothing is read at write time.
 *
 * kind 0 ("direct"): the link columns are the route's key (an embed of the
 * route's table by its key, of a type whose equal values print alike): the
 * values are the documents' keys, recorded as 'U' events that the worker
 * delivers as any other.  kind 1: the values
 * are recorded as a fan-out row ('F', in the route's negative slot
 * -relation), which the first worker expands into the keys of the documents
 * that contain those rows, a chunk at a time (polyglot._fanout_step()).
 * A TRUNCATE records an 'A' fan-out row: every document of the route.
 */
Datum
polyglot_capture_related(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	CaptureCache *cache;
	Datum		oldkey[INDEX_MAX_KEYS];
	Datum		newkey[INDEX_MAX_KEYS];
	bool		has_old,
				has_new;

	check_trigger_call(fcinfo, "polyglot._capture_related()");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("polyglot._capture_related() must be an AFTER trigger")));
	tupdesc = RelationGetDescr(trigdata->tg_relation);
	cache = capture_cache(fcinfo, trigdata, true);
	register_callbacks();
	polyglot_outbox_load();

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		Datum		all = CStringGetTextDatum("*");

		/* one row, written at once (the TRUNCATE's rollback takes it back) */
		polyglot_outbox_append(cache->route, -cache->relation, 'A', &all, 1, 1);
		polyglot_request_wake_at_commit();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("polyglot._capture_related() must be a row trigger, or a TRUNCATE trigger")));

	has_old = !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
		row_key(trigdata->tg_trigtuple, tupdesc, cache, trigdata->tg_relation, oldkey, true);
	has_new = !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) &&
		row_key(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple :
				trigdata->tg_trigtuple, tupdesc, cache, trigdata->tg_relation, newkey, true);
	/* a row moved from one parent to another changes both documents */
	if (has_old)
		capture_link(cache, oldkey);
	if (has_new && !(has_old && keys_equal(oldkey, newkey, cache->nkeys)))
		capture_link(cache, newkey);

	return PointerGetDatum(NULL);
}

/*
 * polyglot._capture_truncate(): BEFORE TRUNCATE FOR EACH STATEMENT.  Records
 * every key of the table (of the rows the route's filter takes) as deleted
 * ('T'), read through a cursor and captured as the row trigger captures keys.
 */
Datum
polyglot_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	trel;
	TupleDesc	tupdesc;
	AttrNumber	attnums[INDEX_MAX_KEYS];
	Oid			typids[INDEX_MAX_KEYS];
	FmgrInfo	outfuncs[INDEX_MAX_KEYS];
	Datum		elems[INDEX_MAX_KEYS];
	int			nkeys;
	int32		route;
	StringInfoData sql;
	int			i;
	Oid			save_userid;
	int			save_sec_context;
	Portal		portal;
	MemoryContext row_cxt;
	Trigger		tg;
	const char *filter = NULL;
	int			guc_level;

	check_trigger_call(fcinfo, "polyglot._capture_truncate()");
	if (!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("polyglot._capture_truncate() must be a BEFORE TRUNCATE trigger")));

	trel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(trel);
	/*
	 * The filter is parsed and run as the worker does, under fixed
	 * settings: not with this session's search_path, whose schemas (its
	 * temporary one first for types) could put the session's own functions,
	 * operators or types in place of the filter's, run as the table's owner
	 */
	guc_level = polyglot_fix_settings(false);
	/* a route with a filter adds it as its last argument, "where:<filter>" */
	tg = *trigdata->tg_trigger;
	if (tg.tgnargs > 2 && strncmp(tg.tgargs[tg.tgnargs - 1], "where:", 6) == 0)
		filter = tg.tgargs[--tg.tgnargs] + 6;
	route = parse_trigger_args(&tg, tupdesc, 1, NULL, attnums, &nkeys);
	register_callbacks();
	polyglot_outbox_load();

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnums[i] - 1);

		appendStringInfo(&sql, "%st.%s", i ? ", " : "", quote_identifier(NameStr(att->attname)));
		polyglot_key_output_setup(att->atttypid, &typids[i], &outfuncs[i], CurrentMemoryContext);
	}
	appendStringInfo(&sql, " FROM ONLY %s.%s t",
					 quote_identifier(get_namespace_name(RelationGetNamespace(trel))),
					 quote_identifier(RelationGetRelationName(trel)));
	/* only the rows that the route's store has */
	if (filter)
		appendStringInfo(&sql, " WHERE (%s)",
						 polyglot_where_text(RelationGetRelid(trel), filter, "t", false));

	/*
	 * The keys are read as the table's owner in a security-restricted
	 * operation (whoever truncates may lack SELECT), rendered as the row
	 * trigger renders them, and captured like any other change: chunks of
	 * a thousand keys of one worker slot, written directly to the outbox.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(trel->rd_rel->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot truncate key",
									ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		uint64		r;

		SPI_cursor_fetch(portal, true, POLYGLOT_OUTBOX_CHUNK_KEYS);
		if (SPI_processed == 0)
			break;
		for (r = 0; r < SPI_processed; r++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);

			polyglot_spi_key_texts(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, nkeys, typids, outfuncs,
						  elems);
			capture_key(route, 'T', elems, nkeys);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(true, guc_level);

	polyglot_request_wake_at_commit();
	return PointerGetDatum(NULL);
}

/*
 * Drops the keys this backend has captured for a route and not yet
 * written.  Removing a route (polyglot._outbox_drop()) calls it, so that a
 * route removed in the transaction that wrote to its table leaves no
 * outbox rows behind.  Other sessions cannot hold unwritten keys of the
 * route at that point: dropping the triggers waits for their
 * transactions, which write their keys when they commit.
 */
void
polyglot_capture_forget(int32 route)
{
	ListCell   *lc;

	foreach(lc, chunks)
	{
		CaptureChunk *chunk = (CaptureChunk *) lfirst(lc);

		if (chunk->route == route)
			chunks = foreach_delete_current(chunks, lc);
	}
}
