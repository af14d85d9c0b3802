#!/usr/bin/env bash
#
# test/package.sh - the release packaging, built and installed as a user
# would: make dist (the PGXN zip), the Debian package built from that zip
# with debian/ (pg_buildext), the .deb installed with apt, a fresh PostgreSQL
# 15 cluster of its own that preloads the installed library, and the
# store-free pg_regress suites (the Makefile's REGRESS) run against it.
#
#   test/package.sh             install the .deb for real (apt-get), test,
#                               then purge it, which also removes what an
#                               earlier `make install` put in the same place:
#                               run it before `make install` (as
#                               test/run-tests.sh does)
#   test/package.sh --overlay   the same install, in a mount namespace of
#                               its own where /usr, /var and /etc are
#                               overlays: the system is left as it was (for a
#                               machine whose stack must keep running)
#   test/package.sh --extract   without apt: unpack the .deb (dpkg -x) into
#                               a private copy of PostgreSQL 15, test there
#
# Prints one "ok N - name: what" or "not ok N - name: what" line per check
# and the pg_regress output of the suites; exits non-zero when anything
# failed.
# Everything is built and run under $POLYGLOT_PACKAGE_DIR (default
# /tmp/pg_polyglot-package, emptied first), outside the repository.  Needs
# root (apt-get, dpkg) and the `postgres` user of Debian's PostgreSQL.

set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
# the cluster's user reads what is made here
umask 022

mode=install
case ${1:-} in
	'') ;;
	--extract) mode=extract ;;
	--overlay) mode=overlay ;;
	*) echo "usage: $0 [--overlay | --extract]" >&2; exit 2 ;;
esac

# --overlay: run again inside a new mount namespace, over overlays whose
# upper layers are thrown away at the end
if [ "$mode" = overlay ]; then
	if [ -z "${POLYGLOT_PACKAGE_OVERLAY:-}" ]; then
		ns=$(mktemp -d /tmp/pg_polyglot-package-ns.XXXXXX)
		status=0
		POLYGLOT_PACKAGE_OVERLAY=$ns unshare --mount --propagation private bash -c '
			set -e
			for d in usr var etc; do
				mkdir -p "$POLYGLOT_PACKAGE_OVERLAY/$d/upper" "$POLYGLOT_PACKAGE_OVERLAY/$d/work"
				o=$POLYGLOT_PACKAGE_OVERLAY/$d
				mount -t overlay overlay -o "lowerdir=/$d,upperdir=$o/upper,workdir=$o/work" "/$d"
			done
			exec "$0" --overlay' "$0" || status=$?
		rm -rf "$ns"
		exit "$status"
	fi
	mode=install
fi

PG_MAJOR=15
PACKAGE=postgresql-$PG_MAJOR-polyglot
WORK=${POLYGLOT_PACKAGE_DIR:-/tmp/pg_polyglot-package}
# the first free port of these for the cluster
PORTS=${POLYGLOT_PACKAGE_PORTS:-"55470 55471 55472 55473 55474 55475 55476 55477 55478 55479"}
# what debian/control's Build-Depends name, plus the tools used here
BUILD_PACKAGES=(
	debhelper postgresql-server-dev-all dpkg-dev
	libhiredis-dev libmongoc-dev libbson-dev libcurl4-openssl-dev pkg-config
	"postgresql-$PG_MAJOR" unzip python3 git
)

n=0
failures=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
	n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $1"
	shift
	[ $# -eq 0 ] || printf '#   %s\n' "$@"
}
check() {	# check NAME COMMAND...: one check, passed when COMMAND succeeds
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
log() { printf '# %s\n' "$*"; }
# stop: give up at a step the later ones need
stop() { fail "$1"; echo "# stopped: the checks after this one need it"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "$0 needs root (apt-get, dpkg)" >&2; exit 2; }
started=$SECONDS

# ------------------------------------------------------------ build tools
missing=()
for p in "${BUILD_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	{ timeout 300 apt-get update -qq &&
		timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
		stop "build_tools: install the build tools (${missing[*]})"
fi
pass "build_tools: build tools present (debhelper, postgresql-server-dev-all, ...)"

rm -rf "$WORK"
mkdir -p "$WORK"

# ------------------------------------------------------------- make dist
# A commit of the working tree's tracked files as they are (git stash create
# makes one without touching the tree; none when nothing changed)
ref=$(git -c user.name=package -c user.email=package@localhost stash create 2>/dev/null || true)
version=$(python3 -c 'import json; print(json.load(open("META.json"))["version"])') ||
	stop "meta_json: read the version from META.json"
zip=pg_polyglot-$version.zip
if make -s dist DIST_REF="${ref:-HEAD}" >"$WORK/dist.log" 2>&1 && [ -f "$zip" ]; then
	mv "$zip" "$WORK/"
	pass "make_dist: make dist makes $zip"
else
	cat "$WORK/dist.log"
	stop "make_dist: make dist makes $zip"
fi

# META.json: what PGXN's meta spec 1.0.0 requires, and versions that agree
# with the control file, the zip's files and debian/changelog
check "meta_json: META.json follows PGXN meta-spec 1.0.0 and agrees with the control file" \
	python3 - "$WORK/$zip" <<'EOF'
import json, re, sys, zipfile
meta = json.load(open("META.json"))
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
prefix = "pg_polyglot-%s/" % meta["version"]
semver = re.compile(r"^\d+\.\d+\.\d+$")
problems = []
for key in ("name", "abstract", "maintainer", "license", "provides", "version", "meta-spec"):
    if key not in meta:
        problems.append("no %s" % key)
if meta.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("meta-spec version is not 1.0.0")
if meta.get("name") != "pg_polyglot" or meta.get("license") != "postgresql":
    problems.append("name or license")
if not semver.match(meta.get("version", "")):
    problems.append("version %r is not x.y.z" % meta.get("version"))
control = open("pg_polyglot.control").read()
default = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M).group(1)
for ext, p in meta.get("provides", {}).items():
    # SQL version 1.1 is release 1.1.0 (or 1.1.1, a fix of the library only)
    if p.get("version") != meta["version"] or not meta["version"].startswith(default + "."):
        problems.append("%s: version %s, META.json %s, control file default_version %s"
                        % (ext, p.get("version"), meta["version"], default))
    for key in ("file", "docfile"):
        if prefix + p.get(key, "") not in names:
            problems.append("%s: %s %r is not in the zip" % (ext, key, p.get(key)))
req = meta.get("prereqs", {}).get("runtime", {}).get("requires", {})
if req.get("PostgreSQL") != "14.0.0":
    problems.append("runtime PostgreSQL requirement %r" % req.get("PostgreSQL"))
for tag in meta.get("tags", []):
    if not tag or len(tag) > 255:
        problems.append("tag %r" % tag)
if problems:
    sys.exit("; ".join(problems))
EOF

# The zip: every install and upgrade script, the sources, the store-free
# suites (with the one file of test/ they use), README, LICENSE, CHANGELOG;
# none of the project's own test machinery, benchmarks, CI or Debian
# packaging
check "dist_contents: the zip has what a build needs and nothing of the tests' machinery" \
	python3 - "$WORK/$zip" "$version" <<'EOF'
import subprocess, sys, zipfile
names = {n.split("/", 1)[1] for n in zipfile.ZipFile(sys.argv[1]).namelist()}
tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True,
                         check=True).stdout.split()
want = ["Makefile", "pg_polyglot.control", "META.json", "README.md", "LICENSE",
        "CHANGELOG.md", "test/regress.conf", "test/integration/sql/setup.psql"]
want += [f for f in tracked if f.startswith("pg_polyglot--") and f.endswith(".sql")]
want += [f for f in tracked if f.startswith(("src/", "sql/", "expected/"))]
problems = ["missing " + f for f in want if f not in names]
problems += ["has " + f for f in names
             if not f.endswith("/") and f not in want
             and f.startswith(("test/", "bench/", "demo/", ".ci/", "debian/"))]
if problems:
    sys.exit("; ".join(problems))
EOF

# --------------------------------------------------------- the .deb
# Built as a Debian maintainer builds it: the release zip, debian/ added
src=$WORK/build/pg_polyglot-$version
mkdir -p "$WORK/build"
(cd "$WORK/build" && unzip -q "$WORK/$zip") || stop "dist_unpack: unpack $zip"
cp -r debian "$src/"
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
if [ "${deb_version%-*}" = "$version" ]; then
	pass "deb_version: debian/changelog's version $deb_version is META.json's $version"
else
	fail "deb_version: debian/changelog's version $deb_version is META.json's $version"
fi
check "deb_control: debian/control is up to date (pg_buildext checkcontrol)" \
	bash -c "cd '$src' && pg_buildext checkcontrol"
check "build_deps: the build dependencies are installed (dpkg-checkbuilddeps)" \
	bash -c "cd '$src' && dpkg-checkbuilddeps"
build_started=$SECONDS
# Debian builds without -Werror, whatever CI says (debian/rules): the
# warnings are checked here instead
if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
	pass "deb_build: dpkg-buildpackage -us -uc -b builds $PACKAGE ($((SECONDS - build_started)) s)"
else
	tail -n 40 "$WORK/build.log"
	stop "deb_build: dpkg-buildpackage -us -uc -b builds $PACKAGE"
fi
if grep -i -E 'warning' "$WORK/build.log" >"$WORK/warnings.log"; then
	fail "deb_warnings: the package builds without warnings (Debian's flags)" \
		"$(head -n 20 "$WORK/warnings.log")"
else
	pass "deb_warnings: the package builds without warnings (Debian's flags)"
fi
deb=$(ls "$WORK/build/${PACKAGE}_${deb_version}_"*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || stop "deb_build: the build made ${PACKAGE}_${deb_version}_*.deb"
depends=$(dpkg-deb -f "$deb" Depends)
missing=()
for lib in "postgresql-$PG_MAJOR " libhiredis libmongoc-1.0 libbson-1.0 libcurl; do
	case " $depends" in *" $lib"*) ;; *) missing+=("$lib") ;; esac
done
if [ ${#missing[@]} -eq 0 ]; then
	pass "deb_depends: the package depends on PostgreSQL $PG_MAJOR and the store libraries"
else
	fail "deb_depends: the package depends on PostgreSQL $PG_MAJOR and the store libraries" \
		"Depends: $depends" "missing: ${missing[*]}"
fi

# --------------------------------------------------- install the package
bindir=/usr/lib/postgresql/$PG_MAJOR/bin
if [ "$mode" = install ]; then
	log "installing $(basename "$deb") with apt-get"
	# whatever happens next, the package does not outlive this script
	trap 'dpkg --purge "$PACKAGE" >/dev/null 2>&1 || true' EXIT
	if DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
		--allow-downgrades --reinstall "$deb" >"$WORK/apt.log" 2>&1; then
		pass "deb_install: apt-get installs $(basename "$deb")"
	else
		cat "$WORK/apt.log"
		stop "deb_install: apt-get installs $(basename "$deb")"
	fi
	installed=$(dpkg -L "$PACKAGE")
	root=
else
	# a private PostgreSQL 15: Debian's binaries find their share and lib
	# directories relative to themselves, so a copy under ROOT uses ROOT's
	root=$WORK/root
	mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
	cp -a "/usr/lib/postgresql/$PG_MAJOR" "$root/usr/lib/postgresql/"
	cp -a "/usr/share/postgresql/$PG_MAJOR" "$root/usr/share/postgresql/"
	rm -f "$root/usr/lib/postgresql/$PG_MAJOR/lib/pg_polyglot".* \
		"$root/usr/share/postgresql/$PG_MAJOR/extension/pg_polyglot"*
	dpkg -x "$deb" "$root" || stop "deb_install: dpkg -x $(basename "$deb")"
	pass "deb_install: dpkg -x unpacks $(basename "$deb") over a copy of PostgreSQL $PG_MAJOR"
	installed=$(dpkg-deb -c "$deb" | awk '{ print substr($6, 2) }')
	bindir=$root$bindir
fi
want=("/usr/lib/postgresql/$PG_MAJOR/lib/pg_polyglot.so"
	"/usr/share/postgresql/$PG_MAJOR/extension/pg_polyglot.control"
	"/usr/share/doc/$PACKAGE/copyright")
for f in pg_polyglot--*.sql; do
	want+=("/usr/share/postgresql/$PG_MAJOR/extension/$f")
done
missing=()
for f in "${want[@]}"; do
	grep -qx -- "$f" <<<"$installed" || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then
	pass "deb_files: the package installs the library, the control file and ${#want[@]} files in all"
else
	fail "deb_files: the package installs the library, the control file and every script" \
		"missing: ${missing[*]}"
fi
lib=/usr/lib/postgresql/$PG_MAJOR/lib/pg_polyglot.so
if cmp -s "$root$lib" "$src/debian/$PACKAGE$lib"; then
	pass "deb_library: the installed library is the package's"
else
	fail "deb_library: the installed library is the package's"
fi

# ------------------------------------------------- a fresh cluster on it
port=
for p in $PORTS; do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || stop "cluster_port: a free port among $PORTS"
cluster=$WORK/cluster
mkdir -p "$cluster"
chown postgres: "$cluster"
as_pg() { runuser -u postgres -- "$@"; }
stop_cluster() {
	as_pg "$bindir/pg_ctl" -D "$cluster/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}
trap 'stop_cluster; [ "$mode" != install ] || dpkg --purge "$PACKAGE" >/dev/null 2>&1 || true' EXIT
as_pg "$bindir/initdb" -D "$cluster/data" -U postgres --auth=trust --no-instructions \
	>"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; stop "cluster_initdb: initdb a cluster"; }
cat >>"$cluster/data/postgresql.conf" <<-EOF
	port = $port
	listen_addresses = ''
	unix_socket_directories = '$cluster'
	shared_preload_libraries = 'pg_polyglot'
EOF
if as_pg "$bindir/pg_ctl" -D "$cluster/data" -l "$cluster/postgres.log" -w -t 60 start \
	>/dev/null; then
	pass "cluster_start: a fresh PostgreSQL $PG_MAJOR cluster preloading the library starts (port $port)"
else
	tail -n 20 "$cluster/postgres.log"
	stop "cluster_start: a fresh PostgreSQL $PG_MAJOR cluster preloading the library starts"
fi
psql=("$bindir/psql" -X -A -t -v ON_ERROR_STOP=1 -h "$cluster" -p "$port" -U postgres -d postgres)
default=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" pg_polyglot.control)
got=$("${psql[@]}" -c 'CREATE EXTENSION pg_polyglot' \
	-c "SELECT extversion FROM pg_extension WHERE extname = 'pg_polyglot'" 2>&1 | tail -n 1)
if [ "$got" = "$default" ]; then
	pass "create_extension: CREATE EXTENSION pg_polyglot installs version $default"
else
	fail "create_extension: CREATE EXTENSION pg_polyglot installs version $default" "$got"
fi
# the postmaster maps the package's library, not another one
pid=$(head -n 1 "$cluster/data/postmaster.pid")
mapped=$(grep '/pg_polyglot\.so$' "/proc/$pid/maps" | awk '{ print $6 }' | sort -u)
if [ "$mapped" = "$root$lib" ]; then
	pass "preload: the postmaster has preloaded $root$lib"
else
	fail "preload: the postmaster has preloaded $root$lib" "mapped: ${mapped:-none}"
fi

# The store-free suites, from the release's own sql/ and expected/
regress=$(make -s -C "$src" print-regress 2>/dev/null)
pg_regress=$root/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test/regress/pg_regress
mkdir -p "$WORK/regress"
log "pg_regress: $regress"
# from the unpacked release, as make installcheck runs there (a suite
# includes a file by a path relative to the top of the tree)
(cd "$src" && "$pg_regress" --inputdir=. --outputdir="$WORK/regress" --bindir="$bindir" \
	--host="$cluster" --port="$port" --user=postgres --dbname=contrib_regression \
	--load-extension=pg_polyglot $regress) 2>&1 || failures=$((failures + 1))
stop_cluster

# ------------------------------------------------------------- clean up
if [ "$mode" = install ]; then
	if dpkg --purge "$PACKAGE" >"$WORK/purge.log" 2>&1 &&
		[ ! -e "/usr/lib/postgresql/$PG_MAJOR/lib/pg_polyglot.so" ]; then
		pass "deb_purge: dpkg --purge removes $PACKAGE and its files"
	else
		cat "$WORK/purge.log"
		fail "deb_purge: dpkg --purge removes $PACKAGE and its files"
	fi
fi
trap - EXIT
log "done in $((SECONDS - started)) s; diffs, if any: $WORK/regress/regression.diffs"
[ "$failures" -eq 0 ]
