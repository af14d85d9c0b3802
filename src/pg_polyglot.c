/*-------------------------------------------------------------------------
 *
 * pg_polyglot.c
 *		Entry point of the pg_polyglot extension: settings and module
 *		initialisation.
 *
 * The library may be loaded two ways: through shared_preload_libraries,
 * which the delivery worker needs, or on first use of one of its functions
 * in a backend.  Reloadable settings are defined either way; the ones that
 * need a restart only when preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>


#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/core.h"

PG_MODULE_MAGIC;

char	   *polyglot_database = NULL;
int			polyglot_workers = POLYGLOT_DEFAULT_WORKERS;
int			polyglot_batch_size = POLYGLOT_DEFAULT_BATCH_SIZE;
int			polyglot_batch_bytes = POLYGLOT_DEFAULT_BATCH_BYTES_KB;
int			polyglot_poll_interval = POLYGLOT_DEFAULT_POLL_INTERVAL_MS;
int			polyglot_max_attempts = POLYGLOT_DEFAULT_MAX_ATTEMPTS;
int			polyglot_backoff_max = POLYGLOT_DEFAULT_BACKOFF_MAX_MS;
bool		polyglot_mongo_pushdown = true;
bool		polyglot_elastic_pushdown = true;
bool		polyglot_redis_pushdown = true;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * Settings read only at server start exist only when the library is
	 * preloaded: PostgreSQL cannot create them in a running server.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("polyglot.database",
								   "Only database whose routes are delivered; empty: every database with pg_polyglot.",
								   NULL,
								   &polyglot_database,
								   "",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

		DefineCustomIntVariable("polyglot.workers",
								"Number of delivery workers per database.",
								"Keys are split across workers by hash, so order per key holds.",
								&polyglot_workers,
								POLYGLOT_DEFAULT_WORKERS, 1, POLYGLOT_MAX_WORKERS,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	DefineCustomBoolVariable("polyglot.mongo_pushdown",
							 "Sends the WHERE clauses of MongoDB foreign tables to the server.",
							 "Off, every document is fetched and filtered locally: for comparison and diagnosis.",
							 &polyglot_mongo_pushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("polyglot.elastic_pushdown",
							 "Sends the WHERE, ORDER BY, LIMIT and count(*) of Elasticsearch foreign tables to the server.",
							 "Off, every document is fetched and filtered locally (a query column still searches): for comparison and diagnosis.",
							 &polyglot_elastic_pushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("polyglot.redis_pushdown",
							 "Looks up the keys a WHERE clause names in Redis foreign tables instead of scanning.",
							 "Off, every key under the table's prefix is scanned and filtered locally: for comparison and diagnosis.",
							 &polyglot_redis_pushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("polyglot.batch_size",
							"Maximum number of outbox events the worker delivers in one batch.",
							NULL,
							&polyglot_batch_size,
							POLYGLOT_DEFAULT_BATCH_SIZE, 1, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("polyglot.batch_bytes",
							"Maximum size of the rows the worker delivers in one batch.",
							"The keys whose rows do not fit wait for the next batch; a batch always takes at least one row.",
							&polyglot_batch_bytes,
							POLYGLOT_DEFAULT_BATCH_BYTES_KB, 1, MAX_KILOBYTES,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("polyglot.poll_interval",
							"How often the worker looks for new events when not woken at commit.",
							NULL,
							&polyglot_poll_interval,
							POLYGLOT_DEFAULT_POLL_INTERVAL_MS, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("polyglot.max_attempts",
							"Delivery attempts of an event before it moves to the dead letters.",
							NULL,
							&polyglot_max_attempts,
							POLYGLOT_DEFAULT_MAX_ATTEMPTS, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("polyglot.backoff_max",
							"Longest pause of a route between retries against an unavailable store.",
							NULL,
							&polyglot_backoff_max,
							POLYGLOT_DEFAULT_BACKOFF_MAX_MS, 100, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("polyglot");
#else
	EmitWarningsOnPlaceholders("polyglot");
#endif

	/* the stores' own set-up (Redis key joins: a planner hook) */
	polyglot_stores_init();

	/* the delivery processes need shared memory and preloading */
	if (process_shared_preload_libraries_in_progress)
	{
		polyglot_shmem_init();
		polyglot_register_launcher();
		polyglot_install_hooks();
	}
}
