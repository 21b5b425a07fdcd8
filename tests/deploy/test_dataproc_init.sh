#!/bin/sh
# test_dataproc_init.sh - deploy/dataproc/kbridge-init.sh in a sandbox: KBRIDGE_ROOT=$tmp/root,
# a fake /usr/share/google/get_metadata_value, fake gsutil/apt-get/systemctl/journalctl on PATH,
# the real kbridge binary under test and the real systemd-sysusers, inside `unshare --net` so
# that nothing (apt, GCS, `kbridge check` dialling MSK) can reach the network. The fake apt-get
# unpacks a .deb it is given (dpkg-deb -x): the package built from the binary under test by
# packaging/deb/build.sh.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

init=$repo/deploy/dataproc/kbridge-init.sh
servers=b-1.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9094,b-2.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9094
need shellcheck shellcheck || true
need systemd-sysusers systemd || true
need unshare util-linux || true
need bash bash || true
need_kbridge || true

if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck kbridge-init.sh" shellcheck "$init"
fi

# The unit embedded in the init action is deploy/systemd/kbridge.service, byte for byte.
embedded_unit() {
    sed -n "/^    cat >\"\$UNIT\" <<'UNIT'\$/,/^UNIT\$/p" "$init" | sed '1d;$d' >"$tmp/embedded.service"
    diff -u "$repo/deploy/systemd/kbridge.service" "$tmp/embedded.service"
}
check "embedded unit == deploy/systemd/kbridge.service" embedded_unit

# --- sandbox -------------------------------------------------------------------------------------
fake=$tmp/fakebin
mkdir -p "$fake" "$tmp/gcs"
cat >"$fake/apt-get" <<SH
#!/bin/sh
echo "apt-get \$*" >>"$tmp/calls"
for a in "\$@"; do
    case \$a in *.deb) dpkg-deb -x "\$a" "$tmp/root" || exit 100 ;; esac
done
SH
cat >"$fake/systemctl" <<SH
#!/bin/sh
echo "systemctl \$*" >>"$tmp/calls"
SH
cat >"$fake/journalctl" <<SH
#!/bin/sh
echo "journalctl \$*" >>"$tmp/calls"
SH
cat >"$fake/gsutil" <<SH
#!/bin/sh
# gsutil -q cp gs://bucket/OBJECT DEST -> $tmp/gcs/OBJECT
echo "gsutil \$*" >>"$tmp/calls"
[ "\$1" = -q ] && shift
[ "\$1" = cp ] || exit 2
src=\${2#gs://bucket/}
[ -f "$tmp/gcs/\$src" ] || { echo "No URLs matched: \$2" >&2; exit 1; }
cp "$tmp/gcs/\$src" "\$3"
SH
chmod +x "$fake"/*
[ -x "$KBRIDGE" ] && cp "$KBRIDGE" "$tmp/gcs/kbridge-bin"
# The Debian package of the binary under test, as `make deb` makes it.
if [ -x "$KBRIDGE" ] && command -v dpkg-shlibdeps >/dev/null 2>&1; then
    check "packaging/deb/build.sh packs the binary under test" sh -c \
        'sh "$1/packaging/deb/build.sh" "$(dirname "$2")" "$3" && mv "$3"/kbridge_*.deb "$3/kbridge.deb"' \
        sh "$repo" "$KBRIDGE" "$tmp/gcs"
fi
# A source tarball as `git archive --prefix=kbridge/` would make, from the working tree.
(cd "$repo" && tar --exclude='*.o' --exclude='*.a' -czf "$tmp/gcs/kbridge-src.tar.gz" \
    --transform 's,^,kbridge/,' Makefile kafka_protocol proxy tls conf check auth aws)

# new_root: a fresh node. Metadata values come from $tmp/meta/<key>.
new_root() {
    [ -n "${KB_SHOW:-}" ] && [ -f "$tmp/out" ] && cat "$tmp/out" >&2
    rm -rf "$tmp/root" "$tmp/meta" "$tmp/calls"
    mkdir -p "$tmp/root/usr/share/google" "$tmp/root/etc" "$tmp/meta"
    printf 'ID=debian\nVERSION_ID="12"\n' >"$tmp/root/etc/os-release"
    cat >"$tmp/root/usr/share/google/get_metadata_value" <<SH
#!/bin/sh
f="$tmp/meta/\${1#attributes/}"
[ -f "\$f" ] || { echo "404" >&2; exit 22; }
cat "\$f"
SH
    chmod +x "$tmp/root/usr/share/google/get_metadata_value"
    : >"$tmp/calls"
}
meta() {
    printf '%s' "$2" >"$tmp/meta/$1"
}
# run_init: the init action on the sandboxed node, no network, bounded; output in $tmp/out.
run_init() {
    rc=0
    PATH=$fake:$PATH KBRIDGE_ROOT=$tmp/root timeout 300 unshare --net bash "$init" \
        >"$tmp/out" 2>&1 || rc=$?
    return "$rc"
}
show() {
    tail -n 12 "$tmp/out" | sed 's/^/     | /'
}
expect() { # expect DESC 0|fail: exit status of the last run_init
    if { [ "$2" = 0 ] && [ "$rc" -eq 0 ]; } || { [ "$2" = fail ] && [ "$rc" -ne 0 ]; }; then
        ok "$1"
    else
        fail "$1 (exit $rc)"
        show
    fi
}
assert() { # assert DESC CMD...
    kb_d=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$kb_d"; else fail "$kb_d"; fi
}

if [ -x "$KBRIDGE" ] && command -v unshare >/dev/null 2>&1 &&
    command -v systemd-sysusers >/dev/null 2>&1; then
    ini=$tmp/root/etc/kbridge/kbridge.ini

    # 1. binary from GCS, the normal path.
    new_root
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-cluster-name orders-msk
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-version "$("$KBRIDGE" --version | awk '{ print $2 }')"
    run_init || true
    expect "binary mode: init succeeds" 0
    assert "binary mode: kbridge installed in /usr/local/bin" test -x "$tmp/root/usr/local/bin/kbridge"
    assert "binary mode: runtime libraries installed, no compiler" \
        sh -c 'grep -q "install .*libevent-openssl-2.1-7.*libinih1.*librdkafka1.*libcurl4.*ca-certificates" "$1" &&
               ! grep -q build-essential "$1"' sh "$tmp/calls"
    assert "generated kbridge.ini passes kbridge --check-config" "$KBRIDGE" --check-config -c "$ini"
    assert "kbridge.ini has the bootstrap servers from metadata" \
        grep -qxF "bootstrap_servers = $servers" "$ini"
    assert "kbridge.ini has section [orders-msk], loopback listen, admin on 127.0.0.1:9644" \
        sh -c 'grep -qx "\[orders-msk\]" "$1" && grep -qx "listen = 127.0.0.1:9092" "$1" &&
               grep -qx "admin_listen = 127.0.0.1:9644" "$1"' sh "$ini"
    assert "kbridge.ini is root:kbridge 0640" sh -c '
        gid=$(awk -F: "\$1 == \"kbridge\" { print \$3 }" "$1/etc/group")
        [ "$(stat -c %u:%g:%a "$2")" = "0:$gid:640" ]' sh "$tmp/root" "$ini"
    assert "system user kbridge created (systemd-sysusers)" \
        grep -q '^kbridge:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$tmp/root/etc/passwd"
    assert "unit installed as /etc/systemd/system/kbridge.service" \
        cmp "$repo/deploy/systemd/kbridge.service" "$tmp/root/etc/systemd/system/kbridge.service"
    assert "systemctl daemon-reload, enable, restart, is-active" \
        sh -c 'grep -qx "systemctl daemon-reload" "$1" && grep -qx "systemctl enable kbridge.service" "$1" &&
               grep -qx "systemctl restart kbridge.service" "$1" &&
               grep -q "systemctl is-active" "$1"' sh "$tmp/calls"
    # No network in the sandbox, so `kbridge check` fails: the default is a warning.
    assert "failed kbridge check is logged as a WARNING, init still succeeds" \
        grep -q 'WARNING: kbridge check failed' "$tmp/out"
    assert "nothing left behind (kbridge.ini.new)" test ! -e "$ini.new"

    # 2. Run again on the same node (re-provisioning): idempotent.
    run_init || true
    expect "second run on the same node succeeds" 0

    # 3. kbridge-check-required=true turns the failed check into a failed init.
    meta kbridge-check-required true
    run_init || true
    expect "kbridge-check-required=true: failed check fails the init" fail

    # 1b. The Debian package from GCS: installed with apt-get, its binary and unit used.
    new_root
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-deb-uri gs://bucket/kbridge.deb
    meta kbridge-version "$("$KBRIDGE" --version | awk '{ print $2 }')"
    run_init || true
    expect "deb mode: init succeeds" 0
    assert "deb mode: apt-get install of the fetched .deb" \
        grep -q '^apt-get .*install -y -qq --no-install-recommends /.*/kbridge.deb$' "$tmp/calls"
    assert "deb mode: /usr/bin/kbridge from the package runs" "$tmp/root/usr/bin/kbridge" --version
    assert "deb mode: no bare binary in /usr/local/bin" test ! -e "$tmp/root/usr/local/bin/kbridge"
    assert "deb mode: the package's unit, none written to /etc/systemd/system" sh -c \
        'grep -qx "ExecStart=/usr/bin/kbridge -c /etc/kbridge/kbridge.ini" \
            "$1/lib/systemd/system/kbridge.service" && [ ! -e "$1/etc/systemd/system/kbridge.service" ]' \
        sh "$tmp/root"
    assert "deb mode: kbridge.ini written and valid" "$KBRIDGE" --check-config -c "$ini"
    assert "deb mode: systemctl enable, restart" sh -c 'grep -qx "systemctl enable kbridge.service" "$1" &&
        grep -qx "systemctl restart kbridge.service" "$1"' sh "$tmp/calls"
    # Switching a node from the bare binary to the package drops the old /etc unit.
    mkdir -p "$tmp/root/etc/systemd/system"
    cp "$repo/deploy/systemd/kbridge.service" "$tmp/root/etc/systemd/system/kbridge.service"
    run_init || true
    expect "deb mode over an earlier binary-mode install succeeds" 0
    assert "... and removes the old /etc/systemd/system/kbridge.service" \
        test ! -e "$tmp/root/etc/systemd/system/kbridge.service"
    meta kbridge-version 9.9.9
    run_init || true
    expect "deb mode: kbridge-version mismatch fails" fail
    new_root
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-deb-uri gs://bucket/kbridge-bin
    run_init || true
    expect "deb mode: a URI that is not a .deb is refused" fail

    # 4. Configuration mistakes fail the node, with a message.
    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    run_init || true
    expect "missing kbridge-bootstrap-servers fails" fail
    assert "... and says which metadata is missing" grep -q 'kbridge-bootstrap-servers is not set' "$tmp/out"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$(printf 'b-1:9094\nlisten = 0.0.0.0:9092')"
    run_init || true
    expect "bootstrap servers with a newline and '=' are rejected" fail
    assert "... and no kbridge.ini is written" test ! -e "$ini"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "b-1.x.amazonaws.com:99999"
    run_init || true
    expect "invalid port rejected by kbridge --check-config" fail

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-cluster-name "global"
    run_init || true
    expect "cluster name 'global' rejected" fail

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-version 9.9.9
    run_init || true
    expect "kbridge-version mismatch fails" fail

    new_root
    meta kbridge-bootstrap-servers "$servers"
    run_init || true
    expect "no binary source at all fails" fail

    new_root
    printf 'ID=debian\nVERSION_ID="11"\n' >"$tmp/root/etc/os-release"
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    run_init || true
    expect "Debian 11 (OpenSSL 1.1) image is refused" fail

    # 6. Authentication metadata. SCRAM: a password file already on the node (custom image or
    # an earlier init action), never the password itself.
    iam_servers=b-1.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9198,b-2.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9198
    role=arn:aws:iam::123456789012:role/kbridge-dataproc
    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$(echo "$servers" | sed 's/:9094/:9196/g')"
    meta kbridge-sasl-mechanism scram-sha-512
    meta kbridge-sasl-username alice
    meta kbridge-sasl-password-file /etc/kbridge/msk-secret.json
    mkdir -p "$tmp/root/etc/kbridge"
    printf '{"username": "alice", "password": "s3cr3t-Pa55"}\n' >"$tmp/root/etc/kbridge/msk-secret.json"
    chmod 0644 "$tmp/root/etc/kbridge/msk-secret.json"
    run_init || true
    expect "SCRAM: init succeeds" 0
    assert "SCRAM: kbridge.ini has the mechanism, user and password file" sh -c '
        grep -qx "sasl_mechanism = SCRAM-SHA-512" "$1" && grep -qx "sasl_username = alice" "$1" &&
        grep -qx "sasl_password_file = /etc/kbridge/msk-secret.json" "$1"' sh "$ini"
    # --check-config opens sasl_password_file: point it into the sandbox root for this check.
    assert "SCRAM: the written kbridge.ini passes kbridge --check-config" sh -c '
        sed "s|^sasl_password_file = /|sasl_password_file = $2/|" "$1" >"$1.t" &&
        "$3" --check-config -c "$1.t"; rc=$?; rm -f "$1.t"; exit $rc' sh "$ini" "$tmp/root" "$KBRIDGE"
    assert "SCRAM: the password file is made root:kbridge 0640" sh -c '
        gid=$(awk -F: "\$1 == \"kbridge\" { print \$3 }" "$1/etc/group")
        [ "$(stat -c %u:%g:%a "$2")" = "0:$gid:640" ]' sh "$tmp/root" "$tmp/root/etc/kbridge/msk-secret.json"
    assert "SCRAM: the password is in no output and not in kbridge.ini" sh -c \
        '! grep -q s3cr3t-Pa55 "$1" "$2"' sh "$tmp/out" "$ini"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-sasl-mechanism SCRAM-SHA-256
    meta kbridge-sasl-password-file /etc/kbridge/missing
    run_init || true
    expect "SCRAM: a password file that is not on the node fails" fail
    assert "... naming the file" grep -q 'kbridge-sasl-password-file /etc/kbridge/missing does not exist' "$tmp/out"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-sasl-mechanism SCRAM-SHA-512
    meta kbridge-sasl-username "$(printf 'alice\nsasl_mechanism = PLAIN')"
    meta kbridge-sasl-password-file /etc/kbridge/pw
    mkdir -p "$tmp/root/etc/kbridge" && echo pw >"$tmp/root/etc/kbridge/pw"
    run_init || true
    expect "SCRAM: a user name that smuggles a second key is rejected" fail
    assert "... and no kbridge.ini is written" test ! -e "$ini"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-sasl-mechanism GSSAPI
    run_init || true
    expect "an unknown kbridge-sasl-mechanism fails" fail
    assert "... listing the known ones" grep -q "use AWS_MSK_IAM, OAUTHBEARER, SCRAM-SHA-512" "$tmp/out"

    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$servers"
    meta kbridge-aws-role-arn "$role"
    run_init || true
    expect "kbridge-aws-role-arn without kbridge-sasl-mechanism fails (it would be unused)" fail

    # IAM from Dataproc: a role and nothing else gives aws_credentials = gcp.
    iam_node() {
        new_root
        meta kbridge-binary-uri gs://bucket/kbridge-bin
        meta kbridge-bootstrap-servers "$iam_servers"
        meta kbridge-sasl-mechanism "$1"
        meta kbridge-aws-role-arn "$role"
    }
    iam_node AWS_MSK_IAM
    meta kbridge-aws-role-arn "arn:aws:iam::123:role/x"
    run_init || true
    expect "IAM: a malformed role ARN fails" fail
    iam_node AWS_MSK_IAM
    meta kbridge-aws-region "us-east-1; x"
    run_init || true
    expect "IAM: a malformed region fails" fail
    iam_node AWS_MSK_IAM
    meta kbridge-sasl-password-file /etc/kbridge/pw
    run_init || true
    expect "IAM: a SCRAM password file with AWS_MSK_IAM fails" fail
    new_root
    meta kbridge-binary-uri gs://bucket/kbridge-bin
    meta kbridge-bootstrap-servers "$iam_servers"
    meta kbridge-sasl-mechanism AWS_MSK_IAM
    meta kbridge-aws-credentials gcp
    run_init || true
    expect "IAM: kbridge-aws-credentials=gcp without a role fails" fail
    assert "... saying the role is needed" grep -q 'gcp needs kbridge-aws-role-arn' "$tmp/out"

    # The config the IAM metadata writes is only valid for a binary that knows the IAM
    # mechanisms; the tree under test says whether it should (conf/conf.c names them).
    for mech in AWS_MSK_IAM OAUTHBEARER; do
        iam_node "$mech"
        meta kbridge-aws-region us-east-1
        meta kbridge-gcp-audience sts.amazonaws.com
        run_init || true
        if grep -q "\"$mech\"" "$repo/conf/conf.c"; then
            expect "$mech: init succeeds" 0
            assert "$mech: kbridge.ini has the mechanism, aws_credentials = gcp, role, region, audience" sh -c '
                grep -qx "sasl_mechanism = $2" "$1" && grep -qx "aws_credentials = gcp" "$1" &&
                grep -qx "aws_role_arn = $3" "$1" && grep -qx "aws_region = us-east-1" "$1" &&
                grep -qx "gcp_audience = sts.amazonaws.com" "$1"' sh "$ini" "$mech" "$role"
            assert "$mech: the written kbridge.ini passes kbridge --check-config" \
                "$KBRIDGE" --check-config -c "$ini"
        else
            # Before the daemon knows the mechanism: the node fails at --check-config, with
            # kbridge's own error, instead of running a config kbridge cannot load.
            expect "$mech: init fails while this kbridge does not know $mech" fail
            assert "... with kbridge's error naming $mech, and no kbridge.ini" sh -c '
                grep -q "invalid sasl_mechanism .$2." "$1" && [ ! -e "$3" ]' sh "$tmp/out" "$mech" "$ini"
        fi
    done
    # kbridge-aws-credentials=default: the SDK chain (e.g. AWS_* in the unit's environment).
    iam_node AWS_MSK_IAM
    meta kbridge-aws-role-arn ""
    rm -f "$tmp/meta/kbridge-aws-role-arn"
    meta kbridge-aws-credentials default
    run_init || true
    if grep -q "\"AWS_MSK_IAM\"" "$repo/conf/conf.c"; then
        expect "IAM with kbridge-aws-credentials=default: init succeeds" 0
        assert "... and writes aws_credentials = default, no role, region from the host" sh -c '
            grep -qx "aws_credentials = default" "$1" && ! grep -q "^aws_role_arn" "$1" &&
            ! grep -q "^aws_region" "$1"' sh "$ini"
    else
        expect "IAM with kbridge-aws-credentials=default: fails while kbridge lacks AWS_MSK_IAM" fail
    fi

    # 5. Source tarball built on the node.
    new_root
    meta kbridge-source-uri gs://bucket/kbridge-src.tar.gz
    meta kbridge-bootstrap-servers "$servers"
    run_init || true
    expect "source mode: builds kbridge on the node and succeeds" 0
    assert "source mode: build dependencies requested" \
        grep -q 'install .*build-essential.*libinih-dev.*librdkafka-dev.*libcurl4-openssl-dev' "$tmp/calls"
    assert "source mode: built binary runs" "$tmp/root/usr/local/bin/kbridge" --version
fi

finish
