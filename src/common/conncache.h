/*-------------------------------------------------------------------------
 *
 * conncache.h
 *		Per-backend connection cache shared by the three stores.
 *
 * A store embeds PolyglotConnEntry as the first member of its own entry
 * struct, sets entry_size to the size of that struct and supplies a
 * disconnect callback that frees its handle.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_CONNCACHE_H
#define POLYGLOT_CONNCACHE_H

#include "foreign/foreign.h"
#include "utils/hsearch.h"

typedef struct PolyglotConnKey
{
	Oid			serverid;
	Oid			umid;			/* InvalidOid when no user mapping applies */
} PolyglotConnKey;

typedef struct PolyglotConnEntry
{
	PolyglotConnKey key;		/* hash key: must be first */
	void	   *conn;			/* the store's handle, NULL if not connected */
	bool		invalidated;	/* server or mapping changed: reconnect */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
} PolyglotConnEntry;

typedef struct PolyglotConnCache
{
	const char *store;			/* name of the hash table */
	Size		entry_size;		/* sizeof the store's entry struct */
	void		(*disconnect) (void *conn);	/* frees a handle; never ereports */
	void		(*at_exit) (void);	/* library cleanup at backend exit, or NULL */
	HTAB	   *hash;			/* created on first use */
} PolyglotConnCache;

extern PolyglotConnEntry *polyglot_conncache_entry(PolyglotConnCache *cache,
												   ForeignServer *server,
												   UserMapping *user);
extern void polyglot_conncache_discard(PolyglotConnCache *cache,
									   PolyglotConnEntry *entry);

#endif							/* POLYGLOT_CONNCACHE_H */
