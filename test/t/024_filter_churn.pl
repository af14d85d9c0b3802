# 024_filter_churn.pl: routes with a row filter converge under churn.  Four
# clients update, insert and delete rows of a table for 30 seconds, flipping
# them in and out of the filter (published, not deleted, an even rank);
# the delivery worker is killed (kill -9) in the middle.  Two routes of the
# table go to one Redis server (a filtered json key and, by name, an
# unfiltered one), one each to MongoDB, Elasticsearch and OpenSearch.  At
# the end every store holds exactly the rows of its filter, as they are:
# verify finds no drift on any route, and Redis read back key by key equals
# the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $es_url = $ENV{ELASTICSEARCH_URL} or die "ELASTICSEARCH_URL is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $index = 'polyglot_tap_filter_churn';
my $filter = 'published AND deleted_at IS NULL AND rank % 2 = 0';

system("redis-cli -p $redis_port --scan --pattern 'tapf:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'filter_churn');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($es_url, $os_url);

my $node = preloaded_node('filter_churn', "polyglot.workers = 2\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE TABLE posts (id int PRIMARY KEY, title text, published boolean NOT NULL,
                    deleted_at timestamptz, rank int NOT NULL);
INSERT INTO posts SELECT g, 'post ' || g, g % 3 <> 0, NULL, g FROM generate_series(1, 300) g;
SELECT polyglot.sync('posts', 'cache', '{"key": "tapf:in:{id}", "where": "$filter"}');
SELECT polyglot.sync('posts', 'cache', '{"name": "posts all", "key": "tapf:all:{id}"}');
SELECT polyglot.sync('posts', 'docs', '{"collection": "filter_churn", "where": "$filter"}');
SELECT polyglot.sync('posts', 'es', '{"index": "$index", "where": "$filter"}');
SELECT polyglot.sync('posts', 'os', '{"index": "$index", "where": "$filter"}');
});
ok(wait_drained($node, $db, 120), 'the backfills are delivered');

# the churn: each transaction changes one row, a tenth of them insert or
# delete, the others flip a column of the filter or the title
my $churn = start_load($node, $db, $tmp, <<'EOF', 4, 30, 300);
\set id random(1, 400)
\set what random(1, 10)
BEGIN;
UPDATE posts SET published = NOT published WHERE id = :id AND :what <= 3;
UPDATE posts SET rank = rank + 1 WHERE id = :id AND :what BETWEEN 4 AND 6;
UPDATE posts SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() END WHERE id = :id AND :what = 7;
UPDATE posts SET title = title || '.' WHERE id = :id AND :what = 8;
INSERT INTO posts VALUES (:id, 'new ' || :id, true, NULL, :id) ON CONFLICT (id) DO NOTHING;
DELETE FROM posts WHERE id = :id AND :what = 10;
COMMIT;
EOF

# the worker is killed in the middle of it; the postmaster restarts
# everything and the launcher brings the workers back
sleep 12;
my $pid = worker_pid($node, $db);
ok($pid > 0, 'a worker runs during the churn');
kill 'KILL', $pid;
ok(wait_until(sub { $node->safe_psql($db, 'SELECT 1') eq '1' }, 60), 'the server is back after the kill');
$churn->finish;
ok(-s "$tmp/pgbench.out", 'the churn ran');
note(slurp_file("$tmp/pgbench.out"));
ok(wait_until(sub { worker_pid($node, $db) > 0 }, 60), 'a worker runs again');
# (more writes after the crash restart, in case the kill cut the churn short)
$node->safe_psql($db, q{
UPDATE posts SET published = NOT published WHERE id % 7 = 0;
UPDATE posts SET rank = rank + 1 WHERE id % 11 = 0;
});
ok(wait_drained($node, $db, 180), 'every route caught up after the churn');

is($node->safe_psql($db,
	"SELECT string_agg(r.name || ':' || (SELECT count(*) FROM polyglot.verify(r.id)), ' ' ORDER BY r.name) "
	  . "FROM polyglot.routes r"),
	'posts all:0 posts@cache:0 posts@docs:0 posts@es:0 posts@os:0',
	'verify finds no drift on any route');
compare_store(redis_dump($redis_port, 'tapf:in:', $tmp),
	table_dump($node, $db, "SELECT 'tapf:in:' || id, row_to_json(p) FROM posts p WHERE $filter"),
	'the filtered Redis route holds exactly the rows of its filter');
compare_store(redis_dump($redis_port, 'tapf:all:', $tmp),
	table_dump($node, $db, "SELECT 'tapf:all:' || id, row_to_json(p) FROM posts p"),
	'the unfiltered route of the same server holds every row');
my ($in, $all) = split /\|/, $node->safe_psql($db,
	"SELECT count(*) FILTER (WHERE $filter), count(*) FROM posts");
ok($in > 20 && $in < $all, "the filter takes some rows and leaves others ($in of $all)");
is($node->safe_psql($db, 'SELECT sum(failed) FROM polyglot.status'), '0', 'no event was given up');

$node->stop;
done_testing();
