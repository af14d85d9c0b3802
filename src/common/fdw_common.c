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
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "pg_polyglot.h"

/* A foreign table's option, else its server's, else NULL */
DefElem *
polyglot_table_option(ForeignTable *table, ForeignServer *server, const char *name)
{
	DefElem    *def = polyglot_option_find(table->options, name);

	return def ? def : polyglot_option_find(server->options, name);
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
	return IsA(expr, Var) && ((Var *) expr)->varno == (int) rel->relid &&
		((Var *) expr)->varattno == *(int *) arg && ((Var *) expr)->varlevelsup == 0;
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
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (c->constisnull)
		return false;
	elemtype = get_element_type(c->consttype);
	if (!OidIsValid(elemtype))
		return polyglot_nonfinite_value(c->constvalue, c->consttype);
	if (!polyglot_has_nonfinite(elemtype))
		return false;
	arr = DatumGetArrayTypeP(c->constvalue);
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && polyglot_nonfinite_value(elems[i], elemtype))
			return true;
	return false;
}
