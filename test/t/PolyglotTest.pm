# PolyglotTest.pm: helpers for the TAP tests of pg_polyglot.
#
# A test that stops or crashes a store gets a Redis server of its own (a
# real redis-server on a free port, data in the test's temporary folder), so
# the shared stack is never disturbed.  Comparisons read every key back
# from Redis and every row from PostgreSQL.
package PolyglotTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(start_redis stop_redis redis_cli redis_dump table_dump
  start_ferretdb stop_ferretdb mongo_dump
  wait_until wait_drained worker_pid preloaded_node compare_store
  start_load finish_load start_account_writes finish_account_writes outage_scenario
  extension_catalog compare_catalogs compare_items_stores);

# Starts a private Redis server; returns its port.  SHUTDOWN SAVE saves to
# disk and a restart loads it back, like a durable production Redis.  @extra
# are more command-line options (e.g. --rename-command GET GET_ORIGINAL).
sub start_redis
{
	my ($dir, $port, @extra) = @_;
	$port //= PostgreSQL::Test::Cluster::get_free_port();
	mkdir $dir;
	system('redis-server', '--bind', '127.0.0.1', '--port', $port, '--dir', $dir,
		'--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no',
		'--daemonize', 'yes', '--pidfile', "$dir/redis.pid",
		'--logfile', "$dir/redis.log", @extra) == 0
	  or die "could not start redis-server";
	wait_until(sub { (redis_cli($port, 'PING') // '') eq 'PONG' }, 20)
	  or die "redis-server on port $port did not answer";
	return $port;
}

# Stops a private Redis server, saving its data first.
sub stop_redis
{
	my ($port) = @_;
	system("redis-cli -p $port SHUTDOWN SAVE >/dev/null 2>&1");
	wait_until(sub { !defined redis_cli($port, 'PING') }, 20);
}

# One command; its raw reply, or undef when Redis does not answer.
sub redis_cli
{
	my ($port, @args) = @_;
	my $cmd = join(' ', 'redis-cli', '-p', $port, map { quotemeta } @args);
	my $out = `$cmd 2>/dev/null`;
	return undef if $? != 0 || $out =~ /^Could not connect/;
	chomp $out;
	return $out;
}

# Starts a private FerretDB (the stack's binary, $FERRETDB_BIN, on SQLite
# files in $dir, which survive a restart); returns its port.
sub start_ferretdb
{
	my ($dir, $port) = @_;
	$port //= PostgreSQL::Test::Cluster::get_free_port();
	my $bin = $ENV{FERRETDB_BIN} or die "FERRETDB_BIN is not set";
	mkdir $dir;
	mkdir "$dir/data";
	mkdir "$dir/state";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDOUT, '>>', "$dir/ferretdb.log";
		open STDERR, '>&', \*STDOUT;
		exec($bin, "--listen-addr=127.0.0.1:$port", '--handler=sqlite',
			"--sqlite-url=file:$dir/data/", "--state-dir=$dir/state", '--debug-addr=-',
			'--telemetry=disable', '--log-level=warn')
		  or die "exec $bin: $!";
	}
	open my $fh, '>', "$dir/ferretdb.pid" or die;
	print $fh $pid;
	close $fh;
	wait_until(sub { defined mongo_tool("mongodb://127.0.0.1:$port", 'count', 'admin', 'x') }, 30)
	  or die "FerretDB on port $port did not answer";
	return $port;
}

# Stops a private FerretDB.
sub stop_ferretdb
{
	my ($dir) = @_;
	my $pid = slurp_file("$dir/ferretdb.pid");
	kill 'TERM', $pid;
	waitpid($pid, 0);
}

# The tests' MongoDB client ($MONGO_TOOL, pymongo); its output, or undef.
sub mongo_tool
{
	my ($uri, @args) = @_;
	my $tool = $ENV{MONGO_TOOL} or die "MONGO_TOOL is not set";
	my $cmd = join(' ', "MONGO_URI=$uri", $tool, map { quotemeta } @args);
	my $out = `$cmd 2>/dev/null`;
	return undef if $? != 0;
	return $out;
}

# Every document of a collection as canonical Extended JSON: { _id => doc }.
sub mongo_dump
{
	my ($uri, $db, $coll) = @_;
	my $out = mongo_tool($uri, 'dump', $db, $coll);
	die "could not read $db.$coll" unless defined $out;
	my %h;
	for my $line (grep { length } split /\n/, $out)
	{
		my ($id) = $line =~ /^\{"_id": (\{[^}]*\}|"[^"]*")/ or die "no _id in $line";
		$h{$id} = $line;
	}
	return \%h;
}

# Every key with a prefix and its value: { key => value }.
sub redis_dump
{
	my ($port, $prefix, $tmpdir) = @_;
	my @keys = grep { length } split /\n/,
	  `redis-cli -p $port --scan --pattern '$prefix*'`;
	my %seen;
	@keys = grep { !$seen{$_}++ } @keys;    # SCAN may return a key twice
	my %h;
	return \%h unless @keys;
	open my $fh, '>', "$tmpdir/get.cmds" or die;
	print $fh "GET $_\n" for @keys;
	close $fh;
	my @vals = split /\n/, `redis-cli -p $port < $tmpdir/get.cmds`;
	die "redis returned " . scalar(@vals) . " values for " . scalar(@keys) . " keys"
	  unless @vals == @keys;
	@h{@keys} = @vals;
	return \%h;
}

# { key => row_to_json } of a table, keys rendered as the route renders them.
sub table_dump
{
	my ($node, $db, $sql) = @_;
	my %h;
	for my $line (split /\n/, $node->safe_psql($db, $sql))
	{
		my ($k, $v) = split /\|/, $line, 2;
		$h{$k} = $v;
	}
	return \%h;
}

# Compares a store dump with a table dump; one test, with the first
# differences in the diagnostics.
sub compare_store
{
	my ($store, $table, $name) = @_;
	my @diff;
	for my $k (sort keys %$table)
	{
		push @diff, "missing $k" unless exists $store->{$k};
		push @diff, "differs $k: $store->{$k} vs $table->{$k}"
		  if exists $store->{$k} && $store->{$k} ne $table->{$k};
	}
	for my $k (sort keys %$store)
	{
		push @diff, "extra $k" unless exists $table->{$k};
	}
	ok(!@diff, $name)
	  or diag("store: " . scalar(keys %$store) . " keys, table: " . scalar(keys %$table) . " rows; " .scalar(@diff) . " differences, first: " . join("; ", @diff[0 .. ($#diff < 4 ? $#diff : 4)]));
}

# Starts pgbench running $script (pgbench's script language) against $db
# at a steady $tps from $clients clients for $seconds, its output in
# $tmp/pgbench.out and .err.  Returns the running harness, for
# finish_load() or finish_account_writes().
sub start_load
{
	my ($node, $db, $tmp, $script, $clients, $seconds, $tps) = @_;
	open my $fh, '>', "$tmp/load.sql" or die;
	print $fh $script;
	close $fh;
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', $clients, '-T', $seconds, '-R', $tps, '-f', "$tmp/load.sql",
			'-h', $node->host, '-p', $node->port, $db ],
		'>', "$tmp/pgbench.out", '2>', "$tmp/pgbench.err");
}

# Waits for a load of start_load() to end; two tests: it ran to its end,
# and it committed more than $min transactions, none failed.  Returns
# pgbench's output.
sub finish_load
{
	my ($harness, $tmp, $min) = @_;
	ok($harness->finish, 'pgbench ran to its end') or diag(slurp_file("$tmp/pgbench.err"));
	my $report = slurp_file("$tmp/pgbench.out");
	note($report);
	ok($report =~ /number of transactions actually processed: (\d+)/ && $1 > $min
		  && $report =~ /number of failed transactions: 0 /,
		'every write in PostgreSQL succeeded');
	return $report;
}

# Starts pgbench writing to accounts (id int PRIMARY KEY, balance int) for
# 40 seconds at a steady $tps, from two clients: an upsert of a random id up
# to $max_id, and with $deletes also a delete of a random id one time in
# ten.  Returns the running harness, for finish_account_writes().
sub start_account_writes
{
	my ($node, $db, $tmp, $tps, $max_id, $deletes) = @_;
	my $script = "\\set id random(1, $max_id)\n"
	  . "INSERT INTO accounts VALUES (:id, 1) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1;\n";
	$script .= "\\set del random(1, $max_id)\n"
	  . "DELETE FROM accounts WHERE id = :del AND random() < 0.1;\n"
	  if $deletes;
	return start_load($node, $db, $tmp, $script, 2, 40, $tps);
}

# Waits for the writes to end; two tests: pgbench succeeded, and no write
# failed.  Returns pgbench's output.
sub finish_account_writes
{
	my ($harness, $tmp) = @_;
	$harness->finish;
	is($?, 0, 'pgbench succeeded');
	my $out = slurp_file("$tmp/pgbench.out");
	like($out, qr/number of failed transactions: 0 /, 'no write failed in PostgreSQL during the outage');
	return $out;
}

# The outage scenario, the same for every store: a table of accounts is
# synced and its backfill delivered; after 5 of 40 seconds of steady writes
# (start_account_writes) the store goes away for 20 seconds.  Tests: the
# route backs off, status says why, a backlog builds up, the writes go on
# (finish_account_writes), the backlog drains once the store is back, the
# route is active again, the store then equals the table, and no event was
# given up.  The arguments, by name:
#   name           the cluster's name
#   store          the store's name in the tests' names ("Redis")
#   server         CREATE SERVER of a server named in sync
#   sync           the arguments of polyglot.sync after the table
#   rows, tps, max_id, deletes   the table's rows, the writes (see above)
#   stop, start    take the store away and bring it back
#   is_down        (optional) true when the store is away: one more test
#   down, back     how the tests say "while it is away", "once it is back"
#   error          what status.last_error says while it is away
#   min_tx         (optional) at least this many transactions: one more test
#   store_dump, table_sql, compared   what compare_store compares, its name
sub outage_scenario
{
	my (%s) = @_;
	my $tmp = PostgreSQL::Test::Utils::tempdir();
	my $node = preloaded_node($s{name});
	my $db = 'postgres';

	$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
$s{server};
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, $s{rows}) g;
});
	my $route = $node->safe_psql($db, "SELECT polyglot.sync('accounts', $s{sync})");
	ok(wait_drained($node, $db, 60), 'the backfill is delivered');

	my $pgbench = start_account_writes($node, $db, $tmp, $s{tps}, $s{max_id}, $s{deletes});

	sleep 5;
	$s{stop}->();
	my $stopped_at = time();
	ok($s{is_down}->(), "$s{store} is down") if $s{is_down};

	ok(wait_until(sub { $node->safe_psql($db,
		"SELECT state FROM polyglot.status WHERE route = $route") eq 'backing off' }, 15),
		"the route backs off $s{down}");
	like($node->safe_psql($db, "SELECT last_error FROM polyglot.status WHERE route = $route"),
		$s{error}, 'status says why');

	# the backlog grows while the store is away
	sleep(20 - (time() - $stopped_at)) if time() - $stopped_at < 20;
	my $backlog = $node->safe_psql($db, "SELECT pending FROM polyglot.status WHERE route = $route");
	ok($backlog > 1000, "a backlog built up during the outage: $backlog events");

	$s{start}->();
	my $out = finish_account_writes($pgbench, $tmp);
	if ($s{min_tx})
	{
		my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
		ok(($tx // 0) > $s{min_tx}, "the writes went on: " . ($tx // 0) . " transactions");
	}

	ok(wait_drained($node, $db, 120), "the backlog drains $s{back}");
	is($node->safe_psql($db, "SELECT state FROM polyglot.status WHERE route = $route"), 'active',
		'the route is active again');
	compare_store($s{store_dump}->($tmp), table_dump($node, $db, $s{table_sql}), $s{compared});
	is($node->safe_psql($db, "SELECT failed FROM polyglot.status WHERE route = $route"), '0',
		'no event was given up');

	$node->stop;
}

# Polls a condition every $interval_ms (default 100) until it holds or the
# time is up.
sub wait_until
{
	my ($cond, $timeout, $interval_ms) = @_;
	my $deadline = time() + $timeout;
	$interval_ms //= 100;
	while (time() < $deadline)
	{
		my $ok = eval { $cond->() };
		return 1 if $ok;
		usleep($interval_ms * 1000);
	}
	return 0;
}

# Waits until every route of a database is caught up: its outbox is empty
# and no backfill runs.
sub wait_drained
{
	my ($node, $db, $timeout) = @_;
	return wait_until(
		sub {
			$node->safe_psql($db, 'SELECT coalesce(sum(pending), 0) FROM polyglot.status') eq '0';
		},
		$timeout);
}

# The pid of the delivery worker of a database, or '' if none.
sub worker_pid
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
		  . "WHERE backend_type = 'pg_polyglot worker' AND datname = '$db'");
}

# A cluster with pg_polyglot preloaded; $extra_conf goes in postgresql.conf,
# $install_path (optional) names the PostgreSQL installation to run.
sub preloaded_node
{
	my ($name, $extra_conf, $install_path) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name,
		$install_path ? (install_path => $install_path) : ());
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_polyglot'
max_worker_processes = 16
polyglot.poll_interval = 200ms
polyglot.backoff_max = 2s
restart_after_crash = on
log_statement = none
});
	$node->append_conf('postgresql.conf', $extra_conf) if $extra_conf;
	$node->start;
	return $node;
}

# The SQL objects of pg_polyglot in a database, one line each, by name and
# definition (never by OID), sorted: what must be equal between a database
# updated with ALTER EXTENSION UPDATE (or moved by pg_upgrade) and a fresh
# CREATE EXTENSION.  The extension's members and their ownership, functions
# (definition, privileges (a default ACL as the default's items, as
# pg_upgrade may leave either), comment), relations (kind, options, privileges,
# row security, comment), columns (dropped ones left out, as pg_dump leaves
# them out), defaults, constraints, indexes, triggers, policies, views,
# sequences, event triggers, wrappers, the schema, the tables pg_dump
# dumps, and the dependencies between them.  (The internal triggers of
# foreign keys, named after their OIDs, are left out: their constraints
# are compared.)
sub extension_catalog
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
WITH ext AS (SELECT e.oid, e.extconfig, e.extcondition FROM pg_extension e WHERE e.extname = 'pg_polyglot'),
members AS (SELECT d.classid, d.objid FROM pg_depend d, ext
             WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype::text = 'e'),
rels AS (SELECT c.oid FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid),
parts AS (SELECT classid, objid FROM members
          UNION SELECT 'pg_constraint'::regclass, k.oid FROM pg_constraint k JOIN rels ON k.conrelid = rels.oid
          UNION SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i JOIN rels ON i.indrelid = rels.oid
          UNION SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t JOIN rels ON t.tgrelid = rels.oid WHERE NOT t.tgisinternal
          UNION SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p JOIN rels ON p.polrelid = rels.oid
          UNION SELECT 'pg_attrdef'::regclass, a.oid FROM pg_attrdef a JOIN rels ON a.adrelid = rels.oid
          UNION SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r JOIN rels ON r.ev_class = rels.oid),
lines AS (
  SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' owner ' || p.proowner::regrole
         || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x), '-') || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
         || E'\n' || pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text || ' owner ' || c.relowner::regrole
         || ' options ' || coalesce(c.reloptions::text, '-') || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(c.relacl, acldefault(CASE WHEN c.relkind::text = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) x), '-')
         || ' rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity || ' persistence ' || c.relpersistence::text
         || ' replident ' || c.relreplident::text || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
         || CASE WHEN c.relkind::text = 'v' THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
    FROM pg_class c JOIN rels ON rels.oid = c.oid
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass || ' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
         || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull ' || a.attnotnull
         || ' identity ' || a.attidentity::text || ' generated ' || a.attgenerated::text || ' storage ' || a.attstorage::text
         || ' collation ' || coalesce((SELECT l.collname FROM pg_collation l WHERE l.oid = a.attcollation), '-')
         || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
         || ' acl ' || coalesce(a.attacl::text, '-') || ' comment ' || coalesce(col_description(a.attrelid, a.attnum), '-')
    FROM pg_attribute a JOIN rels ON rels.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || k.conrelid::regclass || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
         || ' deferrable ' || k.condeferrable
    FROM pg_constraint k JOIN rels ON rels.oid = k.conrelid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' options ' || coalesce(c.reloptions::text, '-')
    FROM pg_index i JOIN rels ON rels.oid = i.indrelid JOIN pg_class c ON c.oid = i.indexrelid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
    FROM pg_trigger t JOIN rels ON rels.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'policy ' || p.polrelid::regclass || ' ' || p.polname || ' ' || p.polcmd::text || ' ' || p.polpermissive
         || ' roles ' || p.polroles::regrole[]::text || ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-')
         || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-')
    FROM pg_policy p JOIN rels ON rels.oid = p.polrelid
  UNION ALL
  SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL) || ' ' || s.seqstart
         || ' ' || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
    FROM pg_sequence s JOIN rels ON rels.oid = s.seqrelid
  UNION ALL
  SELECT 'event trigger ' || e.evtname || ' on ' || e.evtevent || ' ' || e.evtfoid::regproc || ' tags '
         || coalesce(e.evttags::text, '-') || ' enabled ' || e.evtenabled::text || ' owner ' || e.evtowner::regrole
    FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
  UNION ALL
  SELECT 'wrapper ' || w.fdwname || ' handler ' || w.fdwhandler::regproc || ' validator ' || w.fdwvalidator::regproc
         || ' options ' || coalesce(w.fdwoptions::text, '-') || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(w.fdwacl, acldefault('F', w.fdwowner))) x), '-')
         || ' comment ' || coalesce(obj_description(w.oid, 'pg_foreign_data_wrapper'), '-')
    FROM pg_foreign_data_wrapper w JOIN members m ON m.classid = 'pg_foreign_data_wrapper'::regclass AND m.objid = w.oid
  UNION ALL
  SELECT 'schema ' || n.nspname || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) x), '-')
    FROM pg_namespace n WHERE n.nspname = 'polyglot'
  UNION ALL
  SELECT 'dumped ' || c::regclass || ' where ' || coalesce(ext.extcondition[i], '-')
    FROM ext, unnest(ext.extconfig) WITH ORDINALITY AS x(c, i)
  UNION ALL
  SELECT 'depends ' || pg_describe_object(d.classid, d.objid, d.objsubid) || ' on '
         || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
    FROM pg_depend d JOIN parts p ON p.classid = d.classid AND p.objid = d.objid
   WHERE d.refclassid <> 'pg_extension'::regclass
)
SELECT string_agg(line, chr(30) ORDER BY line) FROM lines});
}

# Compares two extension_catalog() results (objects separated by the
# character 0x1e): one test, with the first objects found in one and not
# the other in the diagnostics.
sub compare_catalogs
{
	my ($got, $want, $name) = @_;
	my (%g, %w);
	$g{$_}++ for split /\x1e/, $got;
	$w{$_}++ for split /\x1e/, $want;
	my @only_got = grep { !$w{$_} } sort keys %g;
	my @only_want = grep { !$g{$_} } sort keys %w;
	ok(!@only_got && !@only_want && length($got) > 1000, $name)
	  or diag("only in the first: " . join("\n", @only_got[0 .. ($#only_got < 4 ? $#only_got : 4)])
		  . "\nonly in the second: " . join("\n", @only_want[0 .. ($#only_want < 4 ? $#only_want : 4)]));
}


# Compares the table items (id int primary key, v text) of database $db
# with each of the four stores it is synced to, one assertion per store
# (named "<store> equals the table $when"): Redis keys <prefix><id> holding
# the row as JSON, the MongoDB collection items of database $mongo_db, and
# the index $index on OpenSearch and Elasticsearch.  The stores' addresses
# come from the environment (REDIS_PORT, MONGO_URI, OPENSEARCH_URL,
# ELASTICSEARCH_URL); $tmp is a directory for redis_dump.
sub compare_items_stores
{
	my ($node, $db, $prefix, $mongo_db, $index, $tmp, $when) = @_;
	compare_store(redis_dump($ENV{REDIS_PORT}, $prefix, $tmp),
		table_dump($node, $db, qq{SELECT '$prefix' || id, row_to_json(i.*) FROM items i}),
		"Redis equals the table $when");
	compare_store(mongo_dump($ENV{MONGO_URI}, $mongo_db, 'items'),
		table_dump($node, $db, q{
			SELECT format('{"$numberInt": "%s"}', id),
			       format('{"_id": {"$numberInt": "%s"}, "id": {"$numberInt": "%s"}, "v": %s}',
			              id, id, to_json(v))
			FROM items}),
		"MongoDB equals the table $when");
	for my $store ([ 'OpenSearch', $ENV{OPENSEARCH_URL} ], [ 'Elasticsearch', $ENV{ELASTICSEARCH_URL} ])
	{
		my ($name, $url) = @$store;
		system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XPOST', "$url/$index/_refresh");
		my $hits = decode_json(`curl -s -m 60 '$url/$index/_search?size=10000'`)->{hits}{hits};
		compare_store({ map { $_->{_id} => "$_->{_source}{id}:$_->{_source}{v}" } @$hits },
			table_dump($node, $db, q{SELECT id, id || ':' || v FROM items}),
			"$name equals the table $when");
	}
	return;
}

1;
