# 009_hung_store.pl: a store that hangs (its process frozen with SIGSTOP: it
# accepts connections but answers nothing) never holds PostgreSQL up.  A
# foreign scan cancelled by statement_timeout returns at once instead of
# after io_timeout, the session's next statement gets right answers once
# the store is back, and `pg_ctl stop -m fast` with the worker waiting on
# the frozen store finishes in seconds.  Redis and MongoDB (FerretDB) each
# run privately for this test: the stack's servers are never frozen.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $redis_port = start_redis("$tmp/redis");
my $mongo_port = start_ferretdb("$tmp/ferretdb");
my $uri = "mongodb://127.0.0.1:$mongo_port";

my $redis_pid = slurp_file("$tmp/redis/redis.pid");
my $mongo_pid = slurp_file("$tmp/ferretdb/ferretdb.pid");
chomp($redis_pid, $mongo_pid);
my %frozen;
# whatever happens, the private stores run again (and stop) when the test ends
END { kill 'CONT', $_ for keys %frozen; }

sub freeze { kill 'STOP', $_[0] or die "cannot stop $_[0]: $!"; $frozen{ $_[0] } = 1; }
sub thaw { kill 'CONT', $_[0]; delete $frozen{ $_[0] }; }

# io_timeout is long, so that waiting for it cannot pass for promptness
my $io_timeout = 20;
my $node = preloaded_node('hung_store');
my $db = 'postgres';
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$redis_port', connect_timeout '2s', io_timeout '${io_timeout}s');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri '$uri', database 'hung', connect_timeout '2s', io_timeout '${io_timeout}s');
CREATE FOREIGN TABLE kv (key text, value text) SERVER cache OPTIONS (type 'string');
CREATE FOREIGN TABLE docs_t (_id int, name text) SERVER docs OPTIONS (collection 'things');
INSERT INTO kv VALUES ('a', 'apple'), ('b', 'banana');
INSERT INTO docs_t VALUES (1, 'one'), (2, 'two');
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 100) g;
});

# One session: a first read (the connection is made), the store frozen, a
# read cancelled by statement_timeout, the store resumed, another read.
# Returns the seconds the session took, its output and its errors.
sub cancelled_scan
{
	my ($pid, $first, $hung, $after) = @_;
	my ($out, $err);
	my $start = time();
	$node->psql($db, qq{
$first;
\\! kill -STOP $pid
SET statement_timeout = '1s';
$hung;
RESET statement_timeout;
\\! kill -CONT $pid
$after;
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
	return (time() - $start, $out, $err);
}

# ---------------------------------------------------------------- Redis scan
$frozen{$redis_pid} = 1;    # psql freezes it; the END block must thaw it
my ($secs, $out, $err) = cancelled_scan($redis_pid,
	q{SELECT value FROM kv WHERE key = 'a'},
	q{SELECT value FROM kv WHERE key = 'a'},
	q{SELECT value FROM kv WHERE key = 'b'});
delete $frozen{$redis_pid};
like($err, qr/canceling statement due to statement timeout/,
	'a Redis scan on a frozen server is cancelled by statement_timeout');
ok($secs < 5, sprintf('the cancelled Redis scan returned promptly (%.1fs, io_timeout %ds)',
	$secs, $io_timeout));
is($out, "apple\nbanana", 'after the cancel, the next Redis read gets its own reply');

# ---------------------------------------------------------------- MongoDB scan
$frozen{$mongo_pid} = 1;
($secs, $out, $err) = cancelled_scan($mongo_pid,
	q{SELECT name FROM docs_t WHERE _id = 1},
	q{SELECT name FROM docs_t WHERE _id = 1},
	q{SELECT name FROM docs_t WHERE _id = 2});
delete $frozen{$mongo_pid};
like($err, qr/canceling statement due to statement timeout/,
	'a MongoDB scan on a frozen server is cancelled by statement_timeout');
ok($secs < 5, sprintf('the cancelled MongoDB scan returned promptly (%.1fs, io_timeout %ds)',
	$secs, $io_timeout));
is($out, "one\ntwo", 'after the cancel, the next MongoDB read gets its own reply');

# ---------------------------------------------------------------- fast stop

# A route delivers into the store; the store freezes with changes pending;
# once the worker waits on it, the server is stopped with -m fast.  After a
# restart with the store back, everything is delivered.
sub stop_while_hung
{
	my ($store, $pid, $server, $options, $delivered) = @_;
	$node->safe_psql($db, qq{SELECT polyglot.sync('accounts', '$server', '$options')});
	ok(wait_drained($node, $db, 60), "$store: the backfill is delivered");

	freeze($pid);
	$node->safe_psql($db, 'UPDATE accounts SET balance = balance + 1');
	# the worker is in the middle of a delivery, waiting for the store
	ok(wait_until(sub { $node->safe_psql($db,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' "
		  . "AND state = 'active'") eq '1' }, 10),
		"$store: the worker is waiting on the frozen store");
	sleep 1;
	my $start = time();
	$node->stop('fast');
	my $took = time() - $start;
	ok($took < 5, sprintf('%s: pg_ctl stop -m fast finished promptly (%.1fs, io_timeout %ds)',
		$store, $took, $io_timeout));

	thaw($pid);
	$node->start;
	ok(wait_drained($node, $db, 60), "$store: after the restart, the changes are delivered");
	ok($delivered->(), "$store: the store has the new balances");
	$node->safe_psql($db, "SELECT polyglot.unsync('accounts', '$server')");
}

stop_while_hung('Redis', $redis_pid, 'cache', '{"key": "acct:{id}"}',
	sub { (redis_cli($redis_port, 'GET', 'acct:7') // '') eq '{"id":7,"balance":1}' });
stop_while_hung('MongoDB', $mongo_pid, 'docs', '{"collection": "accounts"}',
	sub { mongo_dump($uri, 'hung', 'accounts')->{'{"$numberInt": "7"}'}
		  =~ /"balance": \{"\$numberInt": "1"\}/ });

$node->stop;
stop_redis($redis_port);
stop_ferretdb("$tmp/ferretdb");
done_testing();
