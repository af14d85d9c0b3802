/*-------------------------------------------------------------------------
 *
 * conncache.c
 *		Per-backend cache of store connections, keyed by server and user
 *		mapping, invalidated by ALTER/DROP SERVER and USER MAPPING.
 *
 * The model is contrib/postgres_fdw/connection.c.  Each store owns one
 * PolyglotConnCache and keeps its own handle type (redisContext,
 * mongoc_client_t, CURL) in the entries; this file only knows how to find,
 * invalidate and drop them, through the store's disconnect callback.
 *
 * A syscache callback only marks entries invalid: a scan may be using the
 * connection at that moment.  An invalid entry is reconnected the next time
 * it is asked for, and dropped at the end of the transaction if nobody
 * asked.  Handles are allocated by the store libraries with malloc, outside
 * PostgreSQL memory contexts; every one is released by the disconnect
 * callback, at the latest when the backend exits.
 *
 * What an operation keeps between calls (a pipelined batch whose replies
 * are still to come, a cursor, a request in flight) belongs to one handle,
 * which it pins (polyglot_conncache_pin).  Dropping a pinned handle retires
 * it instead of freeing it: the entry forgets it, the next caller connects
 * again, and the operation goes on with its own handle until it unpins.
 * Handles are told apart by generation numbers, never by address: a new
 * handle may be allocated where a freed one was.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/ipc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"
#include "common/conncache.h"

#define MAX_CACHES 8				/* one per kind of connection: Redis, Redis
								 * Cluster, MongoDB, Elasticsearch, HTTP */

static PolyglotConnCache *caches[MAX_CACHES];
static int	ncaches = 0;
static bool callbacks_registered = false;

/* A handle dropped from its entry while pinned: freed at its last unpin */
typedef struct RetiredHandle
{
	struct RetiredHandle *next;
	PolyglotConnCache *cache;
	void	   *handle;
	uint64		generation;
	int			pins;
} RetiredHandle;

static RetiredHandle *retired = NULL;

/* the generation of the next handle; 0 is none */
static uint64 next_generation = 1;

/*
 * Drops the handle of an entry: frees it, or retires it while it is
 * pinned.  Never ereports (it runs in transaction callbacks).  Returns
 * false, leaving the handle in place, only when there was no memory to
 * retire it: the entry then stays invalidated and is tried again later.
 */
static bool
disconnect_entry(PolyglotConnCache *cache, PolyglotConnEntry *entry)
{
	void	   *conn = entry->conn;

	if (conn == NULL)
		return true;
	if (entry->pins > 0)
	{
		RetiredHandle *r = MemoryContextAllocExtended(TopMemoryContext, sizeof(RetiredHandle),
													  MCXT_ALLOC_NO_OOM);

		if (r == NULL)
			return false;
		r->cache = cache;
		r->handle = conn;
		r->generation = entry->generation;
		r->pins = entry->pins;
		r->next = retired;
		retired = r;
		entry->conn = NULL;
		entry->pins = 0;
		return true;
	}
	entry->conn = NULL;
	cache->disconnect(conn);
	return true;
}

/* A scan of the entries of every cache, in order (next_entry) */
typedef struct EntryScan
{
	int			cache;			/* index in caches[] being scanned, -1 at first */
	HASH_SEQ_STATUS seq;
} EntryScan;

#define ENTRY_SCAN_INIT {.cache = -1}

/*
 * The next entry of a scan, and its cache in *cache; NULL at the end (a
 * scan must then not go on).  A scan is read to its end: hash_seq_search
 * ends each cache's sequential scan itself.
 */
static PolyglotConnEntry *
next_entry(EntryScan *scan, PolyglotConnCache **cache)
{
	for (;;)
	{
		PolyglotConnEntry *entry;

		if (scan->cache >= 0 &&
			(entry = hash_seq_search(&scan->seq)) != NULL)
		{
			*cache = caches[scan->cache];
			return entry;
		}
		do
			scan->cache++;
		while (scan->cache < ncaches && caches[scan->cache]->hash == NULL);
		if (scan->cache >= ncaches)
			return NULL;
		hash_seq_init(&scan->seq, caches[scan->cache]->hash);
	}
}

static void
conncache_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	EntryScan	scan = ENTRY_SCAN_INIT;
	PolyglotConnCache *cache;
	PolyglotConnEntry *entry;

	while ((entry = next_entry(&scan, &cache)) != NULL)
	{
		if (entry->conn == NULL)
			continue;
		/* hashvalue 0 means a cache reset: everything goes */
		if (hashvalue == 0)
			entry->invalidated = true;
		else if (cacheid == FOREIGNSERVEROID &&
				 entry->server_hashvalue == hashvalue)
			entry->invalidated = true;
		/*
		 * A user mapping change may also create the mapping that an entry
		 * without one should now use, so those go too.
		 */
		else if (cacheid == USERMAPPINGOID &&
				 (entry->mapping_hashvalue == hashvalue ||
				  !OidIsValid(entry->key.umid)))
			entry->invalidated = true;
	}
}

/* At transaction end no scan holds a connection: drop the invalid ones. */
static void
conncache_xact_callback(XactEvent event, void *arg)
{
	EntryScan	scan = ENTRY_SCAN_INIT;
	PolyglotConnCache *cache;
	PolyglotConnEntry *entry;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;

	while ((entry = next_entry(&scan, &cache)) != NULL)
	{
		if (entry->invalidated && disconnect_entry(cache, entry))
			entry->invalidated = false;
	}
}

static void
conncache_exit_callback(int code, Datum arg)
{
	int			i;

	/* the process ends: pins no longer matter */
	while (retired)
	{
		RetiredHandle *r = retired;

		retired = r->next;
		r->cache->disconnect(r->handle);
	}
	for (i = 0; i < ncaches; i++)
	{
		HASH_SEQ_STATUS scan;
		PolyglotConnEntry *entry;

		if (caches[i]->hash == NULL)
			continue;
		hash_seq_init(&scan, caches[i]->hash);
		while ((entry = hash_seq_search(&scan)) != NULL)
		{
			entry->pins = 0;
			disconnect_entry(caches[i], entry);
		}
		if (caches[i]->at_exit)
			caches[i]->at_exit();
	}
}

static void
conncache_init(PolyglotConnCache *cache)
{
	HASHCTL		ctl;

	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, conncache_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, conncache_inval_callback, (Datum) 0);
		RegisterXactCallback(conncache_xact_callback, NULL);
		on_proc_exit(conncache_exit_callback, (Datum) 0);
		callbacks_registered = true;
	}

	if (ncaches >= MAX_CACHES)
		elog(ERROR, "too many pg_polyglot connection caches");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PolyglotConnKey);
	ctl.entrysize = cache->entry_size;
	cache->hash = hash_create(cache->store, 8, &ctl, HASH_ELEM | HASH_BLOBS);
	caches[ncaches++] = cache;
}

/*
 * Returns the cache entry for a server and optional user mapping, creating
 * it if needed.  An invalidated entry is disconnected first (its handle
 * retired if pinned), so the caller finds entry->conn == NULL whenever it
 * must (re)connect, and connects with the current options; the handle it
 * stores in entry->conn gets a new generation.  The entry lives until the
 * backend exits, at the same address.
 */
PolyglotConnEntry *
polyglot_conncache_entry(PolyglotConnCache *cache, ForeignServer *server,
						 UserMapping *user)
{
	PolyglotConnKey key;
	PolyglotConnEntry *entry;
	bool		found;

	if (cache->hash == NULL)
		conncache_init(cache);

	memset(&key, 0, sizeof(key));
	key.serverid = server->serverid;
	key.umid = user ? user->umid : InvalidOid;

	entry = hash_search(cache->hash, &key, HASH_ENTER, &found);
	if (!found)
	{
		/* zero everything after the key, including the store's fields */
		memset((char *) entry + sizeof(PolyglotConnKey), 0,
			   cache->entry_size - sizeof(PolyglotConnKey));
		entry->cache = cache;
	}

	if (entry->invalidated && disconnect_entry(cache, entry))
		entry->invalidated = false;

	if (entry->conn == NULL)
	{
		entry->generation = next_generation++;
		entry->pins = 0;
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(server->serverid));
		entry->mapping_hashvalue = user ?
			GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user->umid)) : 0;
	}
	return entry;
}

/*
 * Drops the connection of an entry at once, for a handle that an I/O error
 * left unusable.  Safe to call with no connection.
 */
void
polyglot_conncache_discard(PolyglotConnCache *cache, PolyglotConnEntry *entry)
{
	if (disconnect_entry(cache, entry))
		entry->invalidated = false;
	else
		entry->invalidated = true;	/* retired later */
}

/*
 * Pins the entry's current handle (it must be connected) into *pin, which
 * must hold nothing.  Until polyglot_conncache_unpin(), pin->handle stays
 * allocated, whatever happens to the entry.  The caller must unpin on
 * every path, errors included (a memory context callback, the sink's
 * abandon), or the handle lives until the backend exits.
 */
void
polyglot_conncache_pin(PolyglotConnEntry *entry, PolyglotConnPin *pin)
{
	Assert(pin->handle == NULL);
	if (entry->conn == NULL)
		elog(ERROR, "pg_polyglot: cannot pin a connection that is not open");
	pin->entry = entry;
	pin->handle = entry->conn;
	pin->generation = entry->generation;
	entry->pins++;
}

/* Is the pinned handle still its entry's, the one new callers get? */
bool
polyglot_conncache_pin_current(const PolyglotConnPin *pin)
{
	return pin->handle != NULL && pin->entry->conn != NULL &&
		pin->entry->generation == pin->generation;
}

/*
 * Releases a pin; a retired handle is freed with its last pin.  Safe to
 * call on a pin that holds nothing; never ereports.
 */
void
polyglot_conncache_unpin(PolyglotConnPin *pin)
{
	RetiredHandle **prev;

	if (pin->handle == NULL)
		return;
	if (polyglot_conncache_pin_current(pin))
	{
		Assert(pin->entry->pins > 0);
		pin->entry->pins--;
	}
	else
	{
		for (prev = &retired; *prev; prev = &(*prev)->next)
		{
			RetiredHandle *r = *prev;

			if (r->generation != pin->generation)
				continue;
			if (--r->pins == 0)
			{
				*prev = r->next;
				r->cache->disconnect(r->handle);
				pfree(r);
			}
			break;
		}
	}
	pin->handle = NULL;
	pin->entry = NULL;
}

/*
 * Drops a pinned handle that an I/O error left unusable from its entry,
 * if it is still the entry's: later callers connect again.  The pin still
 * holds it until unpinned.
 */
void
polyglot_conncache_discard_pinned(const PolyglotConnPin *pin)
{
	if (polyglot_conncache_pin_current(pin))
		polyglot_conncache_discard(pin->entry->cache, pin->entry);
}
