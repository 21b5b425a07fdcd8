#!/bin/sh
# build_librdkafka.sh OUTDIR - librdkafka 2.12.0 for the modern-protocol tests, built once.
#
# The source is the copy node-rdkafka@3.6.1 ships in deps/librdkafka, fetched from the npm
# registry with `npm pack` (no scripts run, the tarball's sha256 is pinned). Only the C shared
# library is built; nothing is installed system-wide. Result:
#   OUTDIR/include/librdkafka/{rdkafka.h,rdkafka_mock.h}   headers for kbmock-modern
#   OUTDIR/lib/librdkafka.so.1 (+ librdkafka.so)           LD_LIBRARY_PATH for kcat and
#                                                          confluent-kafka (soname of Debian's)
#   OUTDIR/.stamp                                          present once everything above is
# A later run with the same stamp does nothing. Needs npm, bash, cc, make, python3 (the linker
# script generator) and libssl-dev (Debian 12: build-essential, python3, libssl-dev, npm).
# Everything else librdkafka probes for is optional and left to "try": curl and GSSAPI are
# disabled, zlib and zstd are used if their -dev packages happen to be installed and skipped
# otherwise, lz4 falls back to the copy in the source tree. Nothing is downloaded but the npm
# tarball: --no-download (mklove modules come with the source), never --install-deps.
set -eu

PKG=node-rdkafka
PKG_VERSION=3.6.1
RDK_VERSION=2.12.0
TGZ_SHA256=148f7e7b65c510314c70762d8f1be052c8fe1fdf03a128e6c78083a729a57a30
CONFIGURE_FLAGS="--no-download --disable-gssapi --disable-curl"
STAMP_TEXT="$PKG@$PKG_VERSION librdkafka $RDK_VERSION $TGZ_SHA256 $CONFIGURE_FLAGS"

out=${1:?usage: build_librdkafka.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$STAMP_TEXT" ] &&
    [ -f "$out/lib/librdkafka.so.1" ] && [ -f "$out/include/librdkafka/rdkafka_mock.h" ]; then
    exit 0
fi
rm -f "$out/.stamp"

for tool in npm bash make cc python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build_librdkafka.sh: $tool not found" >&2; exit 1; }
done

tgz="$out/dl/$PKG-$PKG_VERSION.tgz"
if [ ! -f "$tgz" ] || [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$TGZ_SHA256" ]; then
    rm -rf "$out/dl"
    mkdir -p "$out/dl"
    echo "== npm pack $PKG@$PKG_VERSION"
    (cd "$out/dl" && npm pack --ignore-scripts --silent "$PKG@$PKG_VERSION" >/dev/null)
fi
sum=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$sum" != "$TGZ_SHA256" ]; then
    echo "build_librdkafka.sh: $tgz: sha256 $sum, expected $TGZ_SHA256" >&2
    exit 1
fi

src="$out/src"
rm -rf "$src" "$out/unpack"
mkdir -p "$out/unpack"
tar -xzf "$tgz" -C "$out/unpack" package/deps/librdkafka
mv "$out/unpack/package/deps/librdkafka" "$src"
rm -rf "$out/unpack"
version=$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-fA-F]*\).*/\1/p' "$src/src/rdkafka.h")
if [ "$version" != "020c00ff" ]; then
    echo "build_librdkafka.sh: $tgz has librdkafka 0x$version, expected 2.12.0 (0x020c00ff)" >&2
    exit 1
fi

jobs=$(nproc 2>/dev/null || echo 2)
echo "== configure + make librdkafka $RDK_VERSION in $src (-j$jobs; about a minute)"
(
    cd "$src"
    # shellcheck disable=SC2086 # word splitting wanted
    ./configure $CONFIGURE_FLAGS >"$out/configure.log" 2>&1 ||
        { tail -30 "$out/configure.log" >&2; exit 1; }
    make -C src -j"$jobs" librdkafka.so.1 >"$out/make.log" 2>&1 ||
        { tail -30 "$out/make.log" >&2; exit 1; }
)

rm -rf "${out:?}/include" "${out:?}/lib"
mkdir -p "$out/include/librdkafka" "$out/lib"
cp "$src/src/rdkafka.h" "$src/src/rdkafka_mock.h" "$out/include/librdkafka/"
cp "$src/src/librdkafka.so.1" "$out/lib/"
ln -s librdkafka.so.1 "$out/lib/librdkafka.so"
echo "$STAMP_TEXT" > "$out/.stamp"
echo "== librdkafka $RDK_VERSION ready in $out"
