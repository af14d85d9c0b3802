/*-------------------------------------------------------------------------
 *
 * mongo_sink.c
 *		Delivery of a route's batches to a MongoDB collection.
 *
 * Each row becomes a document whose _id is the row's key (the key column's
 * value, or a subdocument of the key columns for a composite key) followed
 * by the delivered columns as native BSON (mongo_bson.c).  A batch is one
 * ordered bulk write: a replace with upsert per row that exists, a delete
 * per row that is gone.  Both are idempotent, so a replayed batch leaves
 * the same collection.
 *
 * An ordered bulk write stops at its first failed write.  That write's key
 * fails (it is retried, then dead-lettered); the writes after it are sent
 * again in a new bulk write, so one bad row never holds up the others.
 * Errors that say "not now" (network, no primary, shutdown, timeouts) fail
 * the whole batch, and the route backs off.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "core/dispatch.h"
#include "mongo/mongo.h"

/* Server error codes that mean "not now" rather than "never for this key" */
#define MONGO_DUPLICATE_KEY 11000

static const int32 transient_codes[] = {
	6,							/* HostUnreachable */
	7,							/* HostNotFound */
	50,							/* MaxTimeMSExpired */
	89,							/* NetworkTimeout */
	91,							/* ShutdownInProgress */
	112,						/* WriteConflict */
	189,						/* PrimarySteppedDown */
	262,						/* ExceededTimeLimit */
	9001,						/* SocketException */
	10107,						/* NotWritablePrimary */
	11600,						/* InterruptedAtShutdown */
	11602,						/* InterruptedDueToReplStateChange */
	13435,						/* NotPrimaryNoSecondaryOk */
	13436,						/* NotPrimaryOrSecondary */
	0
};

static bool
is_transient_code(int32 code)
{
	const int32 *c;

	for (c = transient_codes; *c; c++)
		if (*c == code)
			return true;
	return false;
}

/*
 * Reports the failure of a batch's write as a whole.  When MongoDB refused
 * it for a document it holds (a command or document too large, a value it
 * does not take) rather than naming a write, the error is a data exception:
 * the batch then goes again in parts, so that only the key at fault fails
 * (dispatch.c).  Never returns.
 */
static void
report_batch_error(MongoConn *conn, const bson_error_t *error, const char *what)
{
	bool		refused =
		error->domain == MONGOC_ERROR_BSON ||
		(error->domain == MONGOC_ERROR_COMMAND && error->code == MONGOC_ERROR_COMMAND_INVALID_ARG) ||
		(error->domain == MONGOC_ERROR_SERVER &&
		 (error->code == 2 || error->code == 10334 || error->code == 17419 ||
		  error->code == 17420));	/* BadValue, BSONObjectTooLarge, too large */
	MemoryContext cxt = CurrentMemoryContext;

	if (!refused)
		polyglot_mongo_report_error(conn, error, what);
	PG_TRY();
	{
		polyglot_mongo_report_error(conn, error, what);
	}
	PG_CATCH();
	{
		polyglot_rethrow_as_data_exception(cxt);
	}
	PG_END_TRY();
	pg_unreachable();
}

static PolyglotPayload
mongo_payload(PolyglotRoute *route)
{
	return POLYGLOT_PAYLOAD_DATUMS;
}

/* Connects and learns the server's flavor: the BSON flags of its documents. */
static void
mongo_prepare(PolyglotRoute *route)
{
	MongoConn  *conn;
	int		   *flags = palloc0(sizeof(int));

	polyglot_route_require_server(route);
	conn = polyglot_mongo_get_connection(route->server, route->user);
	polyglot_mongo_read_flavor(conn);
	/* FerretDB closes the connection on a NaN: that key must fail alone */
	*flags = polyglot_mongo_bson_flags(conn);
	route->sink_private = flags;
}

static int
route_bson_flags(PolyglotRoute *route)
{
	return route->sink_private ? *(int *) route->sink_private : 0;
}

/* Appends the _id of a key given as text, one value per key column. */
static bool
append_id(bson_t *doc, PolyglotRoute *route, List *key, int flags, char **error)
{
	ListCell   *kc,
			   *tc,
			   *vc;
	bson_t		child;
	bson_t	   *target = doc;
	bool		composite = list_length(route->key_columns) > 1;

	if (composite)
	{
		bson_append_document_begin(doc, "_id", 3, &child);
		target = &child;
	}
	forthree(kc, route->key_columns, tc, route->key_typids, vc, key)
	{
		Oid			typid = lfirst_oid(tc);
		Oid			infunc;
		Oid			ioparam;
		Datum		value;

		getTypeInputInfo(typid, &infunc, &ioparam);
		value = OidInputFunctionCall(infunc, (char *) lfirst(vc), ioparam, -1);
		if (!polyglot_bson_append_datum(target, composite ? (char *) lfirst(kc) : "_id", -1,
										value, false, typid, flags, error))
			return false;
	}
	if (composite)
		bson_append_document_end(doc, &child);
	return true;
}

/*
 * Renders an item as the document to write ({_id, columns...}) when the
 * row exists, or as {_id} when it is gone.  A value BSON cannot hold, and
 * an error of a conversion (a jsonb number beyond a double, 1e1000), fail
 * the item with the reason in ev->render_error: one row never fails the
 * batch.  The conversion runs in a subtransaction, so that an error of it
 * is caught and the read transaction goes on.
 */
static void
mongo_render_row(PolyglotRoute *route, PolyglotEvent *ev, Datum *values, bool *isnull,
				 Oid *types, MemoryContext cxt)
{
	bson_t		doc = BSON_INITIALIZER;
	char	   *volatile error = NULL;
	const char *volatile column = NULL;
	volatile bool ok = true;
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		char	   *err = NULL;

		ok = append_id(&doc, route, ev->key, route_bson_flags(route), &err);
		if (!ok)
			error = psprintf("_id: %s", err);
		if (ok && values)
		{
			ListCell   *lc;
			int			c = 0;

			foreach(lc, route->columns)
			{
				const char *name = (const char *) lfirst(lc);

				/* the key is the _id; a column of that name cannot be another */
				column = name;
				if (strcmp(name, "_id") != 0 &&
					!polyglot_bson_append_datum(&doc, name, -1, values[c], isnull[c],
												types[c], route_bson_flags(route), &err))
				{
					ok = false;
					error = psprintf("column \"%s\": %s", name, err);
					break;
				}
				c++;
			}
		}
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		/*
		 * Only a value that cannot be converted is the row's fault (a data
		 * exception, a limit such as nesting depth); a cancel, a shutdown,
		 * running out of memory, an I/O error or a lock timeout is not.
		 */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		{
			bson_destroy(&doc);
			ReThrowError(edata);
		}
		ok = false;
		error = column ? psprintf("column \"%s\": %s", column, edata->message)
			: psprintf("_id: %s", edata->message);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	CurrentResourceOwner = owner;

	if (ok)
	{
		ev->row = MemoryContextAlloc(cxt, doc.len);
		memcpy(ev->row, bson_get_data(&doc), doc.len);
		ev->row_len = doc.len;
	}
	else
		ev->render_error = MemoryContextStrdup(cxt, error);
	bson_destroy(&doc);
}

/* The outcome of a batch: send() does the work, finish() reports it */
typedef struct MongoSent
{
	PolyglotItemResult *results;
	int			nitems;
} MongoSent;

/*
 * Marks the failed item of each write error of a bulk reply.  Returns the
 * highest failed write's index, or -1 when the reply names none; *transient
 * is set when one of them means "not now".  With duplicate, a duplicate key
 * error sets the item's flag there instead of failing it.
 */
static int
mark_write_errors(const bson_t *reply, const int *opitem, int nops,
				  PolyglotItemResult *results, bool *transient, bool *duplicate)
{
	bson_iter_t iter,
				errors;
	int			last = -1;

	*transient = false;
	if (!bson_iter_init_find(&iter, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
		!bson_iter_recurse(&iter, &errors))
		return -1;
	while (bson_iter_next(&errors))
	{
		bson_iter_t err;
		int32		index = -1;
		int32		code = 0;
		const char *message = "write error";

		if (!BSON_ITER_HOLDS_DOCUMENT(&errors) || !bson_iter_recurse(&errors, &err))
			continue;
		while (bson_iter_next(&err))
		{
			const char *k = bson_iter_key(&err);

			if (strcmp(k, "index") == 0 && BSON_ITER_HOLDS_NUMBER(&err))
				index = (int32) bson_iter_as_int64(&err);
			else if (strcmp(k, "code") == 0 && BSON_ITER_HOLDS_NUMBER(&err))
				code = (int32) bson_iter_as_int64(&err);
			else if (strcmp(k, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&err))
				message = bson_iter_utf8(&err, NULL);
		}
		if (index < 0 || index >= nops)
			continue;
		/* an insert of a key that exists: the caller writes it another way */
		if (duplicate && code == MONGO_DUPLICATE_KEY)
		{
			duplicate[opitem[index]] = true;
			continue;
		}
		if (is_transient_code(code))
			*transient = true;
		results[opitem[index]].status = POLYGLOT_ITEM_FAILED;
		results[opitem[index]].error = psprintf("%s (code %d)", message, code);
		last = Max(last, index);
	}
	return last;
}

/*
 * The rendered document of an item and its _id; false, with the item's
 * result marked failed, when the row could not be rendered.
 */
static bool
item_document(PolyglotEvent *ev, bson_t *doc, bson_iter_t *id, PolyglotItemResult *result)
{
	if (ev->render_error == NULL && ev->row != NULL &&
		bson_init_static(doc, ev->row, ev->row_len) && bson_iter_init_find(id, doc, "_id"))
		return true;
	result->status = POLYGLOT_ITEM_FAILED;
	result->error = ev->render_error ? ev->render_error
		: pstrdup("the row could not be rendered as BSON");
	return false;
}

/*
 * One unordered insert of the items flagged in which (and not failed).
 * A duplicate key sets the item's flag in duplicate when that is given,
 * else fails the item; other write errors fail their items, and a transient
 * one or an error without write errors fails the batch.
 */
static void
insert_items(MongoConn *conn, mongoc_collection_t *coll, PolyglotItem **items, int nitems,
			 const bool *which, bool *duplicate, PolyglotItemResult *results)
{
	bson_t	   *unordered = BCON_NEW("ordered", BCON_BOOL(false));
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll,
																					 unordered);
	int		   *opitem = palloc(sizeof(int) * Max(nitems, 1));
	int			nops = 0;
	int			i;
	bson_t		reply;
	bson_error_t error;
	bool		transient;

	for (i = 0; i < nitems; i++)
	{
		PolyglotEvent *ev = items[i]->event;
		bson_t		doc;

		if (!which[i] || results[i].status == POLYGLOT_ITEM_FAILED)
			continue;
		bson_init_static(&doc, ev->row, ev->row_len);
		if (!mongoc_bulk_operation_insert_with_opts(bulk, &doc, NULL, &error))
		{
			results[i].status = POLYGLOT_ITEM_FAILED;
			results[i].error = pstrdup(error.message);
			continue;
		}
		opitem[nops++] = i;
	}
	if (nops > 0 && !mongoc_bulk_operation_execute(bulk, &reply, &error))
	{
		bool		named = mark_write_errors(&reply, opitem, nops, results, &transient,
											  duplicate) >= 0;

		/* only duplicates: mark_write_errors returned -1 but named them */
		if (!named && duplicate)
			for (i = 0; i < nops && !named; i++)
				named = duplicate[opitem[i]];
		if (!named || transient)
		{
			bson_destroy(&reply);
			mongoc_bulk_operation_destroy(bulk);
			bson_destroy(unordered);
			mongoc_collection_destroy(coll);
			report_batch_error(conn, &error, "an insert of a batch's documents");
		}
	}
	if (nops > 0)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(unordered);
	pfree(opitem);
}

/*
 * The FerretDB way, where a statement that finds a document by a numeric
 * _id scans the collection but an insert is an indexed write:
 *
 * - rows whose change was an INSERT (or a backfill) go first, as one
 *   unordered insert: a new key costs no scan.  A key that exists after
 *   all (a redelivery, a backfill over old documents) fails with a
 *   duplicate key error and joins the rest;
 * - the rest: one deleteMany of all their _ids, then one unordered insert
 *   of the rows that exist.  Between the two, a reader may miss a document
 *   for a moment; a failure between them leaves the batch unacknowledged,
 *   and its redelivery puts the documents back.
 */
static void
send_delete_insert(MongoConn *conn, mongoc_collection_t *coll, PolyglotItem **items,
				   int nitems, PolyglotItemResult *results)
{
	bson_t		filter = BSON_INITIALIZER;
	bson_value_t *ids = palloc0(sizeof(bson_value_t) * Max(nitems, 1));
	bson_t		reply;
	bson_error_t error;
	bool	   *fresh = palloc0(sizeof(bool) * Max(nitems, 1));
	bool	   *rest = palloc0(sizeof(bool) * Max(nitems, 1));
	int			nfresh = 0;
	int			nids = 0;
	int			i;
	bool		ok;

	for (i = 0; i < nitems; i++)
	{
		PolyglotEvent *ev = items[i]->event;
		bson_t		doc;
		bson_iter_t id;

		if (!item_document(ev, &doc, &id, &results[i]))
			continue;
		if (ev->found && (ev->op == 'I' || ev->op == 'B'))
		{
			fresh[i] = true;
			nfresh++;
		}
		else
			rest[i] = true;
	}
	if (nfresh > 0)
		insert_items(conn, coll, items, nitems, fresh, rest, results);

	for (i = 0; i < nitems; i++)
	{
		bson_t		doc;
		bson_iter_t id;

		if (!rest[i] || results[i].status == POLYGLOT_ITEM_FAILED)
			continue;
		bson_init_static(&doc, items[i]->event->row, items[i]->event->row_len);
		if (!bson_iter_init_find(&id, &doc, "_id"))
			continue;
		ids[nids++] = *bson_iter_value(&id);
	}
	polyglot_bson_append_id_in(&filter, ids, nids);

	if (nids > 0)
	{
		ok = mongoc_collection_delete_many(coll, &filter, NULL, &reply, &error);
		bson_destroy(&reply);
		if (!ok)
		{
			bson_destroy(&filter);
			mongoc_collection_destroy(coll);
			report_batch_error(conn, &error, "a delete of a batch's documents");
		}
	}
	bson_destroy(&filter);

	/* the rest's rows that exist; a duplicate now is an error of its item */
	for (i = 0; i < nitems; i++)
		if (rest[i] && !items[i]->event->found)
			rest[i] = false;
	insert_items(conn, coll, items, nitems, rest, NULL, results);
	pfree(fresh);
	pfree(rest);
}

/* The collection of a route (the database option, else the server's) */
static mongoc_collection_t *
route_collection(PolyglotRoute *route, MongoConn **connp)
{
	const char *database = polyglot_mongo_route(route)->database;
	const char *collection = polyglot_mongo_route(route)->collection;
	MongoConn  *conn = polyglot_mongo_get_connection(route->server, route->user);

	if (database == NULL || database[0] == '\0')
		database = conn->database;
	if (database[0] == '\0' || collection == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("route %d names no MongoDB database or collection", route->id),
				 errhint("Give the route a \"database\" option, or the server one.")));
	*connp = conn;
	return mongoc_client_get_collection(mongo_client(conn), database, collection);
}

/*
 * Writes a batch: ordered bulk writes from the first unwritten item until
 * every item is written or has failed.
 */
static void *
mongo_send(PolyglotRoute *route, List *items)
{
	int			nitems = list_length(items);
	MongoSent  *sent = palloc0(sizeof(MongoSent));
	PolyglotItem **byindex = palloc(sizeof(PolyglotItem *) * Max(nitems, 1));
	int		   *opitem = palloc(sizeof(int) * Max(nitems, 1));
	MongoConn  *conn;
	mongoc_collection_t *coll;
	bson_t	   *bulk_opts;
	bson_t	   *upsert;
	ListCell   *lc;
	int			start = 0;
	int			i;

	polyglot_route_require_server(route);
	sent->results = palloc0(sizeof(PolyglotItemResult) * Max(nitems, 1));
	sent->nitems = nitems;
	i = 0;
	foreach(lc, items)
		byindex[i++] = (PolyglotItem *) lfirst(lc);

	coll = route_collection(route, &conn);

	/*
	 * FerretDB 1.x on SQLite scans the collection for every statement of an
	 * update or delete command (20 ms each with 3,000 documents): there a
	 * batch goes as inserts where it can (send_delete_insert).
	 */
	polyglot_mongo_read_flavor(conn);
	if (conn->ferretdb)
	{
		send_delete_insert(conn, coll, byindex, nitems, sent->results);
		mongoc_collection_destroy(coll);
		return sent;
	}
	bulk_opts = BCON_NEW("ordered", BCON_BOOL(true));
	upsert = BCON_NEW("upsert", BCON_BOOL(true));

	while (start < nitems)
	{
		mongoc_bulk_operation_t *bulk;
		bson_t		reply;
		bson_error_t error;
		int			nops = 0;
		int			index;
		bool		transient;
		bool		ok;

		bulk = mongoc_collection_create_bulk_operation_with_opts(coll, bulk_opts);
		for (i = start; i < nitems; i++)
		{
			PolyglotEvent *ev = byindex[i]->event;
			bson_t		doc;
			bson_t		selector = BSON_INITIALIZER;
			bson_iter_t id;

			if (!item_document(ev, &doc, &id, &sent->results[i]))
				continue;
			polyglot_bson_append_eq(&selector, "_id", 3, bson_iter_value(&id));
			if (ev->found)
				ok = mongoc_bulk_operation_replace_one_with_opts(bulk, &selector, &doc,
																 upsert, &error);
			else
				ok = mongoc_bulk_operation_remove_one_with_opts(bulk, &selector, NULL, &error);
			bson_destroy(&selector);
			if (!ok)
			{
				/* refused before sending (a field name MongoDB does not allow...) */
				sent->results[i].status = POLYGLOT_ITEM_FAILED;
				sent->results[i].error = pstrdup(error.message);
				continue;
			}
			opitem[nops++] = i;
		}
		if (nops == 0)
		{
			mongoc_bulk_operation_destroy(bulk);
			break;
		}

		ok = mongoc_bulk_operation_execute(bulk, &reply, &error) != 0;
		mongoc_bulk_operation_destroy(bulk);
		if (ok)
		{
			bson_destroy(&reply);
			break;
		}
		/* ordered: the reply names the one write that stopped the bulk */
		index = mark_write_errors(&reply, opitem, nops, sent->results, &transient, NULL);
		if (index < 0 || transient)
		{
			/* the batch as a whole: network, no primary, write concern... */
			bson_destroy(&reply);
			bson_destroy(bulk_opts);
			bson_destroy(upsert);
			mongoc_collection_destroy(coll);
			report_batch_error(conn, &error, "a bulk write");
		}
		bson_destroy(&reply);
		/* writes before it are done; it failed; those after go again */
		start = opitem[index] + 1;
	}
	bson_destroy(bulk_opts);
	bson_destroy(upsert);
	mongoc_collection_destroy(coll);
	return sent;
}

static void
mongo_finish(PolyglotRoute *route, List *items, void *state, PolyglotItemResult *results)
{
	MongoSent  *sent = (MongoSent *) state;

	memcpy(results, sent->results, sizeof(PolyglotItemResult) * sent->nitems);
}

/* Nothing is left in flight: each bulk write was answered in send(). */
static void
mongo_abandon(PolyglotRoute *route, void *state)
{
}

/* ---------------------------------------------------------------- verify */

/* A document as jsonb, through canonical extended JSON (types kept: {"$numberInt": ...}) */
static Datum
document_jsonb(const bson_t *doc)
{
	char	   *json = bson_as_canonical_extended_json(doc, NULL);
	char	   *copy = pstrdup(json ? json : "null");

	bson_free(json);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(copy));
}

/* An _id value as canonical extended JSON, to match documents by _id */
static char *
id_json(const bson_value_t *id)
{
	bson_t		doc = BSON_INITIALIZER;
	char	   *json;
	char	   *copy;

	bson_append_value(&doc, "_id", 3, id);
	json = bson_as_canonical_extended_json(&doc, NULL);
	copy = pstrdup(json ? json : "");
	bson_free(json);
	bson_destroy(&doc);
	return copy;
}

/* An _id value as a person reads it: a string or number as is, else relaxed JSON */
static char *
id_name(const bson_value_t *id)
{
	switch (id->value_type)
	{
		case BSON_TYPE_UTF8:
			return pnstrdup(id->value.v_utf8.str, id->value.v_utf8.len);
		case BSON_TYPE_INT32:
			return psprintf("%d", id->value.v_int32);
		case BSON_TYPE_INT64:
			return psprintf(INT64_FORMAT, (int64) id->value.v_int64);
		default:
			return polyglot_bson_value_json(id, "?");
	}
}

/* The rows of a chunk against the collection: one find by _id $in */
static void
mongo_verify(PolyglotRoute *route, List *items, PolyglotVerdict *verdicts, char **names)
{
	int			n = list_length(items);
	char	  **ids = palloc0(sizeof(char *) * Max(n, 1));
	List	   *found_ids = NIL;
	List	   *found_docs = NIL;
	bson_t		filter = BSON_INITIALIZER;
	bson_value_t *idvalues = palloc0(sizeof(bson_value_t) * Max(n, 1));
	MongoConn  *conn;
	mongoc_collection_t *coll = route_collection(route, &conn);
	mongoc_cursor_t *volatile cursor = NULL;
	ListCell   *lc;
	int			i;
	int			nids = 0;

	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		bson_t		doc;
		bson_iter_t id;

		if (ev->render_error == NULL && ev->row != NULL &&
			bson_init_static(&doc, ev->row, ev->row_len) && bson_iter_init_find(&id, &doc, "_id"))
		{
			/* the value points into ev->row, which outlives the filter */
			idvalues[nids++] = *bson_iter_value(&id);
			ids[i] = id_json(bson_iter_value(&id));
			names[i] = id_name(bson_iter_value(&id));
		}
		i++;
	}
	polyglot_bson_append_id_in(&filter, idvalues, nids);

	PG_TRY();
	{
		const bson_t *doc;

		cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
		while (mongoc_cursor_next(cursor, &doc))
		{
			bson_iter_t id;

			if (!bson_iter_init_find(&id, doc, "_id"))
				continue;
			found_ids = lappend(found_ids, id_json(bson_iter_value(&id)));
			found_docs = lappend(found_docs, DatumGetPointer(document_jsonb(doc)));
		}
	}
	PG_CATCH();
	{
		mongoc_cursor_destroy(cursor);
		mongoc_collection_destroy(coll);
		bson_destroy(&filter);
		PG_RE_THROW();
	}
	PG_END_TRY();
	{
		bson_error_t error;
		bool		failed = mongoc_cursor_error(cursor, &error);

		/* the cursor goes before an error drops the connection it uses */
		mongoc_cursor_destroy(cursor);
		mongoc_collection_destroy(coll);
		bson_destroy(&filter);
		if (failed)
			polyglot_mongo_report_error(conn, &error, "reading documents to verify");
	}

	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		ListCell   *ic,
				   *dc;

		verdicts[i] = POLYGLOT_MISSING;
		/* a row the store cannot hold (it is dead-lettered) cannot be there */
		if (ids[i] == NULL)
			verdicts[i] = POLYGLOT_DIFFERENT;
		else
			forboth(ic, found_ids, dc, found_docs)
			{
				bson_t		expected;

				if (strcmp((char *) lfirst(ic), ids[i]) != 0)
					continue;
				verdicts[i] = POLYGLOT_DIFFERENT;
				if (bson_init_static(&expected, ev->row, ev->row_len) &&
					DatumGetBool(DirectFunctionCall2(jsonb_eq, document_jsonb(&expected),
													 PointerGetDatum(lfirst(dc)))))
					verdicts[i] = POLYGLOT_SAME;
				break;
			}
		i++;
	}
}

/*
 * The _ids of a collection, a cursor over them kept between pages, on a
 * client pinned until the cursor goes
 */
typedef struct MongoKeyScan
{
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	MongoConn  *conn;
	PolyglotConnPin pin;
	bool		done;
	MemoryContextCallback cleanup;
} MongoKeyScan;

static void
key_scan_cleanup(void *arg)
{
	MongoKeyScan *ks = (MongoKeyScan *) arg;

	polyglot_mongo_release_pinned(&ks->cursor, &ks->coll, &ks->pin);
}

/* A conversion of an _id value to a key column's text, under polyglot_try() */
typedef struct IdConversion
{
	const bson_iter_t *iter;
	Oid			typid;
	char	   *text;
} IdConversion;

static void
convert_id(void *arg)
{
	IdConversion *conv = (IdConversion *) arg;
	bool		isnull;
	Datum		d = polyglot_bson_to_datum(conv->iter, conv->typid, -1, &isnull);

	if (!isnull)
		conv->text = polyglot_key_text(conv->typid, d);
}

/*
 * The text of a key column's value stored in _id, as the capture trigger
 * writes the column's keys, or NULL
 */
static char *
id_value_text(const bson_iter_t *iter, Oid typid)
{
	IdConversion conv = {iter, typid, NULL};

	switch (bson_iter_type(iter))
	{
		case BSON_TYPE_UTF8:
			{
				uint32		len;
				const char *s = bson_iter_utf8(iter, &len);

				return memchr(s, '\0', len) ? NULL : pnstrdup(s, len);
			}
		case BSON_TYPE_INT32:
			return psprintf("%d", bson_iter_int32(iter));
		case BSON_TYPE_INT64:
			return psprintf(INT64_FORMAT, (int64) bson_iter_int64(iter));
		default:
			break;
	}
	/* other types through the column type's conversion; one that fails is no key */
	if (!polyglot_try(convert_id, &conv))
		return NULL;
	return conv.text;
}

/* The key an _id stands for: the value, or a subdocument of the key columns in order */
static List *
id_key(PolyglotRoute *route, const bson_iter_t *id)
{
	List	   *key = NIL;
	ListCell   *kc,
			   *tc;
	bson_iter_t child;

	if (list_length(route->key_columns) == 1)
	{
		char	   *text = id_value_text(id, linitial_oid(route->key_typids));

		return text ? list_make1(text) : NIL;
	}
	if (!BSON_ITER_HOLDS_DOCUMENT(id) || !bson_iter_recurse(id, &child))
		return NIL;
	forboth(kc, route->key_columns, tc, route->key_typids)
	{
		char	   *text;

		if (!bson_iter_next(&child) || strcmp(bson_iter_key(&child), (char *) lfirst(kc)) != 0 ||
			(text = id_value_text(&child, lfirst_oid(tc))) == NULL)
			return NIL;
		key = lappend(key, text);
	}
	return bson_iter_next(&child) ? NIL : key;
}

static List *
mongo_store_keys(PolyglotRoute *route, void **state, MemoryContext state_cxt)
{
	MongoKeyScan *ks = (MongoKeyScan *) *state;
	List	   *page = NIL;
	const bson_t *doc;
	bson_error_t error;

	if (ks == NULL)
	{
		bson_t		filter = BSON_INITIALIZER;
		bson_t	   *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}",
									"batchSize", BCON_INT32(1000));

		ks = MemoryContextAllocZero(state_cxt, sizeof(MongoKeyScan));
		ks->cleanup.func = key_scan_cleanup;
		ks->cleanup.arg = ks;
		MemoryContextRegisterResetCallback(state_cxt, &ks->cleanup);
		*state = ks;
		ks->coll = route_collection(route, &ks->conn);
		polyglot_conncache_pin(&ks->conn->base, &ks->pin);
		ks->cursor = mongoc_collection_find_with_opts(ks->coll, &filter, opts, NULL);
		bson_destroy(opts);
	}
	if (ks->done)
		return NIL;
	while (list_length(page) < 1000 && mongoc_cursor_next(ks->cursor, &doc))
	{
		bson_iter_t id;
		PolyglotStoreKey *sk;

		if (!bson_iter_init_find(&id, doc, "_id"))
			continue;
		sk = palloc0(sizeof(PolyglotStoreKey));
		sk->name = id_name(bson_iter_value(&id));
		sk->key = id_key(route, &id);
		page = lappend(page, sk);
	}
	if (page == NIL || list_length(page) < 1000)
	{
		bool		failed = mongoc_cursor_error(ks->cursor, &error);
		PolyglotConnPin pin = ks->pin;

		/* the cursor goes, and the client may with it */
		ks->done = true;
		key_scan_cleanup(ks);
		if (failed)
			polyglot_mongo_report_pinned_error(ks->conn, &pin, &error, "listing the documents to verify");
	}
	return page;
}

const PolyglotSink polyglot_mongo_sink = {
	POLYGLOT_SINK_CALLBACKS(mongo),
	.render_row = mongo_render_row,
};
