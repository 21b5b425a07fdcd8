#!/usr/bin/env bash
# bench/callgrind.sh [BUILD_DIR] - kbridge's per-request cost in instructions, deterministic on a
# noisy machine (issue 16: per-event cost at small frames). kbridge (1 worker) runs under
# `valgrind --tool=callgrind` between bench/loadgen and the TLS sink (bench/sink.c), as in
# bench/run.sh. Two phases of Produce requests go through it, each on a fresh connection, and
# callgrind dumps its counters after each; the difference between the phases divided by the
# difference in requests cancels start-up and per-connection costs (TLS handshake, buffers).
# Prints instructions per request and calls per request of malloc/calloc/realloc/free,
# clock_gettime and two evbuffer copies (bench/callgrind_calls.py), for two shapes:
#   serial  loadgen latency mode: one request in flight (one wakeup per request and direction),
#           a fixed number of requests;
#   batched loadgen throughput mode, -c 1 -d 8, for a fixed time: its numbers depend on how
#           many requests a wakeup finds.
# Requests are counted by callgrind itself (calls of metrics_count_request, one per request).
# Knobs: CG_SIZE (1024) request frame bytes, CG_VERSION (3) Produce version, CG_N1 (1000) and
# CG_N2 (6000) serial requests per phase, CG_SECS1 (4) and CG_SECS2 (10) batched seconds.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SIZE=${CG_SIZE:-1024}
VERSION=${CG_VERSION:-3}
N1=${CG_N1:-1000}
N2=${CG_N2:-6000}
SECS1=${CG_SECS1:-4}
SECS2=${CG_SECS2:-10}
KB=$BUILD/kbridge
LG=$BUILD/bench/loadgen
SINK=$BUILD/bench/sink
WORK=$BUILD/callgrind
CERTS=$WORK/certs
PIDS=()

die() {
    echo "callgrind: $*" >&2
    exit 1
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

command -v valgrind >/dev/null || die "valgrind not found"
command -v callgrind_control >/dev/null || die "callgrind_control not found"
make -s -C "$ROOT" BUILD="$BUILD" "$KB" >/dev/null || die "kbridge build failed"
make -s -C "$ROOT/bench" BUILD="$BUILD" tools >/dev/null || die "bench tools build failed"
rm -rf "$WORK"
mkdir -p "$WORK"
sh "$ROOT/tests/integration/gen_certs.sh" "$CERTS" >/dev/null || die "gen_certs.sh failed"

SINK_PORT=$("$LG" freeport -n 1) || die "no free port"
"$SINK" -p "$SINK_PORT" --cert "$CERTS/server.pem" --key "$CERTS/server.key" \
    --max-secs 900 >"$WORK/sink.log" 2>&1 &
PIDS+=($!)
"$LG" waitport -p "$SINK_PORT" -t 10 || die "sink did not start"

# run_shape NAME : starts kbridge under callgrind, runs two phases, prints per-request numbers.
run_shape() {
    local shape=$1 port pid d1 d2
    port=$("$LG" freeport -n 2) || die "no free port"
    cat >"$WORK/kb.ini" <<EOF
[global]
log_level = warn
buffer_high_bytes = 1048576

[cg]
bootstrap_servers = localhost:$SINK_PORT
listen = 127.0.0.1:$port
broker_port_base = $((port + 1))
max_node_id = 0
tls_ca_file = $CERTS/ca.pem
tls_verify = full
idle_timeout_ms = 0
EOF
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$shape.%p" "$KB" -c "$WORK/kb.ini" \
        >"$WORK/$shape.kb.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    "$LG" waitport -p "$port" -t 60 || die "kbridge did not start: $(tail -5 "$WORK/$shape.kb.log")"
    callgrind_control -z "$pid" >/dev/null 2>&1
    if [ "$shape" = serial ]; then
        "$LG" latency -p "$port" -s "$SIZE" -V "$VERSION" -n "$N1" --max-secs 600 >"$WORK/lg1" ||
            die "loadgen phase 1 failed: $(cat "$WORK/lg1")"
        callgrind_control -d "$pid" >/dev/null 2>&1
        "$LG" latency -p "$port" -s "$SIZE" -V "$VERSION" -n "$N2" --max-secs 600 >"$WORK/lg2" ||
            die "loadgen phase 2 failed: $(cat "$WORK/lg2")"
    else
        "$LG" throughput -p "$port" -s "$SIZE" -V "$VERSION" -c 1 -d 8 -t "$SECS1" -w 0 >"$WORK/lg1" ||
            die "loadgen phase 1 failed: $(cat "$WORK/lg1")"
        callgrind_control -d "$pid" >/dev/null 2>&1
        "$LG" throughput -p "$port" -s "$SIZE" -V "$VERSION" -c 1 -d 8 -t "$SECS2" -w 0 >"$WORK/lg2" ||
            die "loadgen phase 2 failed: $(cat "$WORK/lg2")"
    fi
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null
    d1=$(ls "$WORK/$shape.$pid".1 2>/dev/null) || die "no first dump"
    d2=$(ls "$WORK/$shape.$pid".2 2>/dev/null) || die "no second dump"
    echo "RESULT shape=$shape produce_v$VERSION size=$SIZE $(/usr/bin/python3 "$ROOT/bench/callgrind_calls.py" \
        "$d1" "$d2" malloc calloc realloc free clock_gettime evbuffer_pullup evbuffer_add)"
}

run_shape serial
run_shape batched
