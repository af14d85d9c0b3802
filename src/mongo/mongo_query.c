/*-------------------------------------------------------------------------
 *
 * mongo_query.c
 *		What MongoDB can evaluate for the polyglot_mongo wrapper, and how it
 *		is written: find filters, sorts, projections, aggregation pipelines,
 *		the request options, and the EXPLAIN VERBOSE text of the request.
 *
 * Pushdown: comparisons (= <> < <= > >=) of a column with a constant or a
 * parameter, IN / = ANY (-> $in), NOT IN / <> ALL (-> $nin), IS [NOT] NULL,
 * boolean columns, and AND / OR of those, become an ordinary find filter
 * such as {"price": {"$gt": 10}}, which a MongoDB index can serve (never
 * $expr).  Values go into the filter as BSON values, never as text to be
 * parsed, so a string such as '{"$gt": ""}' is only ever matched literally.
 * Where MongoDB and SQL disagree the clause stays local: ordering of text
 * (MongoDB compares bytes, PostgreSQL a collation), dates and times (BSON
 * has milliseconds), and types without a native BSON form.  <> and NOT IN
 * exclude null and missing fields, as SQL's three-valued logic does.
 *
 * ORDER BY becomes the find's sort when every key is a column that MongoDB
 * orders as PostgreSQL does, with NULLs where MongoDB puts them (first
 * ascending, last descending) or a column without NULLs (declared NOT NULL,
 * or excluded by a pushed condition).  A LIMIT (plus OFFSET) becomes the
 * find's limit in a query of this table alone whose conditions all push.
 * count(*), count(col) and sum(int col) with GROUP BY on columns become an
 * aggregation pipeline ($match, $group) under the rules of
 * mongoGetForeignUpperPaths (mongo_fdw.c).
 *
 * The planner keeps what pushes as lists of Nodes (copyable into a plan);
 * the executor renders them as BSON with each execution's values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_aggregate.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "common/datum.h"
#include "pg_polyglot.h"
#include "mongo/mongo.h"

/* ---------------------------------------------------------------- pushdown */

/* The column a Var of the scanned relation stands for, or NULL */
static MongoColumn *
var_column(Expr *expr, RelOptInfo *baserel, MongoRelInfo *info)
{
	Var		   *var;

	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return NULL;
	var = (Var *) expr;
	if ((Index) var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0 || var->varattno > info->natts ||
		info->dropped[var->varattno - 1] || info->columns[var->varattno - 1].field == NULL)
		return NULL;
	return &info->columns[var->varattno - 1];
}

/* Types whose BSON form compares as SQL does, and for which operators */
bool
polyglot_mongo_pushable_type(Oid typid, bool ordering, Oid collation)
{
	Oid			base = getBaseType(typid);

	if (polyglot_number_type(base))
		return true;
	switch (base)
	{
		case BOOLOID:
		case UUIDOID:
			return !ordering;
		case TEXTOID:
		case VARCHAROID:
		case NAMEOID:
			/* MongoDB orders strings by bytes: only the C collation agrees */
			return !ordering || collation == C_COLLATION_OID || collation == POSIX_COLLATION_OID;
		default:
			return false;
	}
}

static const char *
mongo_operator(const char *opname, bool commuted)
{
	if (strcmp(opname, "=") == 0)
		return "$eq";
	if (strcmp(opname, "<>") == 0)
		return "$ne";
	if (strcmp(opname, "<") == 0)
		return commuted ? "$gt" : "$lt";
	if (strcmp(opname, "<=") == 0)
		return commuted ? "$gte" : "$lte";
	if (strcmp(opname, ">") == 0)
		return commuted ? "$lt" : "$gt";
	if (strcmp(opname, ">=") == 0)
		return commuted ? "$lte" : "$gte";
	return NULL;
}

static int
add_value(MongoRelInfo *info, Expr *expr)
{
	info->values = lappend(info->values, expr);
	return list_length(info->values) - 1;
}

/*
 * Is an expression a constant, or a constant array, holding NaN or an
 * infinity?  MongoDB orders NaN below every number where PostgreSQL puts
 * it above, and a server without decimal128 (FerretDB) has no numeric
 * infinity and drops the connection on a NaN: such a comparison is made
 * locally.
 */
static bool
const_nonfinite(Expr *expr)
{
	return IsA(expr, Const) && polyglot_const_nonfinite((Const *) expr);
}

/* polyglot_mongo_deparse_expr and the scan it deparses for, as a PolyglotDeparseItem */
typedef struct MongoDeparse
{
	RelOptInfo *baserel;
	MongoRelInfo *info;
} MongoDeparse;

static List *
deparse_item(Expr *expr, void *arg)
{
	MongoDeparse *d = (MongoDeparse *) arg;

	return polyglot_mongo_deparse_expr(expr, d->baserel, d->info);
}

/* The field of a boolean column, as a PolyglotBoolField */
static const char *
bool_field(Expr *expr, void *arg)
{
	MongoDeparse *d = (MongoDeparse *) arg;
	MongoColumn *col = var_column(expr, d->baserel, d->info);

	return col && getBaseType(col->typid) == BOOLOID ? col->field : NULL;
}

/*
 * The filter structure of an expression, or NIL when it cannot be pushed.
 * Forms: ("and"|"or", items), ("cmp", field, op, value#, typid),
 * ("null", field, is_null), ("in", field, value#, elemtype, negated),
 * ("bool", field, value).
 */
List *
polyglot_mongo_deparse_expr(Expr *expr, RelOptInfo *baserel, MongoRelInfo *info)
{
	MongoDeparse d = {baserel, info};
	MongoColumn *col;
	List	   *item;

	if (polyglot_deparse_boolean(expr, deparse_item, bool_field, &d, &item))
		return item;
	if (IsA(expr, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) expr;
		Expr	   *left,
				   *right;
		bool		commuted = false;
		const char *mop;
		char	   *opname;

		if (list_length(op->args) != 2)
			return NIL;
		left = linitial(op->args);
		right = lsecond(op->args);
		col = var_column(left, baserel, info);
		if (col == NULL)
		{
			col = var_column(right, baserel, info);
			right = left;
			commuted = true;
		}
		if (col == NULL || !polyglot_is_plain_value(right, baserel))
			return NIL;
		opname = get_opname(op->opno);
		mop = opname ? mongo_operator(opname, commuted) : NULL;
		if (mop == NULL ||
			!polyglot_mongo_pushable_type(col->typid,
										  strcmp(mop, "$eq") != 0 && strcmp(mop, "$ne") != 0,
										  op->inputcollid) ||
			!polyglot_mongo_pushable_type(exprType((Node *) right), false, InvalidOid) ||
			const_nonfinite(right))
			return NIL;
		return list_make5(makeString("cmp"), makeString(col->field), makeString((char *) mop),
						  makeInteger(add_value(info, right)),
						  makeInteger((int) exprType((Node *) right)));
	}
	if (IsA(expr, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) expr;
		Expr	   *array = lsecond(saop->args);
		char	   *opname = get_opname(saop->opno);
		bool		negated;
		Oid			elemtype;

		col = var_column(linitial(saop->args), baserel, info);
		if (col == NULL || !polyglot_is_plain_value(array, baserel) || opname == NULL)
			return NIL;
		if (saop->useOr && strcmp(opname, "=") == 0)
			negated = false;
		else if (!saop->useOr && strcmp(opname, "<>") == 0)
			negated = true;
		else
			return NIL;
		elemtype = get_element_type(exprType((Node *) array));
		if (!polyglot_mongo_pushable_type(col->typid, false, InvalidOid) ||
			!OidIsValid(elemtype) ||
			!polyglot_mongo_pushable_type(elemtype, false, InvalidOid) ||
			const_nonfinite(array))
			return NIL;
		return list_make5(makeString("in"), makeString(col->field),
						  makeInteger(add_value(info, array)), makeInteger((int) elemtype),
						  makeInteger(negated));
	}
	if (IsA(expr, NullTest))
	{
		NullTest   *nt = (NullTest *) expr;

		col = var_column(nt->arg, baserel, info);
		if (col == NULL || nt->argisrow)
			return NIL;
		return list_make3(makeString("null"), makeString(col->field),
						  makeInteger(nt->nulltesttype == IS_NULL));
	}
	return NIL;
}

/* Is a filter structure _id = value?  It finds one document at most. */
bool
polyglot_mongo_is_id_equality(List *item)
{
	return strcmp(strVal(linitial(item)), "cmp") == 0 &&
		strcmp(strVal(lsecond(item)), "_id") == 0 &&
		strcmp(strVal(lthird(item)), "$eq") == 0;
}

/* ---------------------------------------------------------------- filter building */

static bool
is_text_type(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == TEXTOID || base == VARCHAROID;
}

/*
 * The condition on _id of a text value: {"$in": [value]}, and the ObjectId
 * it spells too when it is 24 hex digits (text _id columns show ObjectIds
 * as their hex).
 */
static void
append_text_id_match(bson_t *cond, const char *s)
{
	bson_t		arr;

	bson_append_array_begin(cond, "$in", 3, &arr);
	bson_append_utf8(&arr, "0", 1, s, -1);
	if (bson_oid_is_valid(s, strlen(s)))
	{
		bson_oid_t	oid;

		bson_oid_init_from_string(&oid, s);
		bson_append_oid(&arr, "1", 1, &oid);
	}
	bson_append_array_end(cond, &arr);
}

static void append_filter(bson_t *doc, List *item, Datum *values, bool *nulls, int flags,
						  bool unknown_ok);

/* Appends one value of the filter under key; NULL for an unknown parameter. */
static void
append_value(bson_t *doc, const char *key, Datum value, bool isnull, Oid typid, int flags)
{
	char	   *error = NULL;

	if (!polyglot_bson_append_datum(doc, key, -1, value, isnull, typid, flags, &error))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("a value of the WHERE clause cannot be sent to MongoDB: %s", error)));
}

/*
 * Appends {_id: value} matching value literally (polyglot_bson_append_eq):
 * a jsonb or composite _id such as {"$ne": null} is no operator.  Returns
 * false, with *error set, when BSON cannot hold the value.
 */
static bool
append_id_eq_datum(bson_t *doc, Datum value, Oid typid, int flags, char **error)
{
	bson_t		tmp = BSON_INITIALIZER;
	bson_iter_t iter;
	bool		ok;

	PG_TRY();
	{
		ok = polyglot_bson_append_datum(&tmp, "_id", 3, value, false, typid, flags, error);
	}
	PG_CATCH();
	{
		bson_destroy(&tmp);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (ok && bson_iter_init_find(&iter, &tmp, "_id"))
		polyglot_bson_append_eq(doc, "_id", 3, bson_iter_value(&iter));
	bson_destroy(&tmp);
	return ok;
}

static void
append_filter(bson_t *doc, List *item, Datum *values, bool *nulls, int flags, bool unknown_ok)
{
	const char *kind = strVal(linitial(item));

	if (strcmp(kind, "and") == 0 || strcmp(kind, "or") == 0)
	{
		List	   *items = (List *) lsecond(item);
		bson_t		arr,
					child;
		ListCell   *lc;
		int			i = 0;

		bson_append_array_begin(doc, strcmp(kind, "and") == 0 ? "$and" : "$or", -1, &arr);
		foreach(lc, items)
		{
			char		key[16];

			snprintf(key, sizeof(key), "%d", i++);
			bson_append_document_begin(&arr, key, -1, &child);
			append_filter(&child, lfirst(lc), values, nulls, flags, unknown_ok);
			bson_append_document_end(&arr, &child);
		}
		bson_append_array_end(doc, &arr);
	}
	else if (strcmp(kind, "cmp") == 0)
	{
		const char *field = strVal(lsecond(item));
		const char *op = strVal(lthird(item));
		int			v = intVal(lfourth(item));
		Oid			typid = (Oid) intVal(list_nth(item, 4));
		bson_t		cond;

		if (nulls[v] && !unknown_ok)
		{
			/* a comparison with NULL is true for no row */
			bson_t		arr;

			bson_append_document_begin(doc, field, -1, &cond);
			bson_append_array_begin(&cond, "$in", -1, &arr);
			bson_append_array_end(&cond, &arr);
			bson_append_document_end(doc, &cond);
			return;
		}
		bson_append_document_begin(doc, field, -1, &cond);
		if (strcmp(op, "$eq") == 0 && strcmp(field, "_id") == 0 && !nulls[v] &&
			is_text_type(typid))
			append_text_id_match(&cond, TextDatumGetCString(values[v]));
		else if (strcmp(op, "$ne") == 0)
		{
			/* SQL's <> is not true for NULL: leave null and missing out */
			bson_t		arr;

			bson_append_array_begin(&cond, "$nin", -1, &arr);
			append_value(&arr, "0", values[v], nulls[v], typid, flags);
			bson_append_null(&arr, "1", -1);
			bson_append_array_end(&cond, &arr);
		}
		else if (nulls[v] && unknown_ok)
			bson_append_utf8(&cond, op, -1, "(parameter)", -1);	/* EXPLAIN, no value yet */
		else
			append_value(&cond, op, values[v], nulls[v], typid, flags);
		bson_append_document_end(doc, &cond);
	}
	else if (strcmp(kind, "in") == 0)
	{
		const char *field = strVal(lsecond(item));
		int			v = intVal(lthird(item));
		Oid			elemtype = (Oid) intVal(lfourth(item));
		bool		negated = intVal(list_nth(item, 4)) != 0;
		bson_t		cond,
					arr;

		Datum	   *elems = NULL;
		bool	   *enulls = NULL;
		int			n = 0,
					i,
					k = 0;
		bool		any_null = false;

		if (!nulls[v])
		{
			int16		typlen;
			bool		typbyval;
			char		typalign;

			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			deconstruct_array(DatumGetArrayTypeP(values[v]), elemtype, typlen, typbyval,
							  typalign, &elems, &enulls, &n);
			for (i = 0; i < n; i++)
				any_null |= enulls[i];
		}
		bson_append_document_begin(doc, field, -1, &cond);
		if (nulls[v] && unknown_ok)
		{
			bson_append_utf8(&cond, negated ? "$nin" : "$in", -1, "(parameter)", -1);
			bson_append_document_end(doc, &cond);
			return;
		}
		/* x <> ALL (..., NULL) and x IN (NULL array) are never true */
		if (nulls[v] || (negated && any_null))
		{
			bson_append_array_begin(&cond, "$in", -1, &arr);
			bson_append_array_end(&cond, &arr);
			bson_append_document_end(doc, &cond);
			return;
		}
		bson_append_array_begin(&cond, negated ? "$nin" : "$in", -1, &arr);
		for (i = 0; i < n; i++)
		{
			char		key[16];

			/* a NULL element never equals anything */
			if (enulls[i])
				continue;
			snprintf(key, sizeof(key), "%d", k++);
			append_value(&arr, key, elems[i], false, elemtype, flags);
		}
		if (negated)
		{
			char		key[16];

			/* SQL's NOT IN is not true for NULL: leave null and missing out */
			snprintf(key, sizeof(key), "%d", k++);
			bson_append_null(&arr, key, -1);
		}
		bson_append_array_end(&cond, &arr);
		bson_append_document_end(doc, &cond);
	}
	else if (strcmp(kind, "null") == 0)
	{
		const char *field = strVal(lsecond(item));

		if (intVal(lthird(item)))
			bson_append_null(doc, field, -1);	/* null or missing */
		else
		{
			bson_t		cond;

			bson_append_document_begin(doc, field, -1, &cond);
			bson_append_null(&cond, "$ne", -1);
			bson_append_document_end(doc, &cond);
		}
	}
	else if (strcmp(kind, "bool") == 0)
		bson_append_bool(doc, strVal(lsecond(item)), -1, intVal(lthird(item)) != 0);
	else
		elog(ERROR, "pg_polyglot: unknown filter item \"%s\"", kind);
}

/*
 * The filter of a scan with its values: {"$and": [...]} of the pushed
 * clauses, or {} without any.  With explain_only, parameters are not known
 * yet and show as "(parameter)".
 */
bson_t *
polyglot_mongo_build_filter(List *filter, List *value_states, ExprContext *econtext, int flags,
							bool explain_only)
{
	bson_t	   *doc = bson_new();
	int			n = list_length(value_states);
	Datum	   *values = palloc0(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, value_states)
	{
		ExprState  *state = (ExprState *) lfirst(lc);

		if (explain_only && !IsA(state->expr, Const))
			nulls[i] = true;
		else
			values[i] = ExecEvalExpr(state, econtext, &nulls[i]);
		i++;
	}
	if (filter != NIL)
	{
		PG_TRY();
		{
			List	   *items = (List *) lsecond(filter);
			List	   *item = (List *) linitial(items);

			/*
			 * One condition goes as itself, and _id = value as {_id: value}:
			 * the form FerretDB serves from its _id index (string _ids on
			 * SQLite), where MongoDB takes any form.  A text value of 24 hex
			 * digits keeps the {$in: [text, ObjectId]} match.
			 */
			if (list_length(items) > 1)
				append_filter(doc, filter, values, nulls, flags, explain_only);
			else if (polyglot_mongo_is_id_equality(item) &&
					 !nulls[intVal(lfourth(item))] &&
					 !(is_text_type((Oid) intVal(list_nth(item, 4))) &&
					   bson_oid_is_valid(TextDatumGetCString(values[intVal(lfourth(item))]),
										 strlen(TextDatumGetCString(values[intVal(lfourth(item))])))))
			{
				char	   *error = NULL;

				if (!append_id_eq_datum(doc, values[intVal(lfourth(item))],
										(Oid) intVal(list_nth(item, 4)), flags, &error))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("a value of the WHERE clause cannot be sent to MongoDB: %s", error)));
			}
			else
				append_filter(doc, item, values, nulls, flags, explain_only);
		}
		PG_CATCH();
		{
			bson_destroy(doc);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return doc;
}

/* ---------------------------------------------------------------- sort */

/*
 * Can the column hold no NULL in this scan?  When it is declared NOT NULL,
 * or a pushed-down condition of the WHERE clause rejects NULL and missing
 * fields (a comparison, IN, IS NOT NULL or a boolean test on it).  MongoDB
 * sorts null first and $sum skips it, where SQL sorts NULL last and sums
 * only NULLs to NULL: without NULLs the two agree.
 */
bool
polyglot_mongo_column_not_null(MongoRelInfo *info, int attnum)
{
	const char *field = info->columns[attnum - 1].field;
	ListCell   *lc;

	if (info->notnull[attnum - 1])
		return true;
	foreach(lc, info->items)
	{
		List	   *item = (List *) lfirst(lc);
		const char *kind = strVal(linitial(item));

		if (strcmp(kind, "and") == 0 || strcmp(kind, "or") == 0)
			continue;
		if (strcmp(strVal(lsecond(item)), field) != 0)
			continue;
		if (strcmp(kind, "null") != 0 || intVal(lthird(item)) == 0)
			return true;
	}
	return false;
}

/* The attnum of a Var of the scanned relation that maps to a field, or 0 */
int
polyglot_mongo_column_attnum(Expr *expr, RelOptInfo *baserel, MongoRelInfo *info)
{
	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (var_column(expr, baserel, info) == NULL)
		return 0;
	return ((Var *) expr)->varattno;
}

/* polyglot_mongo_column_attnum as a PolyglotColumnAttnum */
static int
column_attnum(Expr *expr, RelOptInfo *baserel, void *info)
{
	return polyglot_mongo_column_attnum(expr, baserel, (MongoRelInfo *) info);
}

/*
 * Types MongoDB sorts as PostgreSQL does: integers, and text in the C
 * collation.  Not floating point or numeric: MongoDB puts NaN below every
 * number, PostgreSQL above.
 */
static bool
sortable_type(Oid typid, Oid collation)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return true;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return false;
		default:
			return polyglot_mongo_pushable_type(typid, true, collation);
	}
}

/*
 * The MongoDB sort of pathkeys, as (field, 1 | -1) pairs, or NIL when one
 * of them cannot be sorted by the server as PostgreSQL would: a key that is
 * not a column with a field, a type that orders differently (see
 * sortable_type), an operator family that is not
 * the type's default, or NULLs placed where MongoDB does not put them
 * (first ascending, last descending) in a column that may hold them.
 */
List *
polyglot_mongo_sort_spec(RelOptInfo *baserel, MongoRelInfo *info, List *pathkeys)
{
	List	   *spec = NIL;
	List	   *seen = NIL;
	ListCell   *lc;

	foreach(lc, pathkeys)
	{
		PathKey    *pk = (PathKey *) lfirst(lc);
		EquivalenceClass *ec = pk->pk_eclass;
		int			attnum = polyglot_pathkey_attnum(pk, baserel, column_attnum, info);
		MongoColumn *col;
		bool		asc = polyglot_pathkey_ascending(pk);
		Oid			opclass;

		if (attnum == 0)
			return NIL;
		col = &info->columns[attnum - 1];
		if (!sortable_type(col->typid, ec->ec_collation))
			return NIL;
		opclass = GetDefaultOpClass(getBaseType(col->typid), BTREE_AM_OID);
		if (!OidIsValid(opclass) || get_opclass_family(opclass) != pk->pk_opfamily)
			return NIL;
		if (asc != pk->pk_nulls_first && !polyglot_mongo_column_not_null(info, attnum))
			return NIL;
		/* a second key on the same field changes nothing */
		if (list_member(seen, makeString(col->field)))
			continue;
		seen = lappend(seen, makeString(col->field));
		spec = lappend(spec, list_make2(makeString(col->field), makeInteger(asc ? 1 : -1)));
	}
	return spec;
}

/* ---------------------------------------------------------------- aggregates */

/*
 * The kind of an aggregate MongoDB's $group computes as SQL does, or NULL:
 * count(*), and count(col) and sum(col) of a column that holds no NULL in
 * this scan (see polyglot_mongo_column_not_null), sum of integers only (a
 * floating-point sum depends on the order of addition, and numeric may be
 * decimal128 or double).  *field is the column's field.
 */
const char *
polyglot_mongo_aggregate_kind(Aggref *agg, RelOptInfo *baserel, MongoRelInfo *info,
							  const char **field)
{
	char	   *name;
	int			attnum = 0;

	*field = NULL;
	if (agg->aggdistinct || agg->aggorder || agg->aggfilter || agg->aggvariadic ||
		agg->aggkind != AGGKIND_NORMAL || agg->aggsplit != AGGSPLIT_SIMPLE ||
		get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE)
		return NULL;
	name = get_func_name(agg->aggfnoid);
	if (strcmp(name, "count") == 0 && agg->aggstar)
		return MONGO_AGG_COUNT;
	if (list_length(agg->args) != 1)
		return NULL;
	attnum = polyglot_mongo_column_attnum(((TargetEntry *) linitial(agg->args))->expr, baserel,
										  info);
	if (attnum == 0 || !polyglot_mongo_column_not_null(info, attnum))
		return NULL;
	*field = info->columns[attnum - 1].field;
	if (strcmp(name, "count") == 0)
		return MONGO_AGG_COUNT;
	if (strcmp(name, "sum") == 0)
	{
		Oid			base = getBaseType(info->columns[attnum - 1].typid);

		if (base == INT2OID || base == INT4OID || base == INT8OID)
			return MONGO_AGG_SUM;
	}
	return NULL;
}

/* ---------------------------------------------------------------- requests */

/* The number of group keys among an aggregation's outputs */
int
polyglot_mongo_aggregate_group_count(List *aggregate)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, aggregate)
		if (strcmp(strVal(linitial((List *) lfirst(lc))), MONGO_AGG_GROUP) == 0)
			n++;
	return n;
}

/*
 * Appends stage number *stages, {op: doc}, to an aggregation pipeline (an
 * array: its keys are "0", "1", ...) and counts it.  doc is copied.
 */
static void
append_stage(bson_t *pipeline, int *stages, const char *op, const bson_t *doc)
{
	bson_t		stage;
	char		idx[16];

	snprintf(idx, sizeof(idx), "%d", (*stages)++);
	bson_append_document_begin(pipeline, idx, -1, &stage);
	bson_append_document(&stage, op, -1, doc);
	bson_append_document_end(pipeline, &stage);
}

/*
 * The aggregation pipeline: [{$match: filter}, {$group: {_id: keys, aN:
 * {$sum: 1 | "$field"}}}].  One key groups by its value, so that NULL and a
 * missing field are one group as in SQL; several keys make a subdocument
 * {gN: "$field"} (only pushed for columns without NULLs).  Output N is
 * named gN or aN by its position in the scan's target list.
 */
bson_t *
polyglot_mongo_build_pipeline(List *aggregate, const bson_t *filter)
{
	bson_t	   *pipeline = bson_new();
	bson_t		stage,
				group,
				id,
				acc;
	ListCell   *lc;
	int			ngroups = polyglot_mongo_aggregate_group_count(aggregate);
	int			n = 0;
	char		key[16];
	char		idx[16];
	int			stages = 0;

	if (!bson_empty(filter))
		append_stage(pipeline, &stages, "$match", filter);
	snprintf(idx, sizeof(idx), "%d", stages++);
	bson_append_document_begin(pipeline, idx, -1, &stage);
	bson_append_document_begin(&stage, "$group", 6, &group);
	if (ngroups == 0)
		bson_append_null(&group, "_id", 3);
	else if (ngroups > 1)
		bson_append_document_begin(&group, "_id", 3, &id);
	foreach(lc, aggregate)
	{
		List	   *out = (List *) lfirst(lc);
		const char *kind = strVal(linitial(out));
		char	   *path = psprintf("$%s", strVal(lsecond(out)));

		if (strcmp(kind, MONGO_AGG_GROUP) == 0)
		{
			snprintf(key, sizeof(key), "g%d", n);
			bson_append_utf8(ngroups > 1 ? &id : &group, ngroups > 1 ? key : "_id", -1,
							 path, -1);
		}
		n++;
	}
	if (ngroups > 1)
		bson_append_document_end(&group, &id);
	n = 0;
	foreach(lc, aggregate)
	{
		List	   *out = (List *) lfirst(lc);
		const char *kind = strVal(linitial(out));
		const char *field = strVal(lsecond(out));

		snprintf(key, sizeof(key), "a%d", n++);
		if (strcmp(kind, MONGO_AGG_GROUP) == 0)
			continue;
		bson_append_document_begin(&group, key, -1, &acc);
		if (strcmp(kind, MONGO_AGG_SUM) == 0)
			bson_append_utf8(&acc, "$sum", 4, psprintf("$%s", field), -1);
		else
			bson_append_int32(&acc, "$sum", 4, 1);	/* count(col) has no NULLs */
		bson_append_document_end(&group, &acc);
	}
	bson_append_document_end(&stage, &group);
	bson_append_document_end(pipeline, &stage);
	return pipeline;
}

/* {"field": 1, ...}, or none when the whole document is needed */
bson_t *
polyglot_mongo_build_projection(MongoScanState *st)
{
	bson_t	   *proj = bson_new();
	ListCell   *lc;

	if (st->whole_document)
		return proj;
	/* always _id: a document without any wanted field still counts as a row */
	bson_append_int32(proj, "_id", 3, 1);
	foreach(lc, st->fields)
	{
		const char *f = (const char *) lfirst(lc);

		if (strcmp(f, "_id") != 0)
			bson_append_int32(proj, f, -1, 1);
	}
	return proj;
}

/* {"field": 1 | -1, ...} of the pushed ORDER BY */
bson_t *
polyglot_mongo_build_sort(List *sort)
{
	bson_t	   *doc = bson_new();
	ListCell   *lc;

	foreach(lc, sort)
	{
		List	   *key = (List *) lfirst(lc);

		bson_append_int32(doc, strVal(linitial(key)), -1, intVal(lsecond(key)));
	}
	return doc;
}

/*
 * A find as the aggregation pipeline FerretDB is sent instead (the scan's
 * find_pipeline): [{$match: filter}, {$sort: sort}, {$limit: n}], each stage
 * only when the find has it, and no $project.  FerretDB 1.x runs a find's
 * filter, sort and limit and these stages through the same code (its
 * filter, sort and limit iterators, the filter and the sort offered to its
 * backend alike), so the same documents come in the same order; but a find
 * also passes every document through its projection step, which copies the
 * document even when there is no projection, where this pipeline returns
 * the stored documents as they are: a third less time for a whole
 * collection, measured (bench/scan_mongo.sh).  Documents come whole: a
 * projection costs FerretDB more than the bytes it saves.
 */
bson_t *
polyglot_mongo_build_find_pipeline(MongoScanState *st, const bson_t *filter)
{
	bson_t	   *pipeline = bson_new();
	bson_t		stage;
	char		idx[16];
	int			stages = 0;

	if (!bson_empty(filter))
		append_stage(pipeline, &stages, "$match", filter);
	if (st->sort)
	{
		bson_t	   *sort = polyglot_mongo_build_sort(st->sort);

		append_stage(pipeline, &stages, "$sort", sort);
		bson_destroy(sort);
	}
	if (st->limit > 0)
	{
		snprintf(idx, sizeof(idx), "%d", stages++);
		bson_append_document_begin(pipeline, idx, -1, &stage);
		bson_append_int64(&stage, "$limit", 6, st->limit);
		bson_append_document_end(pipeline, &stage);
	}
	return pipeline;
}

/*
 * The options of a find or aggregate besides its filter, projection, sort
 * and limit.  On MongoDB: strings compare by bytes, as planned, whatever
 * the collection's default collation, and a big $group may spill to disk.
 * FerretDB has no collations and takes neither option.
 */
bson_t *
polyglot_mongo_build_options(MongoScanState *st)
{
	bson_t	   *opts = bson_new();

	if (st->conn->ferretdb)
		return opts;
	BCON_APPEND(opts, "collation", "{", "locale", BCON_UTF8("simple"), "}");
	if (st->aggregate)
		BCON_APPEND(opts, "allowDiskUse", BCON_BOOL(true));
	return opts;
}

/* ---------------------------------------------------------------- EXPLAIN */

/* A document as relaxed Extended JSON; an array as [doc, doc, ...] */
static void
explain_bson(const char *label, const bson_t *doc, bool array, ExplainState *es)
{
	StringInfoData buf;
	bson_iter_t iter;
	char	   *json;

	if (!array)
	{
		json = bson_as_relaxed_extended_json(doc, NULL);
		ExplainPropertyText(label, json, es);
		bson_free(json);
		return;
	}
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	if (bson_iter_init(&iter, doc))
		while (bson_iter_next(&iter))
		{
			const uint8_t *data;
			uint32_t	len;
			bson_t		elem;

			if (!BSON_ITER_HOLDS_DOCUMENT(&iter))
				continue;
			bson_iter_document(&iter, &len, &data);
			if (!bson_init_static(&elem, data, len))
				continue;
			json = bson_as_relaxed_extended_json(&elem, NULL);
			appendStringInfo(&buf, "%s%s", buf.len > 1 ? ", " : "", json);
			bson_free(json);
		}
	appendStringInfoChar(&buf, ']');
	ExplainPropertyText(label, buf.data, es);
}

static void
explain_options(MongoScanState *st, ExplainState *es)
{
	bson_t	   *opts = polyglot_mongo_build_options(st);

	if (!bson_empty(opts))
		explain_bson("Remote Options", opts, false, es);
	bson_destroy(opts);
}

/*
 * The request as it is sent: the filter, projection, sort and limit of a
 * find, or the pipeline of an aggregation (on FerretDB a find's too).  Parameters not known yet (a
 * plain EXPLAIN of a prepared statement or of a nested loop's inner side)
 * show as "(parameter)".
 */
void
polyglot_mongo_explain_request(MongoScanState *st, ExprContext *econtext, ExplainState *es)
{
	bson_t	   *filter;
	bson_t	   *doc;

	filter = polyglot_mongo_build_filter(st->filter, st->value_states, econtext, st->bson_flags,
										 !es->analyze);
	if (st->aggregate)
	{
		doc = polyglot_mongo_build_pipeline(st->aggregate, filter);
		explain_bson("Remote Pipeline", doc, true, es);
		bson_destroy(doc);
		bson_destroy(filter);
		explain_options(st, es);
		return;
	}
	if (st->find_pipeline)
	{
		doc = polyglot_mongo_build_find_pipeline(st, filter);
		explain_bson("Remote Pipeline", doc, true, es);
		bson_destroy(doc);
		bson_destroy(filter);
		explain_options(st, es);
		return;
	}
	explain_bson("Remote Filter", filter, false, es);
	bson_destroy(filter);
	doc = polyglot_mongo_build_projection(st);
	if (bson_empty(doc))
		ExplainPropertyText("Remote Projection", "(whole documents)", es);
	else
		explain_bson("Remote Projection", doc, false, es);
	bson_destroy(doc);
	if (st->sort)
	{
		doc = polyglot_mongo_build_sort(st->sort);
		explain_bson("Remote Sort", doc, false, es);
		bson_destroy(doc);
	}
	if (st->limit > 0)
		ExplainPropertyInteger("Remote Limit", NULL, st->limit, es);
	explain_options(st, es);
}

/* ---------------------------------------------------------------- writes */

/* {_id: value}, where a text _id of 24 hex digits also matches the ObjectId */
void
polyglot_mongo_append_id_selector(bson_t *selector, Datum id, Oid typid, int flags)
{
	char	   *error = NULL;

	if (is_text_type(typid))
	{
		bson_t		cond;

		bson_append_document_begin(selector, "_id", 3, &cond);
		append_text_id_match(&cond, TextDatumGetCString(id));
		bson_append_document_end(selector, &cond);
		return;
	}
	if (!append_id_eq_datum(selector, id, typid, flags, &error))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("_id cannot be sent to MongoDB: %s", error)));
}
