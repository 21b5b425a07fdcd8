#!/bin/sh
# fresh_check.sh - the README's first command on a machine with nothing installed (make
# fresh-check): a copy of the Debian 12 minbase debootstrap root that docker-check caches, the
# repository's files in /src, and `make` (the one tool the README assumes, with git). Then:
#   - as nobody, `make demo` stops at once with one message naming the exact command;
#   - as root, `make demo` installs what scripts/deps.list says the build and the demo need and
#     prints the 1,000-message round trip;
#   - run again, it installs nothing and the set-up step is quick.
# Prints how long each took. Needs root, debootstrap, unshare, a Debian mirror; several minutes.
# Environment: as docker_check.sh (KB_DEPLOY_CACHE, KB_DEPLOY_REFRESH, KB_DEBIAN_MIRROR).
# shellcheck disable=SC2016  # the sh -c '...' snippets run inside the root
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KB_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kbridge-deploy}
mirror=${KB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
pass=0
failed=0
die() {
    echo "FAIL fresh-check: $*" >&2
    exit 1
}
ok() {
    pass=$((pass + 1))
    echo "ok   $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL $*"
    tail -n 15 "$work/out" | sed 's/^/     | /'
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
for tool in debootstrap unshare chroot git tar; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool"
done
# shellcheck source-path=SCRIPTDIR source=minbase.sh
. "$repo/tests/deploy/minbase.sh"
minbase_tar

work=$(mktemp -d "${TMPDIR:-/var/tmp}/kbridge-fresh-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
root=$work/root
mkdir -p "$root/src"
tar -C "$root" --numeric-owner -xpf "$base"
# What an installed machine has and debootstrap leaves out: name service for the mirror and a
# hosts file ('localhost' is in the demo's and the tests' configurations).
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -e "$root/etc/hosts" ] || cp /etc/hosts "$root/etc/hosts"
# The files a clone has: tracked and new ones, never build output or node_modules.
(cd "$repo" && git ls-files -z -co --exclude-standard | grep -zv '^tests/integration/kafkajs/node_modules/' |
    tar --null -T - -cf -) | tar -C "$root/src" -xf -

# in_root SHELL-COMMAND: runs it in the root, /proc /dev /sys /tmp mounted in a private
# mount namespace, with a clean environment; output to $work/out; bounded.
in_root() {
    timeout 1800 unshare --mount --propagation private sh -c '
        mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
        mount --rbind /sys "$0/sys" && mount -t tmpfs tmpfs "$0/tmp" &&
        exec chroot "$0" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            sh -c "$1"' "$root" "$1" >"$work/out" 2>&1
}
secs() { echo $(($(date +%s) - $1)); }

t=$(date +%s)
if in_root 'apt-get update -q && apt-get install -y -q --no-install-recommends make'; then
    ok "apt-get install make (the README's one prerequisite) -- $(secs "$t")s"
else
    bad "apt-get install make"
    exit 1
fi

rc=0
in_root 'setpriv --reuid=nobody --regid=nogroup --clear-groups make -C /src demo' || rc=$?
msg=$(grep '^deps: ' "$work/out" || true)
if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] &&
    printf '%s\n' "$msg" | grep -q "install them with: su -c 'apt-get update && apt-get install -y --no-install-recommends build-essential .*libinih-dev.* kcat'" &&
    ! grep -q '^cc ' "$work/out"; then
    ok "as nobody: make demo stops with one message naming the command: $msg"
else
    bad "as nobody: make demo stops with one message naming the command (exit $rc)"
fi

t=$(date +%s)
if in_root 'make -C /src demo' && grep -q '^deps: installing build-essential' "$work/out" &&
    grep -q '^demo: .*1000' "$work/out" && tail -n 5 "$work/out" | grep -q 'OK$'; then
    ok "fresh root: make demo installs its packages and round-trips 1,000 messages -- $(secs "$t")s"
else
    bad "fresh root: make demo"
fi
t=$(date +%s)
if in_root 'make -C /src demo' && ! grep -q '^deps: ' "$work/out" && tail -n 5 "$work/out" | grep -q 'OK$'; then
    ok "ready root: make demo again installs nothing -- $(secs "$t")s"
else
    bad "ready root: make demo again"
fi
if in_root 'a=$(date +%s%N); sh /src/scripts/deps.sh build demo; b=$(date +%s%N); echo "deps ms $(((b - a) / 1000000))"' &&
    ms=$(sed -n 's/^deps ms //p' "$work/out") && [ "$ms" -lt 1000 ]; then
    ok "ready root: the set-up step alone takes ${ms} ms"
else
    bad "ready root: the set-up step is under a second"
fi

echo "fresh-check: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
