/*-------------------------------------------------------------------------
 *
 * defaults.h
 *		The defaults of pg_polyglot's settings and options, in one place.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_DEFAULTS_H
#define POLYGLOT_DEFAULTS_H

#define POLYGLOT_DEFAULT_CONNECT_TIMEOUT_MS		5000
#define POLYGLOT_DEFAULT_IO_TIMEOUT_MS			30000
#define POLYGLOT_DEFAULT_REDIS_PORT				6379
#define POLYGLOT_DEFAULT_BATCH_SIZE				1000
#define POLYGLOT_DEFAULT_BATCH_BYTES_KB			(16 * 1024)	/* 16MB */
#define POLYGLOT_DEFAULT_POLL_INTERVAL_MS		1000
#define POLYGLOT_DEFAULT_MAX_ATTEMPTS			10
#define POLYGLOT_DEFAULT_BACKOFF_MAX_MS			60000
#define POLYGLOT_DEFAULT_WORKERS				1
#define POLYGLOT_MAX_WORKERS					64	/* polyglot.workers: a bit each in a uint64 */

/* the foreign tables' */
#define POLYGLOT_DEFAULT_REDIS_BATCH	1000
#define POLYGLOT_DEFAULT_REDIS_KEYS		1000	/* assumed keys under a prefix */
#define POLYGLOT_DEFAULT_ELASTIC_PAGE_SIZE	1000
#define POLYGLOT_DEFAULT_ELASTIC_BATCH_SIZE	100
#define POLYGLOT_DEFAULT_ELASTIC_DOCUMENTS	1000	/* without an estimate */

#endif							/* POLYGLOT_DEFAULTS_H */
