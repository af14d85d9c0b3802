/*-------------------------------------------------------------------------
 *
 * fdw_modify.c
 *		What the write paths of the Redis, MongoDB and Elasticsearch
 *		wrappers share: the columns an UPDATE sets, the batch size of an
 *		INSERT, and whose user mapping a write uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"

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
 * The batch size of an INSERT: batch_size, or one row at a time where rows
 * must be seen one by one (RETURNING, row triggers, a view's WITH CHECK
 * OPTION) or before the modify state exists.
 */
int
polyglot_modify_batch_size(ResultRelInfo *rinfo, int batch_size)
{
	if (rinfo->ri_FdwState == NULL || rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return batch_size;
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
