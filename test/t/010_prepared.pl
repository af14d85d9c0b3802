# 010_prepared.pl: a transaction prepared before a restart that changes
# polyglot.workers wrote its outbox rows for the old number of workers,
# where the start-up re-split cannot see them.  After COMMIT PREPARED they
# are re-split and delivered: none waits in a slot no worker serves, no key
# has events in two slots, and with updates to the same keys streaming in
# Redis ends with the last committed value of every key.
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

system("redis-cli -p $redis_port --scan --pattern 'tapp:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");

my $node = preloaded_node('prepared', "polyglot.workers = 3\nmax_prepared_transactions = 5\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO counters SELECT g, 0, 'start' FROM generate_series(1, 60) g;
SELECT polyglot.sync('counters', 'cache', '{"key": "tapp:{id}"}');
});
ok(wait_drained($node, $db, 60), 'the backfill is delivered');

# Every key is changed by a transaction prepared under three workers: its
# outbox rows are in the three slots of three workers.
$node->safe_psql($db, q{
BEGIN;
UPDATE counters SET v = 1000, note = 'prepared';
PREPARE TRANSACTION 'before_restart';
});

$node->append_conf('postgresql.conf', "polyglot.workers = 2\n");
$node->restart;
ok(wait_until(sub { $node->safe_psql($db,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker'") eq '2' }, 30),
	'two workers after the restart');

$node->safe_psql($db, "COMMIT PREPARED 'before_restart'");

# updates of the same keys stream in while the prepared rows are handled
open my $fh, '>', "$tmp/bump.sql" or die;
print $fh "\\set id random(1, 60)\n"
  . "UPDATE counters SET v = v + 1, note = md5(random()::text) WHERE id = :id;\n";
close $fh;
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-t', 250, '-f', "$tmp/bump.sql",
		'-h', $node->host, '-p', $node->port, $db ],
	'1,000 updates of the same keys from four clients');

ok(wait_drained($node, $db, 60), 'every event is delivered, those of the prepared transaction too');
is($node->safe_psql($db,
	'SELECT count(*) FILTER (WHERE nslots <> 2 OR slot >= 2) FROM polyglot.outbox'), '0',
	'no outbox row is left in a slot of three workers');
is($node->safe_psql($db, 'SELECT sum(v) FROM counters'), 60 * 1000 + 1000, 'every update committed');
compare_store(redis_dump($redis_port, 'tapp:', $tmp),
	table_dump($node, $db, "SELECT 'tapp:' || id, row_to_json(c) FROM counters c"),
	'Redis holds the last committed value of every key');
is($node->safe_psql($db, 'SELECT count(*) FROM polyglot.verify(1)'), '0', 'verify finds no drift');

$node->stop;
done_testing();
