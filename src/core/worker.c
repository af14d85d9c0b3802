/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The delivery processes: a launcher and polyglot.workers workers per
 *		database.
 *
 * The launcher is a static background worker connected to no database,
 * so it never blocks DROP DATABASE.  It starts one dynamic worker for each
 * database where pg_polyglot may be installed (every connectable database,
 * or only polyglot.database when that is set), restarts a worker that dies,
 * and starts one for a new database when CREATE EXTENSION or polyglot.sync()
 * asks for it.  A worker finding no extension in its database exits and
 * is not restarted until asked again.
 *
 * With polyglot.workers = N > 1 a database has N workers.  Keys are split
 * between them by hash (polyglot_key_slot()): worker i delivers the outbox
 * rows of slot i only, so each key's changes are delivered by one process,
 * in order, while different keys proceed in parallel.  The launcher starts
 * worker 0, which finds the extension, re-splits outbox rows written under
 * another polyglot.workers (a restart changed it), and only then asks for
 * workers 1 to N-1; it re-splits again whenever a transaction prepared
 * before the restart ends, since such a transaction's rows appear only at
 * COMMIT PREPARED (and no worker reads rows of another nslots).  Worker 0
 * also runs the backfills.
 *
 * A worker drains the outbox of its database (dispatch.c).  It sleeps on its
 * latch, which backends set when a transaction that captured changes
 * commits, and polls every polyglot.poll_interval as a fallback.
 *
 * DROP DATABASE would wait for the worker connected to the database and
 * fail: a ProcessUtility hook stops the worker first and keeps the launcher
 * from restarting it.
 *
 * Shared state is an array of slots, one per (database, worker), under a
 * spinlock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "utils/acl.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "core/core.h"
#include "core/outbox.h"

PG_FUNCTION_INFO_V1(polyglot_wake);
PG_FUNCTION_INFO_V1(polyglot_require_worker);

#define POLYGLOT_MAX_DATABASES			64
#define POLYGLOT_LAUNCHER_RESCAN_MS		30000
#define POLYGLOT_WORKER_RESTART_MS		5000
#define POLYGLOT_MIN_ROUND_INTERVAL_MS	2
#define POLYGLOT_IDLE_ROUND_INTERVAL_MS	50
#define POLYGLOT_IDLE_AFTER_EMPTY_ROUNDS	3

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_REQUESTED,				/* the launcher should start a worker */
	SLOT_STARTING,				/* registered, not yet attached */
	SLOT_RUNNING,				/* the worker is attached */
	SLOT_NO_EXTENSION,			/* the worker found no pg_polyglot and left */
	SLOT_DROPPING				/* DROP DATABASE in progress: do not restart */
} SlotState;

typedef struct PolyglotDbSlot
{
	Oid			dboid;
	int			index;			/* which of the database's workers */
	SlotState	state;
	pid_t		pid;
	Latch	   *latch;			/* the worker's latch while RUNNING */
	TimestampTz not_before;		/* earliest restart after a failure */
	uint64		rounds;			/* delivery rounds the worker has started */

	/*
	 * Which routes have new outbox rows for this worker since it last
	 * looked: bit (route id mod POLYGLOT_ROUTE_HINT_BITS) of hints, set at
	 * commit by the transactions that wrote them; hint_all when a writer did
	 * not say which routes (SQL functions, a re-split).  A hint only saves
	 * the worker looking at routes that have nothing; a missing one costs a
	 * delay until the next full round (polyglot.poll_interval), never a
	 * change.
	 */
	bool		hint_all;
	uint64		hints[POLYGLOT_ROUTE_HINT_BITS / 64];
} PolyglotDbSlot;

typedef struct PolyglotShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	int			nslots;			/* POLYGLOT_MAX_DATABASES * workers */
	PolyglotDbSlot slots[FLEXIBLE_ARRAY_MEMBER];
} PolyglotShared;

/* What the launcher tells a worker it starts, in bgw_extra */
typedef struct WorkerArgs
{
	Oid			dboid;
	int			index;
} WorkerArgs;

/* this worker's index among its database's workers, and so its key slot */
int			polyglot_worker_slot = 0;

static PolyglotShared *shared = NULL;
static bool preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

PGDLLEXPORT void polyglot_launcher_main(Datum main_arg);
PGDLLEXPORT void polyglot_worker_main(Datum main_arg);

/* ---------------------------------------------------------------- shmem */

static int
total_slots(void)
{
	return POLYGLOT_MAX_DATABASES * polyglot_nslots();
}

static Size
polyglot_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(PolyglotShared, slots),
							 mul_size(sizeof(PolyglotDbSlot), total_slots())));
}

#if PG_VERSION_NUM >= 150000
static void
polyglot_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(polyglot_shmem_size());
}
#endif

static void
polyglot_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_polyglot", polyglot_shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, polyglot_shmem_size());
		SpinLockInit(&shared->mutex);
		shared->nslots = total_slots();
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init while preloading: asks for shared memory.
 */
void
polyglot_shmem_init(void)
{
	preloaded = true;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = polyglot_shmem_request;
#else
	RequestAddinShmemSpace(polyglot_shmem_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = polyglot_shmem_startup;
}

/* True when the library was preloaded, so the launcher and workers exist. */
bool
polyglot_preloaded(void)
{
	return preloaded && shared != NULL;
}

/* The slot of a database's worker, or NULL; the caller holds the mutex. */
static PolyglotDbSlot *
find_slot(Oid dboid, int index)
{
	int			i;

	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].state != SLOT_FREE && shared->slots[i].dboid == dboid &&
			shared->slots[i].index == index)
			return &shared->slots[i];
	return NULL;
}

/* A free slot for a database's worker, or NULL when all are taken; holds the mutex. */
static PolyglotDbSlot *
alloc_slot(Oid dboid, int index)
{
	int			i;

	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].state == SLOT_FREE)
		{
			PolyglotDbSlot *slot = &shared->slots[i];

			memset(slot, 0, sizeof(*slot));
			slot->dboid = dboid;
			slot->index = index;
			slot->state = SLOT_REQUESTED;
			return slot;
		}
	return NULL;
}

/*
 * Wakes the workers of a database whose slots are in the bit mask, or asks
 * the launcher for the database's first worker (which ignores databases
 * that polyglot.database excludes).  Cheap enough for every commit that
 * captured changes, and safe at commit time: no catalog access.  A no-op
 * when the library is not preloaded.
 */
void
polyglot_wake_database(Oid dboid, uint64 slots)
{
	polyglot_wake_routes(dboid, slots, NULL, 0);
}

/*
 * Wakes the workers of a database whose slots are in the bit mask, as
 * polyglot_wake_database(), and tells them which routes have new rows for
 * them: hints[0 .. nhints-1] (route, worker slot).  With hints NULL, any
 * route may have.  Same rules as polyglot_wake_database().
 */
void
polyglot_wake_routes(Oid dboid, uint64 slots, const PolyglotWakeHint *hints, int nhints)
{
	PolyglotDbSlot *first;
	Latch	   *latches[POLYGLOT_MAX_WORKERS];
	int			nlatches = 0;
	Latch	   *launcher_latch = NULL;
	int			i;

	if (!polyglot_preloaded())
		return;

	SpinLockAcquire(&shared->mutex);
	first = find_slot(dboid, 0);
	if (first == NULL)
		first = alloc_slot(dboid, 0);
	else if (first->state == SLOT_NO_EXTENSION)
		first->state = SLOT_REQUESTED;
	if (first == NULL || first->state != SLOT_RUNNING)
		launcher_latch = shared->launcher_latch;
	for (i = 0; i < shared->nslots; i++)
	{
		PolyglotDbSlot *slot = &shared->slots[i];
		int			h;

		if (slot->dboid != dboid || slot->state == SLOT_FREE ||
			slot->index >= POLYGLOT_MAX_WORKERS ||
			(slots & (UINT64CONST(1) << slot->index)) == 0)
			continue;
		if (hints == NULL)
			slot->hint_all = true;
		for (h = 0; hints != NULL && h < nhints; h++)
			if (hints[h].slot == slot->index)
			{
				uint32		bit = (uint32) hints[h].route % POLYGLOT_ROUTE_HINT_BITS;

				slot->hints[bit / 64] |= UINT64CONST(1) << (bit % 64);
			}
		if (slot->state == SLOT_RUNNING && slot->latch && nlatches < (int) lengthof(latches))
			latches[nlatches++] = slot->latch;
	}
	SpinLockRelease(&shared->mutex);

	for (i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
	if (launcher_latch)
		SetLatch(launcher_latch);
}

/* ---------------------------------------------------------------- DROP DATABASE */

/*
 * Stops the workers of a database that is about to be dropped and keeps the
 * launcher from restarting them; DROP DATABASE waits a few seconds for
 * other sessions to leave, which is plenty for the workers.
 */
static void
stop_worker_for_drop(Oid dboid)
{
	pid_t		pids[POLYGLOT_MAX_WORKERS];
	int			npids = 0;
	int			i;

	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < shared->nslots; i++)
	{
		PolyglotDbSlot *slot = &shared->slots[i];

		if (slot->state == SLOT_FREE || slot->dboid != dboid)
			continue;
		if (slot->pid > 0 && npids < POLYGLOT_MAX_WORKERS)
			pids[npids++] = slot->pid;
		slot->state = SLOT_DROPPING;
	}
	SpinLockRelease(&shared->mutex);
	for (i = 0; i < npids; i++)
		kill(pids[i], SIGTERM);
}

/*
 * After DROP DATABASE: free the slots, or give the database its first
 * worker back (which asks for the others).  The others' slots are kept
 * until it does: their old workers may not have exited yet, and the
 * launcher starts a new one in the same slot only once the old one is
 * gone (in another slot, two processes could deliver the same keys).
 */
static void
finish_drop(Oid dboid, bool dropped)
{
	Latch	   *launcher_latch;
	int			i;

	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < shared->nslots; i++)
	{
		PolyglotDbSlot *slot = &shared->slots[i];

		if (slot->state != SLOT_DROPPING || slot->dboid != dboid)
			continue;
		if (dropped)
			slot->state = SLOT_FREE;
		else if (slot->index > 0)
			slot->state = SLOT_NO_EXTENSION;	/* until worker 0 asks again */
		else
			slot->state = SLOT_REQUESTED;
	}
	launcher_latch = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);
	if (launcher_latch)
		SetLatch(launcher_latch);
}

static void
polyglot_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
#if PG_VERSION_NUM >= 140000
						bool readOnlyTree,
#endif
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest,
						QueryCompletion *qc)
{
	volatile Oid dropped_db = InvalidOid;

	if (shared && IsA(pstmt->utilityStmt, DropdbStmt))
	{
		DropdbStmt *stmt = (DropdbStmt *) pstmt->utilityStmt;

		dropped_db = get_database_oid(stmt->dbname, true);

		/*
		 * Only a drop that may succeed stops the workers: a role that may
		 * not drop the database (PostgreSQL checks ownership next) must not
		 * be able to interrupt its delivery by trying.
		 */
#if PG_VERSION_NUM >= 160000
		if (OidIsValid(dropped_db) &&
			!object_ownercheck(DatabaseRelationId, dropped_db, GetUserId()))
#else
		if (OidIsValid(dropped_db) && !pg_database_ownercheck(dropped_db, GetUserId()))
#endif
			dropped_db = InvalidOid;
		if (OidIsValid(dropped_db))
			stop_worker_for_drop(dropped_db);
	}

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString,
#if PG_VERSION_NUM >= 140000
								readOnlyTree,
#endif
								context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString,
#if PG_VERSION_NUM >= 140000
									readOnlyTree,
#endif
									context, params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (OidIsValid(dropped_db))
			finish_drop(dropped_db, false);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (OidIsValid(dropped_db))
		finish_drop(dropped_db, true);

	/* ALTER SERVER ... RENAME TO: its routes take the new name */
	if (IsA(pstmt->utilityStmt, RenameStmt) &&
		((RenameStmt *) pstmt->utilityStmt)->renameType == OBJECT_FOREIGN_SERVER)
		polyglot_rename_server_routes(((RenameStmt *) pstmt->utilityStmt)->newname);

	/* DROP EXTENSION pg_polyglot: wake the worker, so that it leaves */
	if (shared && IsA(pstmt->utilityStmt, DropStmt) &&
		((DropStmt *) pstmt->utilityStmt)->removeType == OBJECT_EXTENSION)
		polyglot_request_wake_at_commit();

	/*
	 * COMMIT PREPARED: the outbox rows of the prepared transaction appear
	 * now, and its commit woke no worker.
	 */
	if (shared && IsA(pstmt->utilityStmt, TransactionStmt) &&
		((TransactionStmt *) pstmt->utilityStmt)->kind == TRANS_STMT_COMMIT_PREPARED)
		polyglot_request_wake_at_commit();

	/*
	 * ALTER EXTENSION pg_polyglot UPDATE: the workers keep their routes
	 * until an invalidation of polyglot.routes, and must look at the
	 * version they serve again (an update need not touch the routes).
	 */
	if (IsA(pstmt->utilityStmt, AlterExtensionStmt) &&
		strcmp(((AlterExtensionStmt *) pstmt->utilityStmt)->extname, "pg_polyglot") == 0)
	{
		Oid			nsp = get_namespace_oid("polyglot", true);
		Oid			routes = OidIsValid(nsp) ? get_relname_relid("routes", nsp) : InvalidOid;

		if (OidIsValid(routes))
			CacheInvalidateRelcacheByRelid(routes);
		polyglot_request_wake_at_commit();
	}
}

void
polyglot_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = polyglot_ProcessUtility;
}

/* ---------------------------------------------------------------- launcher */

void
polyglot_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_polyglot");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "polyglot_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_polyglot launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_polyglot launcher");
	RegisterBackgroundWorker(&worker);
}

/* The start of a launcher's or worker's turn: its latch reset, interrupts and a reload served */
static void
wake_up(void)
{
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* The OIDs of the databases a worker may serve (launcher: no database). */
static List *
list_databases(void)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext outer = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		if (polyglot_database && polyglot_database[0] != '\0' &&
			strcmp(NameStr(db->datname), polyglot_database) != 0)
			continue;
		old = MemoryContextSwitchTo(outer);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return result;
}

static bool
start_worker(Oid dboid, int index, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;
	WorkerArgs	args;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_polyglot");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "polyglot_worker_main");
	if (polyglot_nslots() == 1)
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_polyglot worker for database %u", dboid);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_polyglot worker %d/%d for database %u",
				 index + 1, polyglot_nslots(), dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_polyglot worker");
	args.dboid = dboid;
	args.index = index;
	StaticAssertStmt(sizeof(args) <= BGW_EXTRALEN, "worker arguments do not fit in bgw_extra");
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

void
polyglot_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle **handles;
	Oid		   *handle_dboid;	/* whose worker handles[i] started */
	int		   *handle_index;
	TimestampTz next_rescan = 0;
	List	   *known = NIL;		/* databases seen, in TopMemoryContext */
	bool		warned_full = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("pg_polyglot launcher");

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * shared->nslots);
	handle_dboid = MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * shared->nslots);
	handle_index = MemoryContextAllocZero(TopMemoryContext, sizeof(int) * shared->nslots);
	SpinLockAcquire(&shared->mutex);
	shared->launcher_latch = MyLatch;
	SpinLockRelease(&shared->mutex);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = POLYGLOT_LAUNCHER_RESCAN_MS;
		int			i;

		wake_up();

		/* new databases get a worker that checks for the extension */
		if (now >= next_rescan)
		{
			List	   *dbs;
			ListCell   *lc;
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			dbs = list_databases();
			MemoryContextSwitchTo(old);

			foreach(lc, dbs)
			{
				Oid			dboid = lfirst_oid(lc);
				bool		full;

				if (list_member_oid(known, dboid))
					continue;
				known = lappend_oid(known, dboid);
				SpinLockAcquire(&shared->mutex);
				full = find_slot(dboid, 0) == NULL && alloc_slot(dboid, 0) == NULL;
				SpinLockRelease(&shared->mutex);
				/* reported with the lock released: ereport may not run under a spinlock */
				if (full && !warned_full)
				{
					warned_full = true;
					ereport(WARNING,
							(errmsg("pg_polyglot serves at most %d databases", POLYGLOT_MAX_DATABASES)));
				}
			}
			list_free(dbs);
			next_rescan = TimestampTzPlusMilliseconds(now, POLYGLOT_LAUNCHER_RESCAN_MS);
		}

		for (i = 0; i < shared->nslots; i++)
		{
			PolyglotDbSlot *slot = &shared->slots[i];
			SlotState	state;
			Oid			dboid;
			int			index;
			TimestampTz not_before;

			/*
			 * A worker that was started: has it stopped?  Its slot may have
			 * been given to another database's worker meanwhile (DROP
			 * DATABASE frees the slots of a worker that has not exited
			 * yet): the handle then says nothing of the slot's worker, and
			 * is let go, or that worker would never be started.  A slot
			 * that is only free, or serves the same database's worker of
			 * the same index, keeps its handle: after a failed DROP
			 * DATABASE the old worker may still run, and its successor in
			 * the slot waits until it is gone, else two processes would
			 * deliver the same keys.  The status is read
			 * before the lock is taken (not under a spinlock), the slot
			 * once under it.
			 */
			if (handles[i])
			{
				pid_t		pid;
				BgwHandleStatus status = GetBackgroundWorkerPid(handles[i], &pid);
				bool		reassigned;

				SpinLockAcquire(&shared->mutex);
				reassigned = slot->state != SLOT_FREE &&
					(slot->dboid != handle_dboid[i] || slot->index != handle_index[i]);
				if (!reassigned && status != BGWH_STOPPED)
				{
					SpinLockRelease(&shared->mutex);
					continue;
				}
				if (!reassigned &&
					(slot->state == SLOT_STARTING || slot->state == SLOT_RUNNING))
				{
					/* it died: start it again, after a pause */
					slot->state = SLOT_REQUESTED;
					slot->pid = 0;
					slot->latch = NULL;
					slot->not_before = TimestampTzPlusMilliseconds(now, POLYGLOT_WORKER_RESTART_MS);
				}
				SpinLockRelease(&shared->mutex);
				pfree(handles[i]);
				handles[i] = NULL;
			}

			SpinLockAcquire(&shared->mutex);
			state = slot->state;
			dboid = slot->dboid;
			index = slot->index;
			not_before = slot->not_before;
			SpinLockRelease(&shared->mutex);

			if (state != SLOT_REQUESTED)
				continue;
			/* asked for by a backend: is the database one we serve? */
			if (!list_member_oid(known, dboid))
			{
				List	   *dbs;
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				dbs = list_databases();
				MemoryContextSwitchTo(old);
				if (!list_member_oid(dbs, dboid))
				{
					/* excluded by polyglot.database, or gone */
					list_free(dbs);
					SpinLockAcquire(&shared->mutex);
					if (slot->state == SLOT_REQUESTED)
						slot->state = SLOT_FREE;
					SpinLockRelease(&shared->mutex);
					continue;
				}
				list_free(known);
				known = dbs;
			}
			if (not_before > now)
			{
				long		wait = (long) ((not_before - now) / 1000) + 1;

				timeout = Min(timeout, wait);
				continue;
			}
			if (start_worker(dboid, index, &handles[i]))
			{
				handle_dboid[i] = dboid;
				handle_index[i] = index;
				SpinLockAcquire(&shared->mutex);
				if (slot->state == SLOT_REQUESTED)
					slot->state = SLOT_STARTING;
				SpinLockRelease(&shared->mutex);
			}
			else
			{
				handles[i] = NULL;
				ereport(LOG,
						(errmsg("pg_polyglot could not start a worker for database %u", dboid),
						 errhint("Raise max_worker_processes.")));
				SpinLockAcquire(&shared->mutex);
				slot->not_before = TimestampTzPlusMilliseconds(now, POLYGLOT_WORKER_RESTART_MS);
				SpinLockRelease(&shared->mutex);
				timeout = Min(timeout, POLYGLOT_WORKER_RESTART_MS);
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
}

/* ---------------------------------------------------------------- worker */

static PolyglotDbSlot *my_slot = NULL;

static void
worker_detach(int code, Datum arg)
{
	Latch	   *launcher_latch;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	if (my_slot->dboid == MyDatabaseId && my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
	}
	launcher_latch = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);
	my_slot = NULL;
	if (launcher_latch)
		SetLatch(launcher_latch);
}

/* Leaves for good: the database has no pg_polyglot (any more). */
static void
worker_exit_no_extension(void)
{
	SpinLockAcquire(&shared->mutex);
	if (my_slot && my_slot->state == SLOT_RUNNING)
		my_slot->state = SLOT_NO_EXTENSION;
	SpinLockRelease(&shared->mutex);
	proc_exit(0);
}

static char my_dbname[NAMEDATALEN] = "?";

/* Worker 0: asks the launcher for the database's other workers. */
static void
request_other_workers(Oid dboid)
{
	Latch	   *launcher_latch;
	int			i;
	int			missing = 0;

	SpinLockAcquire(&shared->mutex);
	for (i = 1; i < polyglot_nslots(); i++)
	{
		PolyglotDbSlot *slot = find_slot(dboid, i);

		if (slot == NULL && (slot = alloc_slot(dboid, i)) == NULL)
			missing++;
		else if (slot->state == SLOT_NO_EXTENSION)
			slot->state = SLOT_REQUESTED;
	}
	launcher_latch = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);

	/*
	 * A full array (more databases than pg_polyglot serves): the keys of the
	 * missing workers' slots wait until one is free, so say so.
	 */
	if (missing > 0)
		ereport(WARNING,
				(errmsg("pg_polyglot could not request %d of the %d workers of database \"%s\"",
						missing, polyglot_nslots(), my_dbname),
				 errdetail("pg_polyglot serves at most %d databases; their changes wait in the outbox.",
						   POLYGLOT_MAX_DATABASES)));
	if (launcher_latch)
		SetLatch(launcher_latch);
}

/* Is pg_polyglot installed here?  Also notes the database's name. */
static bool
extension_installed(void)
{
	bool		installed;
	char	   *name;

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("pg_polyglot", true));

	/*
	 * The connection caches key their entries by the syscache hash values
	 * of the server and the user mapping, computed when a sink connects,
	 * with no transaction open.  The first computation in a process sets up
	 * the catalog cache, which needs one: do it now.
	 */
	(void) GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(InvalidOid));
	(void) GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(InvalidOid));
	name = get_database_name(MyDatabaseId);
	if (name)
		strlcpy(my_dbname, name, sizeof(my_dbname));
	CommitTransactionCommand();
	return installed;
}

void
polyglot_worker_main(Datum main_arg)
{
	WorkerArgs	args;
	Oid			dboid;
	MemoryContext loop_cxt;
	volatile int round_errors = 0;
	volatile int empty_rounds = 0;
	volatile int old_prepared = 0;	/* worker 0: see below */
	volatile bool full = true;	/* the next round looks at every route */

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	dboid = args.dboid;
	polyglot_worker_slot = args.index;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	if (polyglot_nslots() == 1)
		pgstat_report_appname("pg_polyglot worker");
	else
		pgstat_report_appname(psprintf("pg_polyglot worker %d/%d", args.index + 1,
									   polyglot_nslots()));

	SpinLockAcquire(&shared->mutex);
	my_slot = find_slot(dboid, args.index);
	if (my_slot && (my_slot->state == SLOT_STARTING || my_slot->state == SLOT_REQUESTED))
	{
		my_slot->state = SLOT_RUNNING;
		my_slot->pid = MyProcPid;
		my_slot->latch = MyLatch;
	}
	else
		my_slot = NULL;
	SpinLockRelease(&shared->mutex);
	if (my_slot == NULL)
		proc_exit(0);			/* the database is being dropped */
	on_shmem_exit(worker_detach, (Datum) 0);

	if (!extension_installed())
		worker_exit_no_extension();

	if (polyglot_nslots() == 1)
		ereport(LOG, (errmsg("pg_polyglot worker started for database \"%s\"", my_dbname)));
	else
		ereport(LOG, (errmsg("pg_polyglot worker %d of %d started for database \"%s\"",
							 args.index + 1, polyglot_nslots(), my_dbname)));

	/*
	 * Outbox queries walk the (route_id, id) index in order and stop at the
	 * batch size.  With stale statistics the planner may prefer a bitmap
	 * scan of the whole route's backlog, which makes draining a backlog
	 * quadratic: forbid the plans that never pay off here.
	 */
	SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The worker's own commits (acknowledgements, retries, dead letters,
	 * route state) need not wait for the WAL flush: if a crash loses one,
	 * the outbox rows it deleted are still there and are delivered again,
	 * which state-based delivery makes harmless.  The same transaction
	 * moves a key to the dead letters and out of the outbox, so neither
	 * is lost without the other.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * A round reads the routes, and rows to deliver, with snapshots taken as
	 * it goes (after a lock, after a re-binding): READ COMMITTED, whatever
	 * default_transaction_isolation the server sets.
	 */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * What the stores receive does not depend on the server's settings (see
	 * polyglot_fix_settings()), and the worker, a superuser, resolves no name
	 * to an object someone created in a schema of the database's search_path.
	 */
	(void) polyglot_fix_settings(true);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "pg_polyglot worker loop",
									 ALLOCSET_DEFAULT_SIZES);

	/*
	 * The first worker makes the outbox fit polyglot.workers, then asks for
	 * the others: no two workers ever hold events of the same key.
	 */
	if (polyglot_worker_slot == 0)
	{
		old_prepared = polyglot_old_prepared_xacts();
		polyglot_resplit_outbox();
		if (polyglot_nslots() > 1)
			request_other_workers(dboid);
	}

	for (;;)
	{
		long		sleep_ms = polyglot_poll_interval;
		bool		extension_gone = false;
		bool		did_work = false;
		bool		more = false;
		MemoryContext old;
		TimestampTz round_start;

		wake_up();

		/* before the round reads the routes: polyglot_await_worker_rounds() */
		SpinLockAcquire(&shared->mutex);
		if (my_slot->pid == MyProcPid)
			my_slot->rounds++;
		SpinLockRelease(&shared->mutex);

		round_start = GetCurrentTimestamp();
		pgstat_report_activity(STATE_RUNNING, "delivering");
		old = MemoryContextSwitchTo(loop_cxt);
		PG_TRY();
		{
			/*
			 * A transaction prepared before the restart that ends now may
			 * have left outbox rows of another polyglot.workers, which no
			 * worker reads: re-split them, and wake the workers.
			 */
			if (polyglot_worker_slot == 0 && old_prepared > 0)
			{
				int			n = polyglot_old_prepared_xacts();

				if (n < old_prepared)
				{
					polyglot_resplit_outbox();
					polyglot_wake_database(MyDatabaseId, ~UINT64CONST(0));
				}
				old_prepared = n;
			}
			more = polyglot_dispatch_round(full, &sleep_ms, &extension_gone, &did_work);
			round_errors = 0;
		}
		PG_CATCH();
		{
			/*
			 * Errors of a route are handled inside the round; this is
			 * anything else (an extension being dropped or updated under
			 * us, say).  Report it and retry later, backing off.
			 */
			MemoryContextSwitchTo(loop_cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			polyglot_forget_routes();
			round_errors++;
			sleep_ms = polyglot_backoff_ms(round_errors, 1000, Max(polyglot_backoff_max, 1000));
			more = false;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_cxt);
		pgstat_report_activity(STATE_IDLE, NULL);

		if (extension_gone)
		{
			ereport(LOG, (errmsg("pg_polyglot was dropped from database \"%s\", worker exiting",
								 my_dbname)));
			worker_exit_no_extension();
		}
		/*
		 * A round that stopped with more to do is followed by a full one at
		 * once; so is a wake-up that no commit caused (the poll, the end of
		 * a backoff, a step to look at again).  A commit's wake-up looks at
		 * the routes it names.
		 */
		full = more;
		if (more)
			continue;
		if ((WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   Max(sleep_ms, 1), PG_WAIT_EXTENSION) & WL_LATCH_SET) == 0)
			full = true;

		/*
		 * Woken at commit: let a burst of commits gather for a moment, so
		 * that a busy database costs a round every few milliseconds rather
		 * than one per commit.  Longer after several rounds in a row that
		 * found nothing to deliver (commits to a paused route, say); one
		 * empty round is only a wake-up for changes the round before
		 * already took.
		 */
		empty_rounds = did_work ? 0 : empty_rounds + 1;
		{
			long		since = (long) ((GetCurrentTimestamp() - round_start) / 1000);
			long		interval = empty_rounds >= POLYGLOT_IDLE_AFTER_EMPTY_ROUNDS ?
				POLYGLOT_IDLE_ROUND_INTERVAL_MS : POLYGLOT_MIN_ROUND_INTERVAL_MS;

			if (since < interval)
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 interval - since, PG_WAIT_EXTENSION);
		}
	}
}

/*
 * Takes the route hints of this worker (see PolyglotDbSlot) and clears
 * them: sets the bits of routes that have new rows in bits
 * (POLYGLOT_ROUTE_HINT_BITS / 64 words) and returns true, or returns false
 * when any route may have (hint_all).  Outbox rows whose hint is taken here
 * are visible to a snapshot taken afterwards: hints are set after the
 * writing transaction committed.
 */
bool
polyglot_take_route_hints(uint64 *bits)
{
	bool		all;

	SpinLockAcquire(&shared->mutex);
	all = my_slot->hint_all || my_slot->pid != MyProcPid;
	memcpy(bits, my_slot->hints, sizeof(my_slot->hints));
	my_slot->hint_all = false;
	memset(my_slot->hints, 0, sizeof(my_slot->hints));
	SpinLockRelease(&shared->mutex);
	return !all;
}

/*
 * Waits until every worker of this database that is running now has
 * started a new delivery round, or until timeout_ms pass (returns false
 * then).  A round reads the routes when it starts, and the round under
 * way now has ended by then: so every batch delivered afterwards follows
 * what the catalog said when this was called (what the caller committed
 * before).  A worker that exits or restarts meanwhile counts as done: a new
 * one reads the routes afresh.  With no worker running, waits for one.
 * Wakes the workers, which may be idle (or has the launcher start them).
 */
bool
polyglot_await_worker_rounds(int timeout_ms)
{
	pid_t		pids[POLYGLOT_MAX_WORKERS];
	int			slots[POLYGLOT_MAX_WORKERS];
	uint64		rounds[POLYGLOT_MAX_WORKERS];
	int			n = 0;
	int			i;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	if (!polyglot_preloaded())
		return false;
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < shared->nslots && n < POLYGLOT_MAX_WORKERS; i++)
	{
		PolyglotDbSlot *slot = &shared->slots[i];

		if (slot->dboid != MyDatabaseId || slot->state != SLOT_RUNNING || slot->pid <= 0)
			continue;
		slots[n] = i;
		pids[n] = slot->pid;
		rounds[n] = slot->rounds;
		n++;
	}
	SpinLockRelease(&shared->mutex);

	for (;;)
	{
		int			waiting = 0;

		polyglot_wake_database(MyDatabaseId, ~UINT64CONST(0));
		SpinLockAcquire(&shared->mutex);
		for (i = 0; i < n; i++)
		{
			PolyglotDbSlot *slot = &shared->slots[slots[i]];

			if (slot->dboid == MyDatabaseId && slot->state == SLOT_RUNNING &&
				slot->pid == pids[i] && slot->rounds == rounds[i])
				waiting++;
		}
		/* none was running: one that runs now started since */
		if (n == 0)
		{
			waiting = 1;
			for (i = 0; i < shared->nslots; i++)
				if (shared->slots[i].dboid == MyDatabaseId &&
					shared->slots[i].state == SLOT_RUNNING && shared->slots[i].pid > 0)
					waiting = 0;
		}
		SpinLockRelease(&shared->mutex);
		if (waiting == 0)
			return true;
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * polyglot._wake(): wake (or have the launcher start) this database's worker
 * when the current transaction commits.
 */
Datum
polyglot_wake(PG_FUNCTION_ARGS)
{
	polyglot_request_wake_at_commit();
	PG_RETURN_VOID();
}

/*
 * polyglot._require_worker(): sync needs the worker, which needs the
 * library in shared_preload_libraries.
 */
Datum
polyglot_require_worker(PG_FUNCTION_ARGS)
{
	if (!polyglot_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_polyglot sync needs the library in shared_preload_libraries"),
				 errdetail("The background worker that delivers changes starts only when the library is preloaded."),
				 errhint("Add pg_polyglot to shared_preload_libraries in postgresql.conf and restart the server.")));
	PG_RETURN_VOID();
}
