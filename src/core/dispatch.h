/*-------------------------------------------------------------------------
 *
 * dispatch.h
 *		The interface between the delivery loop and a store's sink.
 *
 * A sink delivers the items of one batch (one per key, the row's current
 * state) and reports a result per item.  It is called with no transaction
 * open and must not start one: the route carries what it needs from the
 * catalogs (options, server, user mapping), loaded once per round.  It ereports when the whole batch
 * failed (store unreachable, timeout, a transient error of the store): the
 * route then backs off and the batch is read again later.
 *
 * A key the store refuses must fail alone.  A key the store is certain to
 * refuse fails before sending (its result, or ev->render_error).  When the
 * store refuses a whole request for what it holds (an HTTP 400 of a bulk
 * request, a document too large), the sink ereports with SQLSTATE 22000
 * (ERRCODE_DATA_EXCEPTION, and no other failure uses it): the delivery loop
 * then sends the batch again in halves, down to single keys, so that only
 * the key at fault counts an attempt.  A sink checks the shape of every
 * reply it reads: a reply it cannot match with its request fails the batch,
 * never passes for a success.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_DISPATCH_H
#define POLYGLOT_DISPATCH_H

#include "compat.h"
#include "core/core.h"

/* What a batch query reads of each row, besides the key */
typedef enum PolyglotPayload
{
	POLYGLOT_PAYLOAD_NONE,		/* keys only */
	POLYGLOT_PAYLOAD_JSON,		/* the delivered columns as one JSON object */
	POLYGLOT_PAYLOAD_COLUMNS,	/* each delivered column as text */
	POLYGLOT_PAYLOAD_DATUMS		/* the delivered columns' values, rendered by the sink */
} PolyglotPayload;

/* How a row compares with the store (polyglot.verify) */
typedef enum PolyglotVerdict
{
	POLYGLOT_SAME,
	POLYGLOT_MISSING,			/* the store has nothing for the row */
	POLYGLOT_DIFFERENT			/* the store holds something else */
} PolyglotVerdict;

/* A key a store holds for a route: its name there and the source key (NIL: none) */
typedef struct PolyglotStoreKey
{
	char	   *name;
	List	   *key;			/* of char *, the key columns' values as text */
} PolyglotStoreKey;

/* All events of one key in a batch */
typedef struct PolyglotItem
{
	PolyglotEvent *event;		/* the first: its row state is the key's */
	char	   *key_string;		/* the key, encoded for comparison */
	List	   *events;			/* every event of the key, acknowledged together */
} PolyglotItem;

/*
 * A sink delivers a batch in two steps, so that the store works through one
 * batch while the worker reads the next: send() writes the batch and
 * returns its state; finish() waits for the outcome and fills results.
 * Batches of a route are sent and finished in order, at most two in flight.
 * A sink that cannot split the two does all in send() and reports in
 * finish().  abandon() is called for a sent batch that will not be
 * finished (an error came first): the sink must not let its replies be
 * taken for another batch's.
 */
typedef struct PolyglotSink
{
	/*
	 * Optional: called before a route's batches, with no transaction open:
	 * connect, learn what the store supports (into route->sink_private).
	 * Ereports like a failed batch.
	 */
	void		(*prepare) (PolyglotRoute *route);
	/* what the batch query must read for this route */
	PolyglotPayload (*payload) (PolyglotRoute *route);
	/*
	 * POLYGLOT_PAYLOAD_DATUMS only: renders the key and, when the row
	 * exists, its values (of the route's columns, in order, with their
	 * types; values is NULL when the row is gone) into ev->row, allocated
	 * in cxt.  Called inside the read transaction, for every item.  A row
	 * the store cannot hold sets ev->render_error: that key fails.
	 */
	void		(*render_row) (PolyglotRoute *route, PolyglotEvent *ev, Datum *values,
							   bool *isnull, Oid *types, MemoryContext cxt);
	/* start delivering items; ereport if the batch cannot be sent */
	void	   *(*send) (PolyglotRoute *route, List *items);
	/* fill results[i] for each item; ereport if the batch failed */
	void		(*finish) (PolyglotRoute *route, List *items, void *sent,
						   PolyglotItemResult *results);
	/* forget a sent batch; never ereports */
	void		(*abandon) (PolyglotRoute *route, void *sent);

	/*
	 * polyglot.verify(), optional.  verify_unsupported: why the route cannot
	 * be compared (NULL: it can).  verify: the verdict for each item (read
	 * and rendered as for delivery) against the store, and the key's name
	 * there (for the report).  store_keys: the next page of the keys the
	 * store holds for the route (NIL when done; *state is NULL at first,
	 * and lives in state_cxt).
	 */
	const char *(*verify_unsupported) (PolyglotRoute *route);
	void		(*verify) (PolyglotRoute *route, List *items, PolyglotVerdict *verdicts,
							   char **names);
	List	   *(*store_keys) (PolyglotRoute *route, void **state, MemoryContext state_cxt);

	/*
	 * Optional: called by polyglot.sync() once the route exists, in the
	 * caller's transaction, as the caller (the route's owner): makes the
	 * store's target as the route's options describe it (an index of
	 * given mappings), or ereports, which fails the sync().  What it did
	 * in the store stays if the transaction then aborts.
	 */
	void		(*create_target) (PolyglotRoute *route);
} PolyglotSink;

/*
 * The callbacks every sink of this extension has, named after its prefix
 * (redis: redis_prepare, redis_payload, ...): a sink's definition is
 * { POLYGLOT_SINK_CALLBACKS(redis), and the optional ones it has }.
 */
#define POLYGLOT_SINK_CALLBACKS(prefix) \
	.prepare = prefix##_prepare, \
	.payload = prefix##_payload, \
	.send = prefix##_send, \
	.finish = prefix##_finish, \
	.abandon = prefix##_abandon, \
	.verify = prefix##_verify, \
	.store_keys = prefix##_store_keys

extern const PolyglotSink polyglot_redis_sink;
extern const PolyglotSink polyglot_mongo_sink;
extern const PolyglotSink polyglot_elastic_sink;
extern const PolyglotSink polyglot_http_sink;

/* rowstate.c: false when the route's rows must be read with a query */
extern bool polyglot_read_rows_direct(PolyglotRoute *route, const PolyglotSink *sink,
									  PolyglotPayload payload, PolyglotItem **items,
									  int nitems, MemoryContext cxt, Size limit,
									  bool *loaded);

extern List *polyglot_load_routes(int32 route_id, MemoryContext cxt);
extern const PolyglotSink *polyglot_sink_for(PolyglotRoute *route);
extern void polyglot_route_require_server(PolyglotRoute *route);
extern void polyglot_read_rows(PolyglotRoute *route, const PolyglotSink *sink,
							   PolyglotPayload payload, List *items, MemoryContext cxt);
extern void polyglot_read_rows_bounded(PolyglotRoute *route, const PolyglotSink *sink,
									   PolyglotPayload payload, List *items,
									   MemoryContext cxt, Size limit, bool *loaded);
extern Size polyglot_event_bytes(PolyglotEvent *ev, int ncols);
extern char *polyglot_key_string(List *key, StringInfo scratch);
pg_noreturn extern void polyglot_rethrow_as_data_exception(MemoryContext cxt);

/* event.c: the change events of event routes (Redis streams, HTTP) */
typedef struct PolyglotChange
{
	char	   *id;				/* "<route>-<position>-<hash>" */
	int64		position;		/* the newest outbox position it covers */
	const char *op;				/* "upsert" or "delete" */
	char	   *key_json;		/* {"column": "value", ...} */
	const char *row_json;		/* the row as JSON, or "null" */
	char	   *ts;				/* ISO 8601, UTC */
} PolyglotChange;

extern void polyglot_change_init(PolyglotChange *change, PolyglotRoute *route,
								 PolyglotItem *item);
extern char *polyglot_key_json(List *key_columns, List *key);
extern char *polyglot_change_digest(PolyglotChange *change);
extern void polyglot_change_append_json(StringInfo buf, PolyglotRoute *route,
										PolyglotChange *change);

/* verify.c */
extern bool polyglot_try(void (*fn) (void *arg), void *arg);

#endif							/* POLYGLOT_DISPATCH_H */
