#!/bin/sh
# deps.sh [GROUP...] - installs what kbridge's GROUPs (build demo test deb ci; default: all) need
# and is missing, from scripts/deps.list, then (test, ci) the kafkajs test's npm packages.
# make deps / demo / test / deb and .ci/run call it; when everything is there it installs
# nothing and takes a few milliseconds (one dpkg-query call).
#
# Missing packages: one `apt-get install` (after one `apt-get update` when the package lists are
# absent or the install fails on stale ones), as root or through passwordless sudo. Otherwise it
# stops (exit 1) with one message naming the exact command to run.
# Environment: KB_NO_DEPS=1 skips everything (a machine you set up yourself);
# KB_DEPS_KAFKAJS=DIR the npm project to `npm ci` (default tests/integration/kafkajs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
list=$here/deps.list
kafkajs=${KB_DEPS_KAFKAJS:-$repo/tests/integration/kafkajs}
# KB_DEPS_IAM=DIR the MSK IAM signers' npm project (default tests/integration/iam; the deps
# tests point KB_DEPS_KAFKAJS elsewhere and leave it out).
iam=${KB_DEPS_IAM-${KB_DEPS_KAFKAJS:+}}
[ -n "${KB_DEPS_KAFKAJS:-}" ] || iam=${KB_DEPS_IAM:-$repo/tests/integration/iam}
[ -z "${KB_NO_DEPS:-}" ] || exit 0
groups=${*:-all}

say() { printf 'deps: %s\n' "$*" >&2; }

# The selected lines as "PACKAGE TOOL" (TOOL "-" when the package has no cmd:).
selected=$(awk -v groups=" $groups " '
    { sub(/#.*/, "") }
    NF < 2 { next }
    {
        tool = "-"; hit = groups ~ / all /
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^cmd:/) { tool = substr($i, 5) }
            else if ($i == "ci" ? groups ~ / (ci|all) / : groups ~ (" " $i " ") || groups ~ / ci /) { hit = 1 }
        }
        if (hit && !seen[$1]++) { print $1, tool }
    }' "$list")

missing=
if ! command -v dpkg-query >/dev/null 2>&1; then
    say "no dpkg-query: not Debian/Ubuntu; install the packages of scripts/deps.list yourself (KB_NO_DEPS=1 silences this)"
else
    # One dpkg-query for every package; a tool on PATH stands in for its package.
    pkgs=$(echo "$selected" | awk '$2 == "-" { print $1 }')
    # shellcheck disable=SC2086  # one word per package
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $pkgs 2>/dev/null |
        awk '$2 == "ii" { print $1 }' || true)
    missing=$(echo "$selected" | awk -v installed="$installed" '
        BEGIN { n = split(installed, a, "\n"); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
        $2 == "-" && !ok[$1] { printf " %s", $1 }')
    for pair in $(echo "$selected" | awk '$2 != "-" { print $1 ":" $2 }'); do
        command -v "${pair#*:}" >/dev/null 2>&1 || missing="$missing ${pair%%:*}"
    done
fi

if [ -n "$missing" ]; then
    missing=${missing# }
    if [ "$(id -u)" -eq 0 ]; then
        as_root=
    elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        as_root=sudo
    else
        cmd="apt-get update && apt-get install -y --no-install-recommends $missing"
        if command -v sudo >/dev/null 2>&1; then
            cmd="sudo sh -c '$cmd'"
        else
            cmd="su -c '$cmd'"
        fi
        say "missing Debian packages ($groups): $missing; install them with: $cmd  (then run make again)"
        exit 1
    fi
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    updated=
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
        $as_root apt-get update -q
        updated=1
    fi
    # shellcheck disable=SC2086  # one word per package
    if ! $as_root apt-get install -y -q --no-install-recommends $missing; then
        [ -z "$updated" ] || exit 1
        say "install failed; refreshing the package lists once"
        $as_root apt-get update -q
        $as_root apt-get install -y -q --no-install-recommends $missing
    fi
fi

# kafkajs for the Node client test: npm ci when node_modules is absent or older than the lock.
case " $groups " in
    *" test "* | *" ci "* | *" all "*)
        # ... and the genuine MSK IAM signers that prove the test verifier (tests/integration/iam).
        for dir in "$kafkajs" $iam; do
            lock=$dir/package-lock.json
            stamp=$dir/node_modules/.package-lock.json
            # shellcheck disable=SC3013  # -nt: dash, bash and busybox sh all have it
            if [ -f "$lock" ] && { [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; }; then
                say "npm ci in $dir"
                (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
            fi
        done
        ;;
esac
