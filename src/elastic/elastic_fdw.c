/*-------------------------------------------------------------------------
 *
 * elastic_fdw.c
 *		The polyglot_elastic foreign-data wrapper: searches of Elasticsearch
 *		and OpenSearch indices, and writes through _bulk.
 *
 * Columns: a column maps to the _source field of its name, or to the
 * dotted path of its `field` option.  Without a field option, a column
 * named _id holds the document's id, _score its relevance, query the
 * query_string the scan searched with (WHERE query = 'wireless
 * headphones'), and a jsonb or json column the whole _source.
 *
 * What goes to the server, and its JSON: elastic_query.c.
 * Pages of hits under a point in time: elastic_paging.c.
 *
 * Writes: INSERT (create actions: an existing _id is a unique violation;
 * without an _id the server makes one, which RETURNING shows), UPDATE
 * (update actions with the changed fields) and DELETE go through _bulk,
 * batch_size actions per request; UPDATE and DELETE find documents by the
 * _id column.  The refresh option says whether a write waits for the next
 * refresh (wait_for), forces one (true) or neither (false, the default).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/cost.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/json.h"
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

#define POLYGLOT_DEFAULT_ELASTIC_PAGE_SIZE	1000
#define POLYGLOT_DEFAULT_ELASTIC_BATCH_SIZE	100
#define POLYGLOT_DEFAULT_ELASTIC_DOCUMENTS	1000	/* without an estimate */

/* ---------------------------------------------------------------- options */

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
	info->pushdown = polyglot_elastic_pushdown;
	if ((def = polyglot_option_find(table->options, "pushdown")) != NULL)
		info->pushdown = info->pushdown && polyglot_option_bool(def);
	if ((def = polyglot_option_find(server->options, "pushdown")) != NULL)
		info->pushdown = info->pushdown && polyglot_option_bool(def);
	def = polyglot_table_option(table, server, "use_remote_estimate");
	info->use_remote_estimate = def ? polyglot_option_bool(def) : true;
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
		Expr	   *query = polyglot_elastic_query_value(ri->clause, baserel, info);
		int			nvalues = list_length(info->values);
		List	   *item = NIL;
		bool		recheck = false;

		if (query)
		{
			/* the search: sent whether pushdown is on or not */
			polyglot_elastic_add_query(info, query);
			info->remote_conds = lappend(info->remote_conds, ri);
			continue;
		}
		if (info->pushdown)
			item = polyglot_elastic_deparse(ri->clause, baserel, info, &recheck);
		if (item != NIL)
		{
			info->items = lappend(info->items, item);
			if (recheck)
				info->local_conds = lappend(info->local_conds, ri);
			else
				info->remote_conds = lappend(info->remote_conds, ri);
			if (strcmp(strVal(linitial(item)), "term") == 0 &&
				strcmp(strVal(lsecond(item)), "_id") == 0 && intVal(list_nth(item, 4)) == 0)
				unique = true;
		}
		else
		{
			info->values = list_truncate(info->values, nvalues);
			info->local_conds = lappend(info->local_conds, ri);
		}
	}

	if (info->use_remote_estimate)
		tuples = remote_document_count(conn, info->index);
	if (tuples < 0)
		tuples = baserel->tuples > 0 ? baserel->tuples : POLYGLOT_DEFAULT_ELASTIC_DOCUMENTS;
	baserel->tuples = tuples;
	baserel->rows = clamp_row_est(tuples * clauselist_selectivity(root, baserel->baserestrictinfo,
																   0, JOIN_INNER, NULL));
	if (unique)
		baserel->rows = 1;
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

	if (limit > 0 && root->query_pathkeys == NIL)
	{
		double		rows = Min((double) limit, baserel->rows);

		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, rows, startup + penalty,
										   startup + penalty + rows * ELASTIC_ROW_COST + scan,
										   NIL, NULL, list_make2(NIL, makeInteger((int) limit))));
	}
	else
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, baserel->rows, startup + penalty,
										   startup + penalty + baserel->rows * ELASTIC_ROW_COST +
										   scan, NIL, NULL, NIL));

	/* sorted by the server, for the query's ORDER BY (and then its LIMIT) */
	if (info->pushdown && root->query_pathkeys != NIL &&
		(sort = polyglot_elastic_sort_spec(baserel, info, root->query_pathkeys)) != NIL)
	{
		double		rows = baserel->rows;

		if (limit > 0)
			rows = Min((double) limit, rows);
		add_path(baserel, (Path *)
				 polyglot_foreignscan_path(root, baserel, rows, startup + penalty,
										   startup + penalty + rows * ELASTIC_ROW_COST + scan,
										   root->query_pathkeys, NULL,
										   list_make2(sort, makeInteger((int) limit))));
	}

	/*
	 * The inner side of a nested loop: each outer row's matching documents,
	 * or its search (query = outer.column, also without pushdown).  The
	 * join clauses come from equivalence classes (inner joins) and from the
	 * relation's join clauses (outer joins).
	 */
	{
		List	   *candidates = NIL;
		ListCell   *lc;
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
										 generate_implied_equalities_for_column(root, baserel,
																				polyglot_ec_member_is_column,
																				(void *) &attnum,
																				baserel->lateral_referencers));
			}
		candidates = list_concat(candidates, baserel->joininfo);
		foreach(lc, candidates)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
			Relids		required;
			ParamPathInfo *ppi;
			int			nvalues = list_length(info->values);
			bool		recheck = false;
			bool		usable;

			if (!join_clause_is_movable_to(ri, baserel))
				continue;
			usable = polyglot_elastic_query_value(ri->clause, baserel, info) != NULL ||
				(info->pushdown &&
				 polyglot_elastic_deparse(ri->clause, baserel, info, &recheck) != NIL);
			info->values = list_truncate(info->values, nvalues);
			if (!usable)
				continue;
			required = bms_difference(bms_union(ri->clause_relids, baserel->lateral_relids),
									  baserel->relids);
			if (bms_is_empty(required))
				continue;
			ppi = get_baserel_parampathinfo(root, baserel, required);
			add_path(baserel, (Path *)
					 polyglot_foreignscan_path(root, baserel, ppi->ppi_rows, startup,
											   startup + ppi->ppi_rows * ELASTIC_ROW_COST,
											   NIL, required, NIL));
		}
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
	Query	   *parse = root->parse;
	PathTarget *target = output_rel->reltarget;
	List	   *scan_tlist;

	if (stage != UPPERREL_GROUP_AGG || input_rel->reloptkind != RELOPT_BASEREL ||
		output_rel->fdw_private != NULL)
		return;
	info = (ElasticRelInfo *) input_rel->fdw_private;
	if (info == NULL || !info->pushdown || info->local_conds != NIL ||
		parse->groupClause || parse->groupingSets || parse->havingQual ||
		((GroupPathExtraData *) extra)->patype != PARTITIONWISE_AGGREGATE_NONE)
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
		List	   *item = NIL;
		int			nvalues = list_length(info->values);
		bool		recheck = false;

		if (list_member_ptr(info->remote_conds, ri))
			continue;
		/* a parameterized path's join clauses: the outer column is a value */
		if (best_path->path.param_info && !bms_is_subset(ri->clause_relids, baserel->relids))
		{
			Expr	   *query = polyglot_elastic_query_value(ri->clause, baserel, info);

			if (query)
			{
				polyglot_elastic_add_query(info, query);
				continue;
			}
			if (info->pushdown)
				item = polyglot_elastic_deparse(ri->clause, baserel, info, &recheck);
		}
		if (item != NIL)
		{
			info->items = lappend(info->items, item);
			if (recheck)
				local = lappend(local, ri->clause);
		}
		else
		{
			info->values = list_truncate(info->values, nvalues);
			local = lappend(local, ri->clause);
		}
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

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local, baserel->relid, &attrs);
	for (i = 0; i < info->natts; i++)
	{
		bool		w = bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, attrs) ||
			bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

		wanted = lappend_int(wanted, w && info->columns[i].kind != ECOL_DROPPED);
	}

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
			getTypeInputInfo(col->typid, &st->typinput[i], &st->typioparam[i]);
		}
		i++;
	}
	st->value_exprs = plan->fdw_exprs;
	st->value_states = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);
	st->exec_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic page",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_polyglot elastic row",
										ALLOCSET_DEFAULT_SIZES);
	st->conn = polyglot_elastic_table_connection(rte->relid, userid);
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

static TupleTableSlot *
elasticIterateForeignScan(ForeignScanState *node)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;
	bool		found;

	if (st->query == NULL)
	{
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

	polyglot_elastic_close_pit(st);
	MemoryContextReset(st->exec_cxt);
	st->query = NULL;
	st->query_text = NULL;
	st->search_after = NULL;
	st->hits = NULL;
	st->nhits = st->next_hit = 0;
	st->fetched = 0;
	st->started = st->last_page = st->count_done = false;
	MemoryContextReset(st->page_cxt);
}

static void
elasticEndForeignScan(ForeignScanState *node)
{
	ElasticScanState *st = (ElasticScanState *) node->fdw_state;

	if (st)
		polyglot_elastic_close_pit(st);
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

/* ---------------------------------------------------------------- IMPORT FOREIGN SCHEMA */

/* elastic_import.c builds the tables from the indices' mappings */

/* ---------------------------------------------------------------- INSERT, UPDATE, DELETE */

/* State of a modification of the table */
typedef struct ElasticModifyState
{
	ElasticConn *conn;
	char	   *index;
	int			natts;
	ElasticColumn *columns;
	int			id_attnum;		/* the _id column, or 0 */
	AttrNumber	id_junk;		/* UPDATE, DELETE: the _id in the plan's rows */
	List	   *target_attrs;	/* UPDATE: the columns it sets */
	int			batch_size;
	const char *refresh;
	StringInfoData body;		/* actions not sent yet */
	int			nactions;
	MemoryContext cxt;			/* of body, for the statement */
	MemoryContext row_cxt;
} ElasticModifyState;

/* The _id column's attnum, or 0 */
static int
id_column(int natts, ElasticColumn *columns)
{
	int			i;

	for (i = 0; i < natts; i++)
		if (columns[i].kind == ECOL_ID)
			return i + 1;
	return 0;
}

void
polyglotElasticAddForeignUpdateTargets(PlannerInfo *root, Index rtindex, RangeTblEntry *target_rte,
									   Relation target_relation)
{
	int			natts;
	ElasticColumn *columns;
	int			attnum;
	Form_pg_attribute att;
	Var		   *var;

	polyglot_elastic_load_columns(RelationGetRelid(target_relation), &natts, &columns);
	attnum = id_column(natts, columns);
	if (attnum == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no _id column",
						RelationGetRelationName(target_relation)),
				 errhint("UPDATE and DELETE find documents by _id: add a column named _id.")));
	att = TupleDescAttr(RelationGetDescr(target_relation), attnum - 1);
	var = makeVar(rtindex, attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
	add_row_identity_var(root, var, rtindex, "_id");
}

List *
polyglotElasticPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
								 int subplan_index)
{
	List	   *target_attrs = NIL;

	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT with ON CONFLICT is not supported on Elasticsearch foreign tables")));
	if (plan->operation == CMD_UPDATE)
		target_attrs = polyglot_updated_attrs(root, resultRelation);
	return list_make1(target_attrs);
}

static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *target_attrs,
			 CmdType operation, bool explain_only)
{
	Relation	rel = rinfo->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	ElasticModifyState *st = palloc0(sizeof(ElasticModifyState));
	DefElem    *def;

	rinfo->ri_FdwState = st;
	st->index = polyglot_elastic_table_index(table, relid);
	polyglot_elastic_load_columns(relid, &st->natts, &st->columns);
	st->id_attnum = id_column(st->natts, st->columns);
	st->target_attrs = target_attrs;
	def = polyglot_table_option(table, server, "batch_size");
	st->batch_size = def ? polyglot_option_int(def) : POLYGLOT_DEFAULT_ELASTIC_BATCH_SIZE;
	def = polyglot_table_option(table, server, "refresh");
	st->refresh = def ? defGetString(def) : "false";
	st->cxt = CurrentMemoryContext;
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_polyglot elastic write",
										ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&st->body);
	if (mtstate && (operation == CMD_UPDATE || operation == CMD_DELETE))
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->id_junk = ExecFindJunkAttributeInTlist(subplan->targetlist, "_id");
		if (!AttributeNumberIsValid(st->id_junk))
			elog(ERROR, "pg_polyglot: _id junk column not found");
	}
	if (explain_only)
		return;
	st->conn = polyglot_elastic_table_connection(relid, polyglot_modify_user(mtstate, rinfo));
}

void
polyglotElasticBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								  List *fdw_private, int subplan_index, int eflags)
{
	begin_modify(mtstate, rinfo, (List *) linitial(fdw_private), mtstate->operation,
				 (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
}

void
polyglotElasticBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_modify(mtstate, rinfo, NIL, CMD_INSERT, false);
}

/* A field of a document being written: its path split at dots, its JSON */
typedef struct DocField
{
	char	  **segments;
	int			nsegments;
	char	   *json;
} DocField;

static int
docfield_cmp(const ListCell *a, const ListCell *b)
{
	DocField   *x = (DocField *) lfirst(a);
	DocField   *y = (DocField *) lfirst(b);
	int			i;

	for (i = 0; i < x->nsegments && i < y->nsegments; i++)
	{
		int			c = strcmp(x->segments[i], y->segments[i]);

		if (c != 0)
			return c;
	}
	return x->nsegments - y->nsegments;
}

/*
 * Appends fields[from, to) as the members of an object at depth: fields
 * that share a path segment there nest in one object ("a.b" and "a.c"
 * become "a": {"b": .., "c": ..}).  The list is sorted by path.
 */
static void
append_fields(StringInfo buf, List *fields, int from, int to, int depth)
{
	int			i = from;
	bool		first = true;

	appendStringInfoChar(buf, '{');
	while (i < to)
	{
		DocField   *f = (DocField *) list_nth(fields, i);
		int			j = i + 1;

		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, f->segments[depth]);
		appendStringInfoChar(buf, ':');
		if (f->nsegments == depth + 1)
		{
			appendStringInfoString(buf, f->json);
			/* a value and deeper fields under the same name: the value wins */
			while (j < to && strcmp(((DocField *) list_nth(fields, j))->segments[depth],
									f->segments[depth]) == 0)
				j++;
		}
		else
		{
			while (j < to)
			{
				DocField   *g = (DocField *) list_nth(fields, j);

				if (g->nsegments <= depth + 1 ||
					strcmp(g->segments[depth], f->segments[depth]) != 0)
					break;
				j++;
			}
			append_fields(buf, fields, i, j, depth + 1);
		}
		i = j;
	}
	appendStringInfoChar(buf, '}');
}

static DocField *
make_docfield(const char *path, char *json)
{
	DocField   *f = palloc(sizeof(DocField));
	char	   *copy = pstrdup(path);
	char	   *p;
	int			n = 1;

	for (p = copy; *p; p++)
		if (*p == '.')
			n++;
	f->segments = palloc(sizeof(char *) * n);
	f->nsegments = 0;
	f->segments[f->nsegments++] = copy;
	for (p = copy; *p; p++)
		if (*p == '.')
		{
			*p = '\0';
			f->segments[f->nsegments++] = p + 1;
		}
	f->json = json;
	return f;
}

/*
 * The document of a row's columns attnums (NIL: every column) as JSON:
 * field columns at their paths (nested objects for dotted paths), NULLs
 * left out unless keep_nulls; a whole-_source column is the document
 * itself, and then no field column may be given too.
 */
static char *
row_document(ElasticModifyState *st, TupleTableSlot *slot, List *attnums, bool keep_nulls,
			 bool *whole)
{
	List	   *fields = NIL;
	char	   *source = NULL;
	StringInfoData buf;
	int			i;

	*whole = false;
	slot_getallattrs(slot);
	for (i = 0; i < st->natts; i++)
	{
		ElasticColumn *col = &st->columns[i];
		bool		isnull = slot->tts_isnull[i];
		Datum		value = slot->tts_values[i];

		if (attnums != NIL && !list_member_int(attnums, i + 1))
			continue;
		switch (col->kind)
		{
			case ECOL_FIELD:
				if (isnull && !keep_nulls)
					break;
				initStringInfo(&buf);
				polyglot_elastic_append_json_value(&buf, value, isnull, col->typid);
				fields = lappend(fields, make_docfield(col->field, buf.data));
				break;
			case ECOL_SOURCE:
				if (isnull)
					break;
				initStringInfo(&buf);
				polyglot_elastic_append_json_value(&buf, value, false, col->typid);
				if (buf.data[0] != '{')
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("column \"%s\" must hold a JSON object to be a document",
									col->name)));
				source = buf.data;
				break;
			case ECOL_SCORE:
			case ECOL_QUERY:
				if (!isnull && attnums == NIL)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_ERROR),
							 errmsg("column \"%s\" cannot be written", col->name),
							 errdetail("It is not a field of the document.")));
				if (attnums != NIL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("column \"%s\" cannot be updated", col->name),
							 errdetail("It is not a field of the document.")));
				break;
			default:
				break;
		}
	}
	if (source)
	{
		if (fields != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot write a whole document and its fields in one row"),
					 errhint("Give either the jsonb column of the whole _source or the field columns, and leave the others NULL.")));
		*whole = true;
		return source;
	}
	list_sort(fields, docfield_cmp);
	initStringInfo(&buf);
	append_fields(&buf, fields, 0, list_length(fields), 0);
	return buf.data;
}

/* Appends {"<action>":{"_index":..,"_id":..}} and a newline */
static void
append_action(ElasticModifyState *st, const char *action, const char *id)
{
	appendStringInfo(&st->body, "{\"%s\":{\"_index\":", action);
	escape_json(&st->body, st->index);
	if (id)
	{
		appendStringInfoString(&st->body, ",\"_id\":");
		escape_json(&st->body, id);
	}
	appendStringInfoString(&st->body, "}}\n");
	st->nactions++;
}

/*
 * Sends the buffered actions in one _bulk request.  A failed action fails
 * the statement (with the first failure's reason), except the 404 of an
 * update or delete whose document is already gone.  The actions before it
 * stay done: the index is not part of the transaction.  Returns the _id
 * the server gave the first action (an INSERT without _id), or NULL.
 */
static char *
flush_actions(ElasticModifyState *st)
{
	ElasticResponse response;
	char	   *path;
	Jsonb	   *jb;
	JsonbContainer *items;
	char	   *first_id = NULL;
	int			n,
				i;
	int			nsent = st->nactions;

	if (st->nactions == 0)
		return NULL;
	path = psprintf("/_bulk?refresh=%s&filter_path=errors,items.*._id,items.*.status,items.*.error",
					st->refresh);
	polyglot_elastic_request(st->conn, "POST", path, st->body.data, st->body.len, &response);
	resetStringInfo(&st->body);
	st->nactions = 0;
	if (response.status >= 400)
		polyglot_elastic_report_error(st->conn, &response, psprintf("a _bulk write to index \"%s\"", st->index));
	jb = polyglot_elastic_parse_response(st->conn, &response, "_bulk");
	items = polyglot_elastic_json_object(&jb->root, "items");

	/*
	 * One result per action, each {"<action>": {"status": ..}}: an answer
	 * of another shape ({"errors": true} without items, say) is no success.
	 */
	n = items && JsonContainerIsArray(items) ? (int) JsonContainerSize(items) : -1;
	if (n != nsent)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Elasticsearch server \"%s\" answered a _bulk write of %d actions to index \"%s\" without one result per action",
						st->conn->servername, nsent, st->index)));
	for (i = 0; i < n; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(items, i);
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *action = NULL;
		JsonbContainer *result = NULL;
		int			status;

		if (item == NULL || item->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Elasticsearch server \"%s\" answered a _bulk write to index \"%s\" with a result that is no object",
							st->conn->servername, st->index)));
		/* {"<action>": {"_id": .., "status": .., "error": ..}} */
		it = JsonbIteratorInit(item->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				action = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE && v.type == jbvBinary)
				result = v.val.binary.data;
		}
		status = result ? polyglot_elastic_json_int(result, "status", 0) : 0;
		if (status == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Elasticsearch server \"%s\" answered a _bulk write to index \"%s\" with a result without a status",
							st->conn->servername, st->index)));
		if (i == 0)
			first_id = polyglot_elastic_json_string(result, "_id");
		if (status >= 200 && status < 300)
			continue;
		if (status == 404 && action && strcmp(action, "create") != 0)
			continue;			/* updated or deleted meanwhile by someone else */
		ereport(ERROR,
				(errcode(status == 409 && action && strcmp(action, "create") == 0 ?
						 ERRCODE_UNIQUE_VIOLATION : ERRCODE_FDW_ERROR),
				 status == 409 && action && strcmp(action, "create") == 0 ?
				 errmsg("document with _id \"%s\" already exists in index \"%s\"",
						polyglot_elastic_json_string(result, "_id"), st->index) :
				 errmsg("Elasticsearch server \"%s\" refused a %s in index \"%s\" (HTTP status %d)",
						st->conn->servername, action ? action : "write", st->index, status),
				 errdetail_internal("%s", polyglot_elastic_error_text(polyglot_elastic_json_object(result, "error")) ?
									polyglot_elastic_error_text(polyglot_elastic_json_object(result, "error")) :
									"no reason given")));
	}
	return first_id;
}

/* The text of a row's _id, or NULL */
static char *
row_id(ElasticModifyState *st, Datum value, bool isnull)
{
	Oid			outfunc;
	bool		varlena;

	if (isnull || st->id_attnum == 0)
		return NULL;
	getTypeOutputInfo(st->columns[st->id_attnum - 1].typid, &outfunc, &varlena);
	return OidOutputFunctionCall(outfunc, value);
}

/* Buffers the create action of a row; the caller flushes */
static void
add_insert(ElasticModifyState *st, TupleTableSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(st->row_cxt);
	bool		isnull = true;
	Datum		id = (Datum) 0;
	char	   *doc;
	char	   *idtext;
	bool		whole;

	if (st->id_attnum)
		id = slot_getattr(slot, st->id_attnum, &isnull);
	doc = row_document(st, slot, NIL, false, &whole);
	idtext = row_id(st, id, isnull);
	MemoryContextSwitchTo(st->cxt);
	append_action(st, "create", idtext);
	appendStringInfo(&st->body, "%s\n", doc);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
}

TupleTableSlot *
polyglotElasticExecForeignInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	char	   *id;

	add_insert(st, slot);
	id = flush_actions(st);
	/* the _id the server made, for RETURNING */
	if (st->id_attnum && id)
	{
		bool		isnull;

		(void) slot_getattr(slot, st->id_attnum, &isnull);
		if (isnull)
		{
			Oid			typinput,
						typioparam;
			ElasticColumn *col = &st->columns[st->id_attnum - 1];

			slot_getallattrs(slot);
			getTypeInputInfo(col->typid, &typinput, &typioparam);
			slot->tts_values[st->id_attnum - 1] =
				OidInputFunctionCall(typinput, id, typioparam, col->typmod);
			slot->tts_isnull[st->id_attnum - 1] = false;
		}
	}
	return slot;
}

#if PG_VERSION_NUM >= 140000
/* Up to batch_size rows in one _bulk request */
TupleTableSlot **
polyglotElasticExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot **slots,
									  TupleTableSlot **planSlots, int *numSlots)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	int			i;

	for (i = 0; i < *numSlots; i++)
		add_insert(st, slots[i]);
	(void) flush_actions(st);
	return slots;
}

/*
 * The batch size of an INSERT: batch_size (default 100), or one row at a
 * time for RETURNING, row triggers or WITH CHECK OPTION.
 */
int
polyglotElasticGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;

	return polyglot_modify_batch_size(rinfo, st ? st->batch_size : 1);
}
#endif

/*
 * UPDATE: an update action with the fields it sets (a partial update: the
 * document's other fields stay), or an index action replacing the whole
 * document when the whole-_source column is set.  Sent batch_size at a
 * time, the rest at the end of the statement.
 */
TupleTableSlot *
polyglotElasticExecForeignUpdate(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	bool		isnull;
	Datum		id = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	char	   *doc;
	char	   *idtext;
	bool		whole;
	MemoryContext old;

	if (isnull)
		elog(ERROR, "pg_polyglot: _id is null");
	if (list_member_int(st->target_attrs, st->id_attnum))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the _id of a document")));
	old = MemoryContextSwitchTo(st->row_cxt);
	doc = row_document(st, slot, st->target_attrs, true, &whole);
	idtext = row_id(st, id, false);
	MemoryContextSwitchTo(st->cxt);
	append_action(st, whole ? "index" : "update", idtext);
	if (whole)
		appendStringInfo(&st->body, "%s\n", doc);
	else
		appendStringInfo(&st->body, "{\"doc\":%s}\n", doc);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
	if (st->nactions >= st->batch_size)
		(void) flush_actions(st);
	return slot;
}

TupleTableSlot *
polyglotElasticExecForeignDelete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
								 TupleTableSlot *planSlot)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;
	bool		isnull;
	Datum		id = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	char	   *idtext;
	MemoryContext old;

	if (isnull)
		elog(ERROR, "pg_polyglot: _id is null");
	old = MemoryContextSwitchTo(st->row_cxt);
	idtext = row_id(st, id, false);
	MemoryContextSwitchTo(st->cxt);
	append_action(st, "delete", idtext);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->row_cxt);
	if (st->nactions >= st->batch_size)
		(void) flush_actions(st);

	/* RETURNING of a DELETE sees the _id; the document is not read back */
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	slot->tts_values[st->id_attnum - 1] = id;
	slot->tts_isnull[st->id_attnum - 1] = false;
	ExecStoreVirtualTuple(slot);
	return slot;
}

void
polyglotElasticExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
									List *fdw_private, int subplan_index, ExplainState *es)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;

	ExplainPropertyText("Remote Index", st->index, es);
	if (!es->verbose)
		return;
	ExplainPropertyText("Remote Request", psprintf("POST /_bulk?refresh=%s", st->refresh), es);
#if PG_VERSION_NUM >= 140000
	if (mtstate->operation == CMD_INSERT)
		ExplainPropertyInteger("Batch Size", NULL, rinfo->ri_BatchSize, es);
	else
#endif
		ExplainPropertyInteger("Batch Size", NULL, st->batch_size, es);
}

/* also EndForeignInsert: sends what is left */
void
polyglotElasticEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	ElasticModifyState *st = (ElasticModifyState *) rinfo->ri_FdwState;

	if (st && st->conn)
		(void) flush_actions(st);
}

PG_FUNCTION_INFO_V1(polyglot_elastic_handler);

Datum
polyglot_elastic_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = elasticGetForeignRelSize;
	routine->GetForeignPaths = elasticGetForeignPaths;
	routine->GetForeignPlan = elasticGetForeignPlan;
	routine->GetForeignUpperPaths = elasticGetForeignUpperPaths;
	routine->BeginForeignScan = elasticBeginForeignScan;
	routine->IterateForeignScan = elasticIterateForeignScan;
	routine->ReScanForeignScan = elasticReScanForeignScan;
	routine->EndForeignScan = elasticEndForeignScan;
	routine->ExplainForeignScan = elasticExplainForeignScan;
	routine->ImportForeignSchema = polyglotElasticImportForeignSchema;
	routine->AddForeignUpdateTargets = polyglotElasticAddForeignUpdateTargets;
	routine->PlanForeignModify = polyglotElasticPlanForeignModify;
	routine->BeginForeignModify = polyglotElasticBeginForeignModify;
	routine->ExecForeignInsert = polyglotElasticExecForeignInsert;
#if PG_VERSION_NUM >= 140000
	routine->ExecForeignBatchInsert = polyglotElasticExecForeignBatchInsert;
	routine->GetForeignModifyBatchSize = polyglotElasticGetForeignModifyBatchSize;
#endif
	routine->ExecForeignUpdate = polyglotElasticExecForeignUpdate;
	routine->ExecForeignDelete = polyglotElasticExecForeignDelete;
	routine->EndForeignModify = polyglotElasticEndForeignModify;
	routine->BeginForeignInsert = polyglotElasticBeginForeignInsert;
	routine->EndForeignInsert = polyglotElasticEndForeignModify;
	routine->ExplainForeignModify = polyglotElasticExplainForeignModify;
	PG_RETURN_POINTER(routine);
}
