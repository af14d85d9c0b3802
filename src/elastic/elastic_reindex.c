/*-------------------------------------------------------------------------
 *
 * elastic_reindex.c
 *		The steps of polyglot.reindex(route, mappings, settings): a new index
 *		for an Elasticsearch/OpenSearch route, filled while the old one
 *		serves searches, then put behind the route's index name (an alias)
 *		in one request.
 *
 * The procedure polyglot.reindex() (PL/pgSQL, which commits between the
 * steps) calls polyglot._reindex(route, step, args) for each step:
 *
 *	cancel, drop
 *			 first, a reindex that was interrupted is cancelled: the route
 *			 stops writing to its index (cancel), and once the workers have
 *			 read that (fence), the index is deleted (drop).
 *	begin	 creates <index>__<n> with the new mappings and settings (n one
 *			 more than the index the name stands for now, or 1), and writes
 *			 it into the route's options as "reindex": from the next round
 *			 on, the worker sends each write of the route to both indices,
 *			 with the same version (elastic_sink.c).
 *	fence	 waits until every worker has started a round since (they read
 *			 the routes when a round starts): every batch delivered from then
 *			 on writes to both.
 *	backfill starts a backfill of the route (polyglot.backfill()), so that
 *			 every row is delivered again, and to the new index too.
 *	delivered  whether the backfill is done and every change enqueued up to
 *			 then is delivered (the outbox holds none of the route up to
 *			 the id it returns).
 *	swap	 one POST /_aliases: the name becomes an alias of the new index,
 *			 removed from the old one in the same request (or, the first
 *			 time, when the name is the old index itself, that index is
 *			 removed by the request: "remove_index"), so searches through
 *			 the name see the old index, then the new one, never none.  The
 *			 route's options take the new mappings and settings and lose
 *			 "reindex"; the old index, if another one remains, is deleted.
 *
 * Between delivered and swap, the procedure runs polyglot.verify() against
 * the new index (verify.c, its third argument), with repair, until it
 * finds no drift.
 *
 * Each step checks, as the caller, that it may operate the route, reads
 * the route as the owner of the extension, and reaches the store with the
 * route's user mapping, as the worker does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/dispatch.h"
#include "elastic/elastic.h"

PG_FUNCTION_INFO_V1(polyglot_reindex_step);

/* how many names <index>__<n> are tried for a new index */
#define REINDEX_MAX_NAME_TRIES	100

/* A member of a JSON object that is itself an object, or NULL */
static JsonbContainer *
object_member(JsonbContainer *container, const char *key)
{
	JsonbValue	v;

	if (container == NULL || !JsonContainerIsObject(container) ||
		!getKeyJsonValueFromContainer(container, key, strlen(key), &v) ||
		v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		return NULL;
	return v.val.binary.data;
}

/* An object's JSON text, or NULL */
static char *
object_text(JsonbContainer *container)
{
	if (container == NULL)
		return NULL;
	return JsonbToCString(NULL, container, -1);
}

/*
 * The index a reindex under way writes to besides the route's own, from
 * the route's options ("reindex": {"index": ...}), or NULL.
 */
const char *
polyglot_elastic_reindex_target(Jsonb *options)
{
	JsonbContainer *reindex = options ? object_member(&options->root, "reindex") : NULL;

	return reindex ? polyglot_elastic_json_string(reindex, "index") : NULL;
}

/*
 * How the sink's errors of the new index's actions start (elastic_sink.c),
 * which tells them from the route's own index's.
 */
char *
polyglot_elastic_reindex_error_prefix(const char *index)
{
	return psprintf("index \"%s\": ", index);
}

/*
 * The index of the reindex an argument names ({"index": ...}) is the one
 * under way: ereports otherwise (cancelled meanwhile, by another session).
 */
static void
require_reindex(PolyglotRoute *route, Jsonb *args)
{
	const char *index = polyglot_elastic_reindex_target(route->options);
	char	   *expected = polyglot_elastic_json_string(&args->root, "index");

	if (index == NULL || expected == NULL || strcmp(index, expected) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the reindex of route %d into index \"%s\" was cancelled", route->id,
						expected ? expected : ""),
				 errdetail("polyglot.reindex_cancel() or a reindex of another session stopped it.")));
}

/*
 * What the route's index name stands for on the server: NULL when there is
 * nothing of that name, the name itself for an index, or the one index an
 * alias of that name points to.  An alias of several indices is refused.
 */
static char *
current_index(ElasticConn *conn, const char *name)
{
	ElasticResponse response;
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *indices = NIL;
	const char *what = psprintf("GET /%s/_alias", name);

	polyglot_elastic_request(conn, "GET", polyglot_elastic_index_path(name, "/_alias"), NULL, 0,
							 &response);
	if (response.status == 404)
		return NULL;
	if (response.status < 200 || response.status >= 300)
		polyglot_elastic_report_error(conn, &response, what);
	jb = polyglot_elastic_parse_response(conn, &response, what);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_REPLY_HANDLE),
				 errmsg("Elasticsearch server \"%s\" answered %s with something else than an object",
						conn->servername, what)));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY)
			indices = lappend(indices, pnstrdup(v.val.string.val, v.val.string.len));
	if (list_length(indices) == 1)
		return (char *) linitial(indices);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("\"%s\" is an alias of %d indices, and a reindex needs it to stand for one",
					name, list_length(indices)),
			 errhint("Point the alias at one index, or give the route another \"index\".")));
	return NULL;				/* keep the compiler quiet */
}

/* DELETE /<index>; an index already gone is no error */
static void
delete_index(ElasticConn *conn, const char *index)
{
	ElasticResponse response;

	polyglot_elastic_request(conn, "DELETE", polyglot_elastic_index_path(index, ""), NULL, 0,
							 &response);
	if (response.status != 404 && (response.status < 200 || response.status >= 300))
		polyglot_elastic_report_error(conn, &response, psprintf("DELETE /%s", index));
}

/*
 * The number of a reindexed index, n of <name>__<n>, or 0 when index is
 * not one (polyglot._reindex_name_of() in SQL).
 */
static int
generation(const char *name, const char *index)
{
	size_t		len = strlen(name);
	const char *s;
	long		n;

	if (index == NULL || strncmp(index, name, len) != 0 || strncmp(index + len, "__", 2) != 0)
		return 0;
	s = index + len + 2;
	if (*s < '1' || *s > '9' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return 0;
	n = strtol(s, NULL, 10);
	return (int) n;
}

/*
 * Runs a statement of one value ($1 the route, $2 an argument of type
 * argtype: a query, or an UPDATE ... RETURNING) as the owner of the
 * extension; returns its first row's first column as text, or NULL without
 * a row or for a NULL.
 */
static char *
owner_query(const char *sql, int32 route, Oid argtype, Datum arg)
{
	Oid			argtypes[2] = {INT4OID, argtype};
	Datum		args[2] = {Int32GetDatum(route), arg};
	PolyglotOwnerSpi saved;
	char	   *result = NULL;
	int			ret;
	MemoryContext cxt = CurrentMemoryContext;

	polyglot_owner_spi_begin(&saved);

	/*
	 * No row count: an UPDATE ... RETURNING stopped at a count never ends
	 * as a statement, and its AFTER STATEMENT triggers (polyglot.routes'
	 * routes_changed, which tells the workers) would not fire.  Every
	 * statement here names one route by its id.
	 */
	ret = SPI_execute_with_args(sql, 2, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT && ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "pg_polyglot: a statement on route %d failed", route);
	if (SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (value)
			result = MemoryContextStrdup(cxt, value);
	}
	polyglot_owner_spi_end(&saved);
	return result;
}

/*
 * Runs an UPDATE of the route's options ($1 the route, $2 a jsonb; the
 * caller's SQL ends with its WHERE clause); returns whether it updated
 * the route.
 */
static bool
update_options(int32 route, const char *sql, Jsonb *arg)
{
	return owner_query(psprintf("%s RETURNING true", sql), route, JSONBOID,
					   JsonbPGetDatum(arg)) != NULL;
}

static Jsonb *
jsonb_from_text(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* {"alias": name, "index": index, "<other>": other or null} */
static Jsonb *
step_result(const char *name, const char *index, const char *other_key, const char *other)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"alias\":");
	escape_json(&buf, name);
	appendStringInfoString(&buf, ",\"index\":");
	escape_json(&buf, index);
	appendStringInfo(&buf, ",\"%s\":", other_key);
	if (other)
		escape_json(&buf, other);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');
	return jsonb_from_text(buf.data);
}

/* A "mappings" or "settings" argument: an object, or NULL for none given */
static JsonbContainer *
definition_arg(Jsonb *args, const char *name)
{
	JsonbValue	v;

	if (args == NULL ||
		!getKeyJsonValueFromContainer(&args->root, name, strlen(name), &v) ||
		v.type == jbvNull)
		return NULL;
	if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of polyglot.reindex() must be a JSON object", name)));
	return v.val.binary.data;
}

/*
 * Waits (up to 20 seconds) until a new index has its primary shards
 * allocated; when it does not (settings the cluster cannot satisfy: more
 * shards or replicas than it can place), or on any error on the way,
 * deletes it and ereports.
 */
static void
wait_for_index(ElasticConn *conn, const char *index)
{
	ElasticResponse response;
	Jsonb	   *jb;
	JsonbValue	v;
	bool		timed_out;
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		polyglot_elastic_request(conn, "GET",
								 psprintf("/_cluster/health%s",
										  polyglot_elastic_index_path(index, "?wait_for_status=yellow&timeout=20s")),
								 NULL, 0, &response);
		if ((response.status < 200 || response.status >= 300) && response.status != 408)
			polyglot_elastic_report_error(conn, &response,
										  psprintf("GET /_cluster/health/%s", index));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* (the error that came first is the one to report) */
		PG_TRY();
		{
			delete_index(conn, index);
		}
		PG_CATCH();
		{
			FlushErrorState();
		}
		PG_END_TRY();
		ReThrowError(edata);
	}
	PG_END_TRY();
	timed_out = true;
	if (response.status >= 200 && response.status < 300 &&
		(jb = polyglot_elastic_try_parse_json(response.body)) != NULL &&
		JB_ROOT_IS_OBJECT(jb) &&
		getKeyJsonValueFromContainer(&jb->root, "timed_out", 9, &v) && v.type == jbvBool)
		timed_out = v.val.boolean;
	if (!timed_out)
		return;
	delete_index(conn, index);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the new index \"%s\" did not become available within 20 seconds", index),
			 errdetail_internal("GET /_cluster/health answered HTTP %ld: %s", response.status,
								response.body ? pnstrdup(response.body, Min(response.len, 500)) : ""),
			 errhint("Give settings the cluster can satisfy (number_of_replicas, number_of_shards).")));
}

/* step begin: see the banner */
static Jsonb *
reindex_begin(PolyglotRoute *route, ElasticConn *conn, Jsonb *args)
{
	const char *name = polyglot_elastic_route(route)->index;
	JsonbContainer *mappings = definition_arg(args, "mappings");
	JsonbContainer *settings = definition_arg(args, "settings");
	char	   *current;
	char	   *mappings_text;
	char	   *settings_text;
	char	   *index = NULL;
	int			n;
	int			tries;
	StringInfoData buf;

	if (polyglot_elastic_reindex_target(route->options) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d has a reindex under way", route->id),
				 errhint("CALL polyglot.reindex_cancel() first.")));
	/* the backfill that fills the new index needs the worker to deliver */
	if (route->paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d is paused", route->id),
				 errhint("Resume it with polyglot.resume() first: the reindex fills the new index through the route.")));
	current = current_index(conn, name);

	/* not given: the route's own */
	if (mappings == NULL)
		mappings = object_member(&route->options->root, "mappings");
	if (settings == NULL)
		settings = object_member(&route->options->root, "settings");
	mappings_text = object_text(mappings);
	settings_text = object_text(settings);

	if (strlen(name) + strlen("__999999999") > ELASTIC_MAX_INDEX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("index name \"%s\" is too long for a reindex", name),
				 errdetail("A reindex makes indices <index>__<n>, of at most %d bytes.",
						   ELASTIC_MAX_INDEX_BYTES)));
	n = generation(name, current) + 1;
	for (tries = 0; tries < REINDEX_MAX_NAME_TRIES; tries++, n++)
	{
		index = psprintf("%s__%d", name, n);
		if (polyglot_elastic_put_index(conn, index, mappings_text, settings_text, NULL))
			break;
		index = NULL;
	}
	if (index == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("could not find a free index name for the reindex of route %d", route->id),
				 errdetail("Indices \"%s__%d\" to \"%s__%d\" exist.", name, n - tries, name, n - 1),
				 errhint("Delete the indices left over from earlier reindexes.")));

	/* its primary shards allocated, or it would fail every write */
	wait_for_index(conn, index);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"reindex\":{\"index\":");
	escape_json(&buf, index);
	appendStringInfoString(&buf, ",\"started\":");
	escape_json(&buf, timestamptz_to_str(GetCurrentTimestamp()));
	/* the session whose polyglot.reindex() runs it */
	appendStringInfo(&buf, ",\"pid\":%d,\"backend_start\":", MyProcPid);
	escape_json(&buf, timestamptz_to_str(MyStartTimestamp));
	if (mappings_text)
		appendStringInfo(&buf, ",\"mappings\":%s", mappings_text);
	if (settings_text)
		appendStringInfo(&buf, ",\"settings\":%s", settings_text);
	appendStringInfoString(&buf, "}}");
	/* (a reindex begun meanwhile by another session wins: this one's index goes) */
	if (!update_options(route->id,
						"UPDATE polyglot.routes SET options = options OPERATOR(pg_catalog.||) $2 "
						"WHERE id OPERATOR(pg_catalog.=) $1 "
						"AND NOT options OPERATOR(pg_catalog.?) 'reindex' "
						"AND NOT options OPERATOR(pg_catalog.?) 'reindex_cancelled'",
						jsonb_from_text(buf.data)))
	{
		delete_index(conn, index);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d has a reindex under way, or is gone", route->id)));
	}

	return step_result(name, index, "from", current);
}

/* after how many attempts a key the new index refuses stops a reindex */
#define REINDEX_FAILING_ATTEMPTS	3

/*
 * step delivered ({"index": the reindex's, "upto": <time> after the first
 * call}): whether the backfill is done and every change of the route
 * enqueued up to a time (the first call's, after the backfill) is
 * delivered; the outbox keeps the enqueue time of keys it takes back (a
 * retry, a batch cut short), not their ids.  Counts, whether done or not,
 * what the new index refused (errors of its actions start with
 * polyglot_elastic_reindex_error_prefix()): keys given up since the
 * reindex began (dead letters), keys it refused REINDEX_FAILING_ATTEMPTS
 * times or more ("failing", with the last error), keys it refused at all
 * and still pending ("refused").
 */
static Jsonb *
reindex_delivered(PolyglotRoute *route, Jsonb *args)
{
	JsonbValue	v;
	TimestampTz upto = 0;
	const char *index = polyglot_elastic_reindex_target(route->options);
	Datum		prefix;
	char	   *dead;
	char	   *failing;
	char	   *refused;
	char	   *error;
	char	   *backoff;
	char	   *own_prefix;
	bool		done = false;
	StringInfoData buf;

	require_reindex(route, args);
	prefix = CStringGetTextDatum(polyglot_elastic_reindex_error_prefix(index));
	own_prefix = quote_literal_cstr(polyglot_elastic_reindex_error_prefix(polyglot_elastic_route(route)->index));
	/*
	 * (any but those of the route's own index, a request refused as a
	 * whole, say, since every worker writes to both: the backfill step's
	 * "fenced")
	 */
	dead = owner_query(psprintf("SELECT pg_catalog.count(*) FROM polyglot.dead_letters d, polyglot.routes r "
								"WHERE d.route_id OPERATOR(pg_catalog.=) $1 AND r.id OPERATOR(pg_catalog.=) $1 "
								"AND d.failed_at OPERATOR(pg_catalog.>=) "
								"(r.options OPERATOR(pg_catalog.->) 'reindex' OPERATOR(pg_catalog.->>) 'fenced')::pg_catalog.timestamptz "
								"AND NOT pg_catalog.starts_with(coalesce(d.error, ''), %s)",
								own_prefix),
					   route->id, TEXTOID, prefix);
	/*
	 * the route backs off for the new index's transient errors (a 429, a
	 * 5xx): said, and left to the deadline (a large backfill meets some)
	 */
	backoff = owner_query("SELECT last_error FROM polyglot.route_state "
						  "WHERE route_id OPERATOR(pg_catalog.=) $1 "
						  "AND consecutive_failures OPERATOR(pg_catalog.>=) " CppAsString2(REINDEX_FAILING_ATTEMPTS) " "
						  "AND pg_catalog.strpos(last_error, $2) OPERATOR(pg_catalog.>) 0",
						  route->id, TEXTOID, prefix);
	failing = owner_query("SELECT pg_catalog.count(*) FROM polyglot.outbox "
						  "WHERE route_id OPERATOR(pg_catalog.=) $1 "
						  "AND pg_catalog.starts_with(last_error, $2) "
						  "AND attempts OPERATOR(pg_catalog.>=) " CppAsString2(REINDEX_FAILING_ATTEMPTS),
						  route->id, TEXTOID, prefix);
	error = owner_query("SELECT last_error FROM polyglot.outbox "
						"WHERE route_id OPERATOR(pg_catalog.=) $1 "
						"AND pg_catalog.starts_with(last_error, $2) LIMIT 1",
						route->id, TEXTOID, prefix);
	refused = owner_query("SELECT pg_catalog.count(*) FROM polyglot.outbox "
						  "WHERE route_id OPERATOR(pg_catalog.=) $1 "
						  "AND pg_catalog.starts_with(last_error, $2)",
						  route->id, TEXTOID, prefix);

	if (getKeyJsonValueFromContainer(&args->root, "upto", 4, &v) && v.type == jbvNumeric)
		upto = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v.val.numeric)));
	if (owner_query("SELECT 1 FROM polyglot.route_state "
					"WHERE route_id OPERATOR(pg_catalog.=) $1 AND backfill_finished_at IS NULL",
					route->id, INT4OID, Int32GetDatum(0)) == NULL)
	{
		if (upto <= 0)
			upto = GetCurrentTimestamp();
		/*
		 * (A key retried for an error of the route's own index only: the
		 * new index took it, and it may fail until the swap: the reason
		 * for the reindex, maybe.)
		 */
		done = owner_query(psprintf("SELECT 1 FROM polyglot.outbox "
									"WHERE route_id OPERATOR(pg_catalog.=) $1 "
									"AND enqueued_at OPERATOR(pg_catalog.<=) $2 "
									"AND NOT (attempts OPERATOR(pg_catalog.>) 0 "
									"AND pg_catalog.starts_with(coalesce(last_error, ''), %s)) LIMIT 1",
									own_prefix),
						   route->id, TIMESTAMPTZOID, TimestampTzGetDatum(upto)) == NULL;
	}

	if (backoff && error == NULL)
		error = backoff;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"done\": %s, \"dead_letters\": %s, \"failing\": %s, \"refused\": %s, \"error\": ",
					 done ? "true" : "false", dead ? dead : "0", failing ? failing : "0",
					 refused ? refused : "0");
	if (error)
		escape_json(&buf, error);
	else
		appendStringInfoString(&buf, "null");
	if (upto > 0)
		appendStringInfo(&buf, ", \"upto\": " INT64_FORMAT, (int64) upto);
	appendStringInfoChar(&buf, '}');
	return jsonb_from_text(buf.data);
}

/* step swap: see the banner */
static Jsonb *
reindex_swap(PolyglotRoute *route, ElasticConn *conn, Jsonb *args)
{
	const char *name = polyglot_elastic_route(route)->index;
	JsonbContainer *reindex = object_member(&route->options->root, "reindex");
	const char *index = polyglot_elastic_reindex_target(route->options);
	char	   *current;
	char	   *mappings;
	char	   *settings;
	StringInfoData buf;
	ElasticResponse response;

	if (index == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d has no reindex under way", route->id)));
	require_reindex(route, args);
	current = current_index(conn, name);

	if (current == NULL || strcmp(current, index) != 0)
	{
		/* searches through the name find at once what verify found */
		polyglot_elastic_request(conn, "POST", polyglot_elastic_index_path(index, "/_refresh"),
								 NULL, 0, &response);
		if (response.status < 200 || response.status >= 300)
			polyglot_elastic_report_error(conn, &response, psprintf("POST /%s/_refresh", index));

		initStringInfo(&buf);
		appendStringInfoString(&buf, "{\"actions\":[{\"add\":{\"index\":");
		escape_json(&buf, index);
		appendStringInfoString(&buf, ",\"alias\":");
		escape_json(&buf, name);
		appendStringInfoString(&buf, "}}");
		if (current && strcmp(current, name) == 0)
		{
			/* the name is an index: it goes, and the alias takes its name */
			appendStringInfoString(&buf, ",{\"remove_index\":{\"index\":");
			escape_json(&buf, current);
			appendStringInfoString(&buf, "}}");
		}
		else if (current)
		{
			appendStringInfoString(&buf, ",{\"remove\":{\"index\":");
			escape_json(&buf, current);
			appendStringInfoString(&buf, ",\"alias\":");
			escape_json(&buf, name);
			appendStringInfoString(&buf, "}}");
		}
		appendStringInfoString(&buf, "]}");
		polyglot_elastic_request(conn, "POST", "/_aliases", buf.data, buf.len, &response);
		if (response.status < 200 || response.status >= 300)
			polyglot_elastic_report_error(conn, &response,
										  psprintf("POST /_aliases (\"%s\" to index \"%s\")",
												   name, index));
	}

	/* the route keeps the new definition, and writes to the name only */
	mappings = object_text(object_member(reindex, "mappings"));
	settings = object_text(object_member(reindex, "settings"));
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (mappings)
		appendStringInfo(&buf, "\"mappings\":%s", mappings);
	if (settings)
		appendStringInfo(&buf, "%s\"settings\":%s", mappings ? "," : "", settings);
	appendStringInfoChar(&buf, '}');
	(void) update_options(route->id,
						  "UPDATE polyglot.routes SET options = "
						  "(options OPERATOR(pg_catalog.-) ARRAY['reindex', 'mappings', 'settings']) "
						  "OPERATOR(pg_catalog.||) $2 WHERE id OPERATOR(pg_catalog.=) $1",
						  jsonb_from_text(buf.data));

	/*
	 * The previous index, behind the alias until now, if an earlier reindex
	 * made it (one the alias was put on by hand stays).  A failure to
	 * delete it is no reason to undo the swap.
	 */
	if (current && strcmp(current, name) == 0)
		;						/* removed by the swap itself */
	else if (current && generation(name, current) > 0 && strcmp(current, index) != 0)
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			delete_index(conn, current);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/*
			 * (A query cancel too: the alias has moved, and the options
			 * that say so must commit.)
			 */
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ereport(WARNING,
					(errmsg("could not delete index \"%s\" after the reindex of route %d",
							current, route->id),
					 errdetail_internal("%s", edata->message),
					 errhint("Delete it by hand.")));
			current = NULL;
		}
		PG_END_TRY();
	}
	else
		current = NULL;

	return step_result(name, index, "dropped", current);
}

/*
 * step cancel: the route stops writing to the index of a reindex under
 * way; returns {"index": that index, or null when there was none}.  The
 * index is deleted by the step drop, once the workers have read the route
 * again (they would create it again by writing to it).
 */
static Jsonb *
reindex_cancel(PolyglotRoute *route, Jsonb *args)
{
	const char *index = polyglot_elastic_reindex_target(route->options);
	JsonbContainer *cancelled = object_member(&route->options->root, "reindex_cancelled");
	char	   *only = polyglot_elastic_json_string(&args->root, "index");
	JsonbValue	v;
	StringInfoData buf;

	/* {"index": ...}: that reindex only (the caller's own) */
	if (only && (index == NULL || strcmp(index, only) != 0))
		return jsonb_from_text("{\"index\": null}");
	/* {"force": false}: not a reindex that another live session runs */
	if (index && getKeyJsonValueFromContainer(&args->root, "force", 5, &v) &&
		v.type == jbvBool && !v.val.boolean)
	{
		JsonbContainer *reindex = object_member(&route->options->root, "reindex");
		JsonbValue	pid;
		char	   *start = polyglot_elastic_json_string(reindex, "backend_start");

		if (getKeyJsonValueFromContainer(reindex, "pid", 3, &pid) && pid.type == jbvNumeric &&
			start != NULL)
		{
			int			owner = DatumGetInt32(DirectFunctionCall1(numeric_int4,
																  NumericGetDatum(pid.val.numeric)));

			/*
			 * Under way: the session that began it is the same backend (pid
			 * and start) and runs a statement now, its CALL of
			 * polyglot.reindex() (an idle one was interrupted)
			 */
			pgstat_clear_snapshot();	/* (what other sessions do now) */
			if (owner != MyProcPid && BackendPidGetProc(owner) != NULL &&
				owner_query("SELECT 1 FROM pg_catalog.pg_stat_activity "
							"WHERE pid OPERATOR(pg_catalog.=) $1 "
							"AND state NOT IN ('idle', 'idle in transaction', 'idle in transaction (aborted)') "
							"AND backend_start OPERATOR(pg_catalog.=) $2::pg_catalog.timestamptz",
							owner, TEXTOID, CStringGetTextDatum(start)) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("a reindex of route %d is under way in another session", route->id),
						 errdetail("Session %d began the reindex into index \"%s\".", owner, index),
						 errhint("Wait for it, or stop it with polyglot.reindex_cancel().")));
		}
	}

	/* a cancel interrupted before its drop: the drop again */
	if (index == NULL && cancelled)
		index = polyglot_elastic_json_string(cancelled, "index");
	if (index == NULL)
		return jsonb_from_text("{\"index\": null}");
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"reindex_cancelled\":{\"index\":");
	escape_json(&buf, index);
	appendStringInfoString(&buf, "}}");
	(void) update_options(route->id,
						  "UPDATE polyglot.routes SET options = "
						  "(options OPERATOR(pg_catalog.-) 'reindex') OPERATOR(pg_catalog.||) $2 "
						  "WHERE id OPERATOR(pg_catalog.=) $1",
						  jsonb_from_text(buf.data));
	resetStringInfo(&buf);
	appendStringInfoString(&buf, "{\"index\":");
	escape_json(&buf, index);
	appendStringInfoChar(&buf, '}');
	return jsonb_from_text(buf.data);
}

/*
 * step drop: deletes the index of the reindex cancelled (the options'
 * "reindex_cancelled"), unless the route's index name stands for it, and
 * forgets it.  Returns whether it deleted one.
 */
static bool
reindex_drop(PolyglotRoute *route, ElasticConn *conn)
{
	const char *name = polyglot_elastic_route(route)->index;
	JsonbContainer *cancelled = object_member(&route->options->root, "reindex_cancelled");
	char	   *index = cancelled ? polyglot_elastic_json_string(cancelled, "index") : NULL;
	char	   *current;
	bool		deleted = false;

	if (index == NULL)
		return false;
	current = current_index(conn, name);
	if (generation(name, index) > 0 && (current == NULL || strcmp(current, index) != 0))
	{
		delete_index(conn, index);
		deleted = true;
	}
	(void) update_options(route->id,
						  "UPDATE polyglot.routes SET options = options OPERATOR(pg_catalog.-) 'reindex_cancelled' "
						  "WHERE id OPERATOR(pg_catalog.=) $1",
						  jsonb_from_text("{}"));
	return deleted;
}

/*
 * Locks the route's row until the step's transaction ends (the steps that
 * change the options or the indices of one route run one at a time; FOR
 * NO KEY UPDATE, which the worker's backfill and fan-out steps, FOR KEY
 * SHARE, do not wait for), and
 * takes its options as they are then, committed by another step maybe
 * after this statement's snapshot.
 */
static void
lock_route(PolyglotRoute *route)
{
	char	   *options = owner_query("SELECT options::pg_catalog.text FROM polyglot.routes "
									  "WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
									  route->id, INT4OID, Int32GetDatum(0));

	if (options == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("route %d does not exist", route->id)));
	route->options = jsonb_from_text(options);
	route->store_options = NULL;
}

/*
 * polyglot._reindex(route int, step text, args jsonb) returns jsonb: one
 * step of polyglot.reindex(), as the banner says.
 */
Datum
polyglot_reindex_step(PG_FUNCTION_ARGS)
{
	int32		route_id = PG_GETARG_INT32(0);
	char	   *step = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *args = PG_GETARG_JSONB_P(2);
	PolyglotRoute *route;
	ElasticConn *conn;

	if (!JB_ROOT_IS_OBJECT(args) || JB_ROOT_IS_SCALAR(args))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the arguments of polyglot._reindex() are a JSON object")));
	polyglot_check_route_privilege(route_id);
	route = route_id > 0 ? polyglot_load_route_as_owner(route_id) : NULL;
	if (route == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("route %d does not exist", route_id)));
	if (strcmp(route->store, "elastic") != 0 || polyglot_elastic_route(route)->index == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("route %d does not deliver to Elasticsearch or OpenSearch", route_id),
				 errdetail("polyglot.reindex() rebuilds the index of a route of a polyglot_elastic server.")));

	if (strcmp(step, "fence") == 0)
	{
		JsonbValue	v;
		int			timeout_ms = 60000;

		if (args && getKeyJsonValueFromContainer(&args->root, "timeout_ms", 10, &v) &&
			v.type == jbvNumeric)
			timeout_ms = DatumGetInt32(DirectFunctionCall1(numeric_int4,
														   NumericGetDatum(v.val.numeric)));
		if (!polyglot_await_worker_rounds(Max(timeout_ms, 1)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the pg_polyglot workers did not start a new round in time"),
					 errdetail("polyglot.reindex() waits until the workers read the route again."),
					 errhint("Check that a worker serves this database (polyglot.database) and is not stuck on a store.")));
		PG_RETURN_JSONB_P(jsonb_from_text("{}"));
	}
	if (strcmp(step, "delivered") == 0)
		PG_RETURN_JSONB_P(reindex_delivered(route, args));
	if (strcmp(step, "cancel") == 0)
	{
		lock_route(route);
		PG_RETURN_JSONB_P(reindex_cancel(route, args));
	}
	if (strcmp(step, "backfill") == 0)
	{
		/* the reindex's still (not cancelled meanwhile), then every row again */
		lock_route(route);
		require_reindex(route, args);
		(void) owner_query("SELECT polyglot._backfill($1)", route->id, INT4OID, Int32GetDatum(0));
		/* every worker writes to both from now on: see reindex_delivered() */
		(void) update_options(route->id,
							  "UPDATE polyglot.routes SET options = pg_catalog.jsonb_set(options, "
							  "'{reindex,fenced}', pg_catalog.to_jsonb(pg_catalog.now())) "
							  "WHERE id OPERATOR(pg_catalog.=) $1",
							  jsonb_from_text("{}"));
		PG_RETURN_JSONB_P(jsonb_from_text("{}"));
	}

	lock_route(route);
	polyglot_route_require_server(route);
	if (route->access_error)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", route->access_error)));
	conn = polyglot_elastic_get_connection(route->server, route->user);
	if (strcmp(step, "begin") == 0)
		PG_RETURN_JSONB_P(reindex_begin(route, conn, args));
	if (strcmp(step, "swap") == 0)
		PG_RETURN_JSONB_P(reindex_swap(route, conn, args));
	if (strcmp(step, "drop") == 0)
		PG_RETURN_JSONB_P(jsonb_from_text(reindex_drop(route, conn) ?
										  "{\"deleted\": true}" : "{\"deleted\": false}"));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown step \"%s\" of polyglot._reindex()", step)));
	PG_RETURN_NULL();
}
