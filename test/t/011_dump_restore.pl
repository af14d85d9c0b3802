# 011_dump_restore.pl: pg_dump of a database with routes, restored into a
# fresh cluster, leaves every route delivering.  The routes are dumped with
# their table and owner by name; the restored table has no dropped column,
# so its key column's attribute number differs from the dumped one; the
# route's state is not dumped.  After the restore the worker takes the
# routes back: writes to the restored table reach the store, and the rows
# are sent again (the events pending at the dump were not dumped).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';

system("redis-cli -p $redis_port --scan --pattern 'tapd:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");

my $old = preloaded_node('dumped');
$old->safe_psql($db, 'CREATE EXTENSION pg_polyglot');
$old->safe_psql($db, qq{
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE public.items (junk int, id int PRIMARY KEY, v text);
ALTER TABLE public.items DROP COLUMN junk;
INSERT INTO public.items (id, v) SELECT g, 'v' || g FROM generate_series(1, 20) g;
-- a table created before, so that OIDs in the new cluster differ
CREATE TABLE public.other (id int PRIMARY KEY);
SELECT polyglot.sync('public.items', 'cache', '{"key": "tapd:{id}"}');
});
ok(wait_drained($old, $db, 60), 'the backfill is delivered');
is($old->safe_psql($db, 'SELECT source_name FROM polyglot.routes'), 'public.items', 'the route of public.items');
is(`redis-cli -p $redis_port GET tapd:7`, qq{{"id":7,"v":"v7"}\n}, 'a row is in Redis');

# pending at the dump: paused, so its event waits in the outbox
$old->safe_psql($db, "SELECT polyglot.pause(1); UPDATE public.items SET v = 'pending at dump' WHERE id = 3");
$old->command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/db.dump", '-h', $old->host, '-p', $old->port, $db ],
	'pg_dump');
$old->stop;

my $new = preloaded_node('restored');
$new->safe_psql($db, 'CREATE TABLE filler (a int); DROP TABLE filler;');
$new->safe_psql($db, 'CREATE DATABASE restored');
$new->command_ok([ 'pg_restore', '-d', 'restored', '-h', $new->host, '-p', $new->port, "$tmp/db.dump" ],
	'pg_restore into a fresh cluster');
# the dump had the route paused; resume it in the restored database
$new->safe_psql('restored', 'SELECT polyglot.resume(1)');

ok(wait_until(sub { $new->safe_psql('restored',
	"SELECT count(*) FROM polyglot.route_state") eq '1' }, 30),
	'the worker took the restored route back');
$new->safe_psql('restored', "UPDATE public.items SET v = 'after restore' WHERE id = 7; INSERT INTO public.items VALUES (21, 'new')");
ok(wait_drained($new, 'restored', 60), 'the restored route is drained');
is(`redis-cli -p $redis_port GET tapd:7`, qq{{"id":7,"v":"after restore"}\n}, 'an update after the restore is delivered');
is(`redis-cli -p $redis_port GET tapd:21`, qq{{"id":21,"v":"new"}\n}, 'an insert after the restore is delivered');
is(`redis-cli -p $redis_port GET tapd:3`, qq{{"id":3,"v":"pending at dump"}\n},
	'a change pending at the dump is delivered by the backfill');
is($new->safe_psql('restored',
	"SELECT state || ' ' || (source = 'public.items') || ' ' || (delivered > 0) FROM polyglot.status"),
	'active true true', 'the route is active and delivering');
is($new->safe_psql('restored',
	"SELECT r.source_relid = 'public.items'::regclass AND r.server_name = 'cache' "
	  . "FROM polyglot.routes r"),
	't', 'the route names the restored table and server');
is($new->safe_psql('restored', 'SELECT count(*) FROM polyglot.verify(1)'), '0', 'verify finds no drift');

$new->stop;
done_testing();
