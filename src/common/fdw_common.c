/*-------------------------------------------------------------------------
 *
 * fdw_common.c
 *		Planner and executor helpers that the Redis, MongoDB and
 *		Elasticsearch foreign-data wrappers share: option lookup across
 *		table and server, when a LIMIT may go to the store, and whose user
 *		mapping a scan uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>


#include "access/sysattr.h"
#include "executor/executor.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "nodes/pathnodes.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "common/datum.h"
#include "pg_polyglot.h"

/* A foreign table's option, else its server's, else NULL */
DefElem *
polyglot_table_option(ForeignTable *table, ForeignServer *server, const char *name)
{
	DefElem    *def = polyglot_option_find(table->options, name);

	return def ? def : polyglot_option_find(server->options, name);
}

/*
 * The pushdown and use_remote_estimate options of a foreign table: pushdown
 * needs the wrapper's setting and neither the table's nor the server's
 * option saying off; use_remote_estimate is the table's, else the
 * server's, else on.
 */
void
polyglot_load_planner_options(ForeignTable *table, ForeignServer *server, bool setting,
							  bool *pushdown, bool *use_remote_estimate)
{
	DefElem    *def;

	*pushdown = setting;
	if ((def = polyglot_option_find(table->options, "pushdown")) != NULL)
		*pushdown = *pushdown && polyglot_option_bool(def);
	if ((def = polyglot_option_find(server->options, "pushdown")) != NULL)
		*pushdown = *pushdown && polyglot_option_bool(def);
	def = polyglot_table_option(table, server, "use_remote_estimate");
	*use_remote_estimate = def ? polyglot_option_bool(def) : true;
}

/*
 * A scanned relation's size: tuples, the store's count (negative when it
 * has none), else what ANALYZE left in pg_class, else fallback; its rows
 * that count times the selectivity of its conditions (PostgreSQL's
 * defaults, as there are no column statistics), or 1 when a condition
 * finds one document at most (unique).
 */
void
polyglot_set_rel_rows(PlannerInfo *root, RelOptInfo *baserel, double tuples, double fallback,
					  bool unique)
{
	if (tuples < 0)
		tuples = baserel->tuples > 0 ? baserel->tuples : fallback;
	baserel->tuples = tuples;
	baserel->rows = clamp_row_est(tuples * clauselist_selectivity(root, baserel->baserestrictinfo,
																   0, JOIN_INNER, NULL));
	if (unique)
		baserel->rows = 1;
}

/*
 * The equalities between column attnum and other relations' expressions,
 * from the equivalence classes (inner joins), as join clauses.
 */
List *
polyglot_column_join_clauses(PlannerInfo *root, RelOptInfo *baserel, int attnum)
{
	return generate_implied_equalities_for_column(root, baserel, polyglot_ec_member_is_column,
												  (void *) &attnum,
												  baserel->lateral_referencers);
}

/*
 * The parameterization of a join clause that can be evaluated at the scan
 * of baserel: the other relations it needs (with the lateral ones), or
 * NULL when it cannot move there or needs no other relation.
 */
ParamPathInfo *
polyglot_join_clause_param(PlannerInfo *root, RelOptInfo *baserel, RestrictInfo *ri)
{
	Relids		required;

	if (!join_clause_is_movable_to(ri, baserel))
		return NULL;
	required = bms_difference(bms_union(ri->clause_relids, baserel->lateral_relids),
							  baserel->relids);
	if (bms_is_empty(required))
		return NULL;
	return get_baserel_parampathinfo(root, baserel, required);
}

/*
 * The inner side of a nested loop: a path parameterized by the other
 * relations of each candidate join clause that can be evaluated at the
 * scan and that the store can use (usable), so that each outer row asks
 * the store for its matching documents only.
 */
void
polyglot_add_parameterized_paths(PlannerInfo *root, RelOptInfo *baserel, List *candidates,
								 PolyglotJoinClauseUsable usable, void *arg,
								 double startup, double row_cost)
{
	ListCell   *lc;

	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		ParamPathInfo *ppi;

		if (!join_clause_is_movable_to(ri, baserel) || !usable(ri, baserel, arg) ||
			(ppi = polyglot_join_clause_param(root, baserel, ri)) == NULL)
			continue;
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, ppi->ppi_rows, startup,
										   startup + ppi->ppi_rows * row_cost,
										   NIL, ppi->ppi_req_outer, NIL));
	}
}

/*
 * A scan's unparameterized paths: unordered (with the LIMIT when no ORDER BY
 * needs the whole result), and, when the store can sort for the query's
 * ORDER BY (sort is the store's sort, not NIL), sorted by the store (and then
 * limited).  A path costs startup + fixed + rows * row_cost, and the sorted
 * one also baserel->rows * sort_cost; its fdw_private is (sort, limit), NIL
 * for the plain scan.
 */
void
polyglot_add_scan_paths(PlannerInfo *root, RelOptInfo *baserel, int64 limit, List *sort,
						Cost startup, Cost fixed, Cost row_cost, Cost sort_cost)
{
	double		rows = baserel->rows;

	if (limit > 0)
		rows = Min((double) limit, rows);
	if (limit > 0 && root->query_pathkeys == NIL)
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, rows, startup,
										   startup + fixed + rows * row_cost, NIL, NULL,
										   list_make2(NIL, makeInteger((int) limit))));
	else
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, baserel->rows, startup,
										   startup + fixed + baserel->rows * row_cost,
										   NIL, NULL, NIL));
	if (sort != NIL)
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, rows, startup,
										   startup + fixed + rows * row_cost +
										   baserel->rows * sort_cost,
										   root->query_pathkeys, NULL,
										   list_make2(sort, makeInteger((int) limit))));
}

/*
 * Whether the grouping above a scan may go to the store, as far as the
 * query tells: the grouping stage of one base relation not planned yet,
 * without grouping sets, HAVING or partitionwise aggregation, and without
 * GROUP BY unless group_by.  The store then checks its own relation (every
 * condition pushed) and the aggregates.
 */
bool
polyglot_grouping_pushable(PlannerInfo *root, int stage, RelOptInfo *input_rel,
						   RelOptInfo *output_rel, void *extra, bool group_by)
{
	Query	   *parse = root->parse;

	return stage == UPPERREL_GROUP_AGG && input_rel->reloptkind == RELOPT_BASEREL &&
		output_rel->fdw_private == NULL && input_rel->fdw_private != NULL &&
		(group_by || parse->groupClause == NIL) &&
		parse->groupingSets == NIL && parse->havingQual == NULL &&
		((GroupPathExtraData *) extra)->patype == PARTITIONWISE_AGGREGATE_NONE;
}

/*
 * The boolean structure of a filter, as every store that pushes filters
 * down renders it: AND and OR become ("and"|"or", items) when each argument
 * deparses (deparse returns an argument's item, or NIL); a boolean column
 * becomes ("bool", field, 1) and NOT of one ("bool", field, 0); NOT of
 * anything else stays local, where NULLs would differ.  bool_field returns
 * the store's field of a boolean column of the scan, or NULL.  Returns
 * false when expr is none of these, which leaves it to the store's forms;
 * else *item is the item, or NIL when it cannot be pushed.
 */
bool
polyglot_deparse_boolean(Expr *expr, PolyglotDeparseItem deparse,
						 PolyglotBoolField bool_field, void *arg, List **item)
{
	const char *field;

	*item = NIL;
	if (IsA(expr, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) expr;
		List	   *items = NIL;
		ListCell   *lc;

		if (b->boolop == NOT_EXPR)
		{
			if ((field = bool_field(linitial(b->args), arg)) != NULL)
				*item = list_make3(makeString("bool"), makeString(pstrdup(field)), makeInteger(0));
			return true;
		}
		foreach(lc, b->args)
		{
			List	   *sub = deparse((Expr *) lfirst(lc), arg);

			if (sub == NIL)
				return true;
			items = lappend(items, sub);
		}
		*item = list_make2(makeString(b->boolop == AND_EXPR ? "and" : "or"), items);
		return true;
	}
	if (IsA(expr, Var) || (IsA(expr, RelabelType) && IsA(((RelabelType *) expr)->arg, Var)))
	{
		if ((field = bool_field(expr, arg)) != NULL)
			*item = list_make3(makeString("bool"), makeString(pstrdup(field)), makeInteger(1));
		return true;
	}
	return false;
}

/*
 * The number of rows a LIMIT lets a scan ask the store for, or 0 when it
 * cannot: only a query of this one table whose conditions all went to the
 * store (all_pushed), without grouping, aggregates, DISTINCT, window
 * functions, set-returning functions or locking, and with a constant LIMIT
 * (and OFFSET).  The scan asks for LIMIT + OFFSET rows and PostgreSQL's
 * Limit skips the OFFSET.
 */
int64
polyglot_query_limit(PlannerInfo *root, RelOptInfo *baserel, bool all_pushed)
{
	Query	   *parse = root->parse;
	int64		count,
				offset = 0;

	if (baserel->reloptkind != RELOPT_BASEREL ||
		bms_membership(root->all_baserels) != BMS_SINGLETON ||
		parse->limitCount == NULL || !all_pushed ||
		parse->hasAggs || parse->groupClause || parse->groupingSets ||
		parse->distinctClause || parse->hasWindowFuncs || parse->hasTargetSRFs ||
		parse->havingQual || parse->rowMarks || parse->setOperations)
		return 0;
#if PG_VERSION_NUM >= 130000
	if (parse->limitOption != LIMIT_OPTION_COUNT)
		return 0;
#endif
	if (!IsA(parse->limitCount, Const) || ((Const *) parse->limitCount)->constisnull)
		return 0;
	count = DatumGetInt64(((Const *) parse->limitCount)->constvalue);
	if (parse->limitOffset)
	{
		if (!IsA(parse->limitOffset, Const))
			return 0;
		if (!((Const *) parse->limitOffset)->constisnull)
			offset = DatumGetInt64(((Const *) parse->limitOffset)->constvalue);
	}
	/* LIMIT 0 returns nothing, but stores read a limit of 0 as none */
	if (count <= 0 || offset < 0 || count > PG_INT32_MAX - offset)
		return 0;
	return count + offset;
}

/*
 * generate_implied_equalities_for_column's callback: is em the column
 * whose attnum *arg points to?
 */
bool
polyglot_ec_member_is_column(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
							 EquivalenceMember *em, void *arg)
{
	Expr	   *expr = em->em_expr;

	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return IsA(expr, Var) && (Index) ((Var *) expr)->varno == rel->relid &&
		((Var *) expr)->varattno == *(int *) arg && ((Var *) expr)->varlevelsup == 0;
}

/*
 * A value a pushed condition can hold, evaluated at run time: a constant,
 * a parameter, or a column of another relation (a nested loop's outer
 * side, which becomes a parameter in the plan).  Not an expression: see
 * redis_query.c's is_evaluable_value for one that takes those.
 */
bool
polyglot_is_plain_value(Expr *expr, RelOptInfo *baserel)
{
	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (IsA(expr, Var))
		return !bms_is_member(((Var *) expr)->varno, baserel->relids) &&
			((Var *) expr)->varlevelsup == 0;
	return IsA(expr, Const) || IsA(expr, Param);
}

/*
 * The column a pathkey sorts by: the attnum that column_attnum gives the
 * first member of its equivalence class that belongs to baserel alone, or
 * 0 when none has one or the class is volatile.
 */
int
polyglot_pathkey_attnum(PathKey *pk, RelOptInfo *baserel, PolyglotColumnAttnum column_attnum,
						void *info)
{
	EquivalenceClass *ec = pk->pk_eclass;
	ListCell   *lm;
	int			attnum;

	if (ec->ec_has_volatile)
		return 0;
	foreach(lm, ec->ec_members)
	{
		EquivalenceMember *em = (EquivalenceMember *) lfirst(lm);

		if (bms_equal(em->em_relids, baserel->relids) &&
			(attnum = column_attnum(em->em_expr, baserel, info)) != 0)
			return attnum;
	}
	return 0;
}

/*
 * The columns (attnums 1 to natts) a scan returns: those of the target
 * list and of the conditions checked locally, every one for a whole-row
 * reference.
 */
Bitmapset *
polyglot_columns_read(RelOptInfo *baserel, List *local_conds, int natts)
{
	Bitmapset  *attrs = NULL;
	Bitmapset  *read = NULL;
	int			attnum;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local_conds, baserel->relid, &attrs);
	for (attnum = 1; attnum <= natts; attnum++)
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attrs) ||
			bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs))
			read = bms_add_member(read, attnum);
	return read;
}

/*
 * The range-table index of the foreign table a ForeignScan reads: its
 * scanrelid, or for a pushed-down aggregation (scanrelid 0) the one base
 * relation it covers.
 */
Index
polyglot_scan_rtindex(ForeignScan *plan)
{
	if (plan->scan.scanrelid > 0)
		return plan->scan.scanrelid;
#if PG_VERSION_NUM >= 160000
	return (Index) bms_next_member(plan->fs_base_relids, -1);
#else
	return (Index) bms_next_member(plan->fs_relids, -1);
#endif
}

/*
 * The user whose mapping a scan uses: the view owner for a table read
 * through a view (checkAsUser), else the current user.
 */
Oid
polyglot_scan_user(ForeignScan *plan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(plan->checkAsUser) ? plan->checkAsUser : GetUserId();
#else
	RangeTblEntry *rte = exec_rt_fetch(polyglot_scan_rtindex(plan), estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * The server of a foreign table and the user mapping of userid (the
 * current user when invalid) for it, or NULL without one.
 */
UserMapping *
polyglot_table_user_mapping(Oid relid, Oid userid, ForeignServer **server)
{
	ForeignTable *table = GetForeignTable(relid);

	*server = GetForeignServer(table->serverid);
	return polyglot_find_user_mapping(OidIsValid(userid) ? userid : GetUserId(),
									  (*server)->serverid);
}

/* Is the type a number type that has NaN or infinities (float4, float8, numeric)? */
bool
polyglot_has_nonfinite(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == FLOAT4OID || base == FLOAT8OID || base == NUMERICOID;
}

/*
 * Is a value NaN or an infinity?  JSON has no such numbers, and the stores
 * that take them order them otherwise than PostgreSQL: a comparison with
 * one is left to the local check.
 */
bool
polyglot_nonfinite_value(Datum value, Oid typid)
{
	switch (getBaseType(typid))
	{
		case FLOAT4OID:
			return isnan(DatumGetFloat4(value)) || isinf(DatumGetFloat4(value));
		case FLOAT8OID:
			return isnan(DatumGetFloat8(value)) || isinf(DatumGetFloat8(value));
		case NUMERICOID:
			return numeric_is_nan(DatumGetNumeric(value)) ||
				numeric_is_inf(DatumGetNumeric(value));
		default:
			return false;
	}
}

/* Is a constant (or an element of a constant array) NaN or an infinity? */
bool
polyglot_const_nonfinite(Const *c)
{
	Oid			elemtype;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	if (c->constisnull)
		return false;
	elemtype = get_element_type(c->consttype);
	if (!OidIsValid(elemtype))
		return polyglot_nonfinite_value(c->constvalue, c->consttype);
	if (!polyglot_has_nonfinite(elemtype))
		return false;
	n = polyglot_array_elements(c->constvalue, &elemtype, &elems, &nulls);
	for (i = 0; i < n; i++)
		if (!nulls[i] && polyglot_nonfinite_value(elems[i], elemtype))
			return true;
	return false;
}
