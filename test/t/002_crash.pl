# 002_crash.pl: the worker killed with SIGKILL in the middle of a backfill of
# 200k rows, with concurrent writes, and PostgreSQL stopped in immediate mode
# with a backlog: after restart, the backfill resumes and Redis equals the
# table, key by key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $redis_port = start_redis("$tmp/redis");
my $node = preloaded_node('crash');
my $db = 'postgres';
# the worker drains 50k events in a fraction of a second: the test runs it
# with small batches, watches closely (every 5 ms) for the first delivery and
# kills the worker then

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
CREATE TABLE crash (id int PRIMARY KEY, v int NOT NULL, pad text);
INSERT INTO crash SELECT g, 0, repeat('x', 20) FROM generate_series(1, 200000) g;
});

# the backfill makes a 200k-event backlog; the route is paused while the
# writers start, so the worker meets a full outbox
my $route = $node->safe_psql($db,
	q{SELECT polyglot.sync('crash', 'cache', '{"key": "crash:{id}"}')});
$node->safe_psql($db, "SELECT polyglot.pause($route)");
# small batches slow the drain down enough (a few seconds) to catch the
# worker with most of the backlog still pending
$node->safe_psql($db, 'ALTER SYSTEM SET polyglot.batch_size = 100');
$node->safe_psql($db, 'SELECT pg_reload_conf()');

# writers: upserts and deletes over a key range a bit larger than the table
open my $fh, '>', "$tmp/upsert.sql" or die;
print $fh "\\set id random(1, 210000)\n"
  . "INSERT INTO crash VALUES (:id, 1, 'new') ON CONFLICT (id) DO UPDATE SET v = crash.v + 1;\n";
close $fh;
open $fh, '>', "$tmp/delete.sql" or die;
print $fh "\\set id random(1, 210000)\nDELETE FROM crash WHERE id = :id;\n";
close $fh;

sub writers
{
	my ($seconds) = @_;
	# the crash disconnects the clients: pgbench's own result does not matter,
	# what committed is what the table holds
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', $seconds, '-f', "$tmp/upsert.sql\@9",
			'-f', "$tmp/delete.sql\@1", '-h', $node->host, '-p', $node->port, $db ],
		'>', "$tmp/pgbench.out", '2>', "$tmp/pgbench.err");
}

my $w = writers(6);
sleep 1;
$node->safe_psql($db, "SELECT polyglot.resume($route)");
ok(wait_until(sub { $node->safe_psql($db,
	"SELECT delivered > 0 FROM polyglot.status WHERE route = $route") eq 't' }, 30, 5),
	'the worker started on the backlog');
my $pending = $node->safe_psql($db, "SELECT pending FROM polyglot.status WHERE route = $route");
my $backfill = $node->safe_psql($db,
	"SELECT backfill_rows || ' of ' || backfill_total || ' ' || backfill_started_at FROM polyglot.status WHERE route = $route");
my $pid = worker_pid($node, $db);
ok($pid > 0 && $pending > 50000, "the worker is busy: $pending events pending when it is killed");
my ($rows_before, $total) = $backfill =~ /^(\d+) of (\d+) /;
ok($rows_before > 0 && $rows_before < $total,
	"it is killed in the middle of the backfill: $rows_before of $total rows enqueued");
kill 'KILL', $pid;
$w->finish;

# the postmaster restarts everything after the crash; the launcher brings
# the worker back, which finds its backlog intact
ok(wait_until(sub { $node->safe_psql($db, 'SELECT 1') eq '1' }, 60), 'the server is back');
$node->safe_psql($db, 'ALTER SYSTEM RESET polyglot.batch_size');
$node->safe_psql($db, 'SELECT pg_reload_conf()');
ok(wait_until(sub { worker_pid($node, $db) > 0 && worker_pid($node, $db) != $pid }, 60),
	'a new worker runs');
$w = writers(3);
$w->finish;
ok(wait_drained($node, $db, 180), 'the backlog drained after the crash');

my $table_sql = q{SELECT 'crash:' || id, row_to_json(t) FROM crash t};
compare_store(redis_dump($redis_port, 'crash:', $tmp), table_dump($node, $db, $table_sql),
	'after kill -9 of the worker, Redis equals the table key by key');
my ($started_before) = $backfill =~ / of \d+ (.*)$/;
is($node->safe_psql($db,
	"SELECT backfill || ' ' || backfill_started_at FROM polyglot.status WHERE route = $route"),
	"done $started_before", 'the backfill went on from where it was, and finished');

# PostgreSQL stopped in immediate mode (a crash of the whole server) while
# a backlog is being delivered
$node->safe_psql($db, "SELECT polyglot.pause($route)");
$node->safe_psql($db, 'UPDATE crash SET v = v + 10');
my $delivered_before = $node->safe_psql($db,
	"SELECT delivered FROM polyglot.status WHERE route = $route");
$node->safe_psql($db, "SELECT polyglot.resume($route)");
ok(wait_until(sub { $node->safe_psql($db,
	"SELECT delivered > $delivered_before FROM polyglot.status WHERE route = $route") eq 't' }, 30, 5),
	'the worker started on the second backlog');
$node->stop('immediate');
$node->start;
ok(wait_drained($node, $db, 180), 'the backlog drained after an immediate stop and start');
compare_store(redis_dump($redis_port, 'crash:', $tmp), table_dump($node, $db, $table_sql),
	'after an immediate stop, Redis equals the table key by key');

is($node->safe_psql($db, "SELECT failed FROM polyglot.status WHERE route = $route"), '0',
	'no event was given up');

$node->stop;
stop_redis($redis_port);
done_testing();
