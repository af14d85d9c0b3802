#!/usr/bin/env bash
#
# bench/latency_redis.sh - commit-to-visible latency of sync to Redis at a
# steady commit rate.
#
# pgbench commits single-row INSERTs at a fixed rate into a table synced in
# publish mode; each row carries the time of its statement (clock_timestamp(),
# as epoch seconds), and a subscriber on the route's channel timestamps every
# message as it arrives.  The latency of a change is arrival - statement
# time: the commit itself, the wake-up of the worker, reading the change and
# the row, and the PUBLISH.  Publish mode takes the same path through the
# worker as the other modes (one pipeline per batch); only the command
# differs.
#
# Baseline, measured in the same run: the same subscriber timing messages
# that a client PUBLISHes itself at the same rate, i.e. what Redis pub/sub
# alone costs on this machine.
#
# Runs against the local stack (test/stack.sh start), in database
# "bench_latency", which it recreates.  Not a test: it never fails on a
# timing.
#
# Usage: [SYNC_COMMIT=off|on] bench/latency_redis.sh [commits/s, default 500] [seconds, default 30]
# SYNC_COMMIT (default off) is synchronous_commit for pgbench's sessions:
# with on, the WAL flush of each commit (after the statement's timestamp)
# counts in the latency too.

set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(test/stack.sh env)"
RATE=${1:-500}
SECS=${2:-30}
DB=bench_latency
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Subscribes to a channel on Redis for a number of seconds; each message must
# hold "t":<epoch seconds>; prints count, p50, p90, p99 and max of
# arrival - t in milliseconds.  Core Perl only: RESP over a socket.
cat > "$TMP/subscribe.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);

my ($port, $channel, $secs) = @ARGV;
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
print $sock "*2\r\n\$9\r\nSUBSCRIBE\r\n\$" . length($channel) . "\r\n$channel\r\n";
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
  my $n = sysread($sock, $buf, 65536, length $buf);
  last unless $n;
  my $now = time;
  # every "t":<number> in what arrived is one message
  while ($buf =~ /"t":\s*([0-9.]+)/g) { push @lat, ($now - $1) * 1000; }
  # keep an incomplete tail for the next read
  my $cut = rindex($buf, "\r\n");
  $buf = $cut >= 0 ? substr($buf, $cut + 2) : $buf;
}
@lat = sort { $a <=> $b } @lat;
my $q = sub { @lat ? $lat[int($_[0] * $#lat + 0.5)] : 0 };
printf "%d %.2f %.2f %.2f %.2f\n", scalar @lat, $q->(0.5), $q->(0.9), $q->(0.99), $q->(1);
PERL

# Publishes {"t":<now>} to a channel at a fixed rate for a number of seconds.
cat > "$TMP/publish.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($port, $channel, $rate, $secs) = @ARGV;
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
my $start = time;
for (my $i = 0; $i < $rate * $secs; $i++) {
  my $due = $start + $i / $rate;
  my $wait = $due - time;
  sleep($wait) if $wait > 0;
  my $msg = sprintf('{"t":%.6f}', time);
  print $sock "*3\r\n\$7\r\nPUBLISH\r\n\$" . length($channel) . "\r\n$channel\r\n\$" . length($msg) . "\r\n$msg\r\n";
  $sock->flush;
  sysread($sock, my $reply, 64);
}
PERL

# runs a subscriber in the background until it has subscribed
subscribe() { # channel seconds output
	perl "$TMP/subscribe.pl" "$REDIS_PORT" "$1" "$2" > "$3" &
	until grep -q ready "$3" 2>/dev/null; do sleep 0.05; done
}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (port '$REDIS_PORT');
CREATE TABLE lat (id bigserial PRIMARY KEY, t float8 NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
                  payload text);
SELECT polyglot.sync('lat', 'cache', '{"mode": "publish", "channel": "bench:latency"}');
SQL
echo "INSERT INTO lat (payload) VALUES ('x');" > "$TMP/insert.sql"

echo "== baseline: a client PUBLISHes at $RATE/s for ${SECS}s"
subscribe bench:baseline $((SECS + 2)) "$TMP/base"
perl "$TMP/publish.pl" "$REDIS_PORT" bench:baseline "$RATE" "$SECS"
wait
read -r bn b50 b90 b99 bmax < <(tail -1 "$TMP/base")

echo "== pg_polyglot: pgbench commits at $RATE/s for ${SECS}s (synchronous_commit ${SYNC_COMMIT:-off})"
subscribe bench:latency $((SECS + 3)) "$TMP/sync"
worker=$(psql -X -At -d "$DB" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_polyglot worker' AND datname = current_database()")
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }
t0=$(cpu_ticks)
PGOPTIONS="-c synchronous_commit=${SYNC_COMMIT:-off}" \
	pgbench -n -c 2 -j 2 -R "$RATE" -T "$SECS" -f "$TMP/insert.sql" "$DB" > "$TMP/pgbench" 2>&1
t1=$(cpu_ticks)
wait
read -r sn s50 s90 s99 smax < <(tail -1 "$TMP/sync")
commits=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM lat")

printf '%-26s %8s %8s %8s %8s %8s\n' "" messages "p50 ms" "p90 ms" "p99 ms" "max ms"
printf '%-26s %8s %8s %8s %8s %8s\n' "Redis PUBLISH (baseline)" "$bn" "$b50" "$b90" "$b99" "$bmax"
printf '%-26s %8s %8s %8s %8s %8s\n' "commit -> Redis (synced)" "$sn" "$s50" "$s90" "$s99" "$smax"
echo "commits: $commits, messages received: $sn, worker CPU: $(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v s="$SECS" 'BEGIN { printf "%.1f%%", 100 * t / hz / s }') of one core"

psql -X -q -d postgres -c "DROP DATABASE $DB"
