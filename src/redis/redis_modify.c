/*-------------------------------------------------------------------------
 *
 * redis_modify.c
 *		Writes to Redis foreign tables: INSERT, UPDATE, DELETE, RETURNING.
 *
 * They map to SET/HSET/RPUSH/SADD/ZADD, and DEL/HDEL/LSET+LREM/SREM/ZREM,
 * with PEXPIRE/PERSIST for ttl; INSERT sends batch_size rows per pipeline.
 * UPDATE and DELETE find rows by key (and field, index or member).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

typedef struct RedisModifyState
{
	PolyglotModifyState base;	/* the table's batch size */
	RedisConn  *conn;
	RedisTable *table;
	Relation	rel;
	AttrNumber	key_junk;		/* UPDATE, DELETE: the old key */
	AttrNumber	sub_junk;		/* and the old field, index or member */
	List	   *target_attrs;	/* UPDATE: the columns it sets */
	List	   *list_deletes;	/* per list: (key, index, ...) to remove at the end */
	int			pending;		/* replies not read yet */
	MemoryContext cxt;
	MemoryContext row_cxt;		/* a row's write, reset after it */
	MemoryContext caller_cxt;	/* where a row's write was called: its RETURNING values */
} RedisModifyState;

/*
 * What a deleted list element is set to until the end of the statement,
 * when LREM removes them all: indices stay put meanwhile.  The zero bytes
 * keep it apart from any text value.
 */
static const char list_tombstone[] = "\0pg_polyglot deleted element\0";
#define LIST_TOMBSTONE_LEN (sizeof(list_tombstone) - 1)

static void
redisAddForeignUpdateTargets(PlannerInfo *root, Index rtindex, RangeTblEntry *target_rte,
							 Relation target_relation)
{
	RedisTable *t = polyglot_redis_load_table(RelationGetRelid(target_relation));

	polyglot_add_row_identity(root, rtindex, target_relation, t->att[RR_KEY], "key");
	if (HAS_SUBKEY(t))
	{
		int			sub = t->att[SUBKEY_ROLE(t)];

		if (sub == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("foreign table \"%s\" has no %s column",
							RelationGetRelationName(target_relation),
							SUBKEY_ROLE(t) == RR_FIELD ? "field" :
							SUBKEY_ROLE(t) == RR_INDEX ? "index" : "member"),
					 errhint("UPDATE and DELETE find the rows of a %s table by key and %s.",
							 polyglot_redis_type_name(t->type),
							 SUBKEY_ROLE(t) == RR_FIELD ? "field" :
							 SUBKEY_ROLE(t) == RR_INDEX ? "index" : "member")));
		polyglot_add_row_identity(root, rtindex, target_relation, sub, "subkey");
	}
}

static List *
redisPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
					   int subplan_index)
{
	return polyglot_plan_modify(root, plan, resultRelation, "Redis",
								"INSERT writes a key whether it exists or not.");
}

static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *target_attrs,
			 CmdType operation, bool explain_only)
{
	Relation	rel = rinfo->ri_RelationDesc;
	RedisModifyState *st = palloc0(sizeof(RedisModifyState));

	rinfo->ri_FdwState = st;
	st->rel = rel;
	st->table = polyglot_redis_load_table(RelationGetRelid(rel));
	st->base.batch_size = st->table->batch_size;
	st->target_attrs = target_attrs;
	st->cxt = CurrentMemoryContext;
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot redis write",
										ALLOCSET_DEFAULT_SIZES);
	if (mtstate && (operation == CMD_UPDATE || operation == CMD_DELETE))
	{
		st->key_junk = polyglot_modify_junk(mtstate, "key");
		if (HAS_SUBKEY(st->table))
			st->sub_junk = polyglot_modify_junk(mtstate, "subkey");
	}
	if (explain_only)
		return;
	st->conn = polyglot_redis_table_connection(RelationGetRelid(rel), polyglot_modify_user(mtstate, rinfo));
	/* the key counts the planner read may be off after this statement */
	polyglot_redis_forget_key_counts();
}

static void
redisBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *fdw_private,
						int subplan_index, int eflags)
{
	begin_modify(mtstate, rinfo, (List *) linitial(fdw_private), mtstate->operation,
				 (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
}

static void
redisBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_modify(mtstate, rinfo, NIL, CMD_INSERT, false);
}

/* A value of a column as the bytes Redis stores: bytea raw, others as text */
static char *
datum_bytes(RedisModifyState *st, int attnum, Datum value, size_t *len)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(st->rel), attnum - 1);
	Oid			outfunc;
	bool		varlena;
	char	   *s;

	if (getBaseType(att->atttypid) == BYTEAOID)
	{
		bytea	   *b = DatumGetByteaPP(value);

		*len = VARSIZE_ANY_EXHDR(b);
		return VARDATA_ANY(b);
	}
	getTypeOutputInfo(att->atttypid, &outfunc, &varlena);
	s = OidOutputFunctionCall(outfunc, value);
	*len = strlen(s);
	return s;
}

/* A column of the new row: its bytes, or ereport when it is NULL and must not be */
static char *
column_bytes(RedisModifyState *st, TupleTableSlot *slot, RedisRole role, size_t *len,
			 bool *isnull, bool required)
{
	int			attnum = st->table->att[role];
	Datum		value;

	*isnull = true;
	if (attnum == 0)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a row of a Redis %s table needs a %s", polyglot_redis_type_name(st->table->type),
							role == RR_KEY ? "key" : role == RR_SCORE ? "score" :
							role == RR_FIELD ? "field" : role == RR_MEMBER ? "member" : "value")));
		return NULL;
	}
	value = slot_getattr(slot, attnum, isnull);
	if (*isnull)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("column \"%s\" of a Redis %s table cannot be NULL",
							NameStr(TupleDescAttr(RelationGetDescr(st->rel), attnum - 1)->attname),
							polyglot_redis_type_name(st->table->type)),
					 errdetail("Redis has no NULL: delete the row instead.")));
		return NULL;
	}
	return datum_bytes(st, attnum, value, len);
}

/* The ttl of the new row in milliseconds, or -1 when NULL */
static int64
row_ttl_ms(RedisModifyState *st, TupleTableSlot *slot)
{
	int			attnum = st->table->att[RR_TTL];
	Form_pg_attribute att;
	bool		isnull;
	Datum		value;
	float8		seconds;

	if (attnum == 0)
		return -1;
	value = slot_getattr(slot, attnum, &isnull);
	if (isnull)
		return -1;
	att = TupleDescAttr(RelationGetDescr(st->rel), attnum - 1);
	switch (getBaseType(att->atttypid))
	{
		case INT2OID:
			seconds = DatumGetInt16(value);
			break;
		case INT4OID:
			seconds = DatumGetInt32(value);
			break;
		case INT8OID:
			seconds = (float8) DatumGetInt64(value);
			break;
		case FLOAT4OID:
			seconds = DatumGetFloat4(value);
			break;
		case FLOAT8OID:
			seconds = DatumGetFloat8(value);
			break;
		case NUMERICOID:
			seconds = DatumGetFloat8(DirectFunctionCall1(numeric_float8, value));
			break;
		case INTERVALOID:
			seconds = DatumGetFloat8(DirectFunctionCall2(interval_part,
														 CStringGetTextDatum("epoch"), value));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"ttl\" must be a number of seconds or an interval")));
	}
	if (!(seconds * 1000.0 >= 1.0) || seconds > (float8) PG_INT64_MAX / 1000.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be at least one millisecond"),
				 errhint("Set ttl to NULL for a key without expiry.")));
	return (int64) rint(seconds * 1000.0);
}

/* Builds the command c key [a [b]] in cmd (a, b: NULL for none) without sending it */
static void
key_cmd(RedisCmd *cmd, const char *c, const char *k, size_t klen, const char *a, size_t alen,
		const char *b, size_t blen)
{
	polyglot_redis_cmd_arg(cmd, c);
	polyglot_redis_cmd_arg_len(cmd, k, klen);
	if (a)
		polyglot_redis_cmd_arg_len(cmd, a, alen);
	if (b)
		polyglot_redis_cmd_arg_len(cmd, b, blen);
}

/* Appends the command built in cmd; its reply is read later (st->pending) */
static void
send_cmd(RedisModifyState *st, RedisCmd *cmd)
{
	polyglot_redis_cmd_append(st->conn, cmd);
	st->pending++;
}

/* Appends the command c key [a [b]] */
static void
send_key_cmd(RedisModifyState *st, RedisCmd *cmd, const char *c, const char *k, size_t klen,
			 const char *a, size_t alen, const char *b, size_t blen)
{
	key_cmd(cmd, c, k, klen, a, alen, b, blen);
	send_cmd(st, cmd);
}

/* Appends SET key value, with PX ms when ms >= 0, else with KEEPTTL when keep_ttl */
static void
send_set(RedisModifyState *st, RedisCmd *cmd, const char *k, size_t klen, const char *v,
		 size_t vlen, int64 ms, bool keep_ttl)
{
	key_cmd(cmd, "SET", k, klen, v, vlen, NULL, 0);
	if (ms >= 0)
	{
		polyglot_redis_cmd_arg(cmd, "PX");
		polyglot_redis_cmd_arg(cmd, psprintf(INT64_FORMAT, ms));
	}
	else if (keep_ttl)
		polyglot_redis_cmd_arg(cmd, "KEEPTTL");
	send_cmd(st, cmd);
}

/* Appends PEXPIRE key ms, or PERSIST key for a NULL ttl */
static void
append_ttl(RedisModifyState *st, RedisCmd *cmd, const char *key, size_t keylen, int64 ms)
{
	if (ms >= 0)
	{
		char	   *n = psprintf(INT64_FORMAT, ms);

		send_key_cmd(st, cmd, "PEXPIRE", key, keylen, n, strlen(n), NULL, 0);
	}
	else
		send_key_cmd(st, cmd, "PERSIST", key, keylen, NULL, 0, NULL, 0);
}

/*
 * Reads the replies of the commands appended so far, all of them (the
 * connection must stay in step), then reports the first error reply.
 * Returns the first reply's integer (RPUSH: the list's new length).
 */
static long long
read_replies(RedisModifyState *st, const char *what)
{
	char	   *error = NULL;
	long long	first = 0;
	bool		seen = false;

	while (st->pending > 0)
	{
		redisReply *reply = polyglot_redis_get_reply(st->conn, what);

		st->pending--;
		if (reply->type == REDIS_REPLY_ERROR && error == NULL)
			error = pstrdup(reply->str ? reply->str : "error");
		else if (reply->type == REDIS_REPLY_INTEGER && !seen)
			first = reply->integer;
		seen = true;
		freeReplyObject(reply);
	}
	/*
	 * A replica (the primary of before a failover) refuses writes: the next
	 * statement connects afresh, and finds the primary again when Sentinels
	 * name it.
	 */
	if (error && strncmp(error, "READONLY", 8) == 0)
		polyglot_redis_discard_connection(st->conn);
	if (error)
		ereport(ERROR,
				(errcode(strncmp(error, "WRONGTYPE", 9) == 0 ? ERRCODE_FDW_INVALID_DATA_TYPE :
						 ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" refused %s", st->conn->servername, what),
				 errdetail_internal("%s", error)));
	return first;
}

/*
 * After an error with replies still unread, the connection is out of step
 * with its commands: it goes, and the next statement connects again.
 */
static void
discard_if_pending(RedisModifyState *st)
{
	if (st->pending > 0)
	{
		st->pending = 0;
		polyglot_redis_discard_connection(st->conn);
	}
}

/* Reads the replies of the commands sent so far, reporting their first error */
static void
drain(RedisModifyState *st, const char *what)
{
	if (st->pending > 0)
		(void) read_replies(st, what);
}

/* A key a scan could not read back (it holds a zero byte) is refused */
static void
check_key(const char *key, size_t len)
{
	if (memchr(key, '\0', len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a Redis key of a foreign table cannot hold a zero byte")));
}

/* Appends the commands that write a new row */
static void
append_insert(RedisModifyState *st, TupleTableSlot *slot, bool with_ttl)
{
	RedisTable *t = st->table;
	RedisCmd	cmd;
	size_t		klen,
				vlen,
				slen;
	bool		isnull;
	char	   *key = column_bytes(st, slot, RR_KEY, &klen, &isnull, true);
	char	   *k;
	char	   *v;
	char	   *sub;
	int64		ttl = with_ttl ? row_ttl_ms(st, slot) : -1;

	check_key(key, klen);
	k = polyglot_redis_full_key(t, key, klen, &klen);
	polyglot_redis_cmd_init(&cmd, 8);
	switch (t->type)
	{
		case RT_STRING:
			v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
			send_set(st, &cmd, k, klen, v, vlen, ttl, false);
			return;
		case RT_HASH:
			if (t->att[RR_FIELDS])
			{
				Datum		d = slot_getattr(slot, t->att[RR_FIELDS], &isnull);
				Jsonb	   *jb;
				JsonbIterator *it;
				JsonbValue	jv;
				JsonbIteratorToken tok;

				if (isnull)
					ereport(ERROR,
							(errcode(ERRCODE_NOT_NULL_VIOLATION),
							 errmsg("the fields of a Redis hash cannot be NULL")));
				jb = DatumGetJsonbP(d);
				if (!JB_ROOT_IS_OBJECT(jb) || JsonContainerSize(&jb->root) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("the fields of a Redis hash must be a non-empty JSON object"),
							 errdetail("Redis has no empty hash: delete the row instead.")));
				send_key_cmd(st, &cmd, "DEL", k, klen, NULL, 0, NULL, 0);
				key_cmd(&cmd, "HSET", k, klen, NULL, 0, NULL, 0);
				it = JsonbIteratorInit(&jb->root);
				while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
				{
					if (tok == WJB_KEY)
						polyglot_redis_cmd_arg_len(&cmd, jv.val.string.val, jv.val.string.len);
					else if (tok == WJB_VALUE)
					{
						/* strings as they are, anything else as its JSON */
						if (jv.type == jbvString)
							polyglot_redis_cmd_arg_len(&cmd, jv.val.string.val, jv.val.string.len);
						else
						{
							Jsonb	   *one = JsonbValueToJsonb(&jv);
							char	   *text = JsonbToCString(NULL, &one->root, VARSIZE(one));

							polyglot_redis_cmd_arg(&cmd, text);
						}
					}
				}
				if (cmd.argc > 2)
					send_cmd(st, &cmd);
				cmd.argc = 0;
				break;
			}
			sub = column_bytes(st, slot, RR_FIELD, &slen, &isnull, true);
			v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
			send_key_cmd(st, &cmd, "HSET", k, klen, sub, slen, v, vlen);
			break;
		case RT_LIST:
			if (t->att[RR_INDEX])
			{
				(void) slot_getattr(slot, t->att[RR_INDEX], &isnull);
				if (!isnull)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("the index of a new list element is given by Redis"),
							 errdetail("INSERT appends to the list (RPUSH); leave index NULL, RETURNING shows it.")));
			}
			v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
			send_key_cmd(st, &cmd, "RPUSH", k, klen, v, vlen, NULL, 0);
			break;
		case RT_SET:
			sub = column_bytes(st, slot, RR_MEMBER, &slen, &isnull, true);
			send_key_cmd(st, &cmd, "SADD", k, klen, sub, slen, NULL, 0);
			break;
		case RT_ZSET:
			sub = column_bytes(st, slot, RR_MEMBER, &slen, &isnull, true);
			v = column_bytes(st, slot, RR_SCORE, &vlen, &isnull, true);
			send_key_cmd(st, &cmd, "ZADD", k, klen, v, vlen, sub, slen);
			break;
	}
	if (ttl >= 0)
		append_ttl(st, &cmd, k, klen, ttl);
}

typedef TupleTableSlot *(*RedisWriteFn) (EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *planSlot);

/*
 * Runs one row's write in st->row_cxt, reset after it; after an error with
 * replies unread, the connection goes (discard_if_pending), so that no
 * later statement reads them.
 */
static TupleTableSlot *
guarded_write(RedisWriteFn fn, EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
			  TupleTableSlot *planSlot)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	TupleTableSlot *volatile result = NULL;

	st->caller_cxt = MemoryContextSwitchTo(st->row_cxt);
	PG_TRY();
	{
		result = fn(estate, rinfo, slot, planSlot);
	}
	PG_CATCH();
	{
		discard_if_pending(st);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(st->caller_cxt);
	MemoryContextReset(st->row_cxt);
	return result;
}

static TupleTableSlot *
exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					   TupleTableSlot *planSlot)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	long long	result;

	append_insert(st, slot, true);
	result = read_replies(st, "an INSERT");
	/* RPUSH answers the new length: the element's index is one less */
	if (st->table->type == RT_LIST && st->table->att[RR_INDEX])
	{
		int			attnum = st->table->att[RR_INDEX];
		Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1);
		Oid			typinput,
					typioparam;

		slot_getallattrs(slot);
		getTypeInputInfo(att->atttypid, &typinput, &typioparam);
		MemoryContextSwitchTo(st->caller_cxt);
		slot->tts_values[attnum - 1] = OidInputFunctionCall(typinput, psprintf("%lld", result - 1),
															typioparam, att->atttypmod);
		slot->tts_isnull[attnum - 1] = false;
		MemoryContextSwitchTo(st->row_cxt);
	}
	return slot;
}

static TupleTableSlot *
redisExecForeignInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return guarded_write(exec_insert, estate, rinfo, slot, planSlot);
}

#if PG_VERSION_NUM >= 140000
/* batch_size rows in one pipeline */
static TupleTableSlot **
redisExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot **slots,
							TupleTableSlot **planSlots, int *numSlots)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(st->row_cxt);
	volatile int i;

	PG_TRY();
	{
		for (i = 0; i < *numSlots; i++)
			append_insert(st, slots[i], true);
		(void) read_replies(st, "a batched INSERT");
	}
	PG_CATCH();
	{
		discard_if_pending(st);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
	return slots;
}
#endif

/* The old key (with prefix) and sub-key of the row an UPDATE or DELETE is at */
static char *
old_key(RedisModifyState *st, TupleTableSlot *planSlot, size_t *klen, char **sub,
		size_t *slen)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, st->key_junk, &isnull);
	char	   *key;

	if (isnull)
		elog(ERROR, "pg_polyglot: the key of a Redis row is null");
	key = datum_bytes(st, st->table->att[RR_KEY], d, klen);
	key = polyglot_redis_full_key(st->table, key, *klen, klen);
	*sub = NULL;
	if (st->sub_junk)
	{
		d = ExecGetJunkAttribute(planSlot, st->sub_junk, &isnull);
		if (isnull)
			elog(ERROR, "pg_polyglot: the sub-key of a Redis row is null");
		*sub = datum_bytes(st, st->table->att[SUBKEY_ROLE(st->table)], d, slen);
	}
	return key;
}

static bool
updates(RedisModifyState *st, RedisRole role)
{
	return st->table->att[role] && list_member_int(st->target_attrs, st->table->att[role]);
}

static bool
bytes_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/*
 * An UPDATE that moves a row onto one that exists: an error, as a unique
 * key would give, rather than overwriting it.
 */
static void
row_exists(RedisModifyState *st, const char *k, size_t klen, const char *sub, size_t slen)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("Redis key \"%s\"%s%s%s already exists", pnstrdup(k, klen),
					sub ? " with \"" : "", sub ? pnstrdup(sub, slen) : "", sub ? "\"" : ""),
			 errdetail("An UPDATE cannot move a row onto another one.")));
}

/*
 * Sends the command built in cmd, which writes an UPDATE's row at its new
 * place only where there is none (RENAMENX, HSETNX, SADD, ZADD NX answer 0
 * otherwise), and reads its reply at once: 0 is row_exists().
 */
static void
send_claim(RedisModifyState *st, RedisCmd *cmd, const char *k, size_t klen, const char *sub,
		   size_t slen)
{
	drain(st, "an UPDATE");
	send_cmd(st, cmd);
	if (read_replies(st, "an UPDATE") == 0)
		row_exists(st, k, klen, sub, slen);
}

static TupleTableSlot *
exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					   TupleTableSlot *planSlot)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	RedisTable *t = st->table;
	RedisCmd	cmd;
	size_t		oklen,
				oslen = 0,
				klen,
				slen = 0,
				vlen;
	char	   *osub;
	char	   *ok = old_key(st, planSlot, &oklen, &osub, &oslen);
	bool		isnull;
	char	   *k = column_bytes(st, slot, RR_KEY, &klen, &isnull, true);
	char	   *sub = NULL;
	char	   *v;
	bool		moved;

	check_key(k, klen);
	k = polyglot_redis_full_key(t, k, klen, &klen);
	if (HAS_SUBKEY(t))
		sub = column_bytes(st, slot, SUBKEY_ROLE(t), &slen, &isnull, true);
	moved = !bytes_equal(ok, oklen, k, klen) ||
		(sub && !bytes_equal(osub, oslen, sub, slen));
	polyglot_redis_cmd_init(&cmd, 8);
	switch (t->type)
	{
		case RT_STRING:
			if (moved)
			{
				key_cmd(&cmd, "RENAMENX", ok, oklen, k, klen, NULL, 0);
				send_claim(st, &cmd, k, klen, NULL, 0);
			}
			if (updates(st, RR_VALUE))
			{
				int64		ttl = updates(st, RR_TTL) ? row_ttl_ms(st, slot) : -1;

				v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
				send_set(st, &cmd, k, klen, v, vlen, ttl, !updates(st, RR_TTL));
			}
			else if (updates(st, RR_TTL))
				append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
			break;
		case RT_HASH:
			if (t->att[RR_FIELDS])
			{
				if (moved || updates(st, RR_FIELDS))
				{
					long long	keep = -1;

					/* the rewrite drops the key's expiry: keep it unless assigned */
					if (!updates(st, RR_TTL))
					{
						drain(st, "an UPDATE");
						send_key_cmd(st, &cmd, "PTTL", ok, oklen, NULL, 0, NULL, 0);
						keep = read_replies(st, "an UPDATE");
					}
					if (moved)
						send_key_cmd(st, &cmd, "DEL", ok, oklen, NULL, 0, NULL, 0);
					append_insert(st, slot, updates(st, RR_TTL));
					if (keep > 0)
						append_ttl(st, &cmd, k, klen, keep);
				}
				else if (updates(st, RR_TTL))
					append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
				break;
			}
			v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
			if (moved)
			{
				/* the new field first, only where there is none: then the old goes */
				key_cmd(&cmd, "HSETNX", k, klen, sub, slen, v, vlen);
				send_claim(st, &cmd, k, klen, sub, slen);
				send_key_cmd(st, &cmd, "HDEL", ok, oklen, osub, oslen, NULL, 0);
			}
			else if (updates(st, RR_VALUE))
				send_key_cmd(st, &cmd, "HSET", k, klen, sub, slen, v, vlen);
			if (updates(st, RR_TTL))
				append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
			break;
		case RT_LIST:
			if (moved)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot change the key or index of a list element"),
						 errhint("Delete the element and insert a new one.")));
			if (updates(st, RR_VALUE))
			{
				v = column_bytes(st, slot, RR_VALUE, &vlen, &isnull, true);
				send_key_cmd(st, &cmd, "LSET", k, klen, sub, slen, v, vlen);
			}
			if (updates(st, RR_TTL))
				append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
			break;
		case RT_SET:
			if (moved)
			{
				key_cmd(&cmd, "SADD", k, klen, sub, slen, NULL, 0);
				send_claim(st, &cmd, k, klen, sub, slen);
				send_key_cmd(st, &cmd, "SREM", ok, oklen, osub, oslen, NULL, 0);
			}
			if (updates(st, RR_TTL))
				append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
			break;
		case RT_ZSET:
			v = column_bytes(st, slot, RR_SCORE, &vlen, &isnull, true);
			if (moved)
			{
				key_cmd(&cmd, "ZADD", k, klen, "NX", 2, v, vlen);
				polyglot_redis_cmd_arg_len(&cmd, sub, slen);
				send_claim(st, &cmd, k, klen, sub, slen);
				send_key_cmd(st, &cmd, "ZREM", ok, oklen, osub, oslen, NULL, 0);
			}
			else if (updates(st, RR_SCORE))
				send_key_cmd(st, &cmd, "ZADD", k, klen, v, vlen, sub, slen);
			if (updates(st, RR_TTL))
				append_ttl(st, &cmd, k, klen, row_ttl_ms(st, slot));
			break;
	}
	/*
	 * The row's replies now: the scan feeding this UPDATE shares the
	 * connection, and its next command must not meet them.
	 */
	drain(st, "an UPDATE");
	return slot;
}

static TupleTableSlot *
redisExecForeignUpdate(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return guarded_write(exec_update, estate, rinfo, slot, planSlot);
}

static TupleTableSlot *
exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					   TupleTableSlot *planSlot)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	RedisTable *t = st->table;
	RedisCmd	cmd;
	size_t		klen,
				slen = 0;
	char	   *sub;
	char	   *k = old_key(st, planSlot, &klen, &sub, &slen);
	bool		isnull;
	Datum		keyd = ExecGetJunkAttribute(planSlot, st->key_junk, &isnull);
	Datum		subd = st->sub_junk ? ExecGetJunkAttribute(planSlot, st->sub_junk, &isnull) : 0;

	polyglot_redis_cmd_init(&cmd, 4);
	switch (t->type)
	{
		case RT_STRING:
			send_key_cmd(st, &cmd, "DEL", k, klen, NULL, 0, NULL, 0);
			break;
		case RT_HASH:
			if (t->att[RR_FIELDS])
				send_key_cmd(st, &cmd, "DEL", k, klen, NULL, 0, NULL, 0);
			else
				send_key_cmd(st, &cmd, "HDEL", k, klen, sub, slen, NULL, 0);
			break;
		case RT_LIST:
			{
				/* removed at the end of the statement, all of a key's at once */
				MemoryContext o2 = MemoryContextSwitchTo(st->cxt);
				ListCell   *lc;
				ListCell   *found = NULL;

				foreach(lc, st->list_deletes)
					if (bytes_equal(strVal(linitial((List *) lfirst(lc))),
									strlen(strVal(linitial((List *) lfirst(lc)))), k, klen))
						found = lc;
				if (found == NULL)
				{
					st->list_deletes = lappend(st->list_deletes,
											   list_make1(makeString(pnstrdup(k, klen))));
					found = list_tail(st->list_deletes);
				}
				lfirst(found) = lappend((List *) lfirst(found), makeString(pnstrdup(sub, slen)));
				MemoryContextSwitchTo(o2);
			}
			break;
		case RT_SET:
			send_key_cmd(st, &cmd, "SREM", k, klen, sub, slen, NULL, 0);
			break;
		case RT_ZSET:
			send_key_cmd(st, &cmd, "ZREM", k, klen, sub, slen, NULL, 0);
			break;
	}
	/* the row's replies now, as for UPDATE: the scan shares the connection */
	drain(st, "a DELETE");

	/* RETURNING of a DELETE sees the key (and field, index or member) */
	polyglot_deleted_row(slot, t->att[RR_KEY], keyd,
						 st->sub_junk ? t->att[SUBKEY_ROLE(t)] : 0, subd);
	return slot;
}

static TupleTableSlot *
redisExecForeignDelete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return guarded_write(exec_delete, estate, rinfo, slot, planSlot);
}

/*
 * Removes a list's elements by index, atomically: each is set to a marker,
 * then every marker goes.  Indices are those the statement read, so the
 * elements of one statement are removed together at its end.
 */
static const char list_delete_script[] =
"local t = ARGV[1] "
"for i = 2, #ARGV do redis.call('LSET', KEYS[1], ARGV[i], t) end "
"return redis.call('LREM', KEYS[1], 0, t)";

/* also EndForeignInsert: removes the list elements deleted by the statement */
static void
redisEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;
	RedisCmd	cmd;
	ListCell   *lc;

	if (st == NULL || st->conn == NULL || (st->list_deletes == NIL && st->pending == 0))
		return;
	polyglot_redis_cmd_init(&cmd, 8);
	PG_TRY();
	{
		drain(st, "an UPDATE or DELETE");
		foreach(lc, st->list_deletes)
		{
			List	   *entry = (List *) lfirst(lc);
			ListCell   *li;

			polyglot_redis_cmd_arg(&cmd, "EVAL");
			polyglot_redis_cmd_arg(&cmd, list_delete_script);
			polyglot_redis_cmd_arg(&cmd, "1");
			polyglot_redis_cmd_arg(&cmd, strVal(linitial(entry)));
			polyglot_redis_cmd_arg_len(&cmd, list_tombstone, LIST_TOMBSTONE_LEN);
			for_each_from(li, entry, 1)
				polyglot_redis_cmd_arg(&cmd, strVal(lfirst(li)));
			send_cmd(st, &cmd);
		}
		st->list_deletes = NIL;
		drain(st, "the removal of deleted list elements");
	}
	PG_CATCH();
	{
		discard_if_pending(st);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static void
redisExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *fdw_private,
						  int subplan_index, ExplainState *es)
{
	RedisModifyState *st = (RedisModifyState *) rinfo->ri_FdwState;

	ExplainPropertyText("Redis Type", polyglot_redis_type_name(st->table->type), es);
	if (es->verbose)
		(void) polyglot_explain_insert_batch_size(mtstate, rinfo, es);
}

/* Sets the callbacks of INSERT, UPDATE, DELETE and COPY FROM in routine */
void
polyglot_redis_modify_routine(FdwRoutine *routine)
{
	POLYGLOT_SET_MODIFY_CALLBACKS(routine, redis);
}
