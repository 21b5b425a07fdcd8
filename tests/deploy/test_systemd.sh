#!/bin/sh
# test_systemd.sh - deploy/systemd/kbridge.service and kbridge.sysusers, without booting systemd:
# systemd-analyze verify (on a copy whose binary paths point at the binary under test),
# the offline security score, the directives the deployment relies on, every syscall kbridge
# makes (strace: check-config, serve, a client, SIGHUP, SIGTERM) against the unit's
# SystemCallFilter=, and systemd-sysusers creating the user in a scratch root.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

unit=$repo/deploy/systemd/kbridge.service
sysusers=$repo/deploy/systemd/kbridge.sysusers
need systemd-analyze systemd || true
need strace strace || true
need unshare util-linux || true
need_kbridge || true

# --- verify -------------------------------------------------------------------------------------
mkdir -p "$tmp/units"
sed "s|/usr/local/bin/kbridge|$KBRIDGE|g" "$unit" >"$tmp/units/kbridge.service"
verify() { # any output (a warning) is a failure too
    out=$(cd "$tmp/units" && timeout 60 systemd-analyze verify --man=no ./kbridge.service 2>&1)
    printf '%s\n' "$out"
    [ -z "$out" ]
}
security() { # exposure 0..100; 14 today ("1.4 OK"); a dropped hardening line pushes it over 20
    out=$(cd "$tmp/units" && timeout 60 systemd-analyze security --offline=yes \
        --threshold=20 ./kbridge.service 2>&1) || rc=$?
    printf '%s\n' "$out" | tail -n 1
    return "${rc:-0}"
}
if command -v systemd-analyze >/dev/null 2>&1; then
    check "systemd-analyze verify kbridge.service" verify
    check "systemd-analyze security --offline: exposure <= 2.0" security
fi

# --- directives the deployment depends on ------------------------------------------------------
has() {
    grep -qxF -- "$1" "$unit"
}
for d in Type=exec User=kbridge Group=kbridge \
    "ExecStartPre=/usr/local/bin/kbridge --check-config -c /etc/kbridge/kbridge.ini" \
    "ExecStart=/usr/local/bin/kbridge -c /etc/kbridge/kbridge.ini" \
    "ExecReload=/bin/kill -HUP \$MAINPID" Restart=on-failure RestartPreventExitStatus=2 \
    LimitNOFILE=65536 NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    PrivateDevices=yes "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    CapabilityBoundingSet= AmbientCapabilities= SystemCallFilter=@system-service \
    MemoryDenyWriteExecute=yes LockPersonality=yes RestrictNamespaces=yes \
    ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
    ProtectControlGroups=yes WantedBy=multi-user.target; do
    if has "$d"; then ok "unit has $d"; else fail "unit has $d"; fi
done
# ExecReload validates first, so `systemctl reload` reports a bad file instead of a silent no-op.
if grep -n '^ExecReload=' "$unit" | head -n 1 | grep -q -- '--check-config'; then
    ok "ExecReload checks the file before sending SIGHUP"
else
    fail "ExecReload checks the file before sending SIGHUP"
fi

# --- syscalls vs SystemCallFilter= -------------------------------------------------------------
expand() { # a filter item (@group or name) -> syscall names, groups expanded recursively
    case $1 in
    @*) systemd-analyze syscall-filter "$1" | awk 'NR > 1 && NF && $1 !~ /^#/ { print $1 }' |
        while read -r s; do expand "$s"; done ;;
    *) echo "$1" ;;
    esac
}
if command -v systemd-analyze >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 &&
    command -v unshare >/dev/null 2>&1 && [ -x "$KBRIDGE" ]; then
    : >"$tmp/allow"
    : >"$tmp/deny"
    sed -n 's/^SystemCallFilter=//p' "$unit" | while read -r line; do
        case $line in
        "~"*) for g in ${line#\~}; do expand "$g"; done >>"$tmp/deny" ;;
        *) for g in $line; do expand "$g"; done >>"$tmp/allow" ;;
        esac
    done
    sort -u -o "$tmp/allow" "$tmp/allow"
    sort -u -o "$tmp/deny" "$tmp/deny"
    comm -23 "$tmp/allow" "$tmp/deny" >"$tmp/permitted"

    cat >"$tmp/sc.ini" <<'INI'
[global]
admin_listen = 127.0.0.1:9644
; two event loops: the worker threads' syscalls (clone3, futex, pipe2, ...) are checked too
workers = 2
[msk]
bootstrap_servers = 127.0.0.1:19094
listen = 127.0.0.1:9092
tls = on
INI
    # Own network namespace: fixed ports cannot clash with anything, and nothing leaves the host.
    cat >"$tmp/exercise.sh" <<'SH'
set -u
ip link set lo up
kb=$1 ini=$2 out=$3 py=$4
# LeakSanitizer cannot run under ptrace: an ASan build would exit non-zero under strace.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
strace -f -q -o "$out/trace" "$kb" --check-config -c "$ini" >/dev/null 2>&1
strace -f -q -o "$out/trace.serve" sh -c 'echo $$ >"$1"; exec "$2" -c "$3"' sh "$out/pid" "$kb" "$ini" \
    2>"$out/serve.log" &
i=0
while [ ! -s "$out/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
"$py" - <<'PY'
import socket, urllib.request
s = socket.create_connection(("127.0.0.1", 9092), timeout=3)
# ApiVersions v0 request, correlation id 1, client id "t": kbridge dials the (closed) broker.
s.sendall(bytes.fromhex("0000000d00120000000000010001") + b"t")
try:
    s.recv(100)
except OSError:
    pass
s.close()
try:
    urllib.request.urlopen("http://127.0.0.1:9644/healthz", timeout=2).read()
except Exception:
    pass
PY
kill -HUP "$(cat "$out/pid")"
sleep 0.3
kill -TERM "$(cat "$out/pid")"
wait
SH
    timeout 60 unshare --net sh "$tmp/exercise.sh" "$KBRIDGE" "$tmp/sc.ini" "$tmp" "$PYTHON" \
        >"$tmp/exercise.out" 2>&1 || true
    # Only what the kbridge process does after its execve (not the wrapper sh).
    awk -v kb="execve(\"$KBRIDGE\"" 'index($0, kb) { on = 1 } on' "$tmp/trace.serve" \
        >"$tmp/trace.kb" 2>/dev/null || true
    cat "$tmp/trace" "$tmp/trace.kb" 2>/dev/null |
        sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p' | sort -u >"$tmp/used"
    n=$(wc -l <"$tmp/used")
    forbidden=$(comm -23 "$tmp/used" "$tmp/permitted" | tr '\n' ' ')
    if [ "$n" -lt 20 ]; then
        fail "strace saw kbridge's syscalls (only $n; see below)"
        tail -n 5 "$tmp/exercise.out" "$tmp/serve.log" 2>/dev/null | sed 's/^/     | /'
    elif [ -n "$forbidden" ]; then
        fail "every syscall kbridge made ($n) is allowed by SystemCallFilter=: not $forbidden"
    else
        ok "every syscall kbridge made ($n distinct) is allowed by SystemCallFilter="
    fi
    if grep -q 'execve' "$tmp/trace.kb" && grep -q '+++ exited with 0 +++' "$tmp/trace.kb"; then
        ok "kbridge served a client, took SIGHUP, and exited 0 on SIGTERM"
    else
        fail "kbridge served a client, took SIGHUP, and exited 0 on SIGTERM"
        tail -n 5 "$tmp/serve.log" | sed 's/^/     | /'
    fi
fi

# --- sysusers ------------------------------------------------------------------------------------
if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$tmp/root/etc"
    sysusers_root() {
        timeout 30 systemd-sysusers --root="$tmp/root" "$sysusers" &&
            grep -E '^kbridge:x:[0-9]+:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$' \
                "$tmp/root/etc/passwd" && grep -q '^kbridge:' "$tmp/root/etc/group"
    }
    check "systemd-sysusers creates user kbridge (scratch root)" sysusers_root
fi

finish
