# 023_launcher_slots.pl: DROP DATABASE frees the launcher's slots of a
# database as soon as its workers have left the proc array, which a worker
# does before the end of its exit; the slots then go to the workers of the
# database created next, which gets all polyglot.workers workers, and every
# key, whichever worker's it is, is delivered to Redis.  A DROP DATABASE
# refused to a role that does not own the database stops no worker.
#
# The dropped database's workers deliver to a private FerretDB on a
# Unix-domain socket (libmongoc's own streams, not mongo_stream.c's), which
# is frozen (SIGSTOP) before the drop.  Before the libmongoc exit fix (a
# client forgets its sessions at exit), such a worker hung in endSessions
# after leaving the proc array, and the launcher, waiting on the old
# worker's handle for a slot already given to the new database, never
# started that database's second worker (this test failed so then).  Exit
# no longer waits on MongoDB; the launcher lets go of a handle whose slot
# serves another database all the same, in case any exit hangs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $ferret_bin = $ENV{FERRETDB_BIN} or die "FERRETDB_BIN is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $sockdir = PostgreSQL::Test::Utils::tempdir_short();    # a socket path has 107 bytes at most
my $prefix = 'tapls:';

system("redis-cli -p $redis_port --scan --pattern '$prefix*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");

# A private FerretDB listening on TCP (for the readiness check) and on a
# Unix-domain socket (for the workers).
my $ferret_port = PostgreSQL::Test::Cluster::get_free_port();
my $socket = "$sockdir/ferretdb.sock";
mkdir "$tmp/ferretdb";
my $ferret_pid = fork();
die "fork: $!" unless defined $ferret_pid;
if ($ferret_pid == 0)
{
	open STDOUT, '>>', "$tmp/ferretdb/ferretdb.log";
	open STDERR, '>&', \*STDOUT;
	exec($ferret_bin, "--listen-addr=127.0.0.1:$ferret_port", "--listen-unix=$socket",
		'--handler=sqlite', "--sqlite-url=file:$tmp/ferretdb/", "--state-dir=$tmp/ferretdb",
		'--debug-addr=-', '--telemetry=disable', '--log-level=warn')
	  or die "exec $ferret_bin: $!";
}
my $frozen = 0;
# whatever happens, FerretDB runs again, and stops, when the test ends
END
{
	if ($ferret_pid)
	{
		kill 'CONT', $ferret_pid if $frozen;
		kill 'TERM', $ferret_pid;
		waitpid($ferret_pid, 0);
	}
}
ok(wait_until(sub { defined PolyglotTest::mongo_tool("mongodb://127.0.0.1:$ferret_port", 'count', 'admin', 'x') }, 30),
	'the private FerretDB answers');

my $node = preloaded_node('launcher_slots', "polyglot.workers = 2\n");

# the workers of a database: { pid => application_name }
sub workers_of
{
	my ($db) = @_;
	my %w;
	for my $line (split /\n/, $node->safe_psql('postgres',
		"SELECT pid, application_name FROM pg_stat_activity "
		  . "WHERE backend_type = 'pg_polyglot worker' AND datname = '$db'"))
	{
		my ($pid, $name) = split /\|/, $line;
		$w{$pid} = $name;
	}
	return \%w;
}

# A database whose two workers both delivered to FerretDB over the socket.
(my $socket_uri = $socket) =~ s{/}{%2F}g;
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri 'mongodb://$socket_uri', database 'polyglot_tap', connect_timeout '10min', io_timeout '10min');
CREATE TABLE things (id int PRIMARY KEY, v text);
SELECT polyglot.sync('things', 'docs', '{"collection": "launcher_slots"}');
SELECT polyglot.pause(id) FROM polyglot.routes;
INSERT INTO things SELECT g, 'v' || g FROM generate_series(1, 40) g;
});
is($node->safe_psql('gone', 'SELECT count(DISTINCT slot) FROM polyglot.outbox'), '2',
	'both workers of the first database have keys to deliver');
$node->safe_psql('gone', 'SELECT polyglot.resume(id) FROM polyglot.routes');
ok(wait_drained($node, 'gone', 60), 'the first database delivers to MongoDB over a Unix-domain socket');
ok(wait_until(sub { keys %{ workers_of('gone') } == 2 }, 30), 'two workers serve the first database');
my @old = sort keys %{ workers_of('gone') };

# MongoDB hangs; DROP DATABASE terminates the workers, which leave the proc
# array (else the drop would fail), then exit.
kill 'STOP', $ferret_pid or die "cannot stop FerretDB: $!";
$frozen = 1;
$node->safe_psql('postgres', 'DROP DATABASE gone');
note(scalar(grep { kill 0, $_ } @old) . ' of the dropped database\'s workers still run');

# The database created next is given the freed slots.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
SELECT polyglot.sync('items', 'cache', '{"key": "${prefix}{id}"}');
SELECT polyglot.pause(id) FROM polyglot.routes;
INSERT INTO items SELECT g, 0 FROM generate_series(1, 200) g;
});
is($node->safe_psql('fresh', 'SELECT count(DISTINCT slot) FROM polyglot.outbox'), '2',
	'the keys of the database created next are split between two workers');
$node->safe_psql('fresh', 'SELECT polyglot.resume(id) FROM polyglot.routes');
ok(wait_until(sub { keys %{ workers_of('fresh') } == 2 }, 30),
	'two workers serve the database created next')
  or diag('workers of fresh: ' . join(', ', values %{ workers_of('fresh') }));
$node->safe_psql('fresh', 'UPDATE items SET v = v + 1');
ok(wait_drained($node, 'fresh', 60), 'every key of the database created next is delivered');
compare_store(redis_dump($redis_port, $prefix, $tmp),
	table_dump($node, 'fresh', "SELECT '$prefix' || id, row_to_json(i) FROM items i"),
	'Redis holds every row, the keys of either worker');

# Once MongoDB answers, the new workers go on.
my $fresh = join(',', sort keys %{ workers_of('fresh') });
kill 'CONT', $ferret_pid;
$frozen = 0;
ok(wait_until(sub { !grep { kill 0, $_ } @old }, 60), 'the old workers end once MongoDB answers');
$node->safe_psql('fresh', 'UPDATE items SET v = v + 1');
ok(wait_drained($node, 'fresh', 60), 'the next changes are delivered');
compare_store(redis_dump($redis_port, $prefix, $tmp),
	table_dump($node, 'fresh', "SELECT '$prefix' || id, row_to_json(i) FROM items i"),
	'Redis again holds every row');
is(join(',', sort keys %{ workers_of('fresh') }), $fresh, 'the same two workers serve the database');

# A DROP DATABASE refused to a role that does not own the database leaves
# its workers alone: trying to drop it does not interrupt its delivery.
$node->safe_psql('postgres', 'CREATE ROLE intruder LOGIN');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE fresh', extra_params => [ '-U', 'intruder' ]);
like($err, qr/must be owner of database fresh/, 'DROP DATABASE by another role is refused');
$node->safe_psql('fresh', 'UPDATE items SET v = v + 1');
ok(wait_drained($node, 'fresh', 60), 'the changes after the refused drop are delivered');
compare_store(redis_dump($redis_port, $prefix, $tmp),
	table_dump($node, 'fresh', "SELECT '$prefix' || id, row_to_json(i) FROM items i"),
	'Redis holds every row after the refused drop');
is(join(',', sort keys %{ workers_of('fresh') }), $fresh, 'the refused drop stopped no worker');

system("redis-cli -p $redis_port --scan --pattern '$prefix*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
$node->stop;
done_testing();
