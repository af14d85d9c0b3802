/*-------------------------------------------------------------------------
 *
 * redis_query.c
 *		What a Redis scan can ask the server for, and how it is written:
 *		the clauses that become key lookups (key = x, key = ANY, key LIKE
 *		'prefix%' as SCAN MATCH), the commands that read a key, the SCAN
 *		MATCH pattern and the commands EXPLAIN shows.
 *
 * Pure functions of the planner's expressions and a table's layout: no
 * connection, no I/O.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_operator.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

/* ---------------------------------------------------------------- pushdown */

/* Is expr the key column of the scanned relation? */
static bool
is_key_var(Expr *expr, RelOptInfo *baserel, RedisTable *t)
{
	if (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return IsA(expr, Var) && (Index) ((Var *) expr)->varno == baserel->relid &&
		((Var *) expr)->varlevelsup == 0 && ((Var *) expr)->varattno == t->att[RR_KEY];
}

/*
 * A value known when the scan starts: any expression of constants,
 * parameters and columns of other relations (a nested loop's outer row),
 * without volatile functions, subplans, aggregates or window functions.
 * The key is computed in PostgreSQL, so it need not be a plain value as
 * the conditions sent to MongoDB or Elasticsearch (polyglot_is_plain_value).
 */
static bool
is_evaluable_value(Expr *expr, RelOptInfo *baserel)
{
	Bitmapset  *attrs = NULL;

	pull_varattnos((Node *) expr, baserel->relid, &attrs);
	return attrs == NULL && !contain_volatile_functions((Node *) expr) &&
		!contain_subplans((Node *) expr) && !contain_agg_clause((Node *) expr) &&
		!contain_window_function((Node *) expr);
}

/* The text = operator (also for varchar, whose = is text's) */
static bool
is_text_eq(Oid opno, Oid collid)
{
	return opno == TextEqualOperator &&
		(!OidIsValid(collid) || get_collation_isdeterministic(collid));
}

/*
 * The lookup a clause allows: key = value (SCAN_KEYS), key = ANY(array)
 * (SCAN_KEY_ARRAY), key LIKE 'literal%' (SCAN_MATCH); *value or *match is
 * set.  SCAN_ALL when it allows none.
 */
int
polyglot_redis_key_lookup(Expr *clause, RelOptInfo *baserel, RedisTable *t, Expr **value, char **match)
{
	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		Expr	   *l = linitial(op->args);
		Expr	   *r = lsecond(op->args);

		if (is_text_eq(op->opno, op->inputcollid))
		{
			if (is_key_var(l, baserel, t) && is_evaluable_value(r, baserel))
			{
				*value = r;
				return SCAN_KEYS;
			}
			if (is_key_var(r, baserel, t) && is_evaluable_value(l, baserel))
			{
				*value = l;
				return SCAN_KEYS;
			}
		}
		/* key LIKE 'abc%': a literal prefix and one trailing % */
		if (op->opfuncid == F_TEXTLIKE && is_key_var(l, baserel, t) && IsA(r, Const) &&
			!((Const *) r)->constisnull)
		{
			char	   *pattern = TextDatumGetCString(((Const *) r)->constvalue);
			size_t		len = strlen(pattern);

			if (len > 0 && pattern[len - 1] == '%' &&
				strcspn(pattern, "%_\\") == len - 1)
			{
				pattern[len - 1] = '\0';
				*match = pattern;
				return SCAN_MATCH;
			}
		}
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;

		if (sa->useOr && is_text_eq(sa->opno, sa->inputcollid) &&
			is_key_var(linitial(sa->args), baserel, t) && is_evaluable_value(lsecond(sa->args), baserel))
		{
			*value = lsecond(sa->args);
			return SCAN_KEY_ARRAY;
		}
	}
	return SCAN_ALL;
}

/* ---------------------------------------------------------------- commands */

/* The command that reads a key's rows, by type */
const char *
polyglot_redis_read_command(RedisTableType type)
{
	switch (type)
	{
		case RT_STRING:
			return "GET";
		case RT_HASH:
			return "HGETALL";
		case RT_LIST:
			return "LRANGE";
		case RT_SET:
			return "SMEMBERS";
		case RT_ZSET:
			return "ZRANGE";
	}
	return "";
}

/* A glob pattern matching text literally (SCAN MATCH escapes) */
static void
append_glob_literal(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		if (strchr("*?[]\\", *s))
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *s);
	}
}

/* Appends the SCAN MATCH pattern of a table's keys (that start with match, unless NULL) */
void
polyglot_redis_scan_pattern(StringInfo buf, RedisTable *t, const char *match)
{
	append_glob_literal(buf, t->prefix);
	if (match)
		append_glob_literal(buf, match);
	appendStringInfoChar(buf, '*');
}

/*
 * The commands a scan of table t sends, for EXPLAIN VERBOSE: mode and match
 * as in RedisScanState, want_ttl when it reads PTTL, next_scan_pipelined
 * when a SCAN page's reads go in one pipeline with the next SCAN call (one
 * server, a statement that only reads).  Palloc'd.
 */
char *
polyglot_redis_scan_commands(RedisTable *t, int mode, const char *match, bool want_ttl,
							 bool next_scan_pipelined)
{
	StringInfoData buf;
	const char *read = polyglot_redis_read_command(t->type);
	const char *args = t->type == RT_LIST ? " 0 -1" : t->type == RT_ZSET ? " 0 -1 WITHSCORES" : "";

	initStringInfo(&buf);
	switch (mode)
	{
		case SCAN_KEYS:
			appendStringInfo(&buf, "%s %s<key>%s%s", read, t->prefix, args,
							 want_ttl ? ", PTTL" : "");
			break;
		case SCAN_KEY_ARRAY:
			appendStringInfo(&buf, "%s %s<key>%s%s for each key, %d keys per pipelined round trip",
							 read, t->prefix, args, want_ttl ? ", PTTL" : "", t->batch_size);
			break;
		case SCAN_JOIN:
			appendStringInfo(&buf, "%s %s<key>%s%s for each distinct key of a batch of %d outer rows, in one pipelined round trip",
							 read, t->prefix, args, want_ttl ? ", PTTL" : "", t->batch_size);
			break;
		default:
			appendStringInfoString(&buf, "SCAN <cursor> MATCH ");
			polyglot_redis_scan_pattern(&buf, t, mode == SCAN_MATCH ? match : NULL);
			appendStringInfo(&buf, " COUNT %d TYPE %s, then %s%s%s for each key, pipelined%s",
							 t->batch_size, polyglot_redis_type_name(t->type), read, args,
							 want_ttl ? ", PTTL" : "",
							 next_scan_pipelined ? " with the next SCAN" : "");
			break;
	}
	return buf.data;
}
