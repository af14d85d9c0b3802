#!/usr/bin/env bash
#
# test/demo.sh - what "make demo" runs: the same set-up as "make test"
# (install what is missing, build, install, start the local stack), then a
# walkthrough in psql against the stack's PostgreSQL.
#
# The walkthrough is demo/walkthrough.sql; later features extend it.

set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

echo "==> installing what is missing"
test/stack.sh install
echo "==> building and installing pg_polyglot"
# with the stack's hiredis (TLS for Redis): POLYGLOT_HIREDIS_DIR
eval "$(test/stack.sh env)"
# objects of another build (make test leaves the last version's of its
# matrix, PostgreSQL 17's) are rebuilt for this one, as run-tests.sh does
flavor="plain ${PG_CONFIG:-default} ${POLYGLOT_HIREDIS_DIR:-system-hiredis}"
if [ "$(cat .build-flavor 2>/dev/null)" != "$flavor" ]; then
	make -s clean >/dev/null
	echo "$flavor" >.build-flavor
fi
make -s HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR"
make -s HIREDIS_DIR="$POLYGLOT_HIREDIS_DIR" install >/dev/null
echo "==> starting the local stack"
test/stack.sh start
eval "$(test/stack.sh env)"
test/stack.sh status

echo "==> walkthrough (database $PGDATABASE on port $PGPORT)"
psql -X -v ON_ERROR_STOP=1 --echo-all -d "$PGDATABASE" \
	-v redis_port="$REDIS_PORT" -v mongo_uri="$MONGO_URI" \
	-v opensearch_url="$OPENSEARCH_URL" -v elasticsearch_url="$ELASTICSEARCH_URL" \
	-f demo/walkthrough.sql

cat <<MSG

==> done.  The stack keeps running; try it yourself:
      eval "\$(test/stack.sh env)"; psql
    and stop it with:
      test/stack.sh stop
MSG
