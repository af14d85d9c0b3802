/*-------------------------------------------------------------------------
 *
 * redis_keyset.c
 *		A set of Redis keys, for the scan's record of the keys SCAN returned
 *		(every key of a full scan: 100,000 keys, say) and a key join's
 *		distinct keys of a batch.
 *
 * Keys are byte strings without a zero byte, NUL-terminated (text, and
 * the keys SCAN returns that the scan keeps); the set does not copy them:
 * each key must live as long as the set.  Keys are numbered 0, 1, 2... in
 * the order they enter.  An open-addressing table with linear probing, at
 * most three quarters full, of 8-byte slots: a key's hash and number, the
 * key itself (its length, then its bytes) read only when the hashes agree.
 * A probe of a large set misses the processor's cache; small slots keep a
 * set of a hundred thousand keys to a megabyte, where most probes still
 * hit a cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "redis/redis.h"

struct RedisKeySet
{
	MemoryContext cxt;
	uint64	   *slots;			/* hash << 32 | (number + 1); 0: free */
	uint32		nslots;			/* a power of 2 */
	RedisKey   *keys;			/* by number: bytes and length */
	uint32		nkeys;
	uint32		keys_size;		/* allocated */
};

#define SLOT_HASH(s)	((uint32) ((s) >> 32))
#define SLOT_NUMBER(s)	((uint32) ((s) & PG_UINT32_MAX) - 1)

#if defined(__GNUC__) || defined(__clang__)
#define prefetch(p)		__builtin_prefetch(p)
#else
#define prefetch(p)		((void) (p))
#endif

/* An empty set for about nelements keys, allocated in cxt (freed with it) */
RedisKeySet *
polyglot_redis_keyset_create(MemoryContext cxt, uint32 nelements)
{
	RedisKeySet *set = MemoryContextAlloc(cxt, sizeof(RedisKeySet));
	uint32		nslots = 16;

	nelements = Min(nelements, PG_INT32_MAX / 4);
	while (nslots / 4 * 3 < nelements)
		nslots *= 2;
	set->cxt = cxt;
	set->nslots = nslots;
	set->slots = MemoryContextAllocExtended(cxt, sizeof(uint64) * (Size) nslots,
											MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	set->keys_size = Max(nelements, 16);
	set->keys = MemoryContextAllocExtended(cxt, sizeof(RedisKey) * (Size) set->keys_size,
										   MCXT_ALLOC_HUGE);
	set->nkeys = 0;
	return set;
}

/* Doubles the slots, placing every key anew by its hash */
static void
grow(RedisKeySet *set)
{
	uint64	   *old = set->slots;
	uint32		old_nslots = set->nslots;
	uint32		mask;
	uint32		i;

	if (old_nslots >= PG_INT32_MAX / 2)
		elog(ERROR, "pg_polyglot: too many Redis keys in one set");
	set->nslots = old_nslots * 2;
	set->slots = MemoryContextAllocExtended(set->cxt, sizeof(uint64) * (Size) set->nslots,
											MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	mask = set->nslots - 1;
	for (i = 0; i < old_nslots; i++)
	{
		uint32		j;

		if (old[i] == 0)
			continue;
		for (j = SLOT_HASH(old[i]) & mask; set->slots[j] != 0; j = (j + 1) & mask)
			;
		set->slots[j] = old[i];
	}
	pfree(old);
}

/* The hash of key str (len bytes), for the functions below */
uint32
polyglot_redis_keyset_hash(const char *str, size_t len)
{
	return hash_bytes((const unsigned char *) str, (int) len);
}

/*
 * Starts bringing the first slot of a key of that hash into the cache: the
 * scan does it for the keys of a SCAN page before it enters them, so that
 * the slots' cache misses overlap rather than follow one another.
 */
void
polyglot_redis_keyset_prefetch(RedisKeySet *set, uint32 hash)
{
	prefetch(&set->slots[hash & (set->nslots - 1)]);
}

/* The slot of key str (len bytes, of that hash), or of the free slot where it would go */
static inline uint32
find_slot(RedisKeySet *set, const char *str, size_t len, uint32 hash)
{
	uint32		mask = set->nslots - 1;
	uint32		i;

	for (i = hash & mask; set->slots[i] != 0; i = (i + 1) & mask)
	{
		const RedisKey *key;

		if (SLOT_HASH(set->slots[i]) != hash)
			continue;
		/* (hashes agree for other keys too, of other lengths: those first) */
		key = &set->keys[SLOT_NUMBER(set->slots[i])];
		if (key->len == len && memcmp(key->str, str, len) == 0)
			break;
	}
	return i;
}

/*
 * The number of key str (len bytes, NUL-terminated, of that hash: from
 * polyglot_redis_keyset_hash), entered if it was not there (*found false:
 * the new key's number is the count of keys before it, and the set refers
 * to str).
 */
int
polyglot_redis_keyset_enter_hash(RedisKeySet *set, const char *str, size_t len, uint32 hash,
								 bool *found)
{
	uint32		i;

	if (set->nkeys + 1 > set->nslots / 4 * 3)
		grow(set);
	i = find_slot(set, str, len, hash);
	if (set->slots[i] != 0)
	{
		*found = true;
		return (int) SLOT_NUMBER(set->slots[i]);
	}
	if (set->nkeys == set->keys_size)
	{
		set->keys_size *= 2;
		set->keys = repalloc_huge(set->keys, sizeof(RedisKey) * (Size) set->keys_size);
	}
	set->keys[set->nkeys].str = str;
	set->keys[set->nkeys].len = len;
	set->slots[i] = ((uint64) hash << 32) | (uint64) (set->nkeys + 1);
	*found = false;
	return (int) set->nkeys++;
}

/* polyglot_redis_keyset_enter_hash() of a key whose hash is not known yet */
int
polyglot_redis_keyset_enter(RedisKeySet *set, const char *str, size_t len, bool *found)
{
	return polyglot_redis_keyset_enter_hash(set, str, len,
											polyglot_redis_keyset_hash(str, len), found);
}

/* The number of key str (len bytes), or -1 when it is not in the set */
int
polyglot_redis_keyset_find(RedisKeySet *set, const char *str, size_t len)
{
	uint32		i = find_slot(set, str, len, polyglot_redis_keyset_hash(str, len));

	return set->slots[i] != 0 ? (int) SLOT_NUMBER(set->slots[i]) : -1;
}

/*
 * Makes the set refer to key number n at str, the same bytes as before
 * elsewhere (a copy that lives longer)
 */
void
polyglot_redis_keyset_move(RedisKeySet *set, int n, const char *str)
{
	Assert(n >= 0 && (uint32) n < set->nkeys &&
		   memcmp(set->keys[n].str, str, set->keys[n].len) == 0);
	set->keys[n].str = str;
}
