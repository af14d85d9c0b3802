/*-------------------------------------------------------------------------
 *
 * elastic_sink.c
 *		Delivery of a batch to Elasticsearch or OpenSearch: one _bulk request.
 *
 * Each row that exists becomes an index action with its document, each row
 * that is gone a delete action, both with version_type=external and, as the
 * version, the time the worker read the row's state (microseconds since
 * 1970).  The document is that state, so a higher version always carries a
 * state at least as new: a late or repeated request of an older read is
 * refused with 409, which counts as done, as the index already holds newer
 * data (and is counted in polyglot.status.stale).  (Outbox ids would not do: they start again when the extension or
 * the database is recreated, and every write would then be refused.)
 *
 * The route's options: index (filled in by polyglot.sync()), routing (a key
 * column).  _id is the key: its value as text, or for a composite key the
 * JSON array of the values as text.
 *
 * Per item: 2xx, 409 (stale) and 404 of a delete (already gone) are done;
 * 429 and 5xx fail the whole batch (the route backs off, the batch comes
 * again and its writes are idempotent); anything else (a mapping or parse
 * error) fails that key, which is retried, then dead-lettered.  A request
 * answered 400 or 413 as a whole is a data exception: the batch goes again
 * in parts (dispatch.c), so that only the key at fault fails; an _id over
 * 512 bytes, which would cause one, fails its key before sending.
 *
 * While polyglot.reindex() fills a new index for the route (the options'
 * "reindex", elastic_reindex.c), each key has a second action, for that
 * index, with the same version and document: the key is done when both
 * are, and fails when either fails.
 *
 * Documents are JSON rendered from the row's values by
 * polyglot_elastic_append_json_value(): json_writer.c with ELASTIC_JSON_RULES.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "pg_polyglot.h"
#include "core/dispatch.h"
#include "elastic/elastic.h"

/* ---------------------------------------------------------------- the sink */

/*
 * A batch: its _bulk body, and once its answer came, the results.  send()
 * starts the request and returns; the answer is waited for by the next
 * send() (one request at a time per connection: the worker reads the next
 * batch while the server indexes this one) or by finish().  The request
 * in flight holds its connection's handle pinned: a change of the server's
 * or user mapping's options meanwhile gives later batches a new handle,
 * never frees this one under the request.
 */
typedef struct ElasticSent
{
	ElasticConn *conn;
	PolyglotConnPin pin;		/* the handle of the request in flight */
	StringInfoData body;
	int		   *opitem;			/* item of each action */
	int			nops;
	int			nitems;
	int			first_op;		/* actions before it went in earlier requests */
	bool		completed;
	PolyglotItemResult *results;
	/*
	 * The index of a reindex under way, or NULL: then each key has two
	 * actions, the route's index's (even action numbers), then this one's
	 */
	const char *reindex_into;
	const char *index;			/* the route's */
} ElasticSent;

/* The route's request under way, across send() and finish() */
typedef struct ElasticRouteState
{
	ElasticSent *inflight;
} ElasticRouteState;

/* the longest _id Elasticsearch and OpenSearch take, in bytes */
#define ELASTIC_MAX_ID_BYTES	512

/* the largest _bulk body sent in one request (servers refuse 100 MB) */
#define ELASTIC_BULK_MAX_BYTES	(32 * 1024 * 1024)

#define BULK_PATH "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"


static PolyglotPayload
elastic_payload(PolyglotRoute *route)
{
	return POLYGLOT_PAYLOAD_DATUMS;
}

static void
elastic_prepare(PolyglotRoute *route)
{
	polyglot_route_require_server(route);
	route->sink_private = palloc0(sizeof(ElasticRouteState));
}

/*
 * ev->row: the version (the time of this read, an int64), then for a row
 * that exists its document.
 */
static void
elastic_render_row(PolyglotRoute *route, PolyglotEvent *ev, Datum *values, bool *isnull,
				   Oid *types, MemoryContext cxt)
{
	StringInfoData buf;
	ListCell   *lc;
	int			c = 0;
	MemoryContext old;
	static int64 last_version = 0;
	int64		version = (int64) GetCurrentTimestamp() +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	/* never below this process's previous version, should the clock step back */
	if (version <= last_version)
		version = last_version + 1;
	last_version = version;

	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &version, sizeof(version));
	if (values == NULL)
	{
		MemoryContextSwitchTo(old);
		ev->row = buf.data;
		ev->row_len = buf.len;
		return;
	}
	appendStringInfoChar(&buf, '{');
	foreach(lc, route->columns)
	{
		if (c > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, (const char *) lfirst(lc));
		appendStringInfoChar(&buf, ':');
		polyglot_elastic_append_json_value(&buf, values[c], isnull[c], types[c]);
		c++;
	}
	appendStringInfoChar(&buf, '}');
	MemoryContextSwitchTo(old);
	ev->row = buf.data;
	ev->row_len = buf.len;
}

/* _id: the key's value, or the JSON array of a composite key's values */
static char *
id_text(PolyglotRoute *route, List *key)
{
	ListCell   *lc;
	StringInfoData arr;

	if (list_length(key) == 1)
		return pstrdup((const char *) linitial(key));
	initStringInfo(&arr);
	appendStringInfoChar(&arr, '[');
	foreach(lc, key)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&arr, ',');
		escape_json(&arr, (const char *) lfirst(lc));
	}
	appendStringInfoChar(&arr, ']');
	return arr.data;
}

/* _id as a JSON string */
static void
append_id(StringInfo buf, PolyglotRoute *route, List *key)
{
	char	   *id = id_text(route, key);

	escape_json(buf, id);
	pfree(id);
}

/* The routing key column's value of a key, or NULL */
static const char *
routing_value(PolyglotRoute *route, List *key, const char *routing)
{
	ListCell   *kc,
			   *vc;

	if (routing == NULL)
		return NULL;
	forboth(kc, route->key_columns, vc, key)
		if (strcmp((const char *) lfirst(kc), routing) == 0)
			return (const char *) lfirst(vc);
	return NULL;
}

/* The version elastic_render_row() put before the document */
static int64
row_version(PolyglotEvent *ev)
{
	int64		v;

	memcpy(&v, ev->row, sizeof(v));
	return v;
}

/*
 * Classifies the answer to the _bulk request of actions first .. first +
 * count - 1 of a batch.  Ereports when the batch as a whole failed.
 */
/*
 * Is an HTTP 400 Elasticsearch's own refusal of what a request holds (a
 * JSON error with a type), rather than a proxy's answer or that of a URL
 * that is not Elasticsearch?  Only the former can be a key's fault.
 */
static bool
store_refused(ElasticResponse *response)
{
	Jsonb	   *answer = response->body ? polyglot_elastic_try_parse_json(response->body) : NULL;
	JsonbContainer *error;

	if (answer == NULL || !JB_ROOT_IS_OBJECT(answer))
		return false;
	error = polyglot_elastic_json_object(&answer->root, "error");
	return error != NULL && JsonContainerIsObject(error) &&
		polyglot_elastic_json_string(error, "type") != NULL;
}

static void
classify_bulk(ElasticConn *conn, ElasticResponse *response, ElasticSent *sent, int first,
			  int count)
{
	Jsonb	   *reply;
	JsonbContainer *items;
	int			i;
	char	   *transient_error = NULL;

	if ((response->status == 400 && store_refused(response)) || response->status == 413)
	{
		/*
		 * The request refused as a whole for what it holds: a data
		 * exception, so that the batch goes again in parts and only the
		 * key at fault fails (dispatch.c).
		 */
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			polyglot_elastic_report_error(conn, response, "a _bulk request");
		}
		PG_CATCH();
		{
			polyglot_rethrow_as_data_exception(cxt);
		}
		PG_END_TRY();
	}
	if (response->status >= 400)
		polyglot_elastic_report_error(conn, response, "a _bulk request");
	reply = polyglot_elastic_parse_response(conn, response, "a _bulk request");

	items = polyglot_elastic_json_object(&reply->root, "items");
	if (items == NULL || !JsonContainerIsArray(items) ||
		JsonContainerSize(items) != (uint32) count)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" answered a _bulk request of %d actions without one result per action",
						conn->servername, count)));
	for (i = 0; i < count; i++)
	{
		JsonbValue *entry = getIthJsonbValueFromContainer(items, i);
		PolyglotItemResult *result = &sent->results[sent->opitem[first + i]];
		JsonbContainer *action = NULL;
		bool		is_delete = false;
		int			status;
		char	   *error;

		if (entry && entry->type == jbvBinary)
		{
			action = polyglot_elastic_json_object(entry->val.binary.data, "index");
			if (action == NULL)
				is_delete = (action = polyglot_elastic_json_object(entry->val.binary.data, "delete")) != NULL;
		}
		if (action == NULL)
		{
			result->status = POLYGLOT_ITEM_FAILED;
			result->error = pstrdup("no result for this action in the _bulk response");
			continue;
		}
		status = polyglot_elastic_json_int(action, "status", 0);
		if ((status >= 200 && status < 300) || (is_delete && status == 404))
			continue;
		/* the index holds a newer version: done, and counted in status.stale */
		if (status == 409)
		{
			/* (a key's other action, during a reindex, may have failed) */
			if (result->status == POLYGLOT_ITEM_OK)
				result->status = POLYGLOT_ITEM_STALE;
			continue;
		}
		error = polyglot_elastic_error_text(polyglot_elastic_json_object(action, "error"));
		error = psprintf("HTTP %d: %s", status, error ? error : "error: (no reason given)");
		/*
		 * During a reindex, an error says which index it is of (the route's
		 * own: even actions; the new one: odd actions): polyglot.reindex()
		 * tells them apart
		 */
		if (sent->reindex_into)
			error = psprintf("%s%s",
							 polyglot_elastic_reindex_error_prefix((first + i) % 2 == 1 ?
																   sent->reindex_into : sent->index),
							 error);
		if (status == 429 || status >= 500 || status == 0)
		{
			if (transient_error == NULL)
				transient_error = error;
			continue;
		}
		result->status = POLYGLOT_ITEM_FAILED;
		result->error = error;
	}
	if (transient_error)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" could not take part of a batch now",
						conn->servername),
				 errdetail_internal("%s", transient_error)));
}

/* Waits for the answer to a batch's (last) _bulk request and classifies it */
static void
complete_batch(PolyglotRoute *route, ElasticSent *sent)
{
	ElasticRouteState *rs = (ElasticRouteState *) route->sink_private;
	ElasticResponse response;

	if (rs && rs->inflight == sent)
		rs->inflight = NULL;
	sent->completed = true;
	if (sent->nops == sent->first_op)
		return;
	polyglot_elastic_request_complete(sent->conn, &sent->pin, "POST", BULK_PATH, sent->body.data,
							 sent->body.len, &response);
	classify_bulk(sent->conn, &response, sent, sent->first_op, sent->nops - sent->first_op);
}

/*
 * Appends the action of an event to a _bulk body: an index action and its
 * document for a row, a delete action for a row that is gone.
 */
static void
append_action(StringInfo body, PolyglotRoute *route, PolyglotEvent *ev, const char *index,
			  const char *routing)
{
	appendStringInfoString(body, ev->found ? "{\"index\":{\"_index\":" : "{\"delete\":{\"_index\":");
	escape_json(body, index);
	appendStringInfoString(body, ",\"_id\":");
	append_id(body, route, ev->key);
	appendStringInfo(body, ",\"version\":" INT64_FORMAT ",\"version_type\":\"external\"",
					 row_version(ev));
	if (routing)
	{
		appendStringInfoString(body, ",\"routing\":");
		escape_json(body, routing);
	}
	appendStringInfoString(body, "}}\n");
	if (ev->found)
	{
		appendBinaryStringInfo(body, (char *) ev->row + sizeof(int64), ev->row_len - sizeof(int64));
		appendStringInfoChar(body, '\n');
	}
}

/*
 * Starts the _bulk request of a batch.  While polyglot.reindex() builds a
 * new index, each key has two actions, one per index, with the same
 * version: the key is done when both are, and fails when either fails.
 */
static void *
elastic_send(PolyglotRoute *route, List *items)
{
	int			nitems = list_length(items);
	ElasticRouteState *rs = (ElasticRouteState *) route->sink_private;
	ElasticSent *sent = palloc0(sizeof(ElasticSent));
	const char *index = polyglot_elastic_route(route)->index;
	const char *routing = polyglot_elastic_route(route)->routing;
	const char *reindex_into = polyglot_elastic_route(route)->reindex_into;
	StringInfoData body;
	ListCell   *lc;
	int			nops = 0;
	int		   *opitem = palloc(sizeof(int) * Max(nitems, 1) * (reindex_into ? 2 : 1));

	sent->results = palloc0(sizeof(PolyglotItemResult) * Max(nitems, 1));
	sent->nitems = nitems;
	sent->opitem = opitem;
	sent->reindex_into = reindex_into;
	sent->index = index;
	if (index == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("route %d has no index", route->id)));

	initStringInfo(&body);
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		const char *r = routing_value(route, ev->key, routing);
		int			n = foreach_current_index(lc);

		if (ev->render_error || ev->row == NULL || ev->row_len < sizeof(int64))
		{
			sent->results[n].status = POLYGLOT_ITEM_FAILED;
			sent->results[n].error = ev->render_error ? ev->render_error
				: pstrdup("the row could not be rendered as JSON");
			continue;
		}
		/* a longer _id fails the whole _bulk request with HTTP 400 */
		{
			char	   *id = id_text(route, ev->key);
			size_t		idlen = strlen(id);

			pfree(id);
			if (idlen > ELASTIC_MAX_ID_BYTES)
			{
				sent->results[n].status = POLYGLOT_ITEM_FAILED;
				sent->results[n].error =
					psprintf("the key as _id is %zu bytes long, and Elasticsearch takes at most %d",
							 idlen, ELASTIC_MAX_ID_BYTES);
				continue;
			}
		}
		/*
		 * A request stays under ELASTIC_BULK_MAX_BYTES (servers refuse
		 * large ones: 100 MB by default): what would pass it goes first,
		 * waited for here, and the rest makes a new request.
		 */
		if (nops > sent->first_op &&
			body.len + ev->row_len * (reindex_into ? 2 : 1) > ELASTIC_BULK_MAX_BYTES)
		{
			ElasticResponse response;

			if (sent->conn == NULL)
				sent->conn = polyglot_elastic_get_connection(route->server, route->user);
			if (rs && rs->inflight)
				complete_batch(route, rs->inflight);
			polyglot_elastic_request(sent->conn, "POST", BULK_PATH, body.data, body.len, &response);
			sent->opitem = opitem;
			classify_bulk(sent->conn, &response, sent, sent->first_op, nops - sent->first_op);
			resetStringInfo(&body);
			sent->first_op = nops;
		}
		opitem[nops++] = n;
		append_action(&body, route, ev, index, r);
		if (reindex_into)
		{
			opitem[nops++] = n;
			append_action(&body, route, ev, reindex_into, r);
		}
	}

	sent->nops = nops;
	sent->body = body;
	if (sent->conn == NULL)
		sent->conn = polyglot_elastic_get_connection(route->server, route->user);

	/* the previous batch's answer first: one request at a time */
	if (rs && rs->inflight)
		complete_batch(route, rs->inflight);
	if (nops > sent->first_op)
	{
		polyglot_elastic_request_start(sent->conn, &sent->pin, "POST", BULK_PATH, sent->body.data,
							  sent->body.len);
		if (rs)
			rs->inflight = sent;
	}
	else
		sent->completed = true;
	return sent;
}

static void
elastic_finish(PolyglotRoute *route, List *items, void *state, PolyglotItemResult *results)
{
	ElasticSent *sent = (ElasticSent *) state;

	if (!sent->completed)
		complete_batch(route, sent);
	memcpy(results, sent->results, sizeof(PolyglotItemResult) * list_length(items));
}

/*
 * A batch that will not be finished: its request, if under way, is
 * dropped, also when an error came while its answer was awaited.
 */
static void
elastic_abandon(PolyglotRoute *route, void *state)
{
	ElasticRouteState *rs = (ElasticRouteState *) route->sink_private;
	ElasticSent *sent = (ElasticSent *) state;

	if (sent == NULL)
		return;
	polyglot_elastic_request_cancel(&sent->pin);
	if (rs && rs->inflight == sent)
		rs->inflight = NULL;
}

/* ---------------------------------------------------------------- verify */

/*
 * The rows of a chunk against the index: one _mget (realtime), without
 * filter_path, which would re-render _source (numbers as doubles).
 */
static void
elastic_verify(PolyglotRoute *route, List *items, PolyglotVerdict *verdicts, char **names)
{
	const char *index = polyglot_elastic_route(route)->index;
	const char *routing = polyglot_elastic_route(route)->routing;
	ElasticConn *conn = polyglot_elastic_get_connection(route->server, route->user);
	ElasticResponse response;
	StringInfoData body;
	JsonbContainer *docs;
	Jsonb	   *jb;
	ListCell   *lc;
	int			n = list_length(items);
	int			i;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"docs\":[");
	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		const char *r = routing_value(route, ev->key, routing);

		names[i] = id_text(route, ev->key);
		appendStringInfoString(&body, i > 0 ? ",{\"_id\":" : "{\"_id\":");
		escape_json(&body, names[i]);
		if (r)
		{
			appendStringInfoString(&body, ",\"routing\":");
			escape_json(&body, r);
		}
		appendStringInfoChar(&body, '}');
		i++;
	}
	appendStringInfoString(&body, "]}");
	polyglot_elastic_request(conn, "POST",
					polyglot_elastic_index_path(index, "/_mget"),
					body.data, body.len, &response);
	if (response.status == 404)
	{
		/* no index: nothing is there */
		for (i = 0; i < n; i++)
			verdicts[i] = POLYGLOT_MISSING;
		return;
	}
	if (response.status >= 400)
		polyglot_elastic_report_error(conn, &response, psprintf("reading documents of index \"%s\" to verify", index));
	jb = polyglot_elastic_parse_response(conn, &response, "an _mget");
	docs = polyglot_elastic_json_object(&jb->root, "docs");
	if (docs == NULL || !JsonContainerIsArray(docs) || JsonContainerSize(docs) != (uint32) n)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" answered an _mget of %d documents with another number",
						conn->servername, n)));
	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		JsonbValue *doc = getIthJsonbValueFromContainer(docs, i);
		JsonbValue	found,
					source;

		verdicts[i] = POLYGLOT_MISSING;
		if (doc && doc->type == jbvBinary &&
			getKeyJsonValueFromContainer(doc->val.binary.data, "found", 5, &found) &&
			found.type == jbvBool && found.val.boolean)
		{
			verdicts[i] = POLYGLOT_DIFFERENT;
			if (ev->row && ev->row_len > sizeof(int64) &&
				getKeyJsonValueFromContainer(doc->val.binary.data, "_source", 7, &source))
			{
				Datum		expected = DirectFunctionCall1(jsonb_in,
														   CStringGetDatum(pnstrdup((char *) ev->row + sizeof(int64),
																					ev->row_len - sizeof(int64))));

				if (DatumGetBool(DirectFunctionCall2(jsonb_eq, expected,
													 JsonbPGetDatum(JsonbValueToJsonb(&source)))))
					verdicts[i] = POLYGLOT_SAME;
			}
		}
		i++;
	}
}

/* A scroll over an index's _ids */
typedef struct ElasticKeyScroll
{
	char	   *scroll_id;
	bool		started;
	bool		done;
} ElasticKeyScroll;

/* The key a document _id stands for: the value, or a composite key's JSON array */
static List *
id_key(PolyglotRoute *route, const char *id)
{
	List	   *key = NIL;
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (list_length(route->key_columns) == 1)
		return list_make1(pstrdup(id));
	/* the id of a composite key is a JSON array of strings; anything else is none */
	jb = polyglot_elastic_try_parse_json(id);
	if (jb == NULL || !JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		return NIL;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvString)
			return NIL;
		key = lappend(key, pnstrdup(v.val.string.val, v.val.string.len));
	}
	return list_length(key) == list_length(route->key_columns) ? key : NIL;
}

static List *
elastic_store_keys(PolyglotRoute *route, void **state, MemoryContext state_cxt)
{
	ElasticKeyScroll *ks = (ElasticKeyScroll *) *state;
	const char *index = polyglot_elastic_route(route)->index;
	ElasticConn *conn = polyglot_elastic_get_connection(route->server, route->user);
	ElasticResponse response;
	JsonbContainer *hits;
	Jsonb	   *jb;
	char	   *scroll;
	List	   *page = NIL;
	int			i,
				n;

	if (ks == NULL)
	{
		ks = MemoryContextAllocZero(state_cxt, sizeof(ElasticKeyScroll));
		*state = ks;
	}
	if (ks->done)
		return NIL;
	if (!ks->started)
	{
		static const char body[] = "{\"size\":1000,\"_source\":false,\"sort\":[\"_doc\"]}";

		ks->started = true;
		/* searches see what was refreshed: deletes just made too */
		polyglot_elastic_request(conn, "POST", polyglot_elastic_index_path(index, "/_refresh"), NULL, 0,
								 &response);
		if (response.status == 404)
		{
			ks->done = true;
			return NIL;
		}
		if (response.status >= 400)
			polyglot_elastic_report_error(conn, &response, psprintf("a refresh of index \"%s\"", index));
		polyglot_elastic_request(conn, "POST",
						polyglot_elastic_index_path(index, "/_search?scroll=1m&filter_path=_scroll_id,hits.hits._id"),
						body, strlen(body), &response);
	}
	else
	{
		StringInfoData body;

		initStringInfo(&body);
		appendStringInfoString(&body, "{\"scroll\":\"1m\",\"scroll_id\":");
		escape_json(&body, ks->scroll_id);
		appendStringInfoChar(&body, '}');
		polyglot_elastic_request(conn, "POST", "/_search/scroll?filter_path=_scroll_id,hits.hits._id",
						body.data, body.len, &response);
	}
	if (response.status >= 400)
		polyglot_elastic_report_error(conn, &response, psprintf("a scroll over index \"%s\"", index));
	jb = polyglot_elastic_parse_response(conn, &response, "a scroll");
	scroll = polyglot_elastic_json_string(&jb->root, "_scroll_id");
	if (scroll)
		ks->scroll_id = MemoryContextStrdup(state_cxt, scroll);
	hits = polyglot_elastic_json_object(polyglot_elastic_json_object(&jb->root, "hits"), "hits");
	n = hits && JsonContainerIsArray(hits) ? (int) JsonContainerSize(hits) : 0;
	for (i = 0; i < n; i++)
	{
		JsonbValue *hit = getIthJsonbValueFromContainer(hits, i);
		char	   *id = hit && hit->type == jbvBinary ?
			polyglot_elastic_json_string(hit->val.binary.data, "_id") : NULL;
		PolyglotStoreKey *sk;

		if (id == NULL)
			continue;
		sk = palloc0(sizeof(PolyglotStoreKey));
		sk->name = id;
		sk->key = id_key(route, id);
		page = lappend(page, sk);
	}
	if (n == 0)
	{
		ks->done = true;
		if (ks->scroll_id)
		{
			StringInfoData body;

			initStringInfo(&body);
			appendStringInfoString(&body, "{\"scroll_id\":");
			escape_json(&body, ks->scroll_id);
			appendStringInfoChar(&body, '}');
			/* a scroll left open expires by itself: its answer does not matter */
			polyglot_elastic_request(conn, "DELETE", "/_search/scroll", body.data, body.len, &response);
		}
	}
	return page;
}

const PolyglotSink polyglot_elastic_sink = {
	POLYGLOT_SINK_CALLBACKS(elastic),
	.render_row = elastic_render_row,
	.create_target = polyglot_elastic_create_index,
};
