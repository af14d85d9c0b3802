# 003_outage.pl: Redis stopped for 20 seconds under a steady write load.
# No write fails in PostgreSQL, the route backs off while Redis is away,
# the backlog drains when it returns, and Redis then equals the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $redis_port = start_redis("$tmp/redis");
my $node = preloaded_node('outage');
my $db = 'postgres';

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$redis_port', connect_timeout '500ms', io_timeout '2s');
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 5000) g;
});
my $route = $node->safe_psql($db,
	q{SELECT polyglot.sync('accounts', 'cache', '{"key": "acct:{id}"}')});
ok(wait_drained($node, $db, 60), 'the backfill is delivered');

# 40 seconds of writes at a steady 300 transactions per second
my $pgbench = start_account_writes($node, $db, $tmp, 300, 6000, 0);

sleep 5;
stop_redis($redis_port);
my $stopped_at = time();
ok(!defined redis_cli($redis_port, 'PING'), 'Redis is down');

ok(wait_until(sub { $node->safe_psql($db,
	"SELECT state FROM polyglot.status WHERE route = $route") eq 'backing off' }, 15),
	'the route backs off while Redis is down');
like($node->safe_psql($db, "SELECT last_error FROM polyglot.status WHERE route = $route"),
	qr/(could not connect to|lost connection to) Redis server "cache"/, 'status says why');

# the backlog grows while Redis is away
sleep(20 - (time() - $stopped_at)) if time() - $stopped_at < 20;
my $backlog = $node->safe_psql($db, "SELECT pending FROM polyglot.status WHERE route = $route");
ok($backlog > 1000, "a backlog built up during the outage: $backlog events");

start_redis("$tmp/redis", $redis_port);
my $out = finish_account_writes($pgbench, $tmp);
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
ok(($tx // 0) > 5000, "the writes went on: " . ($tx // 0) . " transactions");

ok(wait_drained($node, $db, 120), 'the backlog drains after Redis returns');
is($node->safe_psql($db, "SELECT state FROM polyglot.status WHERE route = $route"), 'active',
	'the route is active again');
compare_store(redis_dump($redis_port, 'acct:', $tmp),
	table_dump($node, $db, q{SELECT 'acct:' || id, row_to_json(t) FROM accounts t}),
	'after the outage, Redis equals the table key by key');
is($node->safe_psql($db, "SELECT failed FROM polyglot.status WHERE route = $route"), '0',
	'no event was given up');

$node->stop;
stop_redis($redis_port);
done_testing();
