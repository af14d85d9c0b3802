#!/usr/bin/env bash
#
# test/check-releases.sh - released SQL scripts are never edited.
#
# A release is a git tag vX.Y; the install and upgrade scripts it ships
# (pg_polyglot--*.sql in the tag's tree) are frozen from then on, and their
# SHA-256 is recorded in test/released-scripts.sha256, which is versioned:
# a clone without tags (CI's) still checks against it.  Checks, one "ok" or
# "not ok" line each:
#   - every recorded script is present, with its recorded checksum;
#   - for every release tag the clone has, every script in the tag's tree
#     is recorded and equals the tag's copy byte for byte;
#   - the control file's default_version has an install script, and every
#     released version an upgrade script onwards;
#   - the worker serves the objects of all those versions (served_versions
#     in src/core/dispatch.c);
#   - the library (pg_polyglot.so, when built) still defines every C
#     function any shipped script names, so that a database still at an
#     older version works with the new library until ALTER EXTENSION UPDATE.
# Exits non-zero when a check fails.
#
# Releasing version X.Y: tag vX.Y, then add the tag's new scripts to
# test/released-scripts.sha256 (sha256sum pg_polyglot--X.Y.sql ...).

set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
sums=test/released-scripts.sha256

n=0
failed=0
check() {
	# check DESCRIPTION COMMAND...: one result line
	local what=$1
	shift
	n=$((n + 1))
	local out
	if out=$("$@" 2>&1); then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

recorded_matches() {
	local want=$1 file=$2 got
	[ -f "$file" ] || { echo "$file is missing"; return 1; }
	got=$(sha256sum "$file" | cut -d' ' -f1)
	[ "$got" = "$want" ] || { echo "$file changed since its release: sha256 $got, recorded $want"; return 1; }
}

equals_tag() {
	local tag=$1 file=$2
	grep -q "  $file\$" "$sums" || { echo "$file of $tag is not recorded in $sums"; return 1; }
	git show "$tag:$file" | cmp -s - "$file" ||
		{ echo "$file differs from $tag:"; git diff --stat "$tag" -- "$file"; return 1; }
}

while read -r sum file; do
	[ -n "$sum" ] || continue
	check "$file is the released script (sha256 recorded in $sums)" recorded_matches "$sum" "$file"
done <"$sums"

tags=()
if git rev-parse --git-dir >/dev/null 2>&1; then
	mapfile -t tags < <(git tag --list 'v[0-9]*')
fi
if [ ${#tags[@]} -eq 0 ]; then
	echo "# no release tags in this clone: checked against $sums only"
fi
for tag in "${tags[@]}"; do
	while read -r file; do
		check "$file equals its copy in tag $tag" equals_tag "$tag" "$file"
	done < <(git ls-tree --name-only "$tag" | grep -E '^pg_polyglot--.*\.sql$')
done

default=$(sed -n "s/^default_version *= *'\\([^']*\\)'.*/\\1/p" pg_polyglot.control)
upgrade_paths() {
	[ -f "pg_polyglot--$default.sql" ] || { echo "no install script pg_polyglot--$default.sql"; return 1; }
	local file version
	for file in $(cut -d' ' -f3 "$sums"); do
		version=$(sed -n 's/^pg_polyglot--\([^-]*\)\.sql$/\1/p' <<<"$file")
		[ -n "$version" ] && [ "$version" != "$default" ] || continue
		ls pg_polyglot--"$version"--*.sql >/dev/null 2>&1 ||
			{ echo "no upgrade script from released version $version"; return 1; }
	done
}
check "default_version $default has an install script and every release an upgrade script" upgrade_paths

# the worker delivers only for the versions it knows (src/core/dispatch.c)
served() {
	local list version
	list=$(grep -o 'served_versions\[\] = {[^}]*}' src/core/dispatch.c)
	for version in "$default" $(cut -d' ' -f3 "$sums" | sed -n 's/^pg_polyglot--\([^-]*\)\.sql$/\1/p'); do
		grep -q "\"$version\"" <<<"$list" || { echo "served_versions in src/core/dispatch.c lacks $version: $list"; return 1; }
	done
}
check "the worker serves default_version $default and every released version" served

symbols_defined() {
	local defined missing=()
	defined=$(nm -D --defined-only pg_polyglot.so | awk '{ print $3 }')
	for sym in $(grep -h -o "'MODULE_PATHNAME', '[a-z_0-9]*'" pg_polyglot--*.sql | cut -d"'" -f4 | sort -u); do
		grep -qx "$sym" <<<"$defined" || missing+=("$sym")
	done
	[ ${#missing[@]} -eq 0 ] || { echo "not in pg_polyglot.so: ${missing[*]}"; return 1; }
}
if [ -f pg_polyglot.so ]; then
	check "pg_polyglot.so defines every C function of every shipped script" symbols_defined
fi

echo "# $((n - failed)) of $n release checks passed"
[ "$failed" -eq 0 ]
