# 004_lifecycle.pl: the launcher and the workers.  A worker per database
# with pg_polyglot, started without a restart when the extension is created;
# visible in pg_stat_activity; gone when the extension is dropped; DROP
# DATABASE is not blocked; settings reload on SIGHUP; a fast shutdown is
# prompt; sync without shared_preload_libraries is a clear error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $node = preloaded_node('lifecycle');

is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot launcher'"),
	'1', 'the launcher runs and shows in pg_stat_activity');

# a new database gets its worker as soon as the extension is created
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION pg_polyglot');
ok(wait_until(sub { worker_pid($node, 'shop') > 0 }, 10),
	'CREATE EXTENSION starts a worker for the database, without a restart');
is($node->safe_psql('postgres',
	"SELECT application_name FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = 'shop'"),
	'pg_polyglot worker', 'the worker shows under its own name');

# it delivers (woken at commit, not by the poll)
$node->safe_psql('shop', qq{
ALTER SYSTEM SET polyglot.poll_interval = '1h';
SELECT pg_reload_conf();
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
CREATE TABLE items (id int PRIMARY KEY, v text);
SELECT polyglot.sync('items', 'cache', '{"key": "lifecycle:{id}"}');
});
sleep 1;
$node->safe_psql('shop', q{INSERT INTO items VALUES (1, 'woken at commit')});
ok(wait_until(sub { (redis_cli($redis_port, 'GET', 'lifecycle:1') // '') =~ /woken at commit/ }, 5),
	'a commit wakes the worker although the poll interval is an hour');

# DROP EXTENSION: the worker leaves
$node->safe_psql('shop', 'DROP EXTENSION pg_polyglot CASCADE');
$node->safe_psql('shop', q{INSERT INTO items VALUES (2, 'x')});
ok(wait_until(sub { worker_pid($node, 'shop') == 0 }, 10), 'DROP EXTENSION stops the worker');
$node->safe_psql('shop', 'CREATE EXTENSION pg_polyglot');
ok(wait_until(sub { worker_pid($node, 'shop') > 0 }, 10), 'CREATE EXTENSION brings it back');

# DROP DATABASE is not blocked by the worker connected to it
my $t0 = time();
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop');
is($ret, 0, 'DROP DATABASE succeeds while a worker serves the database') or diag($err);
ok(time() - $t0 < 5, 'and does not wait for the worker');
sleep 1;
is(worker_pid($node, 'shop'), '0', 'no worker comes back for the dropped database');
ok($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot launcher'") eq '1',
	'the launcher carries on');

# polyglot.database restricts the databases served
$node->append_conf('postgresql.conf', "polyglot.database = 'only_this'");
$node->restart;
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION pg_polyglot');
sleep 2;
is(worker_pid($node, 'other'), '0', 'polyglot.database keeps other databases unserved');

# a fast shutdown is prompt
$t0 = time();
$node->stop('fast');
ok(time() - $t0 < 10, 'the launcher and workers exit promptly on shutdown');

# without shared_preload_libraries: a clear error with a hint
my $plain = PostgreSQL::Test::Cluster->new('plain_sync');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION pg_polyglot; CREATE TABLE t (id int PRIMARY KEY);'
	. "CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port')");
($ret, $out, $err) = $plain->psql('postgres', q{SELECT polyglot.sync('t', 'cache')});
like($err, qr/pg_polyglot sync needs the library in shared_preload_libraries.*HINT:  Add pg_polyglot to shared_preload_libraries/s,
	'sync without preloading is a clear error with a hint');
$plain->stop;

done_testing();
