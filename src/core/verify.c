/*-------------------------------------------------------------------------
 *
 * verify.c
 *		polyglot.verify(route, repair): compares a route's source table with
 *		what its store holds, and optionally enqueues the fixes.
 *
 * Two passes, each bounded in memory:
 *
 * 1. The source, in primary-key order, a thousand keys at a time: each
 *    chunk's rows are read and rendered exactly as the worker delivers them
 *    (polyglot_read_rows), and the sink compares them with what the store
 *    holds for those keys (one request per chunk): missing or different.
 * 2. The store's keys, page by page from the sink, into a temporary table,
 *    then one anti-join with the source: a key whose row does not exist, or
 *    that no row of the route could have produced, is extra.
 *
 * With repair, the keys of missing, different and extra entries go to the
 * outbox (op B), so the worker delivers each key's current state: the row,
 * or a delete when there is none.  An extra key that is no key of the route
 * cannot be repaired that way; it is reported, and left alone.
 *
 * The comparison runs while the table and the store may change: keys still
 * in the outbox, or changed during the run, can show as drift.  A notice
 * says when events are pending.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/outbox.h"
#include "core/dispatch.h"

#define VERIFY_CHUNK	1000

PG_FUNCTION_INFO_V1(polyglot_verify);

typedef struct VerifyState
{
	PolyglotRoute *route;
	const PolyglotSink *sink;
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
	MemoryContext out_cxt;		/* the result's and repairs' context */
	List	   *repairs;		/* of List of char *: keys to enqueue */
	int64		drift;
	Oid			caller;			/* who called verify, and in what context */
	int			caller_sec_context;
} VerifyState;

/*
 * The table's rows are read as its owner, in a security-restricted
 * operation, as the worker reads them: what the table's owner put in them
 * (a route's filter, the checks of a key's domain) never runs with the
 * rights of whoever calls verify, a superuser maybe.
 */
static void
as_table_owner(VerifyState *vs)
{
	SetUserIdAndSecContext(vs->route->source_owner,
						   vs->caller_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

static void
as_caller(VerifyState *vs)
{
	SetUserIdAndSecContext(vs->caller, vs->caller_sec_context);
}

/* A text[] of a key's values */
static Datum
key_array(List *key)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(key), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, key)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}

/* One row of the result; the key is queued for repair when it has one */
static void
report(VerifyState *vs, const char *kind, List *key, const char *name, bool repair)
{
	MemoryContext old = MemoryContextSwitchTo(vs->out_cxt);
	Datum		values[3];
	bool		nulls[3] = {false, key == NIL, name == NULL};

	values[0] = CStringGetTextDatum(kind);
	values[1] = key != NIL ? key_array(key) : (Datum) 0;
	values[2] = name ? CStringGetTextDatum(name) : (Datum) 0;
	tuplestore_putvalues(vs->tupstore, vs->tupdesc, values, nulls);
	if (repair && key != NIL)
	{
		List	   *copy = NIL;
		ListCell   *lc;

		foreach(lc, key)
			copy = lappend(copy, pstrdup((char *) lfirst(lc)));
		vs->repairs = lappend(vs->repairs, copy);
	}
	vs->drift++;
	MemoryContextSwitchTo(old);
}

/*
 * t.a, t.b ... and ARRAY[key texts as the capture trigger writes them] and
 * ($1[1]::ta, ...) of the key columns
 */
static void
key_sql(PolyglotRoute *route, StringInfo cols, StringInfo texts, StringInfo params)
{
	ListCell   *kc,
			   *tc;
	int			i = 1;

	appendStringInfoString(texts, "ARRAY[");
	forboth(kc, route->key_columns, tc, route->key_types)
	{
		const char *col = quote_identifier((char *) lfirst(kc));

		if (i > 1)
		{
			appendStringInfoString(cols, ", ");
			appendStringInfoString(texts, ", ");
			appendStringInfoString(params, ", ");
		}
		appendStringInfo(cols, "t.%s", col);
		appendStringInfo(texts, "polyglot._key_text(t.%s)", col);
		appendStringInfo(params, "$1[%d]::%s", i, (char *) lfirst(tc));
		i++;
	}
	appendStringInfoChar(texts, ']');
}

/* The keys of the current SPI result's first column (text[]), in cxt */
static List *
result_keys(int col, MemoryContext cxt, List **names)
{
	List	   *keys = NIL;
	uint64		r;

	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col, &isnull);
		List	   *key = NIL;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *enulls;
			int			n,
						i;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &n);
			for (i = 0; i < n; i++)
				key = lappend(key, enulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]));
		}
		keys = lappend(keys, key);
		if (names)
			*names = lappend(*names, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(old);
	}
	return keys;
}

/* Pass 1: the source's rows against the store, a chunk at a time */
static void
compare_source(VerifyState *vs, bool repair)
{
	PolyglotRoute *route = vs->route;
	PolyglotPayload payload = vs->sink->payload(route);
	StringInfoData cols,
				texts,
				params,
				first,
				next;
	MemoryContext chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot verify chunk",
													ALLOCSET_DEFAULT_SIZES);
	Datum		after = (Datum) 0;
	StringInfoData scratch;
	const char *filter;

	initStringInfo(&cols);
	initStringInfo(&texts);
	initStringInfo(&params);
	key_sql(route, &cols, &texts, &params);
	/* the rows of the route: those its filter takes */
	filter = polyglot_route_filter(route);
	initStringInfo(&first);
	appendStringInfo(&first, "SELECT %s FROM ONLY %s t %s%s%s ORDER BY %s LIMIT %d",
					 texts.data, route->source_name, filter ? "WHERE (" : "",
					 filter ? filter : "", filter ? ")" : "", cols.data, VERIFY_CHUNK);
	initStringInfo(&next);
	appendStringInfo(&next, "SELECT %s FROM ONLY %s t WHERE (%s) > (%s) %s%s%s ORDER BY %s LIMIT %d",
					 texts.data, route->source_name, cols.data, params.data,
					 filter ? "AND (" : "", filter ? filter : "", filter ? ")" : "",
					 cols.data, VERIFY_CHUNK);
	initStringInfo(&scratch);

	for (;;)
	{
		MemoryContext old;
		Oid			argtypes[1] = {TEXTARRAYOID};
		List	   *keys;
		List	   *items = NIL;
		PolyglotVerdict *verdicts;
		char	  **names;
		ListCell   *lc;
		int			n,
					i;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(chunk_cxt);
		if (after == (Datum) 0)
			rc = SPI_execute(first.data, true, 0);
		else
			rc = SPI_execute_with_args(next.data, 1, argtypes, &after, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "pg_polyglot: reading the keys of %s failed: %s", route->source_name,
				 SPI_result_code_string(rc));
		keys = result_keys(1, chunk_cxt, NULL);
		n = list_length(keys);
		if (n == 0)
			break;

		old = MemoryContextSwitchTo(chunk_cxt);
		foreach(lc, keys)
		{
			PolyglotItem *item = palloc0(sizeof(PolyglotItem));
			PolyglotEvent *ev = palloc0(sizeof(PolyglotEvent));

			ev->op = 'B';
			ev->key = (List *) lfirst(lc);
			item->event = ev;
			item->events = list_make1(ev);
			item->key_string = polyglot_key_string(ev->key, &scratch);
			items = lappend(items, item);
		}
		polyglot_read_rows(route, vs->sink, payload, items, chunk_cxt);
		verdicts = palloc0(sizeof(PolyglotVerdict) * n);
		names = palloc0(sizeof(char *) * n);
		vs->sink->verify(route, items, verdicts, names);
		i = 0;
		foreach(lc, items)
		{
			PolyglotEvent *ev = ((PolyglotItem *) lfirst(lc))->event;

			/* a row deleted since its key was read is the extra pass's */
			if (ev->found && verdicts[i] != POLYGLOT_SAME)
				report(vs, verdicts[i] == POLYGLOT_MISSING ? "missing" : "different",
					   ev->key, names[i], repair);
			i++;
		}
		MemoryContextSwitchTo(old);

		/* the next chunk starts after the last key */
		old = MemoryContextSwitchTo(vs->out_cxt);
		after = key_array((List *) llast(keys));
		MemoryContextSwitchTo(old);
		if (n < VERIFY_CHUNK)
			break;
	}
	MemoryContextDelete(chunk_cxt);
}

/*
 * Runs fn(arg) in a subtransaction and returns true, or false when it
 * raised an error, which is discarded: for conversions of a store's keys,
 * which need not be valid input of the key columns' types.
 */
bool
polyglot_try(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

typedef struct CanonicalCheck
{
	PolyglotRoute *route;
	List	   *key;
	bool		canonical;
} CanonicalCheck;

static void
check_canonical(void *arg)
{
	CanonicalCheck *check = (CanonicalCheck *) arg;
	ListCell   *kc,
			   *tc;

	forboth(kc, check->key, tc, check->route->key_typids)
	{
		Oid			typid = lfirst_oid(tc);
		Oid			input,
					ioparam;
		char	   *text = (char *) lfirst(kc);

		getTypeInputInfo(typid, &input, &ioparam);
		if (strcmp(polyglot_key_text(typid, OidInputFunctionCall(input, text, ioparam, -1)),
				   text) != 0)
			check->canonical = false;
	}
}

/*
 * Could a row have this key?  Each value must be valid input of its key
 * column's type and print back the same, as the capture trigger prints it
 * ('007' is no int key: its row prints as 7).  A key that fails is
 * reported without one: enqueueing it would deliver another row, or fail
 * forever.
 */
static bool
key_is_canonical(PolyglotRoute *route, List *key)
{
	CanonicalCheck check = {route, key, true};

	if (list_length(key) != list_length(route->key_typids))
		return false;
	return polyglot_try(check_canonical, &check) && check.canonical;
}

/* Pass 2: the store's keys that no row of the source accounts for */
static void
find_extra(VerifyState *vs, bool repair)
{
	PolyglotRoute *route = vs->route;
	SPIPlanPtr	insert;
	Oid			argtypes[3] = {TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID};
	int			ncols = list_length(route->key_columns);
	StringInfoData cols,
				texts,
				params,
				sql;
	void	   *state = NULL;
	List	   *names = NIL;
	List	   *keys;
	ListCell   *kc,
			   *nc;
	MemoryContext page_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot verify page",
												   ALLOCSET_DEFAULT_SIZES);

	if (SPI_execute("CREATE TEMPORARY TABLE pg_polyglot_verify_keys "
					"(name pg_catalog.text, key pg_catalog.text[]) ON COMMIT DROP",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_polyglot: creating the table of store keys failed");
	/* a page per statement: names, keys as rows of a 2-D array, and which keys exist */
	insert = SPI_prepare("INSERT INTO pg_temp.pg_polyglot_verify_keys "
						 "SELECT $1[i], CASE WHEN $3[i] THEN ARRAY(SELECT k FROM "
						 "  unnest($2[i:i][:]) WITH ORDINALITY AS u(k, o) ORDER BY o) END "
						 "FROM pg_catalog.generate_subscripts($1, 1) AS i", 3, argtypes);
	if (insert == NULL)
		elog(ERROR, "pg_polyglot: preparing to record store keys failed");

	for (;;)
	{
		List	   *page;
		ListCell   *lc;
		MemoryContext old;
		int			n,
					i = 0;
		Datum	   *names_d;
		Datum	   *keys_d;
		Datum	   *valid;
		int			dims[2];
		int			lbs[2] = {1, 1};
		Datum		args[3];

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(page_cxt);
		page = vs->sink->store_keys(route, &state, vs->out_cxt);
		if (page == NIL)
		{
			MemoryContextSwitchTo(old);
			break;
		}
		n = list_length(page);
		names_d = palloc(sizeof(Datum) * n);
		keys_d = palloc(sizeof(Datum) * n * ncols);
		valid = palloc(sizeof(Datum) * n);
		foreach(lc, page)
		{
			PolyglotStoreKey *sk = (PolyglotStoreKey *) lfirst(lc);
			bool		has_key = list_length(sk->key) == ncols;
			int			c;

			names_d[i] = CStringGetTextDatum(sk->name);
			valid[i] = BoolGetDatum(has_key);
			for (c = 0; c < ncols; c++)
				keys_d[i * ncols + c] = CStringGetTextDatum(has_key ? (char *) list_nth(sk->key, c) : "");
			i++;
		}
		dims[0] = n;
		dims[1] = ncols;
		args[0] = PointerGetDatum(construct_array(names_d, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_md_array(keys_d, NULL, 2, dims, lbs, TEXTOID, -1,
													 false, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(valid, n, BOOLOID, 1, true,
												  TYPALIGN_CHAR));
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(insert, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "pg_polyglot: recording store keys failed");
		MemoryContextReset(page_cxt);
	}
	MemoryContextDelete(page_cxt);

	initStringInfo(&cols);
	initStringInfo(&texts);
	initStringInfo(&params);
	key_sql(route, &cols, &texts, &params);
	initStringInfo(&sql);
	/*
	 * A join, not "key IS NULL OR NOT EXISTS (...)": that is a subplan run
	 * once per store key unless its hash table fits in hash_mem, quadratic
	 * for a large table (PostgreSQL 14's hash_mem is half of 15's).
	 */
	/* a key whose row the route's filter does not take is the store's too many */
	appendStringInfo(&sql,
					 "SELECT v.name, v.key FROM pg_temp.pg_polyglot_verify_keys v "
					 "LEFT JOIN ONLY %s t ON %s = v.key%s%s%s WHERE t.ctid IS NULL "
					 "ORDER BY v.name",
					 route->source_name, texts.data,
					 polyglot_route_filter(route) ? " AND (" : "",
					 polyglot_route_filter(route) ? polyglot_route_filter(route) : "",
					 polyglot_route_filter(route) ? ")" : "");
	/* the table's owner reads the store's keys, as it reads the table */
	if (route->source_owner != vs->caller &&
		SPI_execute(psprintf("GRANT SELECT ON pg_temp.pg_polyglot_verify_keys TO %s",
							 quote_identifier(GetUserNameFromId(route->source_owner, false))),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_polyglot: granting the table of store keys failed");
	as_table_owner(vs);
	/* not read-only: the query must see the rows just inserted */
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_polyglot: comparing the store's keys with %s failed", route->source_name);
	keys = result_keys(2, vs->out_cxt, &names);
	forboth(kc, keys, nc, names)
	{
		List	   *key = (List *) lfirst(kc);

		if (key != NIL && !key_is_canonical(route, key))
			key = NIL;
		report(vs, "extra", key, (char *) lfirst(nc), repair);
	}
	as_caller(vs);
	if (SPI_execute("DROP TABLE pg_temp.pg_polyglot_verify_keys", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_polyglot: dropping the table of store keys failed");
}

/* Enqueues the keys to repair, as the capture trigger writes keys. */
static int64
enqueue_repairs(VerifyState *vs)
{
	int			ncols = list_length(vs->route->key_columns);
	int			total = list_length(vs->repairs);
	Datum	   *elems = palloc(sizeof(Datum) * Max(total * ncols, 1));
	ListCell   *lc;
	int			k = 0;

	foreach(lc, vs->repairs)
	{
		List	   *key = (List *) lfirst(lc);
		int			c;

		for (c = 0; c < ncols; c++)
			elems[k * ncols + c] = CStringGetTextDatum((char *) list_nth(key, c));
		k++;
	}
	if (total > 0)
		polyglot_outbox_append_keys(vs->route->id, 'B', elems, total, ncols);
	if (total > 0 && SPI_execute("SELECT polyglot._wake()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_polyglot: waking the worker failed");
	return total;
}

/*
 * polyglot._verify_reindex(route, repair, index): the route is compared
 * with the index that polyglot.reindex() is filling (its options'
 * "reindex", which must be that index), as if that were the route's
 * "index".  Repairs go to the route, which writes to both.
 */
static void
verify_reindex_target(PolyglotRoute *route, const char *expected)
{
	JsonbValue	v;
	JsonbValue *index;
	JsonbContainer *reindex;
	StringInfoData buf;

	if (!getKeyJsonValueFromContainer(&route->options->root, "reindex", 7, &v) ||
		v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d has no reindex under way", route->id)));
	reindex = v.val.binary.data;
	index = getKeyJsonValueFromContainer(reindex, "index", 5, NULL);
	if (index == NULL || index->type != jbvString ||
		strlen(expected) != (size_t) index->val.string.len ||
		strncmp(expected, index->val.string.val, index->val.string.len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("route %d has no reindex into index \"%s\" under way", route->id, expected)));
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"index\":");
	escape_json(&buf, pnstrdup(index->val.string.val, index->val.string.len));
	appendStringInfoChar(&buf, '}');
	route->options = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
														JsonbPGetDatum(route->options),
														DirectFunctionCall1(jsonb_in,
																			CStringGetDatum(buf.data))));
	route->store_options = NULL;
}

Datum
polyglot_verify(PG_FUNCTION_ARGS)
{
	int32		route_id = PG_GETARG_INT32(0);
	bool		repair = PG_GETARG_BOOL(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext per_query;
	MemoryContext old;
	VerifyState vs;
	List	   *routes;
	const char *why;
	Oid			save_userid;
	int			save_sec_context;
	int			owner_sec_context;
	int			guc_nestlevel;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("polyglot.verify() must be called in a FROM clause")));

	memset(&vs, 0, sizeof(vs));
	per_query = rsinfo->econtext->ecxt_per_query_memory;
	old = MemoryContextSwitchTo(per_query);
	if (get_call_result_type(fcinfo, NULL, &vs.tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_polyglot: polyglot.verify() must return a row type");
	vs.tupdesc = CreateTupleDescCopy(vs.tupdesc);
	vs.tupstore = tuplestore_begin_heap(true, false, work_mem);
	vs.out_cxt = AllocSetContextCreate(per_query, "pg_polyglot verify", ALLOCSET_DEFAULT_SIZES);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = vs.tupstore;
	rsinfo->setDesc = vs.tupdesc;
	MemoryContextSwitchTo(old);

	/*
	 * The caller must be allowed to operate the route, and to read its
	 * table.  The route and its pending events are read, and repairs
	 * enqueued, as the owner of the extension's tables; the table is read
	 * as its owner (as_table_owner()).
	 */
	polyglot_check_route_privilege(route_id);

	/*
	 * Rows render as the worker renders them, whatever this session's
	 * settings; part of it runs as the extension's owner, with a
	 * search_path holding no schema of the caller's.
	 */
	guc_nestlevel = polyglot_fix_settings(false);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	owner_sec_context = save_sec_context | SECURITY_LOCAL_USERID_CHANGE;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	SetUserIdAndSecContext(polyglot_extension_owner(), owner_sec_context);
	routes = polyglot_load_routes(route_id, vs.out_cxt);
	if (routes == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("route %d does not exist", route_id)));
	vs.route = (PolyglotRoute *) linitial(routes);
	if (PG_NARGS() > 2)
		verify_reindex_target(vs.route, text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!vs.route->source_exists)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the table of route %d is gone", route_id)));
	if (vs.route->server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the server of route %d no longer exists", route_id)));
	if (vs.route->access_error)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", vs.route->access_error)));
	vs.sink = polyglot_sink_for(vs.route);
	why = vs.sink && vs.sink->verify_unsupported ? vs.sink->verify_unsupported(vs.route) : NULL;
	if (vs.sink == NULL || vs.sink->verify == NULL || vs.sink->store_keys == NULL || why)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("route %d (%s to server \"%s\") cannot be verified", route_id,
						vs.route->source_name, vs.route->server->servername),
				 why ? errdetail("%s", why) : 0));

	if (polyglot_outbox_rows(route_id, '\0', 1) > 0)
		ereport(NOTICE,
				(errmsg("route %d has changes waiting in the outbox", route_id),
				 errdetail("Their keys may show as drift until the worker delivers them.")));
	SetUserIdAndSecContext(save_userid, save_sec_context);

	/* the caller may read the table (verify tells what its rows hold) */
	if (pg_class_aclcheck(vs.route->source_relid, save_userid, ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(vs.route->source_relid));
	vs.caller = save_userid;
	vs.caller_sec_context = save_sec_context;

	if (vs.sink->prepare)
		vs.sink->prepare(vs.route);
	as_table_owner(&vs);
	compare_source(&vs, repair);
	as_caller(&vs);
	find_extra(&vs, repair);
	if (repair)
	{
		int64		n;

		SetUserIdAndSecContext(polyglot_extension_owner(), owner_sec_context);
		n = enqueue_repairs(&vs);
		SetUserIdAndSecContext(save_userid, save_sec_context);

		if (n > 0)
			ereport(NOTICE,
					(errmsg("route %d: " INT64_FORMAT " keys enqueued for repair", route_id, n)));
	}
	SPI_finish();
	AtEOXact_GUC(true, guc_nestlevel);
	return (Datum) 0;
}
