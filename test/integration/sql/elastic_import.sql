--
-- elastic_import: IMPORT FOREIGN SCHEMA from an OpenSearch 2 and an
-- Elasticsearch 8 server: a foreign table per index of a name or pattern,
-- a column per top-level field typed from the mapping (objects and nested
-- fields as one jsonb column), the special columns _id, _score and query,
-- dot-prefixed and hidden indices skipped, LIMIT TO / EXCEPT, and errors.
--
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_import_a,polyglot_import_b,.polyglot_import_dot,.polyglot_import_hidden?ignore_unavailable=true"; done
-- every type both servers know, a text with a keyword sub-field, an object,
-- a disabled object, a nested field and a field named query
SELECT regexp_replace($${
  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
  "mappings": {"properties": {
    "kw": {"type": "keyword"},
    "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    "body": {"type": "text"},
    "addr": {"type": "ip"},
    "n_long": {"type": "long"},
    "n_int": {"type": "integer"},
    "n_short": {"type": "short"},
    "n_byte": {"type": "byte"},
    "n_double": {"type": "double"},
    "n_float": {"type": "float"},
    "n_half": {"type": "half_float"},
    "flag": {"type": "boolean"},
    "created": {"type": "date"},
    "precise": {"type": "date_nanos"},
    "brand": {"properties": {"name": {"type": "keyword"},
                             "country": {"properties": {"code": {"type": "keyword"}}}}},
    "settings": {"type": "object", "enabled": false},
    "reviews": {"type": "nested", "properties": {"stars": {"type": "integer"}, "text": {"type": "text"}}},
    "location": {"type": "geo_point"},
    "span": {"type": "integer_range"},
    "query": {"type": "keyword"}
  }}
}$$, '\s+', '', 'g') AS mapping_a \gset
\setenv MAPPING_A :mapping_a
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -w '%{http_code}\n' -XPUT "$u/polyglot_import_a" -H 'Content-Type: application/json' -d "$MAPPING_A"; done
-- types only one of the servers has (the local ones have no x-pack or
-- mapper-extras: no scaled_float, constant_keyword or version)
\! curl -s -o /dev/null -w '%{http_code}\n' -XPUT "$OPENSEARCH_URL/polyglot_import_a/_mapping" -H 'Content-Type: application/json' -d '{"properties": {"wc": {"type": "wildcard"}, "mot": {"type": "match_only_text"}, "n_ulong": {"type": "unsigned_long"}, "flat": {"type": "flat_object"}}}'
\! curl -s -o /dev/null -w '%{http_code}\n' -XPUT "$ELASTICSEARCH_URL/polyglot_import_a/_mapping" -H 'Content-Type: application/json' -d '{"properties": {"flat": {"type": "flattened"}, "vec": {"type": "dense_vector", "dims": 3}}}'
-- a second index, with a field named _score and a name longer than an
-- identifier; a dot-prefixed one the pattern *polyglot_import_* also
-- matches, and a hidden one it does not
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do for i in polyglot_import_b .polyglot_import_dot; do curl -s -o /dev/null -w '%{http_code}\n' -XPUT "$u/$i" -H 'Content-Type: application/json' -d '{"settings": {"number_of_replicas": 0}, "mappings": {"properties": {"name": {"type": "text"}, "qty": {"type": "integer"}, "_score": {"type": "float"}, "a_field_name_longer_than_an_identifier_which_postgresql_cuts_to_fit_in_63_bytes": {"type": "keyword"}}}}'; done; done
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -w '%{http_code}\n' -XPUT "$u/.polyglot_import_hidden" -H 'Content-Type: application/json' -d '{"settings": {"number_of_replicas": 0, "index.hidden": true}, "mappings": {"properties": {"name": {"type": "text"}}}}'; done

CREATE SERVER import_os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'opensearch_url');
CREATE SERVER import_es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url :'elasticsearch_url');
CREATE VIEW imported_columns AS
SELECT n.nspname AS schema, c.relname AS "table", a.attnum, a.attname AS "column",
       format_type(a.atttypid, a.atttypmod) AS type, a.attfdwoptions AS options
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'f' AND a.attnum > 0 AND NOT a.attisdropped;
CREATE VIEW imported_tables AS
SELECT n.nspname AS schema, c.relname AS "table", s.srvname AS server, t.ftoptions AS options
  FROM pg_foreign_table t
  JOIN pg_class c ON c.oid = t.ftrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_foreign_server s ON s.oid = t.ftserver;

--
-- a pattern: a table per index, dot-prefixed and hidden indices skipped
--
CREATE SCHEMA import_os;
CREATE SCHEMA import_es;
IMPORT FOREIGN SCHEMA "*polyglot_import_*" FROM SERVER import_os INTO import_os;
IMPORT FOREIGN SCHEMA "*polyglot_import_*" FROM SERVER import_es INTO import_es;
SELECT * FROM imported_tables WHERE schema IN ('import_os', 'import_es') ORDER BY schema DESC, "table";
SELECT "table", "column", type, options FROM imported_columns WHERE schema = 'import_os'
 ORDER BY "table", attnum;
SELECT "table", "column", type, options FROM imported_columns WHERE schema = 'import_es'
 ORDER BY "table", attnum;

--
-- one index by name; LIMIT TO and EXCEPT; patterns that match nothing, or
-- only dot-prefixed indices, import nothing
--
CREATE SCHEMA import_some;
IMPORT FOREIGN SCHEMA polyglot_import_b FROM SERVER import_es INTO import_some;
ALTER FOREIGN TABLE import_some.polyglot_import_b RENAME TO by_name;
IMPORT FOREIGN SCHEMA "polyglot_import_*" LIMIT TO (polyglot_import_b, no_such_index)
  FROM SERVER import_os INTO import_some;
ALTER FOREIGN TABLE import_some.polyglot_import_b RENAME TO limit_to;
IMPORT FOREIGN SCHEMA "polyglot_import_*" EXCEPT (polyglot_import_b)
  FROM SERVER import_es INTO import_some;
IMPORT FOREIGN SCHEMA "polyglot_import_none*" FROM SERVER import_os INTO import_some;
IMPORT FOREIGN SCHEMA ".polyglot_import_*" FROM SERVER import_es INTO import_some;
SELECT * FROM imported_tables WHERE schema = 'import_some' ORDER BY "table";

--
-- errors: an index that does not exist, an IMPORT option
--
IMPORT FOREIGN SCHEMA polyglot_import_none FROM SERVER import_os INTO import_some;
IMPORT FOREIGN SCHEMA polyglot_import_none FROM SERVER import_es INTO import_some;
IMPORT FOREIGN SCHEMA "polyglot_import_*" FROM SERVER import_os INTO import_some
  OPTIONS (sample_size '10');

SET client_min_messages TO warning;
DROP SCHEMA import_os, import_es, import_some CASCADE;
RESET client_min_messages;
DROP VIEW imported_columns, imported_tables;
DROP SERVER import_os, import_es;
\! for u in $OPENSEARCH_URL $ELASTICSEARCH_URL; do curl -s -o /dev/null -XDELETE "$u/polyglot_import_a,polyglot_import_b,.polyglot_import_dot,.polyglot_import_hidden?ignore_unavailable=true"; done
