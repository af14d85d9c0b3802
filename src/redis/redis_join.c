/*-------------------------------------------------------------------------
 *
 * redis_join.c
 *		Redis key joins: a join to a Redis table on key = <expression of the
 *		outer relation>, offered as a CustomScan that looks the keys of
 *		batch_size outer rows up in one pipelined round trip instead of one
 *		round trip per outer row.
 *
 * It plans and runs the join; the inner Redis scan (redis_fdw.c, mode
 * SCAN_JOIN) reads the keys it is given.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

/*
 * A nested loop with a Redis table on its inner side looks up the key of
 * each outer row on its own: a round trip per row.  A Redis key join (a
 * CustomScan over the join) reads the outer rows batch_size at a time,
 * evaluates the key of each, looks the batch's distinct keys up in one
 * pipelined round trip through its inner foreign scan (mode SCAN_JOIN), and
 * pairs the rows in memory.  It serves inner, left, semi and anti joins on
 * inner.key = <expression of outer columns>, in the outer rows' order
 * (inner and semi joins only from PostgreSQL 16, whose outer joins mark
 * the nullable side's columns).
 *
 * Its scan tuple is the outer plan's output followed by the inner scan's
 * (custom_scan_tlist), so the join clauses, the filter and the target list
 * are evaluated over both halves; the key expression over the outer half.
 * The inner rows of a batch are kept as the inner slot's values, which
 * the inner scan makes in its batch's memory, kept until the join's next
 * batch (see RedisJoinRow).
 */

/* custom_private of the path: the key expression, the other join clauses, the join type */
#define RJ_PATH_VALUE		0
#define RJ_PATH_CLAUSES		1
#define RJ_PATH_JOINTYPE	2

/* custom_exprs of the plan: the key expression, the join clauses (implicit AND) */
#define RJ_EXPR_VALUE		0
#define RJ_EXPR_JOINQUAL	1

static set_join_pathlist_hook_type prev_join_pathlist_hook = NULL;

static Plan *redis_join_plan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
							 List *tlist, List *clauses, List *custom_plans);
static Node *redis_join_create_state(CustomScan *cscan);

static const CustomPathMethods redis_join_path_methods = {
	.CustomName = "Redis Key Join",
	.PlanCustomPath = redis_join_plan,
};

static const CustomScanMethods redis_join_scan_methods = {
	.CustomName = "Redis Key Join",
	.CreateCustomScanState = redis_join_create_state,
};

/* Is rel a plain Redis foreign table of this query? */
static bool
is_redis_rel(PlannerInfo *root, RelOptInfo *rel)
{
	return rel->reloptkind == RELOPT_BASEREL && rel->rtekind == RTE_RELATION &&
		rel->fdwroutine != NULL && polyglot_redis_is_fdw(rel->fdwroutine) &&
		rel->fdw_private != NULL;
}

/*
 * set_join_pathlist_hook: offers a Redis key join when the inner relation
 * is a Redis table joined on its key to an expression of the outer one.
 */
static void
redis_join_paths(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel,
				 RelOptInfo *innerrel, JoinType jointype, JoinPathExtraData *extra)
{
	RedisRelInfo *info;
	Path	   *outer;
	ForeignPath *inner;
	CustomPath *cp;
	Expr	   *value = NULL;
	List	   *clauses = NIL;
	ListCell   *lc;
	QualCost	qual_cost;
	double		outer_rows,
				per_key,
				batches;

	if (prev_join_pathlist_hook)
		prev_join_pathlist_hook(root, joinrel, outerrel, innerrel, jointype, extra);

	if (!polyglot_redis_pushdown || !is_redis_rel(root, innerrel) ||
		!bms_is_empty(innerrel->lateral_relids))
		return;
#if PG_VERSION_NUM >= 160000

	/*
	 * From PostgreSQL 16 the columns of an outer join's nullable side carry
	 * the join's relid above it; the scan tuple does not mark them, so
	 * only joins whose inner columns are never seen nulled are offered.
	 */
	if (jointype != JOIN_INNER && jointype != JOIN_SEMI)
		return;
#else
	if (jointype != JOIN_INNER && jointype != JOIN_LEFT &&
		jointype != JOIN_SEMI && jointype != JOIN_ANTI)
		return;
#endif

	/*
	 * Not under UPDATE, DELETE or row locks: an EvalPlanQual recheck would
	 * need the joined rows rebuilt from the locked ones.
	 */
	if (root->parse->commandType != CMD_SELECT && root->parse->commandType != CMD_INSERT)
		return;
	if (root->parse->rowMarks != NIL || root->rowMarks != NIL)
		return;
	outer = outerrel->cheapest_total_path;
	if (outer == NULL || outer->param_info != NULL)
		return;
	info = (RedisRelInfo *) innerrel->fdw_private;

	/*
	 * A condition of no column on the Redis table (now() > x in a subquery,
	 * a view's current_user test) makes the planner gate its scan with a
	 * Result node: the inner plan would not be the foreign scan.
	 */
	foreach(lc, innerrel->baserestrictinfo)
		if (lfirst_node(RestrictInfo, lc)->pseudoconstant)
			return;

	/* the key clause; the others are evaluated over the joined rows */
	foreach(lc, extra->restrictlist)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Expr	   *v = NULL;
		char	   *m = NULL;

		/* a gating qual would be lost: the planner gates only real joins */
		if (ri->pseudoconstant)
			return;
		if (value == NULL &&
			(!IS_OUTER_JOIN(jointype) || !RINFO_IS_PUSHED_DOWN(ri, joinrel->relids)) &&
			polyglot_redis_key_lookup(ri->clause, innerrel, info->table, &v, &m) == SCAN_KEYS &&
			bms_is_subset(bms_difference(ri->clause_relids, innerrel->relids), outerrel->relids))
		{
			/* text = text in a deterministic collation: exactly Redis's key match */
			value = v;
			continue;
		}
		clauses = lappend(clauses, ri);
	}
	if (value == NULL)
		return;

	/* the inner scan, reading the keys each batch of outer rows gives it */
	per_key = polyglot_redis_rows_per_key(info->table);
	inner = polyglot_foreignscan_path(root, innerrel, per_key, 0,
									  REDIS_KEY_COST + per_key * REDIS_ROW_COST, NIL, NULL,
									  list_make1(makeInteger(SCAN_JOIN)));

	/*
	 * A round trip per batch of outer rows, instead of one per row.  At
	 * most per_key rows per outer row are produced (a key's rows), as a
	 * nested loop over the parameterized path would cost them, whatever
	 * the join's default selectivity estimates.
	 */
	outer_rows = Max(outer->rows, 1);
	batches = ceil(outer_rows / info->table->batch_size);
	cost_qual_eval(&qual_cost, clauses, root);
	cp = makeNode(CustomPath);
	cp->path.pathtype = T_CustomScan;
	cp->path.parent = joinrel;
	cp->path.pathtarget = joinrel->reltarget;
	cp->path.param_info = NULL;
	cp->path.parallel_aware = false;
	cp->path.parallel_safe = false;
	cp->path.parallel_workers = 0;
	cp->path.rows = joinrel->rows;
	/* the first row waits for the first batch */
	cp->path.startup_cost = outer->startup_cost +
		(outer->total_cost - outer->startup_cost) * Min(1.0, info->table->batch_size / outer_rows) +
		REDIS_STARTUP_COST / 10 + Min(outer_rows, info->table->batch_size) * REDIS_KEY_COST;
	cp->path.total_cost = outer->total_cost + batches * REDIS_STARTUP_COST / 10 +
		outer_rows * (REDIS_KEY_COST + per_key * (REDIS_ROW_COST + qual_cost.per_tuple)) +
		Min(joinrel->rows, outer_rows * per_key) * cpu_tuple_cost;
	cp->path.pathkeys = build_join_pathkeys(root, joinrel, jointype, outer->pathkeys);
#if PG_VERSION_NUM >= 150000
	/* it evaluates any target list over its scan tuple */
	cp->flags = CUSTOMPATH_SUPPORT_PROJECTION;
#else
	cp->flags = 0;
#endif
	cp->custom_paths = list_make2(outer, inner);
	cp->custom_private = list_make3(value, clauses, makeInteger(jointype));
	cp->methods = &redis_join_path_methods;
	add_path(joinrel, (Path *) cp);
}

static Plan *
redis_join_plan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
				List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cs = makeNode(CustomScan);
	Plan	   *outer = linitial(custom_plans);
	Plan	   *inner = lsecond(custom_plans);
	List	   *rinfos = list_nth(best_path->custom_private, RJ_PATH_CLAUSES);
	JoinType	jointype = intVal(list_nth(best_path->custom_private, RJ_PATH_JOINTYPE));
	List	   *joinquals = NIL;
	List	   *otherquals = NIL;
	List	   *scan_tlist = NIL;
	ListCell   *lc;

	/* the scan tuple: the outer plan's columns, then the inner scan's */
	foreach(lc, outer->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		scan_tlist = lappend(scan_tlist, makeTargetEntry(copyObject(tle->expr),
														 list_length(scan_tlist) + 1,
														 NULL, false));
	}
	foreach(lc, inner->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		scan_tlist = lappend(scan_tlist, makeTargetEntry(copyObject(tle->expr),
														 list_length(scan_tlist) + 1,
														 NULL, false));
	}

	/*
	 * An inner join filters its joined rows; a semi join decides a match by
	 * all its clauses (as the executor's joins do); an outer or anti join
	 * decides a match by its join clauses, then filters by the rest.
	 */
	if (jointype == JOIN_INNER)
		otherquals = extract_actual_clauses(rinfos, false);
	else if (jointype == JOIN_SEMI)
		joinquals = extract_actual_clauses(rinfos, false);
	else
		extract_actual_join_clauses(rinfos, rel->relids, &joinquals, &otherquals);

	cs->scan.plan.targetlist = tlist;
	cs->scan.plan.qual = otherquals;
	cs->scan.scanrelid = 0;
	cs->flags = best_path->flags;
	cs->custom_plans = custom_plans;
	cs->custom_exprs = list_make2(list_nth(best_path->custom_private, RJ_PATH_VALUE), joinquals);
	cs->custom_private = list_make2(makeInteger(jointype),
									makeInteger(list_length(outer->targetlist)));
	cs->custom_scan_tlist = scan_tlist;
	cs->methods = &redis_join_scan_methods;
	return &cs->scan.plan;
}

/*
 * A row kept for the batch.  An outer row: its values, copied.  An inner
 * row: the values of the inner scan's slot, which point into the inner
 * scan's batch (kept until the join's next batch rescans it), or a copy of
 * the row when the inner plan computes values of its own.
 */
typedef struct RedisJoinRow
{
	struct RedisJoinRow *next;	/* the next inner row of the same key */
	Datum	   *values;
	bool	   *isnull;
	MinimalTuple tuple;			/* or NULL */
} RedisJoinRow;

/* The inner rows of one distinct key of a batch, in the order Redis gave them */
typedef struct RedisJoinKey
{
	RedisJoinRow *first;
	RedisJoinRow *last;
} RedisJoinKey;

typedef struct RedisJoinState
{
	CustomScanState css;
	JoinType	jointype;
	int			nouter;			/* columns of the outer half of the scan tuple */
	int			batch_size;
	PlanState  *outer;
	ForeignScanState *inner;
	bool		inner_values_kept;	/* the inner slot's values outlive the row */
	ExprState  *key_state;
	ExprState  *join_qual;
	bool	   *outer_byval;	/* by outer column: its type's */
	int16	   *outer_len;
	TupleTableSlot *inner_slot;
	MemoryContext batch_cxt;
	/* the current batch */
	bool		outer_done;
	int			nbatch;
	RedisJoinRow **outer_rows;
	RedisJoinKey **matches;		/* by outer row: its key's rows, or NULL */
	RedisKey   *keys;			/* the batch's distinct keys ... */
	RedisJoinKey *key_rows;		/* ... and their rows, by position */
	int			nkeys;
	int			pos;			/* the outer row being joined */
	RedisJoinRow *next_match;
	bool		matched;
	int64		batches;		/* for EXPLAIN ANALYZE */
} RedisJoinState;

static void redis_join_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *redis_join_exec(CustomScanState *node);
static void redis_join_end(CustomScanState *node);
static void redis_join_rescan(CustomScanState *node);
static void redis_join_explain(CustomScanState *node, List *ancestors, ExplainState *es);

static const CustomExecMethods redis_join_exec_methods = {
	.CustomName = "Redis Key Join",
	.BeginCustomScan = redis_join_begin,
	.ExecCustomScan = redis_join_exec,
	.EndCustomScan = redis_join_end,
	.ReScanCustomScan = redis_join_rescan,
	.ExplainCustomScan = redis_join_explain,
};

static Node *
redis_join_create_state(CustomScan *cscan)
{
	RedisJoinState *js = (RedisJoinState *) newNode(sizeof(RedisJoinState), T_CustomScanState);

	js->css.methods = &redis_join_exec_methods;
	return (Node *) js;
}

static void
redis_join_begin(CustomScanState *node, EState *estate, int eflags)
{
	RedisJoinState *js = (RedisJoinState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	Plan	   *inner_plan = lsecond(cs->custom_plans);
	ListCell   *lc;

	js->jointype = intVal(linitial(cs->custom_private));
	js->nouter = intVal(lsecond(cs->custom_private));
	js->outer = ExecInitNode(linitial(cs->custom_plans), estate, eflags);
	js->inner = (ForeignScanState *) ExecInitNode(inner_plan, estate, eflags);
	if (!IsA(js->inner, ForeignScanState) ||
		!polyglot_redis_is_fdw(((ForeignScanState *) js->inner)->fdwroutine))
		elog(ERROR, "pg_polyglot: the inner plan of a Redis key join is not a Redis scan");
	node->custom_ps = list_make2(js->outer, js->inner);
	js->key_state = ExecInitExpr(list_nth(cs->custom_exprs, RJ_EXPR_VALUE), &node->ss.ps);
	js->join_qual = ExecInitQual(list_nth(cs->custom_exprs, RJ_EXPR_JOINQUAL), &node->ss.ps);
	{
		TupleDesc	desc = ExecGetResultType(js->outer);
		int			i;

		if (desc->natts != js->nouter)
			elog(ERROR, "pg_polyglot: the outer plan of a Redis key join has %d columns, not %d",
				 desc->natts, js->nouter);
		js->outer_byval = palloc(sizeof(bool) * Max(js->nouter, 1));
		js->outer_len = palloc(sizeof(int16) * Max(js->nouter, 1));
		for (i = 0; i < js->nouter; i++)
		{
			js->outer_byval[i] = TupleDescAttr(desc, i)->attbyval;
			js->outer_len[i] = TupleDescAttr(desc, i)->attlen;
		}
	}
	js->inner_slot = MakeSingleTupleTableSlot(ExecGetResultType(&js->inner->ss.ps),
											  &TTSOpsMinimalTuple);
	js->batch_size = ((RedisScanState *) js->inner->fdw_state)->table->batch_size;
	js->batch_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis key join",
										  ALLOCSET_DEFAULT_SIZES);

	/*
	 * The inner scan makes a batch's values in memory that stays until the
	 * join's next batch: when its output is its columns as they are (Vars
	 * of columns, projected or not), a row is kept as the slot's values; a
	 * value computed there (an expression, a whole-row Var) would live only
	 * until the next row.
	 */
	js->inner_values_kept = true;
	foreach(lc, inner_plan->targetlist)
	{
		Expr	   *expr = lfirst_node(TargetEntry, lc)->expr;

		if (!IsA(expr, Var) || ((Var *) expr)->varattno <= 0)
			js->inner_values_kept = false;
	}
}

/*
 * The scan tuple of an outer row joined to an inner row (NULLs when inner
 * is NULL).
 */
static TupleTableSlot *
join_tuple(RedisJoinState *js, RedisJoinRow *outer, RedisJoinRow *inner)
{
	TupleTableSlot *scan = js->css.ss.ss_ScanTupleSlot;
	int			natts = scan->tts_tupleDescriptor->natts;
	int			ninner = natts - js->nouter;

	ExecClearTuple(scan);
	memcpy(scan->tts_values, outer->values, sizeof(Datum) * js->nouter);
	memcpy(scan->tts_isnull, outer->isnull, sizeof(bool) * js->nouter);
	if (inner && inner->tuple)
	{
		ExecStoreMinimalTuple(inner->tuple, js->inner_slot, false);
		slot_getallattrs(js->inner_slot);
		memcpy(scan->tts_values + js->nouter, js->inner_slot->tts_values, sizeof(Datum) * ninner);
		memcpy(scan->tts_isnull + js->nouter, js->inner_slot->tts_isnull, sizeof(bool) * ninner);
	}
	else if (inner)
	{
		memcpy(scan->tts_values + js->nouter, inner->values, sizeof(Datum) * ninner);
		memcpy(scan->tts_isnull + js->nouter, inner->isnull, sizeof(bool) * ninner);
	}
	else
	{
		memset(scan->tts_values + js->nouter, 0, sizeof(Datum) * ninner);
		memset(scan->tts_isnull + js->nouter, true, sizeof(bool) * ninner);
	}
	return ExecStoreVirtualTuple(scan);
}

/* Starts joining outer row pos of the batch */
static void
start_outer_row(RedisJoinState *js, int pos)
{
	js->pos = pos;
	js->matched = false;
	js->next_match = pos < js->nbatch && js->matches[pos] ? js->matches[pos]->first : NULL;
}

/* A row and room for n values, in one chunk of the current memory context */
static RedisJoinRow *
new_join_row(int n)
{
	char	   *chunk = palloc(MAXALIGN(sizeof(RedisJoinRow)) + sizeof(Datum) * n + sizeof(bool) * n);
	RedisJoinRow *row = (RedisJoinRow *) chunk;

	row->next = NULL;
	row->tuple = NULL;
	row->values = (Datum *) (chunk + MAXALIGN(sizeof(RedisJoinRow)));
	row->isnull = (bool *) (row->values + n);
	return row;
}

/* Keeps an outer row (a copy of its values, in the current memory context) */
static RedisJoinRow *
keep_outer_row(RedisJoinState *js, TupleTableSlot *slot)
{
	RedisJoinRow *row = new_join_row(js->nouter);
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < js->nouter; i++)
	{
		row->isnull[i] = slot->tts_isnull[i];
		row->values[i] = row->isnull[i] || js->outer_byval[i] ? slot->tts_values[i] :
			datumCopy(slot->tts_values[i], false, js->outer_len[i]);
	}
	return row;
}

/* Keeps an inner row the inner scan returned, as the rows of its key (in batch_cxt) */
static void
keep_inner_row(RedisJoinState *js, RedisJoinKey *k, TupleTableSlot *slot)
{
	RedisJoinRow *row;

	if (js->inner_values_kept)
	{
		int			n = slot->tts_tupleDescriptor->natts;

		slot_getallattrs(slot);
		row = new_join_row(n);
		memcpy(row->values, slot->tts_values, sizeof(Datum) * n);
		memcpy(row->isnull, slot->tts_isnull, sizeof(bool) * n);
	}
	else
	{
		row = new_join_row(0);
		row->tuple = ExecCopySlotMinimalTuple(slot);
	}
	if (k->last)
		k->last->next = row;
	else
		k->first = row;
	k->last = row;
}

/*
 * Reads the next batch of outer rows and the rows of their keys (one
 * pipelined round trip); false when the outer side is done.
 */
static bool
next_join_batch(RedisJoinState *js)
{
	ExprContext *econtext = js->css.ss.ps.ps_ExprContext;
	RedisScanState *st = (RedisScanState *) js->inner->fdw_state;
	RedisKeySet *distinct;
	MemoryContext old;

	MemoryContextReset(js->batch_cxt);
	js->nbatch = js->nkeys = 0;
	if (js->outer_done)
		return false;

	/*
	 * The inner scan starts afresh, and the reads of the batch's keys go
	 * out as they are found: Redis works on them while the outer rows are
	 * read.
	 */
	ExecReScan(&js->inner->ss.ps);
	polyglot_redis_join_start(st, js->batch_size);
	old = MemoryContextSwitchTo(js->batch_cxt);
	distinct = polyglot_redis_keyset_create(js->batch_cxt, (uint32) js->batch_size);
	js->outer_rows = palloc(sizeof(RedisJoinRow *) * js->batch_size);
	js->matches = palloc0(sizeof(RedisJoinKey *) * js->batch_size);
	js->keys = palloc(sizeof(RedisKey) * js->batch_size);
	js->key_rows = palloc0(sizeof(RedisJoinKey) * js->batch_size);
	while (js->nbatch < js->batch_size)
	{
		TupleTableSlot *slot;
		Datum		value;
		bool		isnull;

		MemoryContextSwitchTo(old);
		CHECK_FOR_INTERRUPTS();
		slot = ExecProcNode(js->outer);
		MemoryContextSwitchTo(js->batch_cxt);
		if (TupIsNull(slot))
		{
			js->outer_done = true;
			break;
		}
		js->outer_rows[js->nbatch] = keep_outer_row(js, slot);
		econtext->ecxt_scantuple = join_tuple(js, js->outer_rows[js->nbatch], NULL);
		value = ExecEvalExprSwitchContext(js->key_state, econtext, &isnull);
		if (!isnull)
		{
			char	   *key = TextDatumGetCString(value);
			size_t		len = strlen(key);
			bool		found;
			int			n = polyglot_redis_keyset_enter(distinct, key, len, &found);

			/* a new key (numbered as the batch's keys): looked up once however many outer rows have it */
			if (!found)
			{
				Assert(n == js->nkeys);
				js->keys[n].str = key;
				js->keys[n].len = len;
				js->nkeys++;
				MemoryContextSwitchTo(old);
				polyglot_redis_join_add_key(st, js->keys[n]);
				MemoryContextSwitchTo(js->batch_cxt);
			}
			js->matches[js->nbatch] = &js->key_rows[n];
		}
		ResetExprContext(econtext);
		js->nbatch++;
	}
	MemoryContextSwitchTo(old);
	if (js->nbatch == 0)
		return false;
	js->batches++;

	/* the inner scan reads the batch's keys: one pipelined round trip */
	if (js->nkeys > 0)
	{
		polyglot_redis_join_keys(st, js->keys, js->nkeys);
		for (;;)
		{
			TupleTableSlot *slot = ExecProcNode(&js->inner->ss.ps);

			if (TupIsNull(slot))
				break;
			/* cannot be out of range: the keys asked for */
			if (st->last_key_index < 0 || st->last_key_index >= js->nkeys)
				continue;
			old = MemoryContextSwitchTo(js->batch_cxt);
			keep_inner_row(js, &js->key_rows[st->last_key_index], slot);
			MemoryContextSwitchTo(old);
		}
	}
	start_outer_row(js, 0);
	return true;
}

/* The next joined row, before the filter (ExecScan's access method) */
static TupleTableSlot *
redis_join_next(ScanState *ss)
{
	RedisJoinState *js = (RedisJoinState *) ss;
	ExprContext *econtext = ss->ps.ps_ExprContext;

	for (;;)
	{
		RedisJoinRow *outer;
		bool		unmatched;

		if (js->pos >= js->nbatch)
		{
			if (!next_join_batch(js))
				return ExecClearTuple(ss->ss_ScanTupleSlot);
			continue;
		}
		outer = js->outer_rows[js->pos];
		while (js->next_match)
		{
			RedisJoinRow *inner = js->next_match;
			TupleTableSlot *slot;

			CHECK_FOR_INTERRUPTS();
			js->next_match = inner->next;
			slot = join_tuple(js, outer, inner);
			econtext->ecxt_scantuple = slot;
			if (js->join_qual && !ExecQual(js->join_qual, econtext))
			{
				ResetExprContext(econtext);
				continue;
			}
			js->matched = true;
			if (js->jointype == JOIN_ANTI)
				break;
			if (js->jointype == JOIN_SEMI)
				js->next_match = NULL;
			return slot;
		}
		unmatched = !js->matched;
		start_outer_row(js, js->pos + 1);
		if (unmatched && (js->jointype == JOIN_LEFT || js->jointype == JOIN_ANTI))
			return join_tuple(js, outer, NULL);
	}
}

/*
 * An EvalPlanQual recheck of a join (scanrelid 0) reruns it: older minor
 * releases call this instead of the access method in a recheck (the key
 * join is not planned under row locks, but may sit in a subplan there).
 */
static bool
redis_join_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return !TupIsNull(redis_join_next(ss));
}

static TupleTableSlot *
redis_join_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, redis_join_next, redis_join_recheck);
}

static void
redis_join_rescan(CustomScanState *node)
{
	RedisJoinState *js = (RedisJoinState *) node;

	MemoryContextReset(js->batch_cxt);
	js->nbatch = js->nkeys = js->pos = 0;
	js->next_match = NULL;
	js->outer_done = false;
	if (node->ss.ps.chgParam != NULL)
	{
		UpdateChangedParamSet(js->outer, node->ss.ps.chgParam);
		UpdateChangedParamSet(&js->inner->ss.ps, node->ss.ps.chgParam);
	}
	if (js->outer->chgParam == NULL)
		ExecReScan(js->outer);
}

static void
redis_join_end(CustomScanState *node)
{
	RedisJoinState *js = (RedisJoinState *) node;

	ExecEndNode(js->outer);
	ExecEndNode(&js->inner->ss.ps);
	ExecDropSingleTupleTableSlot(js->inner_slot);
}

/* EXPLAIN: the join type and key; VERBOSE the join clauses; ANALYZE the batches */
static void
redis_join_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	RedisJoinState *js = (RedisJoinState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	List	   *context = set_deparse_context_plan(es->deparse_cxt, &cs->scan.plan, ancestors);
	List	   *joinqual = list_nth(cs->custom_exprs, RJ_EXPR_JOINQUAL);
	const char *type = js->jointype == JOIN_LEFT ? "Left" : js->jointype == JOIN_SEMI ? "Semi" :
		js->jointype == JOIN_ANTI ? "Anti" : "Inner";

	ExplainPropertyText("Join Type", type, es);
	ExplainPropertyText("Lookup Key",
						deparse_expression(list_nth(cs->custom_exprs, RJ_EXPR_VALUE), context,
										   true, false), es);
	if (joinqual != NIL)
		ExplainPropertyText("Join Filter",
							deparse_expression((Node *) make_ands_explicit(joinqual), context,
											   true, false), es);
	ExplainPropertyInteger("Outer Rows per Batch", NULL, js->batch_size, es);
	if (es->analyze)
		ExplainPropertyInteger("Batches", NULL, js->batches, es);
}

/* Installs the planner hook of Redis key joins */
void
polyglot_redis_join_init(void)
{
	prev_join_pathlist_hook = set_join_pathlist_hook;
	set_join_pathlist_hook = redis_join_paths;
	RegisterCustomScanMethods(&redis_join_scan_methods);
}
