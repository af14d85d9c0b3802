/*-------------------------------------------------------------------------
 *
 * outbox.h
 *		The outbox: rows of keys of pending changes, per route and worker
 *		slot, and the dead letters.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_OUTBOX_H
#define POLYGLOT_OUTBOX_H

#include "postgres.h"

#include "core/core.h"
#include "core/dispatch.h"

/* the most keys one outbox row holds */
#define POLYGLOT_OUTBOX_CHUNK_KEYS	1000

/* in outbox.c */
extern int	polyglot_nslots(void);
extern int	polyglot_key_slot(Datum *texts, int ncols);
extern void polyglot_outbox_load(void);
extern void polyglot_outbox_append(int32 route, int slot, char op, Datum *elems, int nkeys,
								   int ncols);
extern void polyglot_outbox_append_keys(int32 route, char op, Datum *elems, int nkeys, int ncols);
extern int64 polyglot_outbox_rows(int32 route, char op, int64 upto);
extern int64 *polyglot_outbox_position(int32 route_id);
extern List *polyglot_outbox_read(PolyglotRoute *route, Datum inflight_ids, MemoryContext cxt);
extern Datum polyglot_outbox_ids(List *events);
extern void polyglot_outbox_ack(int32 route_id, List *events);
extern void polyglot_outbox_retry_later(PolyglotRoute *route, PolyglotItem *item, int32 attempts,
										const char *error, int retry_ms);
extern void polyglot_outbox_dead_letter(PolyglotRoute *route, PolyglotItem *item, int32 attempts,
										const char *error);
extern void polyglot_outbox_requeue(PolyglotRoute *route, List *deferred);
extern void polyglot_resplit_outbox(void);

#endif							/* POLYGLOT_OUTBOX_H */
