/*-------------------------------------------------------------------------
 *
 * redis_option.c
 *		Options of the polyglot_redis foreign-data wrapper and its validator.
 *
 * Server: host, port, db, connect_timeout, io_timeout.
 * User mapping: user, password (Redis 6 ACL user, or the legacy password).
 * Server and foreign table (the table's wins): batch_size (keys per
 *         pipelined round trip of a scan, rows per pipeline of an INSERT).
 * Foreign table: type, prefix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

static const char *const redis_table_types[] = {
	"string", "hash", "list", "set", "zset", NULL
};

const PolyglotOption polyglot_redis_options[] = {
	{.name = "host", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING},
	{.name = "port", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 65535},
	{.name = "db", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 0, .max = PG_INT32_MAX},
	{.name = "connect_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "io_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "batch_size", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "batch_size", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "type", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_ENUM, .enum_values = redis_table_types},
	{.name = "prefix", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_ANY_STRING},
	{.name = NULL}
};

PG_FUNCTION_INFO_V1(polyglot_redis_validator);

/*
 * polyglot_redis_validator(options text[], catalog oid): ereports on the
 * first invalid option of a CREATE or ALTER of a polyglot_redis object.
 */
Datum
polyglot_redis_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);

	polyglot_validate_options("polyglot_redis", polyglot_redis_options, options, catalog);
	PG_RETURN_VOID();
}

/*
 * Fills opts from a server and an optional user mapping.  Strings point into
 * the option lists, which live as long as server and user.
 */
void
polyglot_redis_get_options(ForeignServer *server, UserMapping *user, RedisConnOptions *opts)
{
	ListCell   *cell;

	memset(opts, 0, sizeof(*opts));
	polyglot_get_conn_options(server, user, &opts->common);
	opts->host = "127.0.0.1";
	opts->port = POLYGLOT_DEFAULT_REDIS_PORT;
	opts->db = 0;

	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "host") == 0)
			opts->host = defGetString(def);
		else if (strcmp(def->defname, "port") == 0)
			opts->port = polyglot_option_int(def);
		else if (strcmp(def->defname, "db") == 0)
			opts->db = polyglot_option_int(def);
	}
}
