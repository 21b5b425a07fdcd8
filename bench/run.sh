#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] - the side-by-side benchmark behind `make bench`: one TLS sink, and
# in front of it, in turn, nothing (loadgen speaks TLS itself), HAProxy (tcp mode, verified TLS
# to the sink), kbridge with 1 worker and kbridge with 2 workers. For each path: throughput with
# 1 KiB and 1 MiB Produce frames, the proxy's CPU-seconds per GB and RSS under load, p50/p99 of
# 1 KiB requests with one in flight, and RSS per idle client connection. Then a perf profile of
# kbridge under both loads. Writes bench/RESULTS.md and bench/PROFILE.md.
#
# Loopback only; every step is bounded (timeout(1) on each load run, BENCH_DEADLINE overall).
# Knobs (environment): BENCH_SECS (5) measured seconds per throughput run, BENCH_WARMUP (1),
# BENCH_CONNS (2) connections, BENCH_DEPTH (8) requests in flight per connection,
# BENCH_LAT_REQS (20000), BENCH_IDLE_CONNS (10000), BENCH_PROFILE (1), BENCH_PROFILE_SECS (4),
# BENCH_ROUNDS (3) runs of every measurement, interleaved across paths; BENCH_DEADLINE (900) s, BENCH_HAPROXY_NBTHREAD (empty: HAProxy's default),
# BENCH_RESULTS / BENCH_PROFILE_OUT output files.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-build-bench}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SECS=${BENCH_SECS:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-2}
DEPTH=${BENCH_DEPTH:-8}
LAT_REQS=${BENCH_LAT_REQS:-20000}
IDLE_WANT=${BENCH_IDLE_CONNS:-10000}
PROFILE=${BENCH_PROFILE:-1}
PROFILE_SECS=${BENCH_PROFILE_SECS:-4}
DEADLINE=${BENCH_DEADLINE:-900}
ROUNDS=${BENCH_ROUNDS:-3}
HAPROXY_NBTHREAD=${BENCH_HAPROXY_NBTHREAD:-}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
PROFILE_OUT=${BENCH_PROFILE_OUT:-$ROOT/bench/PROFILE.md}

KB=$BUILD/kbridge
LG=$BUILD/bench/loadgen
SINK=$BUILD/bench/sink
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
start_bg "$WORK/sink.log" "$SINK" -p "$SINK_PORT" --cert "$CERTS/server.pem" \
    --key "$CERTS/server.key" --max-secs $((DEADLINE + 120))
SINK_PID=$BG_PID
"$LG" waitport -p "$SINK_PORT" -t 10 || die "sink did not start: $(cat "$WORK/sink.log")"
say "bench: sink on 127.0.0.1:$SINK_PORT (pid $SINK_PID)"

# --- one path's measurements -----------------------------------------------------------------
# Paths are measured in rounds (direct, HAProxy, kbridge 1 worker, kbridge 2 workers, then again),
# all proxies running side by side, so a slow spell of this shared machine hits every path
# alike; each table cell is the median of BENCH_ROUNDS runs, with the range next to it.

# measure_tp PATH PORT TLS(0|1) SIZE ROUND PID... : one throughput run; fills R[PATH,*,SIZE,ROUND].
measure_tp() {
    local path=$1 port=$2 tls=$3 size=$4 round=$5 line p
    shift 5
    local tlsargs=() pidargs=()
    [ "$tls" = 1 ] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    for p in "$@"; do pidargs+=(--pid "$p"); done
    check_deadline "$path throughput $size round $round"
    line=$(timeout "$(awk "BEGIN { print int($SECS + $WARMUP + 60) }")" "$LG" throughput -p "$port" "${tlsargs[@]}" \
        -s "$size" -c "$CONNS" -d "$DEPTH" -t "$SECS" -w "$WARMUP" "${pidargs[@]}" \
        2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
    say "  $path throughput $size (round $round): ${line:-FAILED (see $WORK/$path.loadgen.log)}"
    R[$path,mbps,$size,$round]=$(kv "$line" mbps)
    R[$path,cpugb,$size,$round]=$(kv "$line" cpu_s_per_gb)
    R[$path,cpuutil,$size,$round]=$(kv "$line" cpu_util)
    R[$path,rss,$size,$round]=$(kv "$line" rss_kib_max)
    [ -n "$line" ] || R[$path,err,$size]=1
    [ "$(kv "$line" errors)" = 0 ] || R[$path,err,$size]=1
}

# measure_lat PATH PORT TLS ROUND : one latency run; fills R[PATH,p50|p99,ROUND].
measure_lat() {
    local path=$1 port=$2 tls=$3 round=$4 line
    local tlsargs=()
    [ "$tls" = 1 ] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    check_deadline "$path latency round $round"
    line=$(timeout 90 "$LG" latency -p "$port" "${tlsargs[@]}" -s 1024 -n "$LAT_REQS" \
        --max-secs 60 2>>"$WORK/$path.loadgen.log" | grep '^RESULT')
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

# --- verification is really on ---------------------------------------------------------------
say "bench: checking that both proxies refuse a sink their CA does not trust"
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
say "bench: starting HAProxy, kbridge (1 worker) and kbridge (2 workers)"
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
PATHS=(direct haproxy kb1)
[ "$WORKERS" = yes ] && PATHS+=(kb2)
path_port() {
    case $1 in direct) echo "$SINK_PORT" ;; haproxy) echo "$HAP_PORT" ;;
        kb1) echo "$KB1_PORT" ;; kb2) echo "$KB2_PORT" ;; esac
}
path_pids() {
    case $1 in haproxy) printf '%s\n' "${HA_PIDS[@]}" ;; kb1) echo "$KB1_PID" ;;
        kb2) echo "$KB2_PID" ;; esac
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
    for size in 1024 1048576; do
        for path in "${PATHS[@]}"; do
            [ "$path" = kb2 ] && split_before=$(worker_split)
            mapfile -t pids < <(path_pids "$path")
            measure_tp "$path" "$(path_port "$path")" "$(path_tls "$path")" "$size" "$round" \
                "${pids[@]}"
            if [ "$path" = kb2 ]; then
                R[kb2,split,$size,$round]="$split_before -> $(worker_split)"
            fi
        done
    done
    for path in "${PATHS[@]}"; do
        measure_lat "$path" "$(path_port "$path")" "$(path_tls "$path")" "$round"
    done
done
for path in "${PATHS[@]}"; do
    for size in 1024 1048576; do
        for m in mbps cpugb cpuutil rss; do
            R[$path,$m,$size]=$(med "$path,$m,$size")
            R[$path,${m}_spread,$size]=$(spread "$path,$m,$size")
        done
    done
    for m in p50 p99; do
        R[$path,$m]=$(med "$path,$m")
        R[$path,${m}_spread]=$(spread "$path,$m")
    done
done
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
profile_perf() { # profile_perf SIZE
    local size=$1 lgpid
    check_deadline "profile $size"
    start_bg "$WORK/profile-$size.loadgen.log" timeout $((PROFILE_SECS + 40)) "$LG" throughput \
        -p "$KB_PORT" -s "$size" -c "$CONNS" -d "$DEPTH" -t $((PROFILE_SECS + 2)) -w 0.5
    lgpid=$BG_PID
    sleep 1
    perf record -q -e cpu-clock -F 1999 -g -p "$KB_PID" -o "$WORK/perf-$size.data" \
        -- sleep "$PROFILE_SECS" >"$WORK/perf-$size.log" 2>&1
    if command -v strace >/dev/null; then   # which system calls, and how many bytes each
        timeout 1 strace -f -qq -p "$KB_PID" -o "$WORK/strace-$size.txt" \
            -e trace=read,write,readv,writev,ioctl,epoll_ctl,epoll_wait,sendmsg,recvfrom,sendto \
            >/dev/null 2>&1
    fi
    wait "$lgpid"
    grep '^RESULT' "$WORK/profile-$size.loadgen.log" >&2
}
perf_top() { # perf_top SIZE : markdown rows
    perf report -i "$WORK/perf-$1.data" --stdio --no-children -F overhead,sym,dso -g none \
        2>/dev/null | grep -E '^ +[0-9.]+%' | head -15 |
        awk '{pct=$1; dso=$NF; $1=""; $NF=""; sub(/^ +/, ""); sub(/ +$/, "");
              gsub(/\|/, "\\|"); printf "| %d | %s | `%s` | %s |\n", NR, pct, $0, dso}'
}
perf_dso() { # perf_dso SIZE : markdown rows
    perf report -i "$WORK/perf-$1.data" --stdio --no-children -F overhead,dso -g none \
        2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 |
        awk '{pct=$1; $1=""; sub(/^ +/, ""); sub(/ +$/, ""); printf "| %s | %s |\n", $0, pct}'
}
# strace_summary SIZE : markdown rows "| syscall | calls | per MiB |", per MiB written (write and
# writev: TLS records to the sink, and the small responses to the client)
strace_summary() {
    [ -s "$WORK/strace-$1.txt" ] || return 0
    awk '
        $2 ~ /^[a-z_0-9]+\(/ {
            name = $2; sub(/\(.*/, "", name); n[name]++
            if ((name == "write" || name == "writev") && $(NF - 1) == "=" && $NF ~ /^[0-9]+$/)
                tls += $NF }
        END { for (k in n) printf "| `%s` | %d | %.1f |\n", k, n[k],
                  tls ? n[k] / (tls / 1048576) : 0 }' "$WORK/strace-$1.txt" |
        sort -t'|' -k3 -rn
}
# write_sizes SIZE : the most frequent write()/writev() sizes (bytes per system call)
write_sizes() {
    [ -s "$WORK/strace-$1.txt" ] || return 0
    awk '$2 ~ /^writev?\(/ && $(NF - 1) == "=" && $NF ~ /^[0-9]+$/ { c[$NF]++ }
        END { for (k in c) printf "%d %s\n", c[k], k }' "$WORK/strace-$1.txt" |
        sort -rn | head -4 | awk '{printf "%s%s bytes x %s", (NR > 1 ? ", " : ""), $2, $1}'
}
if [ "$PERF_MODE" = perf ]; then
    say "bench: profiling kbridge (perf, ${PROFILE_SECS}s per load)"
    profile_perf 1024
    profile_perf 1048576
fi
# --- idle connections, one proxy at a time (each fragments its proxy's heap) ------------------
measure_idle haproxy "$HAP_PORT" "${HA_PIDS[@]}"
stop_pid "$HA_PID"
measure_idle kb1 "$KB1_PORT" "$KB1_PID"
stop_pid "$KB1_PID"
if [ "$WORKERS" = yes ]; then
    measure_idle kb2 "$KB2_PORT" "$KB2_PID"
    stop_pid "$KB2_PID"
fi

if [ "$PERF_MODE" = callgrind ]; then
    # valgrind slows kbridge ~50x: a short run, throughput numbers meaningless.
    say "bench: profiling kbridge (callgrind fallback)"
    for size in 1024 1048576; do
        KB_PORT=$("$LG" freeport -n 2)
        kbridge_cfg "$WORK/kbridge-cg.ini" "$KB_PORT" "$CERTS/ca.pem"
        start_bg "$WORK/callgrind-$size.log" valgrind --tool=callgrind \
            --callgrind-out-file="$WORK/callgrind-$size.out" "$KB" -c "$WORK/kbridge-cg.ini"
        cg=$BG_PID
        "$LG" waitport -p "$KB_PORT" -t 60 &&
            timeout 60 "$LG" throughput -p "$KB_PORT" -s "$size" -c 1 -d "$DEPTH" -t 3 \
                >/dev/null 2>&1
        stop_pid "$cg"
    done
fi

stop_pid "$SINK_PID"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(($(date +%s) - T_START))

# --- RESULTS.md ------------------------------------------------------------------------------
v() { local x=${R[$1]:-}; [ -n "$x" ] && printf '%s' "$x" || printf '—'; }
# cell PATH METRIC [SIZE] : the value, or "n/a"/"error"
cell() {
    local key=$1,$2${3:+,$3} errkey=$1,err${3:+,$3}
    case $2 in p50|p99) errkey=$1,laterr ;; idle_kib) errkey=$1,idle_err ;; esac
    if [ "$1" = kb2 ] && [ "$WORKERS" = no ]; then printf 'n/a'; return; fi
    if [ "${R[$errkey]:-0}" != 0 ]; then printf '%s (errors)' "$(v "$key")"; return; fi
    v "$key"
    case $2 in rss|idle_kib) return ;; esac
    local sp=${R[$1,${2}_spread${3:+,$3}]:-}
    [ -n "$sp" ] && printf ' (%s)' "$sp"
    return 0
}
calc() { awk "BEGIN { printf \"%.2f\", $1 }" 2>/dev/null; }
# target LABEL VALUE OP LIMIT : "met"/"missed"/"n/a"
verdict() {
    if [ -z "$1" ] || [ -z "$3" ]; then echo "n/a"; return; fi
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo "**met**"; else echo "**missed**"; fi
}
ratio() { [ -n "${R[$1]:-}" ] && [ -n "${R[$2]:-}" ] && calc "${R[$1]} / ${R[$2]}"; }

{
    echo "# kbridge side-by-side benchmark"
    echo
    echo "Generated by \`bench/run.sh\` (\`make bench\`); do not edit by hand, rerun instead."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), total run time ${T_TOTAL} s"
    echo "- Command: \`BENCH_SECS=$SECS BENCH_CONNS=$CONNS BENCH_DEPTH=$DEPTH \
BENCH_LAT_REQS=$LAT_REQS BENCH_IDLE_CONNS=$IDLE_WANT BENCH_ROUNDS=$ROUNDS bash bench/run.sh \
${BUILD#"$ROOT"/}\`"
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), \
Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
    echo "- Versions: $(haproxy -v | head -1 | awk '{print "HAProxy " $3}'), \
$(openssl version | awk '{print $1 " " $2}'), libevent $(pkg-config --modversion libevent), \
kbridge $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain \
2>/dev/null | grep -q . && echo ' + uncommitted changes') ($("$KB" --version 2>&1 | head -1))"
    echo "- Load average at start / end: $LOAD_START / $LOAD_END$(awk -v l="${LOAD_START%% *}" \
'BEGIN { if (l > 0.5) printf ". **Noise warning:** something else was using the CPUs when \
the run began; compare paths within this run only" }')."
    echo "- This is a small shared VM: the same binary's numbers move by 30-50% between runs \
minutes apart, far more than between paths. That is why every path is measured $ROUNDS times, \
interleaved (round 1: every path, round 2: every path, ...), and each cell below is the median \
with the range of the $ROUNDS runs in brackets; compare paths within this run only."
    echo
    echo "## Setup"
    echo
    echo "All on 127.0.0.1. The sink (\`bench/sink.c\`) terminates TLS with the test PKI from \
\`tests/integration/gen_certs.sh\` (RSA-2048 leaf) and answers each Produce v3 frame with a \
16-byte response carrying its correlation id. The load generator (\`bench/loadgen.c\`) checks \
every response's correlation id and size."
    echo
    echo "- **direct**: loadgen speaks TLS to the sink itself (verified, SNI localhost). Its \
client pays for TLS, the proxied paths' client does not, so direct is not a strict lower bound \
for latency: compare p99s, and expect a proxy's p50 to be close to direct's."
    echo "- **HAProxy**: \`mode tcp\`, \`server s1 127.0.0.1:PORT ssl verify required ca-file \
ca.pem sni str(localhost) verifyhost localhost\`; default threads (${HA_THREADS:-?} threads \
here$([ -n "$HAPROXY_NBTHREAD" ] && echo ", nbthread $HAPROXY_NBTHREAD"))."
    echo "- **kbridge 1 worker**: \`bootstrap_servers = localhost:PORT\`, \`tls_ca_file\`, \
\`tls_verify = full\`, \`log_level = warn\`, \`idle_timeout_ms = 0\`."
    echo "- **kbridge 2 workers**: the same plus \`workers = 2\` (and \`admin_listen\`, to read \
how the connections were spread over the two loops: \
\`kbridge_worker_client_connections_total\`)."
    echo "- HAProxy, kbridge 1 worker and kbridge 2 workers run side by side for the whole \
run; each is idle while another path is measured."
    echo "- Verification check: HAProxy pointed at the wrong CA: ${R[verify,haproxy]}; kbridge \
pointed at the wrong CA: ${R[verify,kbridge]}."
    echo "- Throughput: $CONNS connections x $DEPTH requests in flight, ${WARMUP} s warm-up, \
${SECS} s measured. MB/s = 10^6 bytes of request frames answered per second. CPU s/GB = \
(utime+stime of the proxy process, /proc/PID/stat) / 10^9 request bytes. RSS = highest \
VmRSS sampled every 100 ms under the load."
    echo "- Latency: 1 KiB, one request in flight, one connection, $LAT_REQS timed requests \
after a warm-up."
    echo "- Idle: $IDLE_N plaintext client connections held open, each after one 1 KiB \
request answered (so every upstream TLS connection is established: for kbridge that is \
$IDLE_N upstream TLS connections too). KiB/conn = (VmRSS after - before) / connections."
    echo
    echo "## Results"
    echo
    echo "| path | MB/s 1 KiB | MB/s 1 MiB | CPU s/GB 1 KiB | CPU s/GB 1 MiB | RSS under load \
KiB (1 KiB / 1 MiB) | p50 µs | p99 µs | idle KiB/conn |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for p in direct haproxy kb1 kb2; do
        case $p in
            direct) name="direct (no proxy)" ;;
            haproxy) name="HAProxy" ;;
            kb1) name="kbridge, 1 worker" ;;
            kb2) name="kbridge, 2 workers" ;;
        esac
        if [ $p = kb2 ] && [ "$WORKERS" = no ]; then
            echo "| $name | n/a (workers not implemented) | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
            continue
        fi
        if [ $p = direct ]; then
            rss="—"; idle="—"; c1="—"; c2="—"
        else
            rss="$(cell $p rss 1024) / $(cell $p rss 1048576)"
            idle="$(cell $p idle_kib) ($(v $p,idle_conns) conns, $(v $p,idle_before) -> \
$(v $p,idle_after) KiB)"
            c1=$(cell $p cpugb 1024); c2=$(cell $p cpugb 1048576)
        fi
        echo "| $name | $(cell $p mbps 1024) | $(cell $p mbps 1048576) | $c1 | $c2 | $rss | \
$(cell $p p50) | $(cell $p p99) | $idle |"
    done
    echo
    echo "Proxy CPU utilisation during the throughput runs (CPU-seconds per second; 1.0 = one \
core): HAProxy $(v haproxy,cpuutil,1024) / $(v haproxy,cpuutil,1048576), kbridge 1 worker \
$(v kb1,cpuutil,1024) / $(v kb1,cpuutil,1048576), kbridge 2 workers $(v kb2,cpuutil,1024) / \
$(v kb2,cpuutil,1048576) (1 KiB / 1 MiB). With $(nproc) CPUs shared by the load generator, the \
proxy and the sink, the paths are CPU-bound on the machine, not on the proxy alone: CPU s/GB is \
the fairer efficiency number, and the direct path's throughput is the ceiling of any proxied \
path here (the proxy's CPU comes out of the same $(nproc) cores)."
    if [ "$WORKERS" = yes ]; then
        echo
        echo "Client connections served by kbridge 2 workers' loops (worker 0 / worker 1, \
cumulative, before -> after each run; the kernel hashes each new connection to a loop, and a \
loop with more open connections than the other hands it over): \
$(for size in 1024 1048576; do for r in $(seq "$ROUNDS"); do
            printf '%s round %s: %s; ' "$([ $size = 1024 ] && echo "1 KiB" || echo "1 MiB")" \
                "$r" "${R[kb2,split,$size,$r]:-?}"; done; done | sed 's/; $//')."
    fi
    echo
    echo "## Targets (ratios vs HAProxy in this run)"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---|---|"
    for size in 1024 1048576; do
        sz=$([ $size = 1024 ] && echo "1 KiB" || echo "1 MiB")
        r=$(ratio kb1,cpugb,$size haproxy,cpugb,$size)
        echo "| kbridge CPU/GB <= 0.7x HAProxy ($sz) | ${r:-?}x ($(v kb1,cpugb,$size) vs \
$(v haproxy,cpugb,$size) s/GB) | $(verdict "$r" '<=' 0.7) |"
    done
    for size in 1024 1048576; do
        sz=$([ $size = 1024 ] && echo "1 KiB" || echo "1 MiB")
        r=$(ratio kb1,mbps,$size haproxy,mbps,$size)
        echo "| throughput 1 worker >= HAProxy ($sz) | ${r:-?}x ($(v kb1,mbps,$size) vs \
$(v haproxy,mbps,$size) MB/s) | $(verdict "$r" '>=' 1.0) |"
    done
    for size in 1024 1048576; do
        sz=$([ $size = 1024 ] && echo "1 KiB" || echo "1 MiB")
        if [ "$WORKERS" = no ]; then
            echo "| throughput 2 workers >= 1.3x HAProxy ($sz) | n/a (workers not implemented) \
| n/a |"
        else
            r=$(ratio kb2,mbps,$size haproxy,mbps,$size)
            ceil=$(ratio direct,mbps,$size haproxy,mbps,$size)
            echo "| throughput 2 workers >= 1.3x HAProxy ($sz) | ${r:-?}x ($(v kb2,mbps,$size) \
vs $(v haproxy,mbps,$size) MB/s; the direct path, with no proxy at all, reached ${ceil:-?}x) | \
$(verdict "$r" '>=' 1.3) |"
        fi
    done
    added=""
    [ -n "${R[kb1,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
        added=$(calc "${R[kb1,p99]} - ${R[direct,p99]}")
    echo "| added p99 latency <= 100 µs over direct (1 worker) | ${added:-?} µs \
($(v kb1,p99) vs $(v direct,p99)) | $(verdict "$added" '<=' 100) |"
    if [ "$WORKERS" != no ]; then
        added2=""
        [ -n "${R[kb2,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
            added2=$(calc "${R[kb2,p99]} - ${R[direct,p99]}")
        echo "| added p99 latency <= 100 µs over direct (2 workers) | ${added2:-?} µs | \
$(verdict "$added2" '<=' 100) |"
    fi
    echo "| <= 64 KiB per idle client connection (incl. its upstream TLS connection) | \
$(v kb1,idle_kib) KiB (HAProxy: $(v haproxy,idle_kib) KiB) | $(verdict "${R[kb1,idle_kib]:-}" '<=' 64) |"
    echo
    echo "For reference, HAProxy's added p99 over direct: $(
        [ -n "${R[haproxy,p99]:-}" ] && [ -n "${R[direct,p99]:-}" ] &&
            calc "${R[haproxy,p99]} - ${R[direct,p99]}") µs; idle connections were opened in \
$(v haproxy,idle_secs) s through HAProxy, $(v kb1,idle_secs) s through kbridge 1 worker and \
$(v kb2,idle_secs) s through kbridge 2 workers (each is a TLS handshake to the sink; both \
proxies resume TLS sessions). RSS 1 s after the idle connections were closed: HAProxy \
$(v haproxy,idle_closed) KiB, kbridge $(v kb1,idle_closed) KiB."
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "## Notes"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
    echo
    echo "Logs and configs of this run: \`${WORK#"$ROOT"/}/\`."
} >"$RESULTS"
say "bench: wrote $RESULTS"

# --- PROFILE.md ------------------------------------------------------------------------------
if [ "$PERF_MODE" = perf ]; then
    {
        echo "# kbridge profile under throughput load"
        echo
        echo "Generated by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (same run as \
RESULTS.md). kbridge 1 worker, plaintext loadgen ($CONNS connections x $DEPTH in flight) -> \
kbridge -> TLS sink."
        echo
        echo "Command: \`perf record -e cpu-clock -F 1999 -g -p KBRIDGE_PID -- sleep \
$PROFILE_SECS\` while the load runs, then \`perf report --no-children -F overhead,sym,dso -g none\`. \
Hardware counters available: ${HW_COUNTERS}; \`cpu-clock\` (a software timer event) is used, \
so the percentages are of on-CPU time of the kbridge process, kernel included."
        for size in 1024 1048576; do
            sz=$([ $size = 1024 ] && echo "1 KiB" || echo "1 MiB")
            echo
            echo "## $sz frames"
            echo
            echo "Load during the profile: $(grep -h '^RESULT' \
"$WORK/profile-$size.loadgen.log" | sed -n 's/.* mbps=\([^ ]*\).*/\1 MB\/s/p')."
            echo
            echo "Top 15 symbols (self time):"
            echo
            echo "| # | self | symbol | object |"
            echo "|---:|---:|---|---|"
            perf_top $size
            echo
            echo "By object:"
            echo
            echo "| object | share |"
            echo "|---|---:|"
            perf_dso $size
            if [ -s "$WORK/strace-$size.txt" ]; then
                echo
                echo "System calls in 1 s of the same load under \`strace -f\` (strace slows \
kbridge down, so look at the ratios, not the rates); per MiB = calls per MiB written \
(\`write\`/\`writev\`: TLS records to the sink plus responses to the client). \`ioctl\` is \
libevent's FIONREAD before each of its own reads."
                echo
                echo "| syscall | calls | per MiB |"
                echo "|---|---:|---:|"
                strace_summary $size
                echo
                echo "Most frequent \`write()\`/\`writev()\` sizes (bytes per call; one writev \
carries every TLS record made in one loop turn, a full record being 16406 bytes on the wire): \
$(write_sizes $size)."
            fi
        done
    } >"$PROFILE_OUT"
    say "bench: wrote $PROFILE_OUT"
elif [ "$PERF_MODE" = callgrind ]; then
    {
        echo "# kbridge profile (callgrind fallback: perf cannot sample here)"
        echo
        for size in 1024 1048576; do
            echo "## $size-byte frames"
            echo
            echo '```'
            callgrind_annotate "$WORK/callgrind-$size.out" 2>/dev/null | sed -n '1,40p' |
                grep -E '^ *[0-9,]+ ' | head -15
            echo '```'
        done
    } >"$PROFILE_OUT"
    say "bench: wrote $PROFILE_OUT"
fi
cat "$RESULTS"
