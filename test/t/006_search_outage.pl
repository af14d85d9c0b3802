# 006_search_outage.pl: the stack's OpenSearch frozen (SIGSTOP) for 20
# seconds under a steady write load of 200 transactions per second, with
# deletes: it accepts connections but answers nothing, as a node in a long
# pause does, and the route backs off on the timeouts.  The outage scenario
# of PolyglotTest.pm; the index then equals the table, document by document.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
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

my $index = 'polyglot_tap_outage';
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$url/$index?ignore_unavailable=true");

# the index, as { id => "id:balance" }
sub index_dump
{
	system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XPOST', "$url/$index/_refresh");
	my $json = `curl -s -m 60 '$url/$index/_search?size=10000&_source=id,balance'`;
	my $hits = decode_json($json)->{hits}{hits};
	return { map { $_->{_id} => "$_->{_source}{id}:$_->{_source}{balance}" } @$hits };
}

outage_scenario(
	name => 'search_outage',
	store => 'OpenSearch',
	server => qq{CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic
  OPTIONS (url '$url', connect_timeout '500ms', io_timeout '2s')},
	sync => qq{'search', '{"index": "$index"}'},
	rows => 3000, tps => 200, max_id => 4000, deletes => 1,
	stop => sub {
		kill 'STOP', $search_pid or die "cannot stop OpenSearch (pid $search_pid): $!";
		$frozen = 1;
	},
	start => sub { kill 'CONT', $search_pid; $frozen = 0; },
	down => 'while OpenSearch does not answer',
	back => 'after OpenSearch answers again',
	error => qr/Elasticsearch server "search"/,
	store_dump => \&index_dump,
	table_sql => q{SELECT id, id || ':' || balance FROM accounts},
	compared => 'after the outage, the index equals the table document by document');

system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$url/$index");
done_testing();
