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
use Time::HiRes qw(usleep);
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
# in another: each row alone is past the bound
$node->safe_psql($db, qq{
BEGIN;
INSERT INTO docs SELECT g, 0, repeat(md5(g::text), 3200) FROM generate_series(1, $nrows) g;
INSERT INTO tagged SELECT g, 0, ARRAY[g, g + 1], repeat(md5(g::text), 3200)
  FROM generate_series(1, $nrows) g;
COMMIT;
UPDATE docs SET v = 1;
UPDATE tagged SET v = 1, tags = tags || 7;
});

# the drain goes batch by batch: the backlog passes through values between
# all and nothing (one batch would take all $nrows keys at once)
my %partial;
ok(wait_until(sub {
	for my $t ('docs', 'tagged')
	{
		my $p = $node->safe_psql($db,
			"SELECT pending FROM polyglot.status WHERE route = $route{$t}");
		$partial{$t} = 1 if $p > 0 && $p < 2 * $nrows && $p != $nrows;
	}
	return $node->safe_psql($db, 'SELECT sum(pending) FROM polyglot.status') eq '0';
}, 180, 20), 'the backlog drains');
ok($partial{docs}, 'rows read through the key index go a few per batch');
ok($partial{tagged}, 'rows read with a query go a few per batch');

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
