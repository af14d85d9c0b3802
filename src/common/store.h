/*-------------------------------------------------------------------------
 *
 * store.h
 *		The stores pg_polyglot speaks to.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_STORE_H
#define POLYGLOT_STORE_H

#include "foreign/foreign.h"

typedef enum PolyglotStore
{
	POLYGLOT_STORE_REDIS,
	POLYGLOT_STORE_MONGO,
	POLYGLOT_STORE_ELASTIC
} PolyglotStore;

/* in store.c */
extern PolyglotStore polyglot_server_store(ForeignServer *server);

#endif							/* POLYGLOT_STORE_H */
