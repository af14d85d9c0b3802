# 012_batch_bytes.pl: polyglot.batch_bytes bounds a delivery batch by the
# size of its rows.  Rows bigger than the bound, all written in one
# transaction (one outbox row of their keys), then all updated in another,
# are delivered one batch after another, each with at least one row: Redis
# ends equal to the table, every event is counted delivered once, nothing
# is retried or given up.  Both ways of reading rows are covered: straight
# through the key index, and with a query (a table with an array column).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $redis_port = start_redis("$tmp/redis");
my $node = preloaded_node('batch_bytes', "polyglot.batch_bytes = 64kB\n");
my $db = 'postgres';
my $nrows = 200;

is($node->safe_psql($db, 'SHOW polyglot.batch_bytes'), '64kB', 'the bound is set');

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
CREATE TABLE docs (id int PRIMARY KEY, v int NOT NULL, body text NOT NULL);
CREATE TABLE tagged (id int PRIMARY KEY, v int NOT NULL, tags int[], body text NOT NULL);
});
my %route;
$route{docs} = $node->safe_psql($db,
	q{SELECT polyglot.sync('docs', 'cache', '{"key": "doc:{id}"}')});
$route{tagged} = $node->safe_psql($db,
	q{SELECT polyglot.sync('tagged', 'cache', '{"key": "tag:{id}"}')});
ok(wait_drained($node, $db, 30), 'the empty tables are caught up');

# 200 rows of 100 kB each per table, in one transaction, then all updated
# in another: each row alone is past the bound.  The route is paused while
# they are written, so that its whole drain is seen: a batch the bound cuts
# short puts the keys it left out back in the outbox as a new row (a new
# id of polyglot.outbox_id_seq), so the drain takes new ids by the batch,
# and none if one batch took all the keys.
my %write = (
	docs => qq{INSERT INTO docs SELECT g, 0, repeat(md5(g::text), 3200) FROM generate_series(1, $nrows) g},
	tagged => qq{INSERT INTO tagged SELECT g, 0, ARRAY[g, g + 1], repeat(md5(g::text), 3200)
  FROM generate_series(1, $nrows) g});
my %update = (
	docs => 'UPDATE docs SET v = 1',
	tagged => 'UPDATE tagged SET v = 1, tags = tags || 7');
my %how = (docs => 'read through the key index', tagged => 'read with a query');
for my $t ('docs', 'tagged')
{
	$node->safe_psql($db, "SELECT polyglot.pause($route{$t})");
	$node->safe_psql($db, "BEGIN; $write{$t}; COMMIT; $update{$t};");
	my $before = $node->safe_psql($db, 'SELECT last_value FROM polyglot.outbox_id_seq');
	$node->safe_psql($db, "SELECT polyglot.resume($route{$t})");
	ok(wait_drained($node, $db, 180), "$t: the backlog drains");
	my $requeued = $node->safe_psql($db, 'SELECT last_value FROM polyglot.outbox_id_seq') - $before;
	cmp_ok($requeued, '>=', $nrows / 4,
		"rows $how{$t} go a few per batch (keys left out of a batch went back $requeued times)");
}

compare_store(redis_dump($redis_port, 'doc:', $tmp),
	table_dump($node, $db, q{SELECT 'doc:' || id, row_to_json(t) FROM docs t}),
	'Redis equals the table read through the key index');
compare_store(redis_dump($redis_port, 'tag:', $tmp),
	table_dump($node, $db, q{SELECT 'tag:' || id, row_to_json(t) FROM tagged t}),
	'Redis equals the table read with a query');

for my $t ('docs', 'tagged')
{
	is($node->safe_psql($db,
		"SELECT delivered, failed, retries, dead_letters FROM polyglot.status WHERE route = $route{$t}"),
		(2 * $nrows) . '|0|0|0', "$t: each event delivered once, none retried or given up");
}

$node->stop;
stop_redis($redis_port);
done_testing();
