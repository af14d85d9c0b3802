#!/usr/bin/env bash
#
# bench/worker_cpu.sh - what the delivery workers cost at a steady commit
# rate, and the commit-to-visible latency they keep meanwhile.
#
# pgbench commits single-row upserts at a fixed rate into a table synced to
# Redis in json mode (SET of the row as JSON), with the stack's workers
# (polyglot.workers).  Each row carries the time of its statement
# (clock_timestamp() as epoch seconds); a client on Redis's MONITOR sees every
# SET with its value and timestamps it, so the latency of a change is the
# arrival of its SET minus its statement time.  The CPU is the user + system
# time of every pg_polyglot worker of the database, read from /proc before
# and after, as a share of one core over the run.
#
# Optionally, IDLE_ROUTES more tables are synced to the same Redis and see no
# writes: what a round costs per route that has nothing to deliver.
#
# Baseline, measured in the same run: the same MONITOR client timing SETs
# that a client sends itself at the same rate (what Redis and the MONITOR
# cost on this machine), and the workers' CPU over the same time with no
# writes at all.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_worker_cpu", which it recreates.  Not a test: it never fails on a
# timing.
#
# Usage: [IDLE_ROUTES=40] bench/worker_cpu.sh [commits/s, default 500] [seconds, default 20]

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
RATE=${1:-500}
SECS=${2:-20}
IDLE=${IDLE_ROUTES:-0}
DB=bench_worker_cpu
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Watches Redis's MONITOR for a number of seconds; every SET of a key with the
# given prefix must carry "t":<epoch seconds> in its value; prints count,
# p50, p90, p99 and max of arrival - t in milliseconds.  Core Perl only.
cat > "$TMP/monitor.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);

my ($port, $prefix, $secs) = @ARGV;
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
print $sock "*1\r\n\$7\r\nMONITOR\r\n";
$sock->flush;
print STDOUT "ready\n";
STDOUT->flush;
my @lat;
my $end = time + $secs;
my $buf = '';
while (time < $end) {
  my $rin = '';
  vec($rin, fileno($sock), 1) = 1;
  next unless select(my $rout = $rin, undef, undef, 0.2);
  my $n = sysread($sock, $buf, 1 << 20, length $buf);
  last unless $n;
  my $now = time;
  my $cut = rindex($buf, "\r\n");
  next if $cut < 0;
  for my $line (split /\r\n/, substr($buf, 0, $cut)) {
    next unless $line =~ /"SET" "\Q$prefix\E/i;
    push @lat, ($now - $1) * 1000 if $line =~ /\\"t\\":\s*([0-9.]+)/;
  }
  $buf = substr($buf, $cut + 2);
}
@lat = sort { $a <=> $b } @lat;
my $q = sub { @lat ? $lat[int($_[0] * $#lat + 0.5)] : 0 };
printf "%d %.2f %.2f %.2f %.2f\n", scalar @lat, $q->(0.5), $q->(0.9), $q->(0.99), $q->(1);
PERL

# SETs {"t":<now>} under keys of a prefix at a fixed rate for a number of seconds.
cat > "$TMP/set.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($port, $prefix, $rate, $secs) = @ARGV;
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
my $start = time;
for (my $i = 0; $i < $rate * $secs; $i++) {
  my $due = $start + $i / $rate;
  my $wait = $due - time;
  sleep($wait) if $wait > 0;
  my $key = $prefix . ($i % 10000);
  my $msg = sprintf('{"t":%.6f}', time);
  print $sock "*3\r\n\$3\r\nSET\r\n\$" . length($key) . "\r\n$key\r\n\$" . length($msg) . "\r\n$msg\r\n";
  $sock->flush;
  sysread($sock, my $reply, 64);
}
PERL

# runs a MONITOR client in the background until it is listening
monitor() { # prefix seconds output
	perl "$TMP/monitor.pl" "$REDIS_PORT" "$1" "$2" > "$3" &
	until grep -q ready "$3" 2>/dev/null; do sleep 0.05; done
}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE kv (id int PRIMARY KEY, v text, t float8 NOT NULL);
SELECT polyglot.sync('kv', 'cache', '{"key": "bench:cpu:{id}"}');
DO \$\$
BEGIN
  FOR i IN 1..$IDLE LOOP
    EXECUTE format('CREATE TABLE idle_%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO idle_%s VALUES (1, %L)', i, 'x');
    PERFORM polyglot.sync(format('idle_%s', i)::regclass, 'cache',
                          jsonb_build_object('key', format('bench:idle:%s:{id}', i)));
  END LOOP;
END
\$\$;
SQL
# the backfills of the idle routes are delivered before anything is timed
psql -X -q -d "$DB" -c "SELECT polyglot.await_delivery('60s')" > /dev/null
until [ "$(psql -X -At -d "$DB" -c "SELECT coalesce(sum(pending), 0) FROM polyglot.status")" = 0 ]; do sleep 0.2; done

cat > "$TMP/upsert.sql" <<'SQL'
\set id random(1, 10000)
INSERT INTO kv VALUES (:id, 'x', extract(epoch FROM clock_timestamp()))
  ON CONFLICT (id) DO UPDATE SET v = excluded.v, t = excluded.t;
SQL

workers=$(psql -X -At -d "$DB" -c "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'pg_polyglot worker%' AND datname = current_database()")
cpu_ticks() { local t=0 pid; for pid in $workers; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo "$t"; }
share() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v s="$SECS" 'BEGIN { printf "%.1f%%", 100 * t / hz / s }'; }
nworkers=$(echo "$workers" | wc -w)

echo "== baseline: the workers with no writes for ${SECS}s ($nworkers workers, $((IDLE + 1)) routes)"
t0=$(cpu_ticks); sleep "$SECS"; t1=$(cpu_ticks)
idle_cpu=$(share $((t1 - t0)))

echo "== baseline: a client SETs at $RATE/s for ${SECS}s"
monitor bench:base: $((SECS + 2)) "$TMP/base"
perl "$TMP/set.pl" "$REDIS_PORT" bench:base: "$RATE" "$SECS"
wait
read -r bn b50 b90 b99 bmax < <(tail -1 "$TMP/base")

echo "== pg_polyglot: pgbench upserts at $RATE/s for ${SECS}s (synchronous_commit ${SYNC_COMMIT:-off})"
monitor bench:cpu: $((SECS + 3)) "$TMP/sync"
t0=$(cpu_ticks)
PGOPTIONS="-c synchronous_commit=${SYNC_COMMIT:-off}" \
	pgbench -n -c 2 -j 2 -R "$RATE" -T "$SECS" -f "$TMP/upsert.sql" "$DB" > "$TMP/pgbench" 2>&1
t1=$(cpu_ticks)
wait
read -r sn s50 s90 s99 smax < <(tail -1 "$TMP/sync")
commits=$(awk '/number of transactions actually processed/ { print $NF }' "$TMP/pgbench")
busy_cpu=$(share $((t1 - t0)))

printf '%-28s %8s %8s %8s %8s %8s %10s\n' "" SETs "p50 ms" "p90 ms" "p99 ms" "max ms" "worker CPU"
printf '%-28s %8s %8s %8s %8s %8s %10s\n' "client SET (baseline)" "$bn" "$b50" "$b90" "$b99" "$bmax" "$idle_cpu"
printf '%-28s %8s %8s %8s %8s %8s %10s\n' "commit -> Redis (synced)" "$sn" "$s50" "$s90" "$s99" "$smax" "$busy_cpu"
echo "rate $RATE/s, ${SECS}s, $nworkers workers, $((IDLE + 1)) routes: commits $commits, SETs seen $sn;" \
	"worker CPU (all workers, share of one core) $busy_cpu, $idle_cpu with no writes;" \
	"p50 $(awk -v a="$s50" -v b="$b50" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')x and p99 $(awk -v a="$s99" -v b="$b99" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')x the client's"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
