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

#include "common/hashfn.h"
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
#include "utils/hsearch.h"
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

/* The inner rows of one key of a batch */
typedef struct RedisJoinKey
{
	char	   *key;
	bool		asked;			/* in the batch's lookup */
	List	   *rows;			/* of MinimalTuple */
} RedisJoinKey;

/* An entry of a batch's keys: a 64-bit hash and the keys with it */
typedef struct RedisJoinEntry
{
	uint64		hash;
	List	   *keys;			/* of RedisJoinKey */
} RedisJoinEntry;

typedef struct RedisJoinState
{
	CustomScanState css;
	JoinType	jointype;
	int			nouter;			/* columns of the outer half of the scan tuple */
	int			batch_size;
	PlanState  *outer;
	ForeignScanState *inner;
	ExprState  *key_state;
	ExprState  *join_qual;
	TupleTableSlot *outer_slot;
	TupleTableSlot *inner_slot;
	MemoryContext batch_cxt;
	/* the current batch */
	bool		outer_done;
	int			nbatch;
	MinimalTuple *outer_rows;
	RedisJoinKey **matches;		/* by outer row: its key's rows, or NULL */
	HTAB	   *keys;
	int			pos;			/* the outer row being joined */
	ListCell   *next_match;
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

	js->jointype = intVal(linitial(cs->custom_private));
	js->nouter = intVal(lsecond(cs->custom_private));
	js->outer = ExecInitNode(linitial(cs->custom_plans), estate, eflags);
	js->inner = (ForeignScanState *) ExecInitNode(lsecond(cs->custom_plans), estate, eflags);
	if (!IsA(js->inner, ForeignScanState) ||
		!polyglot_redis_is_fdw(((ForeignScanState *) js->inner)->fdwroutine))
		elog(ERROR, "pg_polyglot: the inner plan of a Redis key join is not a Redis scan");
	node->custom_ps = list_make2(js->outer, js->inner);
	js->key_state = ExecInitExpr(list_nth(cs->custom_exprs, RJ_EXPR_VALUE), &node->ss.ps);
	js->join_qual = ExecInitQual(list_nth(cs->custom_exprs, RJ_EXPR_JOINQUAL), &node->ss.ps);
	js->outer_slot = MakeSingleTupleTableSlot(ExecGetResultType(js->outer), &TTSOpsMinimalTuple);
	js->inner_slot = MakeSingleTupleTableSlot(ExecGetResultType(&js->inner->ss.ps),
											  &TTSOpsMinimalTuple);
	js->batch_size = ((RedisScanState *) js->inner->fdw_state)->table->batch_size;
	js->batch_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis key join",
										  ALLOCSET_DEFAULT_SIZES);
}

/* The rows of key in the batch, entered when enter is set (else NULL if absent) */
static RedisJoinKey *
join_key(RedisJoinState *js, const char *key, bool enter)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
	bool		found;
	RedisJoinEntry *e = (RedisJoinEntry *) hash_search(js->keys, &h,
													   enter ? HASH_ENTER : HASH_FIND, &found);
	RedisJoinKey *k;
	ListCell   *lc;

	if (e == NULL)
		return NULL;
	if (!found)
		e->keys = NIL;
	foreach(lc, e->keys)
	{
		k = (RedisJoinKey *) lfirst(lc);
		if (strcmp(k->key, key) == 0)
			return k;
	}
	if (!enter)
		return NULL;
	k = palloc0(sizeof(RedisJoinKey));
	k->key = pstrdup(key);
	e->keys = lappend(e->keys, k);
	return k;
}

/*
 * The scan tuple of outer row pos joined to the inner row (NULLs when
 * inner is NULL).
 */
static TupleTableSlot *
join_tuple(RedisJoinState *js, MinimalTuple outer, MinimalTuple inner)
{
	TupleTableSlot *scan = js->css.ss.ss_ScanTupleSlot;
	int			natts = scan->tts_tupleDescriptor->natts;

	ExecClearTuple(scan);
	ExecStoreMinimalTuple(outer, js->outer_slot, false);
	slot_getallattrs(js->outer_slot);
	memcpy(scan->tts_values, js->outer_slot->tts_values, sizeof(Datum) * js->nouter);
	memcpy(scan->tts_isnull, js->outer_slot->tts_isnull, sizeof(bool) * js->nouter);
	if (inner)
	{
		ExecStoreMinimalTuple(inner, js->inner_slot, false);
		slot_getallattrs(js->inner_slot);
		memcpy(scan->tts_values + js->nouter, js->inner_slot->tts_values,
			   sizeof(Datum) * (natts - js->nouter));
		memcpy(scan->tts_isnull + js->nouter, js->inner_slot->tts_isnull,
			   sizeof(bool) * (natts - js->nouter));
	}
	else
	{
		memset(scan->tts_values + js->nouter, 0, sizeof(Datum) * (natts - js->nouter));
		memset(scan->tts_isnull + js->nouter, true, sizeof(bool) * (natts - js->nouter));
	}
	return ExecStoreVirtualTuple(scan);
}

/* Starts joining outer row pos of the batch */
static void
start_outer_row(RedisJoinState *js, int pos)
{
	js->pos = pos;
	js->matched = false;
	js->next_match = pos < js->nbatch && js->matches[pos] ?
		list_head(js->matches[pos]->rows) : NULL;
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
	List	   *keys = NIL;
	HASHCTL		ctl;
	MemoryContext old;

	MemoryContextReset(js->batch_cxt);
	js->nbatch = 0;
	js->keys = NULL;
	if (js->outer_done)
		return false;

	old = MemoryContextSwitchTo(js->batch_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(RedisJoinEntry);
	ctl.hcxt = js->batch_cxt;
	js->keys = hash_create("pg_polyglot redis key join", Min(js->batch_size, 1024), &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	js->outer_rows = palloc(sizeof(MinimalTuple) * js->batch_size);
	js->matches = palloc0(sizeof(RedisJoinKey *) * js->batch_size);
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
		js->outer_rows[js->nbatch] = ExecCopySlotMinimalTuple(slot);
		econtext->ecxt_scantuple = join_tuple(js, js->outer_rows[js->nbatch], NULL);
		value = ExecEvalExprSwitchContext(js->key_state, econtext, &isnull);
		if (!isnull)
		{
			char	   *key = TextDatumGetCString(value);
			RedisJoinKey *k = join_key(js, key, true);

			/* a new key: looked up once however many outer rows have it */
			if (!k->asked)
				keys = lappend(keys, makeString(k->key));
			k->asked = true;
			js->matches[js->nbatch] = k;
		}
		ResetExprContext(econtext);
		js->nbatch++;
	}
	MemoryContextSwitchTo(old);
	if (js->nbatch == 0)
		return false;
	js->batches++;

	/* the inner scan reads the batch's keys: one pipelined round trip */
	if (keys != NIL)
	{
		ExecReScan(&js->inner->ss.ps);
		old = MemoryContextSwitchTo(st->exec_cxt);
		polyglot_redis_start_scan(st, econtext);
		st->keys = list_copy_deep(keys);
		st->done = false;
		MemoryContextSwitchTo(old);
		for (;;)
		{
			TupleTableSlot *slot = ExecProcNode(&js->inner->ss.ps);
			RedisJoinKey *k;

			if (TupIsNull(slot))
				break;
			k = join_key(js, st->last_key, false);
			if (k == NULL)
				continue;		/* cannot happen: the keys asked for */
			old = MemoryContextSwitchTo(js->batch_cxt);
			k->rows = lappend(k->rows, ExecCopySlotMinimalTuple(slot));
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
		MinimalTuple outer;
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
			MinimalTuple inner = (MinimalTuple) lfirst(js->next_match);
			TupleTableSlot *slot;

			CHECK_FOR_INTERRUPTS();
			js->next_match = lnext(js->matches[js->pos]->rows, js->next_match);
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
	js->keys = NULL;
	js->nbatch = js->pos = 0;
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
	ExecDropSingleTupleTableSlot(js->outer_slot);
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
