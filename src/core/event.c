/*-------------------------------------------------------------------------
 *
 * event.c
 *		Change events: what event routes (Redis streams, HTTP webhooks)
 *		deliver for a key, in one schema.
 *
 * An event is the key's state when the worker delivers it, as for every
 * route: the events of one key in a batch coalesce into one, whose row is
 * the row as committed then (null when it is gone).  Its fields:
 *
 *   id        "<route>-<position>-<hash>": the same for every delivery of
 *             the same changes of the key, different for any other event
 *             (covered_hash()); receivers deduplicate on it
 *   position  the newest outbox position among the events it covers (taken
 *             when a change is written: a key's changes can commit out of
 *             that order, so positions identify, they do not order; the
 *             order is the events' own, per key the order of the states
 *             they carry)
 *   op        "upsert" (the row exists) or "delete"
 *   table     the source table's name, unqualified
 *   key       {"<key column>": "<value as text>", ...}
 *   row       the delivered columns as a JSON object, or null
 *   ts        when the newest of its changes was written: the start of
 *             the writing transaction (its now()), in UTC
 *
 * Nothing here does I/O or reads a catalog: sinks run without a
 * transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/json.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "core/dispatch.h"

/*
 * {"<key column>": "<value as text>", ...}: a key as events and publish
 * messages carry it.  palloc'd.
 */
char *
polyglot_key_json(List *key_columns, List *key)
{
	StringInfoData buf;
	ListCell   *kc,
			   *vc;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	forboth(kc, key_columns, vc, key)
	{
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		escape_json(&buf, (const char *) lfirst(kc));
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, (const char *) lfirst(vc));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * What tells an event from every other of its route: a hash of the route's
 * creation time (a route id is given out again after a new CREATE
 * EXTENSION, and so are positions), the key (one outbox row, a backfill's,
 * holds many) and every outbox position the event covers, in order (the
 * newest alone would not do: a key's changes can commit out of the order
 * of their positions, and a later delivery can cover one more change under
 * the same newest position).
 */
static uint64
covered_hash(PolyglotRoute *route, PolyglotItem *item)
{
	int			n = list_length(item->events);
	int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
	StringInfoData buf;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, item->events)
		ids[i++] = ((PolyglotEvent *) lfirst(lc))->id;
	qsort(ids, n, sizeof(int64), cmp_int64);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (const char *) &route->created_at, sizeof(TimestampTz));
	appendBinaryStringInfo(&buf, item->key_string, strlen(item->key_string) + 1);
	appendBinaryStringInfo(&buf, (const char *) ids, sizeof(int64) * n);
	return hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0);
}

/*
 * Fills *change for an item of a route's batch.  Its strings are palloc'd
 * in the current memory context; row_json points into the item's event.
 */
void
polyglot_change_init(PolyglotChange *change, PolyglotRoute *route, PolyglotItem *item)
{
	PolyglotEvent *ev = item->event;
	int64		position = ev->id;
	TimestampTz ts = ev->enqueued_at;
	ListCell   *lc;

	foreach(lc, item->events)
	{
		PolyglotEvent *e = (PolyglotEvent *) lfirst(lc);

		if (e->id > position)
			position = e->id;
		if (e->enqueued_at > ts)
			ts = e->enqueued_at;
	}
	change->position = position;
	change->op = ev->found ? "upsert" : "delete";

	change->id = psprintf("%d-" INT64_FORMAT "-%016llx", route->id, position,
						  (unsigned long long) covered_hash(route, item));
	change->key_json = polyglot_key_json(route->key_columns, ev->key);
	change->row_json = ev->found && ev->json ? ev->json : "null";

	/* ISO 8601 in UTC, as row_to_json() writes it; no catalog lookup */
	{
		char		iso[MAXDATELEN + 1];
		int			utc = 0;

		JsonEncodeDateTime(iso, TimestampTzGetDatum(ts), TIMESTAMPTZOID, &utc);
		change->ts = pstrdup(iso);
	}
}

/*
 * 32 hex digits of a digest of a change's op and row: two changes of a key
 * with the same digest carry the same state.  SHA-256 (its first half), so
 * that no row can be made to pass for another.  OpenSSL's one-shot
 * EVP_Digest allocates nothing PostgreSQL tracks.
 */
char *
polyglot_change_digest(PolyglotChange *change)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, change->op);
	appendStringInfoChar(&buf, ':');
	appendStringInfoString(&buf, change->row_json);
	if (EVP_Digest(buf.data, buf.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a SHA-256 digest")));
	resetStringInfo(&buf);
	for (i = 0; i < 16; i++)
		appendStringInfo(&buf, "%02x", md[i]);
	return buf.data;
}

/* Appends a change as one JSON object, its fields in the documented order */
void
polyglot_change_append_json(StringInfo buf, PolyglotRoute *route, PolyglotChange *change)
{
	appendStringInfoString(buf, "{\"id\": ");
	escape_json(buf, change->id);
	appendStringInfo(buf, ", \"position\": " INT64_FORMAT ", \"op\": \"%s\", \"table\": ",
					 change->position, change->op);
	escape_json(buf, route->table_name ? route->table_name : "");
	appendStringInfo(buf, ", \"key\": %s, \"row\": %s, \"ts\": ",
					 change->key_json, change->row_json);
	escape_json(buf, change->ts);
	appendStringInfoChar(buf, '}');
}
