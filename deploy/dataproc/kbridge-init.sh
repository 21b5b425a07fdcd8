#!/bin/bash
# kbridge-init.sh - Dataproc initialization action: kbridge on every node, as a systemd service,
# so Spark drivers and executors reach AWS MSK's TLS listeners through 127.0.0.1:9092.
#
#   gcloud dataproc clusters create CLUSTER --region REGION --image-version 2.2-debian12 \
#       --initialization-actions gs://BUCKET/kbridge-init.sh \
#       --metadata '^#^kbridge-bootstrap-servers=b-1.X.kafka.REGION.amazonaws.com:9094,b-2.X.kafka.REGION.amazonaws.com:9094' \
#       --metadata kbridge-deb-uri=gs://BUCKET/kbridge_0.1.0_amd64.deb
#
# Runs as root on every node (master and workers: executors run on the workers and each
# connects to its own node's kbridge). Metadata attributes:
#   kbridge-bootstrap-servers  required: the MSK TLS bootstrap string (host:9094,...)
#   kbridge-cluster-name       optional: the config section name (default msk)
#   kbridge-deb-uri            gs:// URI of the Debian package (`make deb` on a Debian 12
#                              machine: build/kbridge_<version>_<arch>.deb). apt-get installs it
#                              with the runtime libraries it depends on: /usr/bin/kbridge, the
#                              packaged unit, man pages, the kbridge user. The recommended way.
#   kbridge-binary-uri         instead: gs:// URI of a bare kbridge binary built on Debian 12
#                              (the Docker build stage's /out/kbridge, or `make`); the runtime
#                              libraries are installed and the unit is written to /etc/systemd
#   kbridge-source-uri         instead: gs:// URI of a source tarball (git archive
#                              --prefix=kbridge/ HEAD | gzip); built on the node with the
#                              Debian build dependencies (slower: a compiler per node)
#                              None of them: /usr/bin/kbridge (package) or /usr/local/bin/kbridge
#                              must already exist (custom image)
#   kbridge-version            optional: fail unless `kbridge --version` reports this version
#   kbridge-check-required     optional: true = fail node initialization when `kbridge check`
#                              fails (default false: log a warning; see run_check below)
# Authentication to MSK (docs/deploy.md "Dataproc to MSK with IAM and no AWS keys"; unset =
# TLS only, or clients' own SASL passing through):
#   kbridge-sasl-mechanism     AWS_MSK_IAM, OAUTHBEARER (MSK IAM, port 9098/9198), or
#                              SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (9096/9196)
#   kbridge-aws-role-arn       IAM: the role to assume (arn:aws:iam::ACCOUNT:role/NAME)
#   kbridge-aws-credentials    IAM: gcp (default when a role is given: the node's Google
#                              service account's ID token, exchanged at STS; no AWS keys) or
#                              default (the AWS SDK chain)
#   kbridge-aws-region         IAM: optional, default from the bootstrap host name
#   kbridge-gcp-audience       IAM with gcp: optional, the ID token's audience (kbridge's
#                              default sts.amazonaws.com); the role's trust policy checks it
#   kbridge-sasl-username      SCRAM/PLAIN: optional when the password file is MSK's JSON secret
#   kbridge-sasl-password-file SCRAM/PLAIN: absolute path of a file already on the node (custom
#                              image, or an earlier init action) holding the password or the
#                              Secrets Manager JSON; made root:kbridge 0640. Never the password
#                              itself: metadata is readable by every process on the VM
#
# Needs a Debian 12 based image (Dataproc 2.2-debian12 or later: kbridge needs OpenSSL 3) and
# access to the Debian mirrors for apt-get (Cloud NAT for internal-IP-only clusters), plus
# read access to the gs:// objects for the cluster's service account.
#
# KBRIDGE_ROOT (tests only) prefixes every path the script writes or reads, including the
# metadata helper /usr/share/google/get_metadata_value; see tests/deploy/test_dataproc_init.sh.
set -euo pipefail

ROOT=${KBRIDGE_ROOT:-}
BIN=$ROOT/usr/local/bin/kbridge
DEB_BIN=$ROOT/usr/bin/kbridge
PACKAGED=   # set when the Debian package provides the binary and the unit
CONF_DIR=$ROOT/etc/kbridge
CONF=$CONF_DIR/kbridge.ini
UNIT=$ROOT/etc/systemd/system/kbridge.service
METADATA=$ROOT/usr/share/google/get_metadata_value
# libcurl4: kbridge's HTTPS client for AWS STS and the metadata servers (IAM authentication).
RUNTIME_PKGS=(libevent-2.1-7 libevent-openssl-2.1-7 libssl3 libinih1 librdkafka1 libcurl4 ca-certificates)
BUILD_PKGS=(build-essential pkg-config libevent-dev libssl-dev libinih-dev librdkafka-dev libcurl4-openssl-dev)

log() {
    echo "kbridge-init: $*"
}

die() {
    echo "kbridge-init: ERROR: $*" >&2
    exit 1
}

# metadata KEY: the attribute's value, or empty when it is not set.
metadata() {
    timeout 30 "$METADATA" "attributes/$1" 2>/dev/null || true
}

# retry N CMD...: apt and GCS fail transiently on fresh nodes (locks, mirrors, token refresh).
retry() {
    local n=$1 i
    shift
    for ((i = 1; i <= n; i++)); do
        if "$@"; then
            return 0
        fi
        log "attempt $i/$n failed: $*"
        sleep $((i * 5))
    done
    return 1
}

# apt_install PKG...
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    retry 5 timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        retry 5 timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends "$@"
}

check_os() {
    local id="" version_id=""
    # shellcheck disable=SC1091
    [[ -r $ROOT/etc/os-release ]] && . "$ROOT/etc/os-release"
    id=${ID:-}
    version_id=${VERSION_ID:-}
    case "$id:$version_id" in
    debian:12 | debian:13) ;;
    ubuntu:22.04 | ubuntu:24.04)
        log "Ubuntu $version_id: only kbridge-source-uri is supported (the binary is built on Debian 12)"
        ;;
    *) die "unsupported OS '$id $version_id': use a Dataproc 2.2-debian12 (or later) image; kbridge needs OpenSSL 3 and apt" ;;
    esac
}

install_binary() {
    local deb_uri bin_uri src_uri work
    deb_uri=$(metadata kbridge-deb-uri)
    bin_uri=$(metadata kbridge-binary-uri)
    src_uri=$(metadata kbridge-source-uri)
    work=$(mktemp -d)
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    if [[ -n $deb_uri ]]; then
        [[ $deb_uri == *.deb ]] || die "kbridge-deb-uri must name a .deb file: '$deb_uri'"
        log "fetching $deb_uri"
        retry 3 timeout 300 gsutil -q cp "$deb_uri" "$work/kbridge.deb" || die "cannot copy $deb_uri"
        chmod 0644 "$work/kbridge.deb" && chmod 0755 "$work" # apt's sandbox user reads it
        log "installing the package and the libraries it depends on"
        apt_install "$work/kbridge.deb" || die "apt-get install $deb_uri failed (does the node reach the Debian mirrors? is it a Debian 12 package?)"
        BIN=$DEB_BIN
        PACKAGED=1
    elif [[ -n $bin_uri ]]; then
        mkdir -p "$ROOT/usr/local/bin"
        log "installing runtime libraries: ${RUNTIME_PKGS[*]}"
        apt_install "${RUNTIME_PKGS[@]}" || die "apt-get install failed (does the node reach the Debian mirrors?)"
        log "fetching $bin_uri"
        retry 3 timeout 300 gsutil -q cp "$bin_uri" "$work/kbridge" || die "cannot copy $bin_uri"
        install -m 0755 "$work/kbridge" "$BIN"
    elif [[ -n $src_uri ]]; then
        mkdir -p "$ROOT/usr/local/bin"
        log "installing build dependencies: ${BUILD_PKGS[*]} ${RUNTIME_PKGS[*]}"
        apt_install "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}" || die "apt-get install failed (does the node reach the Debian mirrors?)"
        log "fetching and building $src_uri"
        retry 3 timeout 300 gsutil -q cp "$src_uri" "$work/src.tar.gz" || die "cannot copy $src_uri"
        mkdir "$work/src"
        tar -xzf "$work/src.tar.gz" -C "$work/src" --strip-components=1
        timeout 900 make -C "$work/src" -j"$(nproc)" BUILD="$work/build" "$work/build/kbridge" \
            >"$work/make.log" 2>&1 || {
            tail -n 30 "$work/make.log" >&2
            die "build failed"
        }
        install -m 0755 "$work/build/kbridge" "$BIN"
    elif [[ -x $BIN ]]; then
        log "using the preinstalled $BIN"
    elif [[ -x $DEB_BIN ]]; then
        log "using the preinstalled package's $DEB_BIN"
        BIN=$DEB_BIN
        PACKAGED=1
    else
        die "set metadata kbridge-deb-uri (or kbridge-binary-uri / kbridge-source-uri), or preinstall the kbridge package"
    fi
    local want have
    have=$("$BIN" --version) || die "$BIN does not run (missing libraries? built for another OS?)"
    log "installed: $have"
    want=$(metadata kbridge-version)
    if [[ -n $want && $have != "kbridge $want "* && $have != "kbridge $want" ]]; then
        die "kbridge-version is $want but the binary reports '$have'"
    fi
}

create_user() {
    local entry='u kbridge - "kbridge Kafka TLS bridge" /nonexistent /usr/sbin/nologin'
    if [[ -n $ROOT ]]; then
        mkdir -p "$ROOT/etc"
        systemd-sysusers --root="$ROOT" --inline "$entry"
    else
        systemd-sysusers --inline "$entry"
    fi
}

# auth_config: prints the cluster section's authentication keys from the metadata (nothing
# when kbridge-sasl-mechanism is unset). Every value is checked against what the key can hold,
# so metadata cannot smuggle a newline and another key into the INI file.
auth_config() {
    local mech role creds region audience user pwfile gid
    mech=$(metadata kbridge-sasl-mechanism | tr -d ' \t\r\n')
    role=$(metadata kbridge-aws-role-arn | tr -d ' \t\r\n')
    creds=$(metadata kbridge-aws-credentials | tr -d ' \t\r\n')
    region=$(metadata kbridge-aws-region | tr -d ' \t\r\n')
    audience=$(metadata kbridge-gcp-audience | tr -d ' \t\r\n')
    # Not stripped: a user name with a newline or a space in it is refused below, not mangled.
    user=$(metadata kbridge-sasl-username)
    pwfile=$(metadata kbridge-sasl-password-file | tr -d ' \t\r\n')
    mech=${mech^^}
    case $mech in
    "")
        [[ -z $role$creds$region$audience$user$pwfile ]] ||
            die "kbridge-aws-*/kbridge-gcp-*/kbridge-sasl-* metadata is set but kbridge-sasl-mechanism is not (AWS_MSK_IAM, OAUTHBEARER, SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)"
        return 0
        ;;
    AWS_MSK_IAM | OAUTHBEARER)
        [[ -z $user$pwfile ]] || die "kbridge-sasl-username/kbridge-sasl-password-file are for SCRAM and PLAIN, not $mech (IAM signs with AWS credentials)"
        [[ -z $role || $role =~ ^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$ ]] ||
            die "kbridge-aws-role-arn '$role' is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        creds=${creds,,}
        if [[ -z $creds ]]; then
            # On Dataproc the node's own identity is a Google service account: with a role to
            # assume, exchange its ID token; without one, only the SDK chain can work.
            if [[ -n $role ]]; then creds=gcp; else creds=default; fi
        fi
        case $creds in
        gcp) [[ -n $role ]] || die "kbridge-aws-credentials=gcp needs kbridge-aws-role-arn (the role the service account's ID token assumes)" ;;
        default) [[ -z $audience ]] || die "kbridge-gcp-audience is only used with kbridge-aws-credentials=gcp" ;;
        *) die "kbridge-aws-credentials '$creds': use gcp or default" ;;
        esac
        [[ -z $region || $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$ ]] ||
            die "kbridge-aws-region '$region' is not a region name such as us-east-1"
        [[ -z $audience || $audience =~ ^[A-Za-z0-9.:/_-]{1,256}$ ]] ||
            die "kbridge-gcp-audience '$audience': use letters, digits and . : / _ - only"
        echo "sasl_mechanism = $mech"
        echo "aws_credentials = $creds"
        [[ -z $role ]] || echo "aws_role_arn = $role"
        [[ -z $region ]] || echo "aws_region = $region"
        [[ -z $audience ]] || echo "gcp_audience = $audience"
        ;;
    SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN)
        [[ -z $role$creds$region$audience ]] || die "kbridge-aws-*/kbridge-gcp-* metadata is for AWS_MSK_IAM and OAUTHBEARER, not $mech"
        [[ -n $pwfile ]] || die "kbridge-sasl-mechanism=$mech needs kbridge-sasl-password-file (a file on the node with the password, or MSK's Secrets Manager JSON)"
        [[ $pwfile =~ ^/[A-Za-z0-9._/-]+$ && $pwfile != *..* ]] ||
            die "kbridge-sasl-password-file '$pwfile': an absolute path of letters, digits and . _ - /"
        [[ -z $user || $user =~ ^[A-Za-z0-9._@+-]{1,256}$ ]] ||
            die "kbridge-sasl-username: use 1-256 letters, digits and . _ @ + - only (no spaces, no line breaks)"
        [[ -f $ROOT$pwfile ]] || die "kbridge-sasl-password-file $pwfile does not exist on this node (put it there in a custom image or an earlier initialization action)"
        # kbridge runs as user kbridge and warns about a file others can read.
        gid=$(awk -F: '$1 == "kbridge" { print $3 }' "$ROOT/etc/group")
        chown "0:${gid:?group kbridge missing}" "$ROOT$pwfile"
        chmod 0640 "$ROOT$pwfile"
        echo "sasl_mechanism = $mech"
        [[ -z $user ]] || echo "sasl_username = $user"
        echo "sasl_password_file = $pwfile"
        ;;
    *) die "kbridge-sasl-mechanism '$mech': use AWS_MSK_IAM, OAUTHBEARER, SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN" ;;
    esac
}

write_config() {
    local servers name gid auth
    # Metadata is user input that ends up in an INI file: allow host:port list characters only,
    # so a value cannot smuggle in a newline and a second key.
    servers=$(metadata kbridge-bootstrap-servers | tr -d ' \t\r\n')
    [[ -n $servers ]] || die "metadata kbridge-bootstrap-servers is not set (the MSK TLS bootstrap string, host:9094,...)"
    local allowed='^[][A-Za-z0-9.:,_-]+$'
    [[ $servers =~ $allowed ]] || die "kbridge-bootstrap-servers has characters a host:port list cannot have: '$servers'"
    name=$(metadata kbridge-cluster-name | tr -d ' \t\r\n')
    name=${name:-msk}
    [[ $name =~ ^[A-Za-z0-9._-]{1,63}$ && $name != global ]] || die "kbridge-cluster-name '$name': use 1-63 letters, digits, '-', '.' or '_'"
    auth=$(auth_config) || exit 1

    mkdir -p "$CONF_DIR"
    cat >"$CONF.new" <<INI
; Written by kbridge-init.sh (Dataproc initialization action) from the cluster metadata.
; Spark on this node: kafka.bootstrap.servers=127.0.0.1:9092, kafka.security.protocol=PLAINTEXT.
[global]
log_level = info
admin_listen = 127.0.0.1:9644

[$name]
bootstrap_servers = $servers
listen = 127.0.0.1:9092
broker_port_base = 9093
tls = on
tls_verify = full
INI
    [[ -z $auth ]] || printf '%s\n' "$auth" >>"$CONF.new"
    # The file names paths on the node; under KBRIDGE_ROOT (tests) validate a copy whose
    # sasl_password_file points into the root, so --check-config opens the same file.
    local checked=$CONF.new
    if [[ -n $ROOT ]]; then
        checked=$CONF.check
        sed "s|^sasl_password_file = /|sasl_password_file = $ROOT/|" "$CONF.new" >"$checked"
    fi
    if ! "$BIN" --check-config -c "$checked" >/dev/null; then
        rm -f "$CONF.new" "$CONF.check"
        die "the generated configuration is invalid (see the line above); check the metadata"
    fi
    rm -f "$CONF.check"
    gid=$(awk -F: '$1 == "kbridge" { print $3 }' "$ROOT/etc/group")
    chown "0:${gid:?group kbridge missing}" "$CONF.new"
    chmod 0640 "$CONF.new"
    mv -f "$CONF.new" "$CONF"
    log "wrote $CONF: [$name] bootstrap_servers = $servers"
    if [[ -n $auth ]]; then
        # No secret here: the keys hold a mechanism, a role, a region and file paths.
        log "authentication: $(paste -sd ' ' - <<<"$auth")"
    fi
}

install_unit() {
    if [[ -n $PACKAGED ]]; then
        # The package's unit (/lib/systemd/system) runs /usr/bin/kbridge; a copy left in
        # /etc/systemd/system by an earlier binary-mode run would override it.
        if [[ -e $UNIT ]]; then
            log "removing $UNIT from an earlier install: the package's unit applies"
            rm -f "$UNIT"
        fi
        return 0
    fi
    mkdir -p "$(dirname "$UNIT")"
    # A copy of deploy/systemd/kbridge.service (tests/deploy/test_dataproc_init.sh diffs them).
    cat >"$UNIT" <<'UNIT'
# kbridge.service - plaintext Kafka on loopback in, verified TLS to the brokers out.
#
# Installed by `make install` to $(PREFIX)/lib/systemd/system/ with /usr/local/bin replaced by
# $(PREFIX)/bin, and by deploy/dataproc/kbridge-init.sh to /etc/systemd/system/. The user
# comes from kbridge.sysusers (`systemd-sysusers`). A fixed system user rather than
# DynamicUser=: mTLS keys (tls_key_file) can then be made readable to group kbridge only.
#
#   systemctl enable --now kbridge     start now and at boot
#   systemctl reload kbridge           re-read /etc/kbridge/kbridge.ini (SIGHUP; an invalid
#                                      file is refused and the running config stays)
#   journalctl -u kbridge              logs (kbridge logs to stderr)

[Unit]
Description=kbridge Kafka TLS bridge
Documentation=man:kbridge(1) man:kbridge.ini(5)
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
User=kbridge
Group=kbridge
# Refuse to start, or to reload, with an invalid file: the error (FILE:LINE: message) is in
# the journal and in `systemctl status`.
ExecStartPre=/usr/local/bin/kbridge --check-config -c /etc/kbridge/kbridge.ini
ExecStart=/usr/local/bin/kbridge -c /etc/kbridge/kbridge.ini
ExecReload=/usr/local/bin/kbridge --check-config -c /etc/kbridge/kbridge.ini
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
# Exit 2 is a configuration error: restarting cannot fix it.
RestartPreventExitStatus=2
# SIGTERM drains in-flight requests for up to drain_timeout_ms (default 30 s); leave room.
TimeoutStopSec=45s
LimitNOFILE=65536

# Hardening. kbridge needs: read /etc/kbridge and /etc/ssl, TCP sockets, DNS. Nothing else.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=multi-user.target
UNIT
    chmod 0644 "$UNIT"
}

start_service() {
    local i
    systemctl daemon-reload
    systemctl enable kbridge.service
    systemctl restart kbridge.service
    for ((i = 0; i < 20; i++)); do
        if systemctl is-active --quiet kbridge.service; then
            log "kbridge.service is active"
            return 0
        fi
        sleep 0.5
    done
    journalctl -u kbridge.service -n 50 --no-pager >&2 || true
    die "kbridge.service did not start"
}

# A failed check warns and does not fail the node by default. Creating a Dataproc cluster fails
# as a whole when an init action fails on any node, and the usual causes here are not this
# node's: the MSK security group or public access not open yet, DNS not propagated, MSK under
# maintenance. kbridge dials the brokers afresh for every client connection, so once that is
# fixed jobs work without recreating the cluster. A wrong configuration is different and did
# fail above (--check-config). kbridge-check-required=true makes the check fatal, for
# pipelines that would rather not get a cluster that cannot reach Kafka.
run_check() {
    local out rc=0 required
    required=$(metadata kbridge-check-required)
    out=$(timeout 180 "$BIN" check -c "$CONF" 2>&1) || rc=$?
    while IFS= read -r line; do
        log "check: $line"
    done <<<"$out"
    if [[ $rc -eq 0 ]]; then
        log "kbridge check passed: the cluster is reachable and its certificates verify"
        return 0
    fi
    case ${required,,} in
    true | yes | 1 | on) die "kbridge check failed (exit $rc) and kbridge-check-required is set" ;;
    esac
    log "WARNING: kbridge check failed (exit $rc); kbridge is running and will keep retrying. Jobs cannot reach Kafka until the cause above is fixed (MSK public access, the security group's inbound rule for the bootstrap port from this cluster's egress IPs, DNS, and with IAM the role's trust policy and the IAM policy: docs/deploy.md)."
}

main() {
    if [[ -z $ROOT && $(id -u) -ne 0 ]]; then
        die "run as root (Dataproc runs initialization actions as root)"
    fi
    log "node $(hostname) role $(metadata dataproc-role)"
    check_os
    install_binary
    create_user
    write_config
    install_unit
    start_service
    run_check
    log "done: Spark on this node uses kafka.bootstrap.servers=127.0.0.1:9092 with kafka.security.protocol=PLAINTEXT"
}

main "$@"
