/*-------------------------------------------------------------------------
 *
 * redis_fdw.c
 *		The polyglot_redis foreign-data wrapper: Redis keys as rows.
 *
 * A table has a type (option type, default string) and a key prefix
 * (option prefix): its rows are the keys that start with the prefix and
 * hold that type, and its key column shows them without the prefix.
 * Columns are found by name:
 *   string  key, value [, ttl]             one row per key
 *   hash    key, field, value [, ttl]      one row per field
 *           key, <jsonb column> [, ttl]    one row per key, the whole hash
 *   list    key, index, value [, ttl]      one row per element (index from 0)
 *   set     key, member [, ttl]            one row per member
 *   zset    key, member, score [, ttl]     one row per member
 * value, field and member columns take text, bytea (the raw bytes), jsonb
 * or json (the string parsed as JSON) or any type with an input function;
 * ttl is the key's time to live in seconds (PTTL, NULL without expiry).
 *
 * Reads: key = value (a constant, a parameter, or the outer row of a
 * nested loop) looks up that key; key = ANY(array) and key IN (...) look
 * up each key, batch_size keys (default 1000) per pipelined round trip;
 * key LIKE 'abc%' scans with SCAN MATCH prefix+abc*.  Otherwise the table
 * is read with SCAN MATCH prefix* TYPE <type>, batch_size keys per SCAN
 * call, the values of each batch in one pipelined round trip.  SCAN may
 * return a key twice: the scan remembers the keys it has returned.  Never
 * KEYS.  A key looked up by name that holds another type is an error
 * naming it; a scan skips keys of other types (TYPE filter).
 *
 * This file has the handler, the table layout, planning and the scan;
 * redis_query.c decides which clauses become lookups and writes the
 * commands EXPLAIN shows, redis_join.c runs key joins, redis_modify.c writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "common/datum.h"
#include "pg_polyglot.h"
#include "redis/redis.h"

/* Each table type: its name, and its columns as the hint of a wrong column lists them */
static const struct
{
	const char *name;
	const char *columns;
}			table_types[] = {
	[RT_STRING] = {"string", "key, value, ttl"},
	[RT_HASH] = {"hash", "key, field, value, ttl (or key, a jsonb column of all fields, ttl)"},
	[RT_LIST] = {"list", "key, index, value, ttl"},
	[RT_SET] = {"set", "key, member, ttl"},
	[RT_ZSET] = {"zset", "key, member, score, ttl"},
};

/* The columns of each type besides key and ttl (a hash's jsonb column aside) */
static const struct
{
	RedisTableType type;
	const char *name;
	RedisRole	role;
}			type_columns[] = {
	{RT_STRING, "value", RR_VALUE},
	{RT_HASH, "field", RR_FIELD},
	{RT_HASH, "value", RR_VALUE},
	{RT_LIST, "index", RR_INDEX},
	{RT_LIST, "value", RR_VALUE},
	{RT_SET, "member", RR_MEMBER},
	{RT_ZSET, "member", RR_MEMBER},
	{RT_ZSET, "score", RR_SCORE},
};

/* fdw_private of a ForeignScan */
#define FP_MODE			0		/* Integer: SCAN_ALL, SCAN_KEYS, SCAN_MATCH */
#define FP_VALUE		1		/* Integer: value number of the key(s), -1 */
#define FP_MATCH		2		/* String: the LIKE prefix, or "" */
#define FP_WANTED		3		/* of Integer: is column attnum - 1 read */

/* Modes that read keys by name rather than by SCAN */
#define BY_NAME(mode) ((mode) == SCAN_KEYS || (mode) == SCAN_KEY_ARRAY || (mode) == SCAN_JOIN)


/* ---------------------------------------------------------------- layout */

static RedisRole
role_of(RedisTableType type, const char *name, Oid typid)
{
	int			i;

	if (strcmp(name, "key") == 0)
		return RR_KEY;
	if (strcmp(name, "ttl") == 0)
		return RR_TTL;
	for (i = 0; i < (int) lengthof(type_columns); i++)
		if (type_columns[i].type == type && strcmp(name, type_columns[i].name) == 0)
			return type_columns[i].role;
	if (type == RT_HASH && getBaseType(typid) == JSONBOID)
		return RR_FIELDS;
	return RR_NONE;
}

/* The name of a table type, as option type and SCAN TYPE spell it */
const char *
polyglot_redis_type_name(RedisTableType type)
{
	return table_types[type].name;
}

/* The layout of a foreign table; ereports on a column it cannot map */
RedisTable *
polyglot_redis_load_table(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	RedisTable *t = palloc0(sizeof(RedisTable));
	const char *type = polyglot_option_string(table->options, "type", "string");
	DefElem    *def;
	int			i;

	for (i = 0; i < (int) lengthof(table_types); i++)
		if (strcmp(type, table_types[i].name) == 0)
			t->type = (RedisTableType) i;
	t->prefix = pstrdup(polyglot_option_string(table->options, "prefix", ""));
	t->cluster = polyglot_option_find(server->options, "cluster") != NULL;
	def = polyglot_table_option(table, server, "batch_size");
	t->batch_size = def ? polyglot_option_int(def) : POLYGLOT_DEFAULT_REDIS_BATCH;
	t->natts = desc->natts;
	t->roles = palloc0(sizeof(RedisRole) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		RedisRole	role;

		if (att->attisdropped)
			continue;
		role = role_of(t->type, NameStr(att->attname), att->atttypid);
		/* a hash table with a field column reads fields as rows */
		if (role == RR_NONE || t->att[role] != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a column of a Redis %s table",
							NameStr(att->attname), RelationGetRelationName(rel), type),
					 errhint("The columns of a %s table are %s.", type, table_types[t->type].columns)));
		t->roles[i] = role;
		t->att[role] = i + 1;
		switch (role == RR_TTL || role == RR_INDEX ? getBaseType(att->atttypid) : InvalidOid)
		{
			case InvalidOid:
			case INT2OID:
			case INT4OID:
			case INT8OID:
				break;
			case NUMERICOID:
			case FLOAT4OID:
			case FLOAT8OID:
			case INTERVALOID:
				if (role == RR_TTL)
					break;
				/* FALLTHROUGH */
			default:
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"%s\" of foreign table \"%s\" has type %s",
								NameStr(att->attname), RelationGetRelationName(rel),
								format_type_be(att->atttypid)),
						 errhint(role == RR_TTL ?
								 "A ttl is a number of seconds (an integer, numeric or floating-point type) or an interval." :
								 "A list index is an integer type.")));
		}
	}
	if (t->att[RR_FIELDS] && (t->att[RR_FIELD] || t->att[RR_VALUE]))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
				 errmsg("foreign table \"%s\" mixes a jsonb column of all fields with field and value columns",
						RelationGetRelationName(rel)),
				 errhint("A hash table is either key, field, value or key and one jsonb column.")));
	if (t->att[RR_KEY] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no key column", RelationGetRelationName(rel)),
				 errhint("The columns of a %s table are %s.", type, table_types[t->type].columns)));
	table_close(rel, NoLock);
	return t;
}

/* The connection of a foreign table for userid (InvalidOid: the current user) */
RedisConn *
polyglot_redis_table_connection(Oid relid, Oid userid)
{
	ForeignServer *server;
	UserMapping *user = polyglot_table_user_mapping(relid, userid, &server);

	return polyglot_redis_get_connection(server, user);
}

/* ---------------------------------------------------------------- planning */

/* The rows of one key */
double
polyglot_redis_rows_per_key(RedisTable *t)
{
	return HAS_SUBKEY(t) ? 10 : 1;
}

static void
redisGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	RedisRelInfo *info = palloc0(sizeof(RedisRelInfo));
	ListCell   *lc;
	double		keys = POLYGLOT_DEFAULT_REDIS_KEYS;

	baserel->fdw_private = info;
	info->relid = foreigntableid;
	info->table = polyglot_redis_load_table(foreigntableid);
	info->mode = SCAN_ALL;
	if (polyglot_redis_pushdown)
	{
		/* the most selective lookup: one key, then several, then a prefix */
		foreach(lc, baserel->baserestrictinfo)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
			Expr	   *value = NULL;
			char	   *match = NULL;
			int			mode = polyglot_redis_key_lookup(ri->clause, baserel, info->table, &value, &match);

			if (mode == SCAN_ALL)
				continue;
			if (info->mode == SCAN_ALL || mode == SCAN_KEYS ||
				(mode == SCAN_KEY_ARRAY && info->mode == SCAN_MATCH))
			{
				info->mode = mode;
				info->value = value;
				info->match = match;
				info->key_clause = ri;
			}
		}
	}
	if (info->mode == SCAN_ALL || info->mode == SCAN_MATCH)
	{
		/*
		 * The database's key count (DBSIZE, one round trip when the query
		 * is planned): an upper bound of the keys under the prefix, which
		 * keeps a scan from looking cheap next to per-key lookups.
		 */
		RedisConn  *conn = polyglot_redis_table_connection(foreigntableid, baserel->userid);
		const char *argv[] = {"DBSIZE"};
		int			nodes = polyglot_redis_node_count(conn);
		redisReply *reply = polyglot_redis_node_command_argv(conn, 0, 1, argv, NULL);

		/* a cluster's: one primary's, times their number */
		if (reply->type == REDIS_REPLY_INTEGER)
			keys = Max((double) reply->integer * nodes, 1);
		freeReplyObject(reply);
		if (info->mode == SCAN_MATCH)
			keys = Max(keys / 10, 1);
	}
	if (info->mode == SCAN_KEYS)
		keys = 1;
	else if (info->mode == SCAN_KEY_ARRAY)
		keys = IsA(info->value, Const) && !((Const *) info->value)->constisnull ?
			ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) info->value)->constvalue)),
						   ARR_DIMS(DatumGetArrayTypeP(((Const *) info->value)->constvalue))) : 10;
	baserel->tuples = keys * polyglot_redis_rows_per_key(info->table);
	baserel->rows = clamp_row_est(baserel->tuples *
								  clauselist_selectivity(root, baserel->baserestrictinfo, 0,
														 JOIN_INNER, NULL) *
								  (info->key_clause ? 1 / Max(info->key_clause->norm_selec, 1e-10) : 1));
	if (info->mode == SCAN_KEYS || info->mode == SCAN_KEY_ARRAY)
		baserel->rows = Min(baserel->rows, baserel->tuples);
}

static void
redisGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	RedisRelInfo *info = (RedisRelInfo *) baserel->fdw_private;
	double		keys = baserel->tuples / polyglot_redis_rows_per_key(info->table);
	List	   *candidates = NIL;
	ListCell   *lc;
	int			attnum = info->table->att[RR_KEY];

	add_path(baserel, (Path *)
			 polyglot_foreignscan_path(root, baserel, baserel->rows, REDIS_STARTUP_COST,
									   REDIS_STARTUP_COST + keys * REDIS_KEY_COST +
									   baserel->rows * REDIS_ROW_COST, NIL, NULL, NIL));

	/* the inner side of a nested loop: GET the outer row's key */
	if (!polyglot_redis_pushdown)
		return;
	if (baserel->has_eclass_joins)
		candidates = polyglot_column_join_clauses(root, baserel, attnum);
	candidates = list_concat(candidates, baserel->joininfo);
	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Expr	   *value = NULL;
		char	   *match = NULL;
		ParamPathInfo *ppi;
		double		rows = polyglot_redis_rows_per_key(info->table);

		if (!join_clause_is_movable_to(ri, baserel) ||
			polyglot_redis_key_lookup(ri->clause, baserel, info->table, &value, &match) != SCAN_KEYS ||
			(ppi = polyglot_join_clause_param(root, baserel, ri)) == NULL)
			continue;
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, Min(ppi->ppi_rows, rows),
										   REDIS_STARTUP_COST / 10,
										   REDIS_STARTUP_COST / 10 + REDIS_KEY_COST +
										   rows * REDIS_ROW_COST, NIL, ppi->ppi_req_outer, NIL));
	}
}

static ForeignScan *
redisGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	RedisRelInfo *info = (RedisRelInfo *) baserel->fdw_private;
	List	   *local = NIL;
	List	   *values = NIL;
	List	   *wanted = NIL;
	Bitmapset  *attrs = NULL;
	int			mode = info->mode;
	Expr	   *value = info->value;
	char	   *match = info->match;
	RestrictInfo *used = info->key_clause;
	ListCell   *lc;
	int			i;

	/* the inner side of a Redis key join reads the keys it is given */
	if (best_path->fdw_private != NIL)
	{
		mode = SCAN_JOIN;
		value = NULL;
		match = NULL;
		used = NULL;
	}
	/* a parameterized path looks up the outer row's key instead */
	else if (best_path->path.param_info)
	{
		foreach(lc, scan_clauses)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
			Expr	   *v = NULL;
			char	   *m = NULL;

			if (!bms_is_subset(ri->clause_relids, baserel->relids) &&
				polyglot_redis_key_lookup(ri->clause, baserel, info->table, &v, &m) == SCAN_KEYS)
			{
				mode = SCAN_KEYS;
				value = v;
				match = NULL;
				used = ri;
				break;
			}
		}
	}
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		/* key = and = ANY are exact; LIKE too, the pattern being a plain prefix */
		if (ri == used)
			continue;
		local = lappend(local, ri->clause);
	}
	if (value)
		values = list_make1(value);

	attrs = polyglot_columns_read(baserel, local, info->table->natts);
	for (i = 0; i < info->table->natts; i++)
		wanted = lappend_int(wanted, bms_is_member(i + 1, attrs) &&
							 info->table->roles[i] != RR_NONE);
	return make_foreignscan(tlist, local, baserel->relid, values,
							list_make4(makeInteger(mode), makeInteger(value ? 0 : -1),
									   makeString(match ? match : ""), wanted),
							NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------- execution */

/* prefix + key, as the server names it */
char *
polyglot_redis_full_key(RedisTable *t, const char *key, size_t keylen, size_t *len)
{
	size_t		plen = strlen(t->prefix);
	char	   *k = palloc(plen + keylen + 1);

	memcpy(k, t->prefix, plen);
	memcpy(k + plen, key, keylen);
	k[plen + keylen] = '\0';
	*len = plen + keylen;
	return k;
}

static void
scan_error_context(void *arg)
{
	RedisScanState *st = (RedisScanState *) arg;

	if (st->current_column && st->current_key)
		errcontext("column \"%s\" of Redis key \"%s%s\"", st->current_column,
				   st->table->prefix, st->current_key);
}

/* An error reply to the read of a key (freed by the caller): WRONGTYPE names the key */
static void
key_error(RedisScanState *st, redisReply *reply, const char *key)
{
	if (reply->type == REDIS_REPLY_ERROR && reply->str && strncmp(reply->str, "WRONGTYPE", 9) == 0)
	{
		char	   *detail = pstrdup(reply->str);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Redis key \"%s%s\" does not hold a %s", st->table->prefix, key,
						polyglot_redis_type_name(st->table->type)),
				 errdetail_internal("%s", detail),
				 errhint("A foreign table of type %s reads keys of that type only.",
						 polyglot_redis_type_name(st->table->type))));
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Redis server \"%s\" returned an error for %s of key \"%s%s\"",
					st->conn->servername, polyglot_redis_read_command(st->table->type), st->table->prefix, key),
			 errdetail_internal("%s", reply->str ? reply->str : "error")));
}

/* A copy of len bytes, zero bytes included, followed by a terminating zero */
static char *
bytes_dup(const char *s, size_t len)
{
	char	   *copy = palloc(len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/*
 * Checks that a key's read reply has the shape its command returns: a bulk
 * string or nil for GET, an array of bulk strings for the others (of an even
 * count for HGETALL and ZRANGE WITHSCORES). Anything else (a server or proxy
 * out of step, say) is an error rather than rows of NULLs.
 */
static void
check_read_reply(RedisScanState *st, const char *key, redisReply *reply)
{
	RedisTable *t = st->table;
	const char *expected;
	size_t		i;

	if (t->type == RT_STRING)
	{
		if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL)
			return;
		expected = "a bulk string or nil";
	}
	else
	{
		bool		pairs = t->type == RT_HASH || t->type == RT_ZSET;

		expected = pairs ? "an array of bulk strings of an even count" : "an array of bulk strings";
		if (reply->type == REDIS_REPLY_ARRAY && (!pairs || reply->elements % 2 == 0))
		{
			for (i = 0; i < reply->elements; i++)
				if (reply->element[i]->type != REDIS_REPLY_STRING)
					break;
			if (i == reply->elements)
				return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Redis server \"%s\" answered %s of key \"%s%s\" with a reply of the wrong shape",
					st->conn->servername, polyglot_redis_read_command(t->type), t->prefix, key),
			 errdetail("Expected %s, got a reply of type %d.", expected, reply->type)));
}

/*
 * Adds the rows of one key's reply to the batch. The reply passed
 * check_read_reply; every string is copied with its length, zero bytes and
 * all, so that bytea columns read binary values exactly.
 */
static void
add_key_rows(RedisScanState *st, const char *key, size_t keylen, redisReply *data,
			 int64 pttl, List **rows)
{
	RedisTable *t = st->table;
	size_t		i;

	if (data->type == REDIS_REPLY_NIL)
		return;					/* gone meanwhile */
	if (t->type == RT_STRING)
	{
		RedisRow   *r = palloc0(sizeof(RedisRow));

		r->key = bytes_dup(key, keylen);
		r->keylen = keylen;
		r->value = bytes_dup(data->str, data->len);
		r->valuelen = data->len;
		r->pttl = pttl;
		*rows = lappend(*rows, r);
		return;
	}
	if (t->type == RT_HASH && t->att[RR_FIELDS])
	{
		JsonbParseState *ps = NULL;
		RedisRow   *r;

		if (data->elements == 0)
			return;
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i + 1 < data->elements; i += 2)
		{
			JsonbValue	k,
						v;

			k.type = jbvString;
			k.val.string.val = bytes_dup(data->element[i]->str, data->element[i]->len);
			k.val.string.len = data->element[i]->len;
			v.type = jbvString;
			v.val.string.val = bytes_dup(data->element[i + 1]->str, data->element[i + 1]->len);
			v.val.string.len = data->element[i + 1]->len;
			if (memchr(k.val.string.val, '\0', k.val.string.len) ||
				memchr(v.val.string.val, '\0', v.val.string.len) ||
				!pg_verify_mbstr(GetDatabaseEncoding(), k.val.string.val, k.val.string.len, true) ||
				!pg_verify_mbstr(GetDatabaseEncoding(), v.val.string.val, v.val.string.len, true))
				ereport(ERROR,
						(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
						 errmsg("Redis hash \"%s%s\" holds bytes that are not text (a zero byte or invalid %s)",
								t->prefix, pnstrdup(key, keylen), GetDatabaseEncodingName()),
						 errhint("Read it with field and value columns of type bytea.")));
			pushJsonbValue(&ps, WJB_KEY, &k);
			pushJsonbValue(&ps, WJB_VALUE, &v);
		}
		r = palloc0(sizeof(RedisRow));
		r->key = bytes_dup(key, keylen);
		r->keylen = keylen;
		r->fields = JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
		r->pttl = pttl;
		*rows = lappend(*rows, r);
		return;
	}
	for (i = 0; i < data->elements; i++)
	{
		RedisRow   *r = palloc0(sizeof(RedisRow));
		redisReply *e = data->element[i];

		r->key = bytes_dup(key, keylen);
		r->keylen = keylen;
		r->pttl = pttl;
		switch (t->type)
		{
			case RT_HASH:
			case RT_ZSET:
				r->sub = bytes_dup(e->str, e->len);
				r->sublen = e->len;
				e = data->element[++i];
				r->value = bytes_dup(e->str, e->len);
				r->valuelen = e->len;
				break;
			case RT_LIST:
				r->index = (int64) i;
				r->value = bytes_dup(e->str, e->len);
				r->valuelen = e->len;
				break;
			case RT_SET:
				r->sub = bytes_dup(e->str, e->len);
				r->sublen = e->len;
				break;
			case RT_STRING:
				break;
		}
		*rows = lappend(*rows, r);
	}
}

/*
 * Reads the rows of keys (a List of String nodes, without the prefix) in
 * one pipelined round trip: the type's read command, and PTTL when ttl is
 * wanted, per key.
 */
static void
fetch_keys(RedisScanState *st, List *keys)
{
	RedisTable *t = st->table;
	RedisCmd	cmd;
	List	   *volatile rows = NIL;
	ListCell   *lc;
	int			n = 0;
	int			i;
	int			per_key = st->want_ttl ? 2 : 1;
	int			nreplies;		/* not changed after PG_TRY's setjmp */
	redisReply **replies;

	polyglot_redis_cmd_init(&cmd, 6);
	foreach(lc, keys)
	{
		const char *key = strVal(lfirst(lc));
		size_t		len;
		char	   *k = polyglot_redis_full_key(t, key, strlen(key), &len);

		polyglot_redis_cmd_arg(&cmd, polyglot_redis_read_command(t->type));
		polyglot_redis_cmd_arg_len(&cmd, k, len);
		if (t->type == RT_LIST || t->type == RT_ZSET)
		{
			polyglot_redis_cmd_arg(&cmd, "0");
			polyglot_redis_cmd_arg(&cmd, "-1");
			if (t->type == RT_ZSET)
				polyglot_redis_cmd_arg(&cmd, "WITHSCORES");
		}
		polyglot_redis_cmd_append(st->conn, &cmd);
		if (st->want_ttl)
		{
			polyglot_redis_cmd_arg(&cmd, "PTTL");
			polyglot_redis_cmd_arg_len(&cmd, k, len);
			polyglot_redis_cmd_append(st->conn, &cmd);
		}
		n++;
	}
	if (n == 0)
		return;
	st->round_trips++;

	/* per key, its read's reply, then its PTTL's when ttl is wanted */
	nreplies = n * per_key;
	replies = palloc(sizeof(redisReply *) * nreplies);
	polyglot_redis_get_replies(st->conn, nreplies, replies, "a pipelined read");
	PG_TRY();
	{
		i = 0;
		foreach(lc, keys)
		{
			const char *key = strVal(lfirst(lc));
			redisReply *data = replies[i * per_key];
			redisReply *pttl = st->want_ttl ? replies[i * per_key + 1] : NULL;

			i++;
			if (data->type == REDIS_REPLY_ERROR)
			{
				/* a scanned key that changed its type since SCAN: not a row */
				if ((st->mode == SCAN_ALL || st->mode == SCAN_MATCH) && data->str &&
					strncmp(data->str, "WRONGTYPE", 9) == 0)
					continue;
				key_error(st, data, key);
			}
			check_read_reply(st, key, data);
			if (pttl && pttl->type != REDIS_REPLY_INTEGER)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Redis server \"%s\" answered PTTL of key \"%s%s\" with a reply of the wrong shape",
								st->conn->servername, t->prefix, key),
						 errdetail("Expected an integer.")));
			/* -2: the key expired between its read and its PTTL */
			if (pttl == NULL || pttl->integer != -2)
				add_key_rows(st, key, strlen(key), data, pttl ? pttl->integer : -1,
							 (List **) &rows);
		}
	}
	PG_FINALLY();
	{
		for (i = 0; i < nreplies; i++)
			freeReplyObject(replies[i]);
	}
	PG_END_TRY();
	st->nrows = list_length(rows);
	st->rows = palloc(sizeof(RedisRow) * Max(st->nrows, 1));
	i = 0;
	foreach(lc, rows)
		st->rows[i++] = *(RedisRow *) lfirst(lc);
	st->next_row = 0;
}

/* An entry of the set of keys returned: a 64-bit hash and the keys with it */
typedef struct SeenEntry
{
	uint64		hash;
	List	   *keys;			/* of String */
} SeenEntry;

/* Adds key to the set of keys returned; false when it was there already */
static bool
remember_key(RedisScanState *st, const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
	bool		found;
	SeenEntry  *e = (SeenEntry *) hash_search(st->seen, &h, HASH_ENTER, &found);
	ListCell   *lc;
	MemoryContext old;

	if (!found)
		e->keys = NIL;
	foreach(lc, e->keys)
		if (strcmp(strVal(lfirst(lc)), key) == 0)
			return false;
	old = MemoryContextSwitchTo(st->exec_cxt);
	e->keys = lappend(e->keys, makeString(pstrdup(key)));
	MemoryContextSwitchTo(old);
	return true;
}

/* The next SCAN page's new keys, without the prefix (List of String) */
static List *
scan_page(RedisScanState *st)
{
	RedisTable *t = st->table;
	StringInfoData pattern;
	RedisCmd	cmd;
	redisReply *reply;
	List	   *keys = NIL;
	size_t		plen = strlen(t->prefix);
	char		count[16];
	size_t		i;

	initStringInfo(&pattern);
	polyglot_redis_scan_pattern(&pattern, t, st->mode == SCAN_MATCH ? st->match : NULL);
	snprintf(count, sizeof(count), "%d", t->batch_size);
	polyglot_redis_cmd_init(&cmd, 8);
	polyglot_redis_cmd_arg(&cmd, "SCAN");
	polyglot_redis_cmd_arg(&cmd, st->cursor);
	polyglot_redis_cmd_arg(&cmd, "MATCH");
	polyglot_redis_cmd_arg_len(&cmd, pattern.data, pattern.len);
	polyglot_redis_cmd_arg(&cmd, "COUNT");
	polyglot_redis_cmd_arg(&cmd, count);
	polyglot_redis_cmd_arg(&cmd, "TYPE");
	polyglot_redis_cmd_arg(&cmd, polyglot_redis_type_name(t->type));
	/* each node of a cluster in turn (its primaries), one SCAN each */
	reply = polyglot_redis_node_command_argv(st->conn, st->scan_node, cmd.argc, cmd.argv,
											 cmd.argvlen);
	st->round_trips++;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		reply->element[0]->type != REDIS_REPLY_STRING ||
		reply->element[1]->type != REDIS_REPLY_ARRAY)
		polyglot_redis_report_error(st->conn, reply, "SCAN");
	st->cursor = MemoryContextStrdup(st->exec_cxt, reply->element[0]->str);
	if (strcmp(st->cursor, "0") == 0 &&
		++st->scan_node >= polyglot_redis_node_count(st->conn))
		st->done = true;
	for (i = 0; i < reply->element[1]->elements; i++)
	{
		redisReply *k = reply->element[1]->element[i];
		char	   *key;

		if (k->type != REDIS_REPLY_STRING || k->len < plen || memchr(k->str, '\0', k->len))
			continue;
		key = pnstrdup(k->str + plen, k->len - plen);
		/* SCAN may return a key twice */
		if (remember_key(st, key))
			keys = lappend(keys, makeString(key));
	}
	freeReplyObject(reply);
	return keys;
}

/* The keys of SCAN_KEYS and SCAN_KEY_ARRAY: distinct, non-NULL */
static List *
lookup_keys(RedisScanState *st, ExprContext *econtext)
{
	bool		isnull;
	Datum		value = ExecEvalExpr(st->value_state, econtext, &isnull);
	List	   *keys = NIL;

	if (isnull)
		return NIL;
	if (st->mode == SCAN_KEYS)
		return list_make1(makeString(TextDatumGetCString(value)));
	{
		Oid			elemtype;
		Datum	   *elems;
		bool	   *nulls;
		int			n = polyglot_array_elements(value, &elemtype, &elems, &nulls),
					i;

		for (i = 0; i < n; i++)
		{
			char	   *key;

			if (nulls[i])
				continue;
			key = TextDatumGetCString(elems[i]);
			if (remember_key(st, key))
				keys = lappend(keys, makeString(key));
		}
	}
	return keys;
}

void
polyglot_redis_start_scan(RedisScanState *st, ExprContext *econtext)
{
	HASHCTL		ctl;
	MemoryContext old = MemoryContextSwitchTo(st->exec_cxt);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(SeenEntry);
	ctl.hcxt = st->exec_cxt;
	st->seen = hash_create("pg_polyglot redis keys", 1024, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	st->cursor = "0";
	st->scan_node = 0;
	st->started = true;
	if (st->mode == SCAN_KEYS || st->mode == SCAN_KEY_ARRAY)
	{
		st->keys = lookup_keys(st, econtext);
		st->done = st->keys == NIL;
	}
	else if (st->mode == SCAN_JOIN)
		st->done = true;		/* until a Redis key join gives keys */
	MemoryContextSwitchTo(old);
}

/* Fetches the next batch of rows; false when there are none left */
static bool
next_batch(RedisScanState *st)
{
	MemoryContext old;

	MemoryContextReset(st->batch_cxt);
	st->nrows = st->next_row = 0;
	while (st->nrows == 0)
	{
		List	   *keys = NIL;

		/*
		 * A statement that writes (UPDATE, INSERT ... SELECT, a writing
		 * CTE) could meet the keys it writes in a SCAN still under way:
		 * the whole SCAN comes first, then the reads.
		 */
		if (st->collect_first && !st->collected && !BY_NAME(st->mode))
		{
			old = MemoryContextSwitchTo(st->exec_cxt);
			while (!st->done)
			{
				st->keys = list_concat(st->keys, scan_page(st));
				CHECK_FOR_INTERRUPTS();
			}
			MemoryContextSwitchTo(old);
			st->collected = true;
		}
		if (BY_NAME(st->mode) || st->collected)
		{
			int			n = Min(list_length(st->keys), st->table->batch_size);

			if (n == 0)
				return false;
			old = MemoryContextSwitchTo(st->batch_cxt);
			keys = list_truncate(list_copy(st->keys), n);
			MemoryContextSwitchTo(st->exec_cxt);
			st->keys = list_copy_tail(st->keys, n);
			MemoryContextSwitchTo(old);
		}
		else
		{
			if (st->done)
				return false;
			old = MemoryContextSwitchTo(st->batch_cxt);
			keys = scan_page(st);
			MemoryContextSwitchTo(old);
		}
		old = MemoryContextSwitchTo(st->batch_cxt);
		fetch_keys(st, keys);
		MemoryContextSwitchTo(old);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/* A Redis string as a value of the column's type */
static Datum
string_datum(RedisScanState *st, int attnum, const char *s, size_t len)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->relation), attnum - 1);
	Oid			base = getBaseType(att->atttypid);
	Datum		d;

	if (base == BYTEAOID)
	{
		bytea	   *b = palloc(VARHDRSZ + len);

		SET_VARSIZE(b, VARHDRSZ + len);
		memcpy(VARDATA(b), s, len);
		d = PointerGetDatum(b);
		if (base != att->atttypid)
			domain_check(d, false, att->atttypid, NULL, NULL);
		return d;
	}
	if (memchr(s, '\0', len))
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("the value holds a zero byte"),
				 errhint("Declare the column as bytea to read binary values.")));
	if (!pg_verify_mbstr(GetDatabaseEncoding(), s, (int) len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("the value is not valid %s", GetDatabaseEncodingName()),
				 errhint("Declare the column as bytea to read binary values.")));
	return OidInputFunctionCall(st->typinput[attnum - 1], (char *) s,
								st->typioparam[attnum - 1], att->atttypmod);
}

/* A PTTL in milliseconds as a ttl of the column's type (seconds) */
static Datum
ttl_datum(RedisScanState *st, int attnum, int64 pttl)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->relation), attnum - 1);
	char		buf[64];

	switch (getBaseType(att->atttypid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			/* whole seconds, rounded up: a key with 1 ms left still has a ttl */
			snprintf(buf, sizeof(buf), INT64_FORMAT, (pttl + 999) / 1000);
			break;
		case INTERVALOID:
			snprintf(buf, sizeof(buf), INT64_FORMAT " milliseconds", pttl);
			break;
		default:
			snprintf(buf, sizeof(buf), "%.3f", pttl / 1000.0);
			break;
	}
	return OidInputFunctionCall(st->typinput[attnum - 1], buf, st->typioparam[attnum - 1],
								att->atttypmod);
}

static void
store_row(RedisScanState *st, RedisRow *r, TupleTableSlot *slot)
{
	RedisTable *t = st->table;
	int			i;
	ErrorContextCallback errcallback;

	errcallback.callback = scan_error_context;
	errcallback.arg = st;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	st->current_key = r->key;
	for (i = 0; i < t->natts; i++)
	{
		int			attnum = i + 1;
		Datum		d = (Datum) 0;

		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (!st->wanted[i])
			continue;
		st->current_column = NameStr(TupleDescAttr(slot->tts_tupleDescriptor, i)->attname);
		switch (t->roles[i])
		{
			case RR_KEY:
				d = string_datum(st, attnum, r->key, r->keylen);
				break;
			case RR_SCORE:
				{
					/* Redis writes scores with 17 digits: read the double back */
					Oid			base = getBaseType(TupleDescAttr(slot->tts_tupleDescriptor, i)->atttypid);

					if (r->value == NULL)
						continue;
					d = DirectFunctionCall1(float8in, CStringGetDatum(r->value));
					if (base == FLOAT4OID)
						d = DirectFunctionCall1(dtof, d);
					else if (base == NUMERICOID)
						d = DirectFunctionCall1(float8_numeric, d);
					else if (base != FLOAT8OID)
						d = string_datum(st, attnum, r->value, r->valuelen);
				}
				break;
			case RR_VALUE:
				if (r->value == NULL)
					continue;
				d = string_datum(st, attnum, r->value, r->valuelen);
				break;
			case RR_FIELD:
			case RR_MEMBER:
				if (r->sub == NULL)
					continue;
				d = string_datum(st, attnum, r->sub, r->sublen);
				break;
			case RR_INDEX:
				{
					char		buf[32];

					snprintf(buf, sizeof(buf), INT64_FORMAT, r->index);
					d = string_datum(st, attnum, buf, strlen(buf));
				}
				break;
			case RR_FIELDS:
				if (r->fields == NULL)
					continue;
				d = JsonbPGetDatum(r->fields);
				break;
			case RR_TTL:
				if (r->pttl < 0)
					continue;
				d = ttl_datum(st, attnum, r->pttl);
				break;
			case RR_NONE:
				continue;
		}
		slot->tts_values[i] = d;
		slot->tts_isnull[i] = false;
	}
	st->current_column = NULL;
	error_context_stack = errcallback.previous;
}

static void
redisBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	RangeTblEntry *rte = exec_rt_fetch(plan->scan.scanrelid, estate);
	RedisScanState *st = palloc0(sizeof(RedisScanState));
	List	   *wanted = (List *) list_nth(plan->fdw_private, FP_WANTED);
	ListCell   *lc;
	int			i;
	Oid			userid = polyglot_scan_user(plan, estate);

	node->fdw_state = st;
	st->relation = node->ss.ss_currentRelation;
	st->table = polyglot_redis_load_table(rte->relid);
	st->mode = intVal(list_nth(plan->fdw_private, FP_MODE));
	st->collect_first = estate->es_plannedstmt->commandType != CMD_SELECT ||
		estate->es_plannedstmt->hasModifyingCTE;
	st->match = strVal(list_nth(plan->fdw_private, FP_MATCH));
	st->wanted = palloc0(sizeof(bool) * Max(st->table->natts, 1));
	st->typinput = palloc0(sizeof(Oid) * Max(st->table->natts, 1));
	st->typioparam = palloc0(sizeof(Oid) * Max(st->table->natts, 1));
	i = 0;
	foreach(lc, wanted)
	{
		st->wanted[i] = lfirst_int(lc) != 0;
		if (st->wanted[i])
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->relation), i);

			getTypeInputInfo(att->atttypid, &st->typinput[i], &st->typioparam[i]);
			if (st->table->roles[i] == RR_TTL)
				st->want_ttl = true;
		}
		i++;
	}
	if (plan->fdw_exprs)
		st->value_state = ExecInitExpr(linitial(plan->fdw_exprs), (PlanState *) node);
	st->exec_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->batch_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis batch",
										  ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis row",
										ALLOCSET_DEFAULT_SIZES);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	st->conn = polyglot_redis_table_connection(rte->relid, userid);
}

static TupleTableSlot *
redisIterateForeignScan(ForeignScanState *node)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!st->started)
		polyglot_redis_start_scan(st, node->ss.ps.ps_ExprContext);
	if (st->next_row >= st->nrows && !next_batch(st))
		return slot;
	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	st->last_key = st->rows[st->next_row].key;
	store_row(st, &st->rows[st->next_row++], slot);
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
redisReScanForeignScan(ForeignScanState *node)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;

	MemoryContextReset(st->exec_cxt);
	MemoryContextReset(st->batch_cxt);
	st->started = st->done = st->collected = false;
	st->keys = NIL;
	st->seen = NULL;
	st->rows = NULL;
	st->nrows = st->next_row = 0;
}

static void
redisEndForeignScan(ForeignScanState *node)
{
}

/*
 * EXPLAIN: the table's type and prefix; VERBOSE adds the commands the scan
 * sends, ANALYZE the round trips it made.
 */
static void
redisExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;
	RedisTable *t = st->table;

	ExplainPropertyText("Redis Type", polyglot_redis_type_name(t->type), es);
	if (t->cluster)
		ExplainPropertyText("Redis Cluster",
							"each key to the node of its slot, one pipeline per node; SCAN on each primary in turn",
							es);
	if (t->cluster && es->analyze && st->conn && st->conn->is_cluster && st->conn->base.conn)
		ExplainPropertyInteger("Cluster Primaries", NULL, polyglot_redis_node_count(st->conn), es);
	if (!es->verbose)
		return;
	ExplainPropertyText("Redis Commands",
						polyglot_redis_scan_commands(t, st->mode, st->match, st->want_ttl), es);
	if (es->analyze)
		ExplainPropertyInteger("Round Trips", NULL, st->round_trips, es);
}


/* Installs what the wrapper needs beyond its handler; called from _PG_init */
void
polyglot_redis_fdw_init(void)
{
	polyglot_redis_join_init();
}

/* Is routine this wrapper's (a relation or scan of a Redis foreign table)? */
bool
polyglot_redis_is_fdw(FdwRoutine *routine)
{
	return routine->GetForeignRelSize == redisGetForeignRelSize;
}

PG_FUNCTION_INFO_V1(polyglot_redis_handler);

Datum
polyglot_redis_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	POLYGLOT_SET_SCAN_CALLBACKS(routine, redis);
	polyglot_redis_modify_routine(routine);
	PG_RETURN_POINTER(routine);
}
