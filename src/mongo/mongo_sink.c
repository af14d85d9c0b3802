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

#include "utils/lsyscache.h"
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

	if (route->server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the server of route %d no longer exists", route->id),
				 errhint("Drop the route with polyglot.unsync().")));
	conn = mongo_get_connection(route->server, route->user);
	mongo_read_flavor(conn);
	if (!conn->has_decimal128)
		*flags |= POLYGLOT_BSON_NO_DECIMAL128;
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
 * row exists, or as {_id} when it is gone.
 */
static void
mongo_render_row(PolyglotRoute *route, PolyglotEvent *ev, Datum *values, bool *isnull,
				 Oid *types, MemoryContext cxt)
{
	bson_t		doc = BSON_INITIALIZER;
	char	   *error = NULL;
	bool		ok = true;

	PG_TRY();
	{
		ok = append_id(&doc, route, ev->key, route_bson_flags(route), &error);
		if (ok && values)
		{
			ListCell   *lc;
			int			c = 0;

			foreach(lc, route->columns)
			{
				const char *name = (const char *) lfirst(lc);

				/* the key is the _id; a column of that name cannot be another */
				if (strcmp(name, "_id") != 0 &&
					!polyglot_bson_append_datum(&doc, name, -1, values[c], isnull[c],
												types[c], route_bson_flags(route), &error))
				{
					ok = false;
					error = psprintf("column \"%s\": %s", name, error);
					break;
				}
				c++;
			}
		}
	}
	PG_CATCH();
	{
		bson_destroy(&doc);
		PG_RE_THROW();
	}
	PG_END_TRY();

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
			mongo_report_error(conn, &error, "an insert of a batch's documents");
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
	bson_t		in,
				ids;
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

	bson_append_document_begin(&filter, "_id", 3, &in);
	bson_append_array_begin(&in, "$in", 3, &ids);
	for (i = 0; i < nitems; i++)
	{
		bson_t		doc;
		bson_iter_t id;
		const char *ikey;
		char		buf[16];

		if (!rest[i] || results[i].status == POLYGLOT_ITEM_FAILED)
			continue;
		bson_init_static(&doc, items[i]->event->row, items[i]->event->row_len);
		if (!bson_iter_init_find(&id, &doc, "_id"))
			continue;
		bson_uint32_to_string(nids++, &ikey, buf, sizeof(buf));
		bson_append_iter(&ids, ikey, -1, &id);
	}
	bson_append_array_end(&in, &ids);
	bson_append_document_end(&filter, &in);

	if (nids > 0)
	{
		ok = mongoc_collection_delete_many(coll, &filter, NULL, &reply, &error);
		bson_destroy(&reply);
		if (!ok)
		{
			bson_destroy(&filter);
			mongoc_collection_destroy(coll);
			mongo_report_error(conn, &error, "a delete of a batch's documents");
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
	char	   *database = polyglot_route_option(route, "database");
	char	   *collection = polyglot_route_option(route, "collection");
	MongoConn  *conn;
	mongoc_collection_t *coll;
	bson_t	   *bulk_opts;
	bson_t	   *upsert;
	ListCell   *lc;
	int			start = 0;
	int			i;

	if (route->server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the server of route %d no longer exists", route->id),
				 errhint("Drop the route with polyglot.unsync().")));
	sent->results = palloc0(sizeof(PolyglotItemResult) * Max(nitems, 1));
	sent->nitems = nitems;
	i = 0;
	foreach(lc, items)
		byindex[i++] = (PolyglotItem *) lfirst(lc);

	conn = mongo_get_connection(route->server, route->user);
	if (database == NULL || database[0] == '\0')
		database = conn->database;
	if (database[0] == '\0' || collection == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("route %d names no MongoDB database or collection", route->id),
				 errhint("Give the route a \"database\" option, or the server one.")));

	/*
	 * FerretDB 1.x on SQLite scans the collection for every statement of an
	 * update or delete command (20 ms each with 3,000 documents): there a
	 * batch goes as inserts where it can (send_delete_insert).
	 */
	mongo_read_flavor(conn);
	coll = mongoc_client_get_collection(mongo_client(conn), database, collection);
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
			bson_append_iter(&selector, "_id", 3, &id);
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
			mongo_report_error(conn, &error, "a bulk write");
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

const PolyglotSink polyglot_mongo_sink = {
	.prepare = mongo_prepare,
	.payload = mongo_payload,
	.render_row = mongo_render_row,
	.send = mongo_send,
	.finish = mongo_finish,
	.abandon = mongo_abandon,
};
