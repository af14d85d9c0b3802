/*-------------------------------------------------------------------------
 *
 * elastic_fdw.c
 *		The polyglot_elastic foreign-data wrapper: its handler, a foreign
 *		table's columns and options, planning, and the execution of scans
 *		of Elasticsearch and OpenSearch indices.
 *
 * Columns: a column maps to the _source field of its name, or to the
 * dotted path of its `field` option.  Without a field option, a column
 * named _id holds the document's id, _score its relevance, query the
 * query_string the scan searched with (WHERE query = 'wireless
 * headphones'), _highlight (jsonb or json) the hit's highlighted fragments
 * of a search, by field (the fields of table option highlight, or every
 * field), and another jsonb or json column the whole _source.
 *
 * The wrapper's other concerns have files of their own: what the server
 * can evaluate and the JSON of the request, elastic_query.c; pages of hits
 * under a point in time, elastic_paging.c; a hit as column values,
 * elastic_hit.c; INSERT, UPDATE and DELETE through _bulk, elastic_modify.c;
 * IMPORT FOREIGN SCHEMA, elastic_import.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

/* fdw_private of a ForeignScan */
#define FP_INDEX		0		/* String */
#define FP_FILTER		1		/* items, joined by "and" */
#define FP_QUERIES		2		/* of Integer: value numbers */
#define FP_WANTED		3		/* of Integer: is column attnum - 1 read */
#define FP_SORT			4		/* of (path, asc, nulls_first) */
#define FP_LIMIT		5		/* Integer: hits to ask for, 0 for all */
#define FP_COUNT		6		/* Integer: 1 for a count(*) by _count */
#define FP_PAGE_SIZE	7		/* Integer */

/* Costs: a round trip to start, a hit to fetch and convert per row */
#define ELASTIC_STARTUP_COST	25.0
#define ELASTIC_ROW_COST		0.05
#define ELASTIC_SCAN_COST		0.001	/* per document the server looks at */


/* ---------------------------------------------------------------- options */

/*
 * The columns of a foreign table, by attnum - 1, each with where its value
 * comes from (see the file's comment); the planner-only members are left
 * for polyglot_elastic_apply_mapping.  Palloc'd in the current context.
 */
void
polyglot_elastic_load_columns(Oid relid, int *natts, ElasticColumn **columns)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ElasticColumn *cols = palloc0(sizeof(ElasticColumn) * Max(desc->natts, 1));
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		ElasticColumn *col = &cols[i];
		const char *field;
		Oid			base;

		col->ignore_above = -1;
		if (att->attisdropped)
		{
			col->kind = ECOL_DROPPED;
			continue;
		}
		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->notnull = att->attnotnull;
		base = getBaseType(att->atttypid);
		field = polyglot_option_string(GetForeignColumnOptions(relid, att->attnum), "field", NULL);
		if (field && strcmp(field, "_id") == 0)
			col->kind = ECOL_ID;
		else if (field)
		{
			col->kind = ECOL_FIELD;
			col->field = pstrdup(field);
		}
		else if (strcmp(col->name, "_id") == 0)
			col->kind = ECOL_ID;
		else if (strcmp(col->name, "_score") == 0)
			col->kind = ECOL_SCORE;
		else if (strcmp(col->name, "query") == 0)
			col->kind = ECOL_QUERY;
		else if (strcmp(col->name, "_highlight") == 0)
			col->kind = ECOL_HIGHLIGHT;
		else if (base == JSONBOID || base == JSONOID)
			col->kind = ECOL_SOURCE;
		else
		{
			col->kind = ECOL_FIELD;
			col->field = col->name;
		}
		if (col->kind == ECOL_SCORE && base != FLOAT4OID && base != FLOAT8OID &&
			base != NUMERICOID)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"_score\" of foreign table \"%s\" must be of type real, double precision or numeric",
							RelationGetRelationName(rel))));
		if (col->kind == ECOL_QUERY && base != TEXTOID && base != VARCHAROID)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"query\" of foreign table \"%s\" must be of type text",
							RelationGetRelationName(rel)),
					 errhint("A column named query takes the query_string to search with; give a document field named query a column option: OPTIONS (field 'query').")));
		if (col->kind == ECOL_HIGHLIGHT && base != JSONBOID && base != JSONOID)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"_highlight\" of foreign table \"%s\" must be of type jsonb or json",
							RelationGetRelationName(rel)),
					 errhint("A column named _highlight takes the highlighted fragments of a search; give a document field named _highlight a column option: OPTIONS (field '_highlight').")));
	}
	*natts = desc->natts;
	*columns = cols;
	table_close(rel, NoLock);
}

/* The index option, or the table's name when it is a valid index name */
char *
polyglot_elastic_table_index(ForeignTable *table, Oid relid)
{
	const char *index = polyglot_option_string(table->options, "index", NULL);

	if (index == NULL)
	{
		index = get_rel_name(relid);
		polyglot_elastic_check_index_name("index (by default the table's name)", index);
	}
	return pstrdup(index);
}

static void
load_table(Oid relid, ElasticRelInfo *info)
{
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	DefElem    *def;

	info->relid = relid;
	polyglot_load_planner_options(table, server, polyglot_elastic_pushdown, &info->pushdown,
								  &info->use_remote_estimate);
	def = polyglot_table_option(table, server, "page_size");
	info->page_size = def ? polyglot_option_int(def) : POLYGLOT_DEFAULT_ELASTIC_PAGE_SIZE;
	info->index = polyglot_elastic_table_index(table, relid);
	polyglot_elastic_load_columns(relid, &info->natts, &info->columns);
}

/* The connection of a foreign table for userid (InvalidOid: the current user) */
ElasticConn *
polyglot_elastic_table_connection(Oid relid, Oid userid)
{
	ForeignServer *server;
	UserMapping *user = polyglot_table_user_mapping(relid, userid, &server);

	return polyglot_elastic_get_connection(server, user);
}

/*
 * The number of documents in the index (GET /<index>/_count), or -1 when
 * the server does not say.
 */
static double
remote_document_count(ElasticConn *conn, const char *index)
{
	ElasticResponse response;
	char	   *path = psprintf("/%s/_count", index);
	Jsonb	   *jb;
	JsonbValue	v;

	polyglot_elastic_request(conn, "GET", path, NULL, 0, &response);
	if (response.status >= 400)
		polyglot_elastic_report_error(conn, &response, psprintf("GET %s", path));
	jb = polyglot_elastic_parse_response(conn, &response, path);
	if (!getKeyJsonValueFromContainer(&jb->root, "count", 5, &v) || v.type != jbvNumeric)
		return -1;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
}

static void
elasticGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ElasticRelInfo *info = palloc0(sizeof(ElasticRelInfo));
	ElasticConn *conn;
	ListCell   *lc;
	double		tuples = -1;
	bool		unique = false;

	baserel->fdw_private = info;
	load_table(foreigntableid, info);
	info->userid = baserel->userid;
	conn = polyglot_elastic_table_connection(foreigntableid, info->userid);
	if (info->pushdown)
	{
		List	   *mappings = polyglot_elastic_read_mappings(conn, info->index);

		polyglot_elastic_apply_mapping(info, polyglot_elastic_merged_fields(mappings));
	}

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		bool		recheck;
		List	   *item;

		switch (polyglot_elastic_add_clause(info, baserel, ri->clause, &recheck))
		{
			case ELASTIC_CLAUSE_SEARCH:
				info->remote_conds = lappend(info->remote_conds, ri);
				break;
			case ELASTIC_CLAUSE_FILTER:
				if (recheck)
					info->local_conds = lappend(info->local_conds, ri);
				else
					info->remote_conds = lappend(info->remote_conds, ri);
				item = (List *) llast(info->items);
				if (strcmp(strVal(linitial(item)), "term") == 0 &&
					strcmp(strVal(lsecond(item)), "_id") == 0 && intVal(list_nth(item, 4)) == 0)
					unique = true;
				break;
			case ELASTIC_CLAUSE_LOCAL:
				info->local_conds = lappend(info->local_conds, ri);
				break;
		}
	}

	if (info->use_remote_estimate)
		tuples = remote_document_count(conn, info->index);
	polyglot_set_rel_rows(root, baserel, tuples, POLYGLOT_DEFAULT_ELASTIC_DOCUMENTS, unique);
}

/*
 * Can a join clause search (query = outer.column) or go to the server?
 * (PolyglotJoinClauseUsable)
 */
static bool
join_clause_usable(RestrictInfo *ri, RelOptInfo *baserel, void *arg)
{
	ElasticRelInfo *info = (ElasticRelInfo *) arg;
	int			nvalues = list_length(info->values);
	bool		recheck = false;
	bool		usable;

	usable = polyglot_elastic_query_value(ri->clause, baserel, info) != NULL ||
		(info->pushdown &&
		 polyglot_elastic_deparse(ri->clause, baserel, info, &recheck) != NIL);
	info->values = list_truncate(info->values, nvalues);
	return usable;
}

static void
elasticGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ElasticRelInfo *info = (ElasticRelInfo *) baserel->fdw_private;
	Cost		startup = ELASTIC_STARTUP_COST;
	Cost		scan = baserel->tuples * ELASTIC_SCAN_COST;
	int64		limit = info->pushdown ? polyglot_query_limit(root, baserel, info->local_conds == NIL) : 0;
	List	   *sort = NIL;
	Cost		penalty = 0;

	/*
	 * The query column needed above the scan without a search of its own
	 * (a join on it): only a parameterized path, which searches with each
	 * outer value, answers that; an unparameterized scan would compare
	 * NULLs.  Make the others the last resort.
	 */
	if (info->queries == NIL)
	{
		Bitmapset  *used = NULL;
		int			a;

		pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &used);
		for (a = 1; a <= info->natts; a++)
			if (info->columns[a - 1].kind == ECOL_QUERY &&
				bms_is_member(a - FirstLowInvalidHeapAttributeNumber, used) &&
				(baserel->joininfo != NIL || baserel->has_eclass_joins))
				penalty = disable_cost;
	}

	/* unordered, and sorted by the server for the query's ORDER BY */
	if (info->pushdown && root->query_pathkeys != NIL)
		sort = polyglot_elastic_sort_spec(baserel, info, root->query_pathkeys);
	polyglot_add_scan_paths(root, baserel, limit, sort, startup + penalty, scan,
							ELASTIC_ROW_COST, 0);

	/*
	 * The inner side of a nested loop: each outer row's matching documents,
	 * or its search (query = outer.column, also without pushdown).  The
	 * join clauses come from equivalence classes (inner joins) and from the
	 * relation's join clauses (outer joins).
	 */
	{
		List	   *candidates = NIL;
		int			attnum;

		if (baserel->has_eclass_joins)
			for (attnum = 1; attnum <= info->natts; attnum++)
			{
				ElasticColumn *col = &info->columns[attnum - 1];

				if (col->kind != ECOL_QUERY &&
					(!info->pushdown || (col->kind != ECOL_ID &&
										 (col->kind != ECOL_FIELD || col->term_field == NULL))))
					continue;
				candidates = list_concat(candidates,
										 polyglot_column_join_clauses(root, baserel, attnum));
			}
		candidates = list_concat(candidates, baserel->joininfo);
		polyglot_add_parameterized_paths(root, baserel, candidates, join_clause_usable, info,
										 startup, ELASTIC_ROW_COST);
	}
}

/*
 * count(*) of a query whose conditions all go to the server, without
 * GROUP BY or HAVING, is the _count of its search: one request, no hits.
 */
static void
elasticGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage, RelOptInfo *input_rel,
							RelOptInfo *output_rel, void *extra)
{
	ElasticRelInfo *info;
	PathTarget *target = output_rel->reltarget;
	List	   *scan_tlist;

	if (!polyglot_grouping_pushable(root, stage, input_rel, output_rel, extra, false))
		return;
	info = (ElasticRelInfo *) input_rel->fdw_private;
	if (!info->pushdown || info->local_conds != NIL)
		return;
	scan_tlist = polyglot_elastic_count_tlist(target);
	if (scan_tlist == NIL)
		return;
	output_rel->fdw_private = list_make2(info, scan_tlist);
	add_path(output_rel, (Path *)
			 polyglot_upper_path(root, output_rel, target, 1, ELASTIC_STARTUP_COST,
								 ELASTIC_STARTUP_COST + input_rel->tuples * ELASTIC_SCAN_COST / 10,
								 NIL));
}

static ForeignScan *
elasticGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					  ForeignPath *best_path, List *tlist, List *scan_clauses,
					  Plan *outer_plan)
{
	ElasticRelInfo *info;
	List	   *local = NIL;
	List	   *wanted = NIL;
	List	   *sort = NIL;
	int			limit = 0;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	List	   *fdw_private;
	int			i;

	if (IS_UPPER_REL(baserel))
	{
		/* count(*): the base scan's conditions, one row of counts */
		List	   *scan_tlist;

		info = (ElasticRelInfo *) linitial((List *) baserel->fdw_private);
		scan_tlist = (List *) lsecond((List *) baserel->fdw_private);
		fdw_private = list_make5(makeString(info->index),
								 info->items ? list_make2(makeString("and"), info->items) : NIL,
								 info->queries, NIL, NIL);
		fdw_private = lappend(fdw_private, makeInteger(0));
		fdw_private = lappend(fdw_private, makeInteger(1));
		fdw_private = lappend(fdw_private, makeInteger(info->page_size));
		return make_foreignscan(tlist, NIL, 0, info->values, fdw_private, scan_tlist,
								NIL, outer_plan);
	}

	info = (ElasticRelInfo *) baserel->fdw_private;
	if (best_path->fdw_private != NIL)
	{
		sort = (List *) linitial(best_path->fdw_private);
		limit = intVal(lsecond(best_path->fdw_private));
	}
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		ElasticClauseUse use = ELASTIC_CLAUSE_LOCAL;
		bool		recheck = false;

		if (list_member_ptr(info->remote_conds, ri))
			continue;
		/* a parameterized path's join clauses: the outer column is a value */
		if (best_path->path.param_info && !bms_is_subset(ri->clause_relids, baserel->relids))
			use = polyglot_elastic_add_clause(info, baserel, ri->clause, &recheck);
		if (use == ELASTIC_CLAUSE_LOCAL || (use == ELASTIC_CLAUSE_FILTER && recheck))
			local = lappend(local, ri->clause);
	}
	Assert(limit == 0 || local == NIL);

	/* the query column is the search: it cannot be compared after the fact */
	foreach(lc, local)
	{
		Bitmapset  *used = NULL;
		int			attnum = -1;

		pull_varattnos((Node *) lfirst(lc), baserel->relid, &used);
		while ((attnum = bms_next_member(used, attnum)) >= 0)
		{
			int			a = attnum + FirstLowInvalidHeapAttributeNumber;

			if (a > 0 && info->columns[a - 1].kind == ECOL_QUERY)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"%s\" of foreign table \"%s\" can only be compared with = to a value",
								info->columns[a - 1].name, get_rel_name(info->relid)),
						 errdetail("The query column is the query_string the index is searched with."),
						 errhint("Write query = 'words', or join on it with a nested loop (LATERAL).")));
		}
	}

	attrs = polyglot_columns_read(baserel, local, info->natts);
	for (i = 0; i < info->natts; i++)
		wanted = lappend_int(wanted, bms_is_member(i + 1, attrs) &&
							 info->columns[i].kind != ECOL_DROPPED);

	fdw_private = list_make5(makeString(info->index),
							 info->items ? list_make2(makeString("and"), info->items) : NIL,
							 info->queries, wanted, sort);
	fdw_private = lappend(fdw_private, makeInteger(limit));
	fdw_private = lappend(fdw_private, makeInteger(0));
	fdw_private = lappend(fdw_private, makeInteger(info->page_size));
	return make_foreignscan(tlist, local, baserel->relid, info->values, fdw_private, NIL,
							NIL, outer_plan);
}

/* ---------------------------------------------------------------- execution */

static void
elasticBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	/* an aggregation (scanrelid 0) scans the one table of its query */
	RangeTblEntry *rte = exec_rt_fetch(polyglot_scan_rtindex(plan), estate);
	Oid			userid = polyglot_scan_user(plan, estate);
	ElasticScanState *st = palloc0(sizeof(ElasticScanState));
	List	   *wanted_list;
	ListCell   *lc;
	int			i;

	node->fdw_state = st;
	st->index = strVal(list_nth(plan->fdw_private, FP_INDEX));
	st->filter = (List *) list_nth(plan->fdw_private, FP_FILTER);
	st->queries = (List *) list_nth(plan->fdw_private, FP_QUERIES);
	wanted_list = (List *) list_nth(plan->fdw_private, FP_WANTED);
	st->sort = (List *) list_nth(plan->fdw_private, FP_SORT);
	st->limit = intVal(list_nth(plan->fdw_private, FP_LIMIT));
	st->count = intVal(list_nth(plan->fdw_private, FP_COUNT)) != 0;
	st->page_size = intVal(list_nth(plan->fdw_private, FP_PAGE_SIZE));
	polyglot_elastic_load_columns(rte->relid, &st->natts, &st->columns);
	st->wanted = palloc0(sizeof(bool) * Max(st->natts, 1));
	st->typinput = palloc0(sizeof(Oid) * Max(st->natts, 1));
	st->typioparam = palloc0(sizeof(Oid) * Max(st->natts, 1));
	i = 0;
	foreach(lc, wanted_list)
	{
		ElasticColumn *col = &st->columns[i];

		st->wanted[i] = lfirst_int(lc) != 0;
		if (st->wanted[i])
		{
			if (col->kind == ECOL_SOURCE)
				st->whole_source = true;
			else if (col->kind == ECOL_FIELD &&
					 !list_member(st->source_fields, makeString(col->field)))
				st->source_fields = lappend(st->source_fields, makeString(col->field));
			else if (col->kind == ECOL_SCORE)
				st->want_score = true;
			else if (col->kind == ECOL_HIGHLIGHT)
				st->want_highlight = true;
			getTypeInputInfo(col->typid, &st->typinput[i], &st->typioparam[i]);
		}
		i++;
	}
	if (st->want_highlight)
		st->highlight_fields =
			polyglot_elastic_highlight_fields(polyglot_option_string(GetForeignTable(rte->relid)->options,
																	 "highlight", NULL));
	st->value_exprs = plan->fdw_exprs;
	st->value_states = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);
	st->exec_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic page",
										 ALLOCSET_DEFAULT_SIZES);
	st->next_page_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic page",
											  ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic row",
										ALLOCSET_DEFAULT_SIZES);
	st->conn = polyglot_elastic_table_connection(rte->relid, userid);
	st->pit_slot = -1;
	/* one request when the LIMIT fits in a page, else paging under a point in time */
	st->use_pit = !st->count && !(st->limit > 0 && st->limit <= st->page_size);
	if (st->use_pit && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		MemoryContextCallback *cb = MemoryContextAlloc(estate->es_query_cxt,
													   sizeof(MemoryContextCallback));

		cb->func = polyglot_elastic_pit_abandon;
		cb->arg = st;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
	}
}

/* count(*) by _count: one row, the count in every output column */
static bool
store_count(ElasticScanState *st, TupleTableSlot *slot)
{
	ElasticResponse response;
	char	   *path = psprintf("/%s/_count", st->index);
	char	   *body = polyglot_elastic_count_body(st->query);
	Jsonb	   *jb;
	JsonbValue	v;
	int			i;
	int64		count;

	if (st->count_done)
		return false;
	st->count_done = true;
	polyglot_elastic_request(st->conn, "POST", path, body, strlen(body), &response);
	if (response.status >= 400)
		polyglot_elastic_report_error(st->conn, &response, psprintf("POST %s", path));
	jb = polyglot_elastic_parse_response(st->conn, &response, path);
	polyglot_elastic_check_shards(st, jb);
	if (!getKeyJsonValueFromContainer(&jb->root, "count", 5, &v) || v.type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the _count of index \"%s\" came without a count", st->index)));
	count = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v.val.numeric)));
	for (i = 0; i < slot->tts_tupleDescriptor->natts; i++)
	{
		slot->tts_values[i] = Int64GetDatum(count);
		slot->tts_isnull[i] = false;
	}
	return true;
}

/*
 * Does the scan take values that change while the query runs: a nested
 * loop's outer row (a parameterised or LATERAL scan), a correlated
 * subquery's?  Such a scan is rescanned for each of them, and often
 * stopped early (a LIMIT, EXISTS): a request for its next page made
 * before it is needed would mostly be cancelled, and cost a search and
 * the connection.  Asked before the scan computes its values, when an
 * initplan's value (computed once, not a reason) is still to compute; an
 * initplan already computed for another node counts, as an outer value.
 */
static bool
takes_outer_values(ForeignScanState *node)
{
	ParamExecData *prms = node->ss.ps.state->es_param_exec_vals;
	int			paramid = -1;

	while ((paramid = bms_next_member(node->ss.ps.plan->extParam, paramid)) >= 0)
		if (prms[paramid].execPlan == NULL)
			return true;
	return false;
}

static TupleTableSlot *
elasticIterateForeignScan(ForeignScanState *node)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;
	bool		found;

	if (st->query == NULL)
	{
		/* the first execution: a rescan sets no_early */
		if (!st->no_early)
			st->no_early = takes_outer_values(node);
		old = MemoryContextSwitchTo(st->exec_cxt);
		st->query = polyglot_elastic_build_query(st, node->ss.ps.ps_ExprContext, false);
		MemoryContextSwitchTo(old);
	}
	ExecClearTuple(slot);
	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	if (st->count)
		found = store_count(st, slot);
	else
	{
		JsonbContainer *hit = polyglot_elastic_next_hit(st);

		found = hit != NULL;
		if (found)
			polyglot_elastic_store_hit(st, hit, slot);
	}
	MemoryContextSwitchTo(old);
	if (!found)
	{
		polyglot_elastic_cancel_next_page(st);
		polyglot_elastic_close_pit(st);
		return slot;
	}
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
elasticReScanForeignScan(ForeignScanState *node)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;

	/* the next page's request first: it names the point in time */
	polyglot_elastic_cancel_next_page(st);
	polyglot_elastic_close_pit(st);
	MemoryContextReset(st->exec_cxt);
	st->query = NULL;
	st->query_text = NULL;
	st->search_after = NULL;
	st->hits = NULL;
	st->nhits = st->next_hit = 0;
	st->fetched = 0;
	st->started = st->last_page = st->count_done = false;
	/* scanned again (a nested loop's inner side): no page asked for early */
	st->no_early = true;
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->next_page_cxt);
}

static void
elasticEndForeignScan(ForeignScanState *node)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;

	if (st)
	{
		/* a scan that stops early (a LIMIT above it) may have a request in flight */
		polyglot_elastic_cancel_next_page(st);
		polyglot_elastic_close_pit(st);
	}
}

/* EXPLAIN: the index; VERBOSE adds the request as it is sent */
static void
elasticExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;

	ExplainPropertyText("Remote Index", st->index, es);
	if (es->verbose)
		polyglot_elastic_explain_request(st, node->ss.ps.ps_ExprContext, es);
}

PG_FUNCTION_INFO_V1(polyglot_elastic_handler);

Datum
polyglot_elastic_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	POLYGLOT_SET_SCAN_CALLBACKS(routine, elastic);
	routine->GetForeignUpperPaths = elasticGetForeignUpperPaths;
	routine->ImportForeignSchema = polyglotElasticImportForeignSchema;
	polyglot_elastic_modify_routine(routine);
	PG_RETURN_POINTER(routine);
}
