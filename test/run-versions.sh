#!/usr/bin/env bash
#
# test/run-versions.sh - the PostgreSQL version matrix: test/run-tests.sh
# once per version, one after the other (the stores are shared), then a
# summary with each version's counts and time.
#
#   make test            15 and 18 with every suite (pg_regress, integration,
#                        TAP); 14, 16 and 17 with the store-free pg_regress
#                        suites and the integration suites
#   make test PG_MAJOR=N every suite on N only
#   make test-all        every suite on 14, 15, 16, 17 and 18
#
# POLYGLOT_TEST_MATRIX gives the matrix as words MAJOR[:PART,PART...], PART
# one of regress, integration, tap (all when left out).  Each version other
# than the default 15 runs on a PostgreSQL of its own (test/stack.sh,
# PG_MAJOR), stopped when its suites are done.  Ends with one line
# "N passed, N failed" over all versions.

set -uo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

DEFAULT_MATRIX="15 18 14:regress,integration 16:regress,integration 17:regress,integration"
if [ -n "${PG_MAJOR:-}" ]; then
	matrix=$PG_MAJOR
else
	matrix=${POLYGLOT_TEST_MATRIX:-$DEFAULT_MATRIX}
fi

passed=0
failed=0
summary=()
failures=()
for spec in $matrix; do
	major=${spec%%:*}
	parts=regress,integration,tap
	[ "$spec" = "$major" ] || parts=${spec#*:}
	out=/tmp/pg_polyglot-test-pg$major.out
	printf '\n======== PostgreSQL %s: %s\n' "$major" "$parts"
	start=$SECONDS
	# PostgreSQL 14 is built with Debian's hiredis 0.14, which has no TLS:
	# the Redis TLS suite then checks the error a tls option gets; the
	# others with the stack's hiredis 1.2
	hiredis=()
	if [ "$major" = 14 ] && [ -z "${PG_MAJOR:-}" ]; then
		hiredis=(POLYGLOT_HIREDIS_DIR=)
	fi
	env "${hiredis[@]}" PG_MAJOR="$major" POLYGLOT_TEST_PARTS="$parts" test/run-tests.sh 2>&1 | tee "$out"
	secs=$((SECONDS - start))
	counts=$(tail -n 1 "$out")
	if [[ $counts =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
		counts="did not finish"
	fi
	while IFS= read -r line; do
		failures+=("PostgreSQL $major: ${line#FAILED: }")
	done < <(grep '^FAILED: ' "$out")
	summary+=("$(printf 'PostgreSQL %-3s %-28s %-22s %4d s' "$major" "$parts" "$counts" "$secs")")
	# the default version's server stays up, as after make test
	if [ "$major" != 15 ]; then
		PG_MAJOR=$major test/stack.sh stop postgres || true
	fi
done

printf '\n======== versions (log of each: /tmp/pg_polyglot-test-pgN.out)\n'
printf '%s\n' "${summary[@]}"
for f in "${failures[@]}"; do
	echo "FAILED: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
