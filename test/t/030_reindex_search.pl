# 030_reindex_search.pl: polyglot.reindex() under searches and writes, on
# OpenSearch 2 and Elasticsearch 8.  A table of 3,000 rows of kind 'base'
# and others goes to an index through a route with two workers.  While a
# search client asks the index name for the 'base' documents without
# pause, and four clients update every kind of row and insert and delete
# rows of other kinds, the route's index is rebuilt twice with new
# mappings and settings (the route has mappings: sync() made the index
# <name>__1 behind an alias <name>, which each reindex moves).  Then:
#   - every search answered, and each found exactly the 3,000 'base' rows:
#     never a missing index, never a half-filled one, never both;
#   - once delivered, the index behind the name holds every row as it is
#     (polyglot.verify() finds no drift), no change lost;
#   - the name is an alias of <name>__3, which has the new mappings and
#     settings; the two indices before it are gone;
#   - the route's options hold the new mappings and no "reindex".
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use POSIX ();
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my %urls = (
	opensearch => $ENV{OPENSEARCH_URL},
	elasticsearch => $ENV{ELASTICSEARCH_URL});
for my $flavor (sort keys %urls)
{
	die "\U$flavor\E_URL is not set" unless $urls{$flavor};
}
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $base_rows = 3000;
my $http = HTTP::Tiny->new(timeout => 30);

sub es
{
	my ($method, $url, $body) = @_;
	my $r = $http->request($method, $url,
		defined $body
		? { content => $body, headers => { 'Content-Type' => 'application/json' } }
		: {});
	my $json = eval { decode_json($r->{content}) };
	return ($r->{status}, $json, $r->{content});
}

# A process that searches $url/$name for the 'base' documents until $stop
# exists; writes "<searches> <wrong> <first wrong answer>" to $out.
sub start_searches
{
	my ($url, $name, $stop, $out) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	my $client = HTTP::Tiny->new(timeout => 10);
	my $query = encode_json(
		{ size => 0, track_total_hits => JSON::PP::true, query => { match => { kind => 'base' } } });
	my ($n, $wrong, $first) = (0, 0, '');
	my $t0 = time;
	while (!-e $stop && time - $t0 < 600)
	{
		my $r = $client->request('POST', "$url/$name/_search",
			{ content => $query, headers => { 'Content-Type' => 'application/json' } });
		my $hits = eval { decode_json($r->{content})->{hits}{total}{value} };
		$n++;
		if ($r->{status} != 200 || !defined $hits || $hits != $base_rows)
		{
			$wrong++;
			$first ||= "HTTP $r->{status}: " . substr($r->{content} // '', 0, 300);
		}
	}
	open my $fh, '>', $out or die;
	print $fh "$n $wrong $first\n";
	close $fh;
	# not exit(): the END blocks of the test modules would stop the node
	POSIX::_exit(0);
}

my $node = preloaded_node('reindex', "polyglot.workers = 2\npolyglot.batch_size = 200\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SEQUENCE version;
CREATE TABLE docs (id int PRIMARY KEY, kind text NOT NULL, v bigint NOT NULL DEFAULT nextval('version'), note text);
INSERT INTO docs (id, kind, note) SELECT g, 'base', 'base document ' || g FROM generate_series(1, $base_rows) g;
INSERT INTO docs (id, kind, note) SELECT g, 'other', 'other document ' || g FROM generate_series($base_rows + 1, $base_rows + 1500) g;
});

for my $flavor (sort keys %urls)
{
	my $url = $urls{$flavor};
	my $name = "tap_reindex_$flavor";
	es('DELETE', "$url/${name}__$_") for 1 .. 4;
	es('DELETE', "$url/$name");

	$node->safe_psql($db, qq{
CREATE SERVER $flavor FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$url');
SELECT polyglot.sync('docs', '$flavor', '{"name": "docs_$flavor", "index": "$name",
  "mappings": {"properties": {"note": {"type": "text"}}}}');
});
	ok(wait_drained($node, $db, 120), "$flavor: the backfill is delivered");
	es('POST', "$url/$name/_refresh");
	my (undef, $count) = es('GET', "$url/$name/_count");
	is($count->{count}, $node->safe_psql($db, 'SELECT count(*) FROM docs'),
		"$flavor: the index holds every row");

	my $stop = "$tmp/stop_$flavor";
	my $searcher = start_searches($url, $name, $stop, "$tmp/searches_$flavor");
	my $churn = start_load($node, $db, $tmp, <<"EOF", 4, 30, 200);
\\set id random(1, @{[ $base_rows + 3000 ]})
\\set what random(1, 10)
BEGIN;
UPDATE docs SET v = nextval('version'), note = 'changed ' || :what WHERE id = :id AND :what <= 6;
INSERT INTO docs (id, kind, note) SELECT :id, 'new', 'inserted' WHERE :id > $base_rows AND :what IN (7, 8)
  ON CONFLICT (id) DO UPDATE SET v = nextval('version');
DELETE FROM docs WHERE id = :id AND id > $base_rows AND :what >= 9;
COMMIT;
EOF
	sleep 2;

	# the name is an alias of <name>__1: rebuilt as <name>__2
	my ($rc, $out, $err) = $node->psql($db, qq{
CALL polyglot.reindex('docs_$flavor',
  '{"properties": {"kind": {"type": "keyword"}, "note": {"type": "text", "fields": {"raw": {"type": "keyword"}}}, "v": {"type": "long"}}}',
  '{"number_of_shards": 2}', '3 min');
});
	is($rc, 0, "$flavor: the first reindex succeeds") or diag($err);
	like($err, qr/"$name" is index "${name}__2", index "${name}__1" deleted/,
		"$flavor: the first reindex moved the name to ${name}__2");

	# and again: <name>__3, <name>__2 deleted
	($rc, $out, $err) = $node->psql($db, qq{
CALL polyglot.reindex('docs_$flavor', NULL, '{"number_of_shards": 1, "refresh_interval": "500ms"}', '3 min');
});
	is($rc, 0, "$flavor: the second reindex succeeds") or diag($err);
	like($err, qr/"$name" is index "${name}__3", index "${name}__2" deleted/,
		"$flavor: the second reindex moved the name to ${name}__3");

	$churn->finish;
	note(slurp_file("$tmp/pgbench.out"));
	like(slurp_file("$tmp/pgbench.out"), qr/number of failed transactions: 0 /,
		"$flavor: every write in PostgreSQL succeeded");
	sleep 1;
	open my $fh, '>', $stop or die;
	close $fh;
	waitpid($searcher, 0);
	my ($searches, $wrong, $first) = split / /, slurp_file("$tmp/searches_$flavor"), 3;
	cmp_ok($searches, '>', 50, "$flavor: the index was searched throughout ($searches searches)");
	is($wrong, 0, "$flavor: every search found the $base_rows base rows") or diag($first);

	ok(wait_drained($node, $db, 120), "$flavor: the changes are delivered");
	is($node->safe_psql($db, "SELECT count(*) FROM polyglot.verify('docs_$flavor')"), '0',
		"$flavor: the index holds every row as it is");
	is($node->safe_psql($db,
		"SELECT count(*) FROM polyglot.dead_letters d JOIN polyglot.routes r ON r.id = d.route_id WHERE r.name = 'docs_$flavor'"),
		'0', "$flavor: no dead letters");

	my (undef, $aliases) = es('GET', "$url/$name/_alias");
	is_deeply([ keys %$aliases ], ["${name}__3"], "$flavor: the name is an alias of ${name}__3");
	my ($status) = es('GET', "$url/${name}__2");
	is($status, 404, "$flavor: ${name}__2 is deleted");
	my (undef, $mapping) = es('GET', "$url/$name/_mapping");
	is($mapping->{"${name}__3"}{mappings}{properties}{kind}{type}, 'keyword',
		"$flavor: the new index has the new mappings");
	my (undef, $settings) = es('GET', "$url/${name}__3/_settings");
	is($settings->{"${name}__3"}{settings}{index}{refresh_interval}, '500ms',
		"$flavor: the new index has the new settings");
	is($node->safe_psql($db,
		"SELECT options->'mappings'->'properties'->'kind'->>'type' || ' ' || (options ? 'reindex')::text "
		  . "FROM polyglot.routes WHERE name = 'docs_$flavor'"),
		'keyword false', "$flavor: the route keeps the new mappings, and no reindex");

	$node->safe_psql($db, "SELECT polyglot.unsync('docs_$flavor')");
	es('DELETE', "$url/${name}__3");
}

$node->stop;
done_testing();
