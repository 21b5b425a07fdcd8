#!/bin/sh
# test_deps.sh - scripts/deps.sh, the set-up inside make demo / make test / .ci/run, against a
# fake dpkg-query, apt-get, sudo and npm on PATH (the machine running this has every package, so
# the "missing" path is simulated): what is missing gets one apt-get install, after one
# apt-get update only when there are no package lists or the install fails; nothing present
# means nothing run and well under a second; not root and no passwordless sudo stops with one
# message naming the exact command (run as nobody); kafkajs gets npm ci when node_modules is
# absent. The real package names are checked against the Debian archive index when present.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

deps=$repo/scripts/deps.sh
list=$repo/scripts/deps.list
fake=$tmp/bin
mkdir -p "$fake" "$tmp/js/node_modules"
chmod 0755 "$tmp"
echo '{}' >"$tmp/js/package-lock.json"
# dpkg-query -W -f=... PKG...: every package installed except those in $tmp/absent.
cat >"$fake/dpkg-query" <<FAKE
#!/bin/sh
shift 2
printf '%s\n' "\$@" | awk 'FILENAME != "-" { absent[\$1] = 1; next } !absent[\$1] { print \$1, "ii" }' \
    "$tmp/absent" -
FAKE
# apt-get and npm log their arguments; apt-get install fails once when $tmp/stale exists.
cat >"$fake/apt-get" <<FAKE
#!/bin/sh
echo "apt-get \$*" >>"$tmp/calls"
case \$1 in install) if [ -f "$tmp/stale" ]; then rm -f "$tmp/stale"; exit 100; fi ;; esac
exit 0
FAKE
cat >"$fake/npm" <<FAKE
#!/bin/sh
echo "npm \$* in \$(pwd)" >>"$tmp/calls"
FAKE
chmod 0755 "$fake/dpkg-query" "$fake/apt-get" "$fake/npm"
PATH_FAKE=$fake:$PATH

# rundeps GROUP...: deps.sh with the fakes; output in $tmp/out, apt/npm calls in $tmp/calls.
rundeps() {
    rm -f "$tmp/calls"
    touch "$tmp/calls"
    PATH=$PATH_FAKE KB_DEPS_KAFKAJS=$tmp/js sh "$deps" "$@" >"$tmp/out" 2>&1
}

# --- everything present: nothing runs, and it is quick -------------------------------------
: >"$tmp/absent"
touch "$tmp/js/node_modules/.package-lock.json"
# Best of three: the machine may be busy with other work.
best=
for i in 1 2 3; do
    t0=$(date +%s%N)
    rundeps test || fail "all present: exit 0 (run $i)"
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
check "all present: no apt-get, no npm" sh -c '! [ -s "$1" ]' sh "$tmp/calls"
check "all present: best of 3 runs under 0.5 s (${best} ms)" [ "$best" -lt 500 ]
check "all present: silent" sh -c '! [ -s "$1" ]' sh "$tmp/out"

# --- missing packages, as root: one install of exactly what is missing ----------------------
printf '%s\n' libinih-dev kcat >"$tmp/absent"
if [ "$(id -u)" -eq 0 ]; then
    check "missing, root: exit 0" rundeps build demo
    check "missing, root: one install of the missing two, no update (lists present)" \
        sh -c 'grep -qx "apt-get install -y -q --no-install-recommends libinih-dev kcat" "$1" &&
            [ "$(wc -l <"$1")" -eq 1 ]' sh "$tmp/calls"
    touch "$tmp/stale"
    check "missing, stale lists: install, one update, install again" rundeps build demo
    check "stale lists: the calls in order" sh -c 'printf "%s\n" \
        "apt-get install -y -q --no-install-recommends libinih-dev kcat" \
        "apt-get update -q" \
        "apt-get install -y -q --no-install-recommends libinih-dev kcat" | diff -u - "$1"' \
        sh "$tmp/calls"
    check "groups: build alone does not install demo's kcat" sh -c \
        'rm -f "$4"; PATH=$1 KB_DEPS_KAFKAJS=$2 sh "$3" build >/dev/null 2>&1 &&
            grep -q "libinih-dev$" "$4" && ! grep -q kcat "$4"' \
        sh "$PATH_FAKE" "$tmp/js" "$deps" "$tmp/calls"
else
    fail "test_deps.sh runs as root (the root path and the runuser/setpriv check need it)"
fi

# --- a tool on PATH stands in for its package (the machine's own node) ----------------------
: >"$tmp/absent"
ln -sf "$(command -v true)" "$fake/node"
check "cmd: node on PATH counts as nodejs installed" sh -c \
    'PATH=$1 KB_DEPS_KAFKAJS=$2 sh "$3" test && ! grep -q nodejs "$4"' \
    sh "$PATH_FAKE" "$tmp/js" "$deps" "$tmp/calls"

# --- kafkajs: npm ci when node_modules is absent ---------------------------------------------
rm -f "$tmp/js/node_modules/.package-lock.json"
rm -f "$tmp/calls"
PATH=$PATH_FAKE KB_DEPS_KAFKAJS=$tmp/js sh "$deps" test >"$tmp/out" 2>&1 || true
check "kafkajs absent: npm ci in its directory" \
    grep -qx "npm ci --no-audit --no-fund --loglevel=error in $tmp/js" "$tmp/calls"
check "kafkajs: not for make demo" sh -c 'rm -f "$1"; PATH=$2 KB_DEPS_KAFKAJS=$3 sh "$4" build demo \
    >/dev/null 2>&1; ! grep -q npm "$1" 2>/dev/null' sh "$tmp/calls" "$PATH_FAKE" "$tmp/js" "$deps"
touch "$tmp/js/node_modules/.package-lock.json"

# --- not root, no passwordless sudo: one message with the exact command -----------------------
printf '%s\n' libinih-dev kcat >"$tmp/absent"
cat >"$fake/sudo" <<'FAKE'
#!/bin/sh
echo "sudo: a password is required" >&2
exit 1
FAKE
chmod 0755 "$fake/sudo"
chmod -R a+rX "$tmp"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    rm -f "$tmp/calls"
    rc=0
    setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$PATH_FAKE" \
        KB_DEPS_KAFKAJS="$tmp/js" sh "$deps" build demo >"$tmp/out" 2>&1 || rc=$?
    check "nobody: exit 1" [ "$rc" -eq 1 ]
    check "nobody: one line naming the exact sudo command" sh -c '[ "$(wc -l <"$1")" -eq 1 ] &&
        grep -qF "install them with: sudo sh -c '"'"'apt-get update && apt-get install -y --no-install-recommends libinih-dev kcat'"'"'" "$1"' \
        sh "$tmp/out"
    check "nobody: nothing installed" sh -c '! [ -s "$1" ]' sh "$tmp/calls"
    rm -f "$fake/sudo"
    rc=0
    setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$PATH_FAKE" \
        KB_DEPS_KAFKAJS="$tmp/js" sh "$deps" build demo >"$tmp/out" 2>&1 || rc=$?
    check "nobody, no sudo at all: exit 1 and the su command" sh -c '[ "$2" -eq 1 ] &&
        grep -qF "install them with: su -c '"'"'apt-get update && apt-get install" "$1"' \
        sh "$tmp/out" "$rc"
fi

# --- the list itself ---------------------------------------------------------------------------
check "deps.list: every line is PACKAGE GROUP... with known groups" awk '
    { sub(/#.*/, "") } NF == 0 { next }
    NF < 2 { bad = 1; print "no group: " $0 }
    { for (i = 2; i <= NF; i++) if ($i !~ /^(build|demo|test|deb|ci|cmd:[a-z0-9.+-]+)$/) {
        bad = 1; print "bad field " $i } }
    END { exit bad }' "$list"
for p in libcurl4-openssl-dev dpkg-dev lintian debootstrap valgrind; do
    check "deps.list has $p" grep -q "^$p " "$list"
done
# Every package the list names exists in the machine's Debian archive index (apt-cache).
if command -v apt-cache >/dev/null 2>&1; then
    check "every package in deps.list is known to apt" sh -c '
        for p in $(awk "{ sub(/#.*/, \"\") } NF { print \$1 }" "$1"); do
            apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || { echo "unknown: $p"; exit 1; }
        done' sh "$list"
fi
check ".ci/run installs through deps.sh, with no apt-get line of its own" sh -c \
    'grep -q "scripts/deps.sh" "$1" && ! grep -q "apt-get install" "$1"' sh "$repo/.ci/run"
check "make demo and make test call deps.sh" sh -c \
    'grep -q "deps.sh.* demo" "$1" && grep -q "deps.sh.* test" "$1"' sh "$repo/Makefile"
check "shellcheck scripts/deps.sh" shellcheck "$deps"

finish
