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
 * call, the values of each page read in one pipelined round trip with the
 * next SCAN call (of one server; a cluster's SCAN goes to each primary on
 * its own).  SCAN may return a key twice: the scan remembers the keys it
 * has returned.  Never KEYS.  A key looked up by name that holds another
 * type is an error naming it; a scan skips keys of other types (TYPE
 * filter).
 *
 * The commands of a pipeline are formatted into one buffer, and rows are
 * made from hiredis' replies as they are: a batch keeps its replies until
 * the next batch (or the end of the query, or an error) frees them.  Only
 * the columns the query reads are converted, with the input functions
 * looked up once per scan.  A table's layout and connection are cached per
 * backend (see TableCacheEntry).
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
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
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
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

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
#define FP_KEYS			4		/* Integer: the keys expected, at most
								 * SEEN_KEYS_PRESIZE (the record of keys
								 * returned is made that big at first) */

#define SEEN_KEYS_PRESIZE	65536

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

/* The layout of a foreign table, read from the catalogs; ereports on a column it cannot map */
static RedisTable *
build_table(Oid relid)
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

/*
 * Every statement on a Redis table needs its layout, twice (planner and
 * executor), and its connection: they are cached per backend, by table,
 * so that a statement that looks one key up does not read the table's,
 * server's and user mapping's catalog rows and options each time.  An
 * entry goes when its table changes (relcache invalidation: ALTER FOREIGN
 * TABLE, its columns, DROP); every entry goes when any server, user mapping
 * or foreign table options change.  The connection itself is the
 * connection cache's (common/conncache.c), which reconnects after those
 * changes: an entry only remembers which one, for one user.
 */
typedef struct TableCacheEntry
{
	Oid			relid;			/* hash key */
	RedisTable *table;			/* flat (copy_table), in table_cache_cxt */
	Oid			userid;			/* conn's user, InvalidOid: none remembered */
	RedisConn  *conn;
	double		key_count;		/* DBSIZE, for the planner's estimates ... */
	uint64		key_count_epoch;	/* ... read in this epoch (0: none) */
} TableCacheEntry;

static HTAB *table_cache = NULL;
static MemoryContext table_cache_cxt = NULL;
static uint64 table_cache_invals = 0;	/* invalidations seen, for a build under way */

/*
 * Key counts are read again in the next epoch: after the transaction, and
 * after a write through a Redis foreign table in this backend (redis_modify.c).
 */
static uint64 key_count_epoch = 1;

/* The size of a flat copy of a layout: the struct, its roles and its prefix in one chunk */
static Size
table_size(RedisTable *t)
{
	return MAXALIGN(sizeof(RedisTable)) + MAXALIGN(sizeof(RedisRole) * Max(t->natts, 1)) +
		strlen(t->prefix) + 1;
}

/* A copy of a layout in one chunk of cxt (freed with one pfree) */
static RedisTable *
copy_table(RedisTable *t, MemoryContext cxt)
{
	char	   *chunk = MemoryContextAlloc(cxt, table_size(t));
	RedisTable *copy = (RedisTable *) chunk;

	*copy = *t;
	copy->roles = (RedisRole *) (chunk + MAXALIGN(sizeof(RedisTable)));
	memcpy(copy->roles, t->roles, sizeof(RedisRole) * t->natts);
	copy->prefix = (char *) copy->roles + MAXALIGN(sizeof(RedisRole) * Max(t->natts, 1));
	strcpy(copy->prefix, t->prefix);
	return copy;
}

/* Forgets every entry; a callback: never ereports */
static void
table_cache_flush(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	TableCacheEntry *entry;

	table_cache_invals++;
	if (table_cache == NULL)
		return;
	hash_seq_init(&scan, table_cache);
	while ((entry = hash_seq_search(&scan)) != NULL)
		hash_search(table_cache, &entry->relid, HASH_REMOVE, NULL);
	MemoryContextReset(table_cache_cxt);
}

/* Forgets relid's entry (every entry for InvalidOid); never ereports */
static void
table_cache_relcache(Datum arg, Oid relid)
{
	TableCacheEntry *entry;

	if (!OidIsValid(relid))
	{
		table_cache_flush(arg, 0, 0);
		return;
	}
	table_cache_invals++;
	if (table_cache == NULL)
		return;
	entry = hash_search(table_cache, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		return;
	pfree(entry->table);
	hash_search(table_cache, &relid, HASH_REMOVE, NULL);
}

/* A new epoch of key counts at the end of a transaction; never ereports */
static void
table_cache_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		key_count_epoch++;
}

/* Makes the planner read key counts again: this backend wrote to Redis */
void
polyglot_redis_forget_key_counts(void)
{
	key_count_epoch++;
}

/* The entry of relid, made (with a layout read now) if there was none */
static TableCacheEntry *
table_cache_entry(Oid relid)
{
	TableCacheEntry *entry;
	RedisTable *t;
	uint64		invals;

	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		table_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "pg_polyglot redis tables",
												ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableCacheEntry);
		table_cache = hash_create("pg_polyglot redis tables", 16, &ctl, HASH_ELEM | HASH_BLOBS);
		CacheRegisterRelcacheCallback(table_cache_relcache, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, table_cache_flush, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, table_cache_flush, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNTABLEREL, table_cache_flush, (Datum) 0);
		RegisterXactCallback(table_cache_xact, NULL);
	}
	entry = hash_search(table_cache, &relid, HASH_FIND, NULL);
	if (entry)
		return entry;

	/* an invalidation while the catalogs are read makes the layout unsafe to keep */
	invals = table_cache_invals;
	t = build_table(relid);
	if (invals != table_cache_invals)
	{
		/* not kept: an entry of the moment, in the caller's memory */
		entry = palloc0(sizeof(TableCacheEntry));
		entry->relid = relid;
		entry->table = t;
		return entry;
	}
	t = copy_table(t, table_cache_cxt);
	entry = hash_search(table_cache, &relid, HASH_ENTER, NULL);
	entry->table = t;
	entry->userid = InvalidOid;
	entry->conn = NULL;
	return entry;
}

/*
 * The layout of a foreign table (cached per backend), as a copy the caller
 * may keep: allocated in the current memory context.  Ereports on a column
 * it cannot map.
 */
RedisTable *
polyglot_redis_load_table(Oid relid)
{
	return copy_table(table_cache_entry(relid)->table, CurrentMemoryContext);
}

/*
 * The connection of a foreign table for userid (InvalidOid: the current
 * user), connected; the same as polyglot_redis_get_connection() with the
 * table's server and the user's mapping, which are looked up only when
 * the table's entry does not remember this user's connection open.
 */
RedisConn *
polyglot_redis_table_connection(Oid relid, Oid userid)
{
	TableCacheEntry *entry;
	ForeignServer *server;
	UserMapping *user;
	RedisConn  *conn;

	if (!OidIsValid(userid))
		userid = GetUserId();
	entry = table_cache_entry(relid);
	if (entry->userid == userid && entry->conn != NULL &&
		entry->conn->base.conn != NULL && !entry->conn->base.invalidated)
		return entry->conn;
	user = polyglot_table_user_mapping(relid, userid, &server);
	conn = polyglot_redis_get_connection(server, user);
	/* (the entry stays: connecting reads no catalog that would invalidate it) */
	entry = table_cache_entry(relid);
	entry->userid = userid;
	entry->conn = conn;
	return conn;
}

/*
 * The number of keys in the database of a foreign table's server, for
 * userid (InvalidOid: the current user): DBSIZE (of a cluster: one
 * primary's, times their number), read once per epoch (key_count_epoch)
 * and table.  -1 when the server gives no count.
 */
static double
table_key_count(Oid relid, Oid userid)
{
	TableCacheEntry *entry = table_cache_entry(relid);
	RedisConn  *conn;
	const char *argv[] = {"DBSIZE"};
	int			nodes;
	redisReply *reply;
	double		count = -1;

	if (entry->key_count_epoch == key_count_epoch)
		return entry->key_count;
	conn = polyglot_redis_table_connection(relid, userid);
	nodes = polyglot_redis_node_count(conn);
	reply = polyglot_redis_node_command_argv(conn, 0, 1, argv, NULL);
	if (reply->type == REDIS_REPLY_INTEGER)
		count = (double) reply->integer * nodes;
	freeReplyObject(reply);
	entry = table_cache_entry(relid);
	entry->key_count = count;
	entry->key_count_epoch = key_count_epoch;
	return count;
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
		 * The database's key count (DBSIZE, a round trip when the first
		 * query of a transaction on this table is planned): an upper bound
		 * of the keys under the prefix, which keeps a scan from looking
		 * cheap next to per-key lookups.
		 */
		double		count = table_key_count(foreigntableid, baserel->userid);

		if (count >= 0)
			keys = Max(count, 1);
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
	double		keys;

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
	keys = baserel->tuples / polyglot_redis_rows_per_key(info->table);
	return make_foreignscan(tlist, local, baserel->relid, values,
							list_make5(makeInteger(mode), makeInteger(value ? 0 : -1),
									   makeString(match ? match : ""), wanted,
									   makeInteger((int) Min(Max(keys, 0), SEEN_KEYS_PRESIZE))),
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
 * Makes room for n rows, or n replies, in the scan's arrays, which batches
 * reuse (allocated in the query's memory, which outlives the batch's
 * replies: freeing them reads the array)
 */
static void
reserve_rows(RedisScanState *st, int n)
{
	if (n <= st->rows_size)
		return;
	n = Max(n, st->rows_size * 2);
	st->rows = st->rows ? repalloc(st->rows, sizeof(RedisRow) * n) :
		MemoryContextAlloc(st->query_cxt, sizeof(RedisRow) * n);
	st->rows_size = n;
}

static void
reserve_replies(RedisScanState *st, int n)
{
	if (n <= st->replies_size)
		return;
	n = Max(n, st->replies_size * 2);
	st->replies = st->replies ? repalloc(st->replies, sizeof(redisReply *) * n) :
		MemoryContextAlloc(st->query_cxt, sizeof(redisReply *) * n);
	st->replies_size = n;
}

/* A new row of the batch, zeroed but for its key */
static RedisRow *
new_row(RedisScanState *st, RedisKey key, int key_index, int64 pttl)
{
	RedisRow   *r;

	reserve_rows(st, st->nrows + 1);
	r = &st->rows[st->nrows++];
	memset(r, 0, sizeof(RedisRow));
	r->key = key.str;
	r->keylen = key.len;
	r->key_index = key_index;
	r->pttl = pttl;
	return r;
}

/*
 * Adds the rows of one key's reply to the batch. The reply passed
 * check_read_reply; the rows point into it (the batch keeps its replies),
 * so that bytea columns read binary values exactly, zero bytes and all.
 */
static void
add_key_rows(RedisScanState *st, RedisKey key, int key_index, redisReply *data, int64 pttl)
{
	RedisTable *t = st->table;
	RedisRow   *r;
	size_t		i;

	if (data->type == REDIS_REPLY_NIL)
		return;					/* gone meanwhile */
	if (t->type == RT_STRING)
	{
		r = new_row(st, key, key_index, pttl);
		r->value = data->str;
		r->valuelen = data->len;
		return;
	}
	if (t->type == RT_HASH && t->att[RR_FIELDS])
	{
		/* one row per hash; its jsonb is made if the column is read */
		if (data->elements > 0)
			new_row(st, key, key_index, pttl)->hash = data;
		return;
	}
	for (i = 0; i < data->elements; i++)
	{
		redisReply *e = data->element[i];

		r = new_row(st, key, key_index, pttl);
		switch (t->type)
		{
			case RT_HASH:
			case RT_ZSET:
				r->sub = e->str;
				r->sublen = e->len;
				e = data->element[++i];
				r->value = e->str;
				r->valuelen = e->len;
				break;
			case RT_LIST:
				r->index = (int64) i;
				r->value = e->str;
				r->valuelen = e->len;
				break;
			case RT_SET:
				r->sub = e->str;
				r->sublen = e->len;
				break;
			case RT_STRING:
				break;
		}
	}
}

/* ---------------------------------------------------------------- keys */

/*
 * A copy of a key that SCAN returned, NUL-terminated, in the scan's arena
 * (exec_cxt): it lives until a rescan, as the record of keys returned does.
 */
static const char *
keep_key(RedisScanState *st, const char *s, size_t len)
{
	char	   *copy;

	if (st->arena_left < len + 1)
	{
		size_t		size = Max(len + 1, 32 * 1024);

		st->arena = MemoryContextAlloc(st->exec_cxt, size);
		st->arena_left = size;
	}
	copy = st->arena;
	memcpy(copy, s, len);
	copy[len] = '\0';
	st->arena += len + 1;
	st->arena_left -= len + 1;
	return copy;
}

/* Appends a key to an array of keys allocated in exec_cxt, which grows */
static void
add_key(RedisScanState *st, RedisKey **keys, int *n, int *size, const char *str, size_t len)
{
	if (*n == *size)
	{
		*size = Max(*size * 2, 64);
		*keys = *keys ? repalloc(*keys, sizeof(RedisKey) * *size) :
			MemoryContextAlloc(st->exec_cxt, sizeof(RedisKey) * *size);
	}
	(*keys)[*n].str = str;
	(*keys)[*n].len = len;
	(*n)++;
}

/*
 * The record of the keys the scan returned, made at the planner's estimate
 * of their number (at most SEEN_KEYS_PRESIZE) so that it seldom grows
 */
static RedisKeySet *
seen_keys(RedisScanState *st)
{
	if (st->seen == NULL)
		st->seen = polyglot_redis_keyset_create(st->exec_cxt, (uint32) st->expected_keys);
	return st->seen;
}

/*
 * Records a key (of that hash: polyglot_redis_keyset_hash) as returned:
 * NULL when it was already (SCAN may return a key twice), else the key as
 * kept, copied into the arena when copy is set (str is then a reply's,
 * freed with its batch).
 */
static const char *
remember_key(RedisScanState *st, const char *str, size_t len, uint32 hash, bool copy)
{
	bool		found;
	int			n;

	n = polyglot_redis_keyset_enter_hash(seen_keys(st), str, len, hash, &found);
	if (found)
		return NULL;
	if (copy)
	{
		str = keep_key(st, str, len);
		polyglot_redis_keyset_move(st->seen, n, str);
	}
	return str;
}

/* The arguments of the scan's next SCAN call (8) */
static void
scan_args(RedisScanState *st, const char **argv, size_t *argvlen)
{
	int			i;

	argv[0] = "SCAN";
	argv[1] = st->cursor;
	argv[2] = "MATCH";
	argv[3] = st->pattern;
	argv[4] = "COUNT";
	argv[5] = st->count;
	argv[6] = "TYPE";
	argv[7] = polyglot_redis_type_name(st->table->type);
	for (i = 0; i < 8; i++)
		argvlen[i] = strlen(argv[i]);
}

/*
 * Reads a SCAN reply: the next cursor, and into st->page the keys of the
 * page that no earlier page returned, without the prefix (copied: the reply
 * stays the caller's to free, also when its shape is an error).  The keys'
 * slots in the record of keys returned are prefetched a run at a time, so
 * that their cache misses overlap.
 */
static void
read_scan_reply(RedisScanState *st, redisReply *reply)
{
	size_t		plen = strlen(st->table->prefix);
	redisReply *keys;
	uint32		hashes[64];
	size_t		i;

	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		reply->element[0]->type != REDIS_REPLY_STRING ||
		reply->element[0]->len >= sizeof(st->cursor) ||
		reply->element[1]->type != REDIS_REPLY_ARRAY)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" returned an error for SCAN", st->conn->servername),
				 errdetail_internal("%s", reply->type == REDIS_REPLY_ERROR && reply->str ?
									pstrdup(reply->str) :
									psprintf("unexpected reply of type %d", reply->type))));
	memcpy(st->cursor, reply->element[0]->str, reply->element[0]->len);
	st->cursor[reply->element[0]->len] = '\0';
	if (strcmp(st->cursor, "0") == 0 &&
		++st->scan_node >= polyglot_redis_node_count(st->conn))
		st->done = true;
	st->npage = 0;
	keys = reply->element[1];
	for (i = 0; i < keys->elements; i += lengthof(hashes))
	{
		size_t		n = Min(keys->elements - i, lengthof(hashes));
		size_t		j;

		/* the hashes of a run of keys, their slots prefetched, then the keys entered */
		for (j = 0; j < n; j++)
		{
			redisReply *k = keys->element[i + j];

			if (k->type != REDIS_REPLY_STRING || k->len < plen || memchr(k->str, '\0', k->len))
				continue;
			hashes[j] = polyglot_redis_keyset_hash(k->str + plen, k->len - plen);
			polyglot_redis_keyset_prefetch(seen_keys(st), hashes[j]);
		}
		for (j = 0; j < n; j++)
		{
			redisReply *k = keys->element[i + j];
			const char *key;

			if (k->type != REDIS_REPLY_STRING || k->len < plen || memchr(k->str, '\0', k->len))
				continue;
			key = remember_key(st, k->str + plen, k->len - plen, hashes[j], true);
			if (key)
				add_key(st, &st->page, &st->npage, &st->page_size, key, k->len - plen);
		}
	}
	st->have_page = true;
}

/* One SCAN call of its own (a round trip): the next page into st->page */
static void
scan_page(RedisScanState *st)
{
	const char *argv[8];
	size_t		argvlen[8];
	redisReply *volatile reply;

	scan_args(st, argv, argvlen);
	/* each node of a cluster in turn (its primaries), one SCAN each */
	reply = polyglot_redis_node_command_argv(st->conn, st->scan_node, 8, argv, argvlen);
	st->round_trips++;
	PG_TRY();
	{
		read_scan_reply(st, reply);
	}
	PG_FINALLY();
	{
		freeReplyObject(reply);
	}
	PG_END_TRY();
}

/* The keys of SCAN_KEYS and SCAN_KEY_ARRAY into st->keys: distinct, non-NULL */
static void
lookup_keys(RedisScanState *st, ExprContext *econtext)
{
	bool		isnull;
	Datum		value = ExecEvalExpr(st->value_state, econtext, &isnull);

	if (isnull)
		return;
	if (st->mode == SCAN_KEYS)
	{
		char	   *key = TextDatumGetCString(value);

		add_key(st, &st->keys, &st->nkeys, &st->keys_size, key, strlen(key));
		return;
	}
	{
		Oid			elemtype;
		Datum	   *elems;
		bool	   *nulls;
		int			n = polyglot_array_elements(value, &elemtype, &elems, &nulls),
					i;

		for (i = 0; i < n; i++)
		{
			char	   *key;
			size_t		len;

			if (nulls[i])
				continue;
			key = TextDatumGetCString(elems[i]);
			len = strlen(key);
			if (remember_key(st, key, len, polyglot_redis_keyset_hash(key, len), false))
				add_key(st, &st->keys, &st->nkeys, &st->keys_size, key, len);
		}
	}
}

/*
 * Starts an execution of the scan: no keys fetched yet, a SCAN from cursor
 * 0; the keys of a lookup evaluated.  A key join's inner scan gets its keys
 * from polyglot_redis_join_keys().
 */
void
polyglot_redis_start_scan(RedisScanState *st, ExprContext *econtext)
{
	MemoryContext old = MemoryContextSwitchTo(st->exec_cxt);

	strcpy(st->cursor, "0");
	st->scan_node = 0;
	st->started = true;
	st->done = st->collected = st->have_page = false;
	st->keys = st->page = NULL;
	st->nkeys = st->next_key = st->keys_size = st->npage = st->page_size = 0;
	st->seen = NULL;
	st->arena = NULL;
	st->arena_left = 0;
	st->request.data = NULL;
	st->join_unsent = 0;
	st->batches = 0;
	if (st->mode == SCAN_KEYS || st->mode == SCAN_KEY_ARRAY)
		lookup_keys(st, econtext);
	MemoryContextSwitchTo(old);
}

/* ---------------------------------------------------------------- fetching */

/* The replies of a batch, freed when its memory goes (a reset, or an error) */
typedef struct BatchReplies
{
	MemoryContextCallback callback;
	redisReply **replies;
	int			n;
} BatchReplies;

static void
free_batch_replies(void *arg)
{
	BatchReplies *held = (BatchReplies *) arg;
	int			i;

	for (i = 0; i < held->n; i++)
		if (held->replies[i])
			freeReplyObject(held->replies[i]);
	held->n = 0;
}

/* Formats the command that reads key (and its PTTL when ttl is wanted) */
static void
format_read(RedisScanState *st, StringInfo buf, RedisKey key)
{
	RedisTable *t = st->table;
	const char *read = polyglot_redis_read_command(t->type);
	size_t		plen = strlen(t->prefix);

	polyglot_redis_format_command(buf, t->type == RT_ZSET ? 5 : t->type == RT_LIST ? 4 : 2);
	polyglot_redis_format_arg(buf, read, strlen(read), NULL, 0);
	polyglot_redis_format_arg(buf, t->prefix, plen, key.str, key.len);
	if (t->type == RT_LIST || t->type == RT_ZSET)
	{
		polyglot_redis_format_arg(buf, "0", 1, NULL, 0);
		polyglot_redis_format_arg(buf, "-1", 2, NULL, 0);
		if (t->type == RT_ZSET)
			polyglot_redis_format_arg(buf, "WITHSCORES", 10, NULL, 0);
	}
	if (st->want_ttl)
	{
		polyglot_redis_format_command(buf, 2);
		polyglot_redis_format_arg(buf, "PTTL", 4, NULL, 0);
		polyglot_redis_format_arg(buf, t->prefix, plen, key.str, key.len);
	}
}

/* The scan's request buffer (exec_cxt), emptied */
static StringInfo
empty_request(RedisScanState *st)
{
	if (st->request.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(st->exec_cxt);

		initStringInfo(&st->request);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&st->request);
	return &st->request;
}

/* Room for n replies owed (query_cxt, as the batch's replies) */
static void
reserve_pending(RedisScanState *st, int n)
{
	if (n <= st->pending_size)
		return;
	Assert(st->pending.got == 0);
	n = Max(n, st->pending_size * 2);
	st->pending.replies = st->pending.replies ?
		repalloc(st->pending.replies, sizeof(redisReply *) * n) :
		MemoryContextAlloc(st->query_cxt, sizeof(redisReply *) * n);
	st->pending_size = n;
}

/*
 * Sends the reads of keys[0 .. n - 1] (key_base: the position of keys[0]
 * among the scan's keys), followed with next_scan by the scan's next SCAN
 * call, as one pipeline (one Redis server) whose rows collect_reads() makes.
 * The keys must stay until then.
 */
static void
send_reads(RedisScanState *st, RedisKey *keys, int n, int key_base, bool next_scan)
{
	StringInfo	request = empty_request(st);
	int			nreplies = n * (st->want_ttl ? 2 : 1) + (next_scan ? 1 : 0);
	int			i;

	for (i = 0; i < n; i++)
		format_read(st, request, keys[i]);
	if (next_scan)
	{
		const char *argv[8];
		size_t		argvlen[8];
		int			a;

		scan_args(st, argv, argvlen);
		polyglot_redis_format_command(request, 8);
		for (a = 0; a < 8; a++)
			polyglot_redis_format_arg(request, argv[a], argvlen[a], NULL, 0);
	}
	reserve_pending(st, nreplies);
	st->pending.expected = st->pending.got = 0;
	st->pending.lost = false;
	st->flight_keys = keys;
	st->nflight = n;
	st->flight_base = key_base;
	st->flight_scan = next_scan;
	st->in_flight = true;
	polyglot_redis_send_owed(st->conn, &st->pending, request->data, request->len, nreplies);
}

/*
 * Makes the batch's rows of the replies to the reads of keys[0 .. n - 1]
 * (and of the next SCAN call, last, with next_scan, whose page is read into
 * st->page): per key, its read's reply, then its PTTL's when ttl is wanted.
 * The replies are the batch's (freed with it), and the rows point into them.
 */
static void
make_rows(RedisScanState *st, redisReply **replies, RedisKey *keys, int n, int key_base,
		  bool next_scan)
{
	RedisTable *t = st->table;
	int			per_key = st->want_ttl ? 2 : 1;
	int			i;

	if (next_scan)
		read_scan_reply(st, replies[n * per_key]);
	/* a row per key, at least for a string */
	reserve_rows(st, n);
	for (i = 0; i < n; i++)
	{
		RedisKey	key = keys[i];
		redisReply *data = replies[i * per_key];
		redisReply *pttl = st->want_ttl ? replies[i * per_key + 1] : NULL;

		if (data->type == REDIS_REPLY_ERROR)
		{
			/* a scanned key that changed its type since SCAN: not a row */
			if ((st->mode == SCAN_ALL || st->mode == SCAN_MATCH) && data->str &&
				strncmp(data->str, "WRONGTYPE", 9) == 0)
				continue;
			key_error(st, data, key.str);
		}
		check_read_reply(st, key.str, data);
		if (pttl && pttl->type != REDIS_REPLY_INTEGER)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Redis server \"%s\" answered PTTL of key \"%s%s\" with a reply of the wrong shape",
							st->conn->servername, t->prefix, key.str),
					 errdetail("Expected an integer.")));
		/* -2: the key expired between its read and its PTTL */
		if (pttl == NULL || pttl->integer != -2)
			add_key_rows(st, key, key_base + i, data, pttl ? pttl->integer : -1);
	}
}

/* Makes the batch own n replies: freed when its memory goes */
static void
hold_replies(RedisScanState *st, BatchReplies *held, redisReply **replies, int n)
{
	held->replies = replies;
	held->n = n;
	held->callback.func = free_batch_replies;
	held->callback.arg = held;
	MemoryContextRegisterResetCallback(st->batch_cxt, &held->callback);
}

/* Reads the replies of the pipeline in flight and makes the batch's rows of them */
static void
collect_reads(RedisScanState *st)
{
	BatchReplies *held = MemoryContextAllocZero(st->batch_cxt, sizeof(BatchReplies));
	redisReply **replies;
	int			size;
	int			n;

	polyglot_redis_collect(st->conn, &st->pending);
	st->round_trips++;

	/*
	 * Nothing can fail from here until the batch holds them.  The arrays
	 * swap: the next pipeline's replies go where the last batch's were.
	 */
	replies = st->pending.replies;
	size = st->pending_size;
	n = st->pending.got;
	st->pending.replies = st->replies;
	st->pending_size = st->replies_size;
	st->pending.got = st->pending.expected = 0;
	st->replies = replies;
	st->replies_size = size;
	hold_replies(st, held, replies, n);
	st->in_flight = false;
	make_rows(st, replies, st->flight_keys, st->nflight, st->flight_base, st->flight_scan);
}

/* Appends the commands that read key to a cluster's pipelines (by its slot) */
static void
append_cluster_read(RedisScanState *st, RedisKey key)
{
	RedisTable *t = st->table;
	RedisCmd	cmd;
	size_t		len;
	char	   *k = polyglot_redis_full_key(t, key.str, key.len, &len);

	polyglot_redis_cmd_init(&cmd, 6);
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
}

/*
 * The rows of keys[0 .. n - 1] on a Redis Cluster: each key's reads go to
 * the node of its slot, one pipeline per node, read at once.
 */
static void
fetch_cluster(RedisScanState *st, RedisKey *keys, int n, int key_base)
{
	int			nreplies = n * (st->want_ttl ? 2 : 1);
	BatchReplies *held = MemoryContextAllocZero(st->batch_cxt, sizeof(BatchReplies));
	int			i;

	reserve_replies(st, nreplies);
	for (i = 0; i < n; i++)
		append_cluster_read(st, keys[i]);
	st->round_trips++;
	polyglot_redis_get_replies(st->conn, nreplies, st->replies, "a pipelined read");
	hold_replies(st, held, st->replies, nreplies);
	make_rows(st, st->replies, keys, n, key_base, false);
}

/* The rows of keys[0 .. n - 1] in one round trip */
static void
fetch_keys(RedisScanState *st, RedisKey *keys, int n, int key_base, bool next_scan)
{
	if (st->table->cluster)
		fetch_cluster(st, keys, n, key_base);
	else
	{
		send_reads(st, keys, n, key_base, next_scan);
		collect_reads(st);
	}
}

/* Makes the next page of a SCAN the keys to read; false when there is none in hand */
static bool
take_page(RedisScanState *st)
{
	RedisKey   *swap = st->keys;
	int			swap_size = st->keys_size;

	if (!st->have_page)
		return false;
	/* the page arrays swap: the page after goes where the one before was */
	st->keys = st->page;
	st->nkeys = st->npage;
	st->keys_size = st->page_size;
	st->next_key = 0;
	st->page = swap;
	st->page_size = swap_size;
	st->npage = 0;
	st->have_page = false;
	return true;
}

/*
 * Fetches the next batch of rows; false when there are none left.
 *
 * On one server, a statement that only reads has the next batch's reads
 * (and the next SCAN call) sent before this batch's rows go to the
 * executor, from its second batch on: Redis works on them meanwhile, and
 * the next batch reads them.
 * A key join's inner scan keeps its last batch (its rows' values) until
 * the join rescans it for the next, whose reads the join sends as it
 * finds their keys (polyglot_redis_join_add_key).
 */
static bool
next_batch(RedisScanState *st)
{
	RedisTable *t = st->table;

	if (st->mode == SCAN_JOIN && !st->in_flight && st->next_key >= st->nkeys)
		return false;
	st->nrows = st->next_row = 0;
	while (st->nrows == 0)
	{
		/*
		 * The last batch's memory and replies go, or those of a fetch that
		 * made no row: the replies' arrays are reused.
		 */
		MemoryContextReset(st->batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (st->in_flight)
		{
			collect_reads(st);
			continue;
		}

		/*
		 * A statement that writes (UPDATE, INSERT ... SELECT, a writing
		 * CTE) could meet the keys it writes in a SCAN still under way:
		 * the whole SCAN comes first, then the reads.
		 */
		if (st->collect_first && !st->collected && !BY_NAME(st->mode))
		{
			RedisKey   *keys = NULL;
			int			nkeys = 0;
			int			size = 0;

			while (!st->done)
			{
				int			i;

				scan_page(st);
				for (i = 0; i < st->npage; i++)
					add_key(st, &keys, &nkeys, &size, st->page[i].str, st->page[i].len);
				CHECK_FOR_INTERRUPTS();
			}
			st->keys = keys;
			st->nkeys = nkeys;
			st->keys_size = size;
			st->next_key = 0;
			st->have_page = false;
			st->collected = true;
		}
		if (BY_NAME(st->mode) || st->collected)
		{
			/* a key join's keys: all in one round trip (at most a batch's) */
			int			n = st->nkeys - st->next_key;

			if (st->mode != SCAN_JOIN)
				n = Min(n, t->batch_size);
			if (n <= 0)
				return false;
			fetch_keys(st, st->keys + st->next_key, n, st->next_key, false);
			st->next_key += n;
		}
		else
		{
			/* a SCAN page's keys, read in one pipeline with the next SCAN call */
			if (!st->have_page)
			{
				if (st->done)
					return false;
				scan_page(st);
			}
			take_page(st);
			if (st->nkeys > 0)
				fetch_keys(st, st->keys, st->nkeys, 0, !st->done && !t->cluster);
		}
	}

	/*
	 * The next batch's reads go out now, from the second batch on: a scan
	 * that stops within its first (LIMIT, a nested loop's inner side
	 * rescanned) reads nothing more than it did.
	 */
	if (!t->cluster && !st->collect_first && st->mode != SCAN_JOIN && ++st->batches > 1)
	{
		if (BY_NAME(st->mode))
		{
			int			n = Min(st->nkeys - st->next_key, t->batch_size);

			if (n > 0)
			{
				send_reads(st, st->keys + st->next_key, n, st->next_key, false);
				st->next_key += n;
			}
		}
		else if (st->have_page && st->npage > 0)
		{
			take_page(st);
			send_reads(st, st->keys, st->nkeys, 0, !st->done);
		}
	}
	return true;
}

/* ---------------------------------------------------------------- key joins */

/* Bytes of reads a key join sends at a time while it reads its outer rows */
#define JOIN_SEND_BYTES		8192

/*
 * Starts a key join's batch of at most max_keys distinct keys: the keys
 * come from polyglot_redis_join_add_key(), then polyglot_redis_join_keys().
 * The join has rescanned the scan first.
 */
void
polyglot_redis_join_start(RedisScanState *st, int max_keys)
{
	if (!st->started)
		polyglot_redis_start_scan(st, NULL);
	st->join_unsent = 0;
	if (st->table->cluster)
		return;
	empty_request(st);
	reserve_pending(st, max_keys * (st->want_ttl ? 2 : 1));
	st->pending.expected = st->pending.got = 0;
	st->pending.lost = false;
}

/*
 * The batch's next distinct key, which the join keeps until its next batch.
 * Its read is sent with others, a few kilobytes at a time, so that Redis
 * reads the batch's keys while the join reads its outer rows.
 */
void
polyglot_redis_join_add_key(RedisScanState *st, RedisKey key)
{
	if (st->table->cluster)
		return;
	format_read(st, &st->request, key);
	st->join_unsent++;
	if (st->request.len >= JOIN_SEND_BYTES)
	{
		polyglot_redis_send_owed(st->conn, &st->pending, st->request.data, st->request.len,
								 st->join_unsent * (st->want_ttl ? 2 : 1));
		resetStringInfo(&st->request);
		st->join_unsent = 0;
	}
}

/*
 * The batch's keys, keys[0 .. nkeys - 1] (those given to
 * polyglot_redis_join_add_key(), in that order), which the join keeps until
 * it rescans the scan.  The rows of a row's key come with last_key_index,
 * its position in keys.
 */
void
polyglot_redis_join_keys(RedisScanState *st, RedisKey *keys, int nkeys)
{
	st->keys = keys;
	st->nkeys = nkeys;
	st->next_key = 0;
	if (st->table->cluster || nkeys == 0)
		return;
	if (st->join_unsent > 0)
		polyglot_redis_send_owed(st->conn, &st->pending, st->request.data, st->request.len,
								 st->join_unsent * (st->want_ttl ? 2 : 1));
	st->join_unsent = 0;
	st->flight_keys = keys;
	st->nflight = nkeys;
	st->flight_base = 0;
	st->flight_scan = false;
	st->in_flight = true;
	st->next_key = nkeys;
}

/*
 * The scan's pipeline in flight when the query ends: read and freed at a
 * normal end; given up when an error unwinds the query (a reset callback
 * of the query's memory), its replies left to the connection, which reads
 * and drops them before its next command.
 */
static void
end_flight(RedisScanState *st, bool can_read)
{
	if (st->conn == NULL)
		return;
	if (can_read)
		polyglot_redis_drain(st->conn, &st->pending);
	else
		polyglot_redis_abandon(st->conn, &st->pending);
	st->in_flight = false;
}

static void
abandon_flight(void *arg)
{
	end_flight((RedisScanState *) arg, false);
}

/* ---------------------------------------------------------------- rows */

/* A Redis string as a value of column attnum's type (its input cached) */
static Datum
string_datum(RedisScanState *st, int attnum, const char *s, size_t len)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->relation), attnum - 1);
	RedisColumnInput *in = &st->inputs[attnum - 1];
	Datum		d;

	if (in->base == BYTEAOID)
	{
		bytea	   *b = palloc(VARHDRSZ + len);

		SET_VARSIZE(b, VARHDRSZ + len);
		memcpy(VARDATA(b), s, len);
		d = PointerGetDatum(b);
		if (in->base != att->atttypid)
			domain_check(d, false, att->atttypid, &in->domain_extra, st->query_cxt);
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
	if (in->plain_text)
		return PointerGetDatum(cstring_to_text_with_len(s, (int) len));
	/* s is NUL-terminated (hiredis ends every string so) */
	return InputFunctionCall(&in->input, (char *) s, in->ioparam, in->typmod);
}

/* A PTTL in milliseconds as a ttl of the column's type (seconds) */
static Datum
ttl_datum(RedisScanState *st, int attnum, int64 pttl)
{
	RedisColumnInput *in = &st->inputs[attnum - 1];
	char		buf[64];

	switch (in->base)
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
	return InputFunctionCall(&in->input, buf, in->ioparam, in->typmod);
}

/* A whole hash (its HGETALL reply) as a jsonb object of its fields */
static Datum
hash_fields_datum(RedisScanState *st, RedisRow *r)
{
	RedisTable *t = st->table;
	redisReply *data = r->hash;
	JsonbParseState *ps = NULL;
	size_t		i;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i + 1 < data->elements; i += 2)
	{
		JsonbValue	k,
					v;

		k.type = jbvString;
		k.val.string.val = data->element[i]->str;
		k.val.string.len = (int) data->element[i]->len;
		v.type = jbvString;
		v.val.string.val = data->element[i + 1]->str;
		v.val.string.len = (int) data->element[i + 1]->len;
		if (memchr(k.val.string.val, '\0', k.val.string.len) ||
			memchr(v.val.string.val, '\0', v.val.string.len) ||
			!pg_verify_mbstr(GetDatabaseEncoding(), k.val.string.val, k.val.string.len, true) ||
			!pg_verify_mbstr(GetDatabaseEncoding(), v.val.string.val, v.val.string.len, true))
			ereport(ERROR,
					(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
					 errmsg("Redis hash \"%s%s\" holds bytes that are not text (a zero byte or invalid %s)",
							t->prefix, r->key, GetDatabaseEncodingName()),
					 errhint("Read it with field and value columns of type bytea.")));
		pushJsonbValue(&ps, WJB_KEY, &k);
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL)));
}

/* The values of a row's wanted columns into the slot (allocated in the current context) */
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
					Oid			base = st->inputs[i].base;

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
				if (r->hash == NULL)
					continue;
				d = hash_fields_datum(st, r);
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
	st->expected_keys = intVal(list_nth(plan->fdw_private, FP_KEYS));
	st->wanted = palloc0(sizeof(bool) * Max(st->table->natts, 1));
	st->inputs = palloc0(sizeof(RedisColumnInput) * Max(st->table->natts, 1));
	st->query_cxt = estate->es_query_cxt;
	i = 0;
	foreach(lc, wanted)
	{
		st->wanted[i] = lfirst_int(lc) != 0;
		if (st->wanted[i])
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->relation), i);
			RedisColumnInput *in = &st->inputs[i];
			Oid			infunc;

			in->base = getBaseType(att->atttypid);
			in->plain_text = att->atttypid == TEXTOID;
			in->typmod = att->atttypmod;
			getTypeInputInfo(att->atttypid, &infunc, &in->ioparam);
			fmgr_info(infunc, &in->input);
			if (st->table->roles[i] == RR_TTL)
				st->want_ttl = true;
		}
		i++;
	}
	if (plan->fdw_exprs)
		st->value_state = ExecInitExpr(linitial(plan->fdw_exprs), (PlanState *) node);
	if (st->mode == SCAN_ALL || st->mode == SCAN_MATCH)
	{
		StringInfoData pattern;

		initStringInfo(&pattern);
		polyglot_redis_scan_pattern(&pattern, st->table, st->mode == SCAN_MATCH ? st->match : NULL);
		st->pattern = pattern.data;
		snprintf(st->count, sizeof(st->count), "%d", st->table->batch_size);
	}
	st->exec_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->batch_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis batch",
										  ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot redis row",
										ALLOCSET_DEFAULT_SIZES);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	st->conn = polyglot_redis_table_connection(rte->relid, userid);
	{
		MemoryContextCallback *cb = MemoryContextAlloc(estate->es_query_cxt,
													   sizeof(MemoryContextCallback));

		cb->func = abandon_flight;
		cb->arg = st;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
	}
}

static TupleTableSlot *
redisIterateForeignScan(ForeignScanState *node)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	RedisRow   *row;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!st->started)
		polyglot_redis_start_scan(st, node->ss.ps.ps_ExprContext);
	if (st->next_row >= st->nrows && !next_batch(st))
		return slot;
	row = &st->rows[st->next_row++];

	/*
	 * A key join keeps the values of its batch's inner rows: they are
	 * made in the batch's memory, which the join's next batch resets.
	 */
	if (st->mode == SCAN_JOIN)
		old = MemoryContextSwitchTo(st->batch_cxt);
	else
	{
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
	}
	st->last_key_index = row->key_index;
	store_row(st, row, slot);
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
redisReScanForeignScan(ForeignScanState *node)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;

	end_flight(st, true);
	MemoryContextReset(st->batch_cxt);
	MemoryContextReset(st->exec_cxt);
	st->started = st->done = st->collected = st->have_page = false;
	st->keys = st->page = NULL;
	st->nkeys = st->next_key = st->npage = 0;
	st->seen = NULL;
	st->request.data = NULL;
	st->nrows = st->next_row = 0;
}

static void
redisEndForeignScan(ForeignScanState *node)
{
	RedisScanState *st = (RedisScanState *) node->fdw_state;

	if (st)
		end_flight(st, true);
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
						polyglot_redis_scan_commands(t, st->mode, st->match, st->want_ttl,
													 !t->cluster && !st->collect_first),
						es);
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
