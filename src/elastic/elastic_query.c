/*-------------------------------------------------------------------------
 *
 * elastic_query.c
 *		What an Elasticsearch/OpenSearch search can evaluate for the
 *		polyglot_elastic wrapper, and the JSON of the request: filter, search,
 *		sort, _count, and the request as EXPLAIN VERBOSE shows it.
 *
 * Pushdown (the pushdown option, and the setting polyglot.elastic_pushdown):
 * comparisons of a column with a constant or parameter, IN / NOT IN,
 * IS [NOT] NULL, boolean columns and AND / OR of those become a bool
 * filter of term, terms, range and exists queries; which ones depends on
 * the index's mapping, read when the query is planned, so that the server
 * answers exactly as PostgreSQL would:
 *   - numbers against long/integer/short/byte fields (integer columns) or
 *     double fields (double precision and numeric), booleans against
 *     boolean fields;
 *   - text = and <> against a keyword field, or the keyword sub-field of a
 *     text field (the dynamic mapping's name.keyword), without a
 *     normalizer, in a deterministic collation; ranges and sorts of text
 *     only in the C collation and only where no ignore_above leaves long
 *     values out of the index.  A keyword's ignore_above (256 in the
 *     dynamic mapping) leaves longer values out of the index: a constant
 *     longer than that stays a local condition, a parameter is sent and
 *     also checked locally;
 *   - _id = and IN; IS NULL as exists on mapped leaf fields.
 * Dates are not pushed: a date field keeps milliseconds, PostgreSQL
 * microseconds.  `query = x` always goes to the server, pushdown or not:
 * it is the search, not a filter.
 * ORDER BY of such columns (with missing values placed as NULLS FIRST or
 * LAST says) and of _score, and a LIMIT of a query whose conditions all
 * push, become the search's sort and size.  count(*) of such a query is a
 * _count request.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/tlist.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "common/datum.h"
#include "pg_polyglot.h"
#include "elastic/elastic.h"

#define list_make7(a, b, c, d, e, f, g) lappend(lappend(list_make5(a, b, c, d, e), f), g)

/*
 * Does a field of mapping type t hold the numbers or booleans of a column
 * of base type base as PostgreSQL compares them?
 */
static bool
holds_values(Oid base, const char *t)
{
	switch (base)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return strcmp(t, "long") == 0 || strcmp(t, "integer") == 0 ||
				strcmp(t, "short") == 0 || strcmp(t, "byte") == 0;
		case FLOAT8OID:
		case NUMERICOID:
			return strcmp(t, "double") == 0;
		case FLOAT4OID:
			return strcmp(t, "float") == 0;
		case BOOLOID:
			return strcmp(t, "boolean") == 0;
		default:
			return false;
	}
}

/*
 * Fills each field column's term_field, ranges, ignore_above and exists
 * from the index's mapping: what the server can filter and sort on as
 * PostgreSQL would (see the file's comment).
 */
void
polyglot_elastic_apply_mapping(ElasticRelInfo *info, List *fields)
{
	int			i;

	for (i = 0; i < info->natts; i++)
	{
		ElasticColumn *col = &info->columns[i];
		ElasticField *f;
		Oid			base;
		const char *t;

		if (col->kind != ECOL_FIELD)
			continue;
		f = polyglot_elastic_find_field(fields, col->field);
		if (f == NULL || f->conflict)
			continue;
		t = f->type;
		base = getBaseType(col->typid);
		/* a keyword leaves values longer than ignore_above out of the index */
		col->exists = strcmp(t, "object") != 0 && strcmp(t, "nested") != 0 &&
			strcmp(t, "alias") != 0 &&
			!(strcmp(t, "keyword") == 0 && f->ignore_above >= 0);
		if (base == TEXTOID || base == VARCHAROID)
		{
			if (f->normalizer)
				continue;
			if (strcmp(t, "keyword") == 0)
				col->term_field = col->field;
			else if (strcmp(t, "text") == 0 && f->keyword)
				col->term_field = f->keyword;
			col->ignore_above = f->ignore_above;
			col->ranges = col->term_field != NULL && f->ignore_above < 0;
		}
		else if (holds_values(base, t))
		{
			col->term_field = col->field;
			col->ranges = true;
		}
	}
}

/* ---------------------------------------------------------------- pushdown */

/* The attnum of a Var of the scanned relation, or 0 */
static int
var_attnum(Expr *expr, RelOptInfo *baserel, ElasticRelInfo *info)
{
	Var		   *var;

	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return 0;
	var = (Var *) expr;
	if ((Index) var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0 || var->varattno > info->natts ||
		info->columns[var->varattno - 1].kind == ECOL_DROPPED)
		return 0;
	return var->varattno;
}

/* var_attnum as a PolyglotColumnAttnum */
static int
column_attnum(Expr *expr, RelOptInfo *baserel, void *info)
{
	return var_attnum(expr, baserel, (ElasticRelInfo *) info);
}

static int
add_value(ElasticRelInfo *info, Expr *expr)
{
	info->values = lappend(info->values, expr);
	return list_length(info->values) - 1;
}

/* The btree strategy of an operator in the default operator family of a type, or 0 */
static int
operator_strategy(Oid opno, Oid typid, bool *negated)
{
	Oid			opclass = GetDefaultOpClass(getBaseType(typid), BTREE_AM_OID);
	Oid			opfamily;
	int			strategy;

	*negated = false;
	if (!OidIsValid(opclass))
		return 0;
	opfamily = get_opclass_family(opclass);
	strategy = get_op_opfamily_strategy(opno, opfamily);
	if (strategy == 0 && OidIsValid(get_negator(opno)) &&
		get_op_opfamily_strategy(get_negator(opno), opfamily) == BTEqualStrategyNumber)
	{
		*negated = true;
		return BTEqualStrategyNumber;
	}
	return strategy;
}

/*
 * The length of a string as ignore_above counts it: in UTF-16 code units
 * (Java's), so a character beyond U+FFFF counts twice.
 */
static int
ignore_above_length(const char *s)
{
	int			n = 0;

	while (*s)
	{
		int			len = pg_mblen(s);

		n += (GetDatabaseEncoding() == PG_UTF8 && len == 4) ? 2 : 1;
		s += len;
	}
	return n;
}

/*
 * A floating-point column compares with a value of its own type only: a
 * real sent to a double field (or a double to a float field) would be
 * compared at the other precision.
 */
static bool
same_float_type(Oid coltype, Oid valtype)
{
	Oid			col = getBaseType(coltype);
	Oid			val = getBaseType(valtype);

	if (col != FLOAT4OID && col != FLOAT8OID && val != FLOAT4OID && val != FLOAT8OID)
		return true;
	return col == val;
}

/* Does a text value fit under the keyword field's ignore_above? */
static bool
const_fits(Const *c, int ignore_above)
{
	if (ignore_above < 0 || c->constisnull)
		return true;
	return ignore_above_length(TextDatumGetCString(c->constvalue)) <= ignore_above;
}

/* Every element of a constant text array fits under ignore_above */
static bool
const_array_fits(Const *c, int ignore_above)
{
	Datum	   *elems;
	bool	   *nulls;
	Oid			elemtype;
	int			n,
				i;

	if (ignore_above < 0 || c->constisnull)
		return true;
	n = polyglot_array_elements(c->constvalue, &elemtype, &elems, &nulls);
	for (i = 0; i < n; i++)
		if (!nulls[i] && ignore_above_length(TextDatumGetCString(elems[i])) > ignore_above)
			return false;
	return true;
}

/*
 * Can a comparison of column col with value (whose type, or whose
 * elements' type for IN, is valtype) go to the server?  Text compares only
 * in a deterministic collation, a floating-point column only with a value
 * of its own type; NaN and infinities are compared locally: a constant's
 * are seen now, a parameter's only at execution, which sets *recheck.
 */
static bool
comparable(ElasticColumn *col, Expr *value, Oid valtype, Oid collid, bool *recheck)
{
	Oid			base = getBaseType(col->typid);

	if ((base == TEXTOID || base == VARCHAROID) && OidIsValid(collid) &&
		!get_collation_isdeterministic(collid))
		return false;
	if (!same_float_type(col->typid, valtype))
		return false;
	if (polyglot_has_nonfinite(col->typid))
	{
		if (IsA(value, Const) && polyglot_const_nonfinite((Const *) value))
			return false;
		if (!IsA(value, Const))
			*recheck = true;
	}
	return true;
}

/*
 * Does the index hold the text value (of IN: each value) a term or terms
 * query would look for, under the keyword's ignore_above?  A constant is
 * checked now; a parameter is sent and sets *recheck.
 */
static bool
indexed(ElasticColumn *col, Expr *value, bool is_text, bool in, bool *recheck)
{
	if (!is_text || col->ignore_above < 0)
		return true;
	if (!IsA(value, Const))
	{
		*recheck = true;
		return true;
	}
	return in ? const_array_fits((Const *) value, col->ignore_above) :
		const_fits((Const *) value, col->ignore_above);
}

/* The term or terms item (kind) of a comparison of col with value */
static List *
term_item(char *kind, ElasticColumn *col, ElasticRelInfo *info, Expr *value,
		  bool negated, bool is_text)
{
	if (col->kind == ECOL_ID)
		return list_make7(makeString(kind), makeString("_id"), makeString(""),
						  makeInteger(add_value(info, value)), makeInteger(negated),
						  makeInteger(1), makeInteger(-1));
	return list_make7(makeString(kind), makeString(col->term_field),
					  makeString(col->field), makeInteger(add_value(info, value)),
					  makeInteger(negated), makeInteger(0),
					  makeInteger(is_text ? col->ignore_above : -1));
}

/* polyglot_elastic_deparse and what it deparses for, as a PolyglotDeparseItem */
typedef struct ElasticDeparse
{
	RelOptInfo *baserel;
	ElasticRelInfo *info;
	bool	   *recheck;
} ElasticDeparse;

static List *
deparse_item(Expr *expr, void *arg)
{
	ElasticDeparse *d = (ElasticDeparse *) arg;

	return polyglot_elastic_deparse(expr, d->baserel, d->info, d->recheck);
}

/* The term field of a boolean column, as a PolyglotBoolField */
static const char *
bool_field(Expr *expr, void *arg)
{
	ElasticDeparse *d = (ElasticDeparse *) arg;
	int			attnum = var_attnum(expr, d->baserel, d->info);
	ElasticColumn *col;

	if (attnum == 0)
		return NULL;
	col = &d->info->columns[attnum - 1];
	return getBaseType(col->typid) == BOOLOID ? col->term_field : NULL;
}

/*
 * The filter item of an expression, or NIL when it cannot be sent.  Forms:
 * ("and"|"or", items), ("term", path, exists_path, value#, negated, as_text,
 * ignore_above), ("terms", path, exists_path, value#, negated, as_text,
 * ignore_above), ("range", path, op, value#), ("exists", path, negated),
 * ("bool", path, value).  *recheck is set when the item may match more
 * documents than the clause (a parameter that ignore_above may leave out):
 * the clause is then also checked locally.
 */
List *
polyglot_elastic_deparse(Expr *expr, RelOptInfo *baserel, ElasticRelInfo *info, bool *recheck)
{
	ElasticDeparse d = {baserel, info, recheck};
	int			attnum;
	ElasticColumn *col;
	List	   *item;

	if (polyglot_deparse_boolean(expr, deparse_item, bool_field, &d, &item))
		return item;

	if (IsA(expr, NullTest))
	{
		NullTest   *nt = (NullTest *) expr;

		attnum = var_attnum(nt->arg, baserel, info);
		if (attnum == 0 || nt->argisrow)
			return NIL;
		col = &info->columns[attnum - 1];
		if (col->kind != ECOL_FIELD || !col->exists)
			return NIL;
		return list_make3(makeString("exists"), makeString(col->field),
						  makeInteger(nt->nulltesttype == IS_NULL));
	}

	if (IsA(expr, OpExpr) && list_length(((OpExpr *) expr)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) expr;
		Expr	   *left = linitial(op->args);
		Expr	   *right = lsecond(op->args);
		Expr	   *value;
		Oid			opno = op->opno;
		bool		negated;
		int			strategy;
		bool		is_text;

		if ((attnum = var_attnum(left, baserel, info)) != 0 && polyglot_is_plain_value(right, baserel))
			value = right;
		else if ((attnum = var_attnum(right, baserel, info)) != 0 && polyglot_is_plain_value(left, baserel))
		{
			value = left;
			opno = get_commutator(opno);
			if (!OidIsValid(opno))
				return NIL;
		}
		else
			return NIL;
		col = &info->columns[attnum - 1];
		if (col->kind != ECOL_FIELD && col->kind != ECOL_ID)
			return NIL;
		strategy = operator_strategy(opno, col->typid, &negated);
		if (strategy == 0)
			return NIL;
		is_text = getBaseType(col->typid) == TEXTOID || getBaseType(col->typid) == VARCHAROID;
		if (!comparable(col, value, exprType((Node *) value), op->inputcollid, recheck))
			return NIL;
		if (col->kind == ECOL_ID)
		{
			if (strategy != BTEqualStrategyNumber)
				return NIL;
			return term_item("term", col, info, value, negated, is_text);
		}
		if (col->term_field == NULL)
			return NIL;
		if (strategy == BTEqualStrategyNumber)
		{
			/* <> must see the field exist, as SQL leaves NULLs out */
			if (negated && !col->exists)
				return NIL;
			if (!indexed(col, value, is_text, false, recheck))
				return NIL;
			return term_item("term", col, info, value, negated, is_text);
		}
		if (!col->ranges)
			return NIL;
		if (is_text && op->inputcollid != C_COLLATION_OID &&
			op->inputcollid != POSIX_COLLATION_OID)
			return NIL;
		return list_make4(makeString("range"), makeString(col->term_field),
						  makeString(strategy == BTLessStrategyNumber ? "lt" :
									 strategy == BTLessEqualStrategyNumber ? "lte" :
									 strategy == BTGreaterStrategyNumber ? "gt" : "gte"),
						  makeInteger(add_value(info, value)));
	}

	if (IsA(expr, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) expr;
		Expr	   *value = lsecond(sa->args);
		Oid			elemtype;
		bool		negated;
		int			strategy;
		bool		is_text;

		attnum = var_attnum(linitial(sa->args), baserel, info);
		if (attnum == 0 || !polyglot_is_plain_value(value, baserel))
			return NIL;
		col = &info->columns[attnum - 1];
		if (col->kind != ECOL_FIELD && col->kind != ECOL_ID)
			return NIL;
		strategy = operator_strategy(sa->opno, col->typid, &negated);
		/* = ANY (IN) and <> ALL (NOT IN) */
		if (strategy != BTEqualStrategyNumber || negated == sa->useOr)
			return NIL;
		is_text = getBaseType(col->typid) == TEXTOID || getBaseType(col->typid) == VARCHAROID;
		elemtype = get_element_type(exprType((Node *) value));
		if (!OidIsValid(elemtype) ||
			!comparable(col, value, elemtype, sa->inputcollid, recheck))
			return NIL;
		if (col->kind == ECOL_ID)
			return term_item("terms", col, info, value, negated, is_text);
		if (col->term_field == NULL || (negated && !col->exists))
			return NIL;
		if (!indexed(col, value, is_text, true, recheck))
			return NIL;
		return term_item("terms", col, info, value, negated, is_text);
	}
	return NIL;
}

/* The value of `query = value`, the search itself, or NULL */
Expr *
polyglot_elastic_query_value(Expr *expr, RelOptInfo *baserel, ElasticRelInfo *info)
{
	OpExpr	   *op;
	int			attnum;

	if (!IsA(expr, OpExpr) || list_length(((OpExpr *) expr)->args) != 2)
		return NULL;
	op = (OpExpr *) expr;
	if (op->opno != TextEqualOperator)
		return NULL;
	if ((attnum = var_attnum(linitial(op->args), baserel, info)) != 0 &&
		info->columns[attnum - 1].kind == ECOL_QUERY && polyglot_is_plain_value(lsecond(op->args), baserel))
		return lsecond(op->args);
	if ((attnum = var_attnum(lsecond(op->args), baserel, info)) != 0 &&
		info->columns[attnum - 1].kind == ECOL_QUERY && polyglot_is_plain_value(linitial(op->args), baserel))
		return linitial(op->args);
	return NULL;
}

/*
 * Sends what it can of a clause: `query = value` joins the searches (with
 * pushdown or without: it is the search), a clause the server can filter
 * on (with pushdown) joins the filter's items, *recheck set when it must
 * also be checked locally; anything else adds nothing.  Says which.
 */
ElasticClauseUse
polyglot_elastic_add_clause(ElasticRelInfo *info, RelOptInfo *baserel, Expr *clause,
							bool *recheck)
{
	Expr	   *query = polyglot_elastic_query_value(clause, baserel, info);
	int			nvalues = list_length(info->values);
	List	   *item;

	*recheck = false;
	if (query)
	{
		info->queries = lappend(info->queries, makeInteger(add_value(info, query)));
		return ELASTIC_CLAUSE_SEARCH;
	}
	if (info->pushdown &&
		(item = polyglot_elastic_deparse(clause, baserel, info, recheck)) != NIL)
	{
		info->items = lappend(info->items, item);
		return ELASTIC_CLAUSE_FILTER;
	}
	info->values = list_truncate(info->values, nvalues);
	return ELASTIC_CLAUSE_LOCAL;
}

/*
 * The sort of pathkeys, as (path, asc, nulls_first) entries, or NIL when
 * one of them cannot be sorted by the server as PostgreSQL would: _score,
 * or columns whose mapping sorts as PostgreSQL (see apply_mapping), in the
 * type's default operator family.  Missing values go where NULLS FIRST or
 * LAST puts NULLs.
 */
List *
polyglot_elastic_sort_spec(RelOptInfo *baserel, ElasticRelInfo *info, List *pathkeys)
{
	List	   *spec = NIL;
	ListCell   *lc;

	foreach(lc, pathkeys)
	{
		PathKey    *pk = (PathKey *) lfirst(lc);
		EquivalenceClass *ec = pk->pk_eclass;
		int			attnum = polyglot_pathkey_attnum(pk, baserel, column_attnum, info);
		ElasticColumn *col;
		bool		asc = polyglot_pathkey_ascending(pk);
		Oid			opclass;
		Oid			base;

		if (attnum == 0)
			return NIL;
		col = &info->columns[attnum - 1];
		base = getBaseType(col->typid);
		opclass = GetDefaultOpClass(base, BTREE_AM_OID);
		if (!OidIsValid(opclass) || get_opclass_family(opclass) != pk->pk_opfamily)
			return NIL;
		if (col->kind == ECOL_SCORE)
		{
			/* every hit has a score when the search sorts by it */
			spec = lappend(spec, list_make3(makeString("_score"), makeInteger(asc),
											makeInteger(0)));
			continue;
		}
		if (col->kind != ECOL_FIELD || col->term_field == NULL || !col->ranges)
			return NIL;
		if ((base == TEXTOID || base == VARCHAROID) &&
			ec->ec_collation != C_COLLATION_OID && ec->ec_collation != POSIX_COLLATION_OID)
			return NIL;
		spec = lappend(spec, list_make3(makeString(col->term_field), makeInteger(asc),
										makeInteger(pk->pk_nulls_first)));
	}
	return spec;
}

/*
 * The scan target list of an aggregation the server answers: count(*)
 * without FILTER, DISTINCT or ORDER BY, one entry per distinct Aggref; NIL
 * when the target computes any other aggregate or a column.
 */
List *
polyglot_elastic_count_tlist(PathTarget *target)
{
	List	   *scan_tlist = NIL;
	ListCell   *lc;

	foreach(lc, target->exprs)
	{
		List	   *vars = pull_var_clause((Node *) lfirst(lc), PVC_INCLUDE_AGGREGATES);
		ListCell   *lv;

		foreach(lv, vars)
		{
			Aggref	   *agg = (Aggref *) lfirst(lv);

			if (!IsA(agg, Aggref) || agg->aggfnoid != F_COUNT_ || agg->aggfilter ||
				agg->aggdistinct || agg->aggorder)
				return NIL;
			if (!tlist_member((Expr *) agg, scan_tlist))
				scan_tlist = lappend(scan_tlist,
									 makeTargetEntry((Expr *) copyObject(agg),
													 list_length(scan_tlist) + 1, NULL, false));
		}
	}
	return scan_tlist;
}

/* ---------------------------------------------------------------- the request's JSON */

#define MATCH_NONE "{\"bool\":{\"must_not\":[{\"match_all\":{}}]}}"

/*
 * The value number n of the request, or *unknown in EXPLAIN (without
 * ANALYZE) for a parameter that has no value yet.
 */
static Datum
item_value(ElasticScanState *st, int n, ExprContext *econtext, bool explain, bool *isnull,
		   Oid *typid, bool *unknown)
{
	Expr	   *expr = (Expr *) list_nth(st->value_exprs, n);
	ExprState  *state = (ExprState *) list_nth(st->value_states, n);

	*typid = exprType((Node *) expr);
	*unknown = false;
	if (explain && !IsA(expr, Const))
	{
		*unknown = true;
		*isnull = true;
		return (Datum) 0;
	}
	return ExecEvalExpr(state, econtext, isnull);
}

static void
append_text_value(StringInfo buf, Datum value, Oid typid)
{
	Oid			outfunc;
	bool		varlena;

	getTypeOutputInfo(typid, &outfunc, &varlena);
	escape_json(buf, OidOutputFunctionCall(outfunc, value));
}

/* Does a text value pass the keyword field's ignore_above? */
static bool
value_fits(Datum value, Oid typid, int ignore_above)
{
	Oid			outfunc;
	bool		varlena;

	if (ignore_above < 0)
		return true;
	getTypeOutputInfo(typid, &outfunc, &varlena);
	return ignore_above_length(OidOutputFunctionCall(outfunc, value)) <= ignore_above;
}

static void
append_exists_guard(StringInfo buf, const char *exists_path)
{
	if (exists_path[0])
	{
		appendStringInfoString(buf, ",\"filter\":[{\"exists\":{\"field\":");
		escape_json(buf, exists_path);
		appendStringInfoString(buf, "}}]");
	}
}

/*
 * Appends the JSON query of a filter item (see polyglot_elastic_deparse())
 * with this execution's values
 */
static void
append_item(StringInfo buf, List *item, ElasticScanState *st, ExprContext *econtext,
			bool explain)
{
	const char *kind = strVal(linitial(item));
	Datum		value;
	bool		isnull;
	Oid			typid;
	bool		unknown;

	if (strcmp(kind, "and") == 0 || strcmp(kind, "or") == 0)
	{
		ListCell   *lc;
		bool		first = true;

		appendStringInfo(buf, "{\"bool\":{\"%s\":[", kind[0] == 'a' ? "filter" : "should");
		foreach(lc, (List *) lsecond(item))
		{
			if (!first)
				appendStringInfoChar(buf, ',');
			first = false;
			append_item(buf, (List *) lfirst(lc), st, econtext, explain);
		}
		appendStringInfoString(buf, kind[0] == 'a' ? "]}}" : "],\"minimum_should_match\":1}}");
		return;
	}
	if (strcmp(kind, "bool") == 0)
	{
		appendStringInfoString(buf, "{\"term\":{");
		escape_json(buf, strVal(lsecond(item)));
		appendStringInfo(buf, ":%s}}", intVal(lthird(item)) ? "true" : "false");
		return;
	}
	if (strcmp(kind, "exists") == 0)
	{
		if (intVal(lthird(item)))
			appendStringInfoString(buf, "{\"bool\":{\"must_not\":[");
		appendStringInfoString(buf, "{\"exists\":{\"field\":");
		escape_json(buf, strVal(lsecond(item)));
		appendStringInfoString(buf, "}}");
		if (intVal(lthird(item)))
			appendStringInfoString(buf, "]}}");
		return;
	}
	if (strcmp(kind, "range") == 0)
	{
		value = item_value(st, intVal(lfourth(item)), econtext, explain, &isnull, &typid,
						   &unknown);
		if (isnull && !unknown)
		{
			appendStringInfoString(buf, MATCH_NONE);
			return;
		}
		if (!unknown && polyglot_nonfinite_value(value, typid))
		{
			/* a parameter's NaN or infinity: a superset, checked locally */
			appendStringInfoString(buf, "{\"match_all\":{}}");
			return;
		}
		appendStringInfoString(buf, "{\"range\":{");
		escape_json(buf, strVal(lsecond(item)));
		appendStringInfo(buf, ":{\"%s\":", strVal(lthird(item)));
		if (unknown)
			appendStringInfoString(buf, "\"(parameter)\"");
		else
			polyglot_elastic_append_json_value(buf, value, false, typid);
		appendStringInfoString(buf, "}}}");
		return;
	}

	/* term and terms: (kind, path, exists_path, value#, negated, as_text, ignore_above) */
	{
		const char *path = strVal(lsecond(item));
		const char *exists_path = strVal(lthird(item));
		bool		negated = intVal(list_nth(item, 4)) != 0;
		bool		as_text = intVal(list_nth(item, 5)) != 0;
		int			ignore_above = intVal(list_nth(item, 6));
		bool		terms = strcmp(kind, "terms") == 0;
		StringInfoData q;

		value = item_value(st, intVal(list_nth(item, 3)), econtext, explain, &isnull, &typid,
						   &unknown);
		if (isnull && !unknown)
		{
			/* = NULL, IN (NULL array) and NOT IN of a NULL array match nothing */
			appendStringInfoString(buf, MATCH_NONE);
			return;
		}
		initStringInfo(&q);
		if (!unknown && !terms && polyglot_nonfinite_value(value, typid))
		{
			/* a parameter's NaN or infinity: a superset, checked locally */
			appendStringInfoString(buf, "{\"match_all\":{}}");
			return;
		}
		if (unknown)
			appendStringInfo(&q, "{\"%s\":{", kind);
		else if (!terms)
		{
			if (!negated && !value_fits(value, typid, ignore_above))
			{
				/* not in the index: the local check decides (a superset here) */
				appendStringInfoString(buf, "{\"match_all\":{}}");
				return;
			}
			appendStringInfoString(&q, "{\"term\":{");
		}
		else
			appendStringInfoString(&q, "{\"terms\":{");
		escape_json(&q, path);
		appendStringInfoChar(&q, ':');
		if (unknown)
			appendStringInfoString(&q, terms ? "[\"(parameter)\"]" : "\"(parameter)\"");
		else if (!terms)
		{
			if (as_text)
				append_text_value(&q, value, typid);
			else
				polyglot_elastic_append_json_value(&q, value, false, typid);
		}
		else
		{
			Oid			elemtype;
			Datum	   *elems;
			bool	   *nulls;
			int			n = polyglot_array_elements(value, &elemtype, &elems, &nulls),
						i,
						sent = 0;

			appendStringInfoChar(&q, '[');
			for (i = 0; i < n; i++)
			{
				if (nulls[i])
				{
					/* x NOT IN (.., NULL) is never true */
					if (negated)
					{
						appendStringInfoString(buf, MATCH_NONE);
						return;
					}
					continue;
				}
				if (!value_fits(elems[i], elemtype, ignore_above) ||
					polyglot_nonfinite_value(elems[i], elemtype))
				{
					/* a value not in the index: a superset, checked locally */
					if (!negated)
					{
						appendStringInfoString(buf, "{\"match_all\":{}}");
						return;
					}
					continue;
				}
				if (sent++ > 0)
					appendStringInfoChar(&q, ',');
				if (as_text)
					append_text_value(&q, elems[i], elemtype);
				else
					polyglot_elastic_append_json_value(&q, elems[i], false, elemtype);
			}
			appendStringInfoChar(&q, ']');
			if (sent == 0)
			{
				/* IN () matches nothing, NOT IN () everything, NULLs too */
				appendStringInfoString(buf, negated ? "{\"match_all\":{}}" : MATCH_NONE);
				return;
			}
		}
		appendStringInfoString(&q, "}}");
		if (!negated)
			appendBinaryStringInfo(buf, q.data, q.len);
		else
		{
			/* <> and NOT IN are false for NULL: the field must exist */
			appendStringInfo(buf, "{\"bool\":{\"must_not\":[%s]", q.data);
			append_exists_guard(buf, exists_path);
			appendStringInfoString(buf, "}}");
		}
	}
}

/*
 * The search's query with this execution's values: match_all, or a bool
 * query whose filter holds the pushed conditions and whose must holds the
 * query_string searches.  Sets st->query_text to the searched text.
 */
char *
polyglot_elastic_build_query(ElasticScanState *st, ExprContext *econtext, bool explain)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	st->query_text = NULL;
	if (st->filter == NIL && st->queries == NIL)
		return "{\"match_all\":{}}";
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"bool\":{");
	if (st->filter)
	{
		ListCell   *li;

		/* the top "and": its items are the filter's */
		appendStringInfoString(&buf, "\"filter\":[");
		foreach(li, (List *) lsecond(st->filter))
		{
			if (li != list_head((List *) lsecond(st->filter)))
				appendStringInfoChar(&buf, ',');
			append_item(&buf, (List *) lfirst(li), st, econtext, explain);
		}
		appendStringInfoChar(&buf, ']');
		first = false;
	}
	if (st->queries)
	{
		appendStringInfoString(&buf, first ? "\"must\":[" : ",\"must\":[");
		first = true;
		foreach(lc, st->queries)
		{
			bool		isnull;
			Oid			typid;
			bool		unknown;
			Datum		value = item_value(st, intVal(lfirst(lc)),
										   econtext, explain, &isnull, &typid, &unknown);

			if (!first)
				appendStringInfoChar(&buf, ',');
			first = false;
			if (unknown)
				appendStringInfoString(&buf, "{\"query_string\":{\"query\":\"(parameter)\"}}");
			else if (isnull)
				appendStringInfoString(&buf, MATCH_NONE);
			else
			{
				char	   *qtext = TextDatumGetCString(value);

				/* two different searches match nothing, as query = a AND query = b */
				if (st->query_text && strcmp(st->query_text, qtext) != 0)
					appendStringInfoString(&buf, MATCH_NONE);
				else
				{
					appendStringInfoString(&buf, "{\"query_string\":{\"query\":");
					escape_json(&buf, qtext);
					appendStringInfoString(&buf, "}}");
				}
				st->query_text = qtext;
			}
		}
		appendStringInfoChar(&buf, ']');
	}
	appendStringInfoString(&buf, "}}");
	return buf.data;
}

/* Is the sort _score descending alone, the servers' order without a sort? */
static bool
sort_is_relevance(ElasticScanState *st)
{
	List	   *s;

	if (list_length(st->sort) != 1)
		return false;
	s = (List *) linitial(st->sort);
	return strcmp(strVal(linitial(s)), "_score") == 0 && intVal(lsecond(s)) == 0;
}

/*
 * The sort of the search, with the tiebreaker that paging needs.  A single
 * request sorted by relevance alone sends no sort: the servers then skip
 * hits that cannot make the top ones (an explicit _score sort does not).
 */
static void
append_sort(StringInfo buf, ElasticScanState *st, bool tiebreak)
{
	ListCell   *lc;
	bool		first = true;

	if ((st->sort == NIL || sort_is_relevance(st)) && !tiebreak)
		return;
	appendStringInfoString(buf, ",\"sort\":[");
	foreach(lc, st->sort)
	{
		List	   *s = (List *) lfirst(lc);
		const char *path = strVal(linitial(s));
		bool		asc = intVal(lsecond(s)) != 0;

		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		appendStringInfoChar(buf, '{');
		escape_json(buf, path);
		if (strcmp(path, "_score") == 0)
			appendStringInfo(buf, ":{\"order\":\"%s\"}}", asc ? "asc" : "desc");
		else
			appendStringInfo(buf, ":{\"order\":\"%s\",\"missing\":\"%s\"}}",
							 asc ? "asc" : "desc", intVal(lthird(s)) ? "_first" : "_last");
	}
	if (st->sort == NIL && st->queries != NIL)
	{
		/* a search without ORDER BY: best hits first */
		appendStringInfoString(buf, "{\"_score\":{\"order\":\"desc\"}}");
		first = false;
	}
	if (tiebreak)
	{
		/*
		 * Elasticsearch adds _shard_doc under a point in time by itself;
		 * OpenSearch has no _shard_doc: _index and _id are unique together
		 */
		if (polyglot_elastic_is_opensearch(st->conn))
			appendStringInfo(buf, "%s{\"_index\":{\"order\":\"asc\"}},{\"_id\":{\"order\":\"asc\"}}",
							 first ? "" : ",");
		else if (first)
			appendStringInfoString(buf, "{\"_shard_doc\":{\"order\":\"asc\"}}");
	}
	appendStringInfoChar(buf, ']');
}

/* The body of a _count request of query */
char *
polyglot_elastic_count_body(const char *query)
{
	return psprintf("{\"query\":%s}", query);
}

/*
 * The body of one search request of size hits: under the point in time
 * pit_id ("(point in time)" when NULL) if the scan uses one, after the
 * sort values search_after (JSON) unless NULL.  Palloc'd in the current
 * context.
 */
char *
polyglot_elastic_search_body(ElasticScanState *st, int size, const char *pit_id,
							 const char *search_after, bool explain)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"size\":%d,\"query\":%s", size, st->query);
	if (st->whole_source)
		appendStringInfoString(&buf, ",\"_source\":true");
	else if (st->source_fields == NIL)
		appendStringInfoString(&buf, ",\"_source\":false");
	else
	{
		bool		first = true;

		appendStringInfoString(&buf, ",\"_source\":[");
		foreach(lc, st->source_fields)
		{
			if (!first)
				appendStringInfoChar(&buf, ',');
			first = false;
			escape_json(&buf, strVal(lfirst(lc)));
		}
		appendStringInfoChar(&buf, ']');
	}
	/* the fragments of a search, for the _highlight column */
	if (st->want_highlight && st->queries != NIL)
	{
		appendStringInfoString(&buf, ",\"highlight\":{\"fields\":{");
		if (st->highlight_fields == NIL)
			appendStringInfoString(&buf, "\"*\":{}");
		foreach(lc, st->highlight_fields)
		{
			if (lc != list_head(st->highlight_fields))
				appendStringInfoChar(&buf, ',');
			escape_json(&buf, strVal(lfirst(lc)));
			appendStringInfoString(&buf, ":{}");
		}
		appendStringInfoString(&buf, "}}");
	}
	append_sort(&buf, st, st->use_pit || (explain && st->use_pit));
	/* a sort on fields leaves _score out unless asked for */
	if (st->want_score && (st->use_pit || (st->sort != NIL && !sort_is_relevance(st))))
		appendStringInfoString(&buf, ",\"track_scores\":true");
	appendStringInfoString(&buf, ",\"track_total_hits\":false");
	if (st->use_pit)
	{
		appendStringInfoString(&buf, ",\"pit\":{\"id\":");
		escape_json(&buf, pit_id ? pit_id : "(point in time)");
		appendStringInfoString(&buf, ",\"keep_alive\":\"" ELASTIC_KEEP_ALIVE "\"}");
	}
	if (search_after)
		appendStringInfo(&buf, ",\"search_after\":%s", search_after);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * The request of a scan as EXPLAIN VERBOSE shows it: method, path and body
 * of the first page, with constants; parameters show as "(parameter)", the
 * point in time as "(point in time)".
 */
void
polyglot_elastic_explain_request(ElasticScanState *st, ExprContext *econtext, ExplainState *es)
{
	char	   *query;

	/* parameters show as such: a nested loop's may never have been set */
	query = polyglot_elastic_build_query(st, econtext, true);
	if (st->count)
	{
		ExplainPropertyText("Remote Request", psprintf("POST /%s/_count", st->index), es);
		ExplainPropertyText("Remote Body", polyglot_elastic_count_body(query), es);
		return;
	}
	st->query = query;
	if (st->use_pit)
		ExplainPropertyText("Remote Request",
							psprintf("POST /_search, paged under a point in time of %s",
									 st->index), es);
	else
		ExplainPropertyText("Remote Request", psprintf("POST /%s/_search", st->index), es);
	ExplainPropertyText("Remote Body",
						polyglot_elastic_search_body(st, st->limit > 0 ?
													 (int) Min((int64) st->page_size, st->limit) :
													 st->page_size, st->pit_id, st->search_after,
													 true), es);
	st->query = NULL;
}
