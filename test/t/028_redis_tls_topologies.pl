# 028_redis_tls_topologies.pl: Redis over TLS beyond one node.  A
# Sentinel-managed primary and a Redis Cluster of this test's own, every
# server speaking TLS only (no plain port; replication, the Sentinels and
# the cluster bus over TLS too), with the stack's certificates (client
# certificates required).  The server objects name the Sentinel, or a
# seed node, with tls and a client certificate: a sync route delivers and
# a foreign table reads through each; the Sentinel's primary fails over
# (SENTINEL FAILOVER) and later changes reach the new primary.  Needs
# pg_polyglot built with hiredis_ssl (make test builds it so for the
# versions that run TAP).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tls = $ENV{POLYGLOT_TLS_DIR} or die "POLYGLOT_TLS_DIR is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my @tls_server = ('--tls-cert-file', "$tls/server.pem", '--tls-key-file', "$tls/server.key",
	'--tls-ca-cert-file', "$tls/ca.pem", '--tls-auth-clients', 'yes');
my @tls_client = ('--tls-replication', 'yes');
my @started;

# redis-cli over TLS with the client certificate
sub cli
{
	my ($port, @args) = @_;
	my $cmd = join(' ', 'redis-cli', '--tls', '--cacert', "$tls/ca.pem", '--cert', "$tls/client.pem",
		'--key', "$tls/client.key", '-p', $port, map { quotemeta } @args);
	my $out = `$cmd 2>/dev/null`;
	return undef if $? != 0;
	chomp $out;
	return $out;
}

# a TLS-only redis-server (or Sentinel, with a config file) on $port
sub start_tls_redis
{
	my ($name, $port, @extra) = @_;
	my $dir = "$tmp/$name";
	mkdir $dir;
	system('redis-server', @extra, '--bind', '127.0.0.1', '--port', '0', '--tls-port', $port,
		@tls_server, '--dir', $dir, '--save', '', '--appendonly', 'no', '--daemonize', 'yes',
		'--pidfile', "$dir/redis.pid", '--logfile', "$dir/redis.log") == 0
	  or die "could not start $name";
	push @started, $port;
	wait_until(sub { (cli($port, 'PING') // '') eq 'PONG' }, 20)
	  or die "$name on port $port did not answer over TLS";
}

END
{
	local $?;
	system(join(' ', 'redis-cli', '--tls', '--cacert', "$tls/ca.pem", '--cert', "$tls/client.pem",
			'--key', "$tls/client.key", '-p', $_, 'shutdown', 'nosave', '>/dev/null 2>&1'))
	  for @started;
}

my $node = preloaded_node('tls_topologies');
$node->safe_psql($db, 'CREATE EXTENSION pg_polyglot');

# a build without hiredis_ssl (make test-all's PostgreSQL 14) refuses TLS,
# and has nothing more to test here
my ($rc, $out, $err) = $node->psql($db, "CREATE SERVER probe FOREIGN DATA WRAPPER polyglot_redis OPTIONS (tls 'true')");
if ($rc != 0)
{
	like($err, qr/pg_polyglot was built without TLS for Redis/, 'a build without hiredis_ssl refuses tls');
	$node->stop;
	done_testing();
	exit 0;
}
$node->safe_psql($db, 'DROP SERVER probe');

# ---------------------------------------------------------------- Sentinel
my $primary = PostgreSQL::Test::Cluster::get_free_port();
my $replica = PostgreSQL::Test::Cluster::get_free_port();
my $sentinel = PostgreSQL::Test::Cluster::get_free_port();
start_tls_redis('primary', $primary, @tls_client);
start_tls_redis('replica', $replica, @tls_client, '--replicaof', '127.0.0.1', $primary);
ok(wait_until(sub { (cli($primary, 'INFO', 'replication') // '') =~ /connected_slaves:1/ }, 30),
	'the replica replicates over TLS');
open my $fh, '>', "$tmp/sentinel.conf" or die;
print $fh "sentinel monitor tlsm 127.0.0.1 $primary 1\n"
  . "sentinel down-after-milliseconds tlsm 1000\n"
  . "sentinel failover-timeout tlsm 10000\n";
close $fh;
start_tls_redis('sentinel', $sentinel, "$tmp/sentinel.conf", '--sentinel', @tls_client);
ok(wait_until(sub { (cli($sentinel, 'SENTINEL', 'replicas', 'tlsm') // '') =~ /\b$replica\b/ }, 30),
	'the Sentinel knows the primary and its replica');

$node->safe_psql($db, qq{
CREATE SERVER ha FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (sentinels '127.0.0.1:$sentinel', master_name 'tlsm', tls 'true',
           tls_ca_file '$tls/ca.pem', tls_cert_file '$tls/client.pem', tls_key_file '$tls/client.key');
CREATE TABLE items (id int PRIMARY KEY, label text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g;
SELECT polyglot.sync('items', 'ha', '{"key": "tlsha:{id}"}');
CREATE FOREIGN TABLE ha_items (key text, value jsonb) SERVER ha OPTIONS (prefix 'tlsha:');
});
like($node->safe_psql($db, "SELECT polyglot.ping('ha')"), qr/"ok": true/,
	'ping reaches the primary through the Sentinel, over TLS');
ok(wait_drained($node, $db, 60), 'the backfill is delivered (with WAIT for the replica)');
is($node->safe_psql($db, 'SELECT count(*) FROM ha_items'), '300',
	'a foreign table reads the keys through the Sentinel');

cli($sentinel, 'SENTINEL', 'FAILOVER', 'tlsm');
ok(wait_until(sub { (cli($sentinel, 'SENTINEL', 'get-master-addr-by-name', 'tlsm') // '') =~ /\b$replica\z/
	  && (cli($replica, 'ROLE') // '') =~ /\Amaster/ }, 30),
	"the Sentinel failed over to $replica");
$node->safe_psql($db, "UPDATE items SET label = 'after' WHERE id <= 50; DELETE FROM items WHERE id > 290");
ok(wait_drained($node, $db, 60), 'the changes after the failover are delivered');
is(cli($replica, 'GET', 'tlsha:1'), '{"id":1,"label":"after"}', 'the new primary has a changed row');
is(cli($replica, 'DBSIZE'), '290', 'and none of the deleted ones');
is($node->safe_psql($db, q{SELECT count(*) FROM polyglot.verify('items@ha')}), '0',
	'verify finds no drift through the new primary');

# ---------------------------------------------------------------- Cluster
my @nodes;
for my $i (1 .. 3)
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $bus = PostgreSQL::Test::Cluster::get_free_port();
	start_tls_redis("node$i", $port, '--cluster-enabled', 'yes', '--cluster-port', $bus,
		'--cluster-config-file', "$tmp/nodes-$i.conf", '--tls-cluster', 'yes', @tls_client);
	push @nodes, $port;
}
my $create = join(' ', 'redis-cli', '--tls', '--cacert', "$tls/ca.pem", '--cert', "$tls/client.pem",
	'--key', "$tls/client.key", '--cluster', 'create', (map { "127.0.0.1:$_" } @nodes),
	'--cluster-yes', ">$tmp/create.log 2>&1");
is(system($create), 0, 'a cluster of three TLS-only primaries is created')
  or diag(slurp_file("$tmp/create.log"));
ok(wait_until(sub { !grep { (cli($_, 'CLUSTER', 'INFO') // '') !~ /cluster_state:ok/ } @nodes }, 60),
	'the cluster is up');

$node->safe_psql($db, qq{
CREATE SERVER rc FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (cluster '127.0.0.1:$nodes[0]', tls 'true', tls_ca_file '$tls/ca.pem',
           tls_cert_file '$tls/client-combined.pem');
CREATE TABLE orders (id int PRIMARY KEY, total int);
INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 1000) g;
SELECT polyglot.sync('orders', 'rc', '{"key": "tlsrc:{id}"}');
CREATE FOREIGN TABLE rc_orders (key text, value jsonb) SERVER rc OPTIONS (prefix 'tlsrc:');
});
like($node->safe_psql($db, "SELECT polyglot.ping('rc')"), qr/"ok": true/, 'ping reaches the cluster over TLS');
ok(wait_drained($node, $db, 60), 'the backfill is delivered to the cluster');
my @counts = map { cli($_, 'DBSIZE') // 0 } @nodes;
ok(!grep({ $_ == 0 } @counts) && eval { my $t = 0; $t += $_ for @counts; $t } == 1000,
	"every primary has keys, 1000 in all (@counts)");
is($node->safe_psql($db, 'SELECT count(*), sum((value->>\'total\')::int) FROM rc_orders'),
	'1000|5005000', 'a foreign table scans every primary over TLS');
is($node->safe_psql($db, q{SELECT count(*) FROM rc_orders WHERE key IN ('1', '500', '999', 'none')}),
	'3', 'and looks keys up by slot');
$node->safe_psql($db, 'UPDATE orders SET total = 0 WHERE id % 10 = 0');
ok(wait_drained($node, $db, 60), 'the changes are delivered');
is($node->safe_psql($db, q{SELECT count(*) FROM polyglot.verify('orders@rc')}), '0',
	'verify finds no drift on the cluster');

$node->stop;
done_testing();
