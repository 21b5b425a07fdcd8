#!/usr/bin/env bash
# bench/selftest.sh [BUILD_DIR] - checks that the bench's own tools measure what run.sh says they
# do, in about ten seconds (`make -C bench selftest`): the floor refuses a broker its CA does not
# trust; every workload completes through the floor and direct with every response checked; the
# floor sends full 16 KiB records (counted by the sink); a 50 MiB Fetch response passes the
# floor with bounded memory (VmHWM, reset by the loadgen). Loopback only; every step bounded.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
LG=$BUILD/bench/loadgen
CERTS=$BUILD/certs
WORK=$BUILD/bench/selftest
PIDS=()
FAILED=0

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; FAILED=1; }
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
kv() { printf '%s\n' "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

make -s -C "$ROOT/bench" BUILD="$BUILD" tools >/dev/null || { say "build failed"; exit 1; }
sh "$ROOT/tests/integration/gen_certs.sh" "$CERTS" >/dev/null 2>&1 || { say "certs failed"; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"

SP=$("$LG" freeport -n 1) && FP=$("$LG" freeport -n 1) && BP=$("$LG" freeport -n 1) || exit 1
"$BUILD/bench/sink" -p "$SP" --cert "$CERTS/server.pem" --key "$CERTS/server.key" \
    --max-secs 120 --stats "$WORK/stats" >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
PIDS+=("$SINK_PID")
"$BUILD/bench/floor" -p "$FP" -u "$SP" --ca "$CERTS/ca.pem" --max-secs 120 \
    >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
"$BUILD/bench/floor" -p "$BP" -u "$SP" --ca "$CERTS/other-ca.pem" --max-secs 120 \
    >"$WORK/floor-wrongca.log" 2>&1 &
PIDS+=($!)
for p in "$SP" "$FP" "$BP"; do
    "$LG" waitport -p "$p" -t 10 || { say "port $p never opened"; exit 1; }
done

# 1. verification is on: the floor with the wrong CA forwards nothing
if timeout 20 "$LG" latency -p "$BP" -s 1024 -n 1 >/dev/null 2>&1; then
    fail "the floor forwarded to a sink its CA does not trust"
fi
grep -q 'certificate not verified' "$WORK/floor-wrongca.log" ||
    fail "the floor did not say why it refused: $(cat "$WORK/floor-wrongca.log")"

# 2. every workload, direct and through the floor, every response checked
for args in "-V 3 -s 1024" "-V 9 -s 1024" "-V 11 -s 1048576" "-a fetch -V 15 -s 1048576" \
    "-a fetch -V 17 --ne -s 1048576" "-a fetch -V 16 -s 4194304 -d 1"; do
    for path in direct floor; do
        if [ $path = direct ]; then
            line=$(timeout 30 "$LG" throughput -p "$SP" --tls --ca "$CERTS/ca.pem" $args -c 1 \
                -t 0.5 -w 0.1 2>>"$WORK/loadgen.log" | grep '^RESULT')
        else
            line=$(timeout 30 "$LG" throughput -p "$FP" $args -c 1 -t 0.5 -w 0.1 \
                --pid "$FLOOR_PID" 2>>"$WORK/loadgen.log" | grep '^RESULT')
        fi
        if [ "$(kv "$line" errors)" != 0 ] || [ "${line/requests=0 /}" != "$line" ]; then
            fail "$path $args: ${line:-no result} ($(tail -1 "$WORK/loadgen.log"))"
        fi
    done
done

# 3. the floor's records upstream are full 16 KiB ones (1 MiB frames: at most one partial per read)
stats() {
    local seq0 i line
    seq0=$(kv " $(cat "$WORK/stats" 2>/dev/null)" seq)
    kill -USR1 "$SINK_PID"
    for i in $(seq 200); do
        line=$(cat "$WORK/stats" 2>/dev/null)
        [ -n "$line" ] && [ "$(kv " $line" seq)" -gt "${seq0:-0}" ] && { echo "$line"; return; }
        sleep 0.01
    done
}
s0=$(stats)
timeout 30 "$LG" throughput -p "$FP" -s 1048576 -c 1 -t 0.5 -w 0.1 >/dev/null 2>&1
s1=$(stats)
rec=$(($(kv " $s1" rec_in) - $(kv " $s0" rec_in)))
full=$(($(kv " $s1" rec_in_full) - $(kv " $s0" rec_in_full)))
bytes=$(($(kv " $s1" bytes_in) - $(kv " $s0" bytes_in)))
if [ "$rec" -le 0 ] || [ $((full * 100 / rec)) -lt 90 ] || [ $((bytes / rec)) -lt 15000 ]; then
    fail "the floor's records: $rec records, $full full, for $bytes bytes"
fi

# 4. a 50 MiB response passes the floor in bounded memory (3 x 256 KiB buffers and a thread)
line=$(timeout 60 "$LG" throughput -p "$FP" -a fetch -V 17 -s 52428800 -c 1 -d 1 -t 1 -w 0.2 \
    --pid "$FLOOR_PID" 2>>"$WORK/loadgen.log" | grep '^RESULT')
hwm=$(kv "$line" hwm_kib)
base=$(kv "$line" rss_base_kib)
if [ "$(kv "$line" errors)" != 0 ] || [ -z "$hwm" ] || [ $((hwm - base)) -gt 4096 ]; then
    fail "50 MiB Fetch through the floor: ${line:-no result}"
fi

[ "$FAILED" = 0 ] && say "bench selftest: ok"
exit "$FAILED"
