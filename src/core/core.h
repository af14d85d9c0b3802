/*-------------------------------------------------------------------------
 *
 * core.h
 *		Declarations of the sync core: shared memory, launcher and worker,
 *		capture, routes and dispatch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_CORE_H
#define POLYGLOT_CORE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* worker.c: shared memory, launcher, per-database worker */
extern void polyglot_shmem_init(void);
extern void polyglot_register_launcher(void);
extern void polyglot_install_hooks(void);
extern bool polyglot_preloaded(void);
extern void polyglot_wake_database(Oid dboid, uint64 slots);

/* "route has new outbox rows for worker slot": see polyglot_wake_routes() */
typedef struct PolyglotWakeHint
{
	int32		route;
	int			slot;
} PolyglotWakeHint;

/* routes are told apart by their id modulo this in a worker's hints */
#define POLYGLOT_ROUTE_HINT_BITS	1024

extern void polyglot_wake_routes(Oid dboid, uint64 slots, const PolyglotWakeHint *hints,
								 int nhints);
extern bool polyglot_take_route_hints(uint64 *bits);
extern bool polyglot_await_worker_rounds(int timeout_ms);

/* capture.c */
extern void polyglot_request_wake_at_commit(void);
extern void polyglot_capture_forget(int32 route);

/* keytext.c: the text form of key values */
extern char *polyglot_key_text(Oid typid, Datum value);
extern void polyglot_key_output_setup(Oid atttypid, Oid *basetypid, FmgrInfo *outfunc,
									  MemoryContext mcxt);
extern char *polyglot_key_output(FmgrInfo *outfunc, Oid basetypid, Datum value);
extern void polyglot_spi_key_texts(HeapTuple tuple, TupleDesc tupdesc, int ncols, Oid *typids,
								   FmgrInfo *outfuncs, Datum *elems);

/*
 * A route as the worker sees it.  The worker keeps its routes from round to
 * round until something they were read from changes (dispatch.c); what is
 * worked out on first use (store_options, filter, fields) is allocated in
 * the memory context of the route itself, and lives as long.
 */
typedef struct PolyglotRoute
{
	int32		id;
	Oid			source_relid;
	char	   *source_name;	/* qualified, quoted */
	char	   *table_name;		/* unqualified, for messages and payloads */
	Oid			server_oid;
	char	   *store;
	Jsonb	   *options;		/* the route options, as stored */
	void	   *store_options;	/* what the store's sink reads of them, parsed
								 * on first use (*_option.c) */
	List	   *key_columns;	/* of char *, in key order */
	List	   *key_types;		/* of char *, format_type of each key column */
	List	   *key_typids;		/* of Oid, the type of each key column */
	List	   *columns;		/* of char *: the columns delivered */
	Oid			owner;
	bool		paused;
	bool		source_exists;
	Oid			source_owner;	/* owner of the table, who reads its rows */
	ForeignServer *server;		/* NULL when the server was dropped */
	UserMapping *user;			/* the owner's user mapping, or NULL */
	bool		owner_mapping;	/* sync() found the owner's own user mapping */
	char	   *access_error;	/* why the owner may no longer use the server, or NULL */
	void	   *sink_private;	/* what the sink's prepare() learnt, for this round */
	TimestampTz backoff_until;	/* 0 if none */
	int32		consecutive_failures;
	bool		backfilling;	/* a backfill is under way */
	bool		restored;		/* no route_state: loaded by a restore, not
								 * yet reattached (_reattach_restored()) */
	char	   *filter;			/* the "where" option, columns qualified by
								 * t: see polyglot_route_filter() */
	bool		filter_done;	/* filter was worked out */
	int			nfields;		/* the last nfields of columns are the
								 * document's fields ("include", "embed") */
	char	   *fields;			/* their SQL: see polyglot_route_fields() */
	bool		fields_done;
	bool		fanning_out;	/* fan-out rows wait: see polyglot_fanout_step() */
	bool		stale;			/* an invalidation since it was read concerns
								 * it: see routes_stale() in dispatch.c */
	bool		stale_maybe;	/* one that may concern it (any relation, for
								 * a route with documents) */
	uint8		stale_streak;	/* its batches dropped in a row for those */
	TimestampTz created_at;		/* when sync() made it: with the id, which a
								 * new CREATE EXTENSION gives out again,
								 * tells this route from an earlier one */
} PolyglotRoute;

/* One event of a batch, with the row's state read in the same snapshot */
typedef struct PolyglotEvent
{
	int64		id;				/* outbox row; one row may hold many keys */
	int32		attempts;
	char		op;
	TimestampTz enqueued_at;
	List	   *key;			/* of char *: key column values as text */
	bool		found;			/* the row exists: upsert; else delete */
	char	   *json;			/* the row as JSON (json/publish modes) */
	int			json_len;		/* its length */
	char	  **values;			/* the delivered columns as text, NULL for SQL NULL */
	void	   *row;			/* the row as the sink rendered it (datums payload) */
	Size		row_len;
	char	   *render_error;	/* why the sink could not render it: the key fails */
} PolyglotEvent;

/* What a sink reports for each key of a batch */
typedef enum PolyglotItemStatus
{
	POLYGLOT_ITEM_OK,
	POLYGLOT_ITEM_FAILED,		/* failed for this key: retry, then dead letter */
	POLYGLOT_ITEM_STALE,		/* done: the store holds newer data and refused
								 * this write as older (counted in status.stale) */
	POLYGLOT_ITEM_REJECTED		/* can never be delivered as it is (its key
								 * does not parse as the key column's type):
								 * a dead letter at once, no retries */
} PolyglotItemStatus;

typedef struct PolyglotItemResult
{
	PolyglotItemStatus status;
	char	   *error;			/* when failed */
} PolyglotItemResult;

/* privileges.c */
extern Oid	polyglot_extension_owner(void);
extern void polyglot_check_route_privilege(int32 route);
extern PolyglotRoute *polyglot_load_route_as_owner(int32 route_id);

/* What polyglot_owner_spi_begin() saved, for polyglot_owner_spi_end() */
typedef struct PolyglotOwnerSpi
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
} PolyglotOwnerSpi;

extern void polyglot_owner_spi_begin(PolyglotOwnerSpi *saved);
extern void polyglot_owner_spi_end(PolyglotOwnerSpi *saved);
extern int	polyglot_pin_search_path(void);
extern int	polyglot_fix_settings(bool for_process);
extern void polyglot_rename_server_routes(const char *newname);

/* the search_path of SQL run with the worker's or the extension owner's rights */
#define POLYGLOT_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * The most tables a route's document relates ("include", "embed", nested);
 * relation n's fan-out rows are the outbox rows of the route in slot -n
 */
#define POLYGLOT_MAX_RELATIONS 64

/* fence.c */
extern void polyglot_fence_note(int32 route, int slot);

/* dispatch.c */
extern int	polyglot_worker_slot;
extern int	polyglot_old_prepared_xacts(void);
extern bool polyglot_dispatch_round(bool full, long *sleep_ms, bool *extension_gone,
									 bool *did_work);
extern void polyglot_forget_routes(void);
extern long polyglot_record_route_failure(PolyglotRoute *route, ErrorData *edata);
extern int	polyglot_served_version(void);

/* rowfilter.c: the "where" option */
extern char *polyglot_where_text(Oid relid, const char *where, const char *alias,
								 bool as_given);
extern const char *polyglot_route_filter(PolyglotRoute *route);
extern Jsonb *polyglot_where_as_given(Oid relid, Jsonb *options);

/* document.c: the "include" and "embed" options */
extern const char *polyglot_route_fields(PolyglotRoute *route);
extern List *polyglot_document_field_names(Jsonb *options);
extern Jsonb *polyglot_document_as_given(Oid relid, Jsonb *options);
extern char *polyglot_relation_condition(Jsonb *options, int relation, const char *param);

/* backfill.c */
extern bool polyglot_backfill_step(PolyglotRoute *route, bool *waiting);
extern bool polyglot_fanout_step(PolyglotRoute *route, bool *waiting);

/* spi_util.c: the worker's short transactions and SPI statements */
extern void begin_tx(void);
extern void end_tx(void);
extern uint64 spi_exec_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes,
							Datum *args, const char *nulls, bool read_only, int expected,
							const char *what);
extern uint64 spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args,
					   const char *nulls, bool read_only, int expected, const char *what);
extern char *spi_text(HeapTuple tup, int col, MemoryContext cxt);
extern Datum spi_datum(HeapTuple tup, int col, bool *isnull);
extern List *spi_text_array(HeapTuple tup, int col, MemoryContext cxt);

/* backoff (src/common/backoff.c) */
extern int	polyglot_backoff_ms(int failures, int base_ms, int max_ms);

#endif							/* POLYGLOT_CORE_H */
