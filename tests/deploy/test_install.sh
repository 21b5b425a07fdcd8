#!/bin/sh
# test_install.sh - `make install` / `make uninstall` with DESTDIR and PREFIX: the file list,
# modes, the unit's paths following PREFIX, an existing kbridge.ini left alone, the installed
# unit verifying with its man pages found (systemd-analyze resolves Documentation=man:...),
# and the installed man pages rendering.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

need make make || true
need_kbridge || exit 1

# -o: never rebuild the binary under test.
set -- -f "$repo/Makefile"
build=$(dirname "$KBRIDGE")
mk() {
    timeout 120 make --no-print-directory -C "$repo" "$@" BUILD="$build" -o "$KBRIDGE"
}

# --- PREFIX=/usr, into an image root that already has an operator's kbridge.ini ---------------
d=$tmp/usr-root
mkdir -p "$d/etc/kbridge"
echo "; the operator's file" >"$d/etc/kbridge/kbridge.ini"
check "make install DESTDIR=... PREFIX=/usr" mk "$@" install DESTDIR="$d" PREFIX=/usr
cat >"$tmp/expected" <<'LIST'
644 etc/kbridge/kbridge.ini
644 etc/kbridge/kbridge.ini.example
644 usr/lib/systemd/system/kbridge.service
644 usr/lib/sysusers.d/kbridge.conf
644 usr/share/man/man1/kbridge.1
644 usr/share/man/man5/kbridge.ini.5
755 usr/bin/kbridge
LIST
check "installed files and modes (PREFIX=/usr)" sh -c 'files() { (cd "$1" && find . \( -type f -o -type l \) -printf "%m %P\n" | sort); }
    files "$1" | diff -u "$2" -' sh "$d" "$tmp/expected"
check "existing kbridge.ini not overwritten" grep -qx "; the operator's file" "$d/etc/kbridge/kbridge.ini"
check "installed binary runs" "$d/usr/bin/kbridge" --version
check "example config passes --check-config" "$d/usr/bin/kbridge" --check-config \
    -c "$d/etc/kbridge/kbridge.ini.example"
unit=$d/usr/lib/systemd/system/kbridge.service
check "unit runs \$(PREFIX)/bin/kbridge: ExecStart=/usr/bin/kbridge -c /etc/kbridge/kbridge.ini" \
    grep -qx 'ExecStart=/usr/bin/kbridge -c /etc/kbridge/kbridge.ini' "$unit"
check "unit has no /usr/local path left" sh -c '! grep -v "^#" "$1" | grep -n /usr/local' sh "$unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$tmp/verify"
    sed "s|/usr/bin/kbridge|$d/usr/bin/kbridge|g" "$unit" >"$tmp/verify/kbridge.service"
    verify_installed() { # man pages checked too: Documentation=man:kbridge(1) man:kbridge.ini(5)
        out=$(cd "$tmp/verify" && MANPATH=$d/usr/share/man timeout 60 \
            systemd-analyze verify ./kbridge.service 2>&1)
        printf '%s\n' "$out"
        [ -z "$out" ]
    }
    check "installed unit verifies, its Documentation= man pages resolve" verify_installed
fi
if command -v man >/dev/null 2>&1; then
    render() {
        out=$(MANPATH=$d/usr/share/man MANWIDTH=80 LC_ALL=C.UTF-8 timeout 30 \
            man --warnings "$1" 2>&1 >/dev/null)
        printf '%s\n' "$out"
        [ -z "$out" ] && MANPATH=$d/usr/share/man timeout 30 man -w "$1"
    }
    check "man kbridge renders from the install, no warnings" render kbridge
    check "man 5 kbridge.ini renders from the install, no warnings" render kbridge.ini
fi

check "make uninstall DESTDIR=... PREFIX=/usr" mk "$@" uninstall DESTDIR="$d" PREFIX=/usr
check "uninstall leaves only the operator's kbridge.ini" sh -c '
    [ "$(cd "$1" && find . \( -type f -o -type l \) | sort)" = "./etc/kbridge/kbridge.ini" ]' sh "$d"

# --- default PREFIX=/usr/local -------------------------------------------------------------------
e=$tmp/local-root
check "make install DESTDIR=... (default PREFIX)" mk "$@" install DESTDIR="$e"
check "default PREFIX is /usr/local: binary, man, unit, sysusers" sh -c '
    for f in usr/local/bin/kbridge usr/local/share/man/man1/kbridge.1 \
        usr/local/share/man/man5/kbridge.ini.5 usr/local/lib/systemd/system/kbridge.service \
        usr/local/lib/sysusers.d/kbridge.conf etc/kbridge/kbridge.ini.example; do
        [ -f "$1/$f" ] || { echo "missing $f"; exit 1; }
    done
    [ ! -e "$1/etc/kbridge/kbridge.ini" ] || { echo "kbridge.ini created"; exit 1; }
    grep -qx "ExecStart=/usr/local/bin/kbridge -c /etc/kbridge/kbridge.ini" \
        "$1/usr/local/lib/systemd/system/kbridge.service"' sh "$e"

finish
