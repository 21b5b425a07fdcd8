# lib.sh - shared by tests/deploy/test_*.sh: one "ok"/"FAIL" line per check, counts, temp dir.
# shellcheck shell=sh
# Sourced after `set -eu`. Provides: ok, fail, check DESC CMD..., need TOOL PACKAGE, finish,
# $repo (absolute), $KBRIDGE (absolute path of the binary under test), $tmp (removed on exit).

KB_PASS=0
KB_FAIL=0
repo=$(cd "$(dirname "$0")/../.." && pwd)
KBRIDGE=${KBRIDGE:-${KB_BUILD:-$repo/build}/kbridge}
case $KBRIDGE in /*) ;; *) KBRIDGE=$repo/$KBRIDGE ;; esac
PYTHON=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kbridge-deploy-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

ok() {
    KB_PASS=$((KB_PASS + 1))
    printf 'ok   %s\n' "$*"
}

fail() {
    KB_FAIL=$((KB_FAIL + 1))
    printf 'FAIL %s\n' "$*"
}

# check DESC CMD...: runs CMD (bounded by the caller), shows the tail of its output on failure.
check() {
    kb_desc=$1
    shift
    if kb_out=$("$@" 2>&1); then
        ok "$kb_desc"
    else
        fail "$kb_desc"
        printf '%s\n' "$kb_out" | tail -n 15 | sed 's/^/     | /'
    fi
}

# need TOOL PACKAGE: a missing tool is a failure, not a skip, so CI cannot pass by accident.
need() {
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    fail "$1 is installed (apt-get install $2)"
    return 1
}

need_kbridge() {
    if [ -x "$KBRIDGE" ]; then
        return 0
    fi
    fail "kbridge binary $KBRIDGE exists (run make first, or set KB_BUILD)"
    return 1
}

finish() {
    printf '# %s: %d passed, %d failed\n' "$(basename "$0")" "$KB_PASS" "$KB_FAIL"
    [ "$KB_FAIL" -eq 0 ]
}
