# 018_exporter.pl: metrics/postgres_exporter.yaml, as shipped, read by the
# real exporter: Debian's prometheus-postgres-exporter (0.11), which
# test/stack.sh installs.  Routes in several states (active on Redis,
# MongoDB and OpenSearch, paused, backing off from a Redis that is not
# there, with a dead letter) are scraped over HTTP through a role with
# pg_monitor only, and every pg_polyglot series must carry the values
# polyglot.metrics and polyglot.dead_letters give in SQL.  A change (a
# paused route resumed and drained) shows in the next scrape.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
-x $exporter or die "$exporter is missing: test/stack.sh install installs it";
# run-tests.sh copies metrics/ beside t/; from a checkout it is two levels up
my ($queries) = grep { -r } ("$FindBin::RealBin/../metrics/postgres_exporter.yaml",
	"$FindBin::RealBin/../../metrics/postgres_exporter.yaml");
$queries or die "metrics/postgres_exporter.yaml not found";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $index = 'polyglot_tap_exporter';

# the shared stack's servers: start from nothing under this test's names
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'exporter');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$os_url/$index?ignore_unavailable=true");

my $redis_port = start_redis("$tmp/redis");
# a private Redis outlives a test that dies unless stopped here
END { local $?; stop_redis($redis_port) if $redis_port; }
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();    # nothing listens there
# someone else's string where a synced hash must go: that key fails alone
redis_cli($redis_port, 'SET', 'poison:2', 'not a hash');

# a long backoff_max: the route that backs off waits longer and longer
my $node = preloaded_node('exporter', "polyglot.max_attempts = 2\npolyglot.backoff_max = 30s\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$redis_port');
CREATE SERVER gone FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$dead_port', connect_timeout '1s');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE SERVER search FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE TABLE live (id int PRIMARY KEY, v text);
INSERT INTO live SELECT g, 'v' || g FROM generate_series(1, 10) g;
CREATE TABLE poison (id int PRIMARY KEY, v text);
INSERT INTO poison SELECT g, 'v' || g FROM generate_series(1, 5) g;
CREATE TABLE docs_live (id int PRIMARY KEY, v text);
INSERT INTO docs_live SELECT g, 'v' || g FROM generate_series(1, 3) g;
CREATE TABLE held (id int PRIMARY KEY, v text);
CREATE TABLE stuck (id int PRIMARY KEY, v text);
});
my %route;
$route{live} = $node->safe_psql($db, q{SELECT polyglot.sync('live', 'cache', '{"key": "live:{id}"}')});
$route{poison} = $node->safe_psql($db,
	q{SELECT polyglot.sync('poison', 'cache', '{"mode": "hash", "key": "poison:{id}"}')});
$route{docs} = $node->safe_psql($db, q{SELECT polyglot.sync('docs_live', 'docs', '{"collection": "exporter"}')});
$route{search} = $node->safe_psql($db, qq{SELECT polyglot.sync('docs_live', 'search', '{"index": "$index"}')});
$route{held} = $node->safe_psql($db, q{SELECT polyglot.sync('held', 'cache', '{"key": "held:{id}"}', false)});
$route{stuck} = $node->safe_psql($db, q{SELECT polyglot.sync('stuck', 'gone', '{"key": "stuck:{id}"}', false)});
$node->safe_psql($db, qq{
SELECT polyglot.pause($route{held});
INSERT INTO held SELECT g, 'v' || g FROM generate_series(1, 5) g;
INSERT INTO stuck SELECT g, 'v' || g FROM generate_series(1, 3) g;
});

# every route in its state: what SQL says of it, as "column=value ..."
sub route_sql
{
	my ($id) = @_;
	return $node->safe_psql($db, qq{
		SELECT format('pending=%s delivered=%s failed=%s dead_letters=%s backing_off=%s paused=%s',
		              pending, delivered, failed, dead_letters, backing_off, paused)
		FROM polyglot.metrics WHERE route = $id});
}
my %expected = (
	live => 'pending=0 delivered=10 failed=0 dead_letters=0 backing_off=0 paused=0',
	poison => 'pending=0 delivered=4 failed=1 dead_letters=1 backing_off=0 paused=0',
	docs => 'pending=0 delivered=3 failed=0 dead_letters=0 backing_off=0 paused=0',
	search => 'pending=0 delivered=3 failed=0 dead_letters=0 backing_off=0 paused=0',
	held => 'pending=5 delivered=0 failed=0 dead_letters=0 backing_off=0 paused=1');
for my $r (sort keys %expected)
{
	ok(wait_until(sub { route_sql($route{$r}) eq $expected{$r} }, 90), "route $r in SQL: $expected{$r}")
	  or diag('it is: ' . route_sql($route{$r}));
}
ok(wait_until(sub { route_sql($route{stuck}) =~ /^pending=3 delivered=0 .* backing_off=1 paused=0$/ }, 30),
	'route stuck in SQL: 3 pending, backing off')
  or diag('it is: ' . route_sql($route{stuck}));

# The exporter, on the first free port of 59480-59489 on loopback, as the
# monitoring role
my ($port) = grep {
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_, Listen => 1, ReuseAddr => 1);
	$s && close($s);
} 59480 .. 59489;
$port or die "no free port in 59480-59489";
my $dsn = sprintf('host=%s port=%d user=monitor dbname=%s sslmode=disable', $node->host, $node->port, $db);
my $exporter_pid = fork();
die "fork: $!" unless defined $exporter_pid;
if ($exporter_pid == 0)
{
	open STDOUT, '>', "$tmp/exporter.log";
	open STDERR, '>&', \*STDOUT;
	$ENV{DATA_SOURCE_NAME} = $dsn;
	exec($exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries")
	  or die "exec $exporter: $!";
}
END { kill 'TERM', $exporter_pid if $exporter_pid; }

# One scrape: the body of /metrics, or undef unless HTTP 200.
sub scrape
{
	my $code = `curl -s -m 10 -o $tmp/scrape.txt -w '%{http_code}' http://127.0.0.1:$port/metrics`;
	return undef unless $? == 0 && $code eq '200';
	return slurp_file("$tmp/scrape.txt");
}

my $body;
ok(wait_until(sub { defined($body = scrape()) }, 30), "the exporter answers on 127.0.0.1:$port");
unlike(slurp_file("$tmp/exporter.log"), qr/panic|duplicate label/, 'its log has no panic');
defined $body or die "the exporter does not answer: the rest cannot run";
ok(kill(0, $exporter_pid), 'the exporter still runs after the first scrape');
like($body, qr/^pg_up 1$/m, 'it reaches PostgreSQL (pg_up 1)');
like($body, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m, 'it loads the queries file');
like($body, qr/^pg_exporter_last_scrape_error 0$/m, 'the scrape ran without error');

my @gauges = qw(pending lag_seconds dead_letters backing_off paused backfilling backfill_rows);
my @counters = qw(delivered failed retries stale);
for my $c (@gauges, @counters)
{
	my $type = (grep { $_ eq $c } @counters) ? 'counter' : 'gauge';
	like($body, qr/^# TYPE pg_polyglot_route_$c $type$/m, "pg_polyglot_route_$c is a $type");
}

# The series of a scrape: { route => { column => value, labels => "k=v ..." } };
# dies on a series twice or without a route.
sub parse_series
{
	my ($text) = @_;
	my %s;
	for my $line (split /\n/, $text)
	{
		next unless $line =~ /^pg_polyglot_route_(\w+)\{([^}]*)\} (\S+)$/;
		my ($col, $labels, $value) = ($1, $2, $3);
		my %l = $labels =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		my $r = $l{route} // die "no route label: $line";
		die "two series $col of route $r" if exists $s{$r}{$col};
		$s{$r}{$col} = $value;
		my $exporter_server = delete $l{server};
		$s{$r}{labels} = join(' ', map { "$_=$l{$_}" } sort keys %l)
		  . (defined $exporter_server ? ' +server' : '');
	}
	return \%s;
}

# What SQL says of every route, in the same shape; lag_seconds apart, as it
# grows while events wait.
my @columns = grep { $_ ne 'lag_seconds' } @gauges, @counters;
sub sql_series
{
	my %s;
	for my $line (split /\n/, $node->safe_psql($db, 'SELECT route, source, server, store, '
		  . join(', ', @columns, 'lag_seconds') . ' FROM polyglot.metrics ORDER BY route'))
	{
		my ($r, $source, $server, $store, @v) = split /\|/, $line;
		$s{$r}{labels} = "route=$r source=$source store=$store store_server=$server +server";
		@{ $s{$r} }{ @columns, 'lag_seconds' } = @v;
	}
	return \%s;
}
sub without_lag
{
	my ($s) = @_;
	$s //= {};
	return join("\n", map { my $r = $_; "$r: " . join(' ', map { "$_=$s->{$r}{$_}" } 'labels', @columns) }
		sort { $a <=> $b } keys %$s);
}

# Compares a scrape with SQL read just before and just after it; the
# scrape counts only when nothing but the lag changed in between (a route
# that backs off counts a retry now and then).  Tests: each column of each
# route equals SQL's, and each lag lies between the two reads of SQL.
sub check_scrape
{
	my ($when, $wanted) = @_;
	my ($before, $scraped, $after);
	my $settled = wait_until(sub {
		$before = sql_series();
		my $text = scrape() // return 0;
		$scraped = parse_series($text);
		$after = sql_series();
		return without_lag($before) eq without_lag($after)
		  && (!$wanted || $wanted->($before));
	}, 60, 500);
	ok($settled, "$when: SQL read the same before and after a scrape");
	is(without_lag($scraped), without_lag($before),
		"$when: every route's labels and values in the scrape are SQL's");
	my @bad = grep {
		!defined $scraped->{$_}{lag_seconds}
		  || $scraped->{$_}{lag_seconds} < $before->{$_}{lag_seconds} - 1e-6
		  || $scraped->{$_}{lag_seconds} > $after->{$_}{lag_seconds} + 1e-6
	} sort keys %$before;
	ok(!@bad, "$when: each route's lag_seconds lies between SQL's before and after")
	  or diag(join('; ', map { "route $_: $before->{$_}{lag_seconds} <= "
		  . ($scraped->{$_}{lag_seconds} // 'none') . " <= $after->{$_}{lag_seconds}" } @bad));
	return $scraped;
}

# (the route to a Redis that is not there is active for a moment between
# the end of a backoff and its next attempt: a scrape of it backing off)
my $s = check_scrape('first scrape', sub { $_[0]->{$route{stuck}}{backing_off} == 1 });
is(scalar(keys %$s), 6, 'the pg_monitor role sees the six routes');
is("$s->{$route{live}}{pending} $s->{$route{live}}{delivered} $s->{$route{live}}{lag_seconds}",
	'0 10 0', 'active route: nothing pending, 10 delivered, no lag');
is($s->{$route{live}}{labels}, "route=$route{live} source=public.live store=redis store_server=cache +server",
	'labels: route, source, store, store_server, and the exporter\'s own server');
is("$s->{$route{docs}}{delivered} $s->{$route{search}}{delivered}", '3 3',
	'MongoDB and OpenSearch routes: 3 delivered each');
like($s->{$route{docs}}{labels}, qr/ store=mongo store_server=docs /, 'the MongoDB route is labelled mongo');
like($s->{$route{search}}{labels}, qr/ store=elastic store_server=search /, 'the OpenSearch route is labelled elastic');
is("$s->{$route{held}}{paused} $s->{$route{held}}{pending} $s->{$route{held}}{backing_off}", '1 5 0',
	'paused route: paused 1, 5 pending');
ok($s->{$route{held}}{lag_seconds} > 0, 'paused route: a lag');
is("$s->{$route{stuck}}{backing_off} $s->{$route{stuck}}{pending} $s->{$route{stuck}}{delivered}", '1 3 0',
	'route to a Redis that is not there: backing off, 3 pending, none delivered');
ok($s->{$route{stuck}}{retries} >= 1, "it counts retries: $s->{$route{stuck}}{retries}");
is("$s->{$route{poison}}{dead_letters} $s->{$route{poison}}{failed} $s->{$route{poison}}{delivered}", '1 1 4',
	'route with a key Redis refuses: 1 dead letter, 1 failed, 4 delivered');
my %dead = map { split /\|/ } split /\n/,
  $node->safe_psql($db, 'SELECT route_id, count(*) FROM polyglot.dead_letters GROUP BY 1');
is(join(' ', map { "$_=" . $s->{$_}{dead_letters} } sort { $a <=> $b } keys %$s),
	join(' ', map { "$_=" . ($dead{$_} // 0) } sort { $a <=> $b } keys %$s),
	'dead letters per route are the rows of polyglot.dead_letters');

# the paused route resumed and drained: the next scrape says so
$node->safe_psql($db, "SELECT polyglot.resume($route{held})");
ok(wait_until(sub { route_sql($route{held}) eq 'pending=0 delivered=5 failed=0 dead_letters=0 backing_off=0 paused=0' }, 30),
	'the resumed route delivers its 5 keys');
$s = check_scrape('after resume');
is("$s->{$route{held}}{paused} $s->{$route{held}}{pending} $s->{$route{held}}{delivered} $s->{$route{held}}{lag_seconds}",
	'0 0 5 0', 'resumed route in the scrape: not paused, nothing pending, 5 delivered, no lag');

kill 'TERM', $exporter_pid;
my $stopped = wait_until(sub { waitpid($exporter_pid, WNOHANG) == $exporter_pid }, 20);
ok($stopped, 'the exporter stops on SIGTERM');
$exporter_pid = undef if $stopped;

$node->stop;
stop_redis($redis_port);
$redis_port = undef;
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', 'exporter');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$os_url/$index?ignore_unavailable=true");
done_testing();
