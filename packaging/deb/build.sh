#!/bin/sh
# build.sh BUILD_DIR OUT_DIR - packs BUILD_DIR/kbridge (built with Debian's dpkg-buildflags by
# `make deb`) into OUT_DIR/kbridge_<version>_<arch>.deb with dpkg-deb: the binary (stripped),
# kbridge(1) and kbridge.ini(5), the systemd unit, the sysusers.d file, /etc/kbridge/kbridge.ini
# (conf/kbridge.ini, every key with its default) as a conffile, the copyright and changelog,
# and the lintian overrides. Depends comes from dpkg-shlibdeps (the shared libraries kbridge
# links) plus ca-certificates (the system trust store). Prints the .deb's path.
# Needs dpkg-dev (scripts/deps.list group deb). SOURCE_DATE_EPOCH, when set, dates the changelog
# and the files (default: the last commit, so the same tree gives the same package).
set -eu

build=${1:?usage: build.sh BUILD_DIR OUT_DIR}
out=${2:?usage: build.sh BUILD_DIR OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
case $build in /*) ;; *) build=$repo/$build ;; esac
case $out in /*) ;; *) out=$repo/$out ;; esac

version=$(sed -n 's/^#define KB_VERSION "\(.*\)"$/\1/p' "$repo/proxy/version.h")
[ -n "$version" ] || { echo "build.sh: no KB_VERSION in proxy/version.h" >&2; exit 1; }
arch=$(dpkg --print-architecture)
: "${SOURCE_DATE_EPOCH:=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

stage=$(mktemp -d "${TMPDIR:-/tmp}/kbridge-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root

# The file layout is `make install`'s, with Debian's paths.
make --no-print-directory -s -C "$repo" install BUILD="$build" DESTDIR="$root" PREFIX=/usr \
    SYSCONFDIR=/etc SYSTEMDUNITDIR=/lib/systemd/system SYSUSERSDIR=/usr/lib/sysusers.d \
    -o "$build/kbridge"
mv "$root/etc/kbridge/kbridge.ini.example" "$root/etc/kbridge/kbridge.ini"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/kbridge"
gzip -9n "$root/usr/share/man/man1/kbridge.1" "$root/usr/share/man/man5/kbridge.ini.5"
doc=$root/usr/share/doc/kbridge
install -d "$doc" "$root/usr/share/lintian/overrides"
install -m 0644 "$here/copyright" "$doc/copyright"
sed -e "s/@VERSION@/$version/" \
    -e "s/@DATE@/$(date -R -u -d "@$SOURCE_DATE_EPOCH")/" "$here/changelog.in" |
    gzip -9n >"$doc/changelog.gz"
install -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/kbridge"

# dpkg-shlibdeps wants a debian/control naming the package.
mkdir -p "$stage/src/debian"
printf 'Source: kbridge\n\nPackage: kbridge\nArchitecture: any\n' >"$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O -e"$root/usr/bin/kbridge" 2>"$stage/shlibdeps.err" |
    sed -n 's/^shlibs:Depends=//p') || true
[ -n "$depends" ] || { cat "$stage/shlibdeps.err" >&2; echo "build.sh: dpkg-shlibdeps found nothing" >&2; exit 1; }

install -d "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" "$here/control.in" >"$root/DEBIAN/control"
echo /etc/kbridge/kbridge.ini >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb=$out/kbridge_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
