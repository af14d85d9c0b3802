/*-------------------------------------------------------------------------
 *
 * fdw_modify.c
 *		What the write paths of the Redis, MongoDB and Elasticsearch
 *		wrappers share: the columns an UPDATE sets and the row identity
 *		UPDATE and DELETE find rows by, the batch size of an INSERT, whose
 *		user mapping a write uses, what RETURNING of a DELETE sees, and the
 *		batch size in EXPLAIN.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#include "utils/rel.h"

#include "pg_polyglot.h"

/* The attnums (a List of int) of the columns an UPDATE of the relation sets */
List *
polyglot_updated_attrs(PlannerInfo *root, Index resultRelation)
{
	Bitmapset  *cols = get_rel_all_updated_cols(root, find_base_rel(root, resultRelation));
	List	   *attrs = NIL;
	int			col = -1;

	while ((col = bms_next_member(cols, col)) >= 0)
	{
		AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

		if (attno > 0)
			attrs = lappend_int(attrs, attno);
	}
	return attrs;
}

/*
 * GetForeignModifyBatchSize of every wrapper: the batch size of an INSERT,
 * batch_size of its modify state, or one row at a time where rows must be
 * seen one by one (RETURNING, row triggers, a view's WITH CHECK OPTION) or
 * before the modify state exists.
 */
int
polyglot_modify_batch_size(ResultRelInfo *rinfo)
{
	PolyglotModifyState *st = (PolyglotModifyState *) rinfo->ri_FdwState;

	if (st == NULL || rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return st->batch_size;
}

/*
 * The user whose mapping a write uses, as for scans: the view owner for a
 * write through a view, else the current user (also for COPY FROM, which
 * has no ModifyTable).
 */
Oid
polyglot_modify_user(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	Oid			userid = InvalidOid;

	if (mtstate && rinfo->ri_RangeTableIndex > 0)
	{
#if PG_VERSION_NUM >= 160000
		userid = ExecGetResultRelCheckAsUser(rinfo, mtstate->ps.state);
#else
		userid = exec_rt_fetch(rinfo->ri_RangeTableIndex, mtstate->ps.state)->checkAsUser;
#endif
	}
	return OidIsValid(userid) ? userid : GetUserId();
}

/*
 * PlanForeignModify of every wrapper: the columns an UPDATE sets.  A store
 * that cannot honour ON CONFLICT names itself in refuse_on_conflict (NULL:
 * INSERT goes ahead as it is), with an optional hint.
 */
List *
polyglot_plan_modify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
					 const char *refuse_on_conflict, const char *hint)
{
	if (refuse_on_conflict && plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT with ON CONFLICT is not supported on %s foreign tables",
						refuse_on_conflict),
				 hint ? errhint("%s", hint) : 0));
	return list_make1(plan->operation == CMD_UPDATE ?
					  polyglot_updated_attrs(root, resultRelation) : NIL);
}

/*
 * AddForeignUpdateTargets: column attnum of the target relation as the row
 * identity named name, which UPDATE and DELETE find in their plan's rows
 * (polyglot_modify_junk).
 */
void
polyglot_add_row_identity(PlannerInfo *root, Index rtindex, Relation rel, int attnum,
						  const char *name)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);

	add_row_identity_var(root, makeVar(rtindex, attnum, att->atttypid, att->atttypmod,
									   att->attcollation, 0), rtindex, name);
}

/* The attribute number of the row identity name in the rows an UPDATE or DELETE reads */
AttrNumber
polyglot_modify_junk(ModifyTableState *mtstate, const char *name)
{
	Plan	   *subplan = outerPlanState(mtstate)->plan;
	AttrNumber	attno = ExecFindJunkAttributeInTlist(subplan->targetlist, name);

	if (!AttributeNumberIsValid(attno))
		elog(ERROR, "pg_polyglot: %s junk column not found", name);
	return attno;
}

/*
 * What RETURNING of a DELETE sees: the row identity (column attnum holding
 * value, and attnum2 holding value2 unless attnum2 is 0), the other
 * columns NULL; the row is not read back.
 */
void
polyglot_deleted_row(TupleTableSlot *slot, int attnum, Datum value, int attnum2, Datum value2)
{
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	slot->tts_values[attnum - 1] = value;
	slot->tts_isnull[attnum - 1] = false;
	if (attnum2 > 0)
	{
		slot->tts_values[attnum2 - 1] = value2;
		slot->tts_isnull[attnum2 - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
}

/*
 * EXPLAIN of an INSERT: the batch size the executor chose.  Returns false,
 * showing nothing, for UPDATE and DELETE.
 */
bool
polyglot_explain_insert_batch_size(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								   ExplainState *es)
{
#if PG_VERSION_NUM >= 140000
	if (mtstate->operation == CMD_INSERT)
	{
		ExplainPropertyInteger("Batch Size", NULL, rinfo->ri_BatchSize, es);
		return true;
	}
#endif
	return false;
}

/*
 * Sets in routine the write callbacks that every wrapper shares, once the
 * wrapper has set its own: the batch size of an INSERT, and the end of a
 * COPY FROM as the end of its modifications.
 */
void
polyglot_shared_modify_routine(FdwRoutine *routine)
{
#if PG_VERSION_NUM >= 140000
	routine->GetForeignModifyBatchSize = polyglot_modify_batch_size;
#endif
	routine->EndForeignInsert = routine->EndForeignModify;
}
