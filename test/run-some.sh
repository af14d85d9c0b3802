#!/usr/bin/env bash
#
# test/run-some.sh - build, install and run chosen suites against the local
# stack, for a developer iterating on one part (make test runs them all).
#
#   test/run-some.sh [regress:NAME ...] [integration:NAME ...] [tap:FILE ...]
#   e.g. test/run-some.sh integration:sync_redis tap:002_crash.pl
#
# The stack is one per machine (POLYGLOT_STACK_DIR, default the checkout's
# .stack/), and installing the library restarts its PostgreSQL, so the whole
# run holds an exclusive lock (/tmp/pg_polyglot-stack.lock): two checkouts on
# one machine take turns instead of testing each other's builds.

set -uo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

# With POLYGLOT_PG_BIN, POLYGLOT_PG_DIR and POLYGLOT_PG_PORT (see
# test/stack.sh), a checkout tests on a PostgreSQL of its own beside the
# stack's, sharing the stores, under a lock of that PostgreSQL's port.  A
# file .run-some.env at the top of the checkout (not versioned) may set
# them for that checkout; the environment wins over the file.  PG_MAJOR=N
# runs on the stack's PostgreSQL N instead (test/stack.sh).
if [ -f .run-some.env ]; then
	given=$(export -p | grep -E '^declare -x POLYGLOT_(STACK_DIR|PG_BIN|PG_DIR|PG_PORT)=' || true)
	# shellcheck disable=SC1091
	. ./.run-some.env
	eval "$given"
	if [ -n "${PG_MAJOR:-}" ] && [ -z "$(echo "$given" | grep POLYGLOT_PG_BIN)" ]; then
		unset POLYGLOT_PG_BIN POLYGLOT_PG_DIR POLYGLOT_PG_PORT
	fi
	export POLYGLOT_STACK_DIR POLYGLOT_PG_BIN POLYGLOT_PG_DIR POLYGLOT_PG_PORT
fi
if [ -n "${POLYGLOT_PG_BIN:-}" ]; then
	export PG_CONFIG=$POLYGLOT_PG_BIN/pg_config
elif [ -n "${PG_MAJOR:-}" ]; then
	PG_CONFIG=$(test/stack.sh pg-bin "$PG_MAJOR")/pg_config || exit 1
	export PG_CONFIG PG_MAJOR
fi
# the stack's default PostgreSQL keeps the lock's older name
port=$(test/stack.sh env | sed -n "s/^export PGPORT='\(.*\)'/\1/p")
lock=/tmp/pg_polyglot-stack.lock
if [ -n "${POLYGLOT_PG_PORT:-}" ] || [ "$port" != 55432 ]; then
	lock=/tmp/pg_polyglot-stack-$port.lock
fi

# flock -o: the lock is held by flock itself, not by the servers this run
# may (re)start
if [ -z "${POLYGLOT_RUN_SOME_LOCKED:-}" ]; then
	POLYGLOT_RUN_SOME_LOCKED=1 exec flock -o "$lock" "$0" "$@"
fi

# with the stack's hiredis (TLS for Redis), unless POLYGLOT_HIREDIS_DIR
# says otherwise (empty: the system's)
eval "$(test/stack.sh env | grep POLYGLOT_HIREDIS_DIR)"
# objects built against another PostgreSQL's headers or hiredis are rebuilt
if [ "$(cat .build-pg 2>/dev/null)" != "${PG_CONFIG:-default} $POLYGLOT_HIREDIS_DIR" ]; then
	make -s clean >/dev/null
	echo "${PG_CONFIG:-default} $POLYGLOT_HIREDIS_DIR" >.build-pg
fi
# the Redis TLS suite would pass as its without-TLS variant (as run-tests.sh)
if [ -n "$POLYGLOT_HIREDIS_DIR" ] && [ "$(make -s HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR" print-hiredis-ssl)" != yes ]; then
	echo "no hiredis_ssl in $POLYGLOT_HIREDIS_DIR: run test/stack.sh install" >&2
	exit 1
fi
make -s HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR" >/tmp/pg_polyglot-build.$$.log 2>&1 || { cat /tmp/pg_polyglot-build.$$.log; exit 1; }
if grep -q 'warning:' /tmp/pg_polyglot-build.$$.log; then cat /tmp/pg_polyglot-build.$$.log; exit 1; fi
rm -f /tmp/pg_polyglot-build.$$.log
make -s HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR" install >/dev/null || exit 1
test/stack.sh start >/dev/null || exit 1
eval "$(test/stack.sh env)"
PG_REGRESS=$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ACL SETUSER polyglot_test reset on \
	'>polyglot-test-password' '~*' '&*' +@all >/dev/null

rc=0
regress=() integration=() tap=()
for a in "$@"; do
	case $a in
	regress:*) regress+=("${a#regress:}") ;;
	integration:*) integration+=("${a#integration:}") ;;
	tap:*) tap+=("t/${a#tap:}") ;;
	*) echo "unknown suite $a" >&2; exit 2 ;;
	esac
done
if [ ${#regress[@]} -gt 0 ]; then
	"$PG_REGRESS" --inputdir=. --outputdir=. --bindir="$PG_CLIENT_BIN" \
		--dbname=contrib_regression --load-extension=pg_polyglot "${regress[@]}" || rc=1
fi
if [ ${#integration[@]} -gt 0 ]; then
	# the stores are shared: one suite runs in one checkout at a time
	suite_fds=()
	for name in $(printf '%s\n' "${integration[@]}" | sort -u); do
		exec {fd}>"/tmp/pg_polyglot-suite-$name.lock"
		flock "$fd"
		suite_fds+=("$fd")
	done
	"$PG_REGRESS" --inputdir=test/integration --outputdir=test/integration \
		--bindir="$PG_CLIENT_BIN" --dbname=polyglot_integration --load-extension=pg_polyglot \
		"${integration[@]}" || rc=1
	for fd in "${suite_fds[@]}"; do exec {fd}>&-; done
fi
if [ ${#tap[@]} -gt 0 ]; then
	tap_dir=$POLYGLOT_PG_DIR/tap-some
	rm -rf "$tap_dir"; mkdir -p "$tap_dir"; cp -r test/t "$tap_dir/t"
	# t/018_exporter.pl reads the shipped metrics/postgres_exporter.yaml
	cp -r metrics "$tap_dir/metrics"
	chown -R "$POLYGLOT_STACK_USER": "$tap_dir"
	tap_perl=$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/perl
	# relocatable builds have no TAP modules: Debian's serve any 15
	[ -d "$tap_perl" ] || tap_perl=/usr/lib/postgresql/15/lib/pgxs/src/test/perl
	run_tap=(env PATH="$PG_BIN:$PATH" PG_REGRESS="$PG_REGRESS" TESTDIR="$tap_dir"
		PGPORT= PGHOST= PGUSER= PGDATABASE=
		REDIS_PORT="$REDIS_PORT" MONGO_URI="$MONGO_URI" MONGO_TOOL="$MONGO_TOOL"
		FERRETDB_BIN="$FERRETDB_BIN"
		OPENSEARCH_URL="$OPENSEARCH_URL" ELASTICSEARCH_URL="$ELASTICSEARCH_URL"
		OPENSEARCH_PID_FILE="$POLYGLOT_STACK_DIR/opensearch/pid"
		prove -v --ext .pl -I "$tap_perl" "${tap[@]}")
	# TAP tests stop, freeze and reconfigure the shared stores (003, 005,
	# 006, 008): one checkout runs them at a time
	exec {tap_fd}>/tmp/pg_polyglot-tap.lock
	flock "$tap_fd"
	if [ "$(id -u)" = 0 ]; then
		(cd "$tap_dir" && runuser -u "$POLYGLOT_STACK_USER" -- "${run_tap[@]}") || rc=1
	else
		(cd "$tap_dir" && "${run_tap[@]}") || rc=1
	fi
	echo "TAP logs: $tap_dir/tmp_check/log"
fi
exit $rc
