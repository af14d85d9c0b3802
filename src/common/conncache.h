/*-------------------------------------------------------------------------
 *
 * conncache.h
 *		Per-backend connection cache shared by the three stores.
 *
 * A store embeds PolyglotConnEntry as the first member of its own entry
 * struct, sets entry_size to the size of that struct and supplies a
 * disconnect callback that frees its handle.
 *
 * An operation that keeps using a handle after it returns to its caller (a
 * batch sent whose replies are read later, a cursor, a request in flight)
 * pins it: the cache then never frees that handle under it.  When the
 * entry must drop a pinned handle (its server or user mapping changed, an
 * I/O error), the handle is retired: later callers get a new one, and the
 * retired one is freed when its last pin goes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_CONNCACHE_H
#define POLYGLOT_CONNCACHE_H

#include "foreign/foreign.h"
#include "utils/hsearch.h"

typedef struct PolyglotConnCache PolyglotConnCache;

typedef struct PolyglotConnKey
{
	Oid			serverid;
	Oid			umid;			/* InvalidOid when no user mapping applies */
} PolyglotConnKey;

typedef struct PolyglotConnEntry
{
	PolyglotConnKey key;		/* hash key: must be first */
	void	   *conn;			/* the store's handle, NULL if not connected */
	uint64		generation;		/* of conn: no other handle of the backend had it */
	int			pins;			/* pins held on conn */
	PolyglotConnCache *cache;	/* the cache the entry belongs to */
	bool		invalidated;	/* server or mapping changed: reconnect */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
} PolyglotConnEntry;

struct PolyglotConnCache
{
	const char *store;			/* name of the hash table */
	Size		entry_size;		/* sizeof the store's entry struct */
	void		(*disconnect) (void *conn);	/* frees a handle; never ereports */
	void		(*at_exit) (void);	/* library cleanup at backend exit, or NULL */
	HTAB	   *hash;			/* created on first use */
};

/*
 * An operation's hold on one handle.  handle is what the operation uses,
 * never entry->conn, which may be another handle by then; NULL when
 * nothing is held.  Zeroed memory is a pin that holds nothing.
 */
typedef struct PolyglotConnPin
{
	PolyglotConnEntry *entry;
	void	   *handle;
	uint64		generation;
} PolyglotConnPin;

extern PolyglotConnEntry *polyglot_conncache_entry(PolyglotConnCache *cache,
												   ForeignServer *server,
												   UserMapping *user);
extern void polyglot_conncache_discard(PolyglotConnCache *cache,
									   PolyglotConnEntry *entry);
extern void polyglot_conncache_pin(PolyglotConnEntry *entry, PolyglotConnPin *pin);
extern void polyglot_conncache_unpin(PolyglotConnPin *pin);
extern bool polyglot_conncache_pin_current(const PolyglotConnPin *pin);
extern void polyglot_conncache_discard_pinned(const PolyglotConnPin *pin);

#endif							/* POLYGLOT_CONNCACHE_H */
