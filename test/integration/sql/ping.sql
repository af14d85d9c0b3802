--
-- ping: reach each of the four servers of the local stack through a
-- foreign server.  Fails when any of them is down.
--
\getenv redis_port REDIS_PORT
\getenv mongo_uri MONGO_URI
\getenv opensearch_url OPENSEARCH_URL
\getenv elasticsearch_url ELASTICSEARCH_URL
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (host '127.0.0.1', port :'redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri :'mongo_uri', database 'shop');
CREATE SERVER search_os FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'opensearch_url');
CREATE SERVER search_es FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'elasticsearch_url');

-- one row per server: the store answered, its kind, flavour and version
SELECT s AS server,
       p->>'ok' AS ok,
       p->>'store' AS store,
       p->>'flavor' AS flavor,
       p->>'server' = s AS names_server,
       CASE p->>'store'
         WHEN 'redis' THEN p->>'version' ~ '^7\.'
         WHEN 'mongo' THEN p->>'version' ~ '^[0-9]+\.[0-9]+'
         ELSE p->>'version' ~ CASE p->>'flavor' WHEN 'opensearch' THEN '^2\.' ELSE '^8\.' END
       END AS version_ok,
       (p->>'latency_ms')::float8 BETWEEN 0 AND 10000 AS latency_ok
FROM unnest(ARRAY['cache', 'docs', 'search_os', 'search_es']) AS s,
     LATERAL polyglot.ping(s::name) AS p
ORDER BY s;

-- the same servers again: cached connections keep working
SELECT polyglot.ping('cache')->>'ok' AS cache, polyglot.ping('docs')->>'ok' AS docs,
       polyglot.ping('search_os')->>'ok' AS os, polyglot.ping('search_es')->>'ok' AS es;

-- several node URLs: the first is down, the second answers (failover)
\set failover_url 'http://127.0.0.1:1, ' :opensearch_url
CREATE SERVER search_failover FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url :'failover_url');
SELECT polyglot.ping('search_failover')->>'flavor' AS flavor;
-- and it keeps answering from the node that worked
SELECT polyglot.ping('search_failover')->>'ok' AS ok;
DROP SERVER search_failover;

-- a non-superuser with USAGE on the server may ping it
-- (roles outlive the test database: a run stopped half-way left them)
SET client_min_messages = warning;
DROP ROLE IF EXISTS polyglot_pinger;
RESET client_min_messages;
CREATE ROLE polyglot_pinger;
GRANT USAGE ON FOREIGN SERVER cache TO polyglot_pinger;
SET ROLE polyglot_pinger;
SELECT polyglot.ping('cache')->>'ok' AS ok;
SELECT polyglot.ping('docs')->>'ok' AS ok;
RESET ROLE;
DROP OWNED BY polyglot_pinger;
DROP ROLE polyglot_pinger;

DROP SERVER cache, docs, search_os, search_es;
