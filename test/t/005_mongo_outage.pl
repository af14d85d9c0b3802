# 005_mongo_outage.pl: a MongoDB server (a private FerretDB) stopped for 20
# seconds under a steady write load of 200 transactions per second, with
# deletes: the outage scenario of PolyglotTest.pm.  The collection then
# equals the table, document by document.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $mongo_port = start_ferretdb("$tmp/ferretdb");
my $uri = "mongodb://127.0.0.1:$mongo_port";

outage_scenario(
	name => 'mongo_outage',
	store => 'MongoDB',
	server => qq{CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo
  OPTIONS (uri '$uri', database 'outage', connect_timeout '500ms', io_timeout '2s')},
	sync => q{'docs'},
	rows => 3000, tps => 200, max_id => 4000, deletes => 1,
	stop => sub { stop_ferretdb("$tmp/ferretdb") },
	start => sub { start_ferretdb("$tmp/ferretdb", $mongo_port) },
	down => 'while MongoDB is down',
	back => 'after MongoDB returns',
	error => qr/MongoDB server "docs"/,
	store_dump => sub { mongo_dump($uri, 'outage', 'accounts') },
	table_sql => q{
		SELECT format('{"$numberInt": "%s"}', id),
		       format('{"_id": {"$numberInt": "%s"}, "id": {"$numberInt": "%s"}, "balance": {"$numberInt": "%s"}}',
		              id, id, balance)
		FROM accounts},
	compared => 'after the outage, the collection equals the table document by document');

stop_ferretdb("$tmp/ferretdb");
done_testing();
