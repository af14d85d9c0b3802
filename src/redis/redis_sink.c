/*-------------------------------------------------------------------------
 *
 * redis_sink.c
 *		Delivery of a batch of changes to Redis, for sync routes.
 *
 * Modes (route option "mode"):
 *   json        SET key <row as JSON> [EX ttl]; DEL key when the row is gone
 *   hash        MULTI; HSET key col value ...; HDEL key <null columns>;
 *               [EXPIRE key ttl]; EXEC.  DEL key when the row is gone
 *   invalidate  DEL key on any change (cache-aside)
 *   publish     PUBLISH channel {"op", "table", "key", "row"}
 *   stream      XADD stream MAXLEN ~ maxlen * id .. position .. op .. table ..
 *               key .. row .. ts .. (event.c's fields), by a script that
 *               appends only what the stream does not have yet
 *               (STREAM_APPEND below)
 *
 * The whole batch goes out as one pipeline: every command is appended, then
 * every reply read, so a batch costs one round trip.  All replies are read
 * even after an error, so the connection stays in step.  An error reply
 * that says the server is temporarily unable (LOADING, BUSY, OOM, ...)
 * fails the whole batch and the route backs off; any other error reply
 * (WRONGTYPE...) fails only its key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "core/dispatch.h"
#include "redis/redis.h"

/* Error replies that mean "not now" rather than "never for this key" */
static const char *const transient_prefixes[] = {
	"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN",
	"NOREPLICAS", "OOM", "MISCONF", NULL
};

/* The route's mode (redis_option.c parses the route's options) */
static RedisMode
route_mode(PolyglotRoute *route)
{
	return polyglot_redis_route(route)->mode;
}

static PolyglotPayload
redis_payload(PolyglotRoute *route)
{
	switch (route_mode(route))
	{
		case REDIS_MODE_JSON:
		case REDIS_MODE_PUBLISH:
		case REDIS_MODE_STREAM:
			return POLYGLOT_PAYLOAD_JSON;
		case REDIS_MODE_HASH:
			return POLYGLOT_PAYLOAD_COLUMNS;
		case REDIS_MODE_INVALIDATE:
			return POLYGLOT_PAYLOAD_NONE;
	}
	return POLYGLOT_PAYLOAD_NONE;
}

/*
 * Renders the key template of a route for one key: each {column} becomes
 * that key column's value.  The template was validated by polyglot.sync():
 * its placeholders name key columns.  Built in scratch, returned at its
 * exact size.
 */
static char *
render_key(PolyglotRoute *route, const char *tmpl, List *key, StringInfo scratch)
{
	const char *p = tmpl;

	resetStringInfo(scratch);
	while (*p)
	{
		size_t		len;
		int			c = polyglot_redis_key_placeholder(p, route->key_columns, &len);

		if (c >= 0 && c < list_length(key))
		{
			appendStringInfoString(scratch, (const char *) list_nth(key, c));
			p += len;
			continue;
		}
		appendStringInfoChar(scratch, *p++);
	}
	return pnstrdup(scratch->data, scratch->len);
}

/*
 * Why a key's rendering could be another row's, or NULL.  A placeholder
 * followed, later in the template, by another ends where the character
 * after it first comes: a value holding that character would shift the
 * values after it (with "{a}:{b}", rows ('x:y', 'z') and ('x', 'y:z') both
 * render "x:y:z").  polyglot.sync() warned of such a template; the rows
 * whose values would collide are refused, each with this error.
 */
static char *
ambiguous_key(PolyglotRoute *route, const char *tmpl, List *key)
{
	const char *p = tmpl;

	while (*p)
	{
		size_t		len;
		int			c = polyglot_redis_key_placeholder(p, route->key_columns, &len);
		const char *next;
		const char *q;
		bool		more = false;
		char	   *sep;

		if (c < 0)
		{
			p++;
			continue;
		}
		next = p + len;
		for (q = next; *q && !more; q++)
		{
			size_t		unused;

			more = polyglot_redis_key_placeholder(q, route->key_columns, &unused) >= 0;
		}
		p = next;
		if (!more || *next == '\0')
			continue;
		sep = pnstrdup(next, pg_mblen(next));
		if (strstr((const char *) list_nth(key, c), sep) != NULL)
			return psprintf("the value of key column \"%s\" holds \"%s\", which ends it in key template \"%s\": its key could be another row's",
							(const char *) list_nth(route->key_columns, c), sep, tmpl);
	}
	return NULL;
}

/* {"op": ..., "table": ..., "key": {...}, "row": ...} for publish mode */
static char *
publish_message(PolyglotRoute *route, PolyglotEvent *ev)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"op\": \"%s\", \"table\": ", ev->found ? "upsert" : "delete");
	escape_json(&buf, route->table_name ? route->table_name : "");
	appendStringInfo(&buf, ", \"key\": %s, \"row\": %s}",
					 polyglot_key_json(route->key_columns, ev->key),
					 ev->found && ev->json ? ev->json : "null");
	return buf.data;
}

/*
 * Appends a change to a stream unless the stream has it.  KEYS[1] is the
 * stream, KEYS[2] its seen hash (polyglot_redis_stream_seen_key); ARGV[1]
 * is the key's field there, ARGV[2] the change's position, ARGV[3] the
 * MAXLEN, ARGV[4..9] the entry's id, op, table, key, row and ts, ARGV[10]
 * a digest of op and row.  The field holds the ids of the key's last four
 * entries and the digest of its last, "id1,id2,id3,id4|digest".  Nothing
 * is appended, and the script answers 0, for
 *   - an id among the last four: a redelivery of the same changes (the
 *     worker stopped, or a reply was lost, after Redis took the entry; at
 *     most two batches of a route are in flight);
 *   - the same op and row as the key's last entry: a change delivered
 *     again under another id (a key retried after a timeout whose write
 *     went through), or one that changed nothing the route delivers.
 * Anything else is appended, whatever its position: outbox positions are
 * taken when a change is written, not when it commits, so a key's changes
 * can commit out of their order (a backfill's row beside a user's open
 * transaction), and each entry carries the row as committed when it was
 * delivered.  The script runs atomically, and writes both keys or, failing
 * before its first write (a key of the wrong type), neither.
 */
#define STREAM_APPEND \
	"local seen = redis.call('HGET', KEYS[2], ARGV[1]) " \
	"local id, digest = ARGV[4], ARGV[10] " \
	"local recent, last = {}, nil " \
	"if seen then " \
	"  local bar = string.find(seen, '|', 1, true) " \
	"  if bar then last = string.sub(seen, bar + 1) seen = string.sub(seen, 1, bar - 1) end " \
	"  for p in string.gmatch(seen, '[^,]+') do " \
	"    if p == id then return 0 end " \
	"    recent[#recent + 1] = p " \
	"  end " \
	"end " \
	"local appended = 0 " \
	"if digest ~= last then " \
	"  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[4], " \
	"    'position', ARGV[2], 'op', ARGV[5], 'table', ARGV[6], 'key', ARGV[7], 'row', ARGV[8], " \
	"    'ts', ARGV[9]) " \
	"  appended = 1 " \
	"end " \
	"for i = 1, math.min(#recent, 3) do id = id .. ',' .. recent[i] end " \
	"redis.call('HSET', KEYS[2], ARGV[1], id .. '|' .. digest) " \
	"return appended"

static bool
is_transient(const char *message)
{
	const char *const *p;

	for (p = transient_prefixes; *p; p++)
		if (strncmp(message, *p, strlen(*p)) == 0)
			return true;
	return false;
}

/*
 * Looks at one reply of an item: an error reply is a transient failure of
 * the batch or a failure of the item.  Frees the reply.
 */
static void
check_reply(redisReply *reply, PolyglotItemResult *result, char **transient)
{
	size_t		i;

	if (reply->type == REDIS_REPLY_ERROR)
	{
		const char *msg = reply->str ? reply->str : "error";

		if (is_transient(msg))
		{
			if (*transient == NULL)
				*transient = pstrdup(msg);
		}
		else if (result->status == POLYGLOT_ITEM_OK)
		{
			result->status = POLYGLOT_ITEM_FAILED;
			result->error = pstrdup(msg);
		}
	}
	else if (reply->type == REDIS_REPLY_ARRAY)
	{
		/* EXEC: the replies of the queued commands */
		for (i = 0; i < reply->elements; i++)
		{
			redisReply *el = reply->element[i];

			if (el && el->type == REDIS_REPLY_ERROR && result->status == POLYGLOT_ITEM_OK)
			{
				const char *msg = el->str ? el->str : "error";

				if (is_transient(msg))
				{
					if (*transient == NULL)
						*transient = pstrdup(msg);
				}
				else
				{
					result->status = POLYGLOT_ITEM_FAILED;
					result->error = pstrdup(msg);
				}
			}
		}
	}
	else if (reply->type == REDIS_REPLY_NIL && result->status == POLYGLOT_ITEM_OK)
	{
		/* EXEC answers nil when a WATCH failed: cannot happen without WATCH */
		result->status = POLYGLOT_ITEM_FAILED;
		result->error = pstrdup("transaction aborted");
	}
	freeReplyObject(reply);
}

/*
 * A batch written to Redis whose replies are still to be read.  The
 * connection it went out on is pinned until then: if the server's or user
 * mapping's options change meanwhile, later batches get a new connection,
 * and this one's replies are still read where they come, never taken for
 * another batch's.
 */
typedef struct RedisSent
{
	RedisConn  *conn;
	PolyglotConnPin pin;		/* the redisContext the batch went out on */
	int		   *nreplies;		/* replies owed, per item */
	char	  **refused;		/* per item, why it was not sent, or NULL */
	char	   *expect;			/* the shape of each reply owed, in order:
								 * REPLY_STATUS, REPLY_INTEGER or REPLY_ARRAY */
	int			nitems;
	int			wait_replicas;	/* the batch ends with WAIT this many, or 0 */
	bool		stream;			/* stream mode: a reply 0 is a redelivery */
	uint64		map_epoch;		/* a cluster's slot map when it went out */
	bool		read;			/* the replies were read, into: */
	PolyglotItemResult *results;
	char	   *transient;		/* a "not now" error reply, or NULL */
} RedisSent;

/* The reply a command answers with when it does not fail */
#define REPLY_STATUS	's'		/* SET, MULTI, and commands queued in one */
#define REPLY_INTEGER	'i'		/* DEL, PUBLISH */
#define REPLY_ARRAY		'a'		/* EXEC (nil when aborted) */

/* Appends a command to the pipeline and the shape of its reply to expect */
static void
append_command(RedisConn *conn, RedisCmd *cmd, StringInfo expect, char shape)
{
	polyglot_redis_cmd_append(conn, cmd);
	appendStringInfoChar(expect, shape);
}

/*
 * Checks that a reply has the shape its command answers with (an error
 * reply aside, which check_reply() judges).  Any other (a server or proxy
 * out of step) fails the batch rather than passing as a success; the
 * connection, whose replies can no longer be matched with commands, is
 * dropped by redis_abandon().  Frees the reply when it ereports.
 */
static void
check_reply_shape(RedisSent *sent, redisReply *reply, char shape)
{
	bool		ok;

	switch (shape)
	{
		case REPLY_STATUS:
			ok = reply->type == REDIS_REPLY_STATUS;
			break;
		case REPLY_INTEGER:
			ok = reply->type == REDIS_REPLY_INTEGER;
			break;
		default:
			ok = reply->type == REDIS_REPLY_ARRAY || reply->type == REDIS_REPLY_NIL;
			break;
	}
	if (ok || reply->type == REDIS_REPLY_ERROR)
		return;
	{
		int			type = reply->type;

		freeReplyObject(reply);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("Redis server \"%s\" answered a command of a batch with a reply of the wrong shape",
						sent->conn->servername),
				 errdetail("Expected %s, got a reply of type %d.",
						   shape == REPLY_STATUS ? "a status" :
						   shape == REPLY_INTEGER ? "an integer" : "an array or nil", type)));
	}
}

/* The route's batch in flight, across send() and finish() */
typedef struct RedisRouteState
{
	RedisSent  *inflight;
} RedisRouteState;

static void
redis_prepare(PolyglotRoute *route)
{
	route->sink_private = palloc0(sizeof(RedisRouteState));
}

/*
 * Reads every reply of a sent batch (the connection must stay in step) and
 * releases its connection.  An I/O error ereports, the pin still held.
 */
static void
read_sent_replies(RedisSent *sent)
{
	int			n = 0;
	int			i;

	for (i = 0; i < sent->nitems; i++)
	{
		int			r;

		if (sent->refused[i])
		{
			sent->results[i].status = POLYGLOT_ITEM_FAILED;
			sent->results[i].error = sent->refused[i];
			continue;
		}
		for (r = 0; r < sent->nreplies[i]; r++)
		{
			redisReply *reply = polyglot_redis_get_pinned_reply(sent->conn, &sent->pin,
													   "a pipelined batch");

			check_reply_shape(sent, reply, sent->expect[n++]);
			/* a stream already had the change: done, and counted as stale */
			if (sent->stream && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 &&
				sent->results[i].status == POLYGLOT_ITEM_OK)
				sent->results[i].status = POLYGLOT_ITEM_STALE;
			check_reply(reply, &sent->results[i], &sent->transient);
		}
	}
	if (sent->wait_replicas > 0)
	{
		redisReply *reply = polyglot_redis_get_pinned_reply(sent->conn, &sent->pin,
															"WAIT");

		check_reply_shape(sent, reply, REPLY_INTEGER);
		if (reply->type == REDIS_REPLY_INTEGER && reply->integer < sent->wait_replicas &&
			sent->transient == NULL)
			sent->transient = psprintf("WAIT: %lld of %d replicas acknowledged the batch in time",
									   (long long) reply->integer, sent->wait_replicas);
		else if (reply->type == REDIS_REPLY_ERROR && sent->transient == NULL)
			sent->transient = psprintf("WAIT: %s", reply->str ? reply->str : "error");
		freeReplyObject(reply);
	}
	sent->read = true;

	/*
	 * A server that is "not now" may be one that is no longer the primary
	 * (READONLY after a failover): the next batch connects afresh, and finds
	 * the primary again when Sentinels name it.
	 */
	if (sent->transient && strncmp(sent->transient, "WAIT:", 5) != 0)
		polyglot_conncache_discard_pinned(&sent->pin);
	polyglot_conncache_unpin(&sent->pin);
}

/*
 * Writes the commands of a batch, one pipeline, and returns without reading
 * the replies: Redis works through the batch while the worker reads the
 * next one from PostgreSQL.
 */
static void *
redis_send(PolyglotRoute *route, List *items)
{
	const RedisRouteOptions *ro = polyglot_redis_route(route);
	RedisMode	mode = ro->mode;
	const char *tmpl = ro->key;
	const char *ttl = ro->ttl;
	const char *channel = ro->channel;
	int			ncols = list_length(route->columns);
	int		   *nreplies = palloc0(sizeof(int) * Max(list_length(items), 1));
	RedisSent  *sent = palloc0(sizeof(RedisSent));
	RedisRouteState *rs = (RedisRouteState *) route->sink_private;
	RedisConn  *conn;
	RedisCmd	cmd;
	StringInfoData scratch;
	StringInfoData expect;
	ListCell   *lc;
	int			i;

	if (tmpl == NULL)
		elog(ERROR, "pg_polyglot: route %d has no key template", route->id);
	polyglot_route_require_server(route);
	conn = polyglot_redis_get_connection(route->server, route->user);

	/*
	 * The batch before went out on a connection that has been replaced
	 * since (its server's or user mapping's options changed): its replies
	 * first, so that this batch, on the new connection, cannot overtake it.
	 */
	if (rs && rs->inflight && !rs->inflight->read &&
		!polyglot_conncache_pin_current(&rs->inflight->pin))
		read_sent_replies(rs->inflight);

	/*
	 * A cluster's slot map changed since the batch before went out (a MOVED
	 * in the batch before it): that batch's redirected commands go out
	 * again when its replies are read, and must not land after this
	 * batch's commands of the same keys, which the new map sends to their
	 * new node at once.  Its replies first.
	 */
	if (rs && rs->inflight && !rs->inflight->read &&
		polyglot_redis_map_epoch(conn, &rs->inflight->pin) != rs->inflight->map_epoch)
		read_sent_replies(rs->inflight);

	sent->results = palloc0(sizeof(PolyglotItemResult) * Max(list_length(items), 1));
	polyglot_redis_cmd_init(&cmd, 8 + 2 * ncols);
	initStringInfo(&scratch);
	sent->refused = palloc0(sizeof(char *) * Max(list_length(items), 1));
	initStringInfo(&expect);

	/* append every command */
	i = 0;
	foreach(lc, items)
	{
		PolyglotItem *item = (PolyglotItem *) lfirst(lc);
		PolyglotEvent *ev = item->event;
		char	   *key = render_key(route, tmpl, ev->key, &scratch);
		int			c;

		if (mode != REDIS_MODE_PUBLISH && mode != REDIS_MODE_STREAM &&
			(sent->refused[i] = ambiguous_key(route, tmpl, ev->key)) != NULL)
		{
			i++;
			continue;
		}
		switch (mode)
		{
			case REDIS_MODE_JSON:
				if (ev->found && ev->json)
				{
					polyglot_redis_cmd_arg(&cmd, "SET");
					polyglot_redis_cmd_arg(&cmd, key);
					polyglot_redis_cmd_arg_len(&cmd, ev->json, ev->json_len);
					if (ttl)
					{
						polyglot_redis_cmd_arg(&cmd, "EX");
						polyglot_redis_cmd_arg(&cmd, ttl);
					}
				}
				else
				{
					polyglot_redis_cmd_arg(&cmd, "DEL");
					polyglot_redis_cmd_arg(&cmd, key);
				}
				append_command(conn, &cmd, &expect,
							   ev->found && ev->json ? REPLY_STATUS : REPLY_INTEGER);
				nreplies[i] = 1;
				break;

			case REDIS_MODE_HASH:
				if (!ev->found)
				{
					polyglot_redis_cmd_arg(&cmd, "DEL");
					polyglot_redis_cmd_arg(&cmd, key);
					append_command(conn, &cmd, &expect, REPLY_INTEGER);
					nreplies[i] = 1;
					break;
				}
				polyglot_redis_cmd_arg(&cmd, "MULTI");
				append_command(conn, &cmd, &expect, REPLY_STATUS);
				nreplies[i] = 2;	/* MULTI and EXEC */
				for (c = 0; c < ncols; c++)
					if (ev->values[c] != NULL)
						break;
				if (c < ncols)
				{
					polyglot_redis_cmd_arg(&cmd, "HSET");
					polyglot_redis_cmd_arg(&cmd, key);
					for (c = 0; c < ncols; c++)
						if (ev->values[c] != NULL)
						{
							polyglot_redis_cmd_arg(&cmd, (const char *) list_nth(route->columns, c));
							polyglot_redis_cmd_arg(&cmd, ev->values[c]);
						}
					append_command(conn, &cmd, &expect, REPLY_STATUS);
					nreplies[i]++;
				}
				for (c = 0; c < ncols; c++)
					if (ev->values[c] == NULL)
						break;
				if (c < ncols)
				{
					polyglot_redis_cmd_arg(&cmd, "HDEL");
					polyglot_redis_cmd_arg(&cmd, key);
					for (c = 0; c < ncols; c++)
						if (ev->values[c] == NULL)
							polyglot_redis_cmd_arg(&cmd, (const char *) list_nth(route->columns, c));
					append_command(conn, &cmd, &expect, REPLY_STATUS);
					nreplies[i]++;
				}
				if (ttl)
				{
					polyglot_redis_cmd_arg(&cmd, "EXPIRE");
					polyglot_redis_cmd_arg(&cmd, key);
					polyglot_redis_cmd_arg(&cmd, ttl);
					append_command(conn, &cmd, &expect, REPLY_STATUS);
					nreplies[i]++;
				}
				polyglot_redis_cmd_arg(&cmd, "EXEC");
				append_command(conn, &cmd, &expect, REPLY_ARRAY);
				break;

			case REDIS_MODE_INVALIDATE:
				polyglot_redis_cmd_arg(&cmd, "DEL");
				polyglot_redis_cmd_arg(&cmd, key);
				append_command(conn, &cmd, &expect, REPLY_INTEGER);
				nreplies[i] = 1;
				break;

			case REDIS_MODE_PUBLISH:
				polyglot_redis_cmd_arg(&cmd, "PUBLISH");
				polyglot_redis_cmd_arg(&cmd, channel);
				polyglot_redis_cmd_arg(&cmd, publish_message(route, ev));
				append_command(conn, &cmd, &expect, REPLY_INTEGER);
				nreplies[i] = 1;
				break;

			case REDIS_MODE_STREAM:
				{
					PolyglotChange change;

					polyglot_change_init(&change, route, item);
					polyglot_redis_cmd_arg(&cmd, "EVAL");
					polyglot_redis_cmd_arg(&cmd, STREAM_APPEND);
					polyglot_redis_cmd_arg(&cmd, "2");
					polyglot_redis_cmd_arg(&cmd, ro->stream);
					polyglot_redis_cmd_arg(&cmd, ro->seen);
					polyglot_redis_cmd_arg(&cmd, psprintf("%d:%s", route->id, item->key_string));
					polyglot_redis_cmd_arg(&cmd, psprintf(INT64_FORMAT, change.position));
					polyglot_redis_cmd_arg(&cmd, ro->maxlen);
					polyglot_redis_cmd_arg(&cmd, change.id);
					polyglot_redis_cmd_arg(&cmd, change.op);
					polyglot_redis_cmd_arg(&cmd, route->table_name ? route->table_name : "");
					polyglot_redis_cmd_arg(&cmd, change.key_json);
					polyglot_redis_cmd_arg(&cmd, change.row_json);
					polyglot_redis_cmd_arg(&cmd, change.ts);
					polyglot_redis_cmd_arg(&cmd, polyglot_change_digest(&change));
					append_command(conn, &cmd, &expect, REPLY_INTEGER);
					nreplies[i] = 1;
				}
				break;
		}
		i++;
	}

	/*
	 * With wait_replicas, the batch counts as delivered only once that many
	 * replicas have it (WAIT, within half the io_timeout): a failover then
	 * cannot take away what the outbox forgot.  Fewer fails the batch,
	 * which is delivered again.
	 */
	if (conn->wait_replicas > 0 && expect.len > 0)
	{
		polyglot_redis_cmd_arg(&cmd, "WAIT");
		polyglot_redis_cmd_arg(&cmd, psprintf("%d", conn->wait_replicas));
		polyglot_redis_cmd_arg(&cmd, psprintf("%d", Max(conn->io_timeout_ms / 2, 1)));
		polyglot_redis_cmd_append(conn, &cmd);
		sent->wait_replicas = conn->wait_replicas;
	}

	/* write it all, within io_timeout */
	sent->conn = conn;
	sent->nreplies = nreplies;
	sent->expect = expect.data;
	sent->nitems = list_length(items);
	sent->stream = mode == REDIS_MODE_STREAM;
	polyglot_redis_flush(conn, "a pipelined batch");
	polyglot_conncache_pin(&conn->base, &sent->pin);
	sent->map_epoch = polyglot_redis_map_epoch(conn, &sent->pin);
	if (rs)
		rs->inflight = sent;
	return sent;
}

/* Reads the replies of a batch sent by redis_send(), unless it did. */
static void
redis_finish(PolyglotRoute *route, List *items, void *state, PolyglotItemResult *results)
{
	RedisSent  *sent = (RedisSent *) state;
	RedisRouteState *rs = (RedisRouteState *) route->sink_private;

	if (rs && rs->inflight == sent)
		rs->inflight = NULL;
	if (!sent->read)
		read_sent_replies(sent);
	memcpy(results, sent->results, sizeof(PolyglotItemResult) * sent->nitems);

	if (sent->transient)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" is temporarily unable to take writes",
						sent->conn->servername),
				 errdetail_internal("%s", sent->transient)));
}

/*
 * A sent batch whose replies will not be read: its connection has replies
 * pending that would answer the next batch's commands, so it goes (if it
 * is still the one new batches get).
 */
static void
redis_abandon(PolyglotRoute *route, void *state)
{
	RedisSent  *sent = (RedisSent *) state;
	RedisRouteState *rs = (RedisRouteState *) route->sink_private;

	if (rs && rs->inflight == sent)
		rs->inflight = NULL;
	if (sent->pin.handle)
	{
		polyglot_conncache_discard_pinned(&sent->pin);
		polyglot_conncache_unpin(&sent->pin);
	}
}

/* ---------------------------------------------------------------- verify */

static const char *
redis_verify_unsupported(PolyglotRoute *route)
{
	switch (route_mode(route))
	{
		case REDIS_MODE_INVALIDATE:
			return "A route in invalidate mode deletes keys on change and leaves the cache to the application: there is nothing to compare.";
		case REDIS_MODE_PUBLISH:
			return "A route in publish mode sends messages and keeps nothing in Redis.";
		case REDIS_MODE_STREAM:
			return "A route in stream mode appends events to a stream, which keeps a history rather than the rows.";
		default:
			return NULL;
	}
}

/* Does an HGETALL reply hold the row's non-NULL columns, and none of its NULL ones? */
static bool
hash_matches(PolyglotRoute *route, PolyglotEvent *ev, redisReply *reply)
{
	ListCell   *lc;
	int			c = 0;

	foreach(lc, route->columns)
	{
		const char *col = (const char *) lfirst(lc);
		const char *value = ev->values ? ev->values[c] : NULL;
		redisReply *found = NULL;
		size_t		i;

		for (i = 0; i + 1 < reply->elements; i += 2)
			if (reply->element[i]->len == strlen(col) &&
				memcmp(reply->element[i]->str, col, reply->element[i]->len) == 0)
			{
				found = reply->element[i + 1];
				break;
			}
		if (value == NULL ? found != NULL :
			found == NULL || found->len != strlen(value) || memcmp(found->str, value, found->len) != 0)
			return false;
		c++;
	}
	return true;
}

/* The rows of a chunk against Redis: one pipelined GET or HGETALL per key */
static void
redis_verify(PolyglotRoute *route, List *items, PolyglotVerdict *verdicts, char **names)
{
	RedisMode	mode = route_mode(route);
	const char *tmpl = polyglot_redis_route(route)->key;
	RedisConn  *conn = polyglot_redis_get_connection(route->server, route->user);
	int			n = list_length(items);
	redisReply **replies = palloc0(sizeof(redisReply *) * Max(n, 1));
	RedisCmd	cmd;
	StringInfoData scratch;
	ListCell   *lc;
	int			i;

	polyglot_redis_cmd_init(&cmd, 4);
	initStringInfo(&scratch);
	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;

		names[i] = render_key(route, tmpl, ev->key, &scratch);
		polyglot_redis_cmd_arg(&cmd, mode == REDIS_MODE_HASH ? "HGETALL" : "GET");
		polyglot_redis_cmd_arg(&cmd, names[i]);
		polyglot_redis_cmd_append(conn, &cmd);
		i++;
	}
	/* every reply before judging any, so the connection stays in step */
	polyglot_redis_get_replies(conn, n, replies, "reading keys to verify");
	i = 0;
	foreach(lc, items)
	{
		PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;
		redisReply *r = replies[i];
		bool		all_null = true;
		int			c;

		for (c = 0; mode == REDIS_MODE_HASH && ev->values && c < list_length(route->columns); c++)
			if (ev->values[c] != NULL)
				all_null = false;
		if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0))
			/* a hash of NULLs only is no hash at all */
			verdicts[i] = mode == REDIS_MODE_HASH && all_null ? POLYGLOT_SAME : POLYGLOT_MISSING;
		else if (mode == REDIS_MODE_JSON)
			verdicts[i] = r->type == REDIS_REPLY_STRING && ev->json &&
				r->len == (size_t) ev->json_len && memcmp(r->str, ev->json, r->len) == 0 ?
				POLYGLOT_SAME : POLYGLOT_DIFFERENT;
		else
			verdicts[i] = r->type == REDIS_REPLY_ARRAY && hash_matches(route, ev, r) ?
				POLYGLOT_SAME : POLYGLOT_DIFFERENT;
		i++;
	}
	for (i = 0; i < n; i++)
		freeReplyObject(replies[i]);
}

/* SCAN over the keys a route's template can produce */
typedef struct RedisKeyScan
{
	char	   *cursor;
	char	   *pattern;
	int			node;			/* the node SCAN runs on (a cluster's nth primary) */
	bool		done;
} RedisKeyScan;

/*
 * The key columns' values a key stands for, by the route's template, or
 * NIL when no row of the route renders to it.  Each {column} takes the
 * shortest text up to the template's next literal part, and the values
 * must render back to the key.
 */
static List *
parse_key(PolyglotRoute *route, const char *tmpl, const char *key, StringInfo scratch)
{
	int			ncols = list_length(route->key_columns);
	char	  **values = palloc0(sizeof(char *) * Max(ncols, 1));
	const char *p = tmpl;
	const char *k = key;
	List	   *result = NIL;
	int			c;

	while (*p)
	{
		size_t		len;
		int			col = polyglot_redis_key_placeholder(p, route->key_columns, &len);

		if (col >= 0)
		{
			/* the literal after the placeholder, up to the next placeholder or the end */
			const char *lit = p + len;
			const char *lit_end = lit;
			const char *end;

			while (*lit_end && *lit_end != '{')
				lit_end++;
			if (lit == lit_end)
				end = *lit ? k : k + strlen(k);	/* two placeholders in a row: ambiguous */
			else
			{
				char	   *needle = pnstrdup(lit, lit_end - lit);

				end = strstr(k, needle);
				if (end == NULL)
					return NIL;
			}
			values[col] = pnstrdup(k, end - k);
			k = end;
			p += len;
			continue;
		}
		if (*k != *p)
			return NIL;
		k++;
		p++;
	}
	if (*k)
		return NIL;
	for (c = 0; c < ncols; c++)
	{
		if (values[c] == NULL)
			return NIL;
		result = lappend(result, values[c]);
	}
	if (strcmp(render_key(route, tmpl, result, scratch), key) != 0)
		return NIL;
	return result;
}

/*
 * Are the top-level fields of a JSON text (escaped as row_to_json escapes
 * them) all among fields, and is there one at least?  A scan of the
 * text's strings and brackets, enough to tell a route's document from a
 * value of another shape: false for anything that is not a JSON object.
 */
static bool
json_fields_among(const char *s, size_t len, List *fields)
{
	size_t		i = 0;
	int			depth = 1;
	int			nfields = 0;
	bool		expect_name = true;

	while (i < len && isspace((unsigned char) s[i]))
		i++;
	if (i >= len || s[i] != '{')
		return false;
	for (i++; i < len && depth > 0; i++)
	{
		char		c = s[i];

		if (c == '"')
		{
			size_t		start = i;

			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (i >= len)
				return false;
			if (depth == 1 && expect_name)
			{
				ListCell   *lc;
				bool		known = false;

				foreach(lc, fields)
				{
					const char *f = (const char *) lfirst(lc);

					if (strlen(f) == i + 1 - start && memcmp(f, s + start, i + 1 - start) == 0)
						known = true;
				}
				if (!known)
					return false;
				nfields++;
				expect_name = false;
			}
		}
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		else if (c == ',' && depth == 1)
			expect_name = true;
	}
	while (i < len && isspace((unsigned char) s[i]))
		i++;
	return depth == 0 && i == len && nfields > 0;
}

/*
 * Leaves out of keys (PolyglotStoreKey, of a key the template parses)
 * those whose value the route could not have written: for a json route,
 * a JSON object whose fields are all columns of the route; for a hash
 * route, a hash whose fields are.  A value of another shape (another
 * route's or application's key that the template happens to match) loses
 * its key columns: verify reports it, and repair leaves it alone.  One
 * pipelined GET or HKEYS per key.
 */
static void
keep_route_shaped(PolyglotRoute *route, RedisConn *conn, List *keys)
{
	RedisMode	mode = route_mode(route);
	List	   *fields = NIL;
	RedisCmd	cmd;
	ListCell   *lc;
	int			n = 0;

	foreach(lc, route->columns)
	{
		StringInfoData f;

		initStringInfo(&f);
		if (mode == REDIS_MODE_HASH)
			appendStringInfoString(&f, (const char *) lfirst(lc));
		else
			escape_json(&f, (const char *) lfirst(lc));
		fields = lappend(fields, f.data);
	}
	polyglot_redis_cmd_init(&cmd, 2);
	foreach(lc, keys)
	{
		PolyglotStoreKey *sk = (PolyglotStoreKey *) lfirst(lc);

		if (sk->key == NIL)
			continue;
		polyglot_redis_cmd_arg(&cmd, mode == REDIS_MODE_HASH ? "HKEYS" : "GET");
		polyglot_redis_cmd_arg(&cmd, sk->name);
		polyglot_redis_cmd_append(conn, &cmd);
		n++;
	}
	if (n == 0)
		return;
	/* every reply is read, so the connection stays in step */
	foreach(lc, keys)
	{
		PolyglotStoreKey *sk = (PolyglotStoreKey *) lfirst(lc);
		redisReply *r;
		bool		shaped = false;

		if (sk->key == NIL)
			continue;
		r = polyglot_redis_get_reply(conn, "reading values to verify");
		if (mode == REDIS_MODE_HASH && r->type == REDIS_REPLY_ARRAY && r->elements > 0)
		{
			size_t		i;

			shaped = true;
			for (i = 0; i < r->elements && shaped; i++)
			{
				ListCell   *fc;
				redisReply *e = r->element[i];

				shaped = false;
				foreach(fc, fields)
					if (e->type == REDIS_REPLY_STRING && e->len == strlen((char *) lfirst(fc)) &&
						memcmp(e->str, lfirst(fc), e->len) == 0)
						shaped = true;
			}
		}
		else if (mode != REDIS_MODE_HASH && r->type == REDIS_REPLY_STRING)
			shaped = json_fields_among(r->str, r->len, fields);
		/* gone since the SCAN: no row of the route can be behind it either */
		if (!shaped && r->type != REDIS_REPLY_NIL)
			sk->key = NIL;
		freeReplyObject(r);
	}
}

static List *
redis_store_keys(PolyglotRoute *route, void **state, MemoryContext state_cxt)
{
	RedisKeyScan *ks = (RedisKeyScan *) *state;
	const char *tmpl = polyglot_redis_route(route)->key;
	RedisConn  *conn = polyglot_redis_get_connection(route->server, route->user);
	StringInfoData scratch;
	List	   *page = NIL;
	List	   *found;

	if (ks == NULL)
	{
		StringInfoData pattern;
		const char *p;

		/* the template with each {column} as * and the rest matched literally */
		initStringInfo(&pattern);
		for (p = tmpl; *p; p++)
		{
			size_t		len;

			if (polyglot_redis_key_placeholder(p, route->key_columns, &len) >= 0)
			{
				appendStringInfoChar(&pattern, '*');
				p += len - 1;
				continue;
			}
			if (strchr("*?[]\\", *p))
				appendStringInfoChar(&pattern, '\\');
			appendStringInfoChar(&pattern, *p);
		}
		ks = MemoryContextAllocZero(state_cxt, sizeof(RedisKeyScan));
		ks->cursor = MemoryContextStrdup(state_cxt, "0");
		ks->pattern = MemoryContextStrdup(state_cxt, pattern.data);
		*state = ks;
	}
	initStringInfo(&scratch);
	while (page == NIL && !ks->done)
	{
		const char *argv[] = {"SCAN", ks->cursor, "MATCH", ks->pattern, "COUNT", "1000", "TYPE",
		route_mode(route) == REDIS_MODE_HASH ? "hash" : "string"};
		/* each node of a cluster in turn (its primaries), one SCAN each */
		redisReply *reply = polyglot_redis_node_command_argv(conn, ks->node, 8, argv, NULL);
		size_t		i;

		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
			reply->element[0]->type != REDIS_REPLY_STRING ||
			reply->element[1]->type != REDIS_REPLY_ARRAY)
			polyglot_redis_report_error(conn, reply, "SCAN");
		pfree(ks->cursor);
		ks->cursor = MemoryContextStrdup(state_cxt, reply->element[0]->str);
		if (strcmp(ks->cursor, "0") == 0 && ++ks->node >= polyglot_redis_node_count(conn))
			ks->done = true;
		found = NIL;
		for (i = 0; i < reply->element[1]->elements; i++)
		{
			redisReply *k = reply->element[1]->element[i];
			PolyglotStoreKey *sk;

			/* a key that is not text is none of a route's */
			if (k->type != REDIS_REPLY_STRING || memchr(k->str, '\0', k->len) ||
				!pg_verify_mbstr(GetDatabaseEncoding(), k->str, (int) k->len, true))
				continue;
			sk = palloc0(sizeof(PolyglotStoreKey));
			sk->name = pnstrdup(k->str, k->len);
			sk->key = parse_key(route, tmpl, sk->name, &scratch);
			found = lappend(found, sk);
		}
		freeReplyObject(reply);
		keep_route_shaped(route, conn, found);
		page = list_concat(page, found);
		CHECK_FOR_INTERRUPTS();
	}
	return page;
}

const PolyglotSink polyglot_redis_sink = {
	POLYGLOT_SINK_CALLBACKS(redis),
	.verify_unsupported = redis_verify_unsupported,
};
