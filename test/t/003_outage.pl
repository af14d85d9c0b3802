# 003_outage.pl: Redis (a private server) stopped for 20 seconds under a
# steady write load of 300 transactions per second: the outage scenario of
# PolyglotTest.pm.  Redis then equals the table, key by key.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $redis_port = start_redis("$tmp/redis");

outage_scenario(
	name => 'outage',
	store => 'Redis',
	server => qq{CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$redis_port', connect_timeout '500ms', io_timeout '2s')},
	sync => q{'cache', '{"key": "acct:{id}"}'},
	rows => 5000, tps => 300, max_id => 6000, deletes => 0,
	stop => sub { stop_redis($redis_port) },
	start => sub { start_redis("$tmp/redis", $redis_port) },
	is_down => sub { !defined redis_cli($redis_port, 'PING') },
	down => 'while Redis is down',
	back => 'after Redis returns',
	error => qr/(could not connect to|lost connection to) Redis server "cache"/,
	min_tx => 5000,
	store_dump => sub { redis_dump($redis_port, 'acct:', $_[0]) },
	table_sql => q{SELECT 'acct:' || id, row_to_json(t) FROM accounts t},
	compared => 'after the outage, Redis equals the table key by key');

stop_redis($redis_port);
done_testing();
