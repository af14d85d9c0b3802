#!/usr/bin/env bash
#
# bench/peers.sh - pg_polyglot's foreign tables against two peer extensions,
# redis_fdw and EDB's mongo_fdw, reading the same data from the same servers
# (the stack's Redis and FerretDB) in the same run.
#
# Redis: N string keys kv:1 .. kv:N ("value i") in Redis database 12, loaded
# with redis-cli --pipe (neither wrapper writes them).  pg_polyglot's table is
# kv (key text, value text) with prefix 'kv:' (its key column holds "i");
# redis_fdw's is (key text, value text) with tablekeyprefix 'kv:' (its key
# column holds "kv:i").  A PostgreSQL table of L rows (default 1000) holds
# keys spread over 1..N in both spellings.
# - full scan, count(*), and full scan of all columns (SELECT *);
# - key IN (...) of K literal keys (default 1000);
# - a join of the L-row PostgreSQL table to the Redis table on key (the
#   planner's plan for each: the plan's top join node is printed);
# - L lookups of one key each: a PL/pgSQL loop of EXECUTE format('SELECT
#   value FROM t WHERE key = %L', ...), so that every statement is planned.
# MongoDB (FerretDB): M documents (default N; test/tools/mongo.py seed: int
# _id, name, qty 0..99, price, city, active, note that is sometimes null or
# missing) in database bench_peers, read through (_id int, name text, qty
# int, price float8, city text, active bool, note text):
# - full scan of all columns; a filter on one field (qty = 7, 1% of the
#   documents); count(*).
#
# Each figure is the median of R runs (default 5) after one untimed run,
# timed with clock_timestamp() around EXECUTE in one session per measure, in
# which pg_polyglot's and the peer's runs alternate (rows are fetched into
# the session, not sent to a client).  The untimed run's result
# (a row count, or the value of an aggregate) is compared between the two
# wrappers: when a peer returns another result, or fails, the table says so
# instead of giving a ratio.  The ratio is peer time / pg_polyglot time: above
# 1, pg_polyglot is faster.  pg_polyglot's MongoDB server gets io_timeout
# 300s, the libmongoc default that mongo_fdw runs with; every measure (R + 1
# runs) is bounded by statement_timeout PEERS_TIMEOUT seconds (default 900).
#
# The peers are not vendored.  Give checkouts in REDIS_FDW_SRC and
# MONGO_FDW_SRC; a peer whose variable is unset is skipped, with its store's
# measures.  To get them:
#   git clone https://github.com/pg-redis-fdw/redis_fdw
#   git clone https://github.com/EnterpriseDB/mongo_fdw
# Each is copied to a scratch directory, built there with the stack's
# pg_config (PGXS, with_llvm=no) and installed into the stack's PostgreSQL for
# the run; on exit its files are removed again, and any copy of them that was
# installed before is put back.
# - redis_fdw links the hiredis of POLYGLOT_HIREDIS_DIR when that has one
#   (the stack's, the one pg_polyglot is built with), else the system's.
# - mongo_fdw is built against the system's libmongoc/libbson and json-c
#   (pkg-config libmongoc-1.0 json-c; Debian: libmongoc-dev, libjson-c-dev),
#   without its autogen.sh, which would download and build both: its
#   Makefile's bundled json-c objects are left out of OBJS, and with a libbson
#   older than 1.28 (Debian 12 has 1.23) the two *_as_legacy_extended_json
#   functions it calls are mapped to their older names, bson_as_json and
#   bson_array_as_json, which produce the same legacy extended JSON.
#
# Runs against the local stack (test/stack.sh start) after make install, as
# root (installing into Debian's PostgreSQL needs it), in PostgreSQL
# database "bench_peers" (recreated), Redis database 12 (emptied with
# FLUSHDB before and after) and MongoDB database "bench_peers" (dropped
# before and after).  FerretDB reads slowly (a full scan of 100k documents
# takes 10 s or more on these machines): the MongoDB part takes most of the
# run's time.  Not a test: it never fails on a timing.
#
# Usage: REDIS_FDW_SRC=DIR MONGO_FDW_SRC=DIR bench/peers.sh
#            [N keys, default 100000] [R runs, default 5] [K IN keys, default 1000]
#            [L join rows and lookups, default 1000] [M documents, default N]

set -euo pipefail
# the peers' checkouts, made absolute before leaving the caller's directory
abs_dir() { if [ -n "${1:-}" ]; then (cd "$1" && pwd) || { echo "bench/peers.sh: no directory $1" >&2; exit 2; }; fi; }
REDIS_FDW_SRC=$(abs_dir "${REDIS_FDW_SRC:-}")
MONGO_FDW_SRC=$(abs_dir "${MONGO_FDW_SRC:-}")
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
R=${2:-5}
K=${3:-1000}
L=${4:-1000}
M=${5:-$N}
TIMEOUT=${PEERS_TIMEOUT:-900}
DB=bench_peers
RDB=12
MDB=bench_peers
PG_CONFIG=$PG_BIN/pg_config
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
TMP=$(mktemp -d)

say() { printf '%s\n' "$*"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# ---------------------------------------------------------------- peers

# The files a peer installs (its library, control file and scripts).
peer_files() { ls -d "$PKGLIBDIR/$1.so" "$EXTDIR/$1.control" "$EXTDIR/$1--"*.sql 2>/dev/null || true; }

# build_peer NAME SRC MAKE-ARGS...: copies SRC to $TMP/NAME, builds and
# installs it with the stack's pg_config, keeping a copy of what was
# installed under that name before.  Returns non-zero (having said why) when
# the build fails.
INSTALLED=()
build_peer() {
	local name=$1 src=$2 files
	shift 2
	mkdir "$TMP/$name"
	tar -C "$src" --exclude=.git -cf - . | tar -C "$TMP/$name" -xf -
	if ! make -C "$TMP/$name" USE_PGXS=1 with_llvm=no PG_CONFIG="$PG_CONFIG" "$@" > "$TMP/$name.log" 2>&1; then
		tail -n 20 "$TMP/$name.log"
		say "!! $name did not build (flags above): skipped"
		return 1
	fi
	files=$(peer_files "$name")
	if [ -n "$files" ]; then
		# shellcheck disable=SC2086
		tar -P -cf "$TMP/$name.before.tar" $files
	fi
	INSTALLED+=("$name")
	if ! make -C "$TMP/$name" USE_PGXS=1 with_llvm=no PG_CONFIG="$PG_CONFIG" "$@" install >> "$TMP/$name.log" 2>&1; then
		tail -n 5 "$TMP/$name.log"
		say "!! $name could not be installed into $PKGLIBDIR: skipped"
		return 1
	fi
	say "-- $name $(src_version "$src"): built with make USE_PGXS=1 with_llvm=no PG_CONFIG=$PG_CONFIG$(printf " '%s'" "$@")"
}

# the checkout's version, for the report
src_version() { git -C "$1" describe --tags --always 2>/dev/null || echo "(not a git checkout)"; }

cleanup() {
	set +e
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
	[ -z "$REDIS_FDW_SRC" ] || redis-cli -p "$REDIS_PORT" -n $RDB FLUSHDB > /dev/null
	[ -z "$MONGO_FDW_SRC" ] || $MONGO_TOOL drop $MDB
	local name files
	for name in "${INSTALLED[@]}"; do
		files=$(peer_files "$name")
		# shellcheck disable=SC2086
		[ -z "$files" ] || rm -f $files
		[ ! -f "$TMP/$name.before.tar" ] || tar -P -xf "$TMP/$name.before.tar"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "$REDIS_FDW_SRC" ] && [ -z "$MONGO_FDW_SRC" ]; then
	say "bench/peers.sh: neither REDIS_FDW_SRC nor MONGO_FDW_SRC is set: nothing to compare (see the header)" >&2
	exit 2
fi

REDIS_FLAGS=()
if [ -z "$REDIS_FDW_SRC" ]; then
	say "-- REDIS_FDW_SRC is not set: redis_fdw and the Redis measures are skipped"
	say "   (git clone https://github.com/pg-redis-fdw/redis_fdw, then REDIS_FDW_SRC=<that directory>)"
else
	if [ -n "${POLYGLOT_HIREDIS_DIR:-}" ] && [ -f "$POLYGLOT_HIREDIS_DIR/include/hiredis/hiredis.h" ]; then
		REDIS_FLAGS=("PG_CPPFLAGS=-I$POLYGLOT_HIREDIS_DIR/include"
			"SHLIB_LINK=-L$POLYGLOT_HIREDIS_DIR/lib -Wl,-rpath,$POLYGLOT_HIREDIS_DIR/lib -lhiredis")
	else
		REDIS_FLAGS=("PG_CPPFLAGS=$(pkg-config --cflags hiredis)" "SHLIB_LINK=$(pkg-config --libs hiredis)")
	fi
	build_peer redis_fdw "$REDIS_FDW_SRC" "${REDIS_FLAGS[@]}" || REDIS_FDW_SRC=
fi

MONGO_FLAGS=()
if [ -z "$MONGO_FDW_SRC" ]; then
	say "-- MONGO_FDW_SRC is not set: mongo_fdw and the MongoDB measures are skipped"
	say "   (git clone https://github.com/EnterpriseDB/mongo_fdw, then MONGO_FDW_SRC=<that directory>)"
elif ! pkg-config --exists libmongoc-1.0 json-c; then
	say "!! mongo_fdw needs libmongoc's and json-c's headers (Debian: apt-get install libmongoc-dev libjson-c-dev): skipped"
	MONGO_FDW_SRC=
else
	cflags="-std=gnu99 -Werror=implicit-function-declaration"
	# libbson 1.28 renamed bson_as_json and bson_array_as_json (same output)
	if ! grep -rqs bson_as_legacy_extended_json $(pkg-config --cflags-only-I libbson-1.0 | sed 's/-I//g'); then
		cflags+=" -Dbson_as_legacy_extended_json=bson_as_json -Dbson_array_as_legacy_extended_json=bson_array_as_json"
	fi
	MONGO_FLAGS=("OBJS=connection.o option.o mongo_wrapper.o mongo_fdw.o mongo_query.o deparse.o"
		"PG_CPPFLAGS=$cflags $(pkg-config --cflags libmongoc-1.0 json-c)"
		"SHLIB_LINK=$(pkg-config --libs libmongoc-1.0 json-c)")
	build_peer mongo_fdw "$MONGO_FDW_SRC" "${MONGO_FLAGS[@]}" || MONGO_FDW_SRC=
fi
[ -n "$REDIS_FDW_SRC$MONGO_FDW_SRC" ] || exit 1

# ---------------------------------------------------------------- setup

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
-- Times pg_polyglot's query q[1] against the peer's q[2] in this session:
-- one untimed run of each, then n runs of each, the two alternating (and
-- which goes first alternating too, so that a machine getting slower or
-- faster during the measure weighs on both alike).  Per query: the median
-- time in ms, and the untimed run's result, the value of its first column
-- when value (an aggregate), else its number of rows (a timed run that
-- returns another number is said too).  A query that fails is not run again:
-- its result is ERROR and the message.
CREATE FUNCTION time_pair(q text[], n int, value bool,
                          OUT ms1 float8, OUT res1 text, OUT ms2 float8, OUT res2 text)
LANGUAGE plpgsql AS \$\$
DECLARE
  t timestamptz;
  d float8;
  c bigint;
  v text;
  runs1 float8[] := '{}';
  runs2 float8[] := '{}';
  res text[] := '{NULL,NULL}';
  cnt bigint[] := '{NULL,NULL}';
  failed bool[] := '{f,f}';
  j int;
BEGIN
  FOR j IN 1..2 LOOP
    BEGIN
      IF value THEN
        EXECUTE q[j] INTO v;
        res[j] := v;
      ELSE
        EXECUTE q[j];
        GET DIAGNOSTICS c = ROW_COUNT;
        cnt[j] := c;
        res[j] := c || ' rows';
      END IF;
    EXCEPTION WHEN OTHERS THEN
      res[j] := 'ERROR: ' || SQLERRM;
      failed[j] := true;
    END;
  END LOOP;
  FOR i IN 1..n LOOP
    FOREACH j IN ARRAY CASE WHEN i % 2 = 1 THEN '{2,1}'::int[] ELSE '{1,2}'::int[] END LOOP
      CONTINUE WHEN failed[j];
      -- the block's subtransaction begins before t and ends after d
      BEGIN
        t := clock_timestamp();
        EXECUTE q[j];
        d := extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
        GET DIAGNOSTICS c = ROW_COUNT;
      EXCEPTION WHEN OTHERS THEN
        res[j] := 'ERROR: ' || SQLERRM;
        failed[j] := true;
        CONTINUE;
      END;
      IF j = 1 THEN runs1 := runs1 || d; ELSE runs2 := runs2 || d; END IF;
      IF NOT value AND c <> cnt[j] THEN
        res[j] := res[j] || ', then ' || c;
        cnt[j] := c;
      END IF;
    END LOOP;
  END LOOP;
  ms1 := (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(runs1) x);
  ms2 := (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(runs2) x);
  res1 := regexp_replace(res[1], '\s+', ' ', 'g');
  res2 := regexp_replace(res[2], '\s+', ' ', 'g');
END \$\$;
SQL

# pair MODE POLYGLOT-QUERY PEER-QUERY: time_pair's "ms1<TAB>res1<TAB>ms2<TAB>res2"
# (a time is - when there is none), or both failed when the statement did
# (statement_timeout)
pair() {
	local out
	if out=$(psql_q -At -F $'\t' -c "SET statement_timeout = '${TIMEOUT}s'" \
		-c "SELECT coalesce(round(ms1::numeric, 2)::text, '-'), coalesce(res1, 'NULL'),
		           coalesce(round(ms2::numeric, 2)::text, '-'), coalesce(res2, 'NULL')
		    FROM time_pair(ARRAY[\$q1\$$2\$q1\$, \$q2\$$3\$q2\$], $R, $([ "$1" = value ] && echo true || echo false))" 2>&1); then
		printf '%s\n' "$out" | tail -n 1
	else
		out="ERROR: $(printf '%s\n' "$out" | sed -n 's/^.*ERROR: *//p' | head -n 1)"
		printf -- '-\t%s\t-\t%s\n' "$out" "$out"
	fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

FMT='%-34s %-13s %12s %12s %8s  %s\n'
NOTES=()
# row MEASURE PEER value|rows POLYGLOT-QUERY PEER-QUERY
row() {
	local measure=$1 peer=$2 our_ms our_res their_ms their_res r=- note=
	IFS=$'\t' read -r our_ms our_res their_ms their_res <<< "$(pair "$3" "$4" "$5")"
	if [ "${our_res#ERROR}" != "$our_res" ]; then
		note="pg_polyglot FAILED"
		NOTES+=("!! $measure: pg_polyglot: $our_res")
		our_res=-
	fi
	if [ "${their_res#ERROR}" != "$their_res" ]; then
		note="${note:+$note, }$peer FAILED"
		NOTES+=("!! $measure: $peer: $their_res")
	elif [ "$our_res" != - ] && [ "$our_res" != "$their_res" ]; then
		note="$peer returned $their_res"
		NOTES+=("!! $measure: $peer returned $their_res, pg_polyglot $our_res: WRONG RESULT, no ratio")
	fi
	[ -n "$note" ] || r=$(ratio "$their_ms" "$our_ms")
	printf "$FMT" "$measure" "${our_res% rows}" "$our_ms" "$their_ms" "$r" "${note:+!! $note}"
}
# the top join node of a query's plan
join_node() { psql_q -At -c "EXPLAIN $1" | grep -o -m1 'Redis Key Join\|Nested Loop\|Hash Join\|Merge Join' || echo '?'; }

say "pg_polyglot against its peers on PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //'), medians of $R runs after one untimed run, times in ms"
say "ratio = peer / pg_polyglot (above 1: pg_polyglot is faster)"

# ---------------------------------------------------------------- Redis

if [ -n "$REDIS_FDW_SRC" ]; then
	redis-cli -p "$REDIS_PORT" -n $RDB FLUSHDB > /dev/null
	# SELECT and N SETs in the Redis protocol, in one pipe
	awk -v n="$N" -v db=$RDB 'BEGIN {
		printf "*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n", length(db), db
		for (i = 1; i <= n; i++) {
			k = "kv:" i; v = "value " i
			printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
		}
	}' | redis-cli -p "$REDIS_PORT" --pipe > "$TMP/pipe.log"
	loaded=$(redis-cli -p "$REDIS_PORT" -n $RDB DBSIZE)
	[ "$loaded" = "$N" ] || { cat "$TMP/pipe.log"; say "!! Redis database $RDB holds $loaded keys, not $N"; exit 1; }
	psql_q <<SQL
CREATE EXTENSION redis_fdw;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '$REDIS_HOST', port '$REDIS_PORT', db '$RDB');
CREATE FOREIGN TABLE kv (key text, value text) SERVER cache OPTIONS (prefix 'kv:');
CREATE SERVER rcache FOREIGN DATA WRAPPER redis_fdw OPTIONS (address '$REDIS_HOST', port '$REDIS_PORT');
CREATE USER MAPPING FOR PUBLIC SERVER rcache;
CREATE FOREIGN TABLE rkv (key text, value text) SERVER rcache OPTIONS (database '$RDB', tablekeyprefix 'kv:');
-- L keys spread over 1..N, as each wrapper's key column spells them
CREATE TABLE ids (id int PRIMARY KEY, key text NOT NULL, rkey text NOT NULL);
INSERT INTO ids SELECT g * ($N / $L), g * ($N / $L), 'kv:' || g * ($N / $L) FROM generate_series(1, $L) g;
ANALYZE ids;
-- one statement per key of ids, each planned (a new literal each time);
-- returns how many found a value
CREATE FUNCTION lookups(tbl regclass, col name) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE
  k text;
  v text;
  found int := 0;
BEGIN
  FOR k IN EXECUTE format('SELECT %I FROM ids ORDER BY id', col) LOOP
    EXECUTE format('SELECT value FROM %s WHERE key = %L', tbl, k) INTO v;
    found := found + (v IS NOT NULL)::int;
  END LOOP;
  RETURN found;
END \$\$;
SQL
	keys=$(psql_q -At -c "SELECT string_agg(quote_literal(g * ($N / $K)), ',') FROM generate_series(1, $K) g")
	rkeys=$(psql_q -At -c "SELECT string_agg(quote_literal('kv:' || g * ($N / $K)), ',') FROM generate_series(1, $K) g")
	join_q="SELECT i.id, k.value FROM ids i JOIN kv k ON k.key = i.key"
	rjoin_q="SELECT i.id, k.value FROM ids i JOIN rkv k ON k.key = i.rkey"

	say ""
	say "Redis $(redis-cli -p "$REDIS_PORT" INFO server | sed -n 's/^redis_version:\([^\r]*\).*/\1/p'), $N string keys under kv: in database $RDB"
	say "hiredis: pg_polyglot $(ldd "$PKGLIBDIR/pg_polyglot.so" | awk '/libhiredis\./ { print $3 }'), redis_fdw $(ldd "$PKGLIBDIR/redis_fdw.so" | awk '/libhiredis\./ { print $3 }')"
	say "join plans: pg_polyglot $(join_node "$join_q"), redis_fdw $(join_node "$rjoin_q")"
	printf "$FMT" measure result pg_polyglot redis_fdw ratio ""
	row "full scan, count(*)" redis_fdw value "SELECT count(*) FROM kv" "SELECT count(*) FROM rkv"
	row "full scan, all columns" redis_fdw rows "SELECT * FROM kv" "SELECT * FROM rkv"
	row "key IN ($K keys)" redis_fdw rows "SELECT * FROM kv WHERE key IN ($keys)" "SELECT * FROM rkv WHERE key IN ($rkeys)"
	row "join of $L rows on key" redis_fdw rows "$join_q" "$rjoin_q"
	row "$L lookups, a statement each" redis_fdw value "SELECT lookups('kv', 'key')" "SELECT lookups('rkv', 'rkey')"
fi

# ---------------------------------------------------------------- MongoDB

if [ -n "$MONGO_FDW_SRC" ]; then
	$MONGO_TOOL drop $MDB
	$MONGO_TOOL seed $MDB items "$M"
	cols="_id int, name text, qty int, price float8, city text, active bool, note text"
	psql_q <<SQL
CREATE EXTENSION mongo_fdw;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$MONGO_URI', database '$MDB', io_timeout '300s');
CREATE FOREIGN TABLE items ($cols) SERVER docs;
CREATE SERVER mdocs FOREIGN DATA WRAPPER mongo_fdw OPTIONS (address '$MONGO_HOST', port '$MONGO_PORT');
CREATE USER MAPPING FOR PUBLIC SERVER mdocs;
CREATE FOREIGN TABLE mitems ($cols) SERVER mdocs OPTIONS (database '$MDB', collection 'items');
SQL
	say ""
	say "MongoDB: $(psql_q -At -c "SELECT concat_ws(' ', polyglot.ping('docs')->>'flavor', polyglot.ping('docs')->>'version')"), $M documents in $MDB.items"
	say "libmongoc $(pkg-config --modversion libmongoc-1.0), libbson $(pkg-config --modversion libbson-1.0), for both"
	printf "$FMT" measure result pg_polyglot mongo_fdw ratio ""
	row "full scan, all columns" mongo_fdw rows "SELECT * FROM items" "SELECT * FROM mitems"
	row "filter qty = 7" mongo_fdw rows "SELECT * FROM items WHERE qty = 7" "SELECT * FROM mitems WHERE qty = 7"
	row "count(*)" mongo_fdw value "SELECT count(*) FROM items" "SELECT count(*) FROM mitems"
fi

if [ ${#NOTES[@]} -gt 0 ]; then
	say ""
	printf '%s\n' "${NOTES[@]}"
fi
