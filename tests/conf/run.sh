#!/bin/sh
# run.sh KBRIDGE - the config cases against the real binary, from the repo root. Each
# tests/conf/bad_*.ini must make `KBRIDGE --check-config -c FILE` exit 2 with the text of its
# first line ("; expect: TEXT") on stderr. Each good_*.ini, conf/kbridge.ini and
# examples/msk.ini must exit 0 and print a dump that itself passes --check-config.
# Then every case that ini2flags.awk can write as command-line flags (one cluster, plain
# key = value lines) runs again as flags: the exit code, the message after its "FILE:LINE: " /
# "command line: --FLAG: " prefix, and for good files the dump must be the file's.
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

# The flag-only cases whose message cannot read like the file's, by design: keys in the wrong
# section or outside one, duplicate sections and an empty file have no flag form; an unknown
# key is reported as an unknown flag ('--tls-verfy', did you mean '--tls-verify'?).
flag_exempt="bad_cluster_key_in_global bad_global_key_in_cluster bad_key_outside_section
bad_duplicate_global bad_empty_file bad_no_cluster bad_unknown_key bad_unknown_global_key
bad_unknown_key_no_hint"

# strip_prefix FILE: the message without "PATH:LINE: " / "command line: --FLAG: " and with
# "line N" / "--FLAG" references to other lines as "@".
strip_prefix() {
    sed -E -e 's/^command line: (--[a-z-]+: )?//' -e 't refs' -e 's/^[^:]+(:[0-9]+)?: //' \
        -e ':refs' -e 's/(at|\() ?(line [0-9]+|--[a-z-]+|the defaults)/\1 @/g' "$1"
}

nflags=0
for f in tests/conf/bad_*.ini tests/conf/good_*.ini; do
    if echo "$flag_exempt" | tr ' ' '\n' | grep -qxF "$(basename "$f" .ini)"; then
        continue
    fi
    awk -f tests/conf/ini2flags.awk "$f" >"$tmp/flags" 2>/dev/null || continue
    nflags=$((nflags + 1))
    check "$f"
    file_rc=$rc
    strip_prefix "$tmp/err" >"$tmp/file_err"
    grep -v '^;' "$tmp/out" >"$tmp/file_out"
    # One flag per line of $tmp/flags, values with spaces included.
    old_ifs=$IFS
    IFS='
'
    # shellcheck disable=SC2046  # split on newlines on purpose
    set -- $(cat "$tmp/flags")
    IFS=$old_ifs
    "$kb" --check-config "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    strip_prefix "$tmp/err" >"$tmp/flag_err"
    if [ "$rc" -ne "$file_rc" ]; then
        why="as flags: exit $rc, as a file $file_rc: $(head -c 300 "$tmp/err")"
    elif ! cmp -s "$tmp/file_err" "$tmp/flag_err"; then
        why="as flags the message differs: '$(cat "$tmp/flag_err")' vs '$(cat "$tmp/file_err")'"
    elif [ "$rc" -eq 0 ] && ! grep -v '^;' "$tmp/out" | cmp -s - "$tmp/file_out"; then
        why="as flags the --check-config dump differs from the file's"
    elif [ "$rc" -ne 0 ] && ! head -n 1 "$tmp/err" | grep -q '^command line: '; then
        why="as flags the message does not start with 'command line: ': $(head -c 300 "$tmp/err")"
    else
        why=
    fi
    report "$f (as flags)" "$why"
done
[ "$nflags" -ge 40 ] || report "flag cases" "only $nflags files could be written as flags"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
