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

#define MAX_CACHES 4

static PolyglotConnCache *caches[MAX_CACHES];
static int	ncaches = 0;
static bool callbacks_registered = false;

static void
disconnect_entry(PolyglotConnCache *cache, PolyglotConnEntry *entry)
{
	if (entry->conn)
	{
		void	   *conn = entry->conn;

		entry->conn = NULL;
		cache->disconnect(conn);
	}
}

static void
conncache_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	int			i;

	for (i = 0; i < ncaches; i++)
	{
		HASH_SEQ_STATUS scan;
		PolyglotConnEntry *entry;

		if (caches[i]->hash == NULL)
			continue;
		hash_seq_init(&scan, caches[i]->hash);
		while ((entry = hash_seq_search(&scan)) != NULL)
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
			 * A user mapping change may also create the mapping that an
			 * entry without one should now use, so those go too.
			 */
			else if (cacheid == USERMAPPINGOID &&
					 (entry->mapping_hashvalue == hashvalue ||
					  !OidIsValid(entry->key.umid)))
				entry->invalidated = true;
		}
	}
}

/* At transaction end no scan holds a connection: drop the invalid ones. */
static void
conncache_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;

	for (i = 0; i < ncaches; i++)
	{
		HASH_SEQ_STATUS scan;
		PolyglotConnEntry *entry;

		if (caches[i]->hash == NULL)
			continue;
		hash_seq_init(&scan, caches[i]->hash);
		while ((entry = hash_seq_search(&scan)) != NULL)
		{
			if (entry->invalidated)
			{
				disconnect_entry(caches[i], entry);
				entry->invalidated = false;
			}
		}
	}
}

static void
conncache_exit_callback(int code, Datum arg)
{
	int			i;

	for (i = 0; i < ncaches; i++)
	{
		HASH_SEQ_STATUS scan;
		PolyglotConnEntry *entry;

		if (caches[i]->hash == NULL)
			continue;
		hash_seq_init(&scan, caches[i]->hash);
		while ((entry = hash_seq_search(&scan)) != NULL)
			disconnect_entry(caches[i], entry);
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
 * it if needed.  An invalidated entry is disconnected first, so the caller
 * finds entry->conn == NULL whenever it must (re)connect, and connects with
 * the current options.  The entry lives until the backend exits.
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
	}

	if (entry->invalidated)
	{
		disconnect_entry(cache, entry);
		entry->invalidated = false;
	}

	if (entry->conn == NULL)
	{
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
	disconnect_entry(cache, entry);
	entry->invalidated = false;
}
