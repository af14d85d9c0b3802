/*-------------------------------------------------------------------------
 *
 * fence.c
 *		Read-your-writes: polyglot.await_delivery(timeout) waits until every
 *		change this session has committed is in every store it goes to.
 *
 * The session remembers, per route its commits wrote outbox rows for, the
 * start time of the first and of the last such transaction: every outbox
 * row a capture trigger writes carries its transaction's start time as
 * enqueued_at, and the worker keeps a key's enqueued_at when it puts the
 * key back (a retry, keys a batch left out) or gives it up (a dead
 * letter).  The session's changes to a route are therefore delivered once
 * no outbox row of the route has an enqueued_at up to the last one's: the
 * worker deletes a row only in the transaction that records its delivery.
 * Rows of other sessions' older transactions may be waited for too; none
 * of this session's is overlooked.
 *
 * A change of a related table (route option include or embed) may be a
 * fan-out row, which the worker expands into outbox rows of its own, stamped
 * with the expanding transaction's start, and deletes once expanded.  Once
 * the session's rows are gone, the documents they fanned out to are among
 * the rows enqueued before that moment: a second wait covers those.
 *
 * A change given up is not delivered: a dead letter of the route enqueued
 * no later than the session's last change, and given up after its first,
 * makes the wait go on until the timeout (a dead letter carries the oldest
 * enqueue time of the events coalesced into it).
 *
 * The checks read the outbox with the latest snapshot, as the extension's
 * owner (the outbox is not the caller's to read), whatever the caller's
 * isolation level; between checks the backend sleeps on its latch, 1 ms at
 * first and up to 50 ms, serving interrupts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "core/core.h"

PG_FUNCTION_INFO_V1(polyglot_await_delivery);

/*
 * The times compared come from different processes' readings of the clock
 * (a worker's now() as a dead letter's failed_at, its step's start as the
 * fan-out's stamps): a margin against a clock that steps back, which only
 * ever lengthens a wait
 */
#define CLOCK_MARGIN	((TimestampTz) USECS_PER_SEC)

/* What the session has committed to one route */
typedef struct FenceRoute
{
	int32		route;
	TimestampTz first;			/* start of its first transaction that wrote rows */
	TimestampTz last;			/* start of its last one */
	bool		fanout;			/* some rows were fan-out rows (slot < 0) */
} FenceRoute;

static FenceRoute *committed = NULL;	/* in TopMemoryContext */
static int	ncommitted = 0;
static int	committed_cap = 0;

/* the routes the current transaction wrote rows for, until it ends */
static FenceRoute *pending = NULL;
static int	npending = 0;
static int	pending_cap = 0;

/* Makes room for need entries in an array */
static void
reserve(FenceRoute **arr, int *cap, int need)
{
	if (need <= *cap)
		return;
	*cap = Max(Max(*cap * 2, 8), need);
	*arr = *arr ? repalloc(*arr, sizeof(FenceRoute) * *cap) :
		MemoryContextAlloc(TopMemoryContext, sizeof(FenceRoute) * *cap);
}

/* The entry of a route, added if missing (the caller reserved room) */
static FenceRoute *
find_or_add(FenceRoute *arr, int *n, int cap, int32 route, bool *found)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (arr[i].route == route)
		{
			*found = true;
			return &arr[i];
		}
	Assert(*n < cap);
	*found = false;
	arr[*n].route = route;
	return &arr[(*n)++];
}

static void
fence_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* what it wrote becomes the session's to wait for */
			for (i = 0; i < npending; i++)
			{
				bool		found;
				FenceRoute *f = find_or_add(committed, &ncommitted, committed_cap,
											pending[i].route, &found);

				if (!found)
				{
					f->first = pending[i].first;
					f->last = pending[i].last;
					f->fanout = false;
				}
				/* (Max and Min: whatever the clock did between) */
				f->first = Min(f->first, pending[i].first);
				f->last = Max(f->last, pending[i].last);
				f->fanout |= pending[i].fanout;
			}
			npending = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* rolled back, or prepared: its commit is not this session's */
			npending = 0;
			break;
		default:
			break;
	}
}

/*
 * Notes that the current transaction writes an outbox row of a route (for
 * worker slot slot: negative for a fan-out row).  Called for every outbox
 * row written (a worker's too: a few bytes per route, never waited for).
 */
void
polyglot_fence_note(int32 route, int slot)
{
	static bool registered = false;
	bool		found;
	FenceRoute *f;

	if (!registered)
	{
		RegisterXactCallback(fence_xact_callback, NULL);
		registered = true;
	}
	/*
	 * Room for it here and, at commit, among the committed: the commit
	 * callback must not allocate (an error after the commit record would
	 * be a PANIC), nor drop an entry (an early true)
	 */
	reserve(&pending, &pending_cap, npending + 1);
	reserve(&committed, &committed_cap, ncommitted + npending + 1);
	f = find_or_add(pending, &npending, pending_cap, route, &found);

	if (!found)
	{
		f->first = f->last = GetCurrentTransactionStartTimestamp();
		f->fanout = false;
	}
	if (slot < 0)
		f->fanout = true;
}

/*
 * Does route have an outbox row enqueued up to upto (fan-out rows too, or
 * only the rows of the workers' slots), or a dead letter enqueued up to
 * upto and given up since from?  Read with the latest snapshot, as the
 * extension's owner.
 */
static bool
route_has_pending(int32 route, TimestampTz from, TimestampTz upto, bool with_fanout)
{
	static const char sql[] =
		"SELECT EXISTS (SELECT FROM polyglot.outbox o "
		"                WHERE o.route_id OPERATOR(pg_catalog.=) $1 "
		"                  AND o.enqueued_at OPERATOR(pg_catalog.<=) $3 "
		"                  AND ($4 OR o.slot OPERATOR(pg_catalog.>=) 0)) "
		"    OR EXISTS (SELECT FROM polyglot.dead_letters d "
		"                WHERE d.route_id OPERATOR(pg_catalog.=) $1 "
		"                  AND d.failed_at OPERATOR(pg_catalog.>=) $2 "
		"                  AND d.enqueued_at OPERATOR(pg_catalog.<=) $3)";
	Oid			argtypes[4] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID};
	Datum		args[4];
	PolyglotOwnerSpi saved;
	bool		pending_rows;
	bool		isnull;
	static SPIPlanPtr plan = NULL;

	args[0] = Int32GetDatum(route);
	args[1] = TimestampTzGetDatum(from - CLOCK_MARGIN);
	args[2] = TimestampTzGetDatum(upto);
	args[3] = BoolGetDatum(with_fanout);

	polyglot_owner_spi_begin(&saved);
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, 4, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "pg_polyglot: preparing the delivery check failed: %s",
				 SPI_result_code_string(SPI_result));
		plan = p;
	}
	if (SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_polyglot: checking the delivery of route %d failed", route);
	pending_rows = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											  &isnull));
	polyglot_owner_spi_end(&saved);
	return !isnull && pending_rows;
}

/*
 * polyglot.await_delivery(timeout interval DEFAULT '30s') RETURNS boolean:
 * true once every change this session committed so far is delivered to
 * every route it went to, false when the timeout passes first.  Changes
 * found delivered are not waited for again by a later call.
 */
Datum
polyglot_await_delivery(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	TimestampTz deadline;
	TimestampTz start = GetCurrentTimestamp();
	int64		usecs;
	bool	   *done;
	TimestampTz *second;		/* the fan-out's second wait: rows up to then */
	long		nap_ms = 1;
	int			left;
	int			i;

	if (timeout->month != 0 ||
		pg_mul_s64_overflow((int64) timeout->day, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, timeout->time, &usecs) || usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid timeout for polyglot.await_delivery()"),
				 errdetail("The timeout is a duration of zero or more, in days, hours, minutes or seconds; not in months or years."),
				 errhint("Give one such as '30s'.")));
	if (pg_add_s64_overflow(start, usecs, &deadline))
		deadline = DT_NOEND;
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(NOTICE,
				(errmsg("the changes of the current transaction are not waited for"),
				 errdetail("polyglot.await_delivery() waits for committed changes only, and this transaction has written."),
				 errhint("Call it after COMMIT.")));

	if (ncommitted == 0)
		PG_RETURN_BOOL(true);
	done = palloc0(sizeof(bool) * ncommitted);
	second = palloc0(sizeof(TimestampTz) * ncommitted);
	left = ncommitted;

	for (;;)
	{
		for (i = 0; i < ncommitted; i++)
		{
			FenceRoute *f = &committed[i];

			if (done[i])
				continue;
			if (second[i] == 0)
			{
				if (route_has_pending(f->route, f->first, f->last, true))
					continue;
				if (!f->fanout)
				{
					done[i] = true;
					left--;
					continue;
				}
				/*
				 * the documents the fan-out rows were expanded into: rows
				 * enqueued up to now (and a margin, should the clock step
				 * back between the worker's stamp and this reading)
				 */
				second[i] = GetCurrentTimestamp() + CLOCK_MARGIN;
			}
			if (!route_has_pending(f->route, f->first, second[i], false))
			{
				done[i] = true;
				left--;
			}
		}
		if (left == 0)
			break;
		if (GetCurrentTimestamp() >= deadline)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(nap_ms, Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline), 1)),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		nap_ms = Min(nap_ms * 2, 50);
	}

	/* what is delivered is not waited for again */
	if (left == 0)
		ncommitted = 0;
	else
	{
		int			kept = 0;

		for (i = 0; i < ncommitted; i++)
			if (!done[i])
				committed[kept++] = committed[i];
		ncommitted = kept;
	}
	PG_RETURN_BOOL(left == 0);
}
