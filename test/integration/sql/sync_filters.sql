--
-- sync_filters: routes with a row filter (option "where") on every store
-- and Redis mode.  Only the rows the filter takes are in the store: a row
-- that starts matching is written, one that stops matching is removed
-- (DEL, delete by _id, delete by id), a change of a row that matched
-- neither before nor after reaches no store (invalidate and publish
-- routes show it: no DEL, no message).  The backfill writes only matching
-- rows; verify reports a store entry of a row outside the filter as extra
-- and repairs it away.
--
\getenv redis_port REDIS_PORT
\getenv mongo_uri MONGO_URI
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! $MONGO_TOOL drop polyglot_filters
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_filt_articles?ignore_unavailable=true"; done
-- one server object per Redis route (one route per table and server)
CREATE SERVER f_json FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER f_hash FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER f_inv FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER f_pub FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER f_docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri :'mongo_uri', database 'polyglot_filters');
CREATE SERVER f_os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER f_es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');

\i test/integration/sql/setup.psql
CREATE FUNCTION filters_synced() RETURNS text LANGUAGE sql AS $$
  SELECT wait_for('NOT EXISTS (SELECT FROM polyglot.status s WHERE s.source = ''public.articles'' AND s.pending > 0)')
$$;

CREATE TABLE articles (id int PRIMARY KEY, title text, published boolean NOT NULL DEFAULT false,
                       deleted_at timestamptz);
-- before the routes: the backfill writes 1 and 4 (2 is a draft, 3 deleted)
INSERT INTO articles VALUES (1, 'one', true, NULL), (2, 'two', false, NULL),
                            (3, 'three', true, '2024-01-01'), (4, 'four', true, NULL);

SELECT polyglot.sync('articles', 'f_json', '{"key": "filt:json:{id}", "columns": ["id", "title"],
                     "where": "published AND deleted_at IS NULL"}') AS r_json \gset
SELECT polyglot.sync('articles', 'f_hash', '{"mode": "hash", "key": "filt:hash:{id}", "columns": ["title"],
                     "where": "published AND deleted_at IS NULL"}') AS r_hash \gset
SELECT polyglot.sync('articles', 'f_docs', '{"columns": ["id", "title"],
                     "where": "published AND deleted_at IS NULL"}') AS r_docs \gset
SELECT polyglot.sync('articles', 'f_os', '{"index": "polyglot_filt_articles", "columns": ["id", "title"],
                     "where": "published AND deleted_at IS NULL"}') AS r_os \gset
SELECT polyglot.sync('articles', 'f_es', '{"index": "polyglot_filt_articles", "columns": ["id", "title"],
                     "where": "published AND deleted_at IS NULL"}') AS r_es \gset
-- invalidate and publish routes: no backfill (it would DEL and publish)
SELECT polyglot.sync('articles', 'f_inv', '{"mode": "invalidate", "key": "filt:inv:{id}",
                     "where": "published AND deleted_at IS NULL"}', backfill => false) AS r_inv \gset
SELECT polyglot.sync('articles', 'f_pub', '{"mode": "publish", "channel": "filt:pub", "columns": ["id", "title"],
                     "where": "published AND deleted_at IS NULL"}', backfill => false) AS r_pub \gset
SELECT filters_synced();

-- the backfill: rows 1 and 4 only
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:json:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT GET $k)"; done
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:hash:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT HGETALL $k | tr '\n' ' ')"; done
\! $MONGO_TOOL dump polyglot_filters articles
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_filt_articles/_refresh" -o /dev/null; curl -s "$u/polyglot_filt_articles/_search?size=100" | /usr/bin/python3 -c 'import json,sys; print(" ".join(h["_id"] + "=" + h["_source"]["title"] for h in sorted(json.load(sys.stdin)["hits"]["hits"], key=lambda h: int(h["_id"]))))'; done

-- the cached entries an invalidate route deletes, and a subscriber of the
-- publish route, both there before the changes
\! for i in 1 2 3 4 5 6 7 8 9 11; do redis-cli -p $REDIS_PORT SET filt:inv:$i cached > /dev/null; done
\! (timeout 60 redis-cli -p $REDIS_PORT SUBSCRIBE filt:pub > /tmp/pg_polyglot_filt_pub.out 2>&1 < /dev/null & echo $! > /tmp/pg_polyglot_filt_pub.pid) ; for i in $(seq 300); do [ "$(redis-cli -p $REDIS_PORT PUBSUB NUMSUB filt:pub | tail -n 1)" = 1 ] && break; sleep 0.1; done

-- rows entering, leaving and staying out of the filter
UPDATE articles SET published = true WHERE id = 2;                -- enters
UPDATE articles SET deleted_at = '2024-06-01' WHERE id = 4;       -- leaves
UPDATE articles SET title = 'three, edited' WHERE id = 3;         -- stays out
INSERT INTO articles VALUES (5, 'five', false, NULL);             -- out
INSERT INTO articles VALUES (6, 'six', true, NULL);               -- in
UPDATE articles SET title = 'one, edited' WHERE id = 1;           -- stays in
-- (delivered before the key changes: the publish route shows each state)
SELECT filters_synced();
UPDATE articles SET id = 11 WHERE id = 1;                         -- in, new key
UPDATE articles SET id = 9, title = 'five, moved' WHERE id = 5;   -- out, new key
DELETE FROM articles WHERE id = 3;                                -- out
SELECT filters_synced();

\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:json:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT GET $k)"; done
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:hash:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT HGETALL $k | tr '\n' ' ')"; done
\! $MONGO_TOOL dump polyglot_filters articles
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_filt_articles/_refresh" -o /dev/null; curl -s "$u/polyglot_filt_articles/_search?size=100" | /usr/bin/python3 -c 'import json,sys; print(" ".join(h["_id"] + "=" + h["_source"]["title"] for h in sorted(json.load(sys.stdin)["hits"]["hits"], key=lambda h: int(h["_id"]))))'; done
-- invalidate: the keys of rows that matched before or after a change are
-- gone (1, 2, 4, 6, 11); those of rows that never matched stay (3, 5, 7, 8, 9)
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:inv:*' | sort -t: -k3 -n | tr '\n' ' '; echo
-- publish: messages for the rows of the filter only (sorted)
\! for i in $(seq 300); do [ "$(grep -c '^{' /tmp/pg_polyglot_filt_pub.out)" -ge 6 ] && break; sleep 0.1; done; grep '^{' /tmp/pg_polyglot_filt_pub.out | sort; kill $(cat /tmp/pg_polyglot_filt_pub.pid) 2>/dev/null; rm -f /tmp/pg_polyglot_filt_pub.out /tmp/pg_polyglot_filt_pub.pid

-- verify: no drift; then entries of rows outside the filter, put in each
-- store by hand, are extra, and repair removes them
SELECT route, (SELECT count(*) FROM polyglot.verify(r)) AS drift
  FROM unnest(ARRAY[:r_json, :r_hash, :r_docs, :r_os, :r_es],
              ARRAY['json', 'hash', 'docs', 'os', 'es']) AS x(r, route) ORDER BY r;
\! redis-cli -p $REDIS_PORT SET filt:json:9 '{"id":9,"title":"five, moved"}' > /dev/null
\! redis-cli -p $REDIS_PORT HSET filt:hash:4 title four > /dev/null
\! $MONGO_TOOL insert polyglot_filters articles '[{"_id": 4, "id": 4, "title": "four"}]'
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XPUT "$u/polyglot_filt_articles/_doc/9?refresh=true" -H 'Content-Type: application/json' -d '{"id": 9, "title": "five, moved"}'; done
SET client_min_messages = warning;
SELECT route, v.kind, v.key
  FROM unnest(ARRAY[:r_json, :r_hash, :r_docs, :r_os, :r_es],
              ARRAY['json', 'hash', 'docs', 'os', 'es']) AS x(r, route), polyglot.verify(r, true) v
 ORDER BY r;
RESET client_min_messages;
SELECT filters_synced();
SELECT route, (SELECT count(*) FROM polyglot.verify(r)) AS drift
  FROM unnest(ARRAY[:r_json, :r_hash, :r_docs, :r_os, :r_es],
              ARRAY['json', 'hash', 'docs', 'os', 'es']) AS x(r, route) ORDER BY r;

-- TRUNCATE empties every store of the rows it had
TRUNCATE articles;
SELECT filters_synced();
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:json:*' | wc -l
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:hash:*' | wc -l
\! $MONGO_TOOL count polyglot_filters articles
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_filt_articles/_refresh" -o /dev/null; curl -s "$u/polyglot_filt_articles/_count?filter_path=count"; echo; done
SELECT sum(failed) AS failed, sum(dead_letters) AS dead_letters FROM polyglot.status
 WHERE source = 'public.articles';

DROP TABLE articles;
DROP FUNCTION filters_synced();
\! redis-cli -p $REDIS_PORT --scan --pattern 'filt:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! $MONGO_TOOL drop polyglot_filters
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_filt_articles?ignore_unavailable=true"; done
DROP SERVER f_json, f_hash, f_inv, f_pub, f_docs, f_os, f_es;
