/*-------------------------------------------------------------------------
 *
 * store.h
 *		The registry of the stores pg_polyglot speaks to: for each, what
 *		the rest of the extension looks up by store (its name, wrapper,
 *		options, sink and ping).
 *
 * A store is told apart in one place: store.c's table.  Everything else
 * asks the registry, by server (its wrapper's handler) or by the name kept
 * in polyglot.routes.store.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_STORE_H
#define POLYGLOT_STORE_H

#include "foreign/foreign.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"

struct PolyglotSink;

typedef struct PolyglotStoreInfo
{
	const char *name;			/* "redis": polyglot.routes.store, ping's "store" */
	const char *label;			/* "Redis": the store in messages */
	const char *fdw_name;		/* "polyglot_redis" */
	const char *handler;		/* the C symbol of the wrapper's handler */
	const PolyglotOption *options;	/* the wrapper's options */
	/* optional: checks across options, after each was validated */
	void		(*check_options) (List *options, Oid catalog);
	const PolyglotRouteOption *route_options;	/* the options of a sync route */
	/* checks a new route's options, fills in defaults (option.c calls it) */
	void		(*check_route) (PolyglotRouteCheck *check);
	/*
	 * where a server's store is, as far as its options tell: routes to two
	 * servers of one endpoint write one key space
	 */
	char	   *(*endpoint) (ForeignServer *server);
	const struct PolyglotSink *sink;	/* delivery of sync batches */
	/* optional: set-up at library load, in every backend (_PG_init) */
	void		(*init) (void);
	/* a round trip to the store: what polyglot.ping() returns */
	Jsonb	   *(*ping) (ForeignServer *server, UserMapping *user);
} PolyglotStoreInfo;

/* in store.c */
extern const PolyglotStoreInfo *polyglot_server_store(ForeignServer *server);
extern const PolyglotStoreInfo *polyglot_server_store_or_null(ForeignServer *server);
extern const PolyglotStoreInfo *polyglot_store_by_name(const char *name);
extern void polyglot_stores_init(void);

#endif							/* POLYGLOT_STORE_H */
