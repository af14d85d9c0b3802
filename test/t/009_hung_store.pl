# 009_hung_store.pl: a store that hangs (its process frozen with SIGSTOP: it
# accepts connections but answers nothing) never holds PostgreSQL up.  A
# foreign scan cancelled by statement_timeout or pg_cancel_backend returns
# at once instead of after io_timeout, the session's next statement gets
# right answers once the store is back, and `pg_ctl stop -m fast` with the worker waiting on
# the frozen store finishes in seconds.  Redis and MongoDB (FerretDB) each
# run privately for this test: the stack's servers are never frozen.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
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
my $finished = 0;
# whatever happens, the private stores run again, and stop, when the test ends
END
{
	kill 'CONT', $_ for keys %frozen;
	kill 'TERM', $redis_pid, $mongo_pid unless $finished;
}

sub freeze { kill 'STOP', $_[0] or die "cannot stop $_[0]: $!"; $frozen{ $_[0] } = 1; }
sub thaw { kill 'CONT', $_[0]; delete $frozen{ $_[0] }; }

# io_timeout is long, so that waiting for it cannot pass for promptness; the
# limits below (5 s, 8 s for a stop) leave a loaded machine its slack and
# are still well under it
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
# Returns the seconds the cancelled read took, the output of the two other
# reads and the session's errors.
sub cancelled_scan
{
	my ($pid, $first, $hung, $after) = @_;
	my ($out, $err);
	$node->psql($db, qq{
$first;
\\! kill -STOP $pid
SET statement_timeout = '1s';
SELECT 'before ' || extract(epoch FROM clock_timestamp());
$hung;
SELECT 'after ' || extract(epoch FROM clock_timestamp());
RESET statement_timeout;
\\! kill -CONT $pid
$after;
}, stdout => \$out, stderr => \$err, on_error_stop => 0);
	my $before = $out =~ s/^before (\S+)\n//m ? $1 : undef;
	my $after_t = $out =~ s/^after (\S+)\n//m ? $1 : undef;
	return ((defined $before && defined $after_t ? $after_t - $before : 999), $out, $err);
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

# ---------------------------------------------------------------- pg_cancel_backend

# A new session reading from the frozen store (it connects, then waits for
# the first reply: for MongoDB, the handshake), cancelled from another one.
sub cancel_from_outside
{
	my ($store, $pid, $query) = @_;
	my ($out, $err) = ('', '');
	freeze($pid);
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr($db), '-c', $query ],
		'>', \$out, '2>', \$err);
	my $waiting = wait_until(sub { $node->safe_psql($db,
		"SELECT count(*) FROM pg_stat_activity WHERE query = \$q\$$query\$q\$ AND state = 'active'") eq '1' }, 10);
	usleep(500_000);
	my $start = time();
	$node->safe_psql($db, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = \$q\$$query\$q\$");
	$h->finish;
	my $took = time() - $start;
	thaw($pid);
	ok($waiting, "$store: a new session waits on the frozen store");
	like($err, qr/canceling statement due to user request/,
		"$store: pg_cancel_backend cancels it");
	ok($took < 5, sprintf('%s: the cancel took effect at once (%.1fs)', $store, $took));
}

cancel_from_outside('Redis', $redis_pid, q{SELECT value FROM kv WHERE key = 'a'});
cancel_from_outside('MongoDB', $mongo_pid, q{SELECT name FROM docs_t WHERE _id = 1});

# ---------------------------------------------------------------- search scan

# libcurl's requests stop on a cancel through their progress callback.  No
# private OpenSearch here (too heavy for this test): the frozen Redis stands
# in for a frozen search node, since to an HTTP client both accept the
# connection, take the request and never answer.
$node->safe_psql($db, qq{
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url 'http://127.0.0.1:$redis_port', connect_timeout '2s', io_timeout '${io_timeout}s');
CREATE FOREIGN TABLE hits (id int, _score real, query text) SERVER search OPTIONS (index 'things');
});
$frozen{$redis_pid} = 1;
($secs, $out, $err) = cancelled_scan($redis_pid, q{SELECT 1},
	q{SELECT id FROM hits WHERE query = 'x'}, q{SELECT 2});
delete $frozen{$redis_pid};
like($err, qr/canceling statement due to statement timeout/,
	'a search scan on a frozen server is cancelled by statement_timeout');
ok($secs < 5, sprintf('the cancelled search scan returned promptly (%.1fs, io_timeout %ds)',
	$secs, $io_timeout));

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
	ok($took < 8, sprintf('%s: pg_ctl stop -m fast finished promptly (%.1fs, io_timeout %ds)',
		$store, $took, $io_timeout));

	thaw($pid);
	$node->start;
	ok(wait_drained($node, $db, 60), "$store: after the restart, the changes are delivered");
	my $balance = $node->safe_psql($db, 'SELECT balance FROM accounts WHERE id = 7');
	ok($delivered->($balance), "$store: the store has the new balance ($balance)");
	$node->safe_psql($db, "SELECT polyglot.unsync('accounts', '$server')");
}

stop_while_hung('Redis', $redis_pid, 'cache', '{"key": "acct:{id}"}',
	sub { (redis_cli($redis_port, 'GET', 'acct:7') // '') eq qq({"id":7,"balance":$_[0]}) });
stop_while_hung('MongoDB', $mongo_pid, 'docs', '{"collection": "accounts"}',
	sub { mongo_dump($uri, 'hung', 'accounts')->{'{"$numberInt": "7"}'}
		  =~ /"balance": \{"\$numberInt": "$_[0]"\}/ });

$node->stop;
stop_redis($redis_port);
stop_ferretdb("$tmp/ferretdb");
$finished = 1;
done_testing();
