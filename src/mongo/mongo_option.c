/*-------------------------------------------------------------------------
 *
 * mongo_option.c
 *		Options of the polyglot_mongo foreign-data wrapper and its validator.
 *
 * Server: uri, database, connect_timeout, io_timeout; tls, tls_verify,
 *         tls_ca_file, tls_cert_file (a client certificate: superusers).
 * User mapping: user, password, tls_key_password.
 * Foreign table: database, collection.
 * Column: field (a dotted path into subdocuments).
 * Sync routes: database, collection.
 *
 * Credentials never go in the server's uri: they would be readable by every
 * user who can read pg_foreign_server.  The validator rejects a uri with a
 * user or password and points at the user mapping.  Nor may a non-superuser
 * make the backend authenticate as its host (a client key file, Kerberos,
 * AWS credentials of the environment), in the uri or in options.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/core.h"
#include "mongo/mongo.h"

static void check_uri(const char *name, const char *value);
static void check_field(const char *name, const char *value);

const PolyglotOption polyglot_mongo_options[] = {
	{.name = "uri", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_uri},
	{.name = "database", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_mongo_check_database},
	{.name = "connect_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "io_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "tls", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_verify", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_ca_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_cert_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "pushdown", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "use_remote_estimate", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "batch_size", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "tls_key_password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "database", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_mongo_check_database},
	{.name = "collection", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_mongo_check_collection},
	{.name = "pushdown", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "use_remote_estimate", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "batch_size", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "field", .catalog = AttributeRelationId, .type = POLYGLOT_OPT_STRING, .check = check_field},
	{.name = NULL}
};

static void
check_uri(const char *name, const char *value)
{
	mongoc_uri_t *uri;
	bson_error_t error;
	bool		has_credentials;

	polyglot_mongo_ensure_initialized();
	uri = mongoc_uri_new_with_error(value, &error);
	if (uri == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid MongoDB connection string in option \"%s\"", name),
				 errdetail_internal("%s", error.message),
				 errhint("The form is mongodb://host[:port][,host:port...][/?option=value...].")));
	has_credentials = mongoc_uri_get_username(uri) != NULL ||
		mongoc_uri_get_password(uri) != NULL;
	if (!superuser())
	{
		const char *mechanism = mongoc_uri_get_auth_mechanism(uri);
		char	   *what = NULL;

		/* files of the database host: a key is its identity, any may block a read */
		if (mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL))
			what = psprintf("a client certificate file (%s)", MONGOC_URI_TLSCERTIFICATEKEYFILE);
		else if (mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, NULL))
			what = psprintf("a file of certificate authorities (%s)", MONGOC_URI_TLSCAFILE);
		/* only mechanisms that authenticate with the user mapping's password */
		else if (mechanism && pg_strcasecmp(mechanism, "SCRAM-SHA-1") != 0 &&
				 pg_strcasecmp(mechanism, "SCRAM-SHA-256") != 0 &&
				 pg_strcasecmp(mechanism, "PLAIN") != 0)
			what = psprintf("authentication mechanism %s", mechanism);
		if (what)
		{
			mongoc_uri_destroy(uri);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers can use %s in option \"%s\"", what, name),
					 errdetail("It makes the database server use its own host's files, Kerberos credentials or environment, not what a user mapping says.")));
		}
	}
	mongoc_uri_destroy(uri);

	if (has_credentials)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"%s\" must not contain credentials", name),
				 errdetail("Server options are readable by every user."),
				 errhint("Put user and password in a user mapping: CREATE USER MAPPING ... OPTIONS (user '...', password '...').")));
}

/* Checks across the options of a CREATE or ALTER, after each was validated */
void
polyglot_mongo_check_options(List *options, Oid catalog)
{
	polyglot_check_tls_options(options, catalog, true);
}

/*
 * The error of a name MongoDB refuses (kind: "database", "collection"), in
 * a foreign server or table option (name) or a route's option (name NULL).
 */
static void
bad_name(const char *kind, const char *name, const char *value, const char *rules)
{
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid MongoDB %s name \"%s\"", kind, value),
				 errdetail("%s", rules)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid MongoDB %s name \"%s\" in option \"%s\"", kind, value, name),
			 errdetail("%s", rules)));
}

/* MongoDB's rules for database names, for an option (name) or a route's (name NULL) */
void
polyglot_mongo_check_database(const char *name, const char *value)
{
	if (value[0] == '\0' || strlen(value) >= 64 || strpbrk(value, "/\\. \"$") != NULL)
		bad_name("database", name, value,
				 "A database name is not empty, has fewer than 64 bytes and none of the characters /\\. \"$.");
}

/* MongoDB's rules for collection names, for an option (name) or a route's (name NULL) */
void
polyglot_mongo_check_collection(const char *name, const char *value)
{
	size_t		len = strlen(value);

	if (len == 0 || len > 255 || strchr(value, '$') != NULL ||
		strncmp(value, "system.", 7) == 0 || value[0] == '.' || value[len - 1] == '.')
		bad_name("collection", name, value,
				 "A collection name has 1 to 255 bytes, contains no \"$\", does not start with \"system.\" and neither starts nor ends with a dot.");
}

/* A dotted path: non-empty segments, none starting with $ */
static void
check_field(const char *name, const char *value)
{
	const char *seg = value;

	for (;;)
	{
		size_t		len = strcspn(seg, ".");

		if (len == 0 || seg[0] == '$')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid MongoDB field path \"%s\" in option \"%s\"", value, name),
					 errdetail("A path is one or more field names separated by dots; no name is empty or starts with \"$\".")));
		if (seg[len] == '\0')
			break;
		seg += len + 1;
	}
}

/*
 * Fills opts from a server and an optional user mapping.  Strings point into
 * the option lists, which live as long as server and user.
 */
void
polyglot_mongo_get_options(ForeignServer *server, UserMapping *user, MongoConnOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	polyglot_get_conn_options(server, user, &opts->common);
	opts->uri = polyglot_option_string(server->options, "uri", POLYGLOT_DEFAULT_MONGO_URI);
	opts->database = polyglot_option_string(server->options, "database", NULL);
}

/* Where a server's MongoDB is, as its options tell: its uri */
char *
polyglot_mongo_endpoint(ForeignServer *server)
{
	return pstrdup(polyglot_option_string(server->options, "uri", POLYGLOT_DEFAULT_MONGO_URI));
}

/* ---------------------------------------------------------------- route options */

const PolyglotRouteOption polyglot_mongo_route_options[] = {
	{.name = "database", .type = POLYGLOT_ROUTE_OPT_STRING,
	.type_error = "option \"database\" must be a string"},
	{.name = "collection", .type = POLYGLOT_ROUTE_OPT_STRING,
	.type_error = "option \"collection\" must be a string"},
	{.name = NULL}
};

/*
 * The options of a new MongoDB route: the database (else the server's,
 * looked up at delivery: one of the two is needed) and the collection
 * (default: the table's name, schema.table outside schema public).
 */
void
polyglot_mongo_check_route(PolyglotRouteCheck *check)
{
	char	   *db = polyglot_route_check_string(check, "database");
	char	   *coll;

	if (db != NULL)
		polyglot_mongo_check_database(NULL, db);
	else if (polyglot_option_string(check->server->options, "database", NULL) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a route to MongoDB server \"%s\" needs a database",
						check->server->servername),
				 errhint("Give the route a \"database\" option, or the server a database option.")));

	coll = polyglot_route_check_string(check, "collection");
	if (coll == NULL)
		coll = polyglot_route_default_target(check->source);
	polyglot_mongo_check_collection(NULL, coll);
	polyglot_route_check_set(check, "collection", coll);
}

/* The options of a route as the sink reads them, parsed on first use */
const MongoRouteOptions *
polyglot_mongo_route(PolyglotRoute *route)
{
	MongoRouteOptions *ro;

	if (route->store_options)
		return (const MongoRouteOptions *) route->store_options;
	ro = MemoryContextAllocZero(GetMemoryChunkContext(route), sizeof(MongoRouteOptions));
	ro->database = polyglot_route_option_text(route->options, "database");
	ro->collection = polyglot_route_option_text(route->options, "collection");
	if (ro->database)
		ro->database = MemoryContextStrdup(GetMemoryChunkContext(route), ro->database);
	if (ro->collection)
		ro->collection = MemoryContextStrdup(GetMemoryChunkContext(route), ro->collection);
	route->store_options = ro;
	return ro;
}
