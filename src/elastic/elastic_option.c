/*-------------------------------------------------------------------------
 *
 * elastic_option.c
 *		Options of the polyglot_elastic foreign-data wrapper (Elasticsearch
 *		and OpenSearch) and its validator.
 *
 * Server: url (one or more node URLs, comma-separated, for failover),
 *         connect_timeout, io_timeout; for https, tls_verify, tls_ca_file,
 *         tls_cert_file and tls_key_file (a client certificate: superusers).
 * User mapping: user, password (basic authentication) or api_key;
 *         tls_key_password.
 * Server and foreign table (the table's wins): pushdown, use_remote_estimate,
 *         page_size (hits per search request), batch_size (actions per
 *         _bulk of an INSERT), refresh (of writes: false, true, wait_for).
 * Foreign table: index (an index, alias or pattern); highlight (the fields
 *         whose fragments a search's _highlight column holds, separated by
 *         commas).
 * Column: field (a dotted path into the _source).
 * Sync routes: index, routing, mappings and settings (JSON objects: the
 *         index a route creates, see elastic_index.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/formatting.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/core.h"
#include "elastic/elastic.h"

static void check_url(const char *name, const char *value);
static void check_field(const char *name, const char *value);
static void check_highlight(const char *name, const char *value);

static const char *const refresh_values[] = {"false", "true", "wait_for", NULL};

const PolyglotOption polyglot_elastic_options[] = {
	{.name = "url", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_url},
	{.name = "connect_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "io_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "tls_verify", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_ca_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_cert_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_key_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "api_key", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "tls_key_password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "pushdown", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "use_remote_estimate", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "page_size", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 10000},
	{.name = "batch_size", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "refresh", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_ENUM, .enum_values = refresh_values},
	{.name = "pushdown", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "use_remote_estimate", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "page_size", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 10000},
	{.name = "batch_size", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "refresh", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_ENUM, .enum_values = refresh_values},
	{.name = "index", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_elastic_check_index_name},
	{.name = "highlight", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_STRING, .check = check_highlight},
	{.name = "field", .catalog = AttributeRelationId, .type = POLYGLOT_OPT_STRING, .check = check_field},
	{.name = NULL}
};

/*
 * Splits a comma-separated list of URLs into a List of palloc'd strings,
 * trimmed of spaces and of a trailing slash.
 */
List *
polyglot_elastic_split_urls(const char *urls)
{
	List	   *result = NIL;
	const char *p = urls;

	for (;;)
	{
		size_t		len = strcspn(p, ",");
		const char *start = p;
		const char *end = p + len;

		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '/'))
			end--;
		result = lappend(result, pnstrdup(start, end - start));
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	return result;
}

static void
check_url(const char *name, const char *value)
{
	List	   *urls = polyglot_elastic_split_urls(value);
	ListCell   *cell;

	foreach(cell, urls)
	{
		const char *url = (const char *) lfirst(cell);
		CURLU	   *h;
		CURLUcode	rc;
		char	   *scheme = NULL;
		char	   *userpart = NULL;
		char	   *query = NULL;
		const char *problem = NULL;

		if (url[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("empty URL in option \"%s\"", name),
					 errhint("Separate several node URLs with commas: 'http://node1:9200, http://node2:9200'.")));

		h = curl_url();
		if (h == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		rc = curl_url_set(h, CURLUPART_URL, url, 0);
		if (rc != CURLUE_OK)
			problem = curl_url_strerror(rc);
		else
		{
			curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
			curl_url_get(h, CURLUPART_USER, &userpart, 0);
			curl_url_get(h, CURLUPART_QUERY, &query, 0);
			if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
				problem = "The scheme must be http or https";
			else if (query != NULL)
				problem = "A node URL takes no query string";
		}
		curl_free(scheme);
		curl_free(query);
		curl_url_cleanup(h);

		if (problem)
		{
			curl_free(userpart);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid URL \"%s\" in option \"%s\"", url, name),
					 errdetail("%s.", problem),
					 errhint("The form is http[s]://host[:port][/path], several separated by commas.")));
		}
		if (userpart)
		{
			curl_free(userpart);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"%s\" must not contain credentials", name),
					 errdetail("Server options are readable by every user."),
					 errhint("Put user and password, or api_key, in a user mapping.")));
		}
	}
}

/*
 * Elasticsearch's rules for an index name (also OpenSearch's): lowercase,
 * at most 255 bytes, not . or .., not starting with -, _ or +, none of
 * \ / ? " < > | space # :.  A pattern (what a foreign table reads) may hold
 * *; a name a route writes to may not, nor a comma.
 */
static bool
index_name_ok(const char *value, bool pattern)
{
	size_t		len = strlen(value);

	return len > 0 && len <= ELASTIC_MAX_INDEX_BYTES &&
		strcmp(value, ".") != 0 && strcmp(value, "..") != 0 &&
		strchr("-_+", value[0]) == NULL &&
		strpbrk(value, pattern ? "\\/?\"<>| #:" : "\\/*?\"<>| ,#:") == NULL &&
		strcmp(str_tolower(value, len, DEFAULT_COLLATION_OID), value) == 0;
}

/*
 * The index option of a foreign table: each comma-separated part an index
 * name, * allowed, for patterns a table reads.
 */
void
polyglot_elastic_check_index_name(const char *name, const char *value)
{
	const char *p = value;

	for (;;)
	{
		size_t		len = strcspn(p, ",");

		if (!index_name_ok(pnstrdup(p, len), true))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid index name \"%s\" in option \"%s\"", value, name),
					 errdetail("An index name is lowercase, has at most 255 bytes, does not start with -, _ or +, and contains none of \\ / ? \" < > | space # :."),
					 errhint("A foreign table may name several indices separated by commas, and patterns with *.")));
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
}

/* A dotted path: non-empty segments */
static void
check_field(const char *name, const char *value)
{
	size_t		len = strlen(value);

	if (value[0] == '.' || value[len - 1] == '.' || strstr(value, "..") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid field path \"%s\" in option \"%s\"", value, name),
				 errdetail("A path is one or more field names separated by single dots.")));
}

/*
 * The fields of option highlight: names or dotted paths (a * matches as in
 * the servers' highlight), separated by commas, spaces around them
 * ignored.  A List of String, palloc'd; NIL for a NULL value.
 */
List *
polyglot_elastic_highlight_fields(const char *value)
{
	List	   *result = NIL;
	const char *p = value;

	if (value == NULL)
		return NIL;
	for (;;)
	{
		size_t		len = strcspn(p, ",");
		const char *start = p;
		const char *end = p + len;

		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		result = lappend(result, makeString(pnstrdup(start, end - start)));
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	return result;
}

/* Option highlight: one or more fields, each a dotted path */
static void
check_highlight(const char *name, const char *value)
{
	ListCell   *lc;

	foreach(lc, polyglot_elastic_highlight_fields(value))
	{
		const char *field = strVal(lfirst(lc));
		size_t		len = strlen(field);

		if (len == 0 || field[0] == '.' || field[len - 1] == '.' || strstr(field, "..") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid field \"%s\" in option \"%s\"", field, name),
					 errdetail("The option lists the fields to highlight, separated by commas, each a name or a dotted path."),
					 errhint("For example: highlight 'name, description'.")));
	}
}

/* Checks across the options of a CREATE or ALTER, after each was validated */
void
polyglot_elastic_check_options(List *options, Oid catalog)
{
	const char *url = polyglot_option_string(options, "url", POLYGLOT_DEFAULT_ELASTIC_URL);

	polyglot_check_tls_options(options, catalog, false);
	if (catalog == ForeignServerRelationId &&
		(polyglot_option_find(options, "tls_verify") ||
		 polyglot_option_find(options, "tls_ca_file") ||
		 polyglot_option_find(options, "tls_cert_file")))
	{
		ListCell   *lc;

		foreach(lc, polyglot_elastic_split_urls(url))
			if (pg_strncasecmp((char *) lfirst(lc), "https://", 8) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("TLS options need an https url"),
						 errdetail("The url of a node is \"%s\".", (char *) lfirst(lc)),
						 errhint("Use https:// for every node of option \"url\".")));
	}

	/* a user mapping authenticates one way */
	if (catalog == UserMappingRelationId &&
		polyglot_option_string(options, "api_key", NULL) != NULL &&
		(polyglot_option_string(options, "user", NULL) != NULL ||
		 polyglot_option_string(options, "password", NULL) != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("options \"api_key\" and \"user\"/\"password\" cannot be combined"),
				 errhint("Use either an API key or basic authentication.")));
}

/*
 * Fills opts from a server and an optional user mapping.  Strings point into
 * the option lists, which live as long as server and user.
 */
void
polyglot_elastic_get_options(ForeignServer *server, UserMapping *user, ElasticConnOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	polyglot_get_conn_options(server, user, &opts->common);
	opts->url = polyglot_option_string(server->options, "url", POLYGLOT_DEFAULT_ELASTIC_URL);
	opts->api_key = user ? polyglot_option_string(user->options, "api_key", NULL) : NULL;
}

/* Where a server's cluster is, as its options tell: its url, without trailing slashes */
char *
polyglot_elastic_endpoint(ForeignServer *server)
{
	char	   *url = pstrdup(polyglot_option_string(server->options, "url",
													 POLYGLOT_DEFAULT_ELASTIC_URL));
	size_t		len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
	return url;
}

/* ---------------------------------------------------------------- route options */

const PolyglotRouteOption polyglot_elastic_route_options[] = {
	{.name = "index", .type = POLYGLOT_ROUTE_OPT_STRING,
	.type_error = "option \"index\" must be a string"},
	{.name = "routing", .type = POLYGLOT_ROUTE_OPT_STRING,
	.type_error = "option \"routing\" must be the name of a column"},
	{.name = "mappings", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = "settings", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = NULL}
};

/* Is a JsonbValue a JSON object? */
static bool
value_is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/*
 * The "properties" (or "fields") of a mapping, at path: an object whose
 * members are field definitions, objects, with a string "type" when they
 * have one, and properties and fields of their own checked alike.  What
 * elastic_index.c compares with an existing index must have this shape;
 * the rest of a mapping is the server's to check.
 */
static void
check_mapping_properties(JsonbContainer *properties, const char *path, const char *member)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	check_stack_depth();
	it = JsonbIteratorInit(properties);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *field;
		JsonbValue	sub;
		static const char *const members[] = {"properties", "fields"};
		int			i;

		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || name == NULL)
			continue;
		field = path ? psprintf("%s.%s", path, name) : name;
		if (name[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"mappings\" has a field with an empty name in \"%s\"", member)));
		if (!value_is_object(&v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("field \"%s\" of option \"mappings\" must be a JSON object", field),
					 errhint("A field's mapping is an object such as {\"type\": \"keyword\"}.")));
		if (getKeyJsonValueFromContainer(v.val.binary.data, "type", 4, &sub) &&
			sub.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the type of field \"%s\" of option \"mappings\" must be a string", field)));
		for (i = 0; i < (int) lengthof(members); i++)
		{
			if (!getKeyJsonValueFromContainer(v.val.binary.data, members[i],
											  strlen(members[i]), &sub))
				continue;
			if (!value_is_object(&sub))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"%s\" of field \"%s\" of option \"mappings\" must be a JSON object",
								members[i], field)));
			check_mapping_properties(sub.val.binary.data, field, members[i]);
		}
		name = NULL;
	}
}

/*
 * "mappings" and "settings": JSON objects, as PUT /<index> takes them;
 * the mappings' properties of the shape check_mapping_properties() says.
 */
static void
check_index_definition(PolyglotRouteCheck *check)
{
	JsonbValue	v;
	JsonbValue	properties;

	if (polyglot_route_check_value(check, "settings", &v) && !value_is_object(&v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"settings\" must be a JSON object"),
				 errhint("Give the index settings as PUT /<index> takes them, such as {\"number_of_shards\": 1}.")));
	if (!polyglot_route_check_value(check, "mappings", &v))
		return;
	if (!value_is_object(&v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"mappings\" must be a JSON object"),
				 errhint("Give the index mappings as PUT /<index> takes them, such as {\"properties\": {\"name\": {\"type\": \"text\"}}}.")));
	if (getKeyJsonValueFromContainer(v.val.binary.data, "properties", 10, &properties))
	{
		if (!value_is_object(&properties))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"properties\" of option \"mappings\" must be a JSON object")));
		check_mapping_properties(properties.val.binary.data, NULL, "properties");
	}
}

/*
 * The options of a new Elasticsearch/OpenSearch route: the index (default:
 * the table's name, schema.table outside schema public) and the routing
 * column, which must be a key column: a deleted row is known by its key
 * only, and its delete needs the routing.
 */
void
polyglot_elastic_check_route(PolyglotRouteCheck *check)
{
	char	   *index = polyglot_route_check_string(check, "index");
	bool		given = index != NULL;
	char	   *routing;

	if (!given)
		index = polyglot_route_default_target(check->source);
	if (!index_name_ok(index, false))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid index name \"%s\"", index),
				 errdetail("An index name is lowercase, at most 255 bytes, contains none of \\ / * ? \" < > | , # : or spaces, and does not start with -, _ or +."),
				 given ? errhint("Choose another name.")
				 : errhint("The index defaults to the table's name (schema.table outside schema public): give the route an \"index\" option.")));
	polyglot_route_check_set(check, "index", index);

	routing = polyglot_route_check_string(check, "routing");
	if (routing != NULL)
	{
		ListCell   *lc;
		StringInfoData keys;
		bool		found = false;

		initStringInfo(&keys);
		foreach(lc, check->key_columns)
		{
			found |= strcmp((char *) lfirst(lc), routing) == 0;
			appendStringInfo(&keys, "%s%s", keys.len ? ", " : "", (char *) lfirst(lc));
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("routing column \"%s\" is not a key column of %s",
							routing, check->source_text),
					 errdetail("A deleted row is known by its key only, and its delete must carry the same routing."),
					 errhint("Key columns: %s.", keys.data)));
	}

	check_index_definition(check);
}

/* The options of a route as the sink reads them, parsed on first use */
const ElasticRouteOptions *
polyglot_elastic_route(PolyglotRoute *route)
{
	MemoryContext old;
	ElasticRouteOptions *ro;

	if (route->store_options)
		return (const ElasticRouteOptions *) route->store_options;
	old = MemoryContextSwitchTo(GetMemoryChunkContext(route));
	ro = palloc0(sizeof(ElasticRouteOptions));
	ro->index = polyglot_route_option_text(route->options, "index");
	ro->routing = polyglot_route_option_text(route->options, "routing");
	ro->reindex_into = polyglot_elastic_reindex_target(route->options);
	route->store_options = ro;
	MemoryContextSwitchTo(old);
	return ro;
}
