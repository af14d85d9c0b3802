/*-------------------------------------------------------------------------
 *
 * compat.h
 *		What differs between the PostgreSQL versions pg_polyglot builds
 *		against (14 to 18) and several files meet.  A difference met in one
 *		place only is guarded there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_COMPAT_H
#define POLYGLOT_COMPAT_H

#include "postgres.h"

#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
/* 18 moved ExplainState and the ExplainProperty functions out of explain.h */
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/*
 * A function that does not return: 18 replaced pg_attribute_noreturn(),
 * written after the declarator, by pg_noreturn, written before the
 * declaration.  gcc and clang take the older attribute in that place too.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * create_foreignscan_path() and create_foreign_upper_path(): 17 added the
 * fdw_restrictinfo argument, 18 the count of disabled nodes (none here).
 */
#if PG_VERSION_NUM >= 180000
#define polyglot_foreignscan_path(root, rel, rows, startup, total, pathkeys, outer, priv) \
	create_foreignscan_path(root, rel, NULL, rows, 0, startup, total, pathkeys, outer, NULL, NIL, priv)
#define polyglot_upper_path(root, rel, target, rows, startup, total, priv) \
	create_foreign_upper_path(root, rel, target, rows, 0, startup, total, NIL, NULL, NIL, priv)
#elif PG_VERSION_NUM >= 170000
#define polyglot_foreignscan_path(root, rel, rows, startup, total, pathkeys, outer, priv) \
	create_foreignscan_path(root, rel, NULL, rows, startup, total, pathkeys, outer, NULL, NIL, priv)
#define polyglot_upper_path(root, rel, target, rows, startup, total, priv) \
	create_foreign_upper_path(root, rel, target, rows, startup, total, NIL, NULL, NIL, priv)
#else
#define polyglot_foreignscan_path(root, rel, rows, startup, total, pathkeys, outer, priv) \
	create_foreignscan_path(root, rel, NULL, rows, startup, total, pathkeys, outer, NULL, priv)
#define polyglot_upper_path(root, rel, target, rows, startup, total, priv) \
	create_foreign_upper_path(root, rel, target, rows, startup, total, NIL, NULL, priv)
#endif

/*
 * The direction of a sort key: 18 gives it as a CompareType (pk_cmptype)
 * instead of a btree strategy number (pk_strategy).
 */
#if PG_VERSION_NUM >= 180000
#define polyglot_pathkey_ascending(pk) ((pk)->pk_cmptype == COMPARE_LT)
#else
#define polyglot_pathkey_ascending(pk) ((pk)->pk_strategy == BTLessStrategyNumber)
#endif

/*
 * The POSIX collation, which sorts like C: its OID is 951 in every version,
 * but 18 no longer names it in pg_collation_d.h.
 */
#if PG_VERSION_NUM >= 180000
#define POSIX_COLLATION_OID 951
#endif

#endif							/* POLYGLOT_COMPAT_H */
