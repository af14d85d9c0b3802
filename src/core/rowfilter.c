/*-------------------------------------------------------------------------
 *
 * rowfilter.c
 *		A route's row filter (route option "where"): a boolean SQL
 *		expression over the source table's columns.
 *
 * The filter is parsed once with the caller's search_path when sync()
 * creates the route, checked (boolean; no subquery, aggregate, window or
 * set-returning function; immutable and stable functions only; columns of
 * the table only), and stored as PostgreSQL prints it back under the
 * worker's fixed settings: function and operator names that are not in
 * pg_catalog come schema-qualified, and literals in ISO form, so the text
 * means the same to the worker, to the capture triggers' WHEN clauses and
 * after a dump and restore.
 *
 * Everything that reads a route's rows takes the filter as text qualified
 * by the alias the query gives the table (polyglot_where_text()): the
 * worker's read of a batch's rows (a row outside it reads as deleted),
 * the backfill's keys, verify, TRUNCATE's keys, and the capture triggers
 * (WHEN on NEW and OLD), which record a change only when the row matched
 * before or after it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_clause.h"
#include "parser/parse_collate.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "pg_polyglot.h"
#include "core/core.h"

PG_FUNCTION_INFO_V1(polyglot_where_sql);

/* For errors from the parser: positions are in the filter, not the statement */
typedef struct WhereParseContext
{
	const char *sql;			/* what was parsed */
	const char *where;			/* the option's text */
} WhereParseContext;

static void
where_error_callback(void *arg)
{
	WhereParseContext *ctx = (WhereParseContext *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(ctx->sql);
	}
	errcontext("route option \"where\": %s", ctx->where);
}

/* Only the columns of the row: no whole-row or system column */
static bool
only_user_columns(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varattno <= 0)
		return true;
	return expression_tree_walker(node, only_user_columns, context);
}

/* Is an object (of catalog classid) in a temporary schema? */
static bool
in_temp_schema(Oid classid, Oid objid)
{
	ObjectAddress address;
	Oid			nsp;

	if (!OidIsValid(objid))
		return false;
	ObjectAddressSet(address, classid, objid);
	nsp = get_object_namespace(&address);
	return OidIsValid(nsp) && isAnyTempNamespace(nsp);
}

static bool
temp_function(Oid funcid, void *context)
{
	return in_temp_schema(ProcedureRelationId, funcid);
}

/*
 * Something of a temporary schema: a function, an operator, a type, a
 * collation.  (The capture triggers' WHEN would depend on it, and be
 * dropped with it at the end of its session, where no event trigger sees.)
 */
static bool
uses_temp_objects(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, temp_function, context))
		return true;
	if ((IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr)) &&
		in_temp_schema(OperatorRelationId, ((OpExpr *) node)->opno))
		return true;
	if (IsA(node, ScalarArrayOpExpr) &&
		in_temp_schema(OperatorRelationId, ((ScalarArrayOpExpr *) node)->opno))
		return true;
	if (IsA(node, CollateExpr) &&
		in_temp_schema(CollationRelationId, ((CollateExpr *) node)->collOid))
		return true;
	/* where types come in: constants, casts, what functions return */
	if ((IsA(node, Const) || IsA(node, RelabelType) || IsA(node, CoerceViaIO) ||
		 IsA(node, ArrayCoerceExpr) || IsA(node, CoerceToDomain) || IsA(node, FuncExpr) ||
		 IsA(node, OpExpr) || IsA(node, RowExpr)) &&
		(in_temp_schema(TypeRelationId, exprType(node)) ||
		 in_temp_schema(CollationRelationId, exprCollation(node))))
		return true;
	return expression_tree_walker(node, uses_temp_objects, context);
}

static void
where_error(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("route option \"where\" %s", message),
			 detail ? errdetail("%s", detail) : 0));
}

/*
 * Parses a filter against the table rel: the checked, transformed
 * expression.  Names resolve with the current search_path.
 */
static Node *
parse_where(Relation rel, const char *where)
{
	WhereParseContext ctx;
	ErrorContextCallback errcb;
	List	   *parsed;
	SelectStmt *stmt;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;

	ctx.where = where;
	ctx.sql = psprintf("SELECT WHERE %s", where);
	errcb.callback = where_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	parsed = raw_parser(ctx.sql, RAW_PARSE_DEFAULT);
	/* exactly "SELECT WHERE <expression>": nothing else came with it */
	if (list_length(parsed) != 1 ||
		!IsA(((RawStmt *) linitial(parsed))->stmt, SelectStmt))
		where_error("must be one boolean expression", NULL);
	stmt = (SelectStmt *) ((RawStmt *) linitial(parsed))->stmt;
	if (stmt->op != SETOP_NONE || stmt->whereClause == NULL || stmt->targetList != NIL ||
		stmt->fromClause != NIL || stmt->distinctClause != NIL || stmt->intoClause != NULL ||
		stmt->groupClause != NIL || stmt->havingClause != NULL || stmt->windowClause != NIL ||
		stmt->valuesLists != NIL || stmt->sortClause != NIL || stmt->limitOffset != NULL ||
		stmt->limitCount != NULL || stmt->lockingClause != NIL || stmt->withClause != NULL)
		where_error("must be one boolean expression", NULL);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = ctx.sql;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
	addNSItemToQuery(pstate, nsitem, true, true, true);
	expr = transformWhereClause(pstate, stmt->whereClause, EXPR_KIND_WHERE, "WHERE");
	assign_expr_collations(pstate, expr);

	if (pstate->p_hasSubLinks || checkExprHasSubLink(expr))
		where_error("cannot use a subquery",
					"The filter is evaluated on the changed row alone: a change to another table would not evaluate it again.");
	if (contain_volatile_functions(expr))
		where_error("can use immutable and stable functions only",
					"A volatile function could answer otherwise when the worker reads the row than when the row changed.");
	if (only_user_columns(expr, NULL))
		where_error("can use the table's columns only, not the whole row or a system column", NULL);
	if (uses_temp_objects(expr, NULL))
		where_error("cannot use a temporary function, operator or type",
					"They go with the session that made them, and the capture triggers with them.");
	free_parsestate(pstate);
	error_context_stack = errcb.previous;
	return expr;
}

/*
 * A route's filter as text, qualified by alias (unqualified without one),
 * printed under the worker's fixed settings (search_path pg_catalog: names
 * from other schemas come qualified; literals in ISO form).  The filter is
 * parsed under the same settings (a stored filter, printed so), or with
 * the session's (as_given: the text a user gave sync(), whose names
 * resolve with their search_path and literals with their DateStyle).
 */
char *
polyglot_where_text(Oid relid, const char *where, const char *alias, bool as_given)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Node	   *expr;
	List	   *dpcontext;
	int			level = -1;
	char	   *result;

	if (!as_given)
		level = polyglot_fix_settings(false);
	expr = parse_where(rel, where);
	if (as_given)
		level = polyglot_fix_settings(false);
	dpcontext = deparse_context_for(alias ? alias : RelationGetRelationName(rel), relid);
	/* with its implicit casts: the text calls the very functions it meant */
	result = deparse_expression(expr, dpcontext, alias != NULL, true);
	AtEOXact_GUC(true, level);
	table_close(rel, NoLock);
	return result;
}

/*
 * polyglot._where_sql(source regclass, filter text, alias text) returns
 * text: a stored filter checked and printed (see polyglot_where_text), the
 * columns qualified by alias unless it is NULL.
 */
Datum
polyglot_where_sql(PG_FUNCTION_ARGS)
{
	char	   *alias;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	alias = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	PG_RETURN_TEXT_P(cstring_to_text(polyglot_where_text(PG_GETARG_OID(0),
														 text_to_cstring(PG_GETARG_TEXT_PP(1)),
														 alias, false)));
}

/*
 * The filter of a route for the worker's and verify's queries, which call
 * the table t, or NULL when the route has none; worked out once per
 * loaded route, in a transaction.
 */
const char *
polyglot_route_filter(PolyglotRoute *route)
{
	char	   *where;

	if (route->filter_done)
		return route->filter;
	where = polyglot_route_option_text(route->options, "where");
	if (where != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(route));

		route->filter = polyglot_where_text(route->source_relid, where, "t", false);
		MemoryContextSwitchTo(old);
	}
	route->filter_done = true;
	return route->filter;
}

/*
 * The options given to sync() with their "where" as the route stores it,
 * parsed as its caller means it: with their search_path and DateStyle.
 * Anything but a non-empty string is left for the check of the options to
 * report.
 */
Jsonb *
polyglot_where_as_given(Oid relid, Jsonb *options)
{
	JsonbValue	v;
	StringInfoData buf;
	Jsonb	   *pair;

	if (!JB_ROOT_IS_OBJECT(options) ||
		getKeyJsonValueFromContainer(&options->root, "where", 5, &v) == NULL ||
		v.type != jbvString || v.val.string.len == 0)
		return options;
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"where\": ");
	escape_json(&buf, polyglot_where_text(relid, pnstrdup(v.val.string.val, v.val.string.len),
										  NULL, true));
	appendStringInfoChar(&buf, '}');
	pair = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(options),
											  JsonbPGetDatum(pair)));
}
