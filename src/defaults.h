/*-------------------------------------------------------------------------
 *
 * defaults.h
 *		The defaults of pg_polyglot's settings and options, in one place.
 *
 * Limits are in the option tables (*_option.c) and setting definitions
 * (pg_polyglot.c); the outbox's chunk size is the outbox's (core/outbox.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_DEFAULTS_H
#define POLYGLOT_DEFAULTS_H

/* settings (pg_polyglot.c) */
#define POLYGLOT_DEFAULT_BATCH_SIZE				1000
#define POLYGLOT_DEFAULT_BATCH_BYTES_KB			(16 * 1024)	/* 16MB */
#define POLYGLOT_DEFAULT_POLL_INTERVAL_MS		1000
#define POLYGLOT_DEFAULT_MAX_ATTEMPTS			10
#define POLYGLOT_DEFAULT_BACKOFF_MAX_MS			60000
#define POLYGLOT_DEFAULT_WORKERS				1
#define POLYGLOT_MAX_WORKERS					64	/* polyglot.workers: a bit each in a uint64 */

/* server options: where a store is, and how long to wait for it */
#define POLYGLOT_DEFAULT_CONNECT_TIMEOUT_MS		5000
#define POLYGLOT_DEFAULT_STREAM_MAXLEN			1000000	/* entries kept, about */
#define POLYGLOT_DEFAULT_IO_TIMEOUT_MS			30000
#define POLYGLOT_DEFAULT_REDIS_HOST				"127.0.0.1"
#define POLYGLOT_DEFAULT_REDIS_PORT				6379
#define POLYGLOT_DEFAULT_MONGO_URI				"mongodb://127.0.0.1:27017"
#define POLYGLOT_DEFAULT_ELASTIC_URL			"http://127.0.0.1:9200"

/* foreign tables: batch and page sizes, and the planner's guesses */
#define POLYGLOT_DEFAULT_REDIS_BATCH			1000
#define POLYGLOT_DEFAULT_REDIS_KEYS				1000	/* assumed keys under a prefix */
#define POLYGLOT_DEFAULT_MONGO_BATCH_SIZE		100
#define POLYGLOT_DEFAULT_ELASTIC_PAGE_SIZE		1000
#define POLYGLOT_DEFAULT_ELASTIC_BATCH_SIZE		100
#define POLYGLOT_DEFAULT_ELASTIC_DOCUMENTS		1000	/* without an estimate */

#endif							/* POLYGLOT_DEFAULTS_H */
