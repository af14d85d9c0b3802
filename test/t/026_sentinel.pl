# 026_sentinel.pl: a route to a Sentinel-managed Redis primary loses
# nothing through two failovers under a write load.  The server object
# names the stack's three Sentinels and master, with wait_replicas 1 (a
# batch counts as delivered once the replica has it).  Two clients update,
# insert and delete rows for 30 seconds; in the middle the Sentinels are
# told to fail over (SENTINEL FAILOVER), and later the new primary is
# killed (kill -9), so that they fail over back to the first one, and is
# started again as a replica.  Every write in PostgreSQL
# succeeds; at the end Redis, read key by key from whichever server is the
# primary, equals the table, verify finds no drift, and a foreign table on
# the same server object reads the keys through the new primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $sentinels = $ENV{SENTINELS} or die "SENTINELS is not set";
my $master = $ENV{SENTINEL_MASTER} or die "SENTINEL_MASTER is not set";
my @sentinel_ports = split ' ', ($ENV{SENTINEL_PORTS} or die "SENTINEL_PORTS is not set");
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';

# the port of the primary, as the first Sentinel that answers tells
sub primary_port
{
	for my $p (@sentinel_ports)
	{
		my @addr = split /\n/, `redis-cli -p $p sentinel get-master-addr-by-name $master 2>/dev/null`;
		return $addr[1] if @addr == 2 && $addr[1] =~ /^\d+$/;
	}
	return 0;
}

# true when the server on a port answers PING and says it has the role
sub has_role
{
	my ($port, $role) = @_;
	my $out = `redis-cli -p $port role 2>/dev/null`;
	return $out =~ /\A\Q$role\E\n/;
}

# true when every Sentinel names $port as the primary, and it is one
sub failed_over_to
{
	my ($port) = @_;
	for my $p (@sentinel_ports)
	{
		my @addr = split /\n/, `redis-cli -p $p sentinel get-master-addr-by-name $master 2>/dev/null`;
		return 0 unless @addr == 2 && $addr[1] eq $port;
	}
	return has_role($port, 'master');
}

my $first = primary_port();
ok($first > 0, "the Sentinels name a primary ($first)");
my $replica = `redis-cli -p $first info replication` =~ /^slave0:.*\bport=(\d+)/m ? $1 : 0;
ok($replica > 0, "the primary has a replica ($replica)");
system("redis-cli -p $first --scan --pattern 'taps:*' | xargs -r redis-cli -p $first DEL >/dev/null");

my $node = preloaded_node('sentinel', "polyglot.backoff_max = 1s\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER ha FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (sentinels '$sentinels', master_name '$master', wait_replicas '1',
           connect_timeout '1s', io_timeout '2s');
CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label text);
INSERT INTO items SELECT g, 0, 'item ' || g FROM generate_series(1, 500) g;
SELECT polyglot.sync('items', 'ha', '{"key": "taps:{id}"}');
CREATE FOREIGN TABLE ha_items (key text, value jsonb) SERVER ha OPTIONS (prefix 'taps:');
});
like($node->safe_psql($db, "SELECT polyglot.ping('ha')"), qr/"ok": true/,
	'ping reaches the primary through the Sentinels');
ok(wait_drained($node, $db, 60), 'the backfill is delivered');
is($node->safe_psql($db, 'SELECT count(*) FROM ha_items'), '500',
	'a foreign table reads the keys through the Sentinels');

my $load = start_load($node, $db, $tmp, <<'EOF', 2, 30, 200);
\set id random(1, 600)
\set what random(1, 10)
BEGIN;
UPDATE items SET n = n + 1 WHERE id = :id AND :what <= 7;
INSERT INTO items VALUES (:id, 0, 'new ' || :id) ON CONFLICT (id) DO UPDATE SET label = 'again ' || :id;
DELETE FROM items WHERE id = :id AND :what = 10;
COMMIT;
EOF

# a failover the Sentinels are asked for
sleep 6;
system("redis-cli -p $sentinel_ports[0] sentinel failover $master >/dev/null");
ok(wait_until(sub { failed_over_to($replica) }, 30), "the Sentinels failed over to $replica");

# the new primary dies: they fail over back to the first, which has been
# its replica since
sleep 6;
my $pid = `redis-cli -p $replica info server` =~ /^process_id:(\d+)/m ? $1 : 0;
ok($pid > 0, "the new primary's pid ($pid)");
kill 'KILL', $pid;
ok(wait_until(sub { failed_over_to($first) }, 30), "the Sentinels failed over back to $first");

# the dead one comes back, as a replica of the primary (the Sentinels may
# still move the primary around once more); writes that wait for a
# replica go through again
system('redis-server', '--bind', '127.0.0.1', '--port', $replica, '--save', '',
	'--appendonly', 'no', '--dir', $tmp, '--daemonize', 'yes',
	'--replicaof', '127.0.0.1', $first,
	'--logfile', "$tmp/redis-$replica.log") == 0 or die "redis-server did not start";
ok(wait_until(sub {
	my $p = primary_port();
	my $r = $p == $first ? $replica : $first;
	return has_role($p, 'master') && has_role($r, 'slave')
	  && `redis-cli -p $r info replication` =~ /master_link_status:up/;
}, 60), "$replica is back, and the primary has a replica again");

finish_load($load, $tmp, 1000);
ok(wait_drained($node, $db, 120), 'the route caught up after the failovers');

my $primary = primary_port();
ok($primary == $first || $primary == $replica, "the Sentinels name a primary ($primary)");
compare_store(redis_dump($primary, 'taps:', $tmp),
	table_dump($node, $db, "SELECT 'taps:' || id, row_to_json(i) FROM items i"),
	'Redis equals the table key by key');
is($node->safe_psql($db, 'SELECT count(*) FROM polyglot.verify(1)'), '0', 'verify finds no drift');
is($node->safe_psql($db, 'SELECT sum(failed) FROM polyglot.status'), '0', 'no event was given up');
like($node->safe_psql($db, 'SELECT last_error FROM polyglot.status'), qr/./,
	'the route saw the failovers (its last error)');

is($node->safe_psql($db, 'SELECT count(*) FROM ha_items'),
	$node->safe_psql($db, 'SELECT count(*) FROM items'),
	'a foreign table reads every key through the primary of now');

$node->stop;
done_testing();
