#!/bin/sh
# run.sh KBRIDGE - the config cases against the real binary, from the repo root. Each
# tests/conf/bad_*.ini must make `KBRIDGE --check-config -c FILE` exit 2 with the text of its
# first line ("; expect: TEXT") on stderr. Each good_*.ini, conf/kbridge.ini and
# examples/msk.ini must exit 0 and print a dump that itself passes --check-config.
set -u
kb=${1:?usage: run.sh KBRIDGE_BINARY}
case $kb in /*) ;; *) kb=$PWD/$kb ;; esac
cd "$(dirname "$0")/../.." || exit 1

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# report CASE WHY: WHY is empty when the case passed.
report() {
    if [ -z "$2" ]; then
        pass=$((pass + 1))
        echo "ok   $1"
    else
        fail=$((fail + 1))
        echo "FAIL $1: $2"
    fi
}

# check FILE: runs the binary on FILE, sets rc; stdout and stderr land in $tmp.
check() {
    "$kb" --check-config -c "$1" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    # Every password under tests/conf/secrets/ contains "kbsecret": none may ever be printed.
    if grep -q kbsecret "$tmp/out" "$tmp/err"; then
        rc=99
        echo "a password from tests/conf/secrets was printed" >>"$tmp/err"
    fi
}

for f in tests/conf/bad_*.ini; do
    expect=$(sed -n '1s/^; expect: //p' "$f")
    check "$f"
    if [ -z "$expect" ]; then
        why="first line is not '; expect: TEXT'"
    elif [ "$rc" -ne 2 ]; then
        why="exit $rc, want 2: $(head -c 300 "$tmp/err")"
    elif ! grep -qF -- "$expect" "$tmp/err"; then
        why="stderr lacks '$expect'; got: $(head -c 300 "$tmp/err")"
    else
        why=
    fi
    report "$f" "$why"
done

for f in tests/conf/good_*.ini conf/kbridge.ini examples/msk.ini; do
    check "$f"
    if [ "$rc" -ne 0 ]; then
        why="exit $rc, want 0: $(head -c 300 "$tmp/err")"
    elif ! grep -q '^\[global\]' "$tmp/out"; then
        why="no configuration dump on stdout"
    else
        cp "$tmp/out" "$tmp/dump.ini"
        check "$tmp/dump.ini"
        why=
        [ "$rc" -eq 0 ] || why="its dump fails --check-config (exit $rc): $(head -c 300 "$tmp/err")"
    fi
    report "$f" "$why"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
