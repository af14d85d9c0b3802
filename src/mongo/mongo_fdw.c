/*-------------------------------------------------------------------------
 *
 * mongo_fdw.c
 *		The polyglot_mongo foreign-data wrapper: its handler, the planner's
 *		callbacks, and the scan of a MongoDB collection.
 *
 * Columns map to document fields by name, or by the column option `field`
 * (a dotted path into subdocuments).  A jsonb or json column without a
 * `field` option receives the whole document.  Only the fields the query
 * needs are fetched (a projection), except from FerretDB, which is sent an
 * aggregation pipeline of the find's filter, sort and limit instead and
 * returns whole documents faster than it projects them
 * (polyglot_mongo_build_find_pipeline).
 *
 * Joins: the inner side of a nested loop gets a parameterized path, whose
 * filter takes the outer row's value, so each outer row fetches only its
 * matching documents.
 *
 * Row estimates come from the server's document count
 * (use_remote_estimate, on by default).  The pushdown option of the table
 * or server, or the setting polyglot.mongo_pushdown, turns all pushdown
 * off.
 *
 * What MongoDB can evaluate, and the request that asks it: mongo_query.c.
 * INSERT, UPDATE and DELETE: mongo_modify.c.  IMPORT FOREIGN SCHEMA:
 * mongo_import.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"

#include "pg_polyglot.h"
#include "mongo/mongo.h"

/* ---------------------------------------------------------------- options */

/*
 * Fills info's columns from the table's definition: each column's field
 * (NULL for a jsonb or json column that receives the whole document), type
 * and NOT NULL, and which columns are dropped.  Allocates in the current
 * memory context.
 */
void
polyglot_mongo_load_columns(Oid relid, MongoRelInfo *info)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	info->natts = desc->natts;
	info->columns = palloc0(sizeof(MongoColumn) * Max(desc->natts, 1));
	info->dropped = palloc0(sizeof(bool) * Max(desc->natts, 1));
	info->notnull = palloc0(sizeof(bool) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		List	   *options;
		const char *field;

		if (att->attisdropped)
		{
			info->dropped[i] = true;
			continue;
		}
		options = GetForeignColumnOptions(relid, att->attnum);
		field = polyglot_option_string(options, "field", NULL);
		info->columns[i].typid = att->atttypid;
		info->columns[i].typmod = att->atttypmod;
		info->notnull[i] = att->attnotnull;
		if (field)
			info->columns[i].field = pstrdup(field);
		else if (att->atttypid == JSONBOID || att->atttypid == JSONOID)
			info->columns[i].field = NULL;	/* the whole document */
		else
			info->columns[i].field = pstrdup(NameStr(att->attname));
	}
	table_close(rel, NoLock);
}

/*
 * Fills info from the options of the foreign table and its server (the
 * database, ereporting when neither names one; the collection, pushdown,
 * use_remote_estimate, batch_size) and with the table's columns.
 */
void
polyglot_mongo_load_table(Oid relid, MongoRelInfo *info)
{
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	const char *db = polyglot_option_string(table->options, "database", NULL);
	DefElem    *def;

	polyglot_load_planner_options(table, server, polyglot_mongo_pushdown, &info->pushdown,
								  &info->use_remote_estimate);
	def = polyglot_table_option(table, server, "batch_size");
	info->batch_size = def ? polyglot_option_int(def) : POLYGLOT_DEFAULT_MONGO_BATCH_SIZE;

	if (db == NULL)
		db = polyglot_option_string(server->options, "database", NULL);
	if (db == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no MongoDB database", get_rel_name(relid)),
				 errhint("Set the database option of the foreign table or of server \"%s\".",
						 server->servername)));
	info->database = pstrdup(db);
	info->collection = pstrdup(polyglot_option_string(table->options, "collection",
													  get_rel_name(relid)));
	polyglot_mongo_load_columns(relid, info);
}

/* ---------------------------------------------------------------- planning */

/*
 * The plan's fdw_private, by position.  A scan of a table has no aggregate
 * list; an aggregate scan (scanrelid 0) has one entry per column of its
 * fdw_scan_tlist.
 */
#define FP_DATABASE		0
#define FP_COLLECTION	1
#define FP_FILTER		2		/* ("and", items) or NIL */
#define FP_FIELDS		3		/* of Integer: is column attnum - 1 wanted */
#define FP_SORT			4		/* (field, 1 | -1) pairs, or NIL */
#define FP_LIMIT		5		/* Integer: documents to ask for, 0 for all */
#define FP_AGGREGATE	6		/* of (kind, field, typid, typmod), or NIL */

/* Planner state of a pushed-down aggregation (an upper relation's fdw_private) */
typedef struct MongoAggInfo
{
	MongoRelInfo *base;			/* the scanned table */
	List	   *scan_tlist;		/* of TargetEntry: group keys and aggregates */
	List	   *outputs;		/* per scan_tlist entry: (kind, field, typid, typmod) */
} MongoAggInfo;

/* Costs: a round trip to start, a BSON document to fetch and decode per row */
#define MONGO_STARTUP_COST	25.0
#define MONGO_ROW_COST		0.1
#define MONGO_SCAN_COST		0.001	/* per document the server looks at */
#define MONGO_SORT_COST		0.01	/* per document the server sorts */


/* The planner's connection to the table's server, with the server's flavor known */
static MongoConn *
plan_connection(MongoRelInfo *info)
{
	ForeignServer *server;
	UserMapping *user = polyglot_table_user_mapping(info->relid, info->userid, &server);
	MongoConn  *conn = polyglot_mongo_get_connection(server, user);

	/* once per connection: it also reports an unreachable server clearly */
	polyglot_mongo_read_flavor(conn);
	return conn;
}

/*
 * The number of documents in the collection from the server's metadata:
 * the $collStats stage's count (one document per shard of a sharded
 * collection, summed), which MongoDB and FerretDB answer without reading
 * the documents, where the count command may scan them (FerretDB's does);
 * the count command's estimate where there is no $collStats.  -1 when the
 * server has no answer within a second (a view, a busy server); an
 * unreachable server fails the query here, as the scan would, within the
 * connect timeout.
 */
static double
remote_document_count(MongoRelInfo *info)
{
	MongoConn  *conn = plan_connection(info);
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	bson_t	   *pipeline = BCON_NEW("pipeline", "[", "{", "$collStats", "{", "count", "{", "}",
									"}", "}", "]");
	/* planning waits a second at most for an estimate */
	bson_t	   *opts = BCON_NEW("maxTimeMS", BCON_INT32(1000));
	const bson_t *doc;
	bson_error_t error;
	double		n = 0;
	bool		seen = false;

	coll = mongoc_client_get_collection(mongo_client(conn), info->database, info->collection);
	cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, opts, NULL);
	while (mongoc_cursor_next(cursor, &doc))
	{
		bson_iter_t iter;

		if (bson_iter_init_find(&iter, doc, "count") && BSON_ITER_HOLDS_NUMBER(&iter))
		{
			n += (double) bson_iter_as_int64(&iter);
			seen = true;
		}
	}
	if (mongoc_cursor_error(cursor, &error))
	{
		int64_t		count;

		/*
		 * A cancel cut the aggregate short (see mongo_stream.c): serve it
		 * now rather than try the estimate on the same client.
		 */
		if (QueryCancelPending || ProcDiePending)
		{
			mongoc_cursor_destroy(cursor);
			mongoc_collection_destroy(coll);
			bson_destroy(pipeline);
			bson_destroy(opts);
			polyglot_mongo_report_error(conn, &error, "a document count");
		}

		/* a server without $collStats: the count command's estimate */
		count = mongoc_collection_estimated_document_count(coll, opts, NULL, NULL, &error);
		seen = count >= 0;
		n = (double) count;
		if (!seen)
			elog(DEBUG1, "pg_polyglot: no document count for %s.%s: %s",
				 info->database, info->collection, error.message);
	}
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	bson_destroy(pipeline);
	bson_destroy(opts);
	return seen ? n : -1;
}

static void
mongoGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	MongoRelInfo *info = palloc0(sizeof(MongoRelInfo));
	ListCell   *lc;
	double		tuples = -1;
	bool		unique = false;

	baserel->fdw_private = info;
	polyglot_mongo_load_table(foreigntableid, info);
	info->relid = foreigntableid;
	info->userid = baserel->userid;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		List	   *item = NIL;
		int			nvalues = list_length(info->values);

		if (info->pushdown)
			item = polyglot_mongo_deparse_expr(ri->clause, baserel, info);
		if (item != NIL)
		{
			info->items = lappend(info->items, item);
			info->remote_conds = lappend(info->remote_conds, ri);
			/* _id = value finds one document at most */
			if (polyglot_mongo_is_id_equality(item))
				unique = true;
		}
		else
		{
			/* forget values a half-deparsed clause left behind */
			info->values = list_truncate(info->values, nvalues);
			info->local_conds = lappend(info->local_conds, ri);
		}
	}

	/*
	 * The collection's size: the server's estimate, else what ANALYZE left
	 * in pg_class (nothing: foreign tables of this wrapper are not
	 * analyzed), else a thousand documents.  The quals' selectivities are
	 * PostgreSQL's defaults, as there are no column statistics.
	 */
	if (info->use_remote_estimate)
		tuples = remote_document_count(info);
	polyglot_set_rel_rows(root, baserel, tuples, 1000, unique);
}

/* Does a join clause go to MongoDB?  (PolyglotJoinClauseUsable) */
static bool
join_clause_pushes(RestrictInfo *ri, RelOptInfo *baserel, void *arg)
{
	MongoRelInfo *info = (MongoRelInfo *) arg;
	int			nvalues = list_length(info->values);
	List	   *item = polyglot_mongo_deparse_expr(ri->clause, baserel, info);

	info->values = list_truncate(info->values, nvalues);
	return item != NIL;
}

static void
mongoGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	MongoRelInfo *info = (MongoRelInfo *) baserel->fdw_private;
	Cost		startup = MONGO_STARTUP_COST;
	int64		limit = info->pushdown ? polyglot_query_limit(root, baserel, info->local_conds == NIL) : 0;
	List	   *sort = NIL;

	/* unordered, and sorted by the server for the query's ORDER BY */
	if (info->pushdown && root->query_pathkeys != NIL)
		sort = polyglot_mongo_sort_spec(baserel, info, root->query_pathkeys);
	polyglot_add_scan_paths(root, baserel, limit, sort, startup,
							baserel->tuples * MONGO_SCAN_COST, MONGO_ROW_COST, MONGO_SORT_COST);

	/*
	 * The inner side of a nested loop: a path parameterized by the other
	 * relation's column for each equality (from an equivalence class, as
	 * the planner keeps them) on a column that pushes down, so that each
	 * outer row asks MongoDB for its matching documents only.
	 */
	if (info->pushdown && baserel->has_eclass_joins)
	{
		List	   *candidates = NIL;
		int			attnum;

		for (attnum = 1; attnum <= info->natts; attnum++)
		{
			if (info->dropped[attnum - 1] || info->columns[attnum - 1].field == NULL ||
				!polyglot_mongo_pushable_type(info->columns[attnum - 1].typid, false,
											  InvalidOid))
				continue;
			candidates = list_concat(candidates,
									 polyglot_column_join_clauses(root, baserel, attnum));
		}
		polyglot_add_parameterized_paths(root, baserel, candidates, join_clause_pushes, info,
										 startup, MONGO_ROW_COST);
	}
}

/* ---------------------------------------------------------------- aggregate pushdown */

/*
 * GROUP BY and aggregates become an aggregation pipeline: the scan's
 * filter as $match, then one $group.  Pushed when every condition of the
 * WHERE clause pushes, there is no HAVING or grouping set, every group key
 * is a column whose values group as SQL groups them (NULL and a missing
 * field are one group only with a single key), and every aggregate has a
 * kind above.  The target list may compute on top of those (count(*) * 2).
 */
static void
mongoGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage, RelOptInfo *input_rel,
						  RelOptInfo *output_rel, void *extra)
{
	MongoRelInfo *info;
	Query	   *parse = root->parse;
	PathTarget *target = output_rel->reltarget;
	MongoAggInfo *agg;
	List	   *group_attnums = NIL;
	ListCell   *lc;
	int			i;
	double		ngroups = 1;
	Cost		startup;

	if (!polyglot_grouping_pushable(root, stage, input_rel, output_rel, extra, true))
		return;
	info = (MongoRelInfo *) input_rel->fdw_private;
	if (!info->pushdown || info->local_conds != NIL)
		return;

	agg = palloc0(sizeof(MongoAggInfo));
	agg->base = info;

	/* the group keys first, as they appear in the grouping target */
	i = 0;
	foreach(lc, target->exprs)
	{
		Expr	   *expr = (Expr *) lfirst(lc);
		Index		sgref = get_pathtarget_sortgroupref(target, i++);
		int			attnum;
		MongoColumn *col;
		Oid			collation;

		if (sgref == 0 || get_sortgroupref_clause_noerr(sgref, parse->groupClause) == NULL)
			continue;
		attnum = polyglot_mongo_column_attnum(expr, input_rel, info);
		if (attnum == 0)
			return;
		col = &info->columns[attnum - 1];
		collation = exprCollation((Node *) expr);
		if (!polyglot_mongo_pushable_type(col->typid, false, InvalidOid) ||
			(OidIsValid(collation) && !get_collation_isdeterministic(collation)))
			return;
		group_attnums = lappend_int(group_attnums, attnum);
		agg->scan_tlist = lappend(agg->scan_tlist,
								  makeTargetEntry(copyObject(expr),
												  list_length(agg->scan_tlist) + 1, NULL, false));
		agg->outputs = lappend(agg->outputs,
							   list_make4(makeString(MONGO_AGG_GROUP), makeString(col->field),
										  makeInteger((int) col->typid),
										  makeInteger(col->typmod)));
	}
	if (list_length(group_attnums) > 1)
	{
		foreach(lc, group_attnums)
			if (!polyglot_mongo_column_not_null(info, lfirst_int(lc)))
				return;
	}

	/* then the aggregates the rest of the target uses */
	foreach(lc, target->exprs)
	{
		List	   *vars = pull_var_clause((Node *) lfirst(lc), PVC_INCLUDE_AGGREGATES);
		ListCell   *lv;

		foreach(lv, vars)
		{
			Node	   *node = (Node *) lfirst(lv);
			const char *kind;
			const char *field;
			Aggref	   *aggref;

			if (IsA(node, Var))
			{
				/* outside an aggregate, a column must be a group key */
				if (!tlist_member((Expr *) node, agg->scan_tlist))
					return;
				continue;
			}
			if (!IsA(node, Aggref))
				return;
			aggref = (Aggref *) node;
			if (tlist_member((Expr *) aggref, agg->scan_tlist))
				continue;
			kind = polyglot_mongo_aggregate_kind(aggref, input_rel, info, &field);
			if (kind == NULL)
				return;
			agg->scan_tlist = lappend(agg->scan_tlist,
									  makeTargetEntry((Expr *) copyObject(aggref),
													  list_length(agg->scan_tlist) + 1,
													  NULL, false));
			agg->outputs = lappend(agg->outputs,
								   list_make4(makeString((char *) kind),
											  makeString(field ? (char *) field : ""),
											  makeInteger((int) aggref->aggtype),
											  makeInteger(-1)));
		}
	}

	/*
	 * FerretDB 1.x hands the documents of a group to the first accumulator
	 * only (the others see none): one aggregate per pipeline there.
	 */
	if (list_length(agg->outputs) - list_length(group_attnums) > 1 &&
		plan_connection(info)->ferretdb)
		return;

	if (parse->groupClause)
	{
		List	   *exprs = get_sortgrouplist_exprs(parse->groupClause, parse->targetList);

#if PG_VERSION_NUM >= 140000
		ngroups = estimate_num_groups(root, exprs, input_rel->rows, NULL, NULL);
#else
		ngroups = estimate_num_groups(root, exprs, input_rel->rows, NULL);
#endif
	}
	/* the server reads the matching documents; only the groups travel */
	startup = MONGO_STARTUP_COST + input_rel->tuples * MONGO_SCAN_COST +
		input_rel->rows * MONGO_SCAN_COST;
	output_rel->fdw_private = agg;
	add_path(output_rel, (Path *)
			 polyglot_upper_path(root, output_rel, target, ngroups, startup,
								 startup + ngroups * MONGO_ROW_COST, NIL));
}

static ForeignScan *
mongoGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	MongoRelInfo *info;
	List	   *local = NIL;
	List	   *fields = NIL;
	List	   *sort = NIL;
	int			limit = 0;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	List	   *fdw_private;
	int			i;

	if (IS_UPPER_REL(baserel))
	{
		/* an aggregation: the base scan's filter, and the groups' columns */
		MongoAggInfo *agg = (MongoAggInfo *) baserel->fdw_private;

		info = agg->base;
		fdw_private = list_make5(makeString(info->database), makeString(info->collection),
								 info->items ? list_make2(makeString("and"), info->items) : NIL,
								 NIL, NIL);
		fdw_private = lappend(fdw_private, makeInteger(0));
		fdw_private = lappend(fdw_private, agg->outputs);
		return make_foreignscan(tlist, NIL, 0, info->values, fdw_private, agg->scan_tlist,
								NIL, outer_plan);
	}

	info = (MongoRelInfo *) baserel->fdw_private;
	if (best_path->fdw_private != NIL)
	{
		sort = (List *) linitial(best_path->fdw_private);
		limit = intVal(lsecond(best_path->fdw_private));
	}
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		List	   *item = NIL;
		int			nvalues = list_length(info->values);

		if (list_member_ptr(info->remote_conds, ri))
			continue;
		/* a parameterized path's join clauses: the outer column is a value */
		if (info->pushdown && best_path->path.param_info &&
			!bms_is_subset(ri->clause_relids, baserel->relids))
			item = polyglot_mongo_deparse_expr(ri->clause, baserel, info);
		if (item != NIL)
			info->items = lappend(info->items, item);
		else
		{
			info->values = list_truncate(info->values, nvalues);
			local = lappend(local, ri->clause);
		}
	}
	/* a LIMIT is pushed only where every condition is (query_limit) */
	Assert(limit == 0 || local == NIL);

	/* the columns the query reads (target list and local quals) */
	attrs = polyglot_columns_read(baserel, local, info->natts);
	for (i = 0; i < info->natts; i++)
		fields = lappend_int(fields, bms_is_member(i + 1, attrs) && !info->dropped[i]);

	fdw_private = list_make5(makeString(info->database), makeString(info->collection),
							 info->items ? list_make2(makeString("and"), info->items) : NIL,
							 fields, sort);
	fdw_private = lappend(fdw_private, makeInteger(limit));
	fdw_private = lappend(fdw_private, NIL);
	return make_foreignscan(tlist, local, baserel->relid, info->values, fdw_private, NIL,
							NIL, outer_plan);
}

/* ---------------------------------------------------------------- execution */

static void
scan_error_context(void *arg)
{
	MongoScanState *st = (MongoScanState *) arg;
	bson_iter_t iter;
	char	   *id = NULL;

	if (st->current_doc && bson_iter_init_find(&iter, st->current_doc, "_id"))
	{
		bson_t		wrap = BSON_INITIALIZER;
		char	   *json;

		bson_append_iter(&wrap, "_id", 3, &iter);
		json = bson_as_relaxed_extended_json(&wrap, NULL);
		id = pstrdup(json);
		bson_free(json);
		bson_destroy(&wrap);
	}
	if (st->current_column && st->aggregate)
		errcontext("%s of a MongoDB aggregation of %s.%s", st->current_column,
				   st->database, st->collection);
	else if (st->current_column)
		errcontext("column \"%s\" of the MongoDB document %s in %s.%s", st->current_column,
				   id ? id : "(without _id)", st->database, st->collection);
}

/* Frees the cursor and the filter it was opened with: the next row opens another */
static void
close_cursor(MongoScanState *st)
{
	if (st->cursor)
		mongoc_cursor_destroy(st->cursor);
	st->cursor = NULL;
	if (st->built_filter)
		bson_destroy(st->built_filter);
	st->built_filter = NULL;
}

/*
 * Frees the scan's libmongoc handles, then releases its client, also when
 * the query ends in an error (a reset callback of the query's memory
 * context).  The client is pinned from the scan's start, so the cursor and
 * collection are never left to a client that another statement of the
 * transaction replaced or an error dropped: that client is freed only here.
 */
static void
release_handles(void *arg)
{
	MongoScanState *st = (MongoScanState *) arg;

	close_cursor(st);
	polyglot_mongo_release_pinned(NULL, &st->coll, &st->pin);
}

static void
mongoBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	/* an aggregation (scanrelid 0) scans the one table of its query */
	RangeTblEntry *rte = exec_rt_fetch(polyglot_scan_rtindex(plan), estate);
	Oid			relid = rte->relid;
	ForeignServer *server;
	UserMapping *user = polyglot_table_user_mapping(relid, polyglot_scan_user(plan, estate),
													&server);
	MongoScanState *st = palloc0(sizeof(MongoScanState));
	MongoRelInfo info;
	List	   *wanted_list;
	ListCell   *lc;
	int			i;

	node->fdw_state = st;
	st->database = strVal(list_nth(plan->fdw_private, FP_DATABASE));
	st->collection = strVal(list_nth(plan->fdw_private, FP_COLLECTION));
	st->filter = (List *) list_nth(plan->fdw_private, FP_FILTER);
	wanted_list = (List *) list_nth(plan->fdw_private, FP_FIELDS);
	st->sort = (List *) list_nth(plan->fdw_private, FP_SORT);
	st->limit = intVal(list_nth(plan->fdw_private, FP_LIMIT));
	st->aggregate = (List *) list_nth(plan->fdw_private, FP_AGGREGATE);
	memset(&info, 0, sizeof(info));
	polyglot_mongo_load_columns(relid, &info);
	st->natts = info.natts;
	st->columns = info.columns;
	st->wanted = palloc0(sizeof(bool) * Max(info.natts, 1));
	i = 0;
	foreach(lc, wanted_list)
	{
		if (i < info.natts)
			st->wanted[i] = lfirst_int(lc) != 0;
		if (st->wanted[i] && st->columns[i].field == NULL && !info.dropped[i])
			st->whole_document = true;
		if (st->wanted[i] && st->columns[i].field)
			st->fields = lappend(st->fields, st->columns[i].field);
		i++;
	}
	st->value_states = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot mongo row",
										ALLOCSET_DEFAULT_SIZES);
	st->conn = polyglot_mongo_get_connection(server, user);
	/* what the filter's values look like depends on the server, in EXPLAIN too */
	polyglot_mongo_read_flavor(st->conn);
	st->bson_flags = polyglot_mongo_bson_flags(st->conn);
	st->find_pipeline = st->conn->ferretdb && st->aggregate == NIL;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	{
		MemoryContextCallback *cb = MemoryContextAlloc(estate->es_query_cxt,
													   sizeof(MemoryContextCallback));

		cb->func = release_handles;
		cb->arg = st;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
	}
	polyglot_conncache_pin(&st->conn->base, &st->pin);
	st->coll = mongoc_client_get_collection((mongoc_client_t *) st->pin.handle,
											st->database, st->collection);
}

static void
start_cursor(ForeignScanState *node)
{
	MongoScanState *st = (MongoScanState *) node->fdw_state;
	bson_t	   *opts;

	st->built_filter = polyglot_mongo_build_filter(st->filter, st->value_states,
												   node->ss.ps.ps_ExprContext, st->bson_flags,
												   false);
	st->aggregate_rows = false;
	st->aggregate_done = false;
	st->eof = false;
	if (st->aggregate)
	{
		bson_t	   *pipeline = polyglot_mongo_build_pipeline(st->aggregate,
															 st->built_filter);

		opts = polyglot_mongo_build_options(st);
		st->cursor = mongoc_collection_aggregate(st->coll, MONGOC_QUERY_NONE, pipeline, opts,
												 NULL);
		bson_destroy(pipeline);
		bson_destroy(opts);
		return;
	}
	opts = polyglot_mongo_build_options(st);
	if (st->find_pipeline)
	{
		bson_t	   *pipeline = polyglot_mongo_build_find_pipeline(st, st->built_filter);

		st->cursor = mongoc_collection_aggregate(st->coll, MONGOC_QUERY_NONE, pipeline, opts,
												 NULL);
		bson_destroy(pipeline);
		bson_destroy(opts);
		return;
	}
	if (st->sort)
	{
		bson_t	   *sort = polyglot_mongo_build_sort(st->sort);

		bson_append_document(opts, "sort", 4, sort);
		bson_destroy(sort);
	}
	if (st->limit > 0)
		bson_append_int64(opts, "limit", 5, st->limit);
	{
		bson_t	   *proj = polyglot_mongo_build_projection(st);

		if (!bson_empty(proj))
			bson_append_document(opts, "projection", -1, proj);
		bson_destroy(proj);
	}
	st->cursor = mongoc_collection_find_with_opts(st->coll, st->built_filter, opts, NULL);
	bson_destroy(opts);
}

/*
 * An aggregation's row: group keys from _id, aggregates from aN.  A sum
 * MongoDB had to make a double of (it overflowed 64-bit integers, or a
 * value was not an integer) converts only while the double is exact.
 */
static void
store_aggregate_row(MongoScanState *st, TupleTableSlot *slot, const bson_t *doc)
{
	ListCell   *lc;
	int			n = 0;
	int			ngroups = polyglot_mongo_aggregate_group_count(st->aggregate);

	foreach(lc, st->aggregate)
	{
		List	   *out = (List *) lfirst(lc);
		const char *kind = strVal(linitial(out));
		Oid			typid = (Oid) intVal(lthird(out));
		int32		typmod = intVal(lfourth(out));
		bson_iter_t iter;
		bool		found;
		char		key[20];

		slot->tts_isnull[n] = true;
		slot->tts_values[n] = (Datum) 0;
		st->current_column = psprintf(strcmp(kind, MONGO_AGG_GROUP) == 0 ? "group key \"%s\"" :
									  strcmp(kind, MONGO_AGG_SUM) == 0 ? "sum of \"%s\"" :
									  "count%s",
									  strVal(lsecond(out)));
		if (strcmp(kind, MONGO_AGG_GROUP) == 0)
			snprintf(key, sizeof(key), ngroups > 1 ? "_id.g%d" : "_id", n);
		else
			snprintf(key, sizeof(key), "a%d", n);
		found = bson_iter_init(&iter, doc) &&
			(strchr(key, '.') ? bson_iter_find_descendant(&iter, key, &iter) :
			 bson_iter_find(&iter, key));
		if (found)
		{
			if (strcmp(kind, MONGO_AGG_SUM) == 0 && BSON_ITER_HOLDS_DOUBLE(&iter) &&
				(fabs(bson_iter_double(&iter)) >= 9007199254740992.0 ||
				 bson_iter_double(&iter) != floor(bson_iter_double(&iter))))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("a sum computed by MongoDB is not an exact integer"),
						 errdetail("MongoDB returned the double %g: the sum overflowed 64 bits, or a summed value is not an integer.",
								   bson_iter_double(&iter)),
						 errhint("Set polyglot.mongo_pushdown to off to sum in PostgreSQL.")));
			slot->tts_values[n] = polyglot_bson_to_datum(&iter, typid, typmod,
														 &slot->tts_isnull[n]);
		}
		n++;
	}
	st->current_column = NULL;
}

/*
 * The row of an aggregation without GROUP BY over no documents: SQL gives
 * one row (count 0, sum NULL) where $group gives none.
 */
static void
store_empty_aggregate_row(MongoScanState *st, TupleTableSlot *slot)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, st->aggregate)
	{
		const char *kind = strVal(linitial((List *) lfirst(lc)));

		slot->tts_isnull[n] = strcmp(kind, MONGO_AGG_COUNT) != 0;
		slot->tts_values[n] = Int64GetDatum(0);
		n++;
	}
}

static TupleTableSlot *
mongoIterateForeignScan(ForeignScanState *node)
{
	MongoScanState *st = (MongoScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	const bson_t *doc;
	bson_error_t error;
	ErrorContextCallback errcb;
	MemoryContext old;
	int			i;

	if (st->cursor == NULL)
		start_cursor(node);
	ExecClearTuple(slot);
	/* libmongoc reports an error when an exhausted cursor is advanced */
	if (st->eof)
		return slot;
	if (!mongoc_cursor_next(st->cursor, &doc))
	{
		st->eof = true;
		if (mongoc_cursor_error(st->cursor, &error))
		{
			PolyglotConnPin pin = st->pin;

			/* the handles go, and the client may with them */
			release_handles(st);
			polyglot_mongo_report_pinned_error(st->conn, &pin, &error,
									  st->aggregate || st->find_pipeline ?
									  "an aggregate" : "a find");
		}
		if (st->aggregate && !st->aggregate_rows && !st->aggregate_done &&
			polyglot_mongo_aggregate_group_count(st->aggregate) == 0)
		{
			st->aggregate_done = true;
			store_empty_aggregate_row(st, slot);
			ExecStoreVirtualTuple(slot);
		}
		return slot;
	}

	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	errcb.callback = scan_error_context;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	st->current_doc = doc;
	if (st->aggregate)
	{
		st->aggregate_rows = true;
		store_aggregate_row(st, slot, doc);
		st->current_doc = NULL;
		error_context_stack = errcb.previous;
		MemoryContextSwitchTo(old);
		ExecStoreVirtualTuple(slot);
		return slot;
	}
	for (i = 0; i < st->natts; i++)
	{
		MongoColumn *col = &st->columns[i];
		bson_iter_t iter;

		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (!st->wanted[i])
			continue;
		st->current_column = NameStr(TupleDescAttr(slot->tts_tupleDescriptor, i)->attname);
		if (col->field == NULL)
		{
			/* the whole document, as relaxed Extended JSON */
			char	   *json = polyglot_bson_document_json(doc);
			Oid			infunc,
						ioparam;

			getTypeInputInfo(col->typid, &infunc, &ioparam);
			slot->tts_values[i] = OidInputFunctionCall(infunc, json, ioparam, col->typmod);
			slot->tts_isnull[i] = false;
			continue;
		}
		if (!bson_iter_init(&iter, doc))
			continue;
		if (strchr(col->field, '.'))
		{
			bson_iter_t found;

			if (bson_iter_find_descendant(&iter, col->field, &found))
				slot->tts_values[i] = polyglot_bson_to_datum(&found, col->typid, col->typmod,
															 &slot->tts_isnull[i]);
		}
		else if (bson_iter_find(&iter, col->field))
			slot->tts_values[i] = polyglot_bson_to_datum(&iter, col->typid, col->typmod,
														 &slot->tts_isnull[i]);
	}
	st->current_column = NULL;
	st->current_doc = NULL;
	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
mongoReScanForeignScan(ForeignScanState *node)
{
	close_cursor((MongoScanState *) node->fdw_state);
}

static void
mongoEndForeignScan(ForeignScanState *node)
{
	MongoScanState *st = (MongoScanState *) node->fdw_state;

	if (st)
		release_handles(st);
}

static void
mongoExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	MongoScanState *st = (MongoScanState *) node->fdw_state;

	ExplainPropertyText("Remote Collection", psprintf("%s.%s", st->database, st->collection), es);
	if (es->verbose)
		polyglot_mongo_explain_request(st, node->ss.ps.ps_ExprContext, es);
}

PG_FUNCTION_INFO_V1(polyglot_mongo_handler);

Datum
polyglot_mongo_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	POLYGLOT_SET_SCAN_CALLBACKS(routine, mongo);
	routine->GetForeignUpperPaths = mongoGetForeignUpperPaths;
	routine->ImportForeignSchema = polyglotMongoImportForeignSchema;
	polyglot_mongo_modify_routine(routine);
	PG_RETURN_POINTER(routine);
}
