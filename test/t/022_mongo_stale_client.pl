# 022_mongo_stale_client.pl: a MongoDB client left idle for longer than
# heartbeatFrequencyMS (500ms, libmongoc's minimum, from the server's uri)
# scans its server again before its next server selection.  When that
# scan's hello fails and the new connection fails too (the server is down,
# a cancel is pending, or the process exits), nothing may hang: a query
# fails, a cancel cancels, an ALTER SERVER commits, DROP DATABASE WITH
# (FORCE) and `pg_ctl stop -m fast` end the workers at once.  FerretDB runs
# privately for this test.  Every wait is bounded: a hang is a failure.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $mongo_dir = "$tmp/ferretdb";
my $mongo_port = start_ferretdb($mongo_dir);
my $uri = "mongodb://127.0.0.1:$mongo_port/?heartbeatFrequencyMS=500";
my $running = 1;

sub mongo_pid { my $p = slurp_file("$mongo_dir/ferretdb.pid"); chomp $p; return $p; }
END { kill 'CONT', mongo_pid() if -e "$mongo_dir/ferretdb.pid"; kill 'TERM', mongo_pid() if $running; }

my $node = preloaded_node('mongo_stale_client');
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri '$uri', database 'stale', connect_timeout '2s', io_timeout '20s');
CREATE FOREIGN TABLE docs_t (_id int, name text) SERVER docs OPTIONS (collection 'things');
INSERT INTO docs_t VALUES (1, 'one'), (2, 'two');
});

# Runs a psql script within $limit seconds; returns (seconds, stdout, stderr, timed out).
sub bounded_psql
{
	my ($db, $sql, $limit) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $start = time();
	$node->psql($db, $sql, stdout => \$out, stderr => \$err, on_error_stop => 0,
		timeout => $limit, timed_out => \$timed_out);
	return (time() - $start, $out, $err, $timed_out);
}

# ------------------------------------------- a query, the server gone
# The session's client connected, the server stops (its port closes), the
# client goes stale: the next query's scan fails and reconnecting fails
# (SIGKILL: FerretDB's graceful stop waits for its clients).
my $pid = mongo_pid();
my ($secs, $out, $err, $to) = bounded_psql('postgres', qq{
SELECT count(*) FROM docs_t;
\\! kill -KILL $pid; sleep 1.5
SELECT count(*) FROM docs_t;
SELECT 'done';
}, 30);
ok(!$to && $out =~ /done/, sprintf('a query on a stale client, server down, fails in %.1fs', $secs));
like($err, qr/could not connect to MongoDB server "docs"/, 'it reports the lost server');
waitpid($pid, 0);

# -------------------------------------- ALTER SERVER, the server gone
# The invalidated client is freed at commit, when it would end its sessions.
start_ferretdb($mongo_dir, $mongo_port);
$pid = mongo_pid();
($secs, $out, $err, $to) = bounded_psql('postgres', qq{
SELECT count(*) FROM docs_t;
\\! kill -KILL $pid; sleep 1.5
ALTER SERVER docs OPTIONS (SET io_timeout '21s');
SELECT 'done';
}, 30);
ok(!$to && $out =~ /done/, sprintf('ALTER SERVER frees a stale client, server down, in %.1fs', $secs));
waitpid($pid, 0);

# ------------------------------------------- a cancel, the server frozen
start_ferretdb($mongo_dir, $mongo_port);
$pid = mongo_pid();
($secs, $out, $err, $to) = bounded_psql('postgres', qq{
SELECT count(*) FROM docs_t;
\\! kill -STOP $pid; sleep 1.5
SET statement_timeout = '1s';
SELECT count(*) FROM docs_t;
RESET statement_timeout;
\\! kill -CONT $pid
SELECT 'done ' || count(*) FROM docs_t;
}, 30);
ok(!$to && $out =~ /done 2/, sprintf('a query on a stale client, server frozen, is cancelled (%.1fs)', $secs));
like($err, qr/canceling statement due to statement timeout/, 'the cancel is reported');
kill 'CONT', $pid;

# ------------------------------- the workers' exit, the server running
# A database whose route delivered to MongoDB; its worker idles past the
# heartbeat, then DROP DATABASE WITH (FORCE) terminates it.  Then the same
# with `pg_ctl stop -m fast`.
sub idle_route
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri '$uri', database '$db', connect_timeout '2s', io_timeout '20s');
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 50) g;
SELECT polyglot.sync('accounts', 'docs');
});
	ok(wait_drained($node, $db, 60), "$db: the route is delivered");
	$node->safe_psql($db, 'UPDATE accounts SET balance = 1 WHERE id = 1');
	ok(wait_drained($node, $db, 60), "$db: a change is delivered");
	sleep 2;		# idle past heartbeatFrequencyMS
}

idle_route('dropped');
($secs, $out, $err, $to) = bounded_psql('postgres',
	"DROP DATABASE dropped WITH (FORCE); SELECT 'done';", 20);
ok(!$to && $out =~ /done/ && $err !~ /ERROR/
	  && $node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'dropped'") eq '0',
	sprintf('DROP DATABASE WITH (FORCE) ends the idle worker and drops the database (%.1fs)', $secs));

idle_route('stopped');
my $start = time();
my $stopped;
{
	local $ENV{PGCTLTIMEOUT} = 20;
	$stopped = $node->stop('fast', fail_ok => 1);
}
$secs = time() - $start;
ok($stopped && $secs < 10, sprintf('pg_ctl stop -m fast ends the idle worker (%.1fs)', $secs));

if ($stopped)
{
	$node->start;
	is($node->safe_psql('postgres', "SELECT 'up'"), 'up', 'the server starts again');
	$node->stop('fast');
}
stop_ferretdb($mongo_dir);
$running = 0;
done_testing();
