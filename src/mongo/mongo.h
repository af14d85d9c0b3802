/*-------------------------------------------------------------------------
 *
 * mongo.h
 *		Declarations shared by the MongoDB files: options, connections,
 *		error reporting, BSON conversion, and the state of the foreign-data
 *		wrapper (mongo_fdw.c, mongo_query.c, mongo_modify.c, mongo_import.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_MONGO_H
#define POLYGLOT_MONGO_H

#include <mongoc/mongoc.h>

#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"

#include "pg_polyglot.h"
#include "common/conncache.h"

typedef struct MongoConnOptions
{
	PolyglotConnOptions common;
	const char *uri;
	const char *database;		/* default database, or NULL */
} MongoConnOptions;

/* The options of a sync route, as the sink reads them */
typedef struct MongoRouteOptions
{
	const char *database;		/* or NULL: the server's */
	const char *collection;
} MongoRouteOptions;

struct PolyglotRoute;

/* in mongo_option.c */
extern const PolyglotOption polyglot_mongo_options[];
extern char *polyglot_mongo_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_mongo_route_options[];
extern void polyglot_mongo_check_database(const char *name, const char *value);
extern void polyglot_mongo_check_collection(const char *name, const char *value);
extern void polyglot_mongo_check_route(PolyglotRouteCheck *check);
extern const MongoRouteOptions *polyglot_mongo_route(struct PolyglotRoute *route);
extern void polyglot_mongo_check_options(List *options, Oid catalog);
extern void polyglot_mongo_get_options(ForeignServer *server, UserMapping *user,
							  MongoConnOptions *opts);

/* in mongo_connection.c */
typedef struct MongoConn
{
	PolyglotConnEntry base;		/* base.conn is the mongoc_client_t */
	char		servername[NAMEDATALEN];
	char		database[128];	/* server's default database, "" if none */
	bool		flavor_known;	/* buildInfo was read on this connection */
	bool		ferretdb;		/* the server is FerretDB */
	bool		has_decimal128; /* the server stores decimal128 */
	char		version[64];	/* from buildInfo */
} MongoConn;

#define mongo_client(c) ((mongoc_client_t *) (c)->base.conn)

extern void polyglot_mongo_ensure_initialized(void);
extern MongoConn *polyglot_mongo_get_connection(ForeignServer *server, UserMapping *user);
extern void polyglot_mongo_read_flavor(MongoConn *conn);
extern int	polyglot_mongo_bson_flags(const MongoConn *conn);
pg_noreturn extern void polyglot_mongo_report_error(MongoConn *conn, const bson_error_t *error,
												   const char *what);
pg_noreturn extern void polyglot_mongo_report_pinned_error(MongoConn *conn,
														  const PolyglotConnPin *pin,
														  const bson_error_t *error,
														  const char *what);
extern void polyglot_mongo_release_pinned(mongoc_cursor_t **cursor, mongoc_collection_t **coll,
										  PolyglotConnPin *pin);

/* in mongo_stream.c */
extern void polyglot_mongo_stream_setup(mongoc_client_t *client, const mongoc_uri_t *uri);

/* in mongo_bson.c */
#define POLYGLOT_BSON_NO_DECIMAL128	0x01	/* the server has no decimal128 */
#define POLYGLOT_BSON_NO_NAN		0x02	/* the server cannot take a NaN double */
extern bool polyglot_bson_append_datum(bson_t *doc, const char *key, int keylen,
									   Datum value, bool isnull, Oid typid, int flags,
									   char **error);

extern void polyglot_bson_append_eq(bson_t *doc, const char *key, int keylen,
									const bson_value_t *value);
extern void polyglot_bson_append_id_in(bson_t *filter, const bson_value_t *ids, int nids);

extern char *polyglot_bson_document_json(const bson_t *doc);
extern char *polyglot_bson_value_json(const bson_value_t *value, const char *unrenderable);
extern const char *polyglot_bson_type_name(bson_type_t type);
extern Datum polyglot_bson_to_datum(const bson_iter_t *iter, Oid typid, int32 typmod,
									bool *isnull);

/*
 * The wrapper's planner and executor state, shared by mongo_fdw.c and the
 * files it is split into
 */

/* A column of a foreign table and where its value comes from */
typedef struct MongoColumn
{
	char	   *field;			/* dotted path, or NULL: the whole document */
	Oid			typid;
	int32		typmod;
} MongoColumn;

/* Planner state of a foreign table */
typedef struct MongoRelInfo
{
	char	   *database;
	char	   *collection;
	int			natts;
	MongoColumn *columns;		/* by attnum - 1; field NULL for dropped columns too */
	bool	   *dropped;
	bool	   *notnull;		/* declared NOT NULL */
	bool		pushdown;		/* the setting and the server and table options */
	bool		use_remote_estimate;
	int			batch_size;		/* documents per insert command */
	Oid			relid;
	Oid			userid;			/* whose user mapping, InvalidOid: current */
	List	   *remote_conds;	/* RestrictInfos pushed down */
	List	   *local_conds;	/* RestrictInfos checked here */
	List	   *values;			/* expressions whose values the filter holds */
	List	   *items;			/* the pushed clauses' filter structures */
} MongoRelInfo;

/* Executor state of a scan */
typedef struct MongoScanState
{
	MongoConn  *conn;
	PolyglotConnPin pin;		/* the client coll and cursor belong to */
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	char	   *database;
	char	   *collection;
	List	   *filter;
	List	   *value_states;	/* ExprStates of the filter's values */
	List	   *fields;			/* of String: the projection */
	int			natts;
	MongoColumn *columns;
	bool	   *wanted;			/* by attnum - 1: the query uses it */
	bool		whole_document;
	List	   *sort;			/* (field, 1 | -1) pairs */
	int			limit;			/* documents to ask for, 0: all */
	List	   *aggregate;		/* an aggregation's outputs: FP_AGGREGATE, mongo_fdw.c */
	bool		aggregate_rows; /* the aggregation returned a row */
	bool		aggregate_done; /* a whole-table aggregation's empty row went out */
	bool		find_pipeline;	/* FerretDB: the find goes as an aggregation
								 * without $project (polyglot_mongo_build_find_pipeline) */
	bool		eof;			/* the cursor is exhausted */
	int			bson_flags;
	bson_t	   *built_filter;	/* with this execution's values */
	MemoryContext row_cxt;
	const char *current_column; /* for the error context */
	const bson_t *current_doc;
} MongoScanState;

/* the kinds of a pushed-down aggregation's outputs */
#define MONGO_AGG_GROUP		"group"
#define MONGO_AGG_COUNT		"count"
#define MONGO_AGG_SUM		"sum"

/* in mongo_fdw.c */
extern void polyglot_mongo_load_columns(Oid relid, MongoRelInfo *info);
extern void polyglot_mongo_load_table(Oid relid, MongoRelInfo *info);

/* in mongo_query.c */
extern bool polyglot_mongo_pushable_type(Oid typid, bool ordering, Oid collation);
extern List *polyglot_mongo_deparse_expr(Expr *expr, RelOptInfo *baserel, MongoRelInfo *info);
extern bool polyglot_mongo_is_id_equality(List *item);
extern bson_t *polyglot_mongo_build_filter(List *filter, List *value_states,
										   ExprContext *econtext, int flags,
										   bool explain_only);
extern bool polyglot_mongo_column_not_null(MongoRelInfo *info, int attnum);
extern int	polyglot_mongo_column_attnum(Expr *expr, RelOptInfo *baserel, MongoRelInfo *info);
extern List *polyglot_mongo_sort_spec(RelOptInfo *baserel, MongoRelInfo *info, List *pathkeys);
extern const char *polyglot_mongo_aggregate_kind(Aggref *agg, RelOptInfo *baserel,
												 MongoRelInfo *info, const char **field);
extern int	polyglot_mongo_aggregate_group_count(List *aggregate);
extern bson_t *polyglot_mongo_build_pipeline(List *aggregate, const bson_t *filter);
extern bson_t *polyglot_mongo_build_projection(MongoScanState *st);
extern bson_t *polyglot_mongo_build_find_pipeline(MongoScanState *st, const bson_t *filter);
extern bson_t *polyglot_mongo_build_sort(List *sort);
extern bson_t *polyglot_mongo_build_options(MongoScanState *st);
extern void polyglot_mongo_explain_request(MongoScanState *st, ExprContext *econtext,
										   ExplainState *es);
extern void polyglot_mongo_append_id_selector(bson_t *selector, Datum id, Oid typid, int flags);

/* in mongo_import.c */
extern List *polyglotMongoImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* in mongo_modify.c */
extern void polyglot_mongo_modify_routine(FdwRoutine *routine);

#endif							/* POLYGLOT_MONGO_H */
