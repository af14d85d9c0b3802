# 001_settings.pl: the library loads with and without
# shared_preload_libraries, settings reload on SIGHUP, the polyglot. prefix
# is reserved, and the extension keeps working across a restart.
#
# Runs its own throwaway clusters (PostgreSQL::Test::Cluster) and reaches the
# Redis server of the local stack (REDIS_PORT).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set: source test/stack.sh env";

# A cluster with the library preloaded, a setting of ours and a misspelt one
my $node = PostgreSQL::Test::Cluster->new('preloaded');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_polyglot'
polyglot.batch_size = 250
polyglot.batchsize = 7
});
$node->start;

is($node->safe_psql('postgres', 'SHOW polyglot.batch_size'), '250',
	'a setting from postgresql.conf is read at start');
ok($node->log_contains(qr/invalid configuration parameter name "polyglot\.batchsize"/),
	'a misspelt polyglot. setting is reported in the log');

$node->safe_psql('postgres', 'ALTER SYSTEM SET polyglot.batch_size = 50');
$node->reload;
is($node->safe_psql('postgres', 'SHOW polyglot.batch_size'), '50',
	'polyglot.batch_size changes on reload');

my ($ret, $stdout, $stderr) = $node->psql('postgres', 'ALTER SYSTEM SET polyglot.workers = 0');
like($stderr, qr/0 is outside the valid range/, 'polyglot.workers rejects 0');

$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
});
is($node->safe_psql('postgres', q{SELECT polyglot.ping('cache')->>'ok'}), 'true',
	'ping works with the library preloaded');

$node->restart;
is($node->safe_psql('postgres', q{SELECT polyglot.ping('cache')->>'ok'}), 'true',
	'ping works after a restart');

# an immediate stop is a crash for the server: recovery, then all is well
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT polyglot.ping('cache')->>'ok'}), 'true',
	'ping works after crash recovery');
$node->stop;

# Without shared_preload_libraries the library loads on first use
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
});
# the library loads in the session that first calls one of its functions
is($plain->safe_psql('postgres', q{SELECT polyglot.ping('cache')->>'store'; SHOW polyglot.batch_size}),
	"redis\n1000",
	'without shared_preload_libraries, ping works and reloadable settings exist');
$plain->stop;

done_testing();
