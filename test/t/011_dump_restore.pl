# 011_dump_restore.pl: pg_dump of a database with routes, restored into a
# fresh cluster, leaves every route delivering.  The routes are dumped with
# their table and owner by name; the restored table has no dropped column,
# so its key column's attribute number differs from the dumped one; the
# route's state is not dumped.  After the restore the worker takes the
# routes back: writes to the restored table reach the store, and the rows
# are sent again (the events pending at the dump were not dumped).  A
# route whose documents include a related table keeps its triggers on that
# table, once, and a change of the related row reaches the documents.
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

system("redis-cli -p $redis_port --scan --pattern 'tap[dk]:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");

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
CREATE TABLE public.brands (id int PRIMARY KEY, name text);
CREATE TABLE public.kits (id int PRIMARY KEY, brand_id int REFERENCES public.brands);
INSERT INTO public.brands VALUES (1, 'acme');
INSERT INTO public.kits VALUES (1, 1), (2, 1);
SELECT polyglot.sync('public.kits', 'cache', '{"key": "tapk:{id}", "include": {"brand": {"table": "brands"}}}');
});
ok(wait_drained($old, $db, 60), 'the backfill is delivered');
is($old->safe_psql($db, 'SELECT source_name FROM polyglot.routes WHERE id = 1'), 'public.items', 'the route of public.items');
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
	"SELECT count(*) FROM polyglot.route_state") eq '2' }, 30),
	'the worker took the restored routes back');
$new->safe_psql('restored', "UPDATE public.items SET v = 'after restore' WHERE id = 7; INSERT INTO public.items VALUES (21, 'new')");
ok(wait_drained($new, 'restored', 60), 'the restored route is drained');
is(`redis-cli -p $redis_port GET tapd:7`, qq{{"id":7,"v":"after restore"}\n}, 'an update after the restore is delivered');
is(`redis-cli -p $redis_port GET tapd:21`, qq{{"id":21,"v":"new"}\n}, 'an insert after the restore is delivered');
is(`redis-cli -p $redis_port GET tapd:3`, qq{{"id":3,"v":"pending at dump"}\n},
	'a change pending at the dump is delivered by the backfill');
is($new->safe_psql('restored',
	"SELECT state || ' ' || (source = 'public.items') || ' ' || (delivered > 0) FROM polyglot.status WHERE route = 1"),
	'active true true', 'the route is active and delivering');
is($new->safe_psql('restored',
	"SELECT r.source_relid = 'public.items'::regclass AND s.oid = r.server_oid "
	  . "AND r.server_cluster = polyglot._this_cluster() "
	  . "FROM polyglot.routes r JOIN pg_foreign_server s ON s.srvname = 'cache' WHERE r.id = 1"),
	't', 'the route names the restored table and server');
is($new->safe_psql('restored', 'SELECT count(*) FROM polyglot.verify(1)'), '0', 'verify finds no drift');
is($new->safe_psql('restored',
	"SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.brands'::regclass AND tgname LIKE 'polyglot_sync_%'"),
	'polyglot_sync_2_r1 polyglot_sync_2_r1_truncate', 'the related table has the route\'s triggers, once');
$new->safe_psql('restored', "UPDATE public.brands SET name = 'restored acme' WHERE id = 1");
ok(wait_drained($new, 'restored', 60), 'the change of the related row is drained');
is(`redis-cli -p $redis_port GET tapk:2`, qq{{"id":2,"brand_id":1,"brand":{"id": 1, "name": "restored acme"}}\n},
	'a change of the related row after the restore reaches the documents');
is($new->safe_psql('restored', 'SELECT count(*) FROM polyglot.verify(2)'), '0', 'verify finds no drift in the documents');

# A route knows its server by OID.  A renamed server keeps its routes, which
# take its new name; a server dropped with CASCADE leaves its route without
# a server, and no server given its name later, created or renamed, receives
# the route's events.
$new->safe_psql('restored', qq{
CREATE SERVER cache2 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE public.more (id int PRIMARY KEY, v text);
SELECT polyglot.sync('public.more', 'cache2', '{"key": "tapd:more:{id}"}');
ALTER SERVER cache2 RENAME TO cache3;
INSERT INTO public.more VALUES (1, 'renamed');
});
my $more_server = $new->safe_psql('restored', q{SELECT oid FROM pg_foreign_server WHERE srvname = 'cache3'});
is($new->safe_psql('restored', q{SELECT server_oid || ' ' || server_name FROM polyglot.routes WHERE source_relid = 'public.more'::regclass}),
	"$more_server cache3", 'a renamed server keeps its route, which takes its new name');
ok(wait_drained($new, 'restored', 60), 'the route of the renamed server is drained');
is(`redis-cli -p $redis_port GET tapd:more:1`, qq{{"id":1,"v":"renamed"}\n}, 'the route delivers through its renamed server');
$new->safe_psql('restored', qq{
SELECT polyglot.pause(r.id) FROM polyglot.routes r WHERE r.source_relid = 'public.more'::regclass;
DROP SERVER cache3 CASCADE;
CREATE SERVER cache3 FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER spare FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
INSERT INTO public.more VALUES (2, 'after drop');
SELECT polyglot.resume(r.id) FROM polyglot.routes r WHERE r.source_relid = 'public.more'::regclass;
});
is($new->safe_psql('restored', q{SELECT count(*) FROM polyglot.routes WHERE source_relid = 'public.more'::regclass}),
	'0', 'DROP SERVER drops the route of its server');
$new->safe_psql('restored', 'DROP SERVER cache3; ALTER SERVER spare RENAME TO cache3');
$new->safe_psql('restored', "INSERT INTO public.more VALUES (3, 'after rename')");
is($new->safe_psql('restored', q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.more'::regclass AND tgname LIKE 'polyglot_sync_%'}),
	'0', 'writes to the table are no longer captured');
is(`redis-cli -p $redis_port EXISTS tapd:more:2 tapd:more:3`, "0\n", 'no server of the same name received them');

$new->stop;

# A dump of a 1.0 database (its CREATE EXTENSION names no version, its
# routes are copied with the columns of 1.0) restores into the version of
# today, and the worker takes its routes back.
my $v10 = preloaded_node('dumped10');
$v10->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot VERSION '1.0';
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE public.items (id int PRIMARY KEY, v text);
INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT polyglot.sync('public.items', 'cache', '{"key": "tapd:v10:{id}"}');
});
ok(wait_drained($v10, $db, 60), 'the backfill at 1.0 is delivered');
$v10->command_ok([ 'pg_dump', '-f', "$tmp/v10.sql", '-h', $v10->host, '-p', $v10->port, $db ], 'pg_dump at 1.0');
$v10->stop;
like(slurp_file("$tmp/v10.sql"), qr/COPY polyglot\.routes \([^)]*server_oid/, 'the 1.0 dump copies server_oid');
$new->start;
$new->safe_psql($db, 'CREATE DATABASE restored10');
$new->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', 'restored10', '-h', $new->host, '-p', $new->port,
	'-f', "$tmp/v10.sql" ], 'the 1.0 dump restores without an error');
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $default = slurp_file("$sharedir/extension/pg_polyglot.control")
  =~ /^default_version\s*=\s*'([^']+)'/m ? $1 : die 'no default_version';
is($new->safe_psql('restored10', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'}),
	$default, "the restored extension is at $default");
ok(wait_until(sub { $new->safe_psql('restored10',
	"SELECT count(*) FROM polyglot.route_state") eq '1' }, 30),
	'the worker took the route of the 1.0 dump back');
$new->safe_psql('restored10', "UPDATE public.items SET v = 'restored from 1.0' WHERE id = 5");
ok(wait_drained($new, 'restored10', 60), 'the route of the 1.0 dump is drained');
is(`redis-cli -p $redis_port GET tapd:v10:5`, qq{{"id":5,"v":"restored from 1.0"}\n}, 'the route of the 1.0 dump delivers');
is($new->safe_psql('restored10',
	"SELECT s.oid = r.server_oid AND r.server_cluster = polyglot._this_cluster() "
	  . "FROM polyglot.routes r JOIN pg_foreign_server s ON s.srvname = 'cache'"),
	't', 'the route of the 1.0 dump has its restored server, of this cluster');
$new->stop;
done_testing();
