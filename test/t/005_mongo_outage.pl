# 005_mongo_outage.pl: a MongoDB server (FerretDB) stopped for 20 seconds
# under a steady write load.  No write fails in PostgreSQL, the route backs
# off while the server is away, the backlog drains when it returns, and the
# collection then equals the table, document by document.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $mongo_port = start_ferretdb("$tmp/ferretdb");
my $uri = "mongodb://127.0.0.1:$mongo_port";
my $node = preloaded_node('mongo_outage');
my $db = 'postgres';

$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri '$uri', database 'outage', connect_timeout '500ms', io_timeout '2s');
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 3000) g;
});
my $route = $node->safe_psql($db, q{SELECT polyglot.sync('accounts', 'docs')});
ok(wait_drained($node, $db, 60), 'the backfill is delivered');

# 40 seconds of writes at a steady 200 transactions per second
my $pgbench = start_account_writes($node, $db, $tmp, 200, 4000, 1);

sleep 5;
stop_ferretdb("$tmp/ferretdb");
my $stopped_at = time();

ok(wait_until(sub { $node->safe_psql($db,
	"SELECT state FROM polyglot.status WHERE route = $route") eq 'backing off' }, 15),
	'the route backs off while MongoDB is down');
like($node->safe_psql($db, "SELECT last_error FROM polyglot.status WHERE route = $route"),
	qr/MongoDB server "docs"/, 'status says why');

sleep(20 - (time() - $stopped_at)) if time() - $stopped_at < 20;
my $backlog = $node->safe_psql($db, "SELECT pending FROM polyglot.status WHERE route = $route");
ok($backlog > 1000, "a backlog built up during the outage: $backlog events");

start_ferretdb("$tmp/ferretdb", $mongo_port);
my $out = finish_account_writes($pgbench, $tmp);

ok(wait_drained($node, $db, 120), 'the backlog drains after MongoDB returns');
is($node->safe_psql($db, "SELECT state FROM polyglot.status WHERE route = $route"), 'active',
	'the route is active again');
compare_store(mongo_dump($uri, 'outage', 'accounts'),
	table_dump($node, $db, q{
		SELECT format('{"$numberInt": "%s"}', id),
		       format('{"_id": {"$numberInt": "%s"}, "id": {"$numberInt": "%s"}, "balance": {"$numberInt": "%s"}}',
		              id, id, balance)
		FROM accounts}),
	'after the outage, the collection equals the table document by document');
is($node->safe_psql($db, "SELECT failed FROM polyglot.status WHERE route = $route"), '0',
	'no event was given up');

$node->stop;
stop_ferretdb("$tmp/ferretdb");
done_testing();
