/*-------------------------------------------------------------------------
 *
 * document.c
 *		Documents built from related tables: the route options "include"
 *		(many-to-one: the row a foreign key of the row points to, as an
 *		object) and "embed" (one-to-many: the rows of a table that point to
 *		the row, as an array of objects), nested to any depth.
 *
 * (Work in progress for issue 18: the read side.  sync() normalises the
 * options (polyglot_document_as_given(): tables schema-qualified, "on"
 * worked out from the foreign key); the delivered row gets one jsonb value
 * per field, computed by a subquery (polyglot_route_fields()), which the
 * worker, the backfill and verify all read through rows_query().  What
 * re-delivers a document when a related row changes is still to come.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "executor/spi.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonfuncs.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"

#include "pg_polyglot.h"
#include "core/core.h"

/* A value of a JSON object, or NULL */
static JsonbValue *
object_value(JsonbContainer *obj, const char *name)
{
	return getKeyJsonValueFromContainer(obj, name, strlen(name), NULL);
}

static char *
string_value(JsonbContainer *obj, const char *name)
{
	JsonbValue *v = object_value(obj, name);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Is name in a JSON array of strings? */
static bool
array_has(JsonbValue *array, const char *name)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;

	if (array == NULL || array->type != jbvBinary)
		return false;
	it = JsonbIteratorInit(array->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		if (tok == WJB_ELEM && e.type == jbvString &&
			e.val.string.len == (int) strlen(name) &&
			memcmp(e.val.string.val, name, e.val.string.len) == 0)
			return true;
	return false;
}

/* One field of a document as sync() stores it: "include"'s, then "embed"'s */
typedef struct StoredField
{
	char	   *name;
	JsonbContainer *spec;		/* {"table": ..., "on": ..., ...} */
	bool		embed;
} StoredField;

/* The fields of a stored spec (a route's options, or a field's own) */
static List *
stored_fields(JsonbContainer *spec)
{
	static const char *const kinds[] = {"include", "embed"};
	List	   *result = NIL;
	int			k;

	for (k = 0; k < 2; k++)
	{
		JsonbValue *fields = object_value(spec, kinds[k]);
		JsonbIterator *it;
		JsonbValue	key,
					val;
		JsonbIteratorToken tok;

		if (fields == NULL || fields->type != jbvBinary)
			continue;
		it = JsonbIteratorInit(fields->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			StoredField *f;

			if (tok != WJB_KEY)
				continue;
			f = palloc(sizeof(StoredField));
			f->name = pnstrdup(key.val.string.val, key.val.string.len);
			tok = JsonbIteratorNext(&it, &val, true);
			if (tok != WJB_VALUE || val.type != jbvBinary)
				elog(ERROR, "pg_polyglot: field \"%s\" of a route is not an object", f->name);
			f->spec = val.val.binary.data;
			f->embed = (k == 1);
			result = lappend(result, f);
		}
	}
	return result;
}

static void build_fields(JsonbContainer *spec, const char *alias, int depth, int *naliases,
						 StringInfo out);

/*
 * The SELECT list of a related table's object: its columns ("columns", or
 * all but "exclude"), qualified by alias, then its own nested fields.
 */
static void
object_columns(JsonbContainer *spec, Oid relid, const char *alias, int depth, int *naliases,
			   StringInfo out)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	JsonbValue *columns = object_value(spec, "columns");
	JsonbValue *exclude = object_value(spec, "exclude");
	bool		first = true;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			continue;
		if (columns && !array_has(columns, name))
			continue;
		if (exclude && array_has(exclude, name))
			continue;
		appendStringInfo(out, "%s%s.%s", first ? "" : ", ", alias, quote_identifier(name));
		first = false;
	}
	table_close(rel, AccessShareLock);
	if (first)
		appendStringInfoString(out, "NULL::pg_catalog.text AS \"?\"");
	build_fields(spec, alias, depth, naliases, out);
}

/* The join condition of "on": {parent column: related column} */
static void
join_condition(JsonbContainer *on, const char *parent, const char *related, bool parent_first,
			   StringInfo out)
{
	JsonbIterator *it = JsonbIteratorInit(on);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	bool		first = true;

	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *pcol;
		char	   *rcol;

		if (tok != WJB_KEY)
			continue;
		pcol = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || v.type != jbvString)
			elog(ERROR, "pg_polyglot: a stored \"on\" maps columns to columns");
		rcol = pnstrdup(v.val.string.val, v.val.string.len);
		appendStringInfo(out, "%s%s.%s = %s.%s", first ? "" : " AND ",
						 related, quote_identifier(rcol), parent, quote_identifier(pcol));
		first = false;
	}
	(void) parent_first;
}

/*
 * One field: ", (<subquery>) AS <name>", the subquery giving the related
 * row as a jsonb object (include) or the related rows as a jsonb array
 * (embed), its table aliased r<n>.
 */
static void
build_field(const char *name, JsonbContainer *spec, bool embed, const char *parent, int depth,
			int *naliases, StringInfo out)
{
	char	   *table = string_value(spec, "table");
	JsonbValue *on = object_value(spec, "on");
	char	   *alias = psprintf("r%d", ++(*naliases));
	Oid			relid;

	if (table == NULL || on == NULL || on->type != jbvBinary || depth > 8)
		elog(ERROR, "pg_polyglot: field \"%s\" of a route is not as sync() stores it", name);
	relid = DatumGetObjectId(DirectFunctionCall1(regclassin, CStringGetDatum(table)));
	appendStringInfo(out, ", (SELECT %s FROM (SELECT ",
					 embed ? "COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x)), '[]'::pg_catalog.jsonb)"
					 : "pg_catalog.to_jsonb(x)");
	object_columns(spec, relid, alias, depth + 1, naliases, out);
	appendStringInfo(out, " FROM ONLY %s %s WHERE ", table, alias);
	join_condition(on->val.binary.data, parent, alias, true, out);
	if (embed)
	{
		char	   *order_by = string_value(spec, "order_by");
		JsonbValue *limit = object_value(spec, "limit");

		if (order_by)
			appendStringInfo(out, " ORDER BY %s\n", order_by);
		if (limit && limit->type == jbvNumeric)
			appendStringInfo(out, " LIMIT %s",
							 DatumGetCString(DirectFunctionCall1(numeric_out,
																 NumericGetDatum(limit->val.numeric))));
	}
	else
		appendStringInfoString(out, " LIMIT 1");
	appendStringInfo(out, ") x) AS %s", quote_identifier(name));
}

/* The fields of spec's "include" and "embed", for rows aliased alias */
static void
build_fields(JsonbContainer *spec, const char *alias, int depth, int *naliases, StringInfo out)
{
	ListCell   *lc;

	foreach(lc, stored_fields(spec))
	{
		StoredField *f = (StoredField *) lfirst(lc);

		build_field(f->name, f->spec, f->embed, alias, depth, naliases, out);
	}
}

/*
 * The fields of a route's document beyond its table's columns, each as
 * ", (<subquery>) AS <name>" over the table aliased t, or NULL when the
 * route has none.  Worked out once per loaded route, in a transaction.
 */
const char *
polyglot_route_fields(PolyglotRoute *route)
{
	StringInfoData out;
	int			naliases = 0;

	if (route->fields_done)
		return route->fields;
	if (getKeyJsonValueFromContainer(&route->options->root, "include", 7, NULL) == NULL &&
		getKeyJsonValueFromContainer(&route->options->root, "embed", 5, NULL) == NULL)
	{
		route->fields_done = true;
		return NULL;
	}
	initStringInfo(&out);
	build_fields(&route->options->root, "t", 0, &naliases, &out);
	/* only once built: the worker keeps its routes, and this with them */
	route->fields = MemoryContextStrdup(GetMemoryChunkContext(route), out.data);
	route->fields_done = true;
	return route->fields;
}

/* The names of the fields of a route's document: "include"'s, then "embed"'s */
List *
polyglot_document_field_names(Jsonb *options)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, stored_fields(&options->root))
		names = lappend(names, ((StoredField *) lfirst(lc))->name);
	return names;
}

static void
document_error(const char *path, const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("route option \"%s\": %s", path, message)));
}

/* A column of a table, or an error naming the option */
static void
require_column(Oid relid, const char *column, const char *path)
{
	if (get_attnum(relid, column) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of route option \"%s\" does not exist in %s", column, path,
						get_rel_name(relid))));
}

/*
 * The "on" of a relation from its foreign key: the one foreign key of
 * from_rel to to_rel, as {parent column: related column}.  from_is_parent:
 * the parent holds the key (include); else the related table does (embed).
 */
static void
on_from_foreign_key(Oid parent, Oid related, bool parent_holds, const char *path, StringInfo out)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			holder = parent_holds ? parent : related;
	Oid			target = parent_holds ? related : parent;
	int			found = 0;

	ScanKeyInit(&skey, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(holder));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		AttrNumber	conkey[INDEX_MAX_KEYS],
					confkey[INDEX_MAX_KEYS];
		Oid			pf[INDEX_MAX_KEYS],
					pp[INDEX_MAX_KEYS],
					ff[INDEX_MAX_KEYS];
		int			n,
					i;

		if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != target)
			continue;
		if (++found > 1)
			break;
#if PG_VERSION_NUM >= 150000
		DeconstructFkConstraintRow(tup, &n, conkey, confkey, pf, pp, ff, NULL, NULL);
#else
		DeconstructFkConstraintRow(tup, &n, conkey, confkey, pf, pp, ff);
#endif
		appendStringInfoChar(out, '{');
		for (i = 0; i < n; i++)
		{
			/* parent column first */
			const char *pcol = get_attname(parent, parent_holds ? conkey[i] : confkey[i], false);
			const char *rcol = get_attname(related, parent_holds ? confkey[i] : conkey[i], false);

			if (i)
				appendStringInfoString(out, ", ");
			escape_json(out, pcol);
			appendStringInfoString(out, ": ");
			escape_json(out, rcol);
		}
		appendStringInfoChar(out, '}');
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (found != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("route option \"%s\": %s foreign key from %s to %s", path,
						found ? "more than one" : "no", get_rel_name(holder), get_rel_name(target)),
				 errhint("Name the columns: \"on\": {\"<column of %s>\": \"<column of %s>\"}.",
						 get_rel_name(parent), get_rel_name(related))));
}

static void normalize_fields(Oid parent, JsonbContainer *spec, const char *path, int depth,
							 StringInfo out);

static void check_document(Oid source, Jsonb *options);

/* The owner of the table whose route's options are being normalised */
static Oid	document_reader = InvalidOid;

/* One field's spec, as stored: {"table": qualified, "on": {...}, ...} */
static void
normalize_field(Oid parent, const char *name, JsonbContainer *spec, bool embed,
				const char *path, int depth, StringInfo out)
{
	char	   *table = string_value(spec, "table");
	JsonbValue *on = object_value(spec, "on");
	JsonbValue *v;
	Oid			relid;
	static const char *const lists[] = {"columns", "exclude"};
	int			i;
	JsonbIterator *it;
	JsonbValue	key;
	JsonbIteratorToken tok;

	if (depth > 8)
		document_error(path, "relations nest 8 deep at most");
	if (table == NULL)
		document_error(path, "needs a \"table\"");
	relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(table
#if PG_VERSION_NUM >= 160000
																				 , NULL
#endif
																				 )),
							 AccessShareLock, false);
	if (get_rel_relkind(relid) != RELKIND_RELATION)
		document_error(path, "\"table\" must be an ordinary table");
	/*
	 * The worker reads the table as the route's table's owner; its capture
	 * triggers are made for the caller, who must be allowed to make them
	 */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, document_reader, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid)),
				 errdetail("Route option \"%s\": the owner of the synced table reads it (SELECT), and sync() puts capture triggers on it (TRIGGER).",
						   path)));
	it = JsonbIteratorInit(spec);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		char	   *k;

		if (tok != WJB_KEY)
			continue;
		k = pnstrdup(key.val.string.val, key.val.string.len);
		if (strcmp(k, "table") != 0 && strcmp(k, "on") != 0 && strcmp(k, "columns") != 0 &&
			strcmp(k, "exclude") != 0 && strcmp(k, "include") != 0 && strcmp(k, "embed") != 0 &&
			!(embed && (strcmp(k, "order_by") == 0 || strcmp(k, "limit") == 0)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in route option \"%s\"", k, path),
					 errhint("Valid keys are: table, on, columns, exclude, %sinclude, embed.",
							 embed ? "order_by, limit, " : "")));
	}
	appendStringInfoString(out, "{\"table\": ");
	escape_json(out, quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)));
	appendStringInfoString(out, ", \"on\": ");
	if (on == NULL)
		on_from_foreign_key(parent, relid, !embed, path, out);
	else
	{
		JsonbValue	val;
		bool		first = true;

		if (on->type != jbvBinary || !JsonContainerIsObject(on->val.binary.data))
			document_error(path, "\"on\" must map columns to columns: {\"<column>\": \"<column>\"}");
		appendStringInfoChar(out, '{');
		it = JsonbIteratorInit(on->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			char	   *pcol;
			char	   *rcol;

			if (tok != WJB_KEY)
				continue;
			pcol = pnstrdup(key.val.string.val, key.val.string.len);
			tok = JsonbIteratorNext(&it, &val, true);
			if (val.type != jbvString)
				document_error(path, "\"on\" must map columns to columns: {\"<column>\": \"<column>\"}");
			rcol = pnstrdup(val.val.string.val, val.val.string.len);
			require_column(parent, pcol, path);
			require_column(relid, rcol, path);
			appendStringInfoString(out, first ? "" : ", ");
			escape_json(out, pcol);
			appendStringInfoString(out, ": ");
			escape_json(out, rcol);
			first = false;
		}
		if (first)
			document_error(path, "\"on\" names no column");
		appendStringInfoChar(out, '}');
	}
	for (i = 0; i < 2; i++)
	{
		JsonbValue	e;

		v = object_value(spec, lists[i]);
		if (v == NULL)
			continue;
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			document_error(path, psprintf("\"%s\" must be an array of column names", lists[i]));
		appendStringInfo(out, ", \"%s\": [", lists[i]);
		it = JsonbIteratorInit(v->val.binary.data);
		{
			bool		first = true;

			while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			{
				char	   *col;

				if (tok != WJB_ELEM)
					continue;
				if (e.type != jbvString)
					document_error(path, psprintf("\"%s\" must be an array of column names", lists[i]));
				col = pnstrdup(e.val.string.val, e.val.string.len);
				require_column(relid, col, path);
				appendStringInfoString(out, first ? "" : ", ");
				escape_json(out, col);
				first = false;
			}
		}
		appendStringInfoChar(out, ']');
	}
	if ((v = object_value(spec, "order_by")) != NULL)
	{
		char	   *text;
		List	   *parsed;
		SelectStmt *stmt;

		if (v->type != jbvString)
			document_error(path, "\"order_by\" must be a string: an ORDER BY list");
		text = pnstrdup(v->val.string.val, v->val.string.len);
		/* one ORDER BY list, nothing else (it goes into a query as it is) */
		parsed = raw_parser(psprintf("SELECT FROM x ORDER BY %s", text), RAW_PARSE_DEFAULT);
		stmt = list_length(parsed) == 1 && IsA(((RawStmt *) linitial(parsed))->stmt, SelectStmt) ?
			(SelectStmt *) ((RawStmt *) linitial(parsed))->stmt : NULL;
		if (stmt == NULL || stmt->op != SETOP_NONE || stmt->sortClause == NIL ||
			stmt->limitCount || stmt->limitOffset || stmt->lockingClause || stmt->whereClause ||
			stmt->groupClause || stmt->havingClause || stmt->windowClause ||
			list_length(stmt->fromClause) != 1 || strstr(text, "--") || strstr(text, "/*"))
			document_error(path, "\"order_by\" must be one ORDER BY list");
		appendStringInfoString(out, ", \"order_by\": ");
		escape_json(out, text);
	}
	else if (embed)
	{
		/*
		 * No order given: the embedded table's primary key, so that a
		 * document is the same whenever it is built (verify compares them)
		 */
		Relation	r = table_open(relid, AccessShareLock);
#if PG_VERSION_NUM >= 180000
		Oid			pk = RelationGetPrimaryKeyIndex(r, true);
#else
		Oid			pk = RelationGetPrimaryKeyIndex(r);
#endif

		if (OidIsValid(pk))
		{
			HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pk));
			Form_pg_index index;
			StringInfoData order;
			int			k;

			if (!HeapTupleIsValid(itup))
				elog(ERROR, "pg_polyglot: cache lookup failed for index %u", pk);
			index = (Form_pg_index) GETSTRUCT(itup);
			initStringInfo(&order);
			for (k = 0; k < index->indnkeyatts; k++)
				appendStringInfo(&order, "%s%s", k ? ", " : "",
								 quote_identifier(get_attname(relid, index->indkey.values[k], false)));
			ReleaseSysCache(itup);
			appendStringInfoString(out, ", \"order_by\": ");
			escape_json(out, order.data);
		}
		table_close(r, AccessShareLock);
	}
	if ((v = object_value(spec, "limit")) != NULL)
	{
		char	   *n;

		if (v->type != jbvNumeric)
			document_error(path, "\"limit\" must be a whole number from 1");
		n = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		if (strspn(n, "0123456789") != strlen(n) || strcmp(n, "0") == 0 || strlen(n) > 9)
			document_error(path, "\"limit\" must be a whole number from 1");
		appendStringInfo(out, ", \"limit\": %s", n);
	}
	normalize_fields(relid, spec, path, depth + 1, out);
	appendStringInfoChar(out, '}');
	(void) name;
}

/* ', "include": {...}, "embed": {...}' of a spec, normalised */
static void
normalize_fields(Oid parent, JsonbContainer *spec, const char *path, int depth, StringInfo out)
{
	static const char *const kinds[] = {"include", "embed"};
	int			k;

	for (k = 0; k < 2; k++)
	{
		JsonbValue *fields = object_value(spec, kinds[k]);
		JsonbIterator *it;
		JsonbValue	key,
					val;
		JsonbIteratorToken tok;
		bool		first = true;

		if (fields == NULL)
			continue;
		if (fields->type != jbvBinary || !JsonContainerIsObject(fields->val.binary.data))
			document_error(kinds[k], "must be an object: {\"<field>\": {\"table\": ...}}");
		appendStringInfo(out, ", \"%s\": {", kinds[k]);
		it = JsonbIteratorInit(fields->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			char	   *name;
			char	   *sub;

			if (tok != WJB_KEY)
				continue;
			name = pnstrdup(key.val.string.val, key.val.string.len);
			sub = path ? psprintf("%s.%s.%s", path, kinds[k], name) : psprintf("%s.%s", kinds[k], name);
			tok = JsonbIteratorNext(&it, &val, true);
			if (val.type != jbvBinary || !JsonContainerIsObject(val.val.binary.data))
				document_error(sub, "must be an object: {\"table\": ...}");
			if (get_attnum(parent, name) > 0)
				document_error(sub, "is a column of the table: name the field otherwise");
			appendStringInfoString(out, first ? "" : ", ");
			escape_json(out, name);
			appendStringInfoString(out, ": ");
			normalize_field(parent, name, val.val.binary.data, k == 1, sub, depth, out);
			first = false;
		}
		appendStringInfoChar(out, '}');
	}
}

/*
 * The options given to sync() with their "include" and "embed" as the
 * route stores them: tables schema-qualified (named with the caller's
 * search_path), "on" worked out from the foreign key where not given,
 * every column checked.
 */
Jsonb *
polyglot_document_as_given(Oid relid, Jsonb *options)
{
	StringInfoData out;
	Jsonb	   *result;

	if (!JB_ROOT_IS_OBJECT(options) ||
		(object_value(&options->root, "include") == NULL &&
		 object_value(&options->root, "embed") == NULL))
		return options;
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "pg_polyglot: cache lookup failed for relation %u", relid);
		document_reader = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	initStringInfo(&out);
	appendStringInfoString(&out, "{\"?\": null");
	normalize_fields(relid, &options->root, NULL, 0, &out);
	appendStringInfoChar(&out, '}');
	result = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(options),
												DirectFunctionCall2(jsonb_delete,
																	DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)),
																	CStringGetTextDatum("?"))));
	/*
	 * The documents' query parses and analyses (an "order_by" of unknown
	 * columns fails here), under the worker's fixed settings: a function
	 * of order_by that only the caller's search_path finds is refused now
	 */
	{
		int			guc_level = polyglot_fix_settings(false);

		check_document(relid, result);
		AtEOXact_GUC(true, guc_level);
	}
	return result;
}

/* ---------------------------------------------------------------- relations */

/*
 * The relations of a route's document, numbered from 1 in the order of
 * polyglot_route_relations(): "include" then "embed" of the route, each
 * followed by its own (depth first).  A relation links its table to the
 * table above it (the parent: the route's table at depth 1) by "on".
 */
typedef struct DocRelation
{
	int			number;
	int			depth;
	bool		embed;
	Oid			relid;
	int			ncols;
	char	   *pcols[INDEX_MAX_KEYS];	/* the parent's columns */
	char	   *rcols[INDEX_MAX_KEYS];	/* this table's columns */
	struct DocRelation *parent;	/* NULL: the route's table */
	JsonbContainer *spec;		/* its object in the route's options */
	char	   *name;			/* its field in the document */
} DocRelation;

static void
walk_relations(JsonbContainer *spec, DocRelation *parent, int depth, List **out)
{
	ListCell   *lc;

	if (depth > 9)
		elog(ERROR, "pg_polyglot: a route's relations nest too deep");
	foreach(lc, stored_fields(spec))
	{
		StoredField *f = (StoredField *) lfirst(lc);
		DocRelation *rel;
		JsonbValue *on = object_value(f->spec, "on");
		char	   *table = string_value(f->spec, "table");
		JsonbIterator *it;
		JsonbValue	k,
					v;
		JsonbIteratorToken tok;

		if (table == NULL || on == NULL || on->type != jbvBinary)
			elog(ERROR, "pg_polyglot: field \"%s\" of a route is not as sync() stores it", f->name);
		rel = palloc0(sizeof(DocRelation));
		rel->number = list_length(*out) + 1;
		rel->depth = depth;
		rel->embed = f->embed;
		rel->relid = DatumGetObjectId(DirectFunctionCall1(regclassin, CStringGetDatum(table)));
		rel->parent = parent;
		rel->spec = f->spec;
		rel->name = f->name;
		it = JsonbIteratorInit(on->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			if (v.type != jbvString || rel->ncols >= INDEX_MAX_KEYS)
				elog(ERROR, "pg_polyglot: a stored \"on\" maps columns to columns");
			rel->pcols[rel->ncols] = pnstrdup(k.val.string.val, k.val.string.len);
			rel->rcols[rel->ncols] = pnstrdup(v.val.string.val, v.val.string.len);
			rel->ncols++;
		}
		if (rel->ncols == 0)
			elog(ERROR, "pg_polyglot: a stored \"on\" names no column");
		*out = lappend(*out, rel);
		if (list_length(*out) > POLYGLOT_MAX_RELATIONS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a route's document relates %d tables at most",
							POLYGLOT_MAX_RELATIONS)));
		walk_relations(f->spec, rel, depth + 1, out);
	}
}

static List *
route_relations(Jsonb *options)
{
	List	   *out = NIL;

	if (JB_ROOT_IS_OBJECT(options))
		walk_relations(&options->root, NULL, 1, &out);
	return out;
}

/* attnum of a column, or an error naming the route's relation */
static AttrNumber
relation_attnum(DocRelation *rel, Oid relid, const char *column)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %d of a route's document does not exist in %s",
						column, rel->number, get_rel_name(relid))));
	return attnum;
}

PG_FUNCTION_INFO_V1(polyglot_route_relations);

/*
 * Do equal values of two columns always have the same key text?  Then a
 * related row's column gives the document's key as the worker finds it
 * (polyglot._key_text() of the key column).  Only for integers and uuids,
 * and text of one deterministic collation, of one type and typmod: numeric
 * 5 = 5.00, char(4) and char(6), case-insensitive collations print equal
 * values differently.
 */
static bool
same_key_text(Oid rel1, AttrNumber att1, Oid rel2, AttrNumber att2)
{
	Oid			typ1,
				typ2,
				coll1,
				coll2;
	int32		mod1,
				mod2;

	get_atttypetypmodcoll(rel1, att1, &typ1, &mod1, &coll1);
	get_atttypetypmodcoll(rel2, att2, &typ2, &mod2, &coll2);
	if (typ1 != typ2 || mod1 != mod2)
		return false;
	switch (typ1)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case UUIDOID:
			return true;
		case TEXTOID:
		case VARCHAROID:
			return coll1 == coll2 && OidIsValid(coll1) && get_collation_isdeterministic(coll1);
		default:
			return false;
	}
}

/*
 * polyglot._route_relations(options jsonb, source regclass, key_columns name[]) returns
 * jsonb: the relations of a route's document, as an array of {"relation":
 * n, "table": qualified name, "attnums": [...], "direct": bool}.  attnums
 * are the link columns of the relation's table, what its capture trigger
 * records.  direct: an embed of the route's table by the route's key, its
 * link columns in key order, each of a type whose equal values have one
 * text (see same_key_text()).
 */
Datum
polyglot_route_relations(PG_FUNCTION_ARGS)
{
	Jsonb	   *options = PG_GETARG_JSONB_P(0);
	Oid			source = PG_GETARG_OID(1);
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(2);
	Datum	   *keynames;
	int			nkeys;
	List	   *rels;
	ListCell   *lc;
	StringInfoData out;

	deconstruct_array(keys, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &keynames, NULL, &nkeys);
	rels = route_relations(options);
	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	foreach(lc, rels)
	{
		DocRelation *rel = (DocRelation *) lfirst(lc);
		AttrNumber	attnums[INDEX_MAX_KEYS];
		bool		direct = false;
		int			i,
					j;

		/* an embed by the key of the route's table: its columns hold the keys */
		if (rel->depth == 1 && rel->embed && rel->ncols == nkeys)
		{
			direct = true;
			for (i = 0; i < nkeys && direct; i++)
			{
				const char *key = NameStr(*DatumGetName(keynames[i]));

				for (j = 0; j < rel->ncols; j++)
					if (strcmp(rel->pcols[j], key) == 0)
						break;
				if (j == rel->ncols)
					direct = false;
				else
				{
					attnums[i] = relation_attnum(rel, rel->relid, rel->rcols[j]);
					direct = same_key_text(source, relation_attnum(rel, source, key),
										   rel->relid, attnums[i]);
				}
			}
		}
		if (!direct)
			for (i = 0; i < rel->ncols; i++)
				attnums[i] = relation_attnum(rel, rel->relid, rel->rcols[i]);
		appendStringInfo(&out, "%s{\"relation\": %d, \"table\": ", foreach_current_index(lc) ? ", " : "",
						 rel->number);
		escape_json(&out, quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel->relid)),
													 get_rel_name(rel->relid)));
		appendStringInfoString(&out, ", \"attnums\": [");
		for (i = 0; i < rel->ncols; i++)
			appendStringInfo(&out, "%s%d", i ? ", " : "", attnums[i]);
		appendStringInfo(&out, "], \"direct\": %s}", direct ? "true" : "false");
	}
	appendStringInfoChar(&out, ']');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* "(<alias>.<pcol>, ...) IN (<the rows of param as rel's columns' types>)" */
static void
in_values(DocRelation *rel, const char *alias, const char *param, StringInfo out)
{
	int			i;

	appendStringInfoChar(out, '(');
	for (i = 0; i < rel->ncols; i++)
		appendStringInfo(out, "%s%s.%s", i ? ", " : "", alias, quote_identifier(rel->pcols[i]));
	appendStringInfoString(out, ") IN (SELECT ");
	for (i = 0; i < rel->ncols; i++)
	{
		AttrNumber	attnum = relation_attnum(rel, rel->relid, rel->rcols[i]);
		Oid			typid;
		int32		typmod;
		Oid			collid;

		get_atttypetypmodcoll(rel->relid, attnum, &typid, &typmod, &collid);
		appendStringInfo(out, "%s%s[v.i][%d]::%s", i ? ", " : "", param, i + 1,
						 format_type_with_typemod(typid, typmod));
	}
	appendStringInfo(out, " FROM pg_catalog.generate_subscripts(%s, 1) v(i))", param);
}

/*
 * The condition over the route's table (aliased t) that takes the
 * documents containing the rows of a relation whose link values are in
 * param (a [n][link columns] text array): those whose path of relations
 * reaches a parent row with those values.  NULL for a relation that does
 * not exist.
 */
char *
polyglot_relation_condition(Jsonb *options, int relation, const char *param)
{
	List	   *rels = route_relations(options);
	DocRelation *rel;
	DocRelation *chain[10];
	int			n = 0;
	int			i,
				c;
	StringInfoData out;

	if (relation < 1 || relation > list_length(rels))
		return NULL;
	rel = (DocRelation *) list_nth(rels, relation - 1);
	for (DocRelation *a = rel->parent; a != NULL; a = a->parent)
		chain[n++] = a;
	initStringInfo(&out);
	/* from the route's table down to the relation's parent */
	for (i = n - 1; i >= 0; i--)
	{
		DocRelation *a = chain[i];
		const char *palias = (i == n - 1) ? "t" : psprintf("a%d", i + 1);

		appendStringInfo(&out, "EXISTS (SELECT FROM ONLY %s a%d WHERE ",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(a->relid)),
													get_rel_name(a->relid)), i);
		for (c = 0; c < a->ncols; c++)
			appendStringInfo(&out, "a%d.%s = %s.%s AND ", i, quote_identifier(a->rcols[c]),
							 palias, quote_identifier(a->pcols[c]));
	}
	in_values(rel, n ? "a0" : "t", param, &out);
	for (i = 0; i < n; i++)
		appendStringInfoChar(&out, ')');
	return out.data;
}

PG_FUNCTION_INFO_V1(polyglot_check_document);

/*
 * polyglot._check_document(source regclass, options jsonb) returns void:
 * ereports when a route's document no longer builds from the tables as
 * they are (a table or column it names renamed or dropped): its relations
 * are looked up and its query is parsed and analysed, not run.
 */
Datum
polyglot_check_document(PG_FUNCTION_ARGS)
{
	check_document(PG_GETARG_OID(0), PG_GETARG_JSONB_P(1));
	PG_RETURN_VOID();
}

static void
check_document(Oid source, Jsonb *options)
{
	List	   *rels = route_relations(options);
	ListCell   *lc;
	StringInfoData sql;
	int			naliases = 0;

	foreach(lc, rels)
	{
		DocRelation *rel = (DocRelation *) lfirst(lc);
		int			i;

		Oid			parent = rel->parent ? rel->parent->relid : source;

		for (i = 0; i < rel->ncols; i++)
		{
			(void) relation_attnum(rel, rel->relid, rel->rcols[i]);
			(void) relation_attnum(rel, parent, rel->pcols[i]);
		}
		/* a column added since with the name of a field would clash with it */
		if (get_attnum(parent, rel->name) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" of %s has the name of a field of a route's document",
							rel->name, get_rel_name(parent))));
		/*
		 * "columns" and "exclude" too: a listed column renamed would leave
		 * the documents, an excluded one would enter them
		 */
		for (i = 0; i < 2; i++)
		{
			JsonbValue *list = object_value(rel->spec, i ? "exclude" : "columns");
			JsonbIterator *it;
			JsonbValue	e;
			JsonbIteratorToken tok;

			if (list == NULL || list->type != jbvBinary)
				continue;
			it = JsonbIteratorInit(list->val.binary.data);
			while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
				if (tok == WJB_ELEM && e.type == jbvString)
					(void) relation_attnum(rel, rel->relid,
										   pnstrdup(e.val.string.val, e.val.string.len));
		}
	}
	if (rels == NIL)
		return;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT NULL");
	build_fields(&options->root, "t", 0, &naliases, &sql);
	appendStringInfo(&sql, " FROM ONLY %s t",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(source)),
												get_rel_name(source)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	if (SPI_prepare(sql.data, 0, NULL) == NULL)
		elog(ERROR, "pg_polyglot: the document's query does not build: %s",
			 SPI_result_code_string(SPI_result));
	/*
	 * An embed's order_by on its own table alone: in the documents' query
	 * a name it lacks would silently be the parent row's column
	 */
	foreach(lc, rels)
	{
		DocRelation *rel = (DocRelation *) lfirst(lc);
		char	   *order_by = rel->embed ? string_value(rel->spec, "order_by") : NULL;

		if (order_by == NULL)
			continue;
		if (SPI_prepare(psprintf("SELECT FROM ONLY %s ORDER BY %s",
								 quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel->relid)),
															get_rel_name(rel->relid)),
								 order_by), 0, NULL) == NULL)
			elog(ERROR, "pg_polyglot: an order_by does not build: %s",
				 SPI_result_code_string(SPI_result));
	}
	SPI_finish();
}
