/*-------------------------------------------------------------------------
 *
 * http_sink.c
 *		Delivery of a batch of changes to a polyglot_http server (a
 *		webhook), for sync routes; the wrapper's handler.
 *
 * A batch is one POST of {"events": [...]}, one change event per key
 * (src/core/event.c), signed when the user mapping has a secret
 * (http_connection.c).  What the answer means:
 *
 *   2xx            every event was taken
 *   408, 425, 429, 5xx, no answer (unreachable, timed out)
 *                  not now: the batch fails, the route backs off and the
 *                  batch goes again, the same events with the same ids
 *   400, 409, 413, 422
 *                  the receiver refuses what the batch holds: the batch
 *                  goes again in halves, down to single events, and an
 *                  event refused on its own is retried up to
 *                  polyglot.max_attempts, then dead-lettered (when it
 *                  refuses every event of a batch on its own, the fault
 *                  is the route's: dispatch.c's isolate_batch)
 *   any other 3xx or 4xx (401, 403, 404, 410, ...), 1xx
 *                  the endpoint as configured takes nothing (a wrong
 *                  token, secret or URL, a gone webhook): the batch fails
 *                  like a 5xx, and no event is charged for it
 *
 * A request that timed out is not split (it may well have been taken): it
 * goes again whole, the same events under the same ids.
 *
 * The sink cannot split sending from waiting (one request at a time on a
 * handle): send() does both and finish() reports.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"

#include "pg_polyglot.h"
#include "core/dispatch.h"
#include "http/http.h"

static PolyglotPayload
http_payload(PolyglotRoute *route)
{
	return POLYGLOT_PAYLOAD_JSON;
}

static void
http_prepare(PolyglotRoute *route)
{
}

/* The status of a batch that was sent: its items' results */
typedef struct HttpSent
{
	int			nitems;
	PolyglotItemResult *results;
} HttpSent;

static bool
is_transient_status(long status)
{
	return status == 408 || status == 425 || status == 429 || status >= 500;
}

/* A refusal of what a batch holds, rather than of the request as such */
static bool
is_content_status(long status)
{
	return status == 400 || status == 409 || status == 413 || status == 422;
}

static void *
http_send(PolyglotRoute *route, List *items)
{
	HttpSent   *sent = palloc0(sizeof(HttpSent));
	StringInfoData body;
	HttpConn   *conn;
	HttpResponse response;
	ListCell   *lc;
	bool		first = true;

	polyglot_route_require_server(route);
	conn = polyglot_http_get_connection(route->server, route->user);

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"events\": [");
	foreach(lc, items)
	{
		PolyglotChange change;

		polyglot_change_init(&change, route, (PolyglotItem *) lfirst(lc));
		if (!first)
			appendStringInfoString(&body, ", ");
		first = false;
		polyglot_change_append_json(&body, route, &change);
	}
	appendStringInfoString(&body, "]}");

	polyglot_http_post(conn, body.data, body.len, &response);
	if (response.status >= 200 && response.status < 300)
	{
		sent->nitems = list_length(items);
		sent->results = palloc0(sizeof(PolyglotItemResult) * Max(sent->nitems, 1));
		return sent;
	}
	if (is_transient_status(response.status))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("HTTP server \"%s\" is temporarily unable to take events: HTTP %ld",
						conn->servername, response.status),
				 response.retry_after ?
				 errdetail_internal("Retry-After: %s. %s", response.retry_after, response.body) :
				 errdetail_internal("%s", response.body)));
	/* the receiver refuses what the batch holds: halves, down to the event at fault */
	if (is_content_status(response.status))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("HTTP server \"%s\" refused the events: HTTP %ld",
						conn->servername, response.status),
				 errdetail_internal("%s", response.body)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("HTTP server \"%s\" takes no events at its url: HTTP %ld",
					conn->servername, response.status),
			 errdetail_internal("%s", response.body),
			 errhint("Check the server's url (redirects are not followed) and the user mapping's secret, token, user and password.")));
	return NULL;				/* keep the compiler quiet */
}

static void
http_finish(PolyglotRoute *route, List *items, void *state, PolyglotItemResult *results)
{
	HttpSent   *sent = (HttpSent *) state;

	memcpy(results, sent->results, sizeof(PolyglotItemResult) * sent->nitems);
}

static void
http_abandon(PolyglotRoute *route, void *state)
{
}

static const char *
http_verify_unsupported(PolyglotRoute *route)
{
	return "An HTTP route posts events to a webhook, which keeps nothing pg_polyglot can read back.";
}

static void
http_verify(PolyglotRoute *route, List *items, PolyglotVerdict *verdicts, char **names)
{
	elog(ERROR, "pg_polyglot: HTTP routes cannot be verified");
}

static List *
http_store_keys(PolyglotRoute *route, void **state, MemoryContext state_cxt)
{
	return NIL;
}

const PolyglotSink polyglot_http_sink = {
	POLYGLOT_SINK_CALLBACKS(http),
	.verify_unsupported = http_verify_unsupported,
};

/* ---------------------------------------------------------------- handler */

/*
 * Planning a scan of a foreign table of the wrapper: the validator refuses
 * such tables, but one made before that check, or by a wrapper swap, gets
 * an error rather than a plan.
 */
static void
httpGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("polyglot_http servers hold no tables")));
}

PG_FUNCTION_INFO_V1(polyglot_http_handler);

/*
 * The wrapper's handler: it names the store (src/common/store.c) and plans
 * nothing.
 */
Datum
polyglot_http_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = httpGetForeignRelSize;
	PG_RETURN_POINTER(routine);
}
