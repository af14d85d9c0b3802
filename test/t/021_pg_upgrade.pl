# 021_pg_upgrade.pl: pg_upgrade of a cluster with routes to Redis, MongoDB
# (FerretDB), OpenSearch and Elasticsearch and a pending backlog, from
# PostgreSQL $POLYGLOT_UPGRADE_FROM_BIN (15.19 in make test, whatever version
# the run uses) to PostgreSQL $POLYGLOT_UPGRADE_BIN (18 in make test;
# test/install-for.sh builds and installs pg_polyglot in both).  The old
# cluster is 15.19 and not Debian's 15.20: 15.20 gives every column of every
# table an attribute option pg_attver, which 18.6's pg_dump dumps and 18.6's
# server rejects ("unrecognized parameter"), so pg_upgrade from 15.20 to 18.6
# fails for any database with a table, with or without pg_polyglot.
# pg_upgrade copies polyglot.routes, the outbox and the route state as they
# are and keeps the OIDs of tables and roles, not those of foreign servers;
# the new cluster has another system identifier, and the worker's first
# round there finds the servers of the routes again by name.  Afterwards
# the backlog is delivered, each store equals its table, new writes are
# delivered, verify finds no drift, and the extension's objects equal those
# of a fresh install on the new version.  A database still at 1.0 when
# pg_upgrade ran gets its routes' servers back by ALTER EXTENSION UPDATE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Basename qw(dirname);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $es_url = $ENV{ELASTICSEARCH_URL} or die "ELASTICSEARCH_URL is not set";
my $new_bin = $ENV{POLYGLOT_UPGRADE_BIN}
  or die "POLYGLOT_UPGRADE_BIN is not set (test/install-for.sh 18 prints it)";
my $old_bin = $ENV{POLYGLOT_UPGRADE_FROM_BIN}
  or die "POLYGLOT_UPGRADE_FROM_BIN is not set (test/install-for.sh 15.19.0 prints it)";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'shop';
my $index = 'polyglot_tap_pgupgrade';
my $mongo_db = 'polyglot_tap_pgupgrade';

sub clean_stores
{
	system("redis-cli -p $redis_port --scan --pattern '$_*' | xargs -r redis-cli -p $redis_port DEL >/dev/null")
	  for ('tappg:', 'tappgl:');
	system("MONGO_URI='$mongo_uri' $ENV{MONGO_TOOL} drop $mongo_db >/dev/null 2>&1");
	system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
	  for ($os_url, $es_url);
}
clean_stores();

my $old = preloaded_node('pgup_old', undef, dirname($old_bin));
my $old_major = int($old->safe_psql('postgres', 'SHOW server_version_num') / 10000);
$old->safe_psql('postgres', "CREATE DATABASE $db");
$old->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
-- servers created and dropped first: the new cluster gives the servers
-- other OIDs anyway, these make sure the old ones differ from any default
CREATE SERVER gone1 FOREIGN DATA WRAPPER polyglot_redis;
CREATE SERVER gone2 FOREIGN DATA WRAPPER polyglot_redis;
DROP SERVER gone1;
DROP SERVER gone2;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database '$mongo_db');
CREATE SERVER opensearch FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE SERVER elasticsearch FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE USER MAPPING FOR PUBLIC SERVER cache;
-- a dropped column before the key: its attribute number must survive
CREATE TABLE items (junk int, id int PRIMARY KEY, v text NOT NULL);
ALTER TABLE items DROP COLUMN junk;
INSERT INTO items (id, v) SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT polyglot.sync('items', 'cache', '{"key": "tappg:{id}"}');
SELECT polyglot.sync('items', 'docs', '{"collection": "items"}');
SELECT polyglot.sync('items', 'opensearch', '{"index": "$index"}');
SELECT polyglot.sync('items', 'elasticsearch', '{"index": "$index"}');
});
ok(wait_drained($old, $db, 120), "on $old_major: the backfill of the four routes is delivered");

# a database left at 1.0 through pg_upgrade
$old->safe_psql('postgres', 'CREATE DATABASE legacy');
$old->safe_psql('legacy', qq{
CREATE EXTENSION pg_polyglot VERSION '1.0';
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT polyglot.sync('items', 'cache', '{"key": "tappgl:{id}"}');
});
ok(wait_drained($old, 'legacy', 60), "on $old_major: the route of the 1.0 database is delivered");
$old->safe_psql('legacy', q{SELECT polyglot.pause(id) FROM polyglot.routes; UPDATE items SET v = 'pending' WHERE id <= 5});

# the backlog: every route paused while rows change, then the cluster stops
$old->safe_psql($db, q{
SELECT polyglot.pause(id) FROM polyglot.routes;
UPDATE items SET v = v || ' changed' WHERE id % 3 = 0;
DELETE FROM items WHERE id % 10 = 0;
INSERT INTO items (id, v) SELECT g, 'new ' || g FROM generate_series(1001, 1100) g;
});
my $pending = $old->safe_psql($db, q{SELECT sum(pending) FROM polyglot.status});
ok($pending > 400, "a backlog of $pending events is pending at the upgrade");
my $version = $old->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'});
my $routes_before = $old->safe_psql($db,
	q{SELECT string_agg(id || ' ' || source_relid::regclass || ' ' || server_name || ' ' || key_columns::text, ', ' ORDER BY id) FROM polyglot.routes});
my $checksums = $old->safe_psql('postgres', 'SHOW data_checksums');
my $old_system = $old->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
is($old->safe_psql($db, q{SELECT string_agg(DISTINCT server_cluster::text, ',') FROM polyglot.routes}),
	$old_system, 'the routes record the system identifier of the old cluster');
my $old_servers = $old->safe_psql($db, q{SELECT string_agg(srvname || '=' || oid, ' ' ORDER BY srvname) FROM pg_foreign_server});
$old->stop;

# the new cluster, as pg_upgrade wants it: same settings, the library
# preloaded, data checksums as the old cluster has them (18's initdb adds
# them by default)
my $new = PostgreSQL::Test::Cluster->new('pgup_new', install_path => dirname($new_bin));
my $new_major = `$new_bin/pg_config --version` =~ /PostgreSQL (\d+)/ ? $1 : die 'no version';
$new->init(extra => [ $checksums eq 'on' ? '--data-checksums'
	  : $new_major >= 18 ? '--no-data-checksums' : () ]);
$new->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_polyglot'
max_worker_processes = 16
polyglot.poll_interval = 200ms
polyglot.backoff_max = 2s
});
my @upgrade = ("$new_bin/pg_upgrade", '--old-bindir', $old_bin, '--new-bindir', $new_bin,
	'--old-datadir', $old->data_dir, '--new-datadir', $new->data_dir,
	'--old-port', $old->port, '--new-port', $new->port, '--socketdir', $new->host);
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'sh', '-c', 'cd "$0" && exec "$@"', $tmp, @upgrade ], '>', \$stdout, '2>', \$stderr);
ok($ok, "pg_upgrade from $old_major to $new_major") or diag("$stdout\n$stderr");
$new->start;

# pg_upgrade made a new cluster: another system identifier, and foreign
# servers with other OIDs (its schema restore creates them before it sets
# the next OID to the old cluster's, so an old server OID may name another
# server here)
my $new_system = $new->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
my $new_servers = $new->safe_psql($db, q{SELECT string_agg(srvname || '=' || oid, ' ' ORDER BY srvname) FROM pg_foreign_server});
note("system identifier: $old_system on $old_major, $new_system on $new_major");
note("servers: $old_servers on $old_major, $new_servers on $new_major");
isnt($new_system, $old_system, 'the upgraded cluster has another system identifier');
isnt($new_servers, $old_servers, 'the servers have other OIDs in the upgraded cluster');
ok(wait_until(sub { $new->safe_psql($db, q{
	SELECT count(*) FROM polyglot.routes r JOIN pg_foreign_server s ON s.oid = r.server_oid AND s.srvname = r.server_name
	 WHERE r.server_cluster = polyglot._this_cluster()}) eq '4' }, 60),
	'the worker found the servers of the routes again by name, in the new cluster');

is($new->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'}),
	$version, "the extension keeps its version, $version");
is($new->safe_psql($db,
	q{SELECT string_agg(id || ' ' || source_relid::regclass || ' ' || server_name || ' ' || key_columns::text, ', ' ORDER BY id) FROM polyglot.routes}),
	$routes_before, 'the routes are those of the old cluster');
is($new->safe_psql($db, q{SELECT sum(pending) FROM polyglot.status}), $pending,
	'the backlog came through pg_upgrade');
$new->safe_psql($db, q{SELECT polyglot.resume(id) FROM polyglot.routes});
ok(wait_drained($new, $db, 180), "on $new_major: the backlog is delivered");

sub compare_all
{
	my ($when) = @_;
	compare_items_stores($new, $db, 'tappg:', $mongo_db, $index, $tmp, $when);
	is($new->safe_psql($db, q{SELECT string_agg(state || ' ' || failed || ' ' || dead_letters, ', ') FROM polyglot.status}),
		'active 0 0, active 0 0, active 0 0, active 0 0', "every route is active, nothing failed $when");
}
compare_all('after pg_upgrade');

# new writes reach every store
$new->safe_psql($db, q{
UPDATE items SET v = 'after upgrade' WHERE id <= 30;
DELETE FROM items WHERE id BETWEEN 31 AND 35;
INSERT INTO items (id, v) VALUES (5000, 'inserted after upgrade');
});
ok(wait_drained($new, $db, 60), 'the writes after the upgrade drain');
compare_all('after new writes');
is($new->safe_psql($db, q{SELECT count(*) FROM polyglot.routes r, polyglot.verify(r.id)}), '0',
	'verify finds no drift on any route');

# the objects equal those of a fresh install on the new version
$new->safe_psql('postgres', 'CREATE DATABASE fresh');
$new->safe_psql('fresh', 'CREATE EXTENSION pg_polyglot');
compare_catalogs(extension_catalog($new, $db), extension_catalog($new, 'fresh'),
	"the upgraded objects equal those of a fresh CREATE EXTENSION on $new_major");

# the database still at 1.0: its route names a server OID of the old
# cluster until ALTER EXTENSION UPDATE finds the server again by name
$new->safe_psql('legacy', q{ALTER EXTENSION pg_polyglot UPDATE; SELECT polyglot.resume(id) FROM polyglot.routes});
is($new->safe_psql('legacy', q{
	SELECT count(*) FROM polyglot.routes r JOIN pg_foreign_server s ON s.oid = r.server_oid AND s.srvname = 'cache'
	 WHERE r.server_cluster = polyglot._this_cluster()}), '1',
	'ALTER EXTENSION UPDATE after pg_upgrade gives the route of the 1.0 database its server');
ok(wait_drained($new, 'legacy', 60), 'the backlog of the 1.0 database is delivered');
compare_store(redis_dump($redis_port, 'tappgl:', $tmp),
	table_dump($new, 'legacy', q{SELECT 'tappgl:' || id, row_to_json(i.*) FROM items i}),
	'Redis equals the table of the 1.0 database');

$new->stop;
clean_stores();
done_testing();
