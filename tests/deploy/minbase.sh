# minbase.sh - sourced by docker_check.sh and deb_check.sh: the cached Debian 12 minbase root.
# shellcheck shell=sh disable=SC2154  # cache and mirror come from the caller
# minbase_tar: sets $base to a tar of `debootstrap --variant=minbase bookworm`, built once and
# cached in $cache (rebuilt with KB_DEPLOY_REFRESH=1 or when older than 7 days). Needs $cache,
# $mirror and a die function from the caller; root and debootstrap.
minbase_tar() {
    mb_start=$(date +%s)
    mkdir -p "$cache"
    base=$cache/bookworm-minbase.tar
    if [ -n "${KB_DEPLOY_REFRESH:-}" ] || [ ! -s "$base" ] ||
        [ -n "$(find "$base" -mtime +7 2>/dev/null)" ]; then
        mb_tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/kbridge-debootstrap.XXXXXX")
        echo "     debootstrap --variant=minbase bookworm ($mirror) ..."
        if ! timeout 900 debootstrap --variant=minbase bookworm "$mb_tmp/root" "$mirror" \
            >"$mb_tmp/log" 2>&1; then
            tail -n 20 "$mb_tmp/log" >&2
            rm -rf "$mb_tmp"
            die "debootstrap failed"
        fi
        tar -C "$mb_tmp/root" --numeric-owner -cf "$base.tmp" .
        mv "$base.tmp" "$base"
        rm -rf "$mb_tmp"
        echo "ok   debootstrap bookworm minbase -- $(($(date +%s) - mb_start))s, cached in $base"
    else
        echo "ok   cached bookworm minbase -- $base"
    fi
}
