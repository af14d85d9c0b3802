/*-------------------------------------------------------------------------
 *
 * elastic_modify.c
 *		INSERT, UPDATE and DELETE on polyglot_elastic foreign tables, as
 *		actions of _bulk requests.
 *
 * Writes: INSERT (create actions: an existing _id is a unique violation;
 * without an _id the server makes one, which RETURNING shows), UPDATE
 * (update actions with the changed fields) and DELETE go through _bulk,
 * batch_size actions per request; UPDATE and DELETE find documents by the
 * _id column.  The refresh option says whether a write waits for the next
 * refresh (wait_for), forces one (true) or neither (false, the default).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"


/* State of a modification of the table */
typedef struct ElasticModifyState
{
	PolyglotModifyState base;	/* batch_size: actions per _bulk request */
	ElasticConn *conn;
	char	   *index;
	int			natts;
	ElasticColumn *columns;
	int			id_attnum;		/* the _id column, or 0 */
	AttrNumber	id_junk;		/* UPDATE, DELETE: the _id in the plan's rows */
	List	   *target_attrs;	/* UPDATE: the columns it sets */
	const char *refresh;
	StringInfoData body;		/* actions not sent yet */
	int			nactions;
	MemoryContext cxt;			/* of body, for the statement */
	MemoryContext row_cxt;
} ElasticModifyState;

/* The _id column's attnum, or 0 */
static int
id_column(int natts, ElasticColumn *columns)
{
	int			i;

	for (i = 0; i < natts; i++)
		if (columns[i].kind == ECOL_ID)
			return i + 1;
	return 0;
}

static void
elasticAddForeignUpdateTargets(PlannerInfo *root, Index rtindex, RangeTblEntry *target_rte,
									   Relation target_relation)
{
	int			natts;
	ElasticColumn *columns;
	int			attnum;

	polyglot_elastic_load_columns(RelationGetRelid(target_relation), &natts, &columns);
	attnum = id_column(natts, columns);
	if (attnum == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no _id column",
						RelationGetRelationName(target_relation)),
				 errhint("UPDATE and DELETE find documents by _id: add a column named _id.")));
	polyglot_add_row_identity(root, rtindex, target_relation, attnum, "_id");
}

static List *
elasticPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
								 int subplan_index)
{
	return polyglot_plan_modify(root, plan, resultRelation, "Elasticsearch", NULL);
}

static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *target_attrs,
			 CmdType operation, bool explain_only)
{
	Relation	rel = rinfo->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	ElasticModifyState *st = palloc0(sizeof(ElasticModifyState));
	DefElem    *def;

	rinfo->ri_FdwState = st;
	st->index = polyglot_elastic_table_index(table, relid);
	polyglot_elastic_load_columns(relid, &st->natts, &st->columns);
	st->id_attnum = id_column(st->natts, st->columns);
	st->target_attrs = target_attrs;
	def = polyglot_table_option(table, server, "batch_size");
	st->base.batch_size = def ? polyglot_option_int(def) : POLYGLOT_DEFAULT_ELASTIC_BATCH_SIZE;
	def = polyglot_table_option(table, server, "refresh");
	st->refresh = def ? defGetString(def) : "false";
	st->cxt = CurrentMemoryContext;
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot elastic write",
										ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&st->body);
	if (mtstate && (operation == CMD_UPDATE || operation == CMD_DELETE))
		st->id_junk = polyglot_modify_junk(mtstate, "_id");
	if (explain_only)
		return;
	st->conn = polyglot_elastic_table_connection(relid, polyglot_modify_user(mtstate, rinfo));
}

static void
elasticBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								  List *fdw_private, int subplan_index, int eflags)
{
	begin_modify(mtstate, rinfo, (List *) linitial(fdw_private), mtstate->operation,
				 (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
}

static void
elasticBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_modify(mtstate, rinfo, NIL, CMD_INSERT, false);
}

/* A field of a document being written: its path split at dots, its JSON */
typedef struct DocField
{
	char	  **segments;
	int			nsegments;
	char	   *json;
} DocField;

static int
docfield_cmp(const ListCell *a, const ListCell *b)
{
	DocField   *x = (DocField *) lfirst(a);
	DocField   *y = (DocField *) lfirst(b);
	int			i;

	for (i = 0; i < x->nsegments && i < y->nsegments; i++)
	{
		int			c = strcmp(x->segments[i], y->segments[i]);

		if (c != 0)
			return c;
	}
	return x->nsegments - y->nsegments;
}

/*
 * Appends fields[from, to) as the members of an object at depth: fields
 * that share a path segment there nest in one object ("a.b" and "a.c"
 * become "a": {"b": .., "c": ..}).  The list is sorted by path.
 */
static void
append_fields(StringInfo buf, List *fields, int from, int to, int depth)
{
	int			i = from;
	bool		first = true;

	appendStringInfoChar(buf, '{');
	while (i < to)
	{
		DocField   *f = (DocField *) list_nth(fields, i);
		int			j = i + 1;

		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, f->segments[depth]);
		appendStringInfoChar(buf, ':');
		if (f->nsegments == depth + 1)
		{
			appendStringInfoString(buf, f->json);
			/* a value and deeper fields under the same name: the value wins */
			while (j < to && strcmp(((DocField *) list_nth(fields, j))->segments[depth],
									f->segments[depth]) == 0)
				j++;
		}
		else
		{
			while (j < to)
			{
				DocField   *g = (DocField *) list_nth(fields, j);

				if (g->nsegments <= depth + 1 ||
					strcmp(g->segments[depth], f->segments[depth]) != 0)
					break;
				j++;
			}
			append_fields(buf, fields, i, j, depth + 1);
		}
		i = j;
	}
	appendStringInfoChar(buf, '}');
}

static DocField *
make_docfield(const char *path, char *json)
{
	DocField   *f = palloc(sizeof(DocField));
	char	   *copy = pstrdup(path);
	char	   *p;
	int			n = 1;

	for (p = copy; *p; p++)
		if (*p == '.')
			n++;
	f->segments = palloc(sizeof(char *) * n);
	f->nsegments = 0;
	f->segments[f->nsegments++] = copy;
	for (p = copy; *p; p++)
		if (*p == '.')
		{
			*p = '\0';
			f->segments[f->nsegments++] = p + 1;
		}
	f->json = json;
	return f;
}

/*
 * The document of a row's columns attnums (NIL: every column) as JSON:
 * field columns at their paths (nested objects for dotted paths), NULLs
 * left out unless keep_nulls; a whole-_source column is the document
 * itself, and then no field column may be given too.
 */
static char *
row_document(ElasticModifyState *st, TupleTableSlot *slot, List *attnums, bool keep_nulls,
			 bool *whole)
{
	List	   *fields = NIL;
	char	   *source = NULL;
	StringInfoData buf;
	int			i;

	*whole = false;
	slot_getallattrs(slot);
	for (i = 0; i < st->natts; i++)
	{
		ElasticColumn *col = &st->columns[i];
		bool		isnull = slot->tts_isnull[i];
		Datum		value = slot->tts_values[i];

		if (attnums != NIL && !list_member_int(attnums, i + 1))
			continue;
		switch (col->kind)
		{
			case ECOL_FIELD:
				if (isnull && !keep_nulls)
					break;
				initStringInfo(&buf);
				polyglot_elastic_append_json_value(&buf, value, isnull, col->typid);
				fields = lappend(fields, make_docfield(col->field, buf.data));
				break;
			case ECOL_SOURCE:
				if (isnull)
					break;
				initStringInfo(&buf);
				polyglot_elastic_append_json_value(&buf, value, false, col->typid);
				if (buf.data[0] != '{')
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("column \"%s\" must hold a JSON object to be a document",
									col->name)));
				source = buf.data;
				break;
			case ECOL_SCORE:
			case ECOL_QUERY:
			case ECOL_HIGHLIGHT:
				if (!isnull && attnums == NIL)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_ERROR),
							 errmsg("column \"%s\" cannot be written", col->name),
							 errdetail("It is not a field of the document.")));
				if (attnums != NIL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("column \"%s\" cannot be updated", col->name),
							 errdetail("It is not a field of the document.")));
				break;
			default:
				break;
		}
	}
	if (source)
	{
		if (fields != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot write a whole document and its fields in one row"),
					 errhint("Give either the jsonb column of the whole _source or the field columns, and leave the others NULL.")));
		*whole = true;
		return source;
	}
	list_sort(fields, docfield_cmp);
	initStringInfo(&buf);
	append_fields(&buf, fields, 0, list_length(fields), 0);
	return buf.data;
}

/*
 * Buffers an action, {"<action>":{"_index":..,"_id":..}} and a newline,
 * then its source and a newline unless source is NULL; then resets
 * row_cxt, where the caller may have built id and source.  The caller
 * flushes.
 */
static void
append_action(ElasticModifyState *st, const char *action, const char *id, const char *source)
{
	MemoryContext old = MemoryContextSwitchTo(st->cxt);

	appendStringInfo(&st->body, "{\"%s\":{\"_index\":", action);
	escape_json(&st->body, st->index);
	if (id)
	{
		appendStringInfoString(&st->body, ",\"_id\":");
		escape_json(&st->body, id);
	}
	appendStringInfoString(&st->body, "}}\n");
	if (source)
		appendStringInfo(&st->body, "%s\n", source);
	st->nactions++;
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
}

/* The _id of the row an UPDATE or DELETE changes, from the plan's junk column */
static Datum
junk_id(ElasticModifyState *st, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		id = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);

	if (isnull)
		elog(ERROR, "pg_polyglot: _id is null");
	return id;
}

/*
 * Sends the buffered actions in one _bulk request.  A failed action fails
 * the statement (with the first failure's reason), except the 404 of an
 * update or delete whose document is already gone.  The actions before it
 * stay done: the index is not part of the transaction.  Returns the _id
 * the server gave the first action (an INSERT without _id), or NULL.
 */
static char *
flush_actions(ElasticModifyState *st)
{
	ElasticResponse response;
	char	   *path;
	Jsonb	   *jb;
	JsonbContainer *items;
	char	   *first_id = NULL;
	int			n,
				i;
	int			nsent = st->nactions;

	if (st->nactions == 0)
		return NULL;
	path = psprintf("/_bulk?refresh=%s&filter_path=errors,items.*._id,items.*.status,items.*.error",
					st->refresh);
	polyglot_elastic_request(st->conn, "POST", path, st->body.data, st->body.len, &response);
	resetStringInfo(&st->body);
	st->nactions = 0;
	if (response.status >= 400)
		polyglot_elastic_report_error(st->conn, &response, psprintf("a _bulk write to index \"%s\"", st->index));
	jb = polyglot_elastic_parse_response(st->conn, &response, "_bulk");
	items = polyglot_elastic_json_object(&jb->root, "items");

	/*
	 * One result per action, each {"<action>": {"status": ..}}: an answer
	 * of another shape ({"errors": true} without items, say) is no success.
	 */
	n = items && JsonContainerIsArray(items) ? (int) JsonContainerSize(items) : -1;
	if (n != nsent)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" answered a _bulk write of %d actions to index \"%s\" without one result per action",
						st->conn->servername, nsent, st->index)));
	for (i = 0; i < n; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(items, i);
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *action = NULL;
		JsonbContainer *result = NULL;
		int			status;

		if (item == NULL || item->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Elasticsearch server \"%s\" answered a _bulk write to index \"%s\" with a result that is no object",
							st->conn->servername, st->index)));
		/* {"<action>": {"_id": .., "status": .., "error": ..}} */
		it = JsonbIteratorInit(item->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				action = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE && v.type == jbvBinary)
				result = v.val.binary.data;
		}
		status = result ? polyglot_elastic_json_int(result, "status", 0) : 0;
		if (status == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Elasticsearch server \"%s\" answered a _bulk write to index \"%s\" with a result without a status",
							st->conn->servername, st->index)));
		if (i == 0)
			first_id = polyglot_elastic_json_string(result, "_id");
		if (status >= 200 && status < 300)
			continue;
		if (status == 404 && action && strcmp(action, "create") != 0)
			continue;			/* updated or deleted meanwhile by someone else */
		ereport(ERROR,
				(errcode(status == 409 && action && strcmp(action, "create") == 0 ?
						 ERRCODE_UNIQUE_VIOLATION : ERRCODE_FDW_ERROR),
				 status == 409 && action && strcmp(action, "create") == 0 ?
				 errmsg("document with _id \"%s\" already exists in index \"%s\"",
						polyglot_elastic_json_string(result, "_id"), st->index) :
				 errmsg("Elasticsearch server \"%s\" refused a %s in index \"%s\" (HTTP status %d)",
						st->conn->servername, action ? action : "write", st->index, status),
				 errdetail_internal("%s", polyglot_elastic_error_text(polyglot_elastic_json_object(result, "error")) ?
									polyglot_elastic_error_text(polyglot_elastic_json_object(result, "error")) :
									"no reason given")));
	}
	return first_id;
}

/* The text of a row's _id, or NULL */
static char *
row_id(ElasticModifyState *st, Datum value, bool isnull)
{
	Oid			outfunc;
	bool		varlena;

	if (isnull || st->id_attnum == 0)
		return NULL;
	getTypeOutputInfo(st->columns[st->id_attnum - 1].typid, &outfunc, &varlena);
	return OidOutputFunctionCall(outfunc, value);
}

/* Buffers the create action of a row; the caller flushes */
static void
add_insert(ElasticModifyState *st, TupleTableSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(st->row_cxt);
	bool		isnull = true;
	Datum		id = (Datum) 0;
	char	   *doc;
	char	   *idtext;
	bool		whole;

	if (st->id_attnum)
		id = slot_getattr(slot, st->id_attnum, &isnull);
	doc = row_document(st, slot, NIL, false, &whole);
	idtext = row_id(st, id, isnull);
	MemoryContextSwitchTo(old);
	append_action(st, "create", idtext, doc);
}

static TupleTableSlot *
elasticExecForeignInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	char	   *id;

	add_insert(st, slot);
	id = flush_actions(st);
	/* the _id the server made, for RETURNING */
	if (st->id_attnum && id)
	{
		bool		isnull;

		(void) slot_getattr(slot, st->id_attnum, &isnull);
		if (isnull)
		{
			Oid			typinput,
						typioparam;
			ElasticColumn *col = &st->columns[st->id_attnum - 1];

			slot_getallattrs(slot);
			getTypeInputInfo(col->typid, &typinput, &typioparam);
			slot->tts_values[st->id_attnum - 1] =
				OidInputFunctionCall(typinput, id, typioparam, col->typmod);
			slot->tts_isnull[st->id_attnum - 1] = false;
		}
	}
	return slot;
}

#if PG_VERSION_NUM >= 140000
/* Up to batch_size rows in one _bulk request */
static TupleTableSlot **
elasticExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot **slots,
									  TupleTableSlot **planSlots, int *numSlots)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	int			i;

	for (i = 0; i < *numSlots; i++)
		add_insert(st, slots[i]);
	(void) flush_actions(st);
	return slots;
}
#endif

/*
 * UPDATE: an update action with the fields it sets (a partial update: the
 * document's other fields stay), or an index action replacing the whole
 * document when the whole-_source column is set.  Sent batch_size at a
 * time, the rest at the end of the statement.
 */
static TupleTableSlot *
elasticExecForeignUpdate(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	Datum		id = junk_id(st, planSlot);
	char	   *doc;
	char	   *idtext;
	bool		whole;
	MemoryContext old;

	if (list_member_int(st->target_attrs, st->id_attnum))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the _id of a document")));
	old = MemoryContextSwitchTo(st->row_cxt);
	doc = row_document(st, slot, st->target_attrs, true, &whole);
	idtext = row_id(st, id, false);
	if (!whole)
		doc = psprintf("{\"doc\":%s}", doc);
	MemoryContextSwitchTo(old);
	append_action(st, whole ? "index" : "update", idtext, doc);
	if (st->nactions >= st->base.batch_size)
		(void) flush_actions(st);
	return slot;
}

static TupleTableSlot *
elasticExecForeignDelete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	Datum		id = junk_id(st, planSlot);
	MemoryContext old;
	char	   *idtext;

	old = MemoryContextSwitchTo(st->row_cxt);
	idtext = row_id(st, id, false);
	MemoryContextSwitchTo(old);
	append_action(st, "delete", idtext, NULL);
	if (st->nactions >= st->base.batch_size)
		(void) flush_actions(st);

	polyglot_deleted_row(slot, st->id_attnum, id, 0, (Datum) 0);
	return slot;
}

static void
elasticExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
									List *fdw_private, int subplan_index, ExplainState *es)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;

	ExplainPropertyText("Remote Index", st->index, es);
	if (!es->verbose)
		return;
	ExplainPropertyText("Remote Request", psprintf("POST /_bulk?refresh=%s", st->refresh), es);
	if (!polyglot_explain_insert_batch_size(mtstate, rinfo, es))
		ExplainPropertyInteger("Batch Size", NULL, st->base.batch_size, es);
}

/* also EndForeignInsert: sends what is left */
static void
elasticEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;

	if (st && st->conn)
		(void) flush_actions(st);
}

/* Sets the callbacks of INSERT, UPDATE, DELETE and COPY FROM in routine */
void
polyglot_elastic_modify_routine(FdwRoutine *routine)
{
	POLYGLOT_SET_MODIFY_CALLBACKS(routine, elastic);
}
