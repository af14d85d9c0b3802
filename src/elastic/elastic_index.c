/*-------------------------------------------------------------------------
 *
 * elastic_index.c
 *		The index of a sync route with "mappings" or "settings": created by
 *		polyglot.sync(), or checked against the index that exists.
 *
 * When the route is created (the sink's create_target, called by
 * polyglot.sync() in the caller's transaction, as the caller):
 *
 *	- no index of the route's name: PUT /<index>__1 with the route's
 *	  mappings and settings and an alias <index> (or PUT /<index> when
 *	  <index>__1 exists already);
 *	- an index (or alias) of that name: its mapping is compared with the
 *	  route's, field by field (dotted paths, multi-fields included).  A field
 *	  both map with different types is a conflict: sync() fails, the
 *	  differences in errdetail.  Fields the index has and the route does
 *	  not mention are not conflicts.  Otherwise the route's mappings are
 *	  applied with PUT /<index>/_mapping, which adds the fields the index
 *	  lacks (a NOTICE names them) and refuses a change of a parameter that
 *	  cannot change (an analyzer, say): that refusal fails sync() too.
 *	  Settings apply to an index the route creates only: an existing
 *	  index keeps its own, and a NOTICE says so.
 *
 * A route without mappings or settings does not reach the store here: its
 * index is made by the first _bulk, with dynamic mappings, as before.
 * The index, once made, stays if the transaction of sync() aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "elastic/elastic.h"

/* A field of a mapping: its dotted path and its type */
typedef struct MappedField
{
	char	   *path;
	char	   *type;			/* "object" for properties without a type */
} MappedField;

/*
 * An index name as a URL path segment: letters, digits and - . _ as they
 * are, other bytes percent-encoded, so that no name turns into another
 * request.
 */
char *
polyglot_elastic_index_path(const char *index, const char *suffix)
{
	StringInfoData buf;
	const char *s;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '/');
	for (s = index; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || strchr("-._", c) != NULL)
			appendStringInfoChar(&buf, (char) c);
		else
			appendStringInfo(&buf, "%%%02X", c);
	}
	appendStringInfoString(&buf, suffix);
	return buf.data;
}

/*
 * Appends to *fields the fields of a "properties" or "fields" object,
 * recursively, as MappedField.  Members that are not objects are skipped
 * (an index's answer is the server's; the route's was checked by
 * elastic_option.c).
 */
static void
collect_fields(List **fields, JsonbContainer *properties, const char *prefix)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	if (properties == NULL || !JsonContainerIsObject(properties))
		return;
	check_stack_depth();
	it = JsonbIteratorInit(properties);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		MappedField *f;
		char	   *type;

		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || name == NULL || v.type != jbvBinary ||
			!JsonContainerIsObject(v.val.binary.data))
		{
			name = NULL;
			continue;
		}
		f = palloc(sizeof(MappedField));
		f->path = prefix ? psprintf("%s.%s", prefix, name) : name;
		type = polyglot_elastic_json_string(v.val.binary.data, "type");
		f->type = type ? type : pstrdup("object");
		*fields = lappend(*fields, f);
		collect_fields(fields, polyglot_elastic_json_object(v.val.binary.data, "properties"),
					   f->path);
		collect_fields(fields, polyglot_elastic_json_object(v.val.binary.data, "fields"),
					   f->path);
		name = NULL;
	}
}

static MappedField *
find_field(List *fields, const char *path)
{
	ListCell   *lc;

	foreach(lc, fields)
		if (strcmp(((MappedField *) lfirst(lc))->path, path) == 0)
			return (MappedField *) lfirst(lc);
	return NULL;
}

/* The JSON text of a route option (an object), or NULL without it */
static char *
option_json(PolyglotRoute *route, const char *name, JsonbContainer **container)
{
	JsonbValue	v;

	if (!getKeyJsonValueFromContainer(&route->options->root, name, strlen(name), &v) ||
		v.type != jbvBinary)
		return NULL;
	if (container)
		*container = v.val.binary.data;
	return JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
}

/*
 * Creates an index of given mappings and settings (JSON texts, or NULL).
 * Returns false when an index of that name exists, or came into being
 * meanwhile (resource_already_exists_exception); ereports any other
 * failure.
 */
bool
polyglot_elastic_put_index(ElasticConn *conn, const char *index, const char *mappings,
						   const char *settings, const char *alias)
{
	StringInfoData body;
	ElasticResponse response;
	char	   *path = polyglot_elastic_index_path(index, "");
	Jsonb	   *jb;

	initStringInfo(&body);
	appendStringInfoChar(&body, '{');
	if (mappings)
		appendStringInfo(&body, "\"mappings\":%s", mappings);
	if (settings)
		appendStringInfo(&body, "%s\"settings\":%s", body.len > 1 ? "," : "", settings);
	if (alias)
	{
		appendStringInfo(&body, "%s\"aliases\":{", body.len > 1 ? "," : "");
		escape_json(&body, alias);
		appendStringInfoString(&body, ":{}}");
	}
	appendStringInfoChar(&body, '}');

	polyglot_elastic_request(conn, "PUT", path, body.data, body.len, &response);
	if (response.status == 400 && response.len > 0 && response.body[0] == '{' &&
		(jb = polyglot_elastic_try_parse_json(response.body)) != NULL)
	{
		char	   *type = polyglot_elastic_json_string(polyglot_elastic_json_object(&jb->root, "error"),
														"type");
		char	   *reason = polyglot_elastic_json_string(polyglot_elastic_json_object(&jb->root, "error"),
														  "reason");

		/*
		 * (an index of that name, or an alias: made meanwhile by another
		 * sync or writer, which the caller then compares with)
		 */
		if (type && (strcmp(type, "resource_already_exists_exception") == 0 ||
					 strcmp(type, "invalid_alias_name_exception") == 0 ||
					 (strcmp(type, "invalid_index_name_exception") == 0 &&
					  reason && strstr(reason, "already exists as alias") != NULL)))
			return false;
	}
	if (response.status < 200 || response.status >= 300)
		polyglot_elastic_report_error(conn, &response, psprintf("PUT /%s", index));
	return true;
}

/*
 * Compares the mapping of an existing index (each index an alias names)
 * with the route's: a field of another type is a conflict (ereports with
 * every difference); otherwise PUT _mapping adds the fields the index
 * lacks, and a NOTICE names them.
 */
static void
check_existing_index(ElasticConn *conn, const char *index, JsonbContainer *route_mappings,
					 const char *mappings_text, bool has_settings,
					 const ElasticResponse *mapping_response)
{
	const char *what = psprintf("GET /%s/_mapping", index);
	Jsonb	   *jb = polyglot_elastic_parse_response(conn, mapping_response, what);
	List	   *wanted = NIL;
	StringInfoData conflicts;
	StringInfoData missing;
	int			nconflicts = 0;
	ListCell   *lc;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;
	int			nindices = 0;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_REPLY_HANDLE),
				 errmsg("Elasticsearch server \"%s\" answered %s with something else than a mapping",
						conn->servername, what),
				 errdetail_internal("%s", pnstrdup(mapping_response->body,
												   Min(mapping_response->len, 1000)))));

	if (route_mappings)
		collect_fields(&wanted, polyglot_elastic_json_object(route_mappings, "properties"), NULL);

	initStringInfo(&conflicts);
	initStringInfo(&missing);
	/* {"<index>": {"mappings": {...}}, ...}: an alias answers for each of its indices */
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		List	   *have = NIL;
		JsonbContainer *m;

		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || name == NULL || v.type != jbvBinary)
			continue;
		nindices++;
		m = polyglot_elastic_json_object(v.val.binary.data, "mappings");
		collect_fields(&have, polyglot_elastic_json_object(m, "properties"), NULL);
		foreach(lc, wanted)
		{
			MappedField *w = (MappedField *) lfirst(lc);
			MappedField *h = find_field(have, w->path);

			if (h == NULL)
			{
				if (nindices == 1)
					appendStringInfo(&missing, "%s\"%s\"", missing.len ? ", " : "", w->path);
				continue;
			}
			if (strcmp(h->type, w->type) == 0)
				continue;
			if (nconflicts++ > 0)
				appendStringInfoChar(&conflicts, '\n');
			if (strcmp(name, index) == 0)
				appendStringInfo(&conflicts, "field \"%s\": index has type \"%s\", route asks for \"%s\"",
								 w->path, h->type, w->type);
			else
				appendStringInfo(&conflicts, "field \"%s\": index \"%s\" has type \"%s\", route asks for \"%s\"",
								 w->path, name, h->type, w->type);
		}
		name = NULL;
	}
	if (nconflicts > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" exists with a mapping that conflicts with option \"mappings\"",
						index),
				 errdetail_internal("%s", conflicts.data),
				 errhint("Give the route mappings that agree with the index, another \"index\", or delete the index first.")));

	/* the fields the index lacks, and the parameters of the others, as the server sees them */
	if (route_mappings)
	{
		ElasticResponse response;
		char	   *path = polyglot_elastic_index_path(index, "/_mapping");

		polyglot_elastic_request(conn, "PUT", path, mappings_text, strlen(mappings_text),
								 &response);
		if (response.status == 400)
		{
			Jsonb	   *err = NULL;
			char	   *reason = NULL;

			if (response.len > 0 && response.body[0] == '{')
				err = polyglot_elastic_try_parse_json(response.body);
			if (err)
				reason = polyglot_elastic_error_text(polyglot_elastic_json_object(&err->root, "error"));
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("index \"%s\" exists with a mapping that conflicts with option \"mappings\"",
							index),
					 errdetail_internal("%s", reason ? reason :
										pnstrdup(response.body, Min(response.len, 1000))),
					 errhint("Give the route mappings that agree with the index, another \"index\", or delete the index first.")));
		}
		if (response.status < 200 || response.status >= 300)
			polyglot_elastic_report_error(conn, &response, psprintf("PUT /%s/_mapping", index));
		if (missing.len > 0)
			ereport(NOTICE,
					(errmsg("fields %s added to the mapping of index \"%s\"", missing.data, index)));
	}
	if (has_settings)
		ereport(NOTICE,
				(errmsg("index \"%s\" exists: it keeps its settings", index),
				 errdetail("Option \"settings\" applies to an index the route creates.")));
}

/*
 * The sink's create_target: the route's index, created or checked as the
 * banner says.  Does nothing for a route without "mappings" or "settings".
 */
void
polyglot_elastic_create_index(PolyglotRoute *route)
{
	const ElasticRouteOptions *ro = polyglot_elastic_route(route);
	JsonbContainer *route_mappings = NULL;
	char	   *mappings = option_json(route, "mappings", &route_mappings);
	char	   *settings = option_json(route, "settings", NULL);
	ElasticConn *conn;
	ElasticResponse response;

	if (mappings == NULL && settings == NULL)
		return;
	conn = polyglot_elastic_get_connection(route->server, route->user);
	polyglot_elastic_request(conn, "GET", polyglot_elastic_index_path(ro->index, "/_mapping"),
							 NULL, 0, &response);
	if (response.status == 404)
	{
		/*
		 * The index <index>__1 behind an alias of the route's index name,
		 * in one request: a later polyglot.reindex() moves the alias, and
		 * searches in flight then are not failed by the removal of an
		 * index of that name (elastic_reindex.c).  When <index>__1 exists
		 * (left by something else), or its name would be too long, the
		 * index takes the name itself.
		 */
		if (strlen(ro->index) <= ELASTIC_MAX_INDEX_BYTES - 3 &&
			polyglot_elastic_put_index(conn, psprintf("%s__1", ro->index), mappings, settings,
									   ro->index))
			return;
		if (polyglot_elastic_put_index(conn, ro->index, mappings, settings, NULL))
			return;
		polyglot_elastic_request(conn, "GET", polyglot_elastic_index_path(ro->index, "/_mapping"), NULL, 0,
								 &response);
	}
	if (response.status < 200 || response.status >= 300)
		polyglot_elastic_report_error(conn, &response, psprintf("GET /%s/_mapping", ro->index));
	check_existing_index(conn, ro->index, route_mappings, mappings, settings != NULL, &response);
}
