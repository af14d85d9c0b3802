--
-- sync_elastic: changes of a synced table reach an OpenSearch 2 and an
-- Elasticsearch 8 index through _bulk, with external versions: inserts,
-- updates, deletes, key changes, TRUNCATE, composite keys with routing,
-- JSON for every kind of value (hostile strings included), and a document
-- the index's mapping refuses, which fails alone.  Indexes are read back
-- with curl (_source, sorted by id).
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_sync_items,polyglot_sync_tenants,polyglot_sync_json,polyglot_sync_big,polyglot_sync_long?ignore_unavailable=true"; done
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');

\i test/integration/sql/setup.psql
CREATE OR REPLACE FUNCTION search_synced(timeout_s float8 DEFAULT 60) RETURNS text LANGUAGE sql AS $$
  SELECT wait_for('NOT EXISTS (SELECT FROM polyglot.status s WHERE s.store = ''elastic'' AND s.pending > 0)', timeout_s)
$$;

CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, at timestamptz,
                    day date, tags text[], doc jsonb, raw bytea, ok bool, score float8);

--
-- every kind of value, to both servers
--
INSERT INTO items VALUES
  (1, 'plain', 12345678901234567890.123456789, '2024-01-02 03:04:05.678+02', '2024-02-29',
   '{x,y}', '{"k": {"n": 1, "list": [1, 2]}, "t": true}', '\xdeadbeef', true, 1.5),
  (2, E'quote " backslash \\ slash / tab \t newline \n nul-free \u0001 é 😀', -0.5,
   '1999-12-31 23:59:59.999999-08', NULL, '{"with \"quote\"", NULL}', '[]', '\x', false, -2.5e-7),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT polyglot.sync('items', 'os', '{"index": "polyglot_sync_items"}') AS os_items \gset
SELECT polyglot.sync('items', 'es', '{"index": "polyglot_sync_items"}') AS es_items \gset
SELECT search_synced();
-- _source as sent, byte for byte (numbers keep every digit)
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_items/_refresh" -o /dev/null; for id in 1 2 3; do curl -s "$u/polyglot_sync_items/_source/$id"; echo; done; done
-- the text of a value round-trips exactly
\! curl -s "$OPENSEARCH_URL/polyglot_sync_items/_source/2" | /usr/bin/python3 -c 'import json,sys; print(repr(json.load(sys.stdin)["name"]))'

--
-- updates, deletes, key changes, inserts; then TRUNCATE
--
UPDATE items SET name = 'changed', price = price * 2 WHERE id = 1;
DELETE FROM items WHERE id = 3;
UPDATE items SET id = 20 WHERE id = 2;
INSERT INTO items (id, name) VALUES (4, 'four'), (5, 'five');
DELETE FROM items WHERE id = 5;
SELECT search_synced();
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_items/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_items/_search?sort=id&size=100&filter_path=hits.hits._id,hits.hits._source.name,hits.hits._source.price"; echo; done
SELECT delivered, failed FROM polyglot.status WHERE route IN (:os_items, :es_items) ORDER BY route;

--
-- a document the mapping refuses (doc.k is an object in the index) fails
-- alone: the rows after it flow
--
INSERT INTO items (id, name, doc) VALUES (6, 'poison', '{"k": "a string"}');
INSERT INTO items (id, name) VALUES (7, 'after the poison');
-- (until row 7 is delivered and row 6 waits with its error, on each route)
SELECT wait_for(format('(SELECT count(*) = 2 AND bool_and(last_error IS NOT NULL) FROM polyglot.outbox WHERE route_id IN (%s, %s))', :os_items, :es_items));
SELECT r.store, o.key, o.last_error ~ 'HTTP 400: (mapper_parsing_exception|document_parsing_exception)' AS mapping_error
  FROM polyglot.outbox o JOIN polyglot.routes r ON r.id = o.route_id ORDER BY o.route_id;
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_items/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_items/_count?q=id:7&filter_path=count"; echo; done
-- fixed, it goes on its next attempt
UPDATE items SET doc = '{"k": {"n": 6}}' WHERE id = 6;
SELECT search_synced();
TRUNCATE items;
SELECT search_synced();
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_items/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_items/_search?filter_path=hits.total.value,hits.hits._id"; echo; done

--
-- external versions: a document the index holds at a higher version (a
-- newer write) is not overwritten; the refusal (409) counts as done, and
-- in status.stale
--
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XPUT "$u/polyglot_sync_items/_doc/99?version=9000000000000000&version_type=external" -H 'Content-Type: application/json' -d '{"id": 99, "name": "newer, already in the index"}'; done
SELECT sum(retries) AS retries_before FROM polyglot.status WHERE route IN (:os_items, :es_items) \gset
INSERT INTO items (id, name) VALUES (99, 'older than the index');
SELECT search_synced();
SELECT sum(retries) = :retries_before AS no_retry, sum(failed) AS failed, sum(stale) AS stale
  FROM polyglot.status WHERE route IN (:os_items, :es_items);
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s "$u/polyglot_sync_items/_source/99"; echo; done
DELETE FROM items WHERE id = 99;
SELECT search_synced();
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s "$u/polyglot_sync_items/_source/99"; echo; done

--
-- a json value keeps its text, on one line (a _bulk body is one JSON text
-- per line): its newlines are whitespace between tokens
--
CREATE TABLE raw_json (id int PRIMARY KEY, j json);
INSERT INTO raw_json VALUES (1, E'{\n  "a": [1,\r\n 2],\n  "b": "x\\ny"\n}');
SELECT polyglot.sync('raw_json', 'os', '{"index": "polyglot_sync_json"}') AS os_j \gset
SELECT polyglot.sync('raw_json', 'es', '{"index": "polyglot_sync_json"}') AS es_j \gset
SELECT search_synced();
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s "$u/polyglot_sync_json/_source/1"; echo; done
SELECT polyglot.unsync('raw_json', 'os'), polyglot.unsync('raw_json', 'es');
DROP TABLE raw_json;

--
-- a batch larger than one request may carry (32 MB here; servers refuse
-- 100 MB) goes as several _bulk requests
--
CREATE TABLE big_docs (id int PRIMARY KEY, body text);
INSERT INTO big_docs SELECT g, repeat(chr(96 + g % 26), 1000000) FROM generate_series(1, 40) g;
SELECT polyglot.sync('big_docs', 'os', '{"index": "polyglot_sync_big"}') AS os_b \gset
SELECT polyglot.sync('big_docs', 'es', '{"index": "polyglot_sync_big"}') AS es_b \gset
SELECT search_synced(60);
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_big/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_big/_count?filter_path=count"; curl -s "$u/polyglot_sync_big/_source/40" | wc -c; done
SELECT polyglot.unsync('big_docs', 'os'), polyglot.unsync('big_docs', 'es');
DROP TABLE big_docs;

--
-- a composite key: _id is the JSON array of its values; routing by one of
-- them, on deletes too
--
CREATE TABLE tenant_docs (tenant int, id int, body text, PRIMARY KEY (tenant, id));
INSERT INTO tenant_docs VALUES (1, 1, 'one'), (1, 2, 'two'), (2, 1, 'other');
SELECT polyglot.sync('tenant_docs', 'os', '{"index": "polyglot_sync_tenants", "routing": "tenant"}') AS os_t \gset
SELECT polyglot.sync('tenant_docs', 'es', '{"index": "polyglot_sync_tenants", "routing": "tenant", "exclude": ["tenant"]}') AS es_t \gset
DELETE FROM tenant_docs WHERE tenant = 1 AND id = 2;
SELECT search_synced();
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_tenants/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_tenants/_search" | /usr/bin/python3 -c 'import json,sys; [print(h["_id"], h.get("_routing"), json.dumps(h["_source"])) for h in sorted(json.load(sys.stdin)["hits"]["hits"], key=lambda h: h["_id"])]'; done

--
-- a key the store refuses fails alone: an _id over 512 bytes would fail the
-- whole _bulk request (HTTP 400); it fails its key, and the others go
--
CREATE TABLE long_keys (k text PRIMARY KEY, v text);
INSERT INTO long_keys VALUES ('short', 'a'), (repeat('k', 600), 'b'), ('also short', 'c');
SELECT polyglot.sync('long_keys', 'os', '{"index": "polyglot_sync_long"}') AS os_l \gset
SELECT polyglot.sync('long_keys', 'es', '{"index": "polyglot_sync_long"}') AS es_l \gset
SELECT wait_for(format('(SELECT sum(delivered) >= 4 FROM polyglot.route_state WHERE route_id IN (%s, %s)) AND '
                       'NOT EXISTS (SELECT FROM polyglot.outbox WHERE route_id IN (%1$s, %2$s) AND last_error IS NULL)',
                       :os_l, :es_l));
SELECT DISTINCT route_id = :os_l AS opensearch, length(key[1][1]), last_error
  FROM polyglot.outbox WHERE route_id IN (:os_l, :es_l) ORDER BY 1;
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -XPOST "$u/polyglot_sync_long/_refresh" -o /dev/null; curl -s "$u/polyglot_sync_long/_count?filter_path=count"; echo; done
SELECT polyglot.unsync('long_keys', 'os'), polyglot.unsync('long_keys', 'es');
DROP TABLE long_keys;

SELECT polyglot.unsync('items', 'os'), polyglot.unsync('items', 'es'),
       polyglot.unsync('tenant_docs', 'os'), polyglot.unsync('tenant_docs', 'es');
DROP TABLE items, tenant_docs;
DROP SERVER os, es;
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_sync_items,polyglot_sync_tenants,polyglot_sync_json,polyglot_sync_big,polyglot_sync_long?ignore_unavailable=true"; done
