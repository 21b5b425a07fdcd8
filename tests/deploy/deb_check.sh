#!/bin/sh
# deb_check.sh DEB - the Debian package as an operator meets it (make deb-check, run by CI):
# lintian (anything not in packaging/deb/lintian-overrides fails), then in a throwaway Debian 12
# minbase root (the debootstrap root `make docker-check` caches): apt-get installs the package
# with the Depends it declares, `kbridge --version`, `kbridge --check-config` on the shipped
# /etc/kbridge/kbridge.ini as the kbridge user the package creates, `systemd-analyze verify` on
# the installed unit (systemd installed into the root after the package), the conffile kept
# across a reinstall, and remove/purge.
#
# Needs root, debootstrap, unshare (util-linux), lintian, and access to a Debian mirror.
# Environment: as docker_check.sh (KB_DEPLOY_CACHE, KB_DEPLOY_REFRESH, KB_DEBIAN_MIRROR);
# KB_DEB_CHECK_KEEP=1 keeps the root.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu

deb=${1:?usage: deb_check.sh DEB}
case $deb in /*) ;; *) deb=$PWD/$deb ;; esac
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KB_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kbridge-deploy}
mirror=${KB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
pass=0
failed=0

die() {
    echo "FAIL deb-check: $*" >&2
    exit 1
}
ok() {
    pass=$((pass + 1))
    echo "ok   $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL $*"
}
# check DESC CMD...: ok or FAIL with the tail of the output.
check() {
    desc=$1
    shift
    if out=$("$@" 2>&1); then
        ok "$desc"
    else
        bad "$desc"
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/     | /'
    fi
}

[ -f "$deb" ] || die "no package $deb (make deb)"
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
for tool in debootstrap unshare chroot lintian dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool (sh scripts/deps.sh ci)"
done
start=$(date +%s)

check "lintian $(basename "$deb"): clean apart from packaging/deb/lintian-overrides" \
    lintian --fail-on error,warning,info,pedantic --pedantic "$deb"
name=$(basename "$deb")
check "file name is kbridge_<version>_<arch>.deb" sh -c '[ "$1" = "kbridge_$(dpkg-deb -f "$2" \
    Version)_$(dpkg-deb -f "$2" Architecture).deb" ]' sh "$name" "$deb"
# Every library the packaged binary links (its NEEDED entries), by the package that ships it.
check "Depends names the shared libraries kbridge links" sh -c 'd=$(dpkg-deb -f "$1" Depends)
    x=$(mktemp -d); trap "rm -rf $x" EXIT; dpkg-deb -x "$1" "$x"
    libs=$(objdump -p "$x/usr/bin/kbridge" | awk "/NEEDED/ {print \$2}")
    [ -n "$libs" ] || { echo "no NEEDED entries in the packaged kbridge"; exit 1; }
    for so in $libs; do
        pkg=$(dpkg -S "*/$so" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -n "$pkg" ] || { echo "no package ships $so"; exit 1; }
        echo "$d" | grep -q "$pkg" || { echo "$so ($pkg) not in: $d"; exit 1; }; done' sh "$deb"

# shellcheck source-path=SCRIPTDIR source=minbase.sh
. "$repo/tests/deploy/minbase.sh"
minbase_tar

work=$(mktemp -d "${TMPDIR:-/var/tmp}/kbridge-deb-check.XXXXXX")
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "${KB_DEB_CHECK_KEEP:-}" ]; then
        echo "     root kept: $work/root"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$work/root
mkdir -p "$root"
tar -C "$root" --numeric-owner -xpf "$base"
cp "$deb" "$root/tmp/$name"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# $in_root CMD...: CMD inside the root, in a private mount namespace with /proc (gone after),
# bounded in time. A script, so that check and sh -c can run it.
in_root=$work/in_root
cat >"$in_root" <<IN_ROOT
#!/bin/sh
exec timeout 900 unshare --mount --propagation private sh -c 'mount -t proc proc "\$0/proc" &&
    exec chroot "\$0" "\$@"' "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "\$@"
IN_ROOT
chmod 0755 "$in_root"

check "apt-get install ./$name into a Debian 12 minbase root (Depends from the mirror)" \
    "$in_root" sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "/tmp/$1"' \
    sh "$name"
version=$(dpkg-deb -f "$deb" Version)
check "kbridge --version reports $version" sh -c 'v=$("$1" /usr/bin/kbridge --version) &&
    echo "$v" && echo "$v" | grep -q "^kbridge $2 "' sh "$in_root" "$version"
check "postinst created the kbridge system user" "$in_root" getent passwd kbridge
check "kbridge --check-config on the shipped /etc/kbridge/kbridge.ini, as user kbridge" \
    "$in_root" setpriv --reuid=kbridge --regid=kbridge --clear-groups \
    /usr/bin/kbridge --check-config -c /etc/kbridge/kbridge.ini
# shellcheck disable=SC2016  # ${Conffiles} is dpkg-query's
check "/etc/kbridge/kbridge.ini is a conffile" sh -c '"$1" dpkg-query -W -f="\${Conffiles}" kbridge |
    grep -q "^ /etc/kbridge/kbridge.ini [0-9a-f]"' sh "$in_root"
check "man pages installed" "$in_root" sh -c 'test -s /usr/share/man/man1/kbridge.1.gz &&
    test -s /usr/share/man/man5/kbridge.ini.5.gz'
# systemd itself, after the package (whose postinst then had to create the user without
# systemd-sysusers), so the unit is verified where it was installed.
verify() {
    "$in_root" apt-get install -y -q --no-install-recommends systemd >/dev/null || return 1
    v=$("$in_root" systemd-analyze verify --man=no /lib/systemd/system/kbridge.service 2>&1) ||
        { echo "$v"; return 1; }
    echo "$v"
    [ -z "$v" ]
}
check "systemd-analyze verify on the installed kbridge.service, in the root" verify
check "the installed unit runs the installed binary" grep -qx \
    'ExecStart=/usr/bin/kbridge -c /etc/kbridge/kbridge.ini' "$root/lib/systemd/system/kbridge.service"

# The operator's edits survive a reinstall; purge removes the file, remove keeps it.
echo "; edited by the operator" >>"$root/etc/kbridge/kbridge.ini"
check "reinstall keeps an edited conffile" sh -c '"$1" dpkg -i --force-confold "/tmp/$2" &&
    grep -q "edited by the operator" "$3/etc/kbridge/kbridge.ini"' sh "$in_root" "$name" "$root"
check "dpkg -r removes the binary and keeps the conffile" sh -c '"$1" dpkg -r kbridge &&
    [ ! -e "$2/usr/bin/kbridge" ] && [ -f "$2/etc/kbridge/kbridge.ini" ]' sh "$in_root" "$root"
check "dpkg --purge removes /etc/kbridge/kbridge.ini" sh -c '"$1" dpkg --purge kbridge &&
    [ ! -e "$2/etc/kbridge/kbridge.ini" ]' sh "$in_root" "$root"

echo "deb-check: $pass passed, $failed failed ($(($(date +%s) - start))s)"
[ "$failed" -eq 0 ]
