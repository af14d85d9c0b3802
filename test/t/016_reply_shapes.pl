# 016_reply_shapes.pl: a Redis server (or a proxy) that answers a command
# with a reply of another shape than that command's is an error, never rows
# of NULLs nor a write counted as delivered.  A private, real redis-server
# is started with renamed commands so that it answers out of shape: GET is
# HGETALL (an array where a bulk string is owed) and SET is APPEND (an
# integer where a status is owed).  A foreign scan then fails with a clear
# error, the backend lives on and its session reads a normal Redis; a route
# marks nothing delivered and its worker lives on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
# a rename onto an existing name is refused: the original goes away first
my $shaped_port = start_redis("$tmp/shaped", undef,
	'--rename-command', 'GET', 'GET_ORIGINAL',
	'--rename-command', 'HGETALL', 'GET',
	'--rename-command', 'SET', 'SET_ORIGINAL',
	'--rename-command', 'APPEND', 'SET');
my $plain_port = start_redis("$tmp/plain");

is(redis_cli($shaped_port, 'HSET', 'kv:h', 'f', 'v'), '1', 'a hash key on the shaped server');
is(redis_cli($shaped_port, 'GET', 'kv:h'), "f\nv",
	'the shaped server answers GET with an array (HGETALL)');
is(redis_cli($plain_port, 'SET', 'kv:a', 'apple'), 'OK', 'a string key on the plain server');

my $node = preloaded_node('reply_shapes');
my $db = 'postgres';
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER shaped FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$shaped_port', connect_timeout '2s', io_timeout '5s');
CREATE SERVER plain FOREIGN DATA WRAPPER polyglot_redis
  OPTIONS (port '$plain_port', connect_timeout '2s', io_timeout '5s');
CREATE FOREIGN TABLE shaped_kv (key text, value text)
  SERVER shaped OPTIONS (type 'string', prefix 'kv:');
CREATE FOREIGN TABLE plain_kv (key text, value text)
  SERVER plain OPTIONS (type 'string', prefix 'kv:');
});

# --- foreign tables: GET answered with an array
my ($ret, $out, $err) = $node->psql($db, q{
\set VERBOSITY verbose
SELECT 'pid ' || pg_backend_pid();
SELECT key, value FROM shaped_kv WHERE key = 'h';
SELECT key, value FROM shaped_kv WHERE key IN ('h', 'missing');
SELECT 'plain ' || key || '=' || value FROM plain_kv WHERE key = 'a';
SELECT 'pid ' || pg_backend_pid();
}, on_error_stop => 0);
my @errors = $err =~ /ERROR:\s+(.*)/g;
is_deeply([ map { /^(\w{5}):/ ? $1 : $_ } @errors ], [ 'HV000', 'HV000' ],
	'the SQLSTATE of a wrong-shape read is fdw_error (HV000)');
is(scalar(@errors), 2, 'both reads of the shaped server fail') or diag($err);
like($err, qr/Redis server "shaped" answered GET of key "kv:h" with a reply of the wrong shape/,
	'the error names the server, the command, the key and the wrong shape');
like($err, qr/Expected a bulk string or nil, got a reply of type 2/,
	'the detail says what was owed and what came');
unlike($out, qr/\|$/m, 'no row of NULLs is returned');
like($out, qr/^plain a=apple$/m, 'the same session then reads a normal Redis');
my @pids = $out =~ /^pid (\d+)$/mg;
ok(@pids == 2 && $pids[0] == $pids[1], 'the same backend served the whole session');

# --- routes: SET answered with an integer
$node->safe_psql($db, q{
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g;
});
my $worker_before;
my $route = $node->safe_psql($db,
	q{SELECT polyglot.sync('items', 'shaped', '{"key": "item:{id}"}')});
ok(wait_until(sub {
	$node->safe_psql($db, "SELECT last_error IS NOT NULL FROM polyglot.status WHERE route = $route")
	  eq 't' }, 30), 'the route records an error');
$worker_before = worker_pid($node, $db);
like($node->safe_psql($db, "SELECT last_error FROM polyglot.status WHERE route = $route"),
	qr/Redis server "shaped" answered a command of a batch with a reply of the wrong shape/,
	'last_error names the wrong shape');
# a few more rounds: nothing counts as delivered meanwhile
sleep 3;
my ($pending, $delivered, $dead) = split /\|/, $node->safe_psql($db,
	"SELECT pending, delivered, dead_letters FROM polyglot.status WHERE route = $route");
ok($pending > 0, "the rows stay pending: $pending");
is($delivered, '0', 'no row counts as delivered');
is($dead, '0', 'a reply out of shape is the server\'s fault: no dead letter');
ok($worker_before > 0 && worker_pid($node, $db) == $worker_before, 'the worker did not crash');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/,
	'no PostgreSQL process crashed');

$node->stop;
stop_redis($shaped_port);
stop_redis($plain_port);
done_testing();
