/*-------------------------------------------------------------------------
 *
 * redis_option.c
 *		Options of the polyglot_redis foreign-data wrapper and its validator.
 *
 * Server: host, port, db, connect_timeout, io_timeout; or, instead of
 *         host and port, sentinels and master_name (a Sentinel-managed
 *         primary) or cluster (seed nodes of a Redis Cluster);
 *         wait_replicas (sync batches wait for that many replicas);
 *         tls, tls_verify, tls_ca_file, tls_cert_file, tls_key_file (the
 *         files: superusers only), where hiredis has TLS (hiredis_ssl).
 * User mapping: user, password (Redis 6 ACL user, or the legacy password);
 *         sentinel_user, sentinel_password; tls_key_password.
 * Server and foreign table (the table's wins): batch_size (keys per
 *         pipelined round trip of a scan, rows per pipeline of an INSERT).
 * Foreign table: type, prefix.
 *
 * Sync routes: mode, key (the key template), ttl, channel; and what the
 * sink reads of them, parsed once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/core.h"
#include "redis/redis.h"

static void check_sentinels(const char *name, const char *value);

static const char *const redis_table_types[] = {
	"string", "hash", "list", "set", "zset", NULL
};

const PolyglotOption polyglot_redis_options[] = {
	{.name = "host", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING},
	{.name = "port", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 65535},
	{.name = "db", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 0, .max = PG_INT32_MAX},
	{.name = "cluster", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_sentinels},
	{.name = "sentinels", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_sentinels},
	{.name = "master_name", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING},
	{.name = "wait_replicas", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 0, .max = 1000},
	{.name = "connect_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "io_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "tls", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_verify", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_ca_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_cert_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_key_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "sentinel_user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "sentinel_password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "tls_key_password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "batch_size", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "batch_size", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_INT, .min = 1, .max = 100000},
	{.name = "type", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_ENUM, .enum_values = redis_table_types},
	{.name = "prefix", .catalog = ForeignTableRelationId, .type = POLYGLOT_OPT_ANY_STRING},
	{.name = NULL}
};

/*
 * Parses a list of addresses "host:port[,host:port...]" into palloc'd
 * arrays; returns their number, or -1 with *bad pointing at the first bad
 * address (palloc'd).  Spaces around an address are allowed; a host may be
 * an IPv6 address in brackets ("[::1]:26379").
 */
int
polyglot_redis_parse_addresses(const char *list, char ***hosts, int **ports, char **bad)
{
	char	   *copy = pstrdup(list);
	char	   *p = copy;
	int			n = 0;
	int			cap = 4;

	*hosts = palloc(sizeof(char *) * cap);
	*ports = palloc(sizeof(int) * cap);
	for (;;)
	{
		char	   *end = strchr(p, ',');
		char	   *colon;
		char	   *host;
		char	   *port;
		size_t		len;
		long		v;

		if (end)
			*end = '\0';
		while (isspace((unsigned char) *p))
			p++;
		len = strlen(p);
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			p[--len] = '\0';
		*bad = pstrdup(p);		/* as written, should it be bad */
		colon = strrchr(p, ':');
		if (colon == NULL)
			return -1;
		*colon = '\0';
		host = p;
		port = colon + 1;
		/* an IPv6 address in brackets; no other host has a colon */
		if (host[0] == '[')
		{
			size_t		hlen = strlen(host);

			if (hlen < 3 || host[hlen - 1] != ']')
				return -1;
			host[hlen - 1] = '\0';
			host++;
			if (strchr(host, '[') || strchr(host, ']'))
				return -1;
		}
		else if (host[0] == '\0' || strpbrk(host, ":[] \t") != NULL)
			return -1;
		if (port[0] == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
			return -1;
		v = strtol(port, NULL, 10);
		if (v < 1 || v > 65535)
			return -1;
		if (n == cap)
		{
			cap *= 2;
			*hosts = repalloc(*hosts, sizeof(char *) * cap);
			*ports = repalloc(*ports, sizeof(int) * cap);
		}
		(*hosts)[n] = pstrdup(host);
		(*ports)[n] = (int) v;
		n++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	*bad = NULL;
	return n;
}

static void
check_sentinels(const char *name, const char *value)
{
	char	  **hosts;
	int		   *ports;
	char	   *bad;

	if (polyglot_redis_parse_addresses(value, &hosts, &ports, &bad) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid address \"%s\" in option \"%s\"", bad, name),
				 errhint("The form is host:port[,host:port...], such as '%s'.",
						 strcmp(name, "cluster") == 0 ? "127.0.0.1:7000,127.0.0.1:7001" :
						 "127.0.0.1:26379,127.0.0.1:26380")));
}

/* Checks across the options of a CREATE or ALTER, after each was validated */
void
polyglot_redis_check_options(List *options, Oid catalog)
{
	bool		sentinels = polyglot_option_find(options, "sentinels") != NULL;
	bool		master = polyglot_option_find(options, "master_name") != NULL;

	polyglot_check_tls_options(options, catalog, true);
	if (catalog != ForeignServerRelationId)
		return;
#ifndef POLYGLOT_HIREDIS_SSL
	if (polyglot_option_find(options, "tls") != NULL &&
		polyglot_option_bool(polyglot_option_find(options, "tls")))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_polyglot was built without TLS for Redis"),
				 errdetail("The hiredis it was built with has no hiredis_ssl (hiredis 1.0 or later built with USE_SSL=1)."),
				 errhint("Build pg_polyglot with such a hiredis: make HIREDIS_DIR=<its prefix>.")));
#endif
	if (sentinels != master)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options \"sentinels\" and \"master_name\" go together"),
				 errhint("Name the Sentinels and the master they monitor, as in OPTIONS (sentinels '127.0.0.1:26379', master_name 'mymaster').")));
	if (polyglot_option_find(options, "cluster") != NULL)
	{
		if (sentinels || polyglot_option_find(options, "host") != NULL ||
			polyglot_option_find(options, "port") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"cluster\" cannot be combined with \"host\", \"port\" or \"sentinels\""),
					 errdetail("A cluster's nodes are the ones its slot map names, found through the seed nodes of \"cluster\".")));
		if (polyglot_option_find(options, "db") != NULL &&
			strcmp(polyglot_option_string(options, "db", "0"), "0") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("a Redis Cluster has only database 0"),
					 errhint("Drop option \"db\".")));
	}
	if (sentinels && (polyglot_option_find(options, "host") != NULL ||
					  polyglot_option_find(options, "port") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("options \"host\" and \"port\" cannot be combined with \"sentinels\""),
				 errdetail("With Sentinels, the primary's address is the one the Sentinels report.")));
}

/*
 * Fills opts from a server and an optional user mapping.  Strings point into
 * the option lists, which live as long as server and user.
 */
void
polyglot_redis_get_options(ForeignServer *server, UserMapping *user, RedisConnOptions *opts)
{
	ListCell   *cell;
	bool		wait_set = false;

	memset(opts, 0, sizeof(*opts));
	polyglot_get_conn_options(server, user, &opts->common);
	opts->host = POLYGLOT_DEFAULT_REDIS_HOST;
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
		else if (strcmp(def->defname, "sentinels") == 0)
			opts->sentinels = defGetString(def);
		else if (strcmp(def->defname, "cluster") == 0)
			opts->cluster = defGetString(def);
		else if (strcmp(def->defname, "master_name") == 0)
			opts->master_name = defGetString(def);
		else if (strcmp(def->defname, "wait_replicas") == 0)
		{
			opts->wait_replicas = polyglot_option_int(def);
			wait_set = true;
		}
	}
	/* a Sentinel-managed primary has replicas, and a failover must lose nothing */
	if (opts->sentinels && !wait_set)
		opts->wait_replicas = 1;
	if (user)
	{
		opts->sentinel_user = polyglot_option_string(user->options, "sentinel_user", NULL);
		opts->sentinel_password = polyglot_option_string(user->options, "sentinel_password", NULL);
	}
}

/*
 * Where a server's Redis is, as its options tell: host:port/db, the host
 * lowercased, or for a Sentinel-managed primary its master name and
 * Sentinels, "sentinel:<master_name>@<sentinels>/db", or for a cluster
 * "cluster:<seed nodes>".  (Two names of one host, or two lists of one set
 * of Sentinels or one cluster, are not recognised.)
 */
char *
polyglot_redis_endpoint(ForeignServer *server)
{
	RedisConnOptions opts;

	polyglot_redis_get_options(server, NULL, &opts);
	if (opts.cluster)
		return psprintf("cluster:%s", str_tolower(opts.cluster, strlen(opts.cluster),
												  DEFAULT_COLLATION_OID));
	if (opts.sentinels)
		return psprintf("sentinel:%s@%s/%d", opts.master_name,
						str_tolower(opts.sentinels, strlen(opts.sentinels), DEFAULT_COLLATION_OID),
						opts.db);
	return psprintf("%s:%d/%d", str_tolower(opts.host, strlen(opts.host), DEFAULT_COLLATION_OID),
					opts.port, opts.db);
}

/* ---------------------------------------------------------------- route options */

static const char *const redis_modes[] = {"json", "hash", "invalidate", "publish", "stream", NULL};

const PolyglotRouteOption polyglot_redis_route_options[] = {
	{.name = "mode", .type = POLYGLOT_ROUTE_OPT_STRING,
	.type_error = "option \"mode\" must be a string"},
	{.name = "key", .type = POLYGLOT_ROUTE_OPT_NONEMPTY,
	.type_error = "option \"key\" must be a non-empty string such as 'product:{id}'"},
	{.name = "ttl", .type = POLYGLOT_ROUTE_OPT_SECONDS,
	.type_error = "option \"ttl\" must be a positive whole number of seconds"},
	{.name = "channel", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = "stream", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = "maxlen", .type = POLYGLOT_ROUTE_OPT_SECONDS,
	.type_error = "option \"maxlen\" must be a positive whole number of entries"},
	{.name = NULL}
};

/*
 * The hash beside a stream that holds, for each key a stream route
 * delivers, the ids of its last entries there and a digest of the last
 * (field "<route>:<key>", see redis_sink.c's STREAM_APPEND): a redelivered
 * event is not appended twice.  It must
 * live in the stream's cluster slot, for one script to use both: the
 * stream's own hash tag when it has one ("{orders}:events" gives
 * "{orders}:events:seen"), else the whole name as the tag ("events" gives
 * "{events}:seen").  A name without a tag that holds "}" has no such key,
 * and is refused.
 */
char *
polyglot_redis_stream_seen_key(const char *stream)
{
	const char *open = strchr(stream, '{');
	const char *close = open ? strchr(open + 1, '}') : NULL;

	if (close && close > open + 1)
		return psprintf("%s:seen", stream);
	if (strchr(stream, '}'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream name \"%s\" holds \"}\" outside a hash tag", stream),
				 errdetail("A stream route keeps beside its stream a hash in the same cluster slot, which needs the stream's hash tag or a name without braces."),
				 errhint("Use a name without \"}\", or with a hash tag such as \"{orders}:events\".")));
	return psprintf("{%s}:seen", stream);
}

/*
 * The key column that a key template's placeholder at p names (its index
 * in key_columns, and the placeholder's length in *len), or -1 when p
 * starts no placeholder.  A placeholder is "{" up to the next "}", naming
 * a key column; anything else is literal.  This is the one reading of key
 * templates: polyglot.sync() checks them with it, the sink renders and
 * parses keys with it.
 */
int
polyglot_redis_key_placeholder(const char *p, List *key_columns, size_t *len)
{
	const char *close = *p == '{' ? strchr(p + 1, '}') : NULL;
	ListCell   *kc;
	int			c = 0;

	if (close == NULL)
		return -1;
	foreach(kc, key_columns)
	{
		const char *col = (const char *) lfirst(kc);

		if (strlen(col) == (size_t) (close - p - 1) && strncmp(col, p + 1, close - p - 1) == 0)
		{
			*len = close - p + 1;
			return c;
		}
		c++;
	}
	return -1;
}

/*
 * The characters the key text of a column type can hold (as the capture
 * trigger writes it: ISO dates, timestamptz in UTC, hex bytea), or NULL
 * when it can hold any.
 */
static const char *
key_charset(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return "-0123456789";
		case OIDOID:
			return "0123456789";
		case NUMERICOID:
			return "-0123456789.NaInfity";
		case FLOAT4OID:
		case FLOAT8OID:
			return "-+0123456789.eNaInfity";
		case BOOLOID:
			return "tf";
		case UUIDOID:
			return "-0123456789abcdef";
		case DATEOID:
			return "-0123456789 BCinfity";
		case TIMESTAMPOID:
			return "-0123456789:. BCinfity";
		case TIMESTAMPTZOID:
			return "-+0123456789:. BCinfity";
		case TIMEOID:
			return "0123456789:.";
		case BYTEAOID:
			return "\\x0123456789abcdef";
	}
	return NULL;
}

/*
 * A key template as a pattern, one token per character: "L" and a literal
 * character, or for a placeholder "A" (any text) or "S" and the characters
 * its values can hold.  *cols gets the placeholders' columns (NULL for
 * literals), when cols is not NULL.
 */
static List *
key_pattern(Oid source, List *key_columns, const char *tmpl, List **cols)
{
	List	   *tokens = NIL;
	const char *p = tmpl;

	if (cols)
		*cols = NIL;
	while (*p)
	{
		size_t		len;
		int			c = polyglot_redis_key_placeholder(p, key_columns, &len);

		if (c >= 0)
		{
			char	   *col = (char *) list_nth(key_columns, c);
			AttrNumber	attnum = get_attnum(source, col);
			const char *cs = attnum > 0 ? key_charset(get_atttype(source, attnum)) : NULL;

			tokens = lappend(tokens, cs ? psprintf("S%s", cs) : pstrdup("A"));
			if (cols)
				*cols = lappend(*cols, col);
			p += len;
		}
		else
		{
			int			clen = pg_mblen(p);

			tokens = lappend(tokens, psprintf("L%.*s", clen, p));
			if (cols)
				*cols = lappend(*cols, NULL);
			p += clen;
		}
	}
	return tokens;
}

PG_FUNCTION_INFO_V1(polyglot_redis_key_pattern_sql);

/*
 * polyglot._key_pattern(source regclass, key_columns name[], tmpl text)
 * returns text[]: the tokens of key_pattern(), which
 * polyglot._key_patterns_overlap() compares.
 */
Datum
polyglot_redis_key_pattern_sql(PG_FUNCTION_ARGS)
{
	Oid			source = PG_GETARG_OID(0);
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(1);
	char	   *tmpl = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	List	   *key_columns = NIL;
	List	   *tokens;
	Datum	   *out;
	ListCell   *lc;

	deconstruct_array(keys, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			key_columns = lappend(key_columns, pstrdup(NameStr(*DatumGetName(elems[i]))));
	tokens = key_pattern(source, key_columns, tmpl, NULL);
	out = palloc(sizeof(Datum) * Max(list_length(tokens), 1));
	i = 0;
	foreach(lc, tokens)
		out[i++] = CStringGetTextDatum((char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(out, i, TEXTOID, -1, false, TYPALIGN_INT));
}

static char *
key_columns_list(List *key_columns)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, key_columns)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * The key template: {column} placeholders naming every key column, no
 * others; two placeholders never touch; a separator that a value can hold
 * is warned of (the worker refuses such rows, each with an error).
 */
static void
check_key_template(PolyglotRouteCheck *check, const char *tmpl, bool publish)
{
	const char *p;
	ListCell   *lc;
	List	   *tokens;
	List	   *cols;
	int			i,
				n;

	/* every {name} without braces inside names a key column */
	for (p = tmpl; *p; p++)
	{
		const char *q;
		char	   *name;
		bool		known = false;

		if (*p != '{')
			continue;
		for (q = p + 1; *q && *q != '{' && *q != '}'; q++)
			;
		if (*q != '}')
			continue;
		name = pnstrdup(p + 1, q - p - 1);
		foreach(lc, check->key_columns)
			known |= strcmp((char *) lfirst(lc), name) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" names \"%s\", which is not a key column of %s",
							tmpl, name, check->source_text),
					 errhint("Placeholders must name the key columns: %s.",
							 key_columns_list(check->key_columns))));
		p = q;
	}
	foreach(lc, check->key_columns)
	{
		char	   *col = (char *) lfirst(lc);

		if (strstr(tmpl, psprintf("{%s}", col)) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" does not name key column \"%s\"", tmpl, col),
					 errdetail("Without every key column, two rows would share one Redis key.")));
	}

	/*
	 * Two rows, one key: a placeholder followed by another ends where the
	 * template's next character comes, so two placeholders cannot touch
	 * (publish routes write no key).
	 */
	if (publish)
		return;
	tokens = key_pattern(check->source, check->key_columns, tmpl, &cols);
	n = list_length(tokens);
	for (i = 0; i < n; i++)
	{
		char	   *col = (char *) list_nth(cols, i);
		char	   *tok = (char *) list_nth(tokens, i);
		char	   *next;
		bool		more = false;
		int			j;

		if (col == NULL)
			continue;
		for (j = i + 1; j < n && !more; j++)
			more = list_nth(cols, j) != NULL;
		if (!more)
			continue;
		if (list_nth(cols, i + 1) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" can give two rows one key", tmpl),
					 errdetail("Placeholders {%s} and {%s} follow each other with nothing between them.",
							   col, (char *) list_nth(cols, i + 1)),
					 errhint("Separate the placeholders with a character the values cannot contain.")));

		/*
		 * A value that holds the character after its placeholder would
		 * shift the values after it: such rows are refused at delivery,
		 * each with an error (and dead-lettered), never written to another
		 * row's key.
		 */
		next = (char *) list_nth(tokens, i + 1) + 1;
		if (strcmp(tok, "A") == 0 || strstr(tok + 1, next) != NULL)
			ereport(WARNING,
					(errmsg("key template \"%s\" cannot deliver rows whose key column \"%s\" holds \"%s\"",
							tmpl, col, next),
					 errdetail("The key of such a row could be another row's (with {%s} before \"%s\" and another placeholder after it); the worker refuses these rows, each with an error.",
							   col, next),
					 errhint("Separate the placeholders with a character the values cannot contain, or put that column's placeholder last.")));
	}
}

/*
 * The options of a new Redis route: mode (default json), channel (publish
 * only, and needed there), ttl (json and hash), key (default
 * table:{key1}:{key2}...).
 */
void
polyglot_redis_check_route(PolyglotRouteCheck *check)
{
	char	   *mode = polyglot_route_check_string(check, "mode");
	const char *const *m;
	JsonbValue	v;
	char	   *tmpl;

	if (mode == NULL)
		mode = "json";
	for (m = redis_modes; *m && strcmp(*m, mode) != 0; m++)
		;
	if (*m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\" for a Redis route", mode),
				 errhint("Valid modes are: json, hash, invalidate, publish, stream.")));
	polyglot_route_check_set(check, "mode", mode);

	/* channel: publish mode only, and required there */
	if (strcmp(mode, "publish") == 0)
	{
		if (!polyglot_route_check_value(check, "channel", &v) ||
			v.type != jbvString || v.val.string.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mode \"publish\" needs a \"channel\" option (a non-empty string)")));
	}
	else if (polyglot_route_check_value(check, "channel", &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"channel\" is only valid with mode \"publish\"")));

	/* stream and maxlen: stream mode only, stream required there */
	if (strcmp(mode, "stream") == 0)
	{
		if (!polyglot_route_check_value(check, "stream", &v) ||
			v.type != jbvString || v.val.string.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mode \"stream\" needs a \"stream\" option (a non-empty string)")));
		/* its companion hash must be able to share its cluster slot */
		(void) polyglot_redis_stream_seen_key(pnstrdup(v.val.string.val, v.val.string.len));
		/* its type: a whole number of entries */
		(void) polyglot_route_check_value(check, "maxlen", &v);
	}
	else if (polyglot_route_check_value(check, "stream", &v) ||
			 polyglot_route_check_value(check, "maxlen", &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"stream\" and \"maxlen\" are only valid with mode \"stream\"")));

	/* ttl: a positive number of seconds, for json and hash */
	if (polyglot_route_check_value(check, "ttl", &v) &&
		strcmp(mode, "json") != 0 && strcmp(mode, "hash") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"ttl\" is only valid with modes \"json\" and \"hash\"")));

	/* key template */
	tmpl = polyglot_route_check_string(check, "key");
	if (tmpl == NULL)
	{
		StringInfoData buf;
		ListCell   *lc;

		initStringInfo(&buf);
		appendStringInfoString(&buf, polyglot_route_default_target(check->source));
		foreach(lc, check->key_columns)
			appendStringInfo(&buf, ":{%s}", (char *) lfirst(lc));
		tmpl = buf.data;
	}
	check_key_template(check, tmpl,
					   strcmp(mode, "publish") == 0 || strcmp(mode, "stream") == 0);
	polyglot_route_check_set(check, "key", tmpl);
}

/*
 * The options of a route as the sink reads them, parsed on first use and
 * kept with the route.  A stored option that polyglot.sync() would not
 * have accepted is an error of the route's delivery.
 */
const RedisRouteOptions *
polyglot_redis_route(PolyglotRoute *route)
{
	RedisRouteOptions *ro;
	MemoryContext old;
	char	   *mode;
	char	   *ttl;

	if (route->store_options)
		return (const RedisRouteOptions *) route->store_options;
	old = MemoryContextSwitchTo(GetMemoryChunkContext(route));
	ro = palloc0(sizeof(RedisRouteOptions));
	mode = polyglot_route_option_text(route->options, "mode");
	if (mode == NULL || strcmp(mode, "json") == 0)
		ro->mode = REDIS_MODE_JSON;
	else if (strcmp(mode, "hash") == 0)
		ro->mode = REDIS_MODE_HASH;
	else if (strcmp(mode, "invalidate") == 0)
		ro->mode = REDIS_MODE_INVALIDATE;
	else if (strcmp(mode, "publish") == 0)
		ro->mode = REDIS_MODE_PUBLISH;
	else if (strcmp(mode, "stream") == 0)
		ro->mode = REDIS_MODE_STREAM;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("route %d has an invalid Redis mode \"%s\"", route->id, mode)));
	ro->key = polyglot_route_option_text(route->options, "key");
	ro->channel = polyglot_route_option_text(route->options, "channel");
	ro->stream = polyglot_route_option_text(route->options, "stream");
	if (ro->mode == REDIS_MODE_STREAM)
	{
		char	   *maxlen = polyglot_route_option_text(route->options, "maxlen");
		char	   *end = NULL;
		double		n = POLYGLOT_DEFAULT_STREAM_MAXLEN;

		if (ro->stream == NULL || ro->stream[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route %d in mode \"stream\" has no stream", route->id)));
		ro->seen = polyglot_redis_stream_seen_key(ro->stream);
		/* as for ttl: any whole JSON number was accepted, Redis takes digits */
		errno = 0;
		if (maxlen)
			n = strtod(maxlen, &end);
		if (maxlen && (errno != 0 || end == maxlen || *end != '\0'))
			n = 0;
		if (!(n >= 1 && n <= PG_INT32_MAX) || n != floor(n))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route %d has an invalid maxlen \"%s\"", route->id, maxlen),
					 errhint("Option \"maxlen\" is a positive whole number of entries.")));
		ro->maxlen = psprintf("%d", (int) n);
	}

	/*
	 * The ttl as Redis reads it: a whole number of seconds written as an
	 * integer.  polyglot.sync() accepts any JSON number that is whole,
	 * positive and within int4 (60, 60.0, 6e1), and Redis takes digits
	 * only: "EX 60.0" is an error for every write.
	 */
	ttl = polyglot_route_option_text(route->options, "ttl");
	if (ttl)
	{
		char	   *end;
		double		seconds;

		errno = 0;
		seconds = strtod(ttl, &end);
		if (errno != 0 || end == ttl || *end != '\0' ||
			!(seconds >= 1 && seconds <= PG_INT32_MAX) || seconds != floor(seconds))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route %d has an invalid ttl \"%s\"", route->id, ttl),
					 errhint("Option \"ttl\" is a positive whole number of seconds.")));
		ro->ttl = psprintf("%d", (int) seconds);
	}
	route->store_options = ro;
	MemoryContextSwitchTo(old);
	return ro;
}
