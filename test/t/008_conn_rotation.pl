# 008_conn_rotation.pl: connections replaced under an operation in flight.
# While a backfill of 20,000 rows and a stream of updates are delivered to
# Redis, MongoDB, Elasticsearch and OpenSearch, one client rotates the user
# mappings and server options of all four servers in a loop (every change
# makes the connection caches replace their connections), and other clients
# read the four stores through foreign tables, some of them through a cursor
# whose transaction changes the server and opens a second scan of it between
# two fetches.  Nothing crashes, no batch fails or is lost or acknowledged on
# another batch's replies (every store ends equal to its table, every route
# counts the same deliveries, none failed), and every cursor reads every row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $es_url = $ENV{ELASTICSEARCH_URL} or die "ELASTICSEARCH_URL is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $index = 'polyglot_tap_rotation';
my $rows = 20000;
my $redis_user = 'polyglot_tap_rotation';

# the shared stack's servers: start from nothing under this test's names
system("redis-cli -p $redis_port --scan --pattern 'taprot:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'rotation');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($es_url, $os_url);
# a Redis user with two valid passwords, so that the mapping can rotate them
redis_cli($redis_port, 'ACL', 'SETUSER', $redis_user, 'reset', 'on', '>rotation-one',
	'>rotation-two', '~*', '&*', '+@all') eq 'OK'
  or die "could not create the Redis user";

my $node = preloaded_node('rotation', "polyglot.batch_size = 500\n");

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER cache OPTIONS (user '$redis_user', password 'rotation-one');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE USER MAPPING FOR PUBLIC SERVER docs;
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE USER MAPPING FOR PUBLIC SERVER es OPTIONS (user 'rotation', password 'one');
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE USER MAPPING FOR PUBLIC SERVER os OPTIONS (user 'rotation', password 'one');
CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO items SELECT g, 0, md5(g::text) FROM generate_series(1, $rows) g;
CREATE FOREIGN TABLE cache_items (key text, value jsonb) SERVER cache OPTIONS (prefix 'taprot:');
CREATE FOREIGN TABLE docs_items (_id int, v int) SERVER docs OPTIONS (collection 'rotation');
CREATE FOREIGN TABLE es_items (id int, v int) SERVER es OPTIONS (index '$index');
CREATE FOREIGN TABLE os_items (id int, v int) SERVER os OPTIONS (index '$index');
-- the cursors' own servers, on the same stores, which only their session alters
CREATE SERVER cur_cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE USER MAPPING FOR PUBLIC SERVER cur_cache OPTIONS (user '$redis_user', password 'rotation-one');
CREATE SERVER cur_docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE SERVER cur_es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE SERVER cur_os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE FOREIGN TABLE cur_cache_items (key text, value jsonb) SERVER cur_cache OPTIONS (prefix 'taprot:');
CREATE FOREIGN TABLE cur_docs_items (_id int, v int) SERVER cur_docs OPTIONS (collection 'rotation');
CREATE FOREIGN TABLE cur_es_items (id int, v int) SERVER cur_es OPTIONS (index '$index');
CREATE FOREIGN TABLE cur_os_items (id int, v int) SERVER cur_os OPTIONS (index '$index');
});

# The rotation: each statement replaces the connections of one server in
# every session (the worker's too), twenty rounds a second.
open my $fh, '>', "$tmp/rotate.sql" or die;
print $fh <<'EOS';
ALTER USER MAPPING FOR PUBLIC SERVER cache OPTIONS (SET password 'rotation-two');
ALTER USER MAPPING FOR PUBLIC SERVER es OPTIONS (SET password 'two');
ALTER USER MAPPING FOR PUBLIC SERVER os OPTIONS (SET password 'two');
ALTER SERVER docs OPTIONS (ADD io_timeout '29s');
ALTER USER MAPPING FOR PUBLIC SERVER cache OPTIONS (SET password 'rotation-one');
ALTER USER MAPPING FOR PUBLIC SERVER es OPTIONS (SET password 'one');
ALTER USER MAPPING FOR PUBLIC SERVER os OPTIONS (SET password 'one');
ALTER SERVER docs OPTIONS (DROP io_timeout);
ALTER SERVER es OPTIONS (ADD io_timeout '29s');
ALTER SERVER os OPTIONS (ADD io_timeout '29s');
ALTER SERVER cache OPTIONS (ADD io_timeout '29s');
DROP USER MAPPING FOR PUBLIC SERVER docs;
ALTER SERVER es OPTIONS (DROP io_timeout);
ALTER SERVER os OPTIONS (DROP io_timeout);
ALTER SERVER cache OPTIONS (DROP io_timeout);
CREATE USER MAPPING FOR PUBLIC SERVER docs;
EOS
close $fh;

# Updates to random rows while the backfill runs.
open $fh, '>', "$tmp/update.sql" or die;
# (only the upper half: a MongoDB collection scan need not return a
# document exactly once while it is being replaced, so the cursors below
# read the lower half of the collection)
print $fh "\\set id random(" . ($rows / 2 + 1) . ", $rows)\n"
  . "UPDATE items SET v = v + 1, note = md5(random()::text) WHERE id = :id;\n";
close $fh;

# Reads of every store through its foreign table.
open $fh, '>', "$tmp/scan.sql" or die;
print $fh <<'EOS';
SELECT count(*) FROM cache_items WHERE key LIKE '1%';
SELECT count(*), sum(v) FROM docs_items;
SELECT count(*) FROM es_items WHERE v >= 0;
SELECT count(*) FROM os_items WHERE v >= 0;
EOS
close $fh;

sub pgbench
{
	my ($name, $script, $clients, $rate, $seconds) = @_;
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', $clients, '-T', $seconds, '-R', $rate, '-f', $script,
			'-h', $node->host, '-p', $node->port, $db ],
		'>', "$tmp/$name.out", '2>', "$tmp/$name.err");
}

my $seconds = 75;
my $rotate = pgbench('rotate', "$tmp/rotate.sql", 1, 20, $seconds);
my $update = pgbench('update', "$tmp/update.sql", 2, 50, $seconds);
my $started = time();

# one transaction: every route sees the same updates
$node->safe_psql($db, qq{
BEGIN;
SELECT polyglot.sync('items', 'cache', '{"key": "taprot:{id}"}');
SELECT polyglot.sync('items', 'docs', '{"collection": "rotation"}');
SELECT polyglot.sync('items', 'es', '{"index": "$index"}');
SELECT polyglot.sync('items', 'os', '{"index": "$index"}');
COMMIT;
});
# the scans once the indexes exist (the first batch creates them)
ok(wait_until(sub {
	!grep { system('curl', '-sf', '-m', '60', '-o', '/dev/null', "$_/$index/_mapping") != 0 } ($es_url, $os_url) }, 30),
	'the backfills created the indexes');
my $scan = pgbench('scan', "$tmp/scan.sql", 1, 2, $seconds - (time() - $started));

# A cursor over each store, whose transaction changes the store's server
# and scans it once more between two fetches: the second scan gets a new
# connection, the cursor must go on with its own and read every row.
ok(wait_until(sub {
	$node->safe_psql($db, "SELECT count(*) FILTER (WHERE backfill = 'done') FROM polyglot.status") eq '4' }, 90),
	'the backfills ran to their end while the servers rotated');
ok(wait_until(sub {
	$node->safe_psql($db, q{SELECT (SELECT count(*) FROM cache_items) || ' ' || (SELECT count(*) FROM docs_items)
		|| ' ' || (SELECT count(*) FROM es_items) || ' ' || (SELECT count(*) FROM os_items)})
	  eq "$rows $rows $rows $rows" }, 90),
	'every store holds every row');

# A cursor over each store, whose transaction changes the store's server
# and scans it once more between two fetches: the second scan gets a new
# connection, the cursor must go on with its own and read every row (the
# updates still running change values, never the number of rows).
my %cursor_table = (cur_cache => 'cur_cache_items',
	cur_docs => 'cur_docs_items WHERE _id <= ' . ($rows / 2),
	cur_es => 'cur_es_items', cur_os => 'cur_os_items');
my %cursor_rows = (cur_cache => $rows, cur_docs => $rows / 2, cur_es => $rows, cur_os => $rows);
my $cursor_rounds = 0;
my $cursor_short = 0;
while (time() < $started + $seconds - 5 && $cursor_rounds < 40)
{
	for my $server (sort keys %cursor_table)
	{
		my $t = $cursor_table{$server};
		my $got = 0;
		my ($ret, $out, $err) = $node->psql($db, qq{
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT 1 FROM $t;
FETCH 150 FROM c;
ALTER SERVER $server OPTIONS (ADD connect_timeout '9s');
SELECT 'other', count(*) FROM $t;
FETCH ALL FROM c;
ALTER SERVER $server OPTIONS (DROP connect_timeout);
COMMIT;
});
		$got = grep { $_ eq '1' } split /\n/, $out;
		$cursor_rounds++;
		if ($ret != 0 || $got != $cursor_rows{$server})
		{
			$cursor_short++;
			diag("cursor over $t read $got rows of $cursor_rows{$server}: $err");
			last if $ret != 0 && !eval { $node->safe_psql($db, 'SELECT 1') };
		}
	}
}
cmp_ok($cursor_rounds, '>=', 4, 'cursors ran while the servers rotated');
is($cursor_short, 0, 'every cursor read every row of its store');

$rotate->finish;
$update->finish;
$scan->finish;
like(slurp_file("$tmp/rotate.out"), qr/number of failed transactions: 0 /,
	'the servers and user mappings rotated throughout');
like(slurp_file("$tmp/update.out"), qr/number of failed transactions: 0 /,
	'no update failed in PostgreSQL');
like(slurp_file("$tmp/scan.out"), qr/number of failed transactions: 0 /,
	'no read through a foreign table failed');
unlike(join('', map { slurp_file("$tmp/$_.err") } qw(rotate update scan)), qr/aborted/,
	'no client of the rotation, the updates or the reads was aborted by an error');
my ($rounds) = slurp_file("$tmp/rotate.out") =~ /number of transactions actually processed: (\d+)/;
cmp_ok($rounds // 0, '>', 100, 'more than a hundred rotations');
note(($rounds // 0) . " rounds of rotation (16 changes each), $cursor_rounds cursors");

ok(wait_drained($node, $db, 120), 'the backfill and the updates are delivered');

ok(!$node->log_contains(qr/terminated by signal/),
	'no worker or backend crashed');
is($node->safe_psql($db, q{
	SELECT count(DISTINCT delivered) || ' ' || bool_and(delivered >= } . $rows . q{)::int || ' ' || sum(failed)
	FROM polyglot.status}), '1 1 0',
	'every route delivered the same events, at least every row, none failed');
is($node->safe_psql($db, 'SELECT count(*) FROM polyglot.dead_letters'), '0', 'no dead letter');
is($node->safe_psql($db,
	"SELECT coalesce(string_agg(server || ': ' || last_error, '; '), 'none') FROM polyglot.status WHERE last_error IS NOT NULL"),
	'none', 'no batch failed: each finished on the connection it was sent on');
is($node->safe_psql($db,
	"SELECT string_agg(r.server_name || ':' || (SELECT count(*) FROM polyglot.verify(r.id)), ' ' "
	  . "ORDER BY r.server_name) FROM polyglot.routes r"),
	'cache:0 docs:0 es:0 os:0', 'verify finds no drift in any store');
compare_store(redis_dump($redis_port, 'taprot:', $tmp),
	table_dump($node, $db, "SELECT 'taprot:' || id, row_to_json(i) FROM items i"),
	'Redis holds the last committed value of every row');

$node->stop;
redis_cli($redis_port, 'ACL', 'DELUSER', $redis_user);
system("redis-cli -p $redis_port --scan --pattern 'taprot:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'rotation');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($es_url, $os_url);
done_testing();
