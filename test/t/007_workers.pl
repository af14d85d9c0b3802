# 007_workers.pl: several delivery workers (polyglot.workers) split the
# keys between them by hash.  With two workers, a stream of updates to the
# same fifty keys from four clients ends with the last committed value of
# every key in Redis, MongoDB, Elasticsearch and OpenSearch, and each key's
# pending events are in one worker's slot only.  Restarting with three
# workers, then with one, while events wait in the outbox re-splits them for
# the new number of workers; they are then delivered and every store again
# equals the table.
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
my $index = 'polyglot_tap_workers';

# the shared stack's servers: start from nothing under this test's names
system("redis-cli -p $redis_port --scan --pattern 'tapw:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'workers');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($es_url, $os_url);

my $node = preloaded_node('workers', "polyglot.workers = 2\n");

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO counters SELECT g, 0, 'start' FROM generate_series(1, 50) g;
SELECT polyglot.sync('counters', 'cache', '{"key": "tapw:{id}"}');
SELECT polyglot.sync('counters', 'docs', '{"collection": "workers"}');
SELECT polyglot.sync('counters', 'es', '{"index": "$index"}');
SELECT polyglot.sync('counters', 'os', '{"index": "$index"}');
});
ok(wait_drained($node, $db, 60), 'the backfill is delivered');

is($node->safe_psql($db,
	"SELECT string_agg(application_name, ', ' ORDER BY application_name) FROM pg_stat_activity "
	  . "WHERE backend_type = 'pg_polyglot worker' AND datname = '$db'"),
	'pg_polyglot worker 1/2, pg_polyglot worker 2/2', 'two workers serve the database');

# Every store equals the table: verify on each route, and Redis read back
# key by key.
sub check_stores
{
	my ($when) = @_;
	is($node->safe_psql($db,
		"SELECT string_agg(r.server_name || ':' || (SELECT count(*) FROM polyglot.verify(r.id)), ' ' "
		  . "ORDER BY r.server_name) FROM polyglot.routes r"),
		'cache:0 docs:0 es:0 os:0', "$when: verify finds no drift in any store");
	compare_store(redis_dump($redis_port, 'tapw:', $tmp),
		table_dump($node, $db, "SELECT 'tapw:' || id, row_to_json(c) FROM counters c"),
		"$when: Redis holds the last committed value of every key");
}

# A key's pending events are all in one slot, the one of this many workers.
sub check_slots
{
	my ($nworkers, $when) = @_;
	is($node->safe_psql($db, qq{
		SELECT count(*) FILTER (WHERE nslots <> $nworkers OR slot >= $nworkers)
		FROM polyglot.outbox}), '0', "$when: every outbox row is in one of $nworkers slots");
	is($node->safe_psql($db, q{
		SELECT count(*) FROM (
		  SELECT o.route_id, o.key[i:i][:] FROM polyglot.outbox o, generate_subscripts(o.key, 1) i
		  GROUP BY 1, 2 HAVING count(DISTINCT o.slot) > 1) k}), '0',
		"$when: no key has events in two slots");
}

# 2,000 transactions from four clients, each adding 1 to a random counter
# of fifty: many commits per key, interleaved across clients.
open my $fh, '>', "$tmp/bump.sql" or die;
print $fh "\\set id random(1, 50)\n"
  . "UPDATE counters SET v = v + 1, note = md5(random()::text) WHERE id = :id;\n";
close $fh;
sub bump
{
	my ($transactions) = @_;
	$node->command_ok(
		[ 'pgbench', '-n', '-c', '4', '-t', $transactions / 4, '-f', "$tmp/bump.sql",
			'-h', $node->host, '-p', $node->port, $db ],
		"$transactions updates of fifty keys from four clients");
}

bump(2000);
ok(wait_drained($node, $db, 120), 'the stream of updates is delivered');
is($node->safe_psql($db, 'SELECT sum(v) FROM counters'), '2000', 'every update committed');
check_stores('two workers');

# Events wait in the outbox of paused routes, split between two slots.
$node->safe_psql($db, 'SELECT polyglot.pause(id) FROM polyglot.routes');
bump(400);
check_slots(2, 'paused with two workers');
is($node->safe_psql($db, 'SELECT count(DISTINCT slot) FROM polyglot.outbox'), '2',
	'both workers have events waiting');

# Three workers: the waiting events are re-split before workers 2 and 3
# start, then delivered.
$node->append_conf('postgresql.conf', "polyglot.workers = 3\n");
my $log_offset = -s $node->logfile;
$node->restart;
ok(wait_until(sub { $node->safe_psql($db,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker'") eq '3' }, 30),
	'three workers after the restart');
ok($node->log_contains(qr/re-split pending events into \d+ outbox rows for 3 workers/, $log_offset),
	'the first worker re-split the outbox');
check_slots(3, 'after the restart with three workers');
$node->safe_psql($db, 'SELECT polyglot.resume(id) FROM polyglot.routes');
bump(1000);
ok(wait_drained($node, $db, 120), 'delivered by three workers');
check_stores('three workers');

# Back to one worker, again with events waiting.
$node->safe_psql($db, 'SELECT polyglot.pause(id) FROM polyglot.routes');
bump(400);
$node->append_conf('postgresql.conf', "polyglot.workers = 1\n");
$node->restart;
ok(wait_until(sub { $node->safe_psql($db,
	"SELECT application_name FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker'") eq 'pg_polyglot worker' }, 30),
	'one worker after the restart');
ok(wait_until(sub { $node->safe_psql($db,
	'SELECT count(*) FROM polyglot.outbox WHERE nslots <> 1') eq '0' }, 30),
	'the outbox was re-split for one worker');
check_slots(1, 'after the restart with one worker');
$node->safe_psql($db, 'SELECT polyglot.resume(id) FROM polyglot.routes');
ok(wait_drained($node, $db, 120), 'delivered by one worker');
check_stores('one worker');

$node->stop;
done_testing();
