/*-------------------------------------------------------------------------
 *
 * elastic.h
 *		Declarations shared by the Elasticsearch/OpenSearch files: options,
 *		HTTP connections and error reporting, index mappings, and the
 *		foreign-data wrapper's state and files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_ELASTIC_H
#define POLYGLOT_ELASTIC_H

#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/conncache.h"
#include "common/json_writer.h"

typedef struct ElasticConnOptions
{
	PolyglotConnOptions common;
	const char *url;			/* one or more base URLs, comma-separated */
	const char *api_key;		/* from the user mapping, or NULL */
} ElasticConnOptions;

/* the longest index name Elasticsearch and OpenSearch take, in bytes */
#define ELASTIC_MAX_INDEX_BYTES	255

/* The options of a sync route, as the sink reads them */
typedef struct ElasticRouteOptions
{
	const char *index;
	const char *routing;		/* a key column, or NULL */
	/*
	 * While polyglot.reindex() builds a new index for the route: its name,
	 * every write going to both (elastic_reindex.c), or NULL
	 */
	const char *reindex_into;
} ElasticRouteOptions;

struct PolyglotRoute;

/* in elastic_option.c */
extern const PolyglotOption polyglot_elastic_options[];
extern char *polyglot_elastic_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_elastic_route_options[];
extern void polyglot_elastic_check_route(PolyglotRouteCheck *check);
extern void polyglot_elastic_check_options(List *options, Oid catalog);
extern const ElasticRouteOptions *polyglot_elastic_route(struct PolyglotRoute *route);
extern void polyglot_elastic_get_options(ForeignServer *server, UserMapping *user,
								ElasticConnOptions *opts);
extern List *polyglot_elastic_split_urls(const char *urls);
extern void polyglot_elastic_check_index_name(const char *name, const char *value);
extern List *polyglot_elastic_highlight_fields(const char *value);

/* in elastic_connection.c */
#define ELASTIC_TRACKED_PITS	16

typedef struct ElasticConn
{
	PolyglotConnEntry base;		/* base.conn is an ElasticHandle */
	char		servername[NAMEDATALEN];
	char		flavor;			/* 'e' Elasticsearch, 'o' OpenSearch, 0 not known yet */
	/* points in time open on the server (malloc'd ids), see elastic_paging.c */
	char	   *pits[ELASTIC_TRACKED_PITS];
	bool		pit_stale[ELASTIC_TRACKED_PITS];
} ElasticConn;

typedef struct ElasticResponse
{
	long		status;			/* HTTP status */
	char	   *body;			/* palloc'd, NUL-terminated */
	size_t		len;
	bool		elastic_product;	/* X-elastic-product: Elasticsearch */
	const char *url;			/* the node that answered, palloc'd */
} ElasticResponse;

extern ElasticConn *polyglot_elastic_get_connection(ForeignServer *server, UserMapping *user);
extern void polyglot_elastic_request(ElasticConn *conn, const char *method, const char *path,
							const char *body, size_t bodylen,
							ElasticResponse *response);
extern void polyglot_elastic_request_start(ElasticConn *conn, PolyglotConnPin *pin,
								  const char *method, const char *path,
								  const char *body, size_t bodylen);
extern void polyglot_elastic_request_complete(ElasticConn *conn, PolyglotConnPin *pin,
									 const char *method, const char *path,
									 const char *body, size_t bodylen,
									 ElasticResponse *response);
extern void polyglot_elastic_request_cancel(PolyglotConnPin *pin);
pg_noreturn extern void polyglot_elastic_report_error(ElasticConn *conn,
													 const ElasticResponse *response,
													 const char *what);
extern Jsonb *polyglot_elastic_try_parse_json(const char *text);
extern char *polyglot_elastic_json_string(JsonbContainer *container, const char *key);
extern JsonbContainer *polyglot_elastic_json_object(JsonbContainer *container, const char *key);
extern int	polyglot_elastic_json_int(JsonbContainer *container, const char *key, int default_value);
extern char *polyglot_elastic_error_text(JsonbContainer *error);
extern Jsonb *polyglot_elastic_parse_response(ElasticConn *conn, const ElasticResponse *response,
									 const char *what);
extern bool polyglot_elastic_is_opensearch(ElasticConn *conn);

/* in elastic_index.c: the index a route with mappings or settings creates */
extern void polyglot_elastic_create_index(struct PolyglotRoute *route);
extern char *polyglot_elastic_index_path(const char *index, const char *suffix);
extern bool polyglot_elastic_put_index(ElasticConn *conn, const char *index,
									   const char *mappings, const char *settings,
									   const char *alias);

/* in elastic_reindex.c */
extern const char *polyglot_elastic_reindex_target(Jsonb *options);
extern char *polyglot_elastic_reindex_error_prefix(const char *index);

/* in elastic_mapping.c */
typedef struct ElasticField
{
	char	   *path;			/* dotted path from the _source root: "brand.name" */
	char	   *type;			/* "keyword", "text", "long", "date", ...; "object"
								 * for properties without a type */
	char	   *keyword;		/* of a text field: the path of its keyword
								 * sub-field ("name.keyword"), or NULL */
	int			ignore_above;	/* of the keyword field (the field itself or the
								 * sub-field), -1 when none */
	bool		normalizer;		/* the keyword field has a normalizer: its terms
								 * are not the values */
	bool		conflict;		/* not to be filtered on: indices of a pattern map
								 * it differently, or the index does not hold
								 * what _source says (null_value,
								 * ignore_malformed, copy_to target, under a
								 * nested field) */
} ElasticField;

typedef struct ElasticIndexMapping
{
	char	   *index;
	List	   *fields;			/* of ElasticField, parents before children */
} ElasticIndexMapping;

extern List *polyglot_elastic_read_mappings(ElasticConn *conn, const char *index);
extern ElasticField *polyglot_elastic_find_field(List *fields, const char *path);
extern List *polyglot_elastic_merged_fields(List *mappings);

/*
 * The foreign-data wrapper's state, shared by its files: where a column's
 * value comes from, what the planner knows of a table, a scan's state.
 */
typedef enum ElasticColumnKind
{
	ECOL_DROPPED,
	ECOL_FIELD,					/* a field of the _source */
	ECOL_SOURCE,				/* the whole _source */
	ECOL_ID,					/* the document's _id */
	ECOL_SCORE,					/* the hit's _score */
	ECOL_QUERY,					/* the query_string searched with */
	ECOL_HIGHLIGHT				/* the hit's highlight: field -> fragments */
} ElasticColumnKind;

typedef struct ElasticColumn
{
	ElasticColumnKind kind;
	char	   *name;
	char	   *field;			/* ECOL_FIELD: dotted path */
	Oid			typid;
	int32		typmod;
	bool		notnull;
	/* planner only, from the mapping: */
	char	   *term_field;		/* path term/terms/range/sort use, or NULL */
	bool		ranges;			/* ranges and sorts agree with PostgreSQL's */
	int			ignore_above;	/* of a keyword term_field, or -1 */
	bool		exists;			/* a mapped leaf: exists answers IS NULL */
} ElasticColumn;

/* Planner state of a foreign table */
typedef struct ElasticRelInfo
{
	char	   *index;
	int			natts;
	ElasticColumn *columns;		/* by attnum - 1 */
	bool		pushdown;
	bool		use_remote_estimate;
	int			page_size;
	Oid			relid;
	Oid			userid;
	List	   *remote_conds;	/* RestrictInfos pushed down exactly */
	List	   *local_conds;	/* RestrictInfos checked here (some also sent) */
	List	   *values;			/* expressions whose values the request holds */
	List	   *items;			/* the filter's items */
	List	   *queries;		/* of Integer: values searched as query_string */
} ElasticRelInfo;

#define ELASTIC_KEEP_ALIVE		"1m"	/* of a point in time, renewed by each page */

/* Executor state of a scan */
typedef struct ElasticScanState
{
	ElasticConn *conn;
	char	   *index;
	List	   *filter;
	List	   *queries;
	List	   *value_exprs;	/* the plan's, for EXPLAIN */
	List	   *value_states;
	int			natts;
	ElasticColumn *columns;
	bool	   *wanted;
	bool		whole_source;
	bool		want_score;
	bool		want_highlight; /* the _highlight column is read */
	List	   *highlight_fields;	/* of String: table option highlight, NIL
									 * for every field */
	List	   *source_fields;	/* of String: the _source to fetch */
	List	   *sort;
	int64		limit;
	bool		count;
	int			page_size;
	Oid		   *typinput;		/* by attnum - 1 */
	Oid		   *typioparam;
	/* per execution */
	char	   *query;			/* this execution's query JSON */
	char	   *query_text;		/* the query column's value, or NULL */
	bool		use_pit;
	char	   *pit_id;
	int			pit_slot;		/* of pit_id in conn->pits, or -1 */
	char	   *search_after;	/* the last hit's sort values, JSON */
	Jsonb	   *page;
	JsonbContainer *hits;
	int			nhits;
	int			next_hit;
	int64		fetched;
	bool		last_page;
	bool		started;
	bool		count_done;
	/*
	 * No request of a page before it is needed: a scan rescanned, or that
	 * takes values from an outer row (elastic_fdw.c)
	 */
	bool		no_early;
	/*
	 * The next page's request, started before this page is parsed, or
	 * at least before its hits are converted (elastic_paging.c): its pin
	 * holds the handle while it is in flight, its body and the strings
	 * below live in next_page_cxt
	 */
	PolyglotConnPin next_pin;
	char	   *next_body;
	int			next_size;
	/* what it was built from: checked against the page's parse */
	char	   *next_pit;
	char	   *next_after;
	int			next_nhits;		/* hits of the page it follows */
	MemoryContext exec_cxt;		/* of this execution: reset by a rescan */
	MemoryContext page_cxt;		/* the page whose hits are converted */
	MemoryContext next_page_cxt;	/* the next page's request and answer */
	MemoryContext row_cxt;
	const char *current_column; /* for the error context */
	char	   *current_id;
} ElasticScanState;

/* in elastic_fdw.c */
extern void polyglot_elastic_load_columns(Oid relid, int *natts, ElasticColumn **columns);
extern char *polyglot_elastic_table_index(ForeignTable *table, Oid relid);
extern ElasticConn *polyglot_elastic_table_connection(Oid relid, Oid userid);

/* in elastic_query.c: what the server can evaluate, and its JSON */
typedef enum ElasticClauseUse	/* what a clause became */
{
	ELASTIC_CLAUSE_LOCAL,		/* checked locally only */
	ELASTIC_CLAUSE_SEARCH,		/* query = value: the search */
	ELASTIC_CLAUSE_FILTER		/* an item of the filter */
} ElasticClauseUse;

extern void polyglot_elastic_apply_mapping(ElasticRelInfo *info, List *fields);
extern List *polyglot_elastic_deparse(Expr *expr, RelOptInfo *baserel, ElasticRelInfo *info,
									  bool *recheck);
extern Expr *polyglot_elastic_query_value(Expr *expr, RelOptInfo *baserel, ElasticRelInfo *info);
extern ElasticClauseUse polyglot_elastic_add_clause(ElasticRelInfo *info, RelOptInfo *baserel,
													Expr *clause, bool *recheck);
extern List *polyglot_elastic_sort_spec(RelOptInfo *baserel, ElasticRelInfo *info, List *pathkeys);
extern List *polyglot_elastic_count_tlist(PathTarget *target);
extern char *polyglot_elastic_build_query(ElasticScanState *st, ExprContext *econtext,
										  bool explain);
extern char *polyglot_elastic_count_body(const char *query);
extern char *polyglot_elastic_search_body(ElasticScanState *st, int size, const char *pit_id,
										  const char *search_after, bool explain);
extern void polyglot_elastic_explain_request(ElasticScanState *st, ExprContext *econtext,
											 ExplainState *es);

/* in elastic_paging.c: pages of hits under a point in time */
extern void polyglot_elastic_pit_abandon(void *arg);
extern void polyglot_elastic_close_pit(ElasticScanState *st);
extern void polyglot_elastic_cancel_next_page(ElasticScanState *st);
extern void polyglot_elastic_check_shards(ElasticScanState *st, Jsonb *jb);
extern JsonbContainer *polyglot_elastic_next_hit(ElasticScanState *st);

/* in elastic_modify.c: INSERT, UPDATE and DELETE through _bulk */
extern void polyglot_elastic_modify_routine(FdwRoutine *routine);

/* in elastic_hit.c: a hit's _source as column values (JSON -> Datum) */
extern void polyglot_elastic_store_hit(ElasticScanState *st, JsonbContainer *h,
									   TupleTableSlot *slot);


/*
 * Values as Elasticsearch and OpenSearch documents hold them (json_writer.c):
 * dates and times in ISO 8601, a timestamptz in UTC whatever the session's
 * TimeZone, an oid as the number it is, bytea in base64 (what a binary
 * field takes), json on one line (a _bulk body is one JSON text a line).
 */
#define ELASTIC_JSON_RULES \
	(POLYGLOT_JSON_TIMESTAMPTZ_UTC | POLYGLOT_JSON_TIME_ISO8601 | \
	 POLYGLOT_JSON_OID_NUMBER | POLYGLOT_JSON_BYTEA_BASE64 | POLYGLOT_JSON_ONE_LINE)

static inline void
polyglot_elastic_append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	polyglot_json_append_value(buf, value, isnull, typid, ELASTIC_JSON_RULES);
}

/* in elastic_import.c */
extern List *polyglotElasticImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* POLYGLOT_ELASTIC_H */
