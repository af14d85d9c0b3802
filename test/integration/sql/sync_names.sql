--
-- sync_names: several routes of one table to one server, each of a name of
-- its own, side by side: a json key and an invalidate key on one Redis
-- server; two indexes of different columns on one OpenSearch server, and
-- on one Elasticsearch server.  Each is delivered, verified and removed on
-- its own, by name.
--
\getenv redis_port REDIS_PORT
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! redis-cli -p $REDIS_PORT --scan --pattern 'names:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_names_full,polyglot_names_short?ignore_unavailable=true"; done
CREATE SERVER n_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port :'redis_port');
CREATE SERVER n_os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER n_es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');

\i test/integration/sql/setup.psql
CREATE FUNCTION names_synced() RETURNS text LANGUAGE sql AS $$
  SELECT wait_for('NOT EXISTS (SELECT FROM polyglot.status s WHERE s.source = ''public.gadgets'' AND s.pending > 0)')
$$;

CREATE TABLE gadgets (id int PRIMARY KEY, name text, price numeric);
INSERT INTO gadgets VALUES (1, 'lamp', 20), (2, 'fan', 35);

SELECT polyglot.sync('gadgets', 'n_cache', '{"name": "gadget json", "key": "names:json:{id}"}') IS NOT NULL AS synced;
SELECT polyglot.sync('gadgets', 'n_cache', '{"name": "gadget invalidate", "mode": "invalidate", "key": "names:inv:{id}"}',
                     backfill => false) IS NOT NULL AS synced;
SELECT polyglot.sync('gadgets', 'n_os', '{"name": "os full", "index": "polyglot_names_full"}') IS NOT NULL AS synced;
SELECT polyglot.sync('gadgets', 'n_os', '{"name": "os short", "index": "polyglot_names_short", "columns": ["id", "name"]}')
       IS NOT NULL AS synced;
SELECT polyglot.sync('gadgets', 'n_es', '{"name": "es full", "index": "polyglot_names_full"}') IS NOT NULL AS synced;
SELECT polyglot.sync('gadgets', 'n_es', '{"name": "es short", "index": "polyglot_names_short", "columns": ["id", "name"]}')
       IS NOT NULL AS synced;
SELECT names_synced();
SELECT name, server, store, state FROM polyglot.status WHERE source = 'public.gadgets' ORDER BY name;

-- the invalidate route deletes the cached entry of a changed row; the json
-- route of the same server writes it
\! redis-cli -p $REDIS_PORT SET names:inv:1 cached > /dev/null; redis-cli -p $REDIS_PORT SET names:inv:2 cached > /dev/null
UPDATE gadgets SET price = 22 WHERE id = 1;
INSERT INTO gadgets VALUES (3, 'desk', 120);
SELECT names_synced();
\! redis-cli -p $REDIS_PORT --scan --pattern 'names:*' | sort | while read k; do echo "$k $(redis-cli -p $REDIS_PORT GET $k)"; done
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do for i in polyglot_names_full polyglot_names_short; do curl -s -XPOST "$u/$i/_refresh" -o /dev/null; echo "$i: $(curl -s "$u/$i/_search?size=100" | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.dumps(h["_source"], sort_keys=True) for h in sorted(json.load(sys.stdin)["hits"]["hits"], key=lambda h: int(h["_id"]))))')"; done; done

-- each route is verified on its own: drift in one index is that route's
SELECT name, (SELECT count(*) FROM polyglot.verify(name)) AS drift
  FROM polyglot.routes WHERE source_relid = 'gadgets'::regclass AND options->>'mode' IS DISTINCT FROM 'invalidate'
 ORDER BY name;
\! curl -s -o /dev/null -XPUT "$OPENSEARCH_URL/polyglot_names_short/_doc/2?refresh=true" -H 'Content-Type: application/json' -d '{"id": 2, "name": "stale"}'
SELECT name, (SELECT count(*) FROM polyglot.verify(name)) AS drift
  FROM polyglot.routes WHERE source_relid = 'gadgets'::regclass AND options->>'mode' IS DISTINCT FROM 'invalidate'
 ORDER BY name;
SELECT kind, key FROM polyglot.verify('os short');

-- unsync by name removes that route only: the other index keeps flowing
SELECT polyglot.unsync('os short');
UPDATE gadgets SET name = 'big desk' WHERE id = 3;
SELECT names_synced();
\! for i in polyglot_names_full polyglot_names_short; do curl -s -XPOST "$OPENSEARCH_URL/$i/_refresh" -o /dev/null; echo "$i: $(curl -s "$OPENSEARCH_URL/$i/_doc/3" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["_source"], sort_keys=True))')"; done
SELECT name FROM polyglot.routes WHERE source_relid = 'gadgets'::regclass ORDER BY name;
SELECT sum(failed) AS failed, sum(dead_letters) AS dead_letters FROM polyglot.status WHERE source = 'public.gadgets';

DROP TABLE gadgets;
DROP FUNCTION names_synced();
\! redis-cli -p $REDIS_PORT --scan --pattern 'names:*' | xargs -r redis-cli -p $REDIS_PORT DEL > /dev/null
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_names_full,polyglot_names_short?ignore_unavailable=true"; done
DROP SERVER n_cache, n_os, n_es;
