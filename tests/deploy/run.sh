#!/bin/sh
# run.sh - every deploy check except `make docker-check` (which needs root, debootstrap and a
# Debian mirror). One line per check, then "N passed, N failed"; exits 1 on any failure.
#   KB_BUILD=build sh tests/deploy/run.sh        (make deploy-test)
# Needs (scripts/deps.list, group test): systemd strace shellcheck groff man-db python3-yaml
# default-jre-headless openssl util-linux iproute2, root (unshare, chown in the sandboxes), and no network.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${KB_BUILD:=$repo/build}"
case $KB_BUILD in /*) ;; *) KB_BUILD=$repo/$KB_BUILD ;; esac
export KB_BUILD
python=${PYTHON:-/usr/bin/python3}
out=$(mktemp "${TMPDIR:-/tmp}/kbridge-deploy-run.XXXXXX")
trap 'rm -f "$out"' EXIT

pass=0
failed=0
start=$(date +%s)
run() { # run NAME CMD...: print its lines, count ok/FAIL; a non-zero exit without FAIL counts
    name=$1
    shift
    rc=0
    timeout 300 "$@" >"$out" 2>&1 || rc=$?
    grep -v '^#' "$out" || true
    p=$(grep -c '^ok ' "$out" || true)
    f=$(grep -c '^FAIL' "$out" || true)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name exited $rc"
        f=1
    fi
    pass=$((pass + p))
    failed=$((failed + f))
}

run test_deps.sh sh "$here/test_deps.sh"
run test_docs.sh sh "$here/test_docs.sh"
run test_systemd.sh sh "$here/test_systemd.sh"
run test_install.sh sh "$here/test_install.sh"
run test_dataproc_init.sh sh "$here/test_dataproc_init.sh"
run test_k8s_yaml.py "$python" "$here/test_k8s_yaml.py"
run test_pyspark_example.py "$python" "$here/test_pyspark_example.py"
run test_jks_convert.sh sh "$here/test_jks_convert.sh"
run dockerfile-static "$python" "$here/dockerfile_emulate.py" --static --context "$repo" \
    --dockerfile "$repo/Dockerfile" --kbridge "$KB_BUILD/kbridge"

echo "$pass passed, $failed failed ($(($(date +%s) - start))s)"
[ "$failed" -eq 0 ]
