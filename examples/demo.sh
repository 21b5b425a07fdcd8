#!/bin/sh
# demo.sh - kbridge end to end on one machine, no Kafka needed (POSIX sh; run by `make demo`).
# Starts kbmock (3 librdkafka mock brokers whose advertised addresses are TLS endpoints, like
# MSK) and kbridge with examples/local-demo.ini, then with kcat in plaintext through kbridge:
# shows the metadata, produces 1,000 messages, consumes them back and compares. Stops what it
# started on any exit. Exit status 0 only if every message came back intact.
#
#   KB_BUILD=/abs/build sh examples/demo.sh      (KB_BUILD: dir with kbridge, kbmock, certs/)
set -eu

cd "$(dirname "$0")/.."
REPO=$(pwd)
KB_BUILD=${KB_BUILD:-$REPO/build}
N=1000
TOPIC=orders
LISTEN=127.0.0.1:19092
BASE=19093                      # broker_port_base default: listen port + 1
BOOTSTRAP_PORT=29094            # kbmock's fixed TLS bootstrap front, named in local-demo.ini

say() { printf '%s\n' "demo: $*"; }
fail() { printf '%s\n' "demo: FAILED: $*" >&2; exit 1; }

now_ms() {
    t=$(date +%s%N 2>/dev/null || true)
    case $t in
        ''|*N) echo $(($(date +%s) * 1000)) ;;
        *) echo $((t / 1000000)) ;;
    esac
}

# wait_for FILE PATTERN SECONDS PID: until a line of FILE matches PATTERN (grep -E)
wait_for() {
    i=0
    while ! grep -Eq "$2" "$1" 2>/dev/null; do
        kill -0 "$4" 2>/dev/null || return 1
        i=$((i + 1))
        [ "$i" -le $(($3 * 10)) ] || return 1
        sleep 0.1
    done
}

for bin in kbridge kbmock; do
    [ -x "$KB_BUILD/$bin" ] || fail "$KB_BUILD/$bin missing (make $bin, or set KB_BUILD)"
done
command -v kcat >/dev/null 2>&1 || fail "kcat not found (apt-get install kcat)"
[ -f "$KB_BUILD/certs/ca.pem" ] || sh tests/integration/gen_certs.sh "$KB_BUILD/certs" ||
    fail "cannot make test certificates in $KB_BUILD/certs"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kbridge-demo.XXXXXX")
MOCK_PID=
KB_PID=

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    if [ -n "$KB_PID" ] && kill -0 "$KB_PID" 2>/dev/null; then
        kill -TERM "$KB_PID" 2>/dev/null || true
        kb_rc=0
        wait "$KB_PID" || kb_rc=$?
        if [ "$kb_rc" -ne 0 ]; then
            say "kbridge exited $kb_rc after SIGTERM"
            [ "$rc" -ne 0 ] || rc=1
        fi
    fi
    if [ -n "$MOCK_PID" ]; then
        exec 3>&-                              # kbmock exits on EOF on its stdin
        i=0
        while kill -0 "$MOCK_PID" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -TERM "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        for f in kbridge.log kbmock.log; do
            [ -s "$TMP/$f" ] || continue
            printf '%s\n' "----- last lines of $f ($TMP/$f)" >&2
            tail -n 25 "$TMP/$f" >&2
        done
        say "logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. the TLS-only cluster ---------------------------------------------------------------------
mkfifo "$TMP/kbmock.in"
"$KB_BUILD/kbmock" --certs "$KB_BUILD/certs" --brokers 3 --mode msk --topic "$TOPIC:6" \
    --bootstrap-port "$BOOTSTRAP_PORT" <"$TMP/kbmock.in" >"$TMP/kbmock.out" 2>"$TMP/kbmock.log" &
MOCK_PID=$!
exec 3>"$TMP/kbmock.in"                 # kbmock's stdin: commands, and EOF to stop it
wait_for "$TMP/kbmock.out" '^READY' 20 "$MOCK_PID" ||
    fail "kbmock did not start (is port $BOOTSTRAP_PORT free?)"
say "kbmock: 3 brokers, every advertised address is a TLS endpoint" \
    "(certificate $KB_BUILD/certs/server.pem)"
sed -n 's/^BROKER /  broker /p' "$TMP/kbmock.out"
MOCK_PORTS=$(sed -n 's/^BROKER [0-9]* advertised=[^:]*:\([0-9]*\) .*/\1/p' "$TMP/kbmock.out")

# --- 2. kbridge ----------------------------------------------------------------------------------
sed "s|^tls_ca_file *=.*|tls_ca_file = $KB_BUILD/certs/ca.pem|" examples/local-demo.ini \
    >"$TMP/local-demo.ini"
"$KB_BUILD/kbridge" -c "$TMP/local-demo.ini" >"$TMP/kbridge.log" 2>&1 &
KB_PID=$!
wait_for "$TMP/kbridge.log" 'kbridge ready' 10 "$KB_PID" ||
    fail "kbridge did not become ready (ports $LISTEN, $BASE+N free?)"
say "kbridge: plaintext on $LISTEN, node N on 127.0.0.1:$BASE+N, TLS + full verification upstream"

# --- 3. metadata as a client sees it -------------------------------------------------------------
kcat -L -b "$LISTEN" -m 10 >"$TMP/metadata.txt" 2>"$TMP/kcat.err" ||
    fail "kcat -L through kbridge: $(tail -n 3 "$TMP/kcat.err")"
say "metadata kcat saw through kbridge:"
grep -E 'brokers:|broker [0-9]+ at|topic "' "$TMP/metadata.txt" | sed 's/^ */  /'
bad=$(awk -v base="$BASE" '$1 == "broker" && $3 == "at" {
        if ($4 != "127.0.0.1:" (base + $2)) print "  broker " $2 " at " $4 }' "$TMP/metadata.txt")
[ -z "$bad" ] || fail "brokers not advertised as kbridge addresses:
$bad"
grep -q 'broker [0-9]* at' "$TMP/metadata.txt" || fail "no brokers in the metadata"
for p in $MOCK_PORTS; do
    if grep -q ":$p\$" "$TMP/metadata.txt"; then
        fail "a kbmock port ($p) reached the client"
    fi
done
say "every broker is a kbridge address; no kbmock address reached the client"

# --- 4. produce, consume, compare ----------------------------------------------------------------
awk -v n="$N" 'BEGIN {
    for (i = 1; i <= n; i++) printf "key-%04d:demo message %d of %d\n", i, i, n
}' >"$TMP/sent.txt"
t0=$(now_ms)
timeout 60 kcat -P -b "$LISTEN" -t "$TOPIC" -K : <"$TMP/sent.txt" 2>"$TMP/kcat.err" ||
    fail "kcat -P: $(tail -n 3 "$TMP/kcat.err")"
t1=$(now_ms)
say "produced $N messages in $((t1 - t0)) ms"
timeout 60 kcat -C -b "$LISTEN" -t "$TOPIC" -o beginning -e -q -f '%p %k:%s\n' \
    >"$TMP/got-raw.txt" 2>"$TMP/kcat.err" || fail "kcat -C: $(tail -n 3 "$TMP/kcat.err")"
t2=$(now_ms)
cut -d' ' -f2- "$TMP/got-raw.txt" >"$TMP/got.txt"
got=$(wc -l <"$TMP/got.txt" | tr -d ' ')
say "consumed $got messages in $((t2 - t1)) ms; per partition:" \
    "$(cut -d' ' -f1 "$TMP/got-raw.txt" | sort -n | uniq -c | awk '{ printf "p%s=%s ", $2, $1 }')"
sort "$TMP/sent.txt" >"$TMP/sent.sorted"
sort "$TMP/got.txt" >"$TMP/got.sorted"
if ! cmp -s "$TMP/sent.sorted" "$TMP/got.sorted"; then
    say "differences (< sent, > consumed):"
    diff "$TMP/sent.sorted" "$TMP/got.sorted" | head -n 10 || true
    fail "consumed messages differ from the $N produced"
fi
say "all $N messages came back intact"

# --- 5. what crossed the wire --------------------------------------------------------------------
echo stats >&3
wait_for "$TMP/kbmock.out" '^STATS' 5 "$MOCK_PID" || fail "kbmock did not answer 'stats'"
say "kbmock: $(sed -n 's/^STATS //p' "$TMP/kbmock.out")"
say "kbridge log: $(wc -l <"$TMP/kbridge.log" | tr -d ' ') lines," \
    "$(grep -c '\bERROR\b' "$TMP/kbridge.log" || true) at error level"
say "total $(($(now_ms) - t0)) ms for produce + consume; OK"
