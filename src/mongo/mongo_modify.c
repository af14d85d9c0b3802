/*-------------------------------------------------------------------------
 *
 * mongo_modify.c
 *		INSERT, UPDATE and DELETE on foreign tables of the polyglot_mongo
 *		wrapper, and COPY FROM into them.
 *
 * INSERT sends batch_size documents per insert command; UPDATE and DELETE
 * go one document at a time, found by the _id column.  MongoDB is not part
 * of the transaction: what was written stays written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "utils/rel.h"

#include "pg_polyglot.h"
#include "mongo/mongo.h"

/* ---------------------------------------------------------------- INSERT, UPDATE, DELETE */

typedef struct MongoModifyState
{
	PolyglotModifyState base;	/* the batch size of an INSERT */
	MongoConn  *conn;
	PolyglotConnPin pin;		/* the client coll belongs to */
	mongoc_collection_t *coll;
	char	   *database;
	char	   *collection;
	int			natts;
	MongoColumn *columns;
	bool	   *dropped;
	int			id_attnum;		/* the _id column, 1-based, or 0 */
	AttrNumber	id_junk;		/* the _id junk attribute of the subplan */
	List	   *target_attrs;	/* UPDATE: the columns it sets */
	int			bson_flags;
} MongoModifyState;

/*
 * Frees the collection handle, then releases the client it belongs to: at
 * the end of the statement, or when its memory goes after an error.
 */
static void
release_modify_handles(void *arg)
{
	MongoModifyState *st = (MongoModifyState *) arg;

	polyglot_mongo_release_pinned(NULL, &st->coll, &st->pin);
}

/* The column that holds _id: a column named _id or with field '_id' */
static int
id_column(MongoRelInfo *info, TupleDesc desc)
{
	int			i;

	for (i = 0; i < info->natts; i++)
		if (!info->dropped[i] && info->columns[i].field &&
			strcmp(info->columns[i].field, "_id") == 0)
			return i + 1;
	return 0;
}

static void
mongoAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
									 RangeTblEntry *target_rte, Relation target_relation)
{
	MongoRelInfo info;
	int			attnum;

	memset(&info, 0, sizeof(info));
	polyglot_mongo_load_columns(RelationGetRelid(target_relation), &info);
	attnum = id_column(&info, RelationGetDescr(target_relation));
	if (attnum == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no _id column",
						RelationGetRelationName(target_relation)),
				 errhint("UPDATE and DELETE find documents by _id: add a column named _id, or one with OPTIONS (field '_id').")));
	polyglot_add_row_identity(root, rtindex, target_relation, attnum, "_id");
}

static List *
mongoPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
							   int subplan_index)
{
	return polyglot_plan_modify(root, plan, resultRelation, NULL, NULL);
}

/*
 * The state of a modification: INSERT, UPDATE or DELETE planned on the
 * table (mongoBeginForeignModify), or rows routed to it by COPY
 * FROM or partition routing (mongoBeginForeignInsert).
 */
static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *target_attrs,
			 CmdType operation, bool explain_only)
{
	Relation	rel = rinfo->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	ForeignServer *server;
	/* as scans do: the view owner's user mapping for a write through a view */
	UserMapping *user = polyglot_table_user_mapping(relid, polyglot_modify_user(mtstate, rinfo),
													&server);
	MongoModifyState *st = palloc0(sizeof(MongoModifyState));
	MongoRelInfo info;

	rinfo->ri_FdwState = st;
	memset(&info, 0, sizeof(info));
	polyglot_mongo_load_table(relid, &info);
	st->database = info.database;
	st->collection = info.collection;
	st->natts = info.natts;
	st->columns = info.columns;
	st->dropped = info.dropped;
	st->id_attnum = id_column(&info, RelationGetDescr(rel));
	st->base.batch_size = info.batch_size;
	st->target_attrs = target_attrs;
	if (mtstate && (operation == CMD_UPDATE || operation == CMD_DELETE))
		st->id_junk = polyglot_modify_junk(mtstate, "_id");
	if (explain_only)
		return;
	st->conn = polyglot_mongo_get_connection(server, user);
	polyglot_mongo_read_flavor(st->conn);
	st->bson_flags = polyglot_mongo_bson_flags(st->conn);
	{
		MemoryContext cxt = mtstate ? mtstate->ps.state->es_query_cxt : CurrentMemoryContext;
		MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

		cb->func = release_modify_handles;
		cb->arg = st;
		MemoryContextRegisterResetCallback(cxt, cb);
	}
	polyglot_conncache_pin(&st->conn->base, &st->pin);
	st->coll = mongoc_client_get_collection((mongoc_client_t *) st->pin.handle,
											st->database, st->collection);
}

static void
mongoBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								List *fdw_private, int subplan_index, int eflags)
{
	begin_modify(mtstate, rinfo, (List *) linitial(fdw_private), mtstate->operation,
				 (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
}

/* COPY FROM into the table, or rows routed to it as a partition */
static void
mongoBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_modify(mtstate, rinfo, NIL, CMD_INSERT, false);
}

/* Appends a column's value of a slot to a document; ereports what BSON cannot hold. */
static void
append_column(bson_t *doc, MongoModifyState *st, TupleTableSlot *slot, int attnum)
{
	MongoColumn *col = &st->columns[attnum - 1];
	bool		isnull;
	Datum		value = slot_getattr(slot, attnum, &isnull);
	char	   *error = NULL;

	if (col->field == NULL)
		return;					/* the whole-document column is read-only */
	if (strchr(col->field, '.'))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot write column \"%s\", which maps to the dotted field \"%s\"",
						NameStr(TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1)->attname),
						col->field)));
	if (!polyglot_bson_append_datum(doc, col->field, -1, value, isnull, col->typid,
									st->bson_flags, &error))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("column \"%s\" cannot be stored in MongoDB: %s",
						NameStr(TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1)->attname),
						error)));
}

/* The document an INSERT writes: every column, _id left to the server when NULL */
static void
append_insert_row(bson_t *doc, MongoModifyState *st, TupleTableSlot *slot)
{
	int			i;

	for (i = 1; i <= st->natts; i++)
	{
		bool		isnull;

		if (st->dropped[i - 1])
			continue;
		if (i == st->id_attnum && (slot_getattr(slot, i, &isnull), isnull))
			continue;
		append_column(doc, st, slot, i);
	}
}

static TupleTableSlot *
mongoExecForeignInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
							   TupleTableSlot *planSlot)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;
	bson_t	   *doc = bson_new();
	bson_error_t error;

	PG_TRY();
	{
		append_insert_row(doc, st, slot);
	}
	PG_CATCH();
	{
		bson_destroy(doc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!mongoc_collection_insert_one(st->coll, doc, NULL, NULL, &error))
	{
		bson_destroy(doc);
		polyglot_mongo_report_pinned_error(st->conn, &st->pin, &error, "an insert");
	}
	bson_destroy(doc);
	return slot;
}

#if PG_VERSION_NUM >= 140000
/*
 * Up to batch_size rows in one ordered insert command.  As with one insert
 * per row, the documents before a failing one stay written: MongoDB is not
 * part of the transaction.
 */
static TupleTableSlot **
mongoExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
									TupleTableSlot **slots, TupleTableSlot **planSlots,
									int *numSlots)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;
	bson_t	  **docs = palloc0(sizeof(bson_t *) * *numSlots);
	bson_error_t error;
	bool		ok;
	int			i;

	PG_TRY();
	{
		for (i = 0; i < *numSlots; i++)
		{
			docs[i] = bson_new();
			append_insert_row(docs[i], st, slots[i]);
		}
	}
	PG_CATCH();
	{
		for (i = 0; i < *numSlots; i++)
			if (docs[i])
				bson_destroy(docs[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ok = mongoc_collection_insert_many(st->coll, (const bson_t **) docs, *numSlots, NULL, NULL,
									   &error);
	for (i = 0; i < *numSlots; i++)
		bson_destroy(docs[i]);
	pfree(docs);
	if (!ok)
		polyglot_mongo_report_pinned_error(st->conn, &st->pin, &error, "an insert");
	return slots;
}
#endif

/*
 * The selector {_id: value} of the document an UPDATE or DELETE changes,
 * from the subplan's _id junk column, whose value goes to *id unless id is
 * NULL.  The caller destroys the selector.
 */
static bson_t *
row_selector(MongoModifyState *st, ResultRelInfo *rinfo, TupleTableSlot *planSlot, Datum *id)
{
	bool		isnull;
	Datum		value = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	bson_t	   *selector;

	if (isnull)
		elog(ERROR, "pg_polyglot: _id is null");
	selector = bson_new();
	PG_TRY();
	{
		polyglot_mongo_append_id_selector(selector, value,
										  TupleDescAttr(RelationGetDescr(rinfo->ri_RelationDesc),
														st->id_attnum - 1)->atttypid,
										  st->bson_flags);
	}
	PG_CATCH();
	{
		bson_destroy(selector);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (id)
		*id = value;
	return selector;
}

static TupleTableSlot *
mongoExecForeignUpdate(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
							   TupleTableSlot *planSlot)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;
	bson_t	   *selector = row_selector(st, rinfo, planSlot, NULL);
	bson_t	   *update = bson_new();
	bson_t		set;
	bson_t		reply;
	bson_error_t error;
	ListCell   *lc;

	PG_TRY();
	{
		bson_append_document_begin(update, "$set", 4, &set);
		foreach(lc, st->target_attrs)
		{
			int			attnum = lfirst_int(lc);

			if (attnum == st->id_attnum)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot change the _id of a MongoDB document")));
			append_column(&set, st, slot, attnum);
		}
		bson_append_document_end(update, &set);
	}
	PG_CATCH();
	{
		bson_destroy(selector);
		bson_destroy(update);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!mongoc_collection_update_one(st->coll, selector, update, NULL, &reply, &error))
	{
		bson_destroy(selector);
		bson_destroy(update);
		bson_destroy(&reply);
		polyglot_mongo_report_pinned_error(st->conn, &st->pin, &error, "an update");
	}
	bson_destroy(selector);
	bson_destroy(update);
	bson_destroy(&reply);
	return slot;
}

static TupleTableSlot *
mongoExecForeignDelete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
							   TupleTableSlot *planSlot)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;
	Datum		id;
	bson_t	   *selector = row_selector(st, rinfo, planSlot, &id);
	bson_t		reply;
	bson_error_t error;

	if (!mongoc_collection_delete_one(st->coll, selector, NULL, &reply, &error))
	{
		bson_destroy(selector);
		bson_destroy(&reply);
		polyglot_mongo_report_pinned_error(st->conn, &st->pin, &error, "a delete");
	}
	bson_destroy(selector);
	bson_destroy(&reply);

	polyglot_deleted_row(slot, st->id_attnum, id, 0, (Datum) 0);
	return slot;
}

static void
mongoExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								  List *fdw_private, int subplan_index, ExplainState *es)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;

	ExplainPropertyText("Remote Collection", psprintf("%s.%s", st->database, st->collection),
						es);
	if (es->verbose)
		(void) polyglot_explain_insert_batch_size(mtstate, rinfo, es);
}

/* also EndForeignInsert */
static void
mongoEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	MongoModifyState *st = (MongoModifyState *) rinfo->ri_FdwState;

	if (st)
		release_modify_handles(st);
}

/* Sets the callbacks of INSERT, UPDATE, DELETE and COPY FROM in routine */
void
polyglot_mongo_modify_routine(FdwRoutine *routine)
{
	POLYGLOT_SET_MODIFY_CALLBACKS(routine, mongo);
}
