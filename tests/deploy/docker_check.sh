#!/bin/sh
# docker_check.sh - build and run the Dockerfile without a container engine (make docker-check).
#
# Builds a Debian 12 minbase root with debootstrap once (cached), then
# tests/deploy/dockerfile_emulate.py executes every stage of ./Dockerfile in fresh copies of it
# under chroot (RUN, COPY with .dockerignore, USER, ...) and checks the final stage as
# `docker run` would use it: --version, --check-config as the image's user, shared libraries,
# image size, EXPOSE and HEALTHCHECK against the shipped config, serve + HEALTHCHECK + stop.
#
# Needs root, debootstrap, unshare (util-linux), iproute2 and access to a Debian mirror.
# Environment:
#   KB_DEPLOY_CACHE          cache directory (default ~/.cache/kbridge-deploy)
#   KB_DEPLOY_REFRESH=1      rebuild the cached minbase root (also done when older than 7 days)
#   KB_DEBIAN_MIRROR         default http://deb.debian.org/debian
#   KB_DOCKER_CHECK_TIMEOUT  overall limit in seconds (default 1800)
#   KB_DOCKER_CHECK_KEEP=1   keep the work directory (stage roots and logs) for inspection
#   KB_DOCKER_CONTEXT        build context directory (default: the repository)
# Options: -v prints every RUN step's output.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KB_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kbridge-deploy}
mirror=${KB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
limit=${KB_DOCKER_CHECK_TIMEOUT:-1800}
python=${PYTHON:-/usr/bin/python3}
verbose=
[ "${1:-}" = "-v" ] && verbose=--verbose

die() {
    echo "FAIL docker-check: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
for tool in debootstrap unshare chroot ip tar "$python"; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "missing $tool (apt-get install debootstrap util-linux iproute2 tar python3)"
done

start=$(date +%s)
# shellcheck source-path=SCRIPTDIR source=minbase.sh
. "$repo/tests/deploy/minbase.sh"
minbase_tar

work=$(mktemp -d "${TMPDIR:-/var/tmp}/kbridge-docker-check.XXXXXX")
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "${KB_DOCKER_CHECK_KEEP:-}" ]; then
        echo "     work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private mount namespace: the /proc mounts inside the stage roots disappear with it, so
# the cleanup above never walks into a mounted /proc.
rc=0
timeout --kill-after=30 "$limit" unshare --mount --propagation private \
    "$python" "$repo/tests/deploy/dockerfile_emulate.py" --context "${KB_DOCKER_CONTEXT:-$repo}" \
    --dockerfile "$repo/Dockerfile" --base-tar "$base" --work "$work" $verbose || rc=$?
[ "$rc" -eq 124 ] && echo "FAIL docker-check timed out after ${limit}s"
echo "docker-check: $(($(date +%s) - start))s"
exit "$rc"
