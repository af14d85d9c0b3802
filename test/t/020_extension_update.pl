# 020_extension_update.pl: ALTER EXTENSION pg_polyglot UPDATE from the
# released 1.0 while the worker delivers.  A database is created at 1.0 with
# the library of today (what a user has between installing the new library
# and updating), with routes to Redis, MongoDB (FerretDB), OpenSearch and
# Elasticsearch and a backlog pending on each; the update runs while the
# worker drains three of them and writes go on, the fourth still paused.
# Afterwards every change is delivered (each store equals the table), the
# routes deliver new writes and follow a server renamed, the worker never
# restarted, and the extension's objects equal those of a fresh CREATE
# EXTENSION of the new version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $es_url = $ENV{ELASTICSEARCH_URL} or die "ELASTICSEARCH_URL is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $index = 'polyglot_tap_update';
my $mongo_db = 'polyglot_tap_update';

# what an earlier run left
system("redis-cli -p $redis_port --scan --pattern 'tapu:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
system("MONGO_URI='$mongo_uri' $ENV{MONGO_TOOL} drop $mongo_db >/dev/null 2>&1");
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($os_url, $es_url);

my $node = preloaded_node('update');
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $default = slurp_file("$sharedir/extension/pg_polyglot.control")
  =~ /^default_version\s*=\s*'([^']+)'/m ? $1 : die 'no default_version';
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot VERSION '1.0';
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database '$mongo_db');
CREATE SERVER opensearch FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE SERVER elasticsearch FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT polyglot.sync('items', 'cache', '{"key": "tapu:{id}"}');
SELECT polyglot.sync('items', 'docs', '{"collection": "items"}');
SELECT polyglot.sync('items', 'opensearch', '{"index": "$index"}');
SELECT polyglot.sync('items', 'elasticsearch', '{"index": "$index"}');
});
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'"), '1.0',
	'the released 1.0 is installed');
ok(wait_drained($node, $db, 120), 'the backfill of the four routes is delivered');

# a backlog on every route: paused while every row changes
$node->safe_psql($db, q{
SELECT polyglot.pause(id) FROM polyglot.routes;
UPDATE items SET v = v || ' changed';
DELETE FROM items WHERE id % 10 = 0;
INSERT INTO items SELECT g, 'new ' || g FROM generate_series(1001, 1100) g;
});
my $pending = $node->safe_psql($db, q{SELECT string_agg(store || ' ' || pending, ', ' ORDER BY route) FROM polyglot.status});
is($node->safe_psql($db, q{SELECT count(*) FROM polyglot.status WHERE pending >= 1200}), '4',
	"a backlog on each route: $pending");

# another database at 1.0, with what 1.0 allowed: a route whose server was
# dropped (1.0 kept it, with the dropped server's OID) and the route that
# replaced it through a server made again under that name; two tables
# whose default route names are one ("a.b@cache")
$node->safe_psql('postgres', 'CREATE DATABASE legacy');
$node->safe_psql('legacy', qq{
CREATE EXTENSION pg_polyglot VERSION '1.0';
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE t (id int PRIMARY KEY);
SELECT polyglot.sync('t', 'cache', '{"key": "tapu:legacy:{id}"}', false);
DROP SERVER cache;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
SELECT polyglot.sync('t', 'cache', '{"key": "tapu:legacy:{id}"}', false);
CREATE SCHEMA a;
CREATE TABLE a.b (id int PRIMARY KEY);
CREATE TABLE "a.b" (id int PRIMARY KEY);
SELECT polyglot.sync('a.b', 'cache', '{"key": "tapu:legacy:ab:{id}"}', false);
SELECT polyglot.sync('"a.b"', 'cache', '{"key": "tapu:legacy:a.b:{id}"}', false);
ALTER EXTENSION pg_polyglot UPDATE;
});
is($node->safe_psql('legacy',
	q{SELECT string_agg(name || ':' || (server_oid <> 0), ' ' ORDER BY id) FROM polyglot.routes}),
	't@cache_1:false t@cache:true a.b@cache:true a.b@cache_4:true',
	'1.0 to 1.1: the replaced route stays without a server, and every route has a name of its own');
$node->safe_psql('postgres', 'DROP DATABASE legacy WITH (FORCE)');

# writes go on during the update; three routes drain, MongoDB's stays paused
# so that its backlog is certainly pending when the update commits
my $pgbench = start_load($node, $db, $tmp, "\\set id random(1, 1200)\n"
	  . "INSERT INTO items VALUES (:id, 'w') ON CONFLICT (id) DO UPDATE SET v = items.v || '+';\n",
	2, 6, 100);
my $worker = worker_pid($node, $db);
ok($worker > 0, 'the worker runs');
$node->safe_psql($db, q{SELECT polyglot.resume(id) FROM polyglot.routes WHERE store <> 'mongo'});
sleep 1;
my $at_update = $node->safe_psql($db, qq{
BEGIN;
SELECT sum(pending) FROM polyglot.status;
ALTER EXTENSION pg_polyglot UPDATE;
COMMIT;
});
ok($at_update > 1000, "ALTER EXTENSION UPDATE ran with $at_update events pending");
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'"), $default,
	"the extension is at the new version, $default");
$pgbench->finish;
is($?, 0, 'the writes during the update succeeded') or diag(slurp_file("$tmp/pgbench.err"));
$node->safe_psql($db, q{SELECT polyglot.resume(id) FROM polyglot.routes WHERE store = 'mongo'});
ok(wait_drained($node, $db, 180), 'every backlog drains after the update');
is(worker_pid($node, $db), $worker, 'the worker delivered through the update without a restart');

# each store equals the table
sub compare_all
{
	my ($when) = @_;
	compare_items_stores($node, $db, 'tapu:', $mongo_db, $index, $tmp, $when);
	is($node->safe_psql($db, q{SELECT sum(failed) || ' ' || sum(dead_letters) FROM polyglot.status}),
		'0 0', "no event failed $when");
}
compare_all('after the update');

# the routes deliver what is written after the update, also through a
# server renamed
$node->safe_psql($db, q{
ALTER SERVER opensearch RENAME TO search;
UPDATE items SET v = 'after update' WHERE id <= 50;
DELETE FROM items WHERE id BETWEEN 51 AND 60;
INSERT INTO items VALUES (5000, 'inserted after update');
});
is($node->safe_psql($db, q{SELECT string_agg(server, ',' ORDER BY route) FROM polyglot.status}),
	'cache,docs,search,elasticsearch', 'a renamed server keeps its routes');
ok(wait_drained($node, $db, 60), 'the writes after the update drain');
compare_all('after new writes');
is($node->safe_psql($db, q{SELECT string_agg(state, ',') FROM polyglot.status}),
	'active,active,active,active', 'every route is active');

# the objects equal those of a fresh install of the new version
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_polyglot');
compare_catalogs(extension_catalog($node, $db), extension_catalog($node, 'fresh'),
	'the updated objects equal those of a fresh CREATE EXTENSION');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/,
	'no process crashed');

$node->stop;
system("redis-cli -p $redis_port --scan --pattern 'tapu:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
system("MONGO_URI='$mongo_uri' $ENV{MONGO_TOOL} drop $mongo_db >/dev/null 2>&1");
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index") for ($os_url, $es_url);
done_testing();
