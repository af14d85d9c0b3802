# 015_symbols.pl: pg_polyglot.so exports only what PostgreSQL looks up by
# name, so that its internal functions never take the place of another
# library's functions of the same name (PostgreSQL loads libraries with
# RTLD_GLOBAL: the first definition of a name wins for every library loaded
# after it).
#
# 1. The dynamic symbol table of the installed library holds only _PG_init,
#    Pg_magic_func, SQL-callable functions with their pg_finfo_ records and
#    the background workers' entry points; every C function the extension's
#    SQL scripts name is among them.
# 2. Another extension that defines functions named as pg_polyglot's
#    internal ones once did (mongo_get_options, as EDB's mongo_fdw does,
#    redis_get_reply), loaded after pg_polyglot was preloaded, calls its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $lib = "$pkglibdir/pg_polyglot.so";
ok(-f $lib, "the library is installed at $lib");

# 1. The exported names
my %exported;
for my $line (split /\n/, `nm -D --defined-only $lib`)
{
	my (undef, $type, $name) = split /\s+/, $line;
	next unless defined $name && $type =~ /^[TDBRVW]$/i;
	$exported{$name} = 1;
}
ok(%exported, 'nm lists the exported symbols');

my %allowed = map { $_ => 1 }
  qw(_PG_init Pg_magic_func polyglot_launcher_main polyglot_worker_main);
for my $name (keys %exported)
{
	if ($name =~ /^pg_finfo_(.+)$/)
	{
		$allowed{$name} = 1;
		$allowed{$1} = 1;
	}
}
my @extra = sort grep { !$allowed{$_} } keys %exported;
is_deeply(\@extra, [], 'no internal function is exported')
  or diag('exported beyond what PostgreSQL needs: ' . join(' ', @extra));

my @scripts = glob("$sharedir/extension/pg_polyglot--*.sql");
ok(@scripts, 'the extension scripts are installed');
my %named;
for my $script (@scripts)
{
	open my $fh, '<', $script or die "$script: $!";
	local $/;
	my $sql = <$fh>;
	$named{$1} = 1 while $sql =~ /'MODULE_PATHNAME'\s*,\s*'([A-Za-z0-9_]+)'/g;
}
ok(%named, 'the scripts name C functions');
my @missing = sort grep { !$exported{$_} || !$exported{"pg_finfo_$_"} } keys %named;
is_deeply(\@missing, [], 'every C function the SQL scripts name is exported with its pg_finfo_ record')
  or diag('missing: ' . join(' ', @missing));

# 2. A library of another extension with functions of the same names
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $includedir = `pg_config --includedir-server`;
chomp $includedir;
open my $src, '>', "$tmp/clash.c" or die;
print $src <<'C';
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

/* non-static, default visibility, as in any extension built with PGXS */
int mongo_get_options(int x);
int redis_get_reply(int x);

int
mongo_get_options(int x)
{
	return x + 1;
}

int
redis_get_reply(int x)
{
	return x + 2;
}

PG_FUNCTION_INFO_V1(clash_probe);
Datum
clash_probe(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(mongo_get_options(PG_GETARG_INT32(0)) * 10 +
					redis_get_reply(PG_GETARG_INT32(0)));
}
C
close $src;
system('cc', '-shared', '-fPIC', '-O0', "-I$includedir", '-o', "$tmp/clash.so", "$tmp/clash.c") == 0
  or die 'could not build the test library';

my $node = PostgreSQL::Test::Cluster->new('symbols');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_polyglot'\n");
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_polyglot;
CREATE FUNCTION clash_probe(int) RETURNS int AS '$tmp/clash.so', 'clash_probe' LANGUAGE C STRICT;
});
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT clash_probe(1)');
is($out, '23', "another extension's mongo_get_options and redis_get_reply are its own")
  or diag("psql returned $ret: $err");
ok(!$node->log_contains(qr/terminated by signal/), 'no backend crashed');
($ret, $out, $err) = $node->psql('postgres',
	"CREATE SERVER bad FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port 'abc')");
like($err, qr/invalid value for option "port"|port/,
	"pg_polyglot's own validator still runs after the other library loaded");
$node->stop;

done_testing();
