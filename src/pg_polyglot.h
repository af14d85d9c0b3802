/*-------------------------------------------------------------------------
 *
 * pg_polyglot.h
 *		Declarations shared by every part of pg_polyglot: settings, the
 *		option framework used by the three validators, store identification
 *		and the per-store connection entry points.
 *
 * Builds against PostgreSQL 14 to 18: differences that several files meet
 * are in compat.h, the others behind PG_VERSION_NUM guards where they occur.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_POLYGLOT_H
#define PG_POLYGLOT_H

#include "postgres.h"

#include "foreign/foreign.h"
#include "nodes/pg_list.h"
#include "portability/instr_time.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "defaults.h"

/* Settings (pg_polyglot.c) */
extern char *polyglot_database;
extern int	polyglot_workers;
extern bool polyglot_mongo_pushdown;
extern bool polyglot_elastic_pushdown;
extern bool polyglot_redis_pushdown;
extern int	polyglot_batch_size;
extern int	polyglot_batch_bytes;
extern int	polyglot_poll_interval;
extern int	polyglot_max_attempts;
extern int	polyglot_backoff_max;

/*
 * Set by a store's connection code when a request got no answer within
 * io_timeout (the connection was made); the worker clears it before each
 * request it sends, and reads it when the request fails (core/dispatch.c).
 */
extern bool polyglot_io_timed_out;

/*
 * Option framework (src/common/option.c).
 *
 * Each store describes its options in a table of PolyglotOption, terminated
 * by an entry with a NULL name.  An option belongs to exactly one catalog
 * (server, user mapping, foreign table or column); secrets belong to user
 * mappings only.
 */
typedef enum PolyglotOptionType
{
	POLYGLOT_OPT_STRING,		/* any non-empty string, check() may refine */
	POLYGLOT_OPT_ANY_STRING,	/* any string, even empty */
	POLYGLOT_OPT_INT,			/* integer within [min, max] */
	POLYGLOT_OPT_BOOL,			/* anything parse_bool() accepts */
	POLYGLOT_OPT_DURATION,		/* milliseconds: '500', '500ms', '5s', '1min' */
	POLYGLOT_OPT_ENUM			/* one of enum_values */
} PolyglotOptionType;

typedef struct PolyglotOption
{
	const char *name;
	Oid			catalog;		/* ForeignServerRelationId, ... */
	PolyglotOptionType type;
	int			min;			/* INT and DURATION */
	int			max;
	const char *const *enum_values; /* ENUM, NULL-terminated */
	bool		secret;			/* user mappings only */
	/* optional extra check of a value; ereports on a bad one */
	void		(*check) (const char *name, const char *value);
} PolyglotOption;

extern void polyglot_validate_options(const char *fdwname,
									  const PolyglotOption *options,
									  List *options_list, Oid catalog);
extern int	polyglot_option_int(DefElem *def);
extern int	polyglot_option_duration(DefElem *def);
extern bool polyglot_option_bool(DefElem *def);
extern DefElem *polyglot_option_find(List *options, const char *name);
extern const char *polyglot_option_string(List *options, const char *name,
										  const char *default_value);
extern UserMapping *polyglot_find_user_mapping(Oid userid, Oid serverid);

/*
 * Route options (src/common/option.c): the options of polyglot.sync(), a
 * JSON object.  Each store lists its route options in a table of
 * PolyglotRouteOption, terminated by an entry with a NULL name, beside the
 * table of its wrapper's options; "columns", "exclude", "where",
 * "replicated" and "name" are every store's.  polyglot_validate_route_options() checks the names, then calls
 * the store's check, which reads the values through
 * polyglot_route_check_value() (that checks their type) and fills in
 * defaults.
 */
typedef enum PolyglotRouteOptionType
{
	POLYGLOT_ROUTE_OPT_ANY,		/* any JSON value: the store checks it */
	POLYGLOT_ROUTE_OPT_STRING,	/* a JSON string */
	POLYGLOT_ROUTE_OPT_NONEMPTY,	/* a JSON string, not empty */
	POLYGLOT_ROUTE_OPT_SECONDS, /* a whole number from 1 to PG_INT32_MAX */
	POLYGLOT_ROUTE_OPT_COLUMNS,	/* an array of column names of the table */
	POLYGLOT_ROUTE_OPT_BOOLEAN	/* true or false */
} PolyglotRouteOptionType;

typedef struct PolyglotRouteOption
{
	const char *name;
	PolyglotRouteOptionType type;
	const char *type_error;		/* the message of a value of another type */
} PolyglotRouteOption;

/* A route being created, as a store's check of its options sees it */
typedef struct PolyglotRouteCheck
{
	Oid			source;
	const char *source_text;	/* the table as regclass prints it */
	ForeignServer *server;
	List	   *key_columns;	/* of char *, in key order */
	const char *label;			/* the store in messages: "Redis" */
	const PolyglotRouteOption *route_options;
	Jsonb	   *options;		/* as given */
	Jsonb	   *result;			/* with defaults filled in */
} PolyglotRouteCheck;

struct PolyglotStoreInfo;
extern Jsonb *polyglot_validate_route_options(const struct PolyglotStoreInfo *store,
											  Oid source, ForeignServer *server,
											  List *key_columns, Jsonb *options);
extern bool polyglot_route_check_value(PolyglotRouteCheck *check, const char *name,
									   JsonbValue *value);
extern char *polyglot_route_check_string(PolyglotRouteCheck *check, const char *name);
extern void polyglot_route_check_set(PolyglotRouteCheck *check, const char *name,
									 const char *value);
extern char *polyglot_route_default_target(Oid relid);
extern char *polyglot_route_option_text(Jsonb *options, const char *name);

/*
 * Options common to the connection of every store, filled by each store's
 * connection layer from server and user mapping options.
 */
typedef struct PolyglotConnOptions
{
	int			connect_timeout_ms;
	int			io_timeout_ms;
	bool		connect_timeout_set;	/* given as a server option */
	bool		io_timeout_set;
	const char *user;			/* from the user mapping, or NULL */
	const char *password;		/* from the user mapping, or NULL */
	/* TLS (server options, the key's passphrase from the user mapping) */
	bool		tls;			/* option tls (Elasticsearch: an https url) */
	bool		tls_verify;		/* check the server's certificate and name */
	const char *tls_ca_file;	/* CAs to trust, or NULL: the system's */
	const char *tls_cert_file;	/* client certificate, or NULL */
	const char *tls_key_file;	/* its key, or NULL: in tls_cert_file */
	const char *tls_key_password;	/* the key's passphrase, or NULL */
} PolyglotConnOptions;

extern void polyglot_get_conn_options(ForeignServer *server, UserMapping *user,
									  PolyglotConnOptions *opts);
extern void polyglot_check_superuser_option(const char *name, const char *value);
extern void polyglot_check_tls_options(List *options, Oid catalog, bool has_tls_option);

/* Per-store ping, returning the jsonb that polyglot.ping() returns */
extern Jsonb *polyglot_redis_ping(ForeignServer *server, UserMapping *user);
extern void polyglot_redis_fdw_init(void);
extern Jsonb *polyglot_mongo_ping(ForeignServer *server, UserMapping *user);
extern Jsonb *polyglot_elastic_ping(ForeignServer *server, UserMapping *user);

/* Building the ping result (src/common/ping.c) */
extern Jsonb *polyglot_ping_result(const char *store, const char *server,
								   double latency_ms, const char *version,
								   const char *flavor);
extern double polyglot_elapsed_ms(instr_time start);

/* fdw_common.c: shared by the wrappers' planners and executors */
struct PlannerInfo;
struct RelOptInfo;
struct EquivalenceClass;
struct EquivalenceMember;
struct ResultRelInfo;
struct ForeignTable;
struct ForeignServer;
extern DefElem *polyglot_table_option(struct ForeignTable *table, struct ForeignServer *server,
									  const char *name);
extern int64 polyglot_query_limit(struct PlannerInfo *root, struct RelOptInfo *baserel,
								  bool all_pushed);
extern bool polyglot_ec_member_is_column(struct PlannerInfo *root, struct RelOptInfo *rel,
										 struct EquivalenceClass *ec,
										 struct EquivalenceMember *em, void *arg);
extern bool polyglot_is_plain_value(Expr *expr, struct RelOptInfo *baserel);
struct PathKey;
typedef int (*PolyglotColumnAttnum) (Expr *expr, struct RelOptInfo *baserel, void *info);
extern int	polyglot_pathkey_attnum(struct PathKey *pk, struct RelOptInfo *baserel,
									PolyglotColumnAttnum column_attnum, void *info);
extern Bitmapset *polyglot_columns_read(struct RelOptInfo *baserel, List *local_conds,
										int natts);
struct ForeignScan;
struct EState;
struct ModifyTableState;
extern Index polyglot_scan_rtindex(struct ForeignScan *plan);
extern Oid	polyglot_scan_user(struct ForeignScan *plan, struct EState *estate);
extern UserMapping *polyglot_table_user_mapping(Oid relid, Oid userid,
												ForeignServer **server);
struct Const;
extern bool polyglot_has_nonfinite(Oid typid);
extern bool polyglot_nonfinite_value(Datum value, Oid typid);
extern bool polyglot_const_nonfinite(struct Const *c);
struct RestrictInfo;
extern void polyglot_load_planner_options(struct ForeignTable *table,
										  struct ForeignServer *server, bool setting,
										  bool *pushdown, bool *use_remote_estimate);
extern void polyglot_set_rel_rows(struct PlannerInfo *root, struct RelOptInfo *baserel,
								  double tuples, double fallback, bool unique);
extern List *polyglot_column_join_clauses(struct PlannerInfo *root,
										  struct RelOptInfo *baserel, int attnum);
struct ParamPathInfo;
extern struct ParamPathInfo *polyglot_join_clause_param(struct PlannerInfo *root,
														struct RelOptInfo *baserel,
														struct RestrictInfo *ri);
typedef bool (*PolyglotJoinClauseUsable) (struct RestrictInfo *ri,
										  struct RelOptInfo *baserel, void *arg);
extern void polyglot_add_parameterized_paths(struct PlannerInfo *root,
											 struct RelOptInfo *baserel, List *candidates,
											 PolyglotJoinClauseUsable usable, void *arg,
											 double startup, double row_cost);
extern void polyglot_add_scan_paths(struct PlannerInfo *root, struct RelOptInfo *baserel,
									int64 limit, List *sort, double startup, double fixed,
									double row_cost, double sort_cost);
extern bool polyglot_grouping_pushable(struct PlannerInfo *root, int stage,
									   struct RelOptInfo *input_rel,
									   struct RelOptInfo *output_rel, void *extra,
									   bool group_by);
typedef List *(*PolyglotDeparseItem) (Expr *expr, void *arg);
typedef const char *(*PolyglotBoolField) (Expr *expr, void *arg);
extern bool polyglot_deparse_boolean(Expr *expr, PolyglotDeparseItem deparse,
									 PolyglotBoolField bool_field, void *arg, List **item);

/* fdw_modify.c: shared by the wrappers' write paths */
extern List *polyglot_updated_attrs(struct PlannerInfo *root, Index resultRelation);
/*
 * The first member of each wrapper's modify state (ri_FdwState), which the
 * shared write callbacks read.
 */
typedef struct PolyglotModifyState
{
	int			batch_size;		/* INSERT: rows per request */
} PolyglotModifyState;
extern int	polyglot_modify_batch_size(struct ResultRelInfo *rinfo);
extern Oid	polyglot_modify_user(struct ModifyTableState *mtstate, struct ResultRelInfo *rinfo);
struct ModifyTable;
struct ExplainState;
struct TupleTableSlot;
struct RelationData;
extern List *polyglot_plan_modify(struct PlannerInfo *root, struct ModifyTable *plan,
								  Index resultRelation, const char *refuse_on_conflict,
								  const char *hint);
extern void polyglot_add_row_identity(struct PlannerInfo *root, Index rtindex, struct RelationData *rel,
									  int attnum, const char *name);
extern AttrNumber polyglot_modify_junk(struct ModifyTableState *mtstate, const char *name);
extern void polyglot_deleted_row(struct TupleTableSlot *slot, int attnum, Datum value,
								 int attnum2, Datum value2);
extern bool polyglot_explain_insert_batch_size(struct ModifyTableState *mtstate,
											   struct ResultRelInfo *rinfo,
											   struct ExplainState *es);
struct FdwRoutine;
extern void polyglot_shared_modify_routine(struct FdwRoutine *routine);

/*
 * The callbacks every wrapper has, named after its prefix (mongo:
 * mongoGetForeignRelSize, mongoBeginForeignModify, ...).  A handler sets
 * them with these and then what is its own (upper paths, import).  Batch
 * INSERT exists from PostgreSQL 14, the oldest version supported.
 */
#define POLYGLOT_CALLBACK(routine, prefix, name) ((routine)->name = prefix##name)
#define POLYGLOT_SET_SCAN_CALLBACKS(r, p) \
	(POLYGLOT_CALLBACK(r, p, GetForeignRelSize), POLYGLOT_CALLBACK(r, p, GetForeignPaths), \
	 POLYGLOT_CALLBACK(r, p, GetForeignPlan), POLYGLOT_CALLBACK(r, p, BeginForeignScan), \
	 POLYGLOT_CALLBACK(r, p, IterateForeignScan), POLYGLOT_CALLBACK(r, p, ReScanForeignScan), \
	 POLYGLOT_CALLBACK(r, p, EndForeignScan), POLYGLOT_CALLBACK(r, p, ExplainForeignScan))
#define POLYGLOT_SET_MODIFY_CALLBACKS(r, p) \
	(POLYGLOT_CALLBACK(r, p, AddForeignUpdateTargets), POLYGLOT_CALLBACK(r, p, PlanForeignModify), \
	 POLYGLOT_CALLBACK(r, p, BeginForeignModify), POLYGLOT_CALLBACK(r, p, ExecForeignInsert), \
	 POLYGLOT_CALLBACK(r, p, ExecForeignBatchInsert), POLYGLOT_CALLBACK(r, p, ExecForeignUpdate), \
	 POLYGLOT_CALLBACK(r, p, ExecForeignDelete), POLYGLOT_CALLBACK(r, p, EndForeignModify), \
	 POLYGLOT_CALLBACK(r, p, BeginForeignInsert), POLYGLOT_CALLBACK(r, p, ExplainForeignModify), \
	 polyglot_shared_modify_routine(r))

#endif							/* PG_POLYGLOT_H */
