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
 *   id        "<route>-<position>-<key hash>": the same for every delivery
 *             of the same outbox events of the key, different for any
 *             other event; receivers deduplicate on it
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
	uint64		hash;

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

	/* a key's hash tells apart the keys of one outbox row (a backfill's) */
	hash = hash_bytes_extended((const unsigned char *) item->key_string,
							   strlen(item->key_string), 0);
	change->id = psprintf("%d-" INT64_FORMAT "-%016llx", route->id, position,
						  (unsigned long long) hash);

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
 * with the same digest carry the same state.  Two 64-bit hashes of
 * different seeds.
 */
char *
polyglot_change_digest(PolyglotChange *change)
{
	size_t		len = strlen(change->row_json);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, change->op);
	appendStringInfoChar(&buf, ':');
	appendBinaryStringInfo(&buf, change->row_json, len);
	return psprintf("%016llx%016llx",
					(unsigned long long) hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0),
					(unsigned long long) hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0x9e3779b97f4a7c15ULL));
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
