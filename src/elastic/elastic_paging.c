/*-------------------------------------------------------------------------
 *
 * elastic_paging.c
 *		The search requests of a polyglot_elastic scan: one page of hits
 *		after another, and the points in time they are read under.
 *
 * Paging: hits come page_size at a time (default 1000).  A scan that may
 * need more than one page opens a point in time (OpenSearch: POST
 * /<index>/_search/point_in_time, Elasticsearch: POST /<index>/_pit) and
 * pages with search_after, with a tiebreaker after the sort (Elasticsearch
 * adds _shard_doc itself, on OpenSearch it is _id), so that every document
 * comes exactly once, as of the moment the scan began.  The point in time
 * is closed at the end of the scan; after an error it expires by itself
 * within a minute.
 *
 * Pipelining: as soon as a page's answer has come, the request of the
 * page after it starts (polyglot_elastic_request_start), and the backend
 * parses the page and converts its hits while the server searches; its
 * answer is awaited when this page is used up.  What that request needs
 * (the number of hits, the newest point-in-time id and the last hit's
 * sort values) is read off the answer's text by a walk over its structure
 * (find_page_keys), about ten times quicker than the parse, which then
 * checks it: a request that does not match what the parse says is
 * cancelled and made again from the parse.  One page ahead at most, and
 * none after the last page (a page short of what it asked for, the LIMIT
 * reached, a scan without a point in time), so that a LIMIT never sends a
 * request for nothing; and none in a scan that is rescanned or takes an
 * outer row's values (a nested loop's inner side, often stopped early: a
 * LIMIT, EXISTS), whose pages are asked for when needed.  The two pages live in two memory contexts that
 * swap roles.  The request in flight is cancelled, and its pin released,
 * by a rescan, by the end of the scan, and otherwise (an error, a query
 * that stops without ending the scan) by a reset callback of the memory
 * context that holds its body, so that it never outlives its body.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

/*
 * Points in time open on a connection's server, so that one a failed query
 * left open (its scan state is gone, and an abort does no network I/O) is
 * closed by the next scan on the connection rather than left to expire:
 * servers cap the number of open ones.  The ids are malloc'd; a scan
 * remembers the slot of its own, which a reset callback of the query's
 * memory context marks stale, at the end of the query however it ends.
 */

/*
 * Tracks a point in time opened on the connection's server; returns its
 * slot, or -1 when none is free (it is then left to expire should its
 * query fail).
 */
static int
pit_track(ElasticConn *conn, const char *id)
{
	int			i;

	for (i = 0; i < ELASTIC_TRACKED_PITS; i++)
		if (conn->pits[i] == NULL)
		{
			conn->pits[i] = strdup(id);
			conn->pit_stale[i] = false;
			return conn->pits[i] ? i : -1;
		}
	return -1;
}

/* Stops tracking the point in time of a slot (-1: none) */
static void
pit_untrack(ElasticConn *conn, int slot)
{
	if (slot < 0)
		return;
	free(conn->pits[slot]);
	conn->pits[slot] = NULL;
}

/*
 * The query's memory context is going away: a point in time still open is
 * stale.  It runs after the scan's own memory contexts are gone (a
 * context's children go before its callbacks run): it reads only the scan
 * state itself, never pit_id, which is in exec_cxt.
 */
void
polyglot_elastic_pit_abandon(void *arg)
{
	ElasticScanState *st = (ElasticScanState *) arg;

	if (st->pit_slot >= 0)
		st->conn->pit_stale[st->pit_slot] = true;
	st->pit_slot = -1;
	st->pit_id = NULL;
}

static void close_pit_id(ElasticConn *conn, const char *id);

/* Closes the points in time failed queries left open on the connection */
static void
close_stale_pits(ElasticConn *conn)
{
	int			i;

	for (i = 0; i < ELASTIC_TRACKED_PITS; i++)
		if (conn->pits[i] && conn->pit_stale[i])
		{
			char	   *id = pstrdup(conn->pits[i]);

			free(conn->pits[i]);
			conn->pits[i] = NULL;
			close_pit_id(conn, id);
		}
}

/* Opens the point in time the scan pages under */
static void
open_pit(ElasticScanState *st)
{
	ElasticResponse response;
	bool		opensearch;
	char	   *path;
	char	   *what;
	Jsonb	   *jb;

	close_stale_pits(st->conn);
	opensearch = polyglot_elastic_is_opensearch(st->conn);
	path = psprintf(opensearch ? "/%s/_search/point_in_time?keep_alive=%s" :
								"/%s/_pit?keep_alive=%s", st->index, ELASTIC_KEEP_ALIVE);
	what = psprintf("POST %s", path);

	polyglot_elastic_request(st->conn, "POST", path, NULL, 0, &response);
	if (response.status >= 400)
		polyglot_elastic_report_error(st->conn, &response, what);
	jb = polyglot_elastic_parse_response(st->conn, &response, what);
	st->pit_id = polyglot_elastic_json_string(&jb->root, opensearch ? "pit_id" : "id");
	if (st->pit_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" opened no point in time for index \"%s\"",
						st->conn->servername, st->index)));
	st->pit_id = MemoryContextStrdup(st->exec_cxt, st->pit_id);
	st->pit_slot = pit_track(st->conn, st->pit_id);
}

/*
 * Closes a point in time.  A failure only warns: the query it served has
 * its rows, and the server lets the point in time expire.
 */
static void
close_pit_id(ElasticConn *conn, const char *id)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	StringInfoData body;
	bool		opensearch = conn->flavor == 'o';

	initStringInfo(&body);
	appendStringInfoString(&body, opensearch ? "{\"pit_id\":[" : "{\"id\":");
	escape_json(&body, id);
	appendStringInfoString(&body, opensearch ? "]}" : "}");
	PG_TRY();
	{
		ElasticResponse response;

		polyglot_elastic_request(conn, "DELETE", opensearch ? "/_search/point_in_time" : "/_pit",
						body.data, body.len, &response);
		if (response.status >= 400 && response.status != 404)
			ereport(WARNING,
					(errmsg("could not close a point in time on Elasticsearch server \"%s\"",
							conn->servername),
					 errdetail_internal("HTTP status %ld: %.200s", response.status,
										response.body)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* a cancel still cancels */
		if (InterruptPending)
			PG_RE_THROW();
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("could not close a point in time on Elasticsearch server \"%s\"",
						conn->servername),
				 errdetail_internal("%s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Closes the scan's point in time, if any */
void
polyglot_elastic_close_pit(ElasticScanState *st)
{
	char	   *id = st->pit_id;

	if (id == NULL)
		return;
	st->pit_id = NULL;
	pit_untrack(st->conn, st->pit_slot);
	st->pit_slot = -1;
	close_pit_id(st->conn, id);
}

/* Fails the scan when shards failed: their hits would be missing */
void
polyglot_elastic_check_shards(ElasticScanState *st, Jsonb *jb)
{
	JsonbContainer *shards = polyglot_elastic_json_object(&jb->root, "_shards");
	int			failed = polyglot_elastic_json_int(shards, "failed", 0);

	if (failed > 0)
	{
		JsonbContainer *failures = polyglot_elastic_json_object(shards, "failures");
		char	   *detail = NULL;
		JsonbValue *first;

		if (failures && (first = getIthJsonbValueFromContainer(failures, 0)) != NULL &&
			first->type == jbvBinary)
			detail = polyglot_elastic_error_text(polyglot_elastic_json_object(first->val.binary.data, "reason"));
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("search of index \"%s\" on Elasticsearch server \"%s\" failed on %d shards",
						st->index, st->conn->servername, failed),
				 detail ? errdetail_internal("%s", detail) : 0));
	}
}

static void
malformed_response(ElasticScanState *st, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("malformed search response from Elasticsearch server \"%s\" for index \"%s\"",
					st->conn->servername, st->index),
			 errdetail("%s.", what)));
}

#define SEARCH_FILTER "filter_path=timed_out,pit_id,hits.hits._id,hits.hits._score,hits.hits._source,hits.hits.highlight,hits.hits.sort,_shards.failed,_shards.failures"

/* a search under a point in time: the point in time names the index */
#define PIT_SEARCH_PATH "/_search?" SEARCH_FILTER

/*
 * Hits to ask for in the page after the first fetched ones: page_size, or
 * what the LIMIT leaves
 */
static int
next_page_size(ElasticScanState *st, int64 fetched)
{
	int			size = st->page_size;

	if (st->limit > 0)
		size = (int) Min((int64) size, st->limit - fetched);
	return size;
}

/* Is a page of nhits hits, of size asked for, the scan's last? */
static bool
page_is_last(ElasticScanState *st, int nhits, int size)
{
	return nhits < size || !st->use_pit ||
		(st->limit > 0 && st->fetched + nhits >= st->limit);
}

/*
 * What the request of the next page needs from a page's answer, found in
 * its text before it is parsed (find_page_keys), pointing into the text
 * (not terminated)
 */
typedef struct PageKeys
{
	int			nhits;
	const char *pit;			/* the point-in-time id, or NULL */
	int			pit_len;
	const char *sort;			/* the last hit's sort values (JSON), or NULL */
	int			sort_len;
} PageKeys;

/* What the containers find_page_keys() walks through are */
typedef enum PageKeysRole
{
	PK_OTHER,
	PK_ANSWER,					/* the answer: {"pit_id": ..., "hits": ...} */
	PK_HITS,					/* its "hits" object */
	PK_LIST,					/* the "hits" array in that */
	PK_HIT,						/* a hit */
	PK_SORT						/* a hit's "sort" array */
} PageKeysRole;

#define PAGE_KEYS_DEPTH 5		/* deeper containers play no role */

static inline bool
key_is(const char *key, int keylen, const char *name)
{
	return key != NULL && keylen == (int) strlen(name) && memcmp(key, name, keylen) == 0;
}

/*
 * Finds what the request of the next page needs in the text of a search's
 * answer, without parsing it: a walk over the text's structure that skips
 * strings and follows only the containers on the way from the answer to
 * each hit's "sort".  Returns false when the text is not such an answer as
 * far as the walk can tell, or when the point-in-time id has escapes; the
 * request then waits for the parse.  Nothing here is trusted: take_page()
 * compares it with the parse.
 */
static bool
find_page_keys(const char *text, size_t len, PageKeys *keys)
{
	const char *p = text;
	const char *end = text + len;
	PageKeysRole role[PAGE_KEYS_DEPTH];
	bool		object[PAGE_KEYS_DEPTH];
	bool		want_key[PAGE_KEYS_DEPTH];
	const char *key[PAGE_KEYS_DEPTH];	/* an object's last key, NULL if escaped */
	int			keylen[PAGE_KEYS_DEPTH];
	const char *sort = NULL;
	int			depth = 0;		/* containers open */

	memset(keys, 0, sizeof(PageKeys));
	while (p < end)
	{
		switch (*p)
		{
			case '"':
				{
					const char *s = ++p;
					bool		escapes = false;

					while (p < end && *p != '"')
					{
						if (*p == '\\')
						{
							escapes = true;
							p++;
						}
						p++;
					}
					if (p >= end)
						return false;
					if (depth >= 1 && depth <= PAGE_KEYS_DEPTH && want_key[depth - 1])
					{
						key[depth - 1] = escapes ? NULL : s;
						keylen[depth - 1] = (int) (p - s);
						want_key[depth - 1] = false;
					}
					else if (depth == 1 && key_is(key[0], keylen[0], "pit_id"))
					{
						if (escapes)
							return false;
						keys->pit = s;
						keys->pit_len = (int) (p - s);
					}
					p++;
					break;
				}
			case '{':
			case '[':
				{
					PageKeysRole r = PK_OTHER;
					bool		is_object = (*p == '{');

					if (depth == 0)
					{
						if (!is_object)
							return false;
						r = PK_ANSWER;
					}
					else if (depth <= PAGE_KEYS_DEPTH)
					{
						PageKeysRole parent = role[depth - 1];
						const char *k = key[depth - 1];
						int			kl = keylen[depth - 1];

						if (parent == PK_ANSWER && is_object && key_is(k, kl, "hits"))
							r = PK_HITS;
						else if (parent == PK_HITS && !is_object && key_is(k, kl, "hits"))
							r = PK_LIST;
						else if (parent == PK_LIST && is_object)
						{
							r = PK_HIT;
							keys->nhits++;
							keys->sort = NULL;	/* the last hit's, or none */
						}
						else if (parent == PK_HIT && !is_object && key_is(k, kl, "sort"))
						{
							r = PK_SORT;
							sort = p;
						}
					}
					if (depth < PAGE_KEYS_DEPTH)
					{
						role[depth] = r;
						object[depth] = is_object;
						want_key[depth] = is_object;
						key[depth] = NULL;
						keylen[depth] = 0;
					}
					depth++;
					p++;
					break;
				}
			case '}':
			case ']':
				if (depth == 0)
					return false;
				depth--;
				if (depth < PAGE_KEYS_DEPTH && role[depth] == PK_SORT)
				{
					keys->sort = sort;
					keys->sort_len = (int) (p + 1 - sort);
				}
				if (depth == 0)
					return true;
				p++;
				break;
			case ',':
				if (depth >= 1 && depth <= PAGE_KEYS_DEPTH && object[depth - 1])
					want_key[depth - 1] = true;
				p++;
				break;
			default:
				p++;
				break;
		}
	}
	return false;
}

/*
 * Is the request started before the page was parsed the one the parse asks
 * for: not after the last page, after the same number of hits, under the
 * same point in time, after the same sort values (compared as jsonb)?
 */
static bool
next_request_agrees(ElasticScanState *st)
{
	Jsonb	   *after;
	StringInfoData buf;

	if (st->last_page || st->next_nhits != st->nhits || st->search_after == NULL ||
		strcmp(st->next_pit, st->pit_id) != 0)
		return false;
	after = polyglot_elastic_try_parse_json(st->next_after);
	if (after == NULL)
		return false;
	initStringInfo(&buf);
	(void) JsonbToCString(&buf, &after->root, VARSIZE(after));
	return strcmp(buf.data, st->search_after) == 0;
}

/*
 * Makes the answer to a search of size hits the scan's page, in page_cxt:
 * parses and checks it, and notes its hits, whether it is the last page,
 * the newest point-in-time id and the sort values to search after.
 */
static void
take_page(ElasticScanState *st, ElasticResponse *response, int size)
{
	Jsonb	   *jb;
	JsonbValue	v;
	MemoryContext old = MemoryContextSwitchTo(st->page_cxt);

	if (response->status >= 400)
		polyglot_elastic_report_error(st->conn, response, psprintf("a search of index \"%s\"", st->index));
	jb = polyglot_elastic_parse_response(st->conn, response, "a search");
	/* the page is its jsonb from now on */
	pfree(response->body);
	response->body = NULL;
	polyglot_elastic_check_shards(st, jb);
	st->page = jb;
	if (st->use_pit)
	{
		char	   *pit = polyglot_elastic_json_string(&jb->root, "pit_id");

		/* the id may change from page to page: the next request sends the newest */
		if (pit && strcmp(pit, st->pit_id) != 0)
		{
			pit_untrack(st->conn, st->pit_slot);
			st->pit_id = MemoryContextStrdup(st->exec_cxt, pit);
			st->pit_slot = pit_track(st->conn, st->pit_id);
		}
	}
	if (getKeyJsonValueFromContainer(&jb->root, "timed_out", 9, &v) && v.type == jbvBool &&
		v.val.boolean)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("search of index \"%s\" on Elasticsearch server \"%s\" timed out",
						st->index, st->conn->servername),
				 errdetail("Its hits would be incomplete.")));
	st->hits = polyglot_elastic_json_object(polyglot_elastic_json_object(&jb->root, "hits"), "hits");
	if (st->hits && !JsonContainerIsArray(st->hits))
		malformed_response(st, "The member hits.hits is not an array");
	st->nhits = st->hits ? (int) JsonContainerSize(st->hits) : 0;
	st->last_page = page_is_last(st, st->nhits, size);
	st->fetched += st->nhits;
	/* search_after: the last hit's sort values */
	if (st->nhits > 0 && !st->last_page)
	{
		JsonbValue *last = getIthJsonbValueFromContainer(st->hits, st->nhits - 1);

		if (last->type == jbvBinary && JsonContainerIsObject(last->val.binary.data) &&
			getKeyJsonValueFromContainer(last->val.binary.data, "sort", 4, &v) &&
			v.type == jbvBinary)
		{
			StringInfoData sa;

			initStringInfo(&sa);
			(void) JsonbToCString(&sa, v.val.binary.data, v.val.binary.len);
			st->search_after = MemoryContextStrdup(st->exec_cxt, sa.data);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("a hit of index \"%s\" came without sort values", st->index)));
	}
	/* the request started from the answer's text must be the one the parse asks for */
	if (st->next_pin.handle != NULL && !next_request_agrees(st))
	{
		elog(DEBUG1, "pg_polyglot: the request of the next page of index \"%s\" did not match its page, made again",
			 st->index);
		polyglot_elastic_cancel_next_page(st);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Reset callback of the memory context that holds the body of the next
 * page's request: the request, if still in flight, is cancelled and its
 * pin released before that memory goes.  The callback stays with the
 * context when it becomes the current page's, whose reset then finds no
 * request in flight, or one to cancel anyway (the query's end).  Never
 * ereports.
 */
static void
page_memory_gone(void *arg)
{
	polyglot_elastic_cancel_next_page((ElasticScanState *) arg);
}

/*
 * Cancels the request of the next page, if one is in flight, and releases
 * its pin: the connection is then free for other requests (a transfer cut
 * short closes its socket, so nothing of its answer reaches the next
 * request).  Before a rescan, at the end of the scan, and from
 * page_memory_gone().  Never ereports.
 */
void
polyglot_elastic_cancel_next_page(ElasticScanState *st)
{
	polyglot_elastic_request_cancel(&st->next_pin);
	st->next_body = NULL;
}

/*
 * Starts the request of the page after the current one, which has nhits
 * hits and leaves the scan with fetched hits: under the point in time
 * pit_id, after the sort values search_after (neither in next_page_cxt).
 * Its body is built in next_page_cxt, whose reset callback cancels the
 * request: whatever frees the body, a rescan, the end of the query or the
 * cleanup after an error, stops the request first.
 */
static void
start_next_page(ElasticScanState *st, const char *pit_id, const char *search_after,
				int nhits, int64 fetched)
{
	int			size = next_page_size(st, fetched);
	MemoryContextCallback *cb;
	MemoryContext old;

	Assert(st->use_pit && st->next_pin.handle == NULL);
	if (size <= 0 || st->no_early)
		return;
	MemoryContextReset(st->next_page_cxt);
	old = MemoryContextSwitchTo(st->next_page_cxt);
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = page_memory_gone;
	cb->arg = st;
	MemoryContextRegisterResetCallback(st->next_page_cxt, cb);
	st->next_pit = pstrdup(pit_id);
	st->next_after = pstrdup(search_after);
	st->next_nhits = nhits;
	st->next_body = polyglot_elastic_search_body(st, size, pit_id, search_after, false);
	st->next_size = size;
	polyglot_elastic_request_start(st->conn, &st->next_pin, "POST", PIT_SEARCH_PATH,
								   st->next_body, strlen(st->next_body));
	MemoryContextSwitchTo(old);
}

/*
 * Starts the request of the page after the one whose answer has just come,
 * before that answer is parsed, from what find_page_keys() reads in its
 * text; unless the page is the last, or the text does not tell.  The
 * parse then checks it (take_page).
 */
static void
start_next_page_early(ElasticScanState *st, ElasticResponse *response, int size)
{
	PageKeys	keys;
	MemoryContext old;

	if (!st->use_pit || st->no_early || response->status >= 400 ||
		!find_page_keys(response->body, response->len, &keys) ||
		keys.sort == NULL || page_is_last(st, keys.nhits, size))
		return;
	old = MemoryContextSwitchTo(st->page_cxt);
	start_next_page(st, keys.pit ? pnstrdup(keys.pit, keys.pit_len) : st->pit_id,
					pnstrdup(keys.sort, keys.sort_len), keys.nhits, st->fetched + keys.nhits);
	MemoryContextSwitchTo(old);
}

/*
 * Fetches the next page of hits into st->hits: the answer to the request
 * started for it while the page before was parsed and converted, or else
 * one request made now.  The request of the page after it starts as soon
 * as this one's answer has come (or, if its text does not tell enough,
 * once it is parsed), unless this one is the last.
 */
static void
fetch_page(ElasticScanState *st)
{
	ElasticResponse response;
	int			size;
	MemoryContext old;

	st->hits = NULL;
	st->nhits = 0;
	st->next_hit = 0;
	if (st->next_pin.handle != NULL)
	{
		MemoryContext used = st->page_cxt;

		size = st->next_size;
		old = MemoryContextSwitchTo(st->next_page_cxt);
		polyglot_elastic_request_complete(st->conn, &st->next_pin, "POST", PIT_SEARCH_PATH,
										  st->next_body, strlen(st->next_body), &response);
		MemoryContextSwitchTo(old);
		/* the answer's context holds the page now; the page used up goes */
		st->page_cxt = st->next_page_cxt;
		st->next_page_cxt = used;
		st->next_body = NULL;
		MemoryContextReset(used);
	}
	else
	{
		char	   *path;
		char	   *body;

		size = next_page_size(st, st->fetched);
		MemoryContextReset(st->page_cxt);
		if (size <= 0)
		{
			st->last_page = true;
			return;
		}
		if (st->use_pit && st->pit_id == NULL)
			open_pit(st);
		old = MemoryContextSwitchTo(st->page_cxt);
		body = polyglot_elastic_search_body(st, size, st->pit_id, st->search_after, false);
		path = st->use_pit ? PIT_SEARCH_PATH :
			psprintf("/%s/_search?%s", st->index, SEARCH_FILTER);
		polyglot_elastic_request(st->conn, "POST", path, body, strlen(body), &response);
		MemoryContextSwitchTo(old);
	}
	start_next_page_early(st, &response, size);
	take_page(st, &response, size);
	if (!st->last_page && st->next_pin.handle == NULL && !st->no_early)
		start_next_page(st, st->pit_id, st->search_after, st->nhits, st->fetched);
}

/* The next hit of the scan, fetching the next page when needed; NULL at the end */
JsonbContainer *
polyglot_elastic_next_hit(ElasticScanState *st)
{
	JsonbValue *hit;

	while (st->next_hit >= st->nhits)
	{
		if (st->started && st->last_page)
			return NULL;
		st->started = true;
		fetch_page(st);
		if (st->nhits == 0 && st->last_page)
			return NULL;
	}
	hit = getIthJsonbValueFromContainer(st->hits, st->next_hit++);
	if (hit == NULL || hit->type != jbvBinary || !JsonContainerIsObject(hit->val.binary.data))
		malformed_response(st, "A hit is not an object");
	return hit->val.binary.data;
}
