# 006_search_outage.pl: the stack's OpenSearch frozen (SIGSTOP) for 20
# seconds under a steady write load: it accepts connections but answers
# nothing, as a node in a long pause does.  No write fails in PostgreSQL,
# the route backs off on the timeouts, the backlog drains when the node
# answers again (SIGCONT), and the index then equals the table, document by
# document.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $pidfile = $ENV{OPENSEARCH_PID_FILE} or die "OPENSEARCH_PID_FILE is not set";
my $search_pid = slurp_file($pidfile);
chomp $search_pid;
my $frozen = 0;
# whatever happens, the shared server runs again when the test ends
END { kill 'CONT', $search_pid if $frozen; }

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $node = preloaded_node('search_outage');
my $db = 'postgres';
my $index = 'polyglot_tap_outage';
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$url/$index?ignore_unavailable=true");

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url '$url', connect_timeout '500ms', io_timeout '2s');
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 3000) g;
});
my $route = $node->safe_psql($db,
	qq{SELECT polyglot.sync('accounts', 'search', '{"index": "$index"}')});
ok(wait_drained($node, $db, 60), 'the backfill is delivered');

# 40 seconds of writes at a steady 200 transactions per second
my $pgbench = start_account_writes($node, $db, $tmp, 200, 4000, 1);

sleep 5;
kill 'STOP', $search_pid or die "cannot stop OpenSearch (pid $search_pid): $!";
$frozen = 1;
my $stopped_at = time();

ok(wait_until(sub { $node->safe_psql($db,
	"SELECT state FROM polyglot.status WHERE route = $route") eq 'backing off' }, 15),
	'the route backs off while OpenSearch does not answer');
like($node->safe_psql($db, "SELECT last_error FROM polyglot.status WHERE route = $route"),
	qr/Elasticsearch server "search"/, 'status says why');

sleep(20 - (time() - $stopped_at)) if time() - $stopped_at < 20;
my $backlog = $node->safe_psql($db, "SELECT pending FROM polyglot.status WHERE route = $route");
ok($backlog > 1000, "a backlog built up during the outage: $backlog events");

kill 'CONT', $search_pid;
$frozen = 0;
my $out = finish_account_writes($pgbench, $tmp);

ok(wait_drained($node, $db, 120), 'the backlog drains after OpenSearch answers again');
is($node->safe_psql($db, "SELECT state FROM polyglot.status WHERE route = $route"), 'active',
	'the route is active again');

# the index, as { id => balance }
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XPOST', "$url/$index/_refresh");
my $json = `curl -s -m 60 '$url/$index/_search?size=10000&_source=id,balance'`;
my $hits = decode_json($json)->{hits}{hits};
my %index = map { $_->{_id} => "$_->{_source}{id}:$_->{_source}{balance}" } @$hits;
compare_store(\%index, table_dump($node, $db, q{SELECT id, id || ':' || balance FROM accounts}),
	'after the outage, the index equals the table document by document');
is($node->safe_psql($db, "SELECT failed FROM polyglot.status WHERE route = $route"), '0',
	'no event was given up');

system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$url/$index");
$node->stop;
done_testing();
