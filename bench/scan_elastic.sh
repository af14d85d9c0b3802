#!/usr/bin/env bash
#
# bench/scan_elastic.sh - Elasticsearch and OpenSearch foreign tables (the
# stack's OpenSearch and Elasticsearch): a full scan and a full-text search
# through polyglot_elastic, against the same requests sent raw to the same
# server by a Python client (standard library only, one kept-alive
# connection, every page parsed with json.loads), measured in the same run.
#
# Data: N generated documents in index bench_scan_items (one shard, no
# replica, explicit mapping: id long, name text with a keyword sub-field,
# qty integer, price double, city keyword, body text of 4 to 12 words drawn
# with Zipf-like weights from 61 words, so that searches rank), loaded by
# curl through _bulk, 5000 documents a request, without refreshes, then
# refreshed and merged to one segment.
#
# - full scan: count((_id, id, name, qty, price, city, body)), which reads
#   every document column of every row (a count(*) would go as a _count),
#   at the default page_size (1000), in rows/s.  The FDW pages with
#   search_after under a point in time; the baseline opens a point in time,
#   pages with the body EXPLAIN VERBOSE shows (size, _source fields, the
#   FDW's tiebreaker sort, track_total_hits false) and the FDW's filter_path
#   until a page comes short, and closes it.
# - search: SELECT _id, _score ... WHERE query = 'glacier cobalt' ORDER BY
#   _score DESC LIMIT 10 (about 16% of the documents match), in ms; the
#   baseline is one _search with the body EXPLAIN VERBOSE shows (size 10,
#   the query_string).  Both must find the same ten _ids.  The search is
#   also timed planned once (static SQL in PL/pgSQL keeps its plan): that
#   leaves out planning's two requests (the index's _mapping, and its
#   _count for the row estimate).
#
# Each figure is the median of R runs after one untimed run; queries are
# timed inside one session.  Runs against the local stack (test/stack.sh
# start), in database "bench_scan_elastic", which it recreates.  Not a test:
# it never fails on a timing.
#
# Usage: bench/scan_elastic.sh [N, default 100000] [R, default 5]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
N=${1:-100000}
R=${2:-5}
DB=bench_scan_elastic
INDEX=bench_scan_items
PAGE=1000		# the FDW's default page_size
WORDS='glacier cobalt'
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"; for u in "$OPENSEARCH_URL" "$ELASTICSEARCH_URL"; do curl -s -o /dev/null -XDELETE "$u/$INDEX?ignore_unavailable=true"; done' EXIT

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / ms * 1000 }'; }

# the documents, as _bulk index actions with _id
python3 - "$N" > "$TMP/all.ndjson" <<'PY'
import json, random, sys
n = int(sys.argv[1])
rng = random.Random(42)
vocab = ("harbor amber river granite velvet copper meadow lantern orchard falcon "
         "cedar willow marble crimson silver thunder quiet hollow ember glacier "
         "summit canyon breeze garnet prairie beacon timber saffron cobalt "
         "juniper tundra lagoon violet comet spruce basalt jasmine nectar pebble "
         "quartz raven sable topaz walnut zephyr aurora bramble cinder dune "
         "fjord grove heron iris kestrel linen mosaic nimbus opal plume "
         "ripple sorrel").split()
weights = [1.0 / (i + 1) for i in range(len(vocab))]   # Zipf-like: ranks differ
cities = ["Paris", "Lyon", "Berlin", "Madrid", "Rome", "Oslo", "Vienna", "Prague",
          "Lisbon", "Dublin", "Warsaw", "Athens", "Helsinki", "Zurich", "Brussels", "Riga"]
out = sys.stdout
for i in range(1, n + 1):
    out.write('{"index":{"_id":"%d"}}\n' % i)
    out.write(json.dumps({
        "id": i,
        "name": "item %d %s" % (i, rng.choice(vocab)),
        "qty": rng.randrange(100),
        "price": round(rng.uniform(1, 1000), 2),
        "city": rng.choice(cities),
        "body": " ".join(rng.choices(vocab, weights, k=rng.randint(4, 12))),
    }, separators=(",", ":")) + "\n")
PY
split -l 10000 -d -a 4 "$TMP/all.ndjson" "$TMP/chunk."

# The raw client, sending the request bodies the FDW shows in EXPLAIN
# VERBOSE (or, when it shows none, the same bodies written here):
# "scan <url> <index> <body> <runs> <opensearch 0|1>" prints the median ms
# of a full scan under a point in time and the rows of the last;
# "search <url> <index> <body> <words> <runs>" the median ms of the search
# and its _ids
cat > "$TMP/raw.py" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse

FILTER = ("filter_path=pit_id,hits.hits._id,hits.hits._score,hits.hits._source,"
          "hits.hits.sort,_shards.failed,_shards.failures")

def main():
    mode, url, index, body = sys.argv[1:5]
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)

    def request(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        payload = r.read()
        if r.status >= 300:
            sys.exit("%s %s: HTTP %d %s" % (method, path, r.status, payload[:300]))
        return json.loads(payload)

    def scan(template, opensearch):
        if opensearch:
            pit = request("POST", "/%s/_search/point_in_time?keep_alive=1m" % index)["pit_id"]
        else:
            pit = request("POST", "/%s/_pit?keep_alive=1m" % index)["id"]
        page = template["size"]
        fields = template["_source"] if isinstance(template["_source"], list) else []
        rows, after = 0, None
        while True:
            body = dict(template, pit={"id": pit, "keep_alive": "1m"})
            if after is not None:
                body["search_after"] = after
            res = request("POST", "/_search?" + FILTER, body)
            pit = res.get("pit_id", pit)
            hits = res.get("hits", {}).get("hits", [])
            for h in hits:          # visit each value, as the FDW does
                src = h["_source"]
                h["_id"]
                for f in fields:
                    src.get(f)
            rows += len(hits)
            if len(hits) < page:
                break
            after = hits[-1]["sort"]
        if opensearch:
            request("DELETE", "/_search/point_in_time", {"pit_id": [pit]})
        else:
            request("DELETE", "/_pit", {"id": pit})
        return rows

    def search(body):
        res = request("POST", "/%s/_search?%s" % (index, FILTER), body)
        return [h["_id"] for h in res.get("hits", {}).get("hits", [])]

    if mode == "scan":
        runs, opensearch = int(sys.argv[5]), sys.argv[6] == "1"
        body = json.loads(body) if body else {
            "size": 1000, "query": {"match_all": {}},
            "_source": ["id", "name", "qty", "price", "city", "body"],
            "sort": [{"_id" if opensearch else "_shard_doc": {"order": "asc"}}],
            "track_total_hits": False}
        body.pop("pit", None)
        work = lambda: scan(body, opensearch)
    else:
        words, runs = sys.argv[5], int(sys.argv[6])
        body = json.loads(body) if body else {
            "size": 10, "query": {"bool": {"must": [{"query_string": {"query": words}}]}},
            "_source": False, "sort": [{"_score": {"order": "desc"}}],
            "track_scores": True, "track_total_hits": False}
        work = lambda: search(body)
    result = work()                 # untimed: connects, warms the caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - t) * 1000)
    print("%.2f" % statistics.median(times),
          result if mode == "scan" else ",".join(result))

main()
PY

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_q <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$OPENSEARCH_URL');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$ELASTICSEARCH_URL');
CREATE FOREIGN TABLE os_items (_id text, id bigint, name text, qty int, price float8,
                               city text, body text, _score real, query text)
  SERVER os OPTIONS (index '$INDEX');
CREATE FOREIGN TABLE es_items (_id text, id bigint, name text, qty int, price float8,
                               city text, body text, _score real, query text)
  SERVER es OPTIONS (index '$INDEX');
-- the median time of n runs of a query after one untimed run, in milliseconds
CREATE FUNCTION time_ms(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  t timestamptz;
  ms float8[] := '{}';
BEGIN
  EXECUTE q;
  FOR i IN 1..n LOOP
    t := clock_timestamp();
    EXECUTE q;
    ms := ms || extract(epoch FROM clock_timestamp() - t)::float8 * 1000;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END \$\$;
SQL

# every document column of every row, so that no count(*) goes as _count
SCAN="SELECT count((_id, id, name, qty, price, city, body)) FROM %s"
SEARCH="SELECT _id, _score FROM %s WHERE query = '$WORDS' ORDER BY _score DESC LIMIT 10"

printf '%d documents, page_size %d, medians of %d runs; search: query = '\''%s'\'' ORDER BY _score DESC LIMIT 10\n' \
	"$N" "$PAGE" "$R" "$WORDS"
for target in os es; do
	url=$([ "$target" = os ] && echo "$OPENSEARCH_URL" || echo "$ELASTICSEARCH_URL")
	table=${target}_items
	curl -s -o /dev/null -XDELETE "$url/$INDEX?ignore_unavailable=true"
	curl -s -f -o /dev/null -XPUT "$url/$INDEX" -H 'Content-Type: application/json' -d '{
	  "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
	  "mappings": {"properties": {
	    "id": {"type": "long"},
	    "name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
	    "qty": {"type": "integer"}, "price": {"type": "double"},
	    "city": {"type": "keyword"}, "body": {"type": "text"}}}}'
	args=()
	for f in "$TMP"/chunk.*; do
		[ ${#args[@]} -gt 0 ] && args+=(--next)
		args+=(-s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/x-ndjson' -XPOST "$url/$INDEX/_bulk" --data-binary "@$f")
	done
	curl "${args[@]}" > "$TMP/codes"
	grep -qv '^200$' "$TMP/codes" && echo "warning: a _bulk request failed: $(sort "$TMP/codes" | uniq -c | tr '\n' ' ')" >&2
	curl -s -o /dev/null -XPUT "$url/$INDEX/_settings" -H 'Content-Type: application/json' -d '{"index": {"refresh_interval": null}}'
	curl -s -o /dev/null -XPOST "$url/$INDEX/_refresh"
	curl -s -o /dev/null -XPOST "$url/$INDEX/_forcemerge?max_num_segments=1"
	count=$(curl -s "$url/$INDEX/_count" | sed 's/.*"count":\([0-9]*\).*/\1/')
	[ "$count" = "$N" ] || echo "warning: $target index $INDEX has $count documents, not $N" >&2

	# the plans: a Foreign Scan fetching hits (no _count), and a search of
	# size 10; the baseline sends their request bodies
	scan_q=$(printf "$SCAN" "$table"); search_q=$(printf "$SEARCH" "$table")
	psql_q -At -c "EXPLAIN VERBOSE $scan_q" > "$TMP/plan"
	grep -q '_count' "$TMP/plan" && echo "warning: the full scan went as a _count: $(cat "$TMP/plan")" >&2
	grep -q 'Foreign Scan' "$TMP/plan" || echo "warning: the full scan is no Foreign Scan: $(cat "$TMP/plan")" >&2
	scan_body=$(sed -n 's/^ *Remote Body: //p' "$TMP/plan")
	psql_q -At -c "EXPLAIN VERBOSE $search_q" > "$TMP/plan"
	{ grep -Eq '^ *(-> +)?Sort ' "$TMP/plan" || ! grep -q '"size":10,' "$TMP/plan"; } &&
		echo "warning: the search's sort or LIMIT stayed local: $(cat "$TMP/plan")" >&2
	search_body=$(sed -n 's/^ *Remote Body: //p' "$TMP/plan")
	[ -n "$scan_body" ] && [ -n "$search_body" ] ||
		echo "warning: EXPLAIN VERBOSE shows no Remote Body: the baseline sends its own" >&2

	rows=$(psql_q -At -c "$scan_q")
	[ "$rows" = "$N" ] || echo "warning: the $target foreign scan gave $rows rows, not $N" >&2
	fdw_scan=$(psql_q -At -c "SELECT round(time_ms(\$q\$$scan_q\$q\$, $R)::numeric, 2)")
	os_flag=$([ "$target" = os ] && echo 1 || echo 0)
	read -r raw_scan raw_rows <<< "$(python3 "$TMP/raw.py" scan "$url" "$INDEX" "$scan_body" "$R" "$os_flag")"
	[ "$raw_rows" = "$N" ] || echo "warning: the $target raw scan gave $raw_rows rows, not $N" >&2

	fdw_ids=$(psql_q -At -c "SELECT string_agg(_id, ',') FROM ($search_q) s")
	fdw_search=$(psql_q -At -c "SELECT round(time_ms(\$q\$$search_q\$q\$, $R)::numeric, 2)")
	# the same search planned once: static SQL in PL/pgSQL keeps its plan, so
	# this times execution alone (no _mapping and _count requests of planning)
	psql_q -c "CREATE OR REPLACE FUNCTION search_planned_ms(n int) RETURNS float8 LANGUAGE plpgsql AS \$f\$
DECLARE t timestamptz; ms float8[] := '{}'; c bigint;
BEGIN
  FOR i IN 0..n LOOP
    t := clock_timestamp();
    SELECT count(*) INTO c FROM ($search_q) s;
    IF i > 0 THEN ms := ms || extract(epoch FROM clock_timestamp() - t)::float8 * 1000; END IF;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END \$f\$"
	fdw_planned=$(psql_q -At -c "SELECT round(search_planned_ms($R)::numeric, 2)")
	read -r raw_search raw_ids <<< "$(python3 "$TMP/raw.py" search "$url" "$INDEX" "$search_body" "$WORDS" "$R")"
	[ "$fdw_ids" = "$raw_ids" ] || echo "warning: $target: the FDW found $fdw_ids, the raw search $raw_ids" >&2

	printf '%s %s:\n' "$target" "$(psql_q -At -c "SELECT polyglot.ping('$target')->>'version'")"
	printf '  full scan:  FDW %s rows/s (%s ms) | raw PIT + search_after %s rows/s (%s ms) | FDW / raw = %s\n' \
		"$(rate "$N" "$fdw_scan")" "$fdw_scan" "$(rate "$N" "$raw_scan")" "$raw_scan" "$(ratio "$raw_scan" "$fdw_scan")"
	printf '  search:     FDW %s ms (planned once: %s ms) | raw _search %s ms | FDW / raw = %s (planned once: %s)\n' \
		"$fdw_search" "$fdw_planned" "$raw_search" "$(ratio "$fdw_search" "$raw_search")" \
		"$(ratio "$fdw_planned" "$raw_search")"
	curl -s -o /dev/null -XDELETE "$url/$INDEX"
done

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
