#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] - the side-by-side benchmark behind `make bench` (issue 16). One TLS
# sink (bench/sink.c) stands in for the brokers; in front of it, in turn:
#   direct   nothing (loadgen speaks TLS itself),
#   floor    bench/floor.c, the simplest correct relay (the physical floor every path is a
#            ratio to),
#   haproxy  HAProxy, tcp mode, verified TLS to the sink,
#   kb1/kb2  kbridge with 1 and with 2 workers.
# Workloads (BENCH_WORKLOADS): Produce v3 and modern Produce (v9/v11: flexible header,
# transactional id) at 1 KiB and 1 MiB, and the consumer path: Fetch v15 and v17 (with and
# without NodeEndpoints) answered with 1 MiB and 50 MiB responses. For each path and workload:
# throughput, the proxy's CPU-seconds per GB, its peak RSS (VmHWM, reset before each run), the
# TLS records per GB the sink counted, and (a separate short run under `strace -c`) system calls
# per GB; then p50/p99 of 1 KiB requests, RSS per idle connection, and a perf profile of
# kbridge. Writes bench/RESULTS.md (with every target of issue 16: met / missed, by how much)
# and bench/PROFILE.md.
#
# Loopback only; every step is bounded (timeout(1) on each load run, BENCH_DEADLINE overall).
# Knobs (environment): BENCH_SECS (3) measured seconds per throughput run, BENCH_WARMUP (1),
# BENCH_CONNS (2) connections and BENCH_DEPTH (8) requests in flight per connection for
# Produce, BENCH_FETCH_CONNS (2) and BENCH_FETCH_DEPTH (1) for Fetch (a consumer keeps one Fetch
# in flight per broker), BENCH_WORKLOADS (all: see wl_args), BENCH_LAT_REQS (20000),
# BENCH_IDLE_CONNS (10000), BENCH_PROFILE (1), BENCH_PROFILE_SECS (4), BENCH_PROFILES (the
# PATH:WORKLOAD pairs profiled: kb1:p3_1k kb1:p3_1m kb1:f17_1m kb1:f17_50m floor:p3_1m),
# BENCH_FRESH_SECS (5: the 50 MiB peak-RSS runs in fresh processes), BENCH_STRACE (1),
# BENCH_STRACE_SECS (2), BENCH_ROUNDS (3) runs of every measurement, interleaved across paths;
# BENCH_DEADLINE (2400) s, BENCH_HAPROXY_NBTHREAD (empty: HAProxy's default),
# BENCH_BUFFER_HIGH (1048576: kbridge's buffer_high_bytes, written into its config),
# BENCH_RESULTS / BENCH_PROFILE_OUT output files.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-build-bench}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SECS=${BENCH_SECS:-3}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-2}
DEPTH=${BENCH_DEPTH:-8}
LAT_REQS=${BENCH_LAT_REQS:-20000}
IDLE_WANT=${BENCH_IDLE_CONNS:-10000}
PROFILE=${BENCH_PROFILE:-1}
PROFILE_SECS=${BENCH_PROFILE_SECS:-4}
DEADLINE=${BENCH_DEADLINE:-2400}
ROUNDS=${BENCH_ROUNDS:-3}
FETCH_CONNS=${BENCH_FETCH_CONNS:-2}
FETCH_DEPTH=${BENCH_FETCH_DEPTH:-1}
WORKLOADS=(${BENCH_WORKLOADS:-p3_1k p3_1m p9_1k p9_1m p11_1m f15_1m f17_1m f17ne_1m f15_50m f17_50m f17ne_50m})
STRACE=${BENCH_STRACE:-1}
PROFILES=(${BENCH_PROFILES:-kb1:p3_1k kb1:p3_1m kb1:f17_1m kb1:f17_50m floor:p3_1m})
STRACE_SECS=${BENCH_STRACE_SECS:-2}
BUF_HIGH=${BENCH_BUFFER_HIGH:-1048576}
FRESH_SECS=${BENCH_FRESH_SECS:-5}
HAPROXY_NBTHREAD=${BENCH_HAPROXY_NBTHREAD:-}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
PROFILE_OUT=${BENCH_PROFILE_OUT:-$ROOT/bench/PROFILE.md}

KB=$BUILD/kbridge
LG=$BUILD/bench/loadgen
SINK=$BUILD/bench/sink
FLOOR=$BUILD/bench/floor
CERTS=$BUILD/certs
WORK=$BUILD/bench/run
T_START=$(date +%s)
STARTED=()          # every process this script started, stopped by pid at exit
declare -A R        # results: R[path,metric]
NOTES=()            # lines for the notes section of RESULTS.md

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        stop_pid "$pid"
    done
    STARTED=()
}
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT TERM

# start_bg LOG CMD... : starts CMD in the background; its pid is in BG_PID.
start_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    BG_PID=$!
    STARTED+=("$BG_PID")
}

check_deadline() {
    local now
    now=$(date +%s)
    if [ $((now - T_START)) -gt "$DEADLINE" ]; then
        die "over the ${DEADLINE}s budget before '$1'; raise BENCH_DEADLINE or lower BENCH_SECS"
    fi
}

# kv LINE KEY : the value of KEY=VALUE in a RESULT line ("" if absent).
kv() { printf '%s\n' "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

# proc_tree PID : PID and its children (a multi-process kbridge would fork workers).
proc_tree() {
    local kids
    echo "$1"
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ')
    [ -n "$kids" ] && echo "$kids"
    return 0
}

# --- build and set up ------------------------------------------------------------------------
say "bench: building kbridge and the bench tools in $BUILD"
make -s -C "$ROOT" BUILD="$BUILD" "$KB" >/dev/null || die "kbridge build failed"
make -s -C "$ROOT/bench" BUILD="$BUILD" tools >/dev/null || die "loadgen/sink build failed"
sh "$ROOT/tests/integration/gen_certs.sh" "$CERTS" || die "gen_certs.sh failed"
command -v haproxy >/dev/null || die "haproxy not found (apt-get install -y haproxy)"
rm -rf "$WORK"
mkdir -p "$WORK"

ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
# A proxy holds two descriptors per idle client (client + upstream): stay inside the limit.
IDLE_MAX=$(( (NOFILE - 200) / 2 / 100 * 100 ))
IDLE_N=$IDLE_WANT
if [ "$IDLE_N" -gt "$IDLE_MAX" ]; then
    IDLE_N=$IDLE_MAX
    NOTES+=("Idle test used $IDLE_N connections, not $IDLE_WANT: the hard descriptor limit here \
is $NOFILE (\`ulimit -Hn\`, not raisable in this container) and a proxy needs 2 per client \
(client socket + upstream TLS socket).")
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

SINK_PORT=$("$LG" freeport -n 1) || die "no free port"
STATS=$WORK/sink.stats
start_bg "$WORK/sink.log" "$SINK" -p "$SINK_PORT" --cert "$CERTS/server.pem" \
    --key "$CERTS/server.key" --max-secs $((DEADLINE + 120)) --stats "$STATS"
SINK_PID=$BG_PID
"$LG" waitport -p "$SINK_PORT" -t 10 || die "sink did not start: $(cat "$WORK/sink.log")"
say "bench: sink on 127.0.0.1:$SINK_PORT (pid $SINK_PID)"

# --- workloads -------------------------------------------------------------------------------
# A workload id is <api><version>[ne]_<size>: p = Produce (request frames of that size), f =
# Fetch (responses of that size; ne: with the NodeEndpoints tagged field).
wl_api() { case $1 in f*) echo fetch ;; *) echo produce ;; esac; }
wl_version() { echo "$1" | sed 's/^[pf]\([0-9]*\).*/\1/'; }
wl_ne() { case $1 in *ne_*) echo 1 ;; *) echo 0 ;; esac; }
wl_size() {
    case ${1##*_} in 1k) echo 1024 ;; 1m) echo 1048576 ;; 50m) echo 52428800 ;;
        *) die "workload $1: size must be 1k, 1m or 50m" ;; esac
}
wl_conns() { [ "$(wl_api "$1")" = fetch ] && echo "$FETCH_CONNS" || echo "$CONNS"; }
wl_depth() { [ "$(wl_api "$1")" = fetch ] && echo "$FETCH_DEPTH" || echo "$DEPTH"; }
# wl_args WL : the loadgen options of workload WL
wl_args() {
    printf '%s\n' -a "$(wl_api "$1")" -V "$(wl_version "$1")" -s "$(wl_size "$1")" \
        -c "$(wl_conns "$1")" -d "$(wl_depth "$1")"
    [ "$(wl_ne "$1")" = 1 ] && echo --ne
    return 0
}
# wl_name WL : "Produce v3, 1 KiB" / "Fetch v17 + NodeEndpoints, 50 MiB"
wl_name() {
    local a=Produce sz
    [ "$(wl_api "$1")" = fetch ] && a=Fetch
    case ${1##*_} in 1k) sz="1 KiB" ;; 1m) sz="1 MiB" ;; 50m) sz="50 MiB" ;; esac
    printf '%s v%s%s, %s' "$a" "$(wl_version "$1")" \
        "$([ "$(wl_ne "$1")" = 1 ] && echo ' + NodeEndpoints')" "$sz"
}
for wl in "${WORKLOADS[@]}"; do
    case $wl in p3_* | p9_* | p1[01]_* | f1[2-7]_* | f1[67]ne_*) wl_size "$wl" >/dev/null ;;
        *) die "unknown workload '$wl' (p3|p9|p10|p11 _1k|_1m|_50m, f12..f17[ne] _1m|_50m)" ;;
    esac
done

# --- the sink's counters ---------------------------------------------------------------------
# sink_stats : the sink's counter line, fresh (SIGUSR1, then wait for its sequence number)
sink_stats() {
    local seq0 i line
    seq0=$(kv " $(cat "$STATS" 2>/dev/null)" seq)
    kill -USR1 "$SINK_PID" 2>/dev/null || return 0
    for i in $(seq 200); do
        line=$(cat "$STATS" 2>/dev/null)
        if [ -n "$line" ] && [ "$(kv " $line" seq)" -gt "${seq0:-0}" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.01
    done
    return 0
}
# delta KEY BEFORE AFTER : the counter's growth between two sink_stats lines ("" if unknown)
delta() {
    local a b
    a=$(kv " $2" "$1")
    b=$(kv " $3" "$1")
    [ -n "$a" ] && [ -n "$b" ] && echo $((b - a))
    return 0
}
# per_gb COUNT BYTES : COUNT per 10^9 BYTES, as an integer
per_gb() {
    [ -n "$1" ] && [ -n "$2" ] && [ "$2" -gt 0 ] && awk "BEGIN { printf \"%.0f\", $1 / ($2 / 1e9) }"
    return 0
}

# --- one path's measurements -----------------------------------------------------------------
# Paths are measured in rounds (each workload: direct, floor, HAProxy, kbridge 1 worker, kbridge
# 2 workers; then the next workload; then the next round), all of them running side by side, so
# a slow spell of this shared machine hits every path alike; each table cell is the median of
# BENCH_ROUNDS runs, with the range next to it, and every ratio is of same-round figures.

# measure_tp PATH WL ROUND : one throughput run; fills R[PATH,*,WL,ROUND].
measure_tp() {
    local path=$1 wl=$2 round=$3 line p s0 s1 hwm base dr db df
    local tlsargs=() pidargs=() pids=() args=()
    [ "$(path_tls "$path")" = 1 ] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    mapfile -t pids < <(path_pids "$path")
    mapfile -t args < <(wl_args "$wl")
    for p in "${pids[@]}"; do pidargs+=(--pid "$p"); done
    check_deadline "$path $wl round $round"
    s0=$(sink_stats)
    line=$(timeout "$(awk "BEGIN { print int($SECS + $WARMUP + 60) }")" "$LG" throughput \
        -p "$(path_port "$path")" "${tlsargs[@]}" "${args[@]}" -t "$SECS" -w "$WARMUP" \
        "${pidargs[@]}" 2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
    s1=$(sink_stats)
    say "  $path $wl (round $round): ${line:-FAILED (see $WORK/$path.loadgen.log)}"
    R[$path,mbps,$wl,$round]=$(kv "$line" mbps)
    R[$path,cpugb,$wl,$round]=$(kv "$line" cpu_s_per_gb)
    R[$path,cpuutil,$wl,$round]=$(kv "$line" cpu_util)
    R[$path,pfgb,$wl,$round]=$(kv "$line" minflt_per_gb)
    hwm=$(kv "$line" hwm_kib)
    base=$(kv "$line" rss_base_kib)
    R[$path,hwm,$wl,$round]=$hwm
    if [ -n "$hwm" ] && [ -n "$base" ]; then
        R[$path,growth,$wl,$round]=$(( (hwm - base) / $(wl_conns "$wl") ))
    fi
    # TLS records in the payload direction: into the sink for Produce, out of it for Fetch
    if [ "$(wl_api "$wl")" = fetch ]; then
        dr=$(delta rec_out "$s0" "$s1"); df=$(delta rec_out_full "$s0" "$s1")
        db=$(delta bytes_out "$s0" "$s1")
    else
        dr=$(delta rec_in "$s0" "$s1"); df=$(delta rec_in_full "$s0" "$s1")
        db=$(delta bytes_in "$s0" "$s1")
    fi
    R[$path,recgb,$wl,$round]=$(per_gb "$dr" "$db")
    [ -n "$dr" ] && [ "${dr:-0}" -gt 0 ] && R[$path,recfull,$wl,$round]=$((df * 100 / dr))
    [ -n "$line" ] || R[$path,err,$wl]=1
    [ "$(kv "$line" errors)" = 0 ] || R[$path,err,$wl]=1
}

# measure_strace PATH WL : syscalls per GB of PATH's process(es) under WL, from `strace -c -f`
# over BENCH_STRACE_SECS of a load run of its own (strace slows the proxy: the counts per GB
# are what matters, not the rate); the bytes are the sink's payload-direction counters.
measure_strace() {
    local path=$1 wl=$2 lgpid s0 s1 db p out=$WORK/strace-c-$1-$2.txt
    local pids=() sargs=() args=()
    mapfile -t pids < <(path_pids "$path")
    mapfile -t args < <(wl_args "$wl")
    [ ${#pids[@]} -gt 0 ] || return 0
    for p in "${pids[@]}"; do sargs+=(-p "$p"); done
    check_deadline "strace $path $wl"
    start_bg "$WORK/strace-$path-$wl.loadgen.log" timeout $((STRACE_SECS + 60)) "$LG" throughput \
        -p "$(path_port "$path")" "${args[@]}" -t $((STRACE_SECS + 2)) -w 0.5
    lgpid=$BG_PID
    sleep 1
    s0=$(sink_stats)
    timeout -s INT "$STRACE_SECS" strace -c -f -qq -o "$out" "${sargs[@]}" >/dev/null 2>&1
    s1=$(sink_stats)
    wait "$lgpid" 2>/dev/null
    if [ "$(wl_api "$wl")" = fetch ]; then db=$(delta bytes_out "$s0" "$s1"); else
        db=$(delta bytes_in "$s0" "$s1"); fi
    [ -s "$out" ] && [ -n "$db" ] && [ "$db" -gt 0 ] || return 0
    # strace -c: "% time seconds usecs/call calls [errors] syscall", the last line "total"
    R[$path,sysgb,$wl]=$(awk -v b="$db" '$NF == "total" { printf "%.0f", $4 / (b / 1e9) }' "$out")
    R[$path,systop,$wl]=$(awk -v b="$db" '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {
            printf "%d %s\n", $4, $NF }' "$out" | sort -rn | head -4 |
        awk -v b="$db" '{ printf "%s%s %.0fk", (NR > 1 ? ", " : ""), $2, $1 / (b / 1e9) / 1000 }')
}

# measure_lat PATH ROUND : one latency run; fills R[PATH,p50|p99,ROUND].
measure_lat() {
    local path=$1 round=$2 line
    local tlsargs=()
    [ "$(path_tls "$path")" = 1 ] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    check_deadline "$path latency round $round"
    line=$(timeout 90 "$LG" latency -p "$(path_port "$path")" "${tlsargs[@]}" -s 1024 \
        -n "$LAT_REQS" --max-secs 60 2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
    say "  $path latency (round $round): ${line:-FAILED}"
    R[$path,p50,$round]=$(kv "$line" p50_us)
    R[$path,p99,$round]=$(kv "$line" p99_us)
    [ -n "$line" ] || R[$path,laterr]=1
    [ "$(kv "$line" errors)" = 0 ] || R[$path,laterr]=1
}

# med KEY : median over the rounds of R[KEY,ROUND] (empty if any round is missing)
med() {
    local r vals=()
    for r in $(seq "$ROUNDS"); do
        [ -n "${R[$1,$r]:-}" ] || return 0
        vals+=("${R[$1,$r]}")
    done
    printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# spread KEY : "min-max" over the rounds
spread() {
    local r vals=()
    for r in $(seq "$ROUNDS"); do vals+=("${R[$1,$r]:-}"); done
    printf '%s\n' "${vals[@]}" | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
        END { if (NR > 1) printf "%s-%s", lo, hi }'
}
# round_ratio A B : for every round, R[A,round] / R[B,round] into R[A/B,round]... as key OUT
round_ratio() { # round_ratio OUT A B
    local r
    for r in $(seq "$ROUNDS"); do
        if [ -n "${R[$2,$r]:-}" ] && [ -n "${R[$3,$r]:-}" ] &&
            awk "BEGIN { exit !(${R[$3,$r]} > 0) }"; then
            R[$1,$r]=$(awk "BEGIN { printf \"%.2f\", ${R[$2,$r]} / ${R[$3,$r]} }")
        fi
    done
}
# measure_idle PATH PORT PID... : RSS per idle client connection (last: it fragments the heap).
measure_idle() {
    local path=$1 port=$2 line p
    shift 2
    local pidargs=()
    for p in "$@"; do pidargs+=(--pid "$p"); done
    check_deadline "$path idle"
    line=$(timeout 150 "$LG" idle -p "$port" -c "$IDLE_N" -s 1024 "${pidargs[@]}" \
        2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
    say "  $path idle: ${line:-FAILED}"
    R[$path,idle_conns]=$(kv "$line" answered)
    R[$path,idle_kib]=$(kv "$line" kib_per_conn)
    R[$path,idle_before]=$(kv "$line" rss_before_kib)
    R[$path,idle_after]=$(kv "$line" rss_after_kib)
    R[$path,idle_secs]=$(kv "$line" open_secs)
    R[$path,idle_closed]=$(kv "$line" rss_closed_kib)
    R[$path,idle_err]=$(kv "$line" errors)
    [ -n "$line" ] || R[$path,idle_err]=1
}

# --- HAProxy ---------------------------------------------------------------------------------
haproxy_cfg() { # haproxy_cfg FILE PORT CAFILE
    cat >"$1" <<EOF
# generated by bench/run.sh
global
    maxconn $((IDLE_N + 20))
${HAPROXY_NBTHREAD:+    nbthread $HAPROXY_NBTHREAD}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend kbench
    bind 127.0.0.1:$2
    default_backend sink
backend sink
    server s1 127.0.0.1:$SINK_PORT ssl verify required ca-file $3 sni str(localhost) verifyhost localhost
EOF
}

start_haproxy() { # start_haproxy CAFILE LOGNAME ; sets HA_PORT HA_PID
    HA_PORT=$("$LG" freeport -n 1) || die "no free port"
    haproxy_cfg "$WORK/$2.cfg" "$HA_PORT" "$1"
    haproxy -c -q -f "$WORK/$2.cfg" >"$WORK/$2.check.log" 2>&1 ||
        die "HAProxy rejects its config: $(cat "$WORK/$2.check.log")"
    start_bg "$WORK/$2.log" haproxy -db -f "$WORK/$2.cfg"
    HA_PID=$BG_PID
    "$LG" waitport -p "$HA_PORT" -t 10 || die "HAProxy did not start: $(cat "$WORK/$2.log")"
}

# --- kbridge ---------------------------------------------------------------------------------
kbridge_cfg() { # kbridge_cfg FILE PORT CAFILE [GLOBAL_LINE [CLUSTER_LINE]]
    cat >"$1" <<EOF
; generated by bench/run.sh
[global]
log_level = warn
buffer_high_bytes = $BUF_HIGH
${4:-}

[bench]
bootstrap_servers = localhost:$SINK_PORT
listen = 127.0.0.1:$2
broker_port_base = $(($2 + 1))
max_node_id = 0
tls_ca_file = $3
tls_verify = full
max_connections = $((IDLE_N + 100))
idle_timeout_ms = 0
${5:-}
EOF
}

start_kbridge() { # start_kbridge CAFILE LOGNAME [GLOBAL_LINE [CLUSTER_LINE]] ; sets KB_PORT KB_PID
    KB_PORT=$("$LG" freeport -n 2) || die "no free port"
    kbridge_cfg "$WORK/$2.ini" "$KB_PORT" "$1" "${3:-}" "${4:-}"
    start_bg "$WORK/$2.log" "$KB" -c "$WORK/$2.ini"
    KB_PID=$BG_PID
    "$LG" waitport -p "$KB_PORT" -t 10 || die "kbridge did not start: $(cat "$WORK/$2.log")"
}

# --- the floor -------------------------------------------------------------------------------
start_floor() { # start_floor CAFILE LOGNAME ; sets FL_PORT FL_PID
    FL_PORT=$("$LG" freeport -n 1) || die "no free port"
    start_bg "$WORK/$2.log" "$FLOOR" -p "$FL_PORT" -u "$SINK_PORT" --ca "$1" \
        --max-secs $((DEADLINE + 120))
    FL_PID=$BG_PID
    "$LG" waitport -p "$FL_PORT" -t 10 || die "the floor did not start: $(cat "$WORK/$2.log")"
}

# --- verification is really on ---------------------------------------------------------------
say "bench: checking that the floor and both proxies refuse a sink their CA does not trust"
start_floor "$CERTS/other-ca.pem" floor-wrongca
if timeout 30 "$LG" latency -p "$FL_PORT" -s 1024 -n 1 >/dev/null 2>&1; then
    die "the floor forwarded to a sink signed by an untrusted CA: verification is off"
fi
stop_pid "$FL_PID"
R[verify,floor]="refused ($(grep -o 'certificate not verified[^;(]*' "$WORK/floor-wrongca.log" |
    head -1 | sed 's/ *$//'))"
start_haproxy "$CERTS/other-ca.pem" haproxy-wrongca
if timeout 30 "$LG" latency -p "$HA_PORT" -s 1024 -n 1 >/dev/null 2>&1; then
    die "HAProxy forwarded to a sink signed by an untrusted CA: verification is off"
fi
stop_pid "$HA_PID"
R[verify,haproxy]="refused (wrong CA: connection closed, no response)"
start_kbridge "$CERTS/other-ca.pem" kbridge-wrongca
if timeout 30 "$LG" latency -p "$KB_PORT" -s 1024 -n 1 >/dev/null 2>&1; then
    die "kbridge forwarded to a sink signed by an untrusted CA: verification is off"
fi
stop_pid "$KB_PID"
R[verify,kbridge]="refused ($(grep -o 'certificate not trusted[^;(]*' "$WORK/kbridge-wrongca.log" |
    head -1 | sed 's/ *$//'))"

# --- the paths -------------------------------------------------------------------------------
# Every proxy runs from here on, side by side; each is idle while another is measured.
say "bench: starting the floor, HAProxy, kbridge (1 worker) and kbridge (2 workers)"
start_floor "$CERTS/ca.pem" floor
start_haproxy "$CERTS/ca.pem" haproxy
HAP_PORT=$HA_PORT
mapfile -t HA_PIDS < <(proc_tree "$HA_PID")
HA_THREADS=$(grep -s '^Threads:' "/proc/$HA_PID/status" | awk '{print $2}')
start_kbridge "$CERTS/ca.pem" kbridge1
KB1_PORT=$KB_PORT
KB1_PID=$KB_PID
WORKERS=no
if "$KB" --check-config -c <(kbridge_cfg /dev/stdout 20000 "$CERTS/ca.pem" "workers = 2") \
    >"$WORK/kbridge2-probe.log" 2>&1; then
    WORKERS=yes
    KB2_ADMIN=$("$LG" freeport -n 1)
    start_kbridge "$CERTS/ca.pem" kbridge2 "workers = 2
admin_listen = 127.0.0.1:$KB2_ADMIN"
    KB2_PORT=$KB_PORT
    KB2_PID=$KB_PID
else
    why=$(grep -m1 workers "$WORK/kbridge2-probe.log" | sed 's/^.*: line/line/')
    say "  kbridge rejects 'workers = 2' ($why)"
    NOTES+=("kbridge 2 workers: n/a: \`kbridge --check-config\` rejects \`workers = 2\` ($why).")
fi
PATHS=(direct floor haproxy kb1)
[ "$WORKERS" = yes ] && PATHS+=(kb2)
path_port() {
    case $1 in direct) echo "$SINK_PORT" ;; floor) echo "$FL_PORT" ;; haproxy) echo "$HAP_PORT" ;;
        kb1) echo "$KB1_PORT" ;; kb2) echo "$KB2_PORT" ;; esac
}
path_pids() {
    case $1 in floor) echo "$FL_PID" ;; haproxy) printf '%s\n' "${HA_PIDS[@]}" ;;
        kb1) echo "$KB1_PID" ;; kb2) echo "$KB2_PID" ;; esac
}
path_tls() { [ "$1" = direct ] && echo 1 || echo 0; }
# worker_split : "a / b" client connections accepted by kbridge 2 workers' loops so far
worker_split() {
    curl -s -m 5 "http://127.0.0.1:$KB2_ADMIN/metrics" 2>/dev/null |
        sed -n 's/^kbridge_worker_client_connections_total{worker="\([0-9]*\)"} \([0-9]*\)$/\2/p' |
        paste -sd/ - | sed 's|/| / |g'
}

for round in $(seq "$ROUNDS"); do
    say "bench: round $round of $ROUNDS"
    for wl in "${WORKLOADS[@]}"; do
        for path in "${PATHS[@]}"; do
            measure_tp "$path" "$wl" "$round"
        done
    done
    for path in "${PATHS[@]}"; do
        measure_lat "$path" "$round"
    done
done
[ "$WORKERS" = yes ] && R[kb2,split]=$(worker_split)
for path in "${PATHS[@]}"; do
    for wl in "${WORKLOADS[@]}"; do
        # ratios of same-round figures: to the floor, to HAProxy, and (Fetch) to Fetch v15 of
        # the same size through the same path
        round_ratio "$path,xfloor,$wl" "$path,cpugb,$wl" "floor,cpugb,$wl"
        round_ratio "$path,xhap,$wl" "$path,cpugb,$wl" "haproxy,cpugb,$wl"
        if [ "$(wl_api "$wl")" = fetch ]; then
            round_ratio "$path,xv15,$wl" "$path,cpugb,$wl" "$path,cpugb,f15_${wl##*_}"
        fi
        for m in mbps cpugb cpuutil pfgb hwm growth recgb recfull xfloor xhap xv15; do
            R[$path,$m,$wl]=$(med "$path,$m,$wl")
            R[$path,${m}_spread,$wl]=$(spread "$path,$m,$wl")
        done
    done
    for m in p50 p99; do
        R[$path,$m]=$(med "$path,$m")
        R[$path,${m}_spread]=$(spread "$path,$m")
    done
done
if [ "$STRACE" = 1 ] && command -v strace >/dev/null; then
    say "bench: system calls per GB (strace -c, ${STRACE_SECS}s per path and workload)"
    for wl in "${WORKLOADS[@]}"; do
        for path in "${PATHS[@]}"; do
            measure_strace "$path" "$wl"
            say "  $path $wl: ${R[$path,sysgb,$wl]:-—} syscalls/GB (${R[$path,systop,$wl]:-})"
        done
    done
fi
# --- peak RSS of one large response in a fresh process ---------------------------------------
# The long-running processes keep the heap a 50 MiB response grew, and reuse it without growing
# RSS again, so their growth after round 1 says little; a fresh process per measurement does.
# measure_fresh PATH WL : R[PATH,fresh,WL] = (VmHWM - VmRSS at start) / connections, in KiB
measure_fresh() {
    local path=$1 wl=$2 port pid line hwm base args=()
    local fl_port=$FL_PORT fl_pid=$FL_PID ha_port=$HA_PORT ha_pid=$HA_PID
    check_deadline "fresh $path $wl"
    case $path in
        floor) start_floor "$CERTS/ca.pem" "floor-fresh-$wl"; port=$FL_PORT; pid=$FL_PID ;;
        haproxy) start_haproxy "$CERTS/ca.pem" "haproxy-fresh-$wl"; port=$HA_PORT; pid=$HA_PID ;;
        kb1) start_kbridge "$CERTS/ca.pem" "kbridge1-fresh-$wl"; port=$KB_PORT; pid=$KB_PID ;;
    esac
    FL_PORT=$fl_port FL_PID=$fl_pid HA_PORT=$ha_port HA_PID=$ha_pid
    mapfile -t args < <(wl_args "$wl")
    # one connection, long enough for whole responses even where a path is slow
    line=$(timeout $((FRESH_SECS + 60)) "$LG" throughput -p "$port" "${args[@]}" -c 1 \
        -t "$FRESH_SECS" -w 0.5 --pid "$pid" 2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
    stop_pid "$pid"
    say "  fresh $path $wl: ${line:-FAILED}"
    hwm=$(kv "$line" hwm_kib)
    base=$(kv "$line" rss_base_kib)
    if [ -n "$hwm" ] && [ -n "$base" ] && [ "$(kv "$line" errors)" = 0 ]; then
        R[$path,fresh,$wl]=$((hwm - base))
        R[$path,freshhwm,$wl]=$hwm
    fi
}
FRESH_WLS=()
for wl in "${WORKLOADS[@]}"; do
    case $wl in f*_50m) FRESH_WLS+=("$wl") ;; esac
done
if [ ${#FRESH_WLS[@]} -gt 0 ]; then
    say "bench: peak RSS of 50 MiB responses in fresh processes"
    for wl in "${FRESH_WLS[@]}"; do
        for path in floor haproxy kb1; do
            measure_fresh "$path" "$wl"
        done
    done
fi
KB_PORT=$KB1_PORT
KB_PID=$KB1_PID

# --- profile (kbridge 1 worker, still running; before the idle test fragments its heap) ------
PERF_MODE=none
if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
    if perf stat -e instructions true 2>&1 | grep -q 'not supported'; then
        HW_COUNTERS="no (\`perf stat -e instructions true\`: <not supported>)"
    else
        HW_COUNTERS=yes
    fi
    if perf record -q -e cpu-clock -o "$WORK/perf.check" -- true >/dev/null 2>&1; then
        PERF_MODE=perf
    elif command -v valgrind >/dev/null; then
        PERF_MODE=callgrind
    fi
fi
# profile_perf PATH:WL : perf record of PATH's process under workload WL, then 1 s of strace
profile_perf() {
    local id=$1 path=${1%%:*} wl=${1#*:} lgpid pid args=()
    pid=$(path_pids "$path" | head -1)
    mapfile -t args < <(wl_args "$wl")
    check_deadline "profile $id"
    start_bg "$WORK/profile-$path-$wl.loadgen.log" timeout $((PROFILE_SECS + 40)) "$LG" \
        throughput -p "$(path_port "$path")" "${args[@]}" -t $((PROFILE_SECS + 2)) -w 0.5
    lgpid=$BG_PID
    sleep 1
    perf record -q -e cpu-clock -F 1999 -g -p "$pid" -o "$WORK/perf-$path-$wl.data" \
        -- sleep "$PROFILE_SECS" >"$WORK/perf-$path-$wl.log" 2>&1
    if command -v strace >/dev/null; then   # which system calls, and how many bytes each
        timeout 1 strace -f -qq -p "$pid" -o "$WORK/strace-$path-$wl.txt" \
            -e trace=read,write,readv,writev,ioctl,epoll_ctl,epoll_wait,sendmsg,recvfrom,sendto,poll \
            >/dev/null 2>&1
    fi
    wait "$lgpid"
    grep '^RESULT' "$WORK/profile-$path-$wl.loadgen.log" >&2
}
perf_top() { # perf_top PATH-WL : markdown rows
    perf report -i "$WORK/perf-$1.data" --stdio --no-children -F overhead,sym,dso -g none \
        2>/dev/null | grep -E '^ +[0-9.]+%' | head -15 |
        awk '{pct=$1; dso=$NF; $1=""; $NF=""; sub(/^ +/, ""); sub(/ +$/, "");
              gsub(/\|/, "\\|"); printf "| %d | %s | `%s` | %s |\n", NR, pct, $0, dso}'
}
perf_dso() { # perf_dso PATH-WL : markdown rows
    perf report -i "$WORK/perf-$1.data" --stdio --no-children -F overhead,dso -g none \
        2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 |
        awk '{pct=$1; $1=""; sub(/^ +/, ""); sub(/ +$/, ""); printf "| %s | %s |\n", $0, pct}'
}
# strace_summary PATH-WL : markdown rows "| syscall | calls | per MiB |", per MiB written (write and
# writev: TLS records to the sink, and the small responses to the client)
strace_summary() {
    [ -s "$WORK/strace-$1.txt" ] || return 0
    awk '
        $2 ~ /^[a-z_0-9]+\(/ {
            name = $2; sub(/\(.*/, "", name); n[name]++
            if ((name == "write" || name == "writev" || name == "sendto") && $(NF - 1) == "=" &&
                $NF ~ /^[0-9]+$/)
                tls += $NF }
        END { for (k in n) printf "| `%s` | %d | %.1f |\n", k, n[k],
                  tls ? n[k] / (tls / 1048576) : 0 }' "$WORK/strace-$1.txt" |
        sort -t'|' -k3 -rn
}
# write_sizes PATH-WL : the most frequent write()/writev() sizes (bytes per system call)
write_sizes() {
    [ -s "$WORK/strace-$1.txt" ] || return 0
    awk '$2 ~ /^(writev?|sendto)\(/ && $(NF - 1) == "=" && $NF ~ /^[0-9]+$/ { c[$NF]++ }
        END { for (k in c) printf "%d %s\n", c[k], k }' "$WORK/strace-$1.txt" |
        sort -rn | head -4 | awk '{printf "%s%s bytes x %s", (NR > 1 ? ", " : ""), $2, $1}'
}
if [ "$PERF_MODE" = perf ]; then
    say "bench: profiling (perf, ${PROFILE_SECS}s per load): ${PROFILES[*]}"
    for id in "${PROFILES[@]}"; do
        profile_perf "$id"
    done
fi
# --- idle connections, one fresh proxy at a time ---------------------------------------------
# Fresh processes: the long-running ones hold heap freed by the 50 MiB responses, which new
# connections would reuse without growing RSS. Not the floor: it is one thread per connection,
# a floor for bytes, not for connections.
stop_pid "$FL_PID"
stop_pid "$HA_PID"
stop_pid "$KB1_PID"
[ "$WORKERS" = yes ] && stop_pid "$KB2_PID"
start_haproxy "$CERTS/ca.pem" haproxy-idle
mapfile -t pids < <(proc_tree "$HA_PID")
measure_idle haproxy "$HA_PORT" "${pids[@]}"
stop_pid "$HA_PID"
start_kbridge "$CERTS/ca.pem" kbridge1-idle
measure_idle kb1 "$KB_PORT" "$KB_PID"
stop_pid "$KB_PID"
if [ "$WORKERS" = yes ]; then
    start_kbridge "$CERTS/ca.pem" kbridge2-idle "workers = 2"
    measure_idle kb2 "$KB_PORT" "$KB_PID"
    stop_pid "$KB_PID"
fi

if [ "$PERF_MODE" = callgrind ]; then
    # valgrind slows kbridge ~50x: a short run, throughput numbers meaningless.
    say "bench: profiling kbridge (callgrind fallback)"
    for id in "${PROFILES[@]}"; do
        [ "${id%%:*}" = kb1 ] || continue
        wl=${id#*:}
        mapfile -t args < <(wl_args "$wl")
        KB_PORT=$("$LG" freeport -n 2)
        kbridge_cfg "$WORK/kbridge-cg.ini" "$KB_PORT" "$CERTS/ca.pem"
        start_bg "$WORK/callgrind-$wl.log" valgrind --tool=callgrind \
            --callgrind-out-file="$WORK/callgrind-$wl.out" "$KB" -c "$WORK/kbridge-cg.ini"
        cg=$BG_PID
        "$LG" waitport -p "$KB_PORT" -t 60 &&
            timeout 60 "$LG" throughput -p "$KB_PORT" "${args[@]}" -t 3 >/dev/null 2>&1
        stop_pid "$cg"
    done
fi

stop_pid "$SINK_PID"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(($(date +%s) - T_START))

# --- RESULTS.md ------------------------------------------------------------------------------
v() { local x=${R[$1]:-}; [ -n "$x" ] && printf '%s' "$x" || printf '—'; }
# cell KEY [ERRKEY] : median (range), "—" when not measured, "(errors)" when a run failed
cell() {
    local x=${R[$1]:-} sp
    sp=$(awk -F, -v k="$1" 'BEGIN { n = split(k, a, ","); s = a[1] "," a[2] "_spread";
        for (i = 3; i <= n; i++) s = s "," a[i]; print s }')
    sp=${R[$sp]:-}
    if [ -z "$x" ]; then printf '—'; else printf '%s' "$x"; [ -n "$sp" ] && printf ' (%s)' "$sp"; fi
    [ -n "${2:-}" ] && [ "${R[$2]:-0}" != 0 ] && printf ' (errors)'
    return 0
}
calc() { awk "BEGIN { printf \"%.2f\", $1 }" 2>/dev/null; }
# unstable KEY : a warning when KEY's per-round values differ by more than 1.5x (a median of
# rounds that disagree that much describes none of them)
unstable() {
    local sk sp
    sk=$(awk -v k="$1" 'BEGIN { n = split(k, a, ","); s = a[1] "," a[2] "_spread";
        for (i = 3; i <= n; i++) s = s "," a[i]; print s }')
    sp=${R[$sk]:-}
    [ -n "$sp" ] && awk -v lo="${sp%-*}" -v hi="${sp#*-}" 'BEGIN {
        if (lo > 0 && hi / lo > 1.5) printf "; **rounds disagree** (%s-%s): see below", lo, hi }'
    return 0
}
# target VALUE LIMIT : for "VALUE <= LIMIT": "**met** (N% under)" / "**missed** by N%" / "n/a"
target() {
    if [ -z "$1" ] || [ -z "$2" ]; then echo "n/a (not measured)"; return; fi
    awk -v x="$1" -v l="$2" 'BEGIN {
        if (x <= l) printf "**met** (%.0f%% under the limit)", (l - x) / l * 100
        else printf "**missed** by %.0f%% (%.2f over)", (x - l) / l * 100, x - l }'
}
path_name() {
    case $1 in
        direct) echo "direct (no proxy)" ;; floor) echo "floor (bench/floor.c)" ;;
        haproxy) echo "HAProxy" ;; kb1) echo "kbridge, 1 worker" ;; kb2) echo "kbridge, 2 workers" ;;
    esac
}
# wl_table WL : the per-path table of one workload
wl_table() {
    local wl=$1 p rec
    echo "| path | MB/s | CPU s/GB | x floor | x HAProxy |$([ "$(wl_api "$wl")" = fetch ] &&
        echo ' x Fetch v15 |') peak RSS KiB | RSS growth KiB/conn | page faults/GB | TLS records/GB \
(full %) | syscalls/GB | top syscalls per GB |"
    echo "|---|---:|---:|---:|---:|$([ "$(wl_api "$wl")" = fetch ] && echo '---:|')---:|---:|---:|---:|---:|---|"
    for p in "${PATHS[@]}"; do
        rec="$(v "$p,recgb,$wl") ($(v "$p,recfull,$wl") %)"
        echo "| $(path_name "$p") | $(cell "$p,mbps,$wl" "$p,err,$wl") | $(cell "$p,cpugb,$wl") | \
$(cell "$p,xfloor,$wl") | $(cell "$p,xhap,$wl") |$([ "$(wl_api "$wl")" = fetch ] &&
            echo " $(cell "$p,xv15,$wl") |") $(v "$p,hwm,$wl") | $(v "$p,growth,$wl") | \
$(v "$p,pfgb,$wl") | $rec | \
$(v "$p,sysgb,$wl") | $(v "$p,systop,$wl") |"
    done
}
has_wl() { local w; for w in "${WORKLOADS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

{
    echo "# kbridge side-by-side benchmark"
    echo
    echo "Generated by \`bench/run.sh\` (\`make bench\`); do not edit by hand, rerun instead."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), total run time ${T_TOTAL} s"
    echo "- Command: \`BENCH_SECS=$SECS BENCH_WARMUP=$WARMUP BENCH_CONNS=$CONNS BENCH_DEPTH=$DEPTH \
BENCH_FETCH_CONNS=$FETCH_CONNS BENCH_FETCH_DEPTH=$FETCH_DEPTH BENCH_LAT_REQS=$LAT_REQS \
BENCH_IDLE_CONNS=$IDLE_WANT BENCH_ROUNDS=$ROUNDS BENCH_STRACE_SECS=$STRACE_SECS \
BENCH_WORKLOADS='${WORKLOADS[*]}' bash bench/run.sh ${BUILD#"$ROOT"/}\`"
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), \
Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; \
kernel TLS: $(grep -qs '\btls\b' /proc/sys/net/ipv4/tcp_available_ulp && echo available ||
        echo "not available (tcp_available_ulp: $(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null))"), \
so every path pays AES-GCM in user space."
    echo "- Versions: $(haproxy -v | head -1 | awk '{print "HAProxy " $3}'), \
$(openssl version | awk '{print $1 " " $2}'), libevent $(pkg-config --modversion libevent), \
kbridge $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain \
2>/dev/null | grep -q . && echo ' + uncommitted changes') ($("$KB" --version 2>&1 | head -1))"
    echo "- Load average at start / end: $LOAD_START / $LOAD_END$(awk -v l="${LOAD_START%% *}" \
'BEGIN { if (l > 0.5) printf ". **Noise warning:** something else was using the CPUs when \
the run began; compare paths within this run only" }')."
    echo "- This is a small shared VM: the same binary's numbers move by 30-50% between runs \
minutes apart, far more than between paths. That is why every path is measured $ROUNDS times, \
interleaved (round 1: every workload through every path, round 2: the same, ...), and each \
cell below is the median with the range of the $ROUNDS runs in brackets; every ratio is \
computed per round from same-round figures, then its median (range) is shown. Compare paths \
within this run only."
    echo
    echo "## Setup"
    echo
    echo "All on 127.0.0.1. The sink (\`bench/sink.c\`) terminates TLS with the test PKI from \
\`tests/integration/gen_certs.sh\` (RSA-2048 leaf). It answers Produce v3 with a 16-byte \
response and Produce v9+ with a 15-byte flexible one; it answers Fetch (v12-v17) with a \
response of MaxBytes bytes (one topic, one partition, filler records), with the NodeEndpoints \
tagged field (tag 0, v16+: node 0 = localhost:sink port) when the request's RackId is \"ne\". \
The load generator (\`bench/loadgen.c\`) checks every response's correlation id and size."
    echo
    echo "- **direct**: loadgen speaks TLS to the sink itself (verified, SNI localhost). No \
proxy process, so no proxy CPU, RSS or system calls; its client pays for TLS, the proxied \
paths' client does not, so direct is not a strict lower bound for latency."
    echo "- **floor**: \`bench/floor.c\`, the simplest correct relay: one thread per connection, \
256 KiB reads from the plaintext client, \`SSL_write\` of the whole read (full 16 KiB \
records, a partial one only at the end) into one flat, reused buffer through a custom BIO \
(\`BIO_meth_new\` with a write callback), one \`write\` per read; responses: \`SSL_read\` until \
it wants more, one \`write\`. Full certificate and host name verification against the bench \
CA. No Kafka parsing and no address rewriting: the physical floor of a relay, not a proxy."
    echo "- **HAProxy**: \`mode tcp\`, \`server s1 127.0.0.1:PORT ssl verify required ca-file \
ca.pem sni str(localhost) verifyhost localhost\`; default threads (${HA_THREADS:-?} threads \
here$([ -n "$HAPROXY_NBTHREAD" ] && echo ", nbthread $HAPROXY_NBTHREAD"))."
    echo "- **kbridge 1 worker**: \`bootstrap_servers = localhost:PORT\`, \`tls_ca_file\`, \
\`tls_verify = full\`, \`log_level = warn\`, \`idle_timeout_ms = 0\`, \
\`buffer_high_bytes = $BUF_HIGH\`."
    echo "- **kbridge 2 workers**: the same plus \`workers = 2\` (and \`admin_listen\`). Client \
connections served by each worker loop over the whole run: ${R[kb2,split]:-n/a} (worker 0 / \
worker 1). The load generator, the sink and the proxy share $(nproc) vCPUs, so 2 workers \
cannot show a throughput gain here; their CPU per GB is reported instead."
    echo "- The floor, HAProxy, kbridge 1 worker and kbridge 2 workers run side by side for \
the whole run; each is idle while another path is measured."
    echo "- Verification check (each pointed at the wrong CA): floor: $(v verify,floor); \
HAProxy: $(v verify,haproxy); kbridge: $(v verify,kbridge)."
    echo "- Throughput: Produce with $CONNS connections x $DEPTH requests in flight, Fetch \
with $FETCH_CONNS connections x $FETCH_DEPTH in flight (a consumer keeps one Fetch in flight \
per broker); ${WARMUP} s warm-up, ${SECS} s measured. MB/s = 10^6 payload bytes per second: \
request frames answered for Produce, response bytes received (counted as they arrive) for \
Fetch. CPU s/GB = (utime+stime of the proxy process, /proc/PID/stat) / 10^9 payload bytes."
    echo "- Peak RSS = the proxy's VmHWM over the run (warm-up included), after resetting it \
(\`echo 5 > /proc/PID/clear_refs\`) just before the run; RSS growth = (VmHWM - VmRSS at the \
reset) / connections. Page faults/GB = minor faults of the proxy (/proc/PID/stat minflt) in \
the measured seconds per 10^9 payload bytes: memory freshly mapped for data (on this \
paravirtualised VM every fault is expensive, see PROFILE.md)."
    echo "- TLS records/GB: records in the payload direction per 10^9 payload bytes, counted \
by the sink with OpenSSL's message callback (it sees every record header): records the proxy \
sent to the sink for Produce, records the sink sent for Fetch (the same for every path: the \
sink writes them). Full % = share of records carrying 16 KiB (16401 bytes of ciphertext, TLS \
1.3 AES-GCM)."
    echo "- Syscalls/GB: a separate ${STRACE_SECS} s of the same load with \`strace -c -f\` \
attached to the proxy (all its threads), divided by the payload bytes the sink counted in \
that window. strace slows the proxy down, so batching can differ a little from the untraced \
runs; compare paths, not rates."
    echo "- Latency: 1 KiB Produce v3, one request in flight, one connection, $LAT_REQS timed \
requests after a warm-up."
    echo "- Idle: $IDLE_N plaintext client connections held open, each after one 1 KiB \
request answered (so every upstream TLS connection is established), through a freshly \
started proxy (the long-running ones hold heap freed by the 50 MiB responses). KiB/conn = \
(VmRSS after - before) / connections. Not run for the floor (one thread per connection)."
    echo
    echo "## Targets (issue 16; ratios in this run, medians of per-round ratios)"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---|---|"
    for wl in p3_1m p9_1m p11_1m; do
        has_wl $wl || continue
        echo "| $(wl_name $wl): kbridge CPU/GB <= 1.05x the floor | \
$(cell "kb1,xfloor,$wl")x ($(v "kb1,cpugb,$wl") vs $(v "floor,cpugb,$wl") s/GB) | \
$(target "${R[kb1,xfloor,$wl]:-}" 1.05)$(unstable "kb1,xfloor,$wl") |"
        echo "| $(wl_name $wl): kbridge CPU/GB <= 0.90x HAProxy | \
$(cell "kb1,xhap,$wl")x ($(v "kb1,cpugb,$wl") vs $(v "haproxy,cpugb,$wl") s/GB) | \
$(target "${R[kb1,xhap,$wl]:-}" 0.90)$(unstable "kb1,xhap,$wl") |"
    done
    for wl in p3_1k p9_1k p11_1k; do
        has_wl $wl || continue
        echo "| $(wl_name $wl): kbridge CPU/GB <= 0.90x HAProxy | \
$(cell "kb1,xhap,$wl")x ($(v "kb1,cpugb,$wl") vs $(v "haproxy,cpugb,$wl") s/GB) | \
$(target "${R[kb1,xhap,$wl]:-}" 0.90)$(unstable "kb1,xhap,$wl") |"
    done
    for wl in "${WORKLOADS[@]}"; do
        case $wl in f16_* | f17_*) lim=1.05 ;; f16ne_* | f17ne_*) lim=1.15 ;; *) continue ;; esac
        echo "| $(wl_name $wl): kbridge CPU/GB <= ${lim}x Fetch v15 (same size, kbridge) | \
$(cell "kb1,xv15,$wl")x ($(v "kb1,cpugb,$wl") vs $(v "kb1,cpugb,f15_${wl##*_}") s/GB; \
the floor: $(v "floor,xv15,$wl")x) | $(target "${R[kb1,xv15,$wl]:-}" $lim)$(unstable "kb1,xv15,$wl") |"
    done
    for wl in "${WORKLOADS[@]}"; do
        case $wl in f*_50m) ;; *) continue ;; esac
        g=${R[kb1,fresh,$wl]:-}
        echo "| $(wl_name $wl): kbridge peak RSS growth <= 2 x buffer_high_bytes \
($((2 * BUF_HIGH / 1024)) KiB) per connection (fresh process) | ${g:-?} KiB/conn (floor \
$(v "floor,fresh,$wl"), HAProxy $(v "haproxy,fresh,$wl")) | $(target "$g" $((2 * BUF_HIGH / 1024))) |"
    done
    added=""; hadded=""
    [ -n "${R[kb1,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
        added=$(calc "${R[kb1,p99]} - ${R[direct,p99]}")
    [ -n "${R[haproxy,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
        hadded=$(calc "${R[haproxy,p99]} - ${R[direct,p99]}")
    echo "| added p99 latency (1 KiB) no worse than HAProxy's | kbridge +${added:-?} µs, \
HAProxy +${hadded:-?} µs over direct ($(v kb1,p99) / $(v haproxy,p99) / $(v direct,p99) µs) | \
$(target "$added" "$hadded") |"
    echo "| <= 64 KiB per idle client connection (incl. its upstream TLS connection) | \
$(v kb1,idle_kib) KiB (HAProxy: $(v haproxy,idle_kib) KiB) | $(target "${R[kb1,idle_kib]:-}" 64) |"
    echo
    echo "Where the rounds of a ratio disagree by more than 1.5x the verdict says so: the \
median then describes none of them. Seen so far on kbridge's Fetch v16+ path, whose cost \
depends on glibc's heap: a response needing a rewrite is held whole, pulled up and copied, in \
fresh memory that page-faults in (see page faults/GB and PROFILE.md), until the process has \
once freed a block large enough (a 50 MiB response) for malloc to keep its heap: after that \
it stops faulting. kbridge 1 worker's round 1 runs before any 50 MiB response, its rounds 2 \
and 3 after; 2 workers (per-thread arenas) fault in every round."
    echo
    echo "The 2-workers throughput target of earlier runs is dropped (issue 16: load generator, \
sink and proxy share $(nproc) vCPUs); kbridge 2 workers' CPU per GB is in every table below."
    echo
    echo "## Produce (the producer path)"
    for wl in "${WORKLOADS[@]}"; do
        [ "$(wl_api "$wl")" = produce ] || continue
        echo
        echo "### $(wl_name "$wl")"
        echo
        wl_table "$wl"
    done
    echo
    echo "## Fetch (the consumer path)"
    echo
    echo "x Fetch v15 = this path's CPU per GB for this response divided by its CPU per GB for \
a Fetch v15 response of the same size, same round. RSS growth per connection is what a \
proxy holds for one response in flight (the floor: 3 x 256 KiB of buffers and its thread, \
whatever the size); in these long-running processes it is only meaningful in round 1 (a heap \
grown by a 50 MiB response is reused, not grown again), so the median understates it: the \
fresh-process figures are below."
    if [ ${#FRESH_WLS[@]} -gt 0 ]; then
        echo
        echo "Peak RSS growth per connection for one run of each 50 MiB workload in a freshly \
started process, one connection, ${FRESH_SECS} s (VmHWM - VmRSS at start, KiB; peak VmHWM \
in brackets; 2 x buffer_high_bytes = $((2 * BUF_HIGH / 1024)) KiB):"
        echo
        echo "| workload | floor | HAProxy | kbridge, 1 worker |"
        echo "|---|---:|---:|---:|"
        for wl in "${FRESH_WLS[@]}"; do
            echo "| $(wl_name "$wl") | $(v "floor,fresh,$wl") ($(v "floor,freshhwm,$wl")) | \
$(v "haproxy,fresh,$wl") ($(v "haproxy,freshhwm,$wl")) | $(v "kb1,fresh,$wl") \
($(v "kb1,freshhwm,$wl")) |"
        done
    fi
    for wl in "${WORKLOADS[@]}"; do
        [ "$(wl_api "$wl")" = fetch ] || continue
        echo
        echo "### $(wl_name "$wl")"
        echo
        wl_table "$wl"
    done
    echo
    echo "## Latency and idle connections"
    echo
    echo "| path | p50 µs | p99 µs | added p99 over direct µs | idle KiB/conn |"
    echo "|---|---:|---:|---:|---:|"
    for p in "${PATHS[@]}"; do
        a=""
        [ "$p" != direct ] && [ -n "${R[$p,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
            a=$(calc "${R[$p,p99]} - ${R[direct,p99]}")
        idle="—"
        [ -n "${R[$p,idle_kib]:-}" ] && idle="$(v "$p,idle_kib") ($(v "$p,idle_conns") conns, \
$(v "$p,idle_before") -> $(v "$p,idle_after") KiB, opened in $(v "$p,idle_secs") s)"
        echo "| $(path_name "$p") | $(cell "$p,p50" "$p,laterr") | $(cell "$p,p99") | ${a:-—} | \
$idle |"
    done
    echo
    echo "Proxy CPU utilisation during the throughput runs (CPU-seconds per second; 1.0 = one \
core), 1 MiB Produce v3: floor $(v floor,cpuutil,p3_1m), HAProxy $(v haproxy,cpuutil,p3_1m), \
kbridge 1 worker $(v kb1,cpuutil,p3_1m), kbridge 2 workers $(v kb2,cpuutil,p3_1m). With \
$(nproc) CPUs shared by the load generator, the proxy and the sink, every path is CPU-bound on \
the machine, not on the proxy alone: CPU s/GB is the efficiency number, and the direct path's \
throughput is the ceiling of any proxied path here. RSS 1 s after the idle connections were \
closed: HAProxy $(v haproxy,idle_closed) KiB, kbridge $(v kb1,idle_closed) KiB."
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "## Notes"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
    echo
    echo "Logs, configs, strace and perf data of this run: \`${WORK#"$ROOT"/}/\`."
} >"$RESULTS"
say "bench: wrote $RESULTS"

# --- PROFILE.md ------------------------------------------------------------------------------
if [ "$PERF_MODE" = perf ]; then
    {
        echo "# Profiles under throughput load"
        echo
        echo "Generated by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (same run as \
RESULTS.md): kbridge 1 worker, and the floor for comparison, each with the plaintext loadgen \
in front and the TLS sink behind."
        echo
        echo "Command: \`perf record -e cpu-clock -F 1999 -g -p PID -- sleep $PROFILE_SECS\` \
while the load runs, then \`perf report --no-children -F overhead,sym,dso -g none\`. Hardware \
counters available: ${HW_COUNTERS}; \`cpu-clock\` (a software timer event) is used, so the \
percentages are of on-CPU time of the profiled process, kernel included."
        for id in "${PROFILES[@]}"; do
            path=${id%%:*}
            wl=${id#*:}
            f=$path-$wl
            echo
            echo "## $(path_name "$path"): $(wl_name "$wl")"
            echo
            echo "Load during the profile: $(grep -h '^RESULT' \
"$WORK/profile-$f.loadgen.log" 2>/dev/null | sed -n 's/.* mbps=\([^ ]*\).*/\1 MB\/s/p')."
            echo
            echo "Top 15 symbols (self time):"
            echo
            echo "| # | self | symbol | object |"
            echo "|---:|---:|---|---|"
            perf_top "$f"
            echo
            echo "By object:"
            echo
            echo "| object | share |"
            echo "|---|---:|"
            perf_dso "$f"
            if [ -s "$WORK/strace-$f.txt" ]; then
                echo
                echo "System calls in 1 s of the same load under \`strace -f\` (strace slows \
the process down, so look at the ratios, not the rates); per MiB = calls per MiB written \
(\`write\`/\`writev\`/\`sendto\`: TLS records to the sink plus responses to the client)."
                echo
                echo "| syscall | calls | per MiB |"
                echo "|---|---:|---:|"
                strace_summary "$f"
                echo
                echo "Most frequent write sizes (bytes per \`write\`/\`writev\`/\`sendto\`; a \
full TLS record is 16406 bytes on the wire): $(write_sizes "$f")."
            fi
        done
    } >"$PROFILE_OUT"
    say "bench: wrote $PROFILE_OUT"
elif [ "$PERF_MODE" = callgrind ]; then
    {
        echo "# kbridge profile (callgrind fallback: perf cannot sample here)"
        echo
        for id in "${PROFILES[@]}"; do
            [ "${id%%:*}" = kb1 ] || continue
            wl=${id#*:}
            echo "## $(wl_name "$wl")"
            echo
            echo '```'
            callgrind_annotate "$WORK/callgrind-$wl.out" 2>/dev/null | sed -n '1,40p' |
                grep -E '^ *[0-9,]+ ' | head -15
            echo '```'
        done
    } >"$PROFILE_OUT"
    say "bench: wrote $PROFILE_OUT"
fi
cat "$RESULTS"
