# 017_slow_keys.pl: a row too large to deliver within io_timeout, while the
# store answers pings at once, is that key's fault: the batch goes again in
# parts, the other keys are delivered, and the big key counts attempts and
# becomes a dead letter after polyglot.max_attempts.  A store that answers
# nothing (a private redis-server frozen with SIGSTOP) is an outage: the
# route backs off and no attempt is counted.
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
my $redis_pid = slurp_file("$tmp/redis/redis.pid");
chomp $redis_pid;
my $frozen = 0;
END { kill 'CONT', $redis_pid if $frozen; }

my $node = preloaded_node('slow_keys', "polyglot.max_attempts = 2\n");
my $db = 'postgres';
# 200 MB of JSON cannot cross loopback into Redis within 50 ms; a PING can
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$redis_port', connect_timeout '2s', io_timeout '50ms');
CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g;
UPDATE items SET body = repeat('x', 200 * 1024 * 1024) WHERE id = 7;
});
my $route = $node->safe_psql($db,
	q{SELECT polyglot.sync('items', 'cache', '{"key": "item:{id}"}')});

ok(wait_until(sub {
	$node->safe_psql($db, "SELECT dead_letters FROM polyglot.status WHERE route = $route") eq '1' }, 90),
	'the big row becomes a dead letter');
my ($attempts, $error) = split /\|/, $node->safe_psql($db,
	"SELECT attempts, error FROM polyglot.dead_letters WHERE route_id = $route");
is($attempts, '2', 'after polyglot.max_attempts (2) attempts');
like($error, qr/the row could not be delivered within io_timeout: Redis server "cache" did not answer/,
	'its error says it could not be delivered within io_timeout');
ok(wait_drained($node, $db, 30), 'nothing else is pending');
my $small = 0;
for my $id (grep { $_ != 7 } 1 .. 20)
{
	$small++ if (redis_cli($redis_port, 'GET', "item:$id") // '') eq qq({"id":$id,"body":"item $id"});
}
is($small, 19, 'every other row of the route is in Redis');
is(redis_cli($redis_port, 'EXISTS', 'item:7'), '0', 'the big row is not');

# a frozen store answers neither the batch nor the ping: an outage
kill 'STOP', $redis_pid or die "cannot stop redis-server: $!";
$frozen = 1;
$node->safe_psql($db, q{UPDATE items SET body = 'changed' WHERE id IN (1, 2)});
ok(wait_until(sub {
	$node->safe_psql($db, "SELECT state FROM polyglot.status WHERE route = $route") eq 'backing off' }, 30),
	'with the store frozen, the route backs off');
sleep 4;
is($node->safe_psql($db, "SELECT coalesce(max(attempts), 0) FROM polyglot.outbox WHERE route_id = $route"),
	'0', 'no attempt is counted while the store is frozen (outbox attempts stay 0)');
is($node->safe_psql($db, "SELECT dead_letters FROM polyglot.status WHERE route = $route"), '1',
	'no new dead letter');
kill 'CONT', $redis_pid;
$frozen = 0;
ok(wait_drained($node, $db, 60), 'the changes are delivered once the store is back');
is(redis_cli($redis_port, 'GET', 'item:1'), '{"id":1,"body":"changed"}', 'Redis has them');

$node->stop;
stop_redis($redis_port);
done_testing();
