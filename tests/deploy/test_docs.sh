#!/bin/sh
# test_docs.sh - man pages, docs/deploy.md, and shellcheck over every deploy script:
# groff -ww and man --warnings silent; every key of docs/config.md and conf/kbridge.ini
# documented in kbridge.ini(5); every option of `kbridge --help` in kbridge(1); the sections
# and kafka.ssl.* mapping rows docs/deploy.md promises.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

man1=$repo/docs/kbridge.1
man5=$repo/docs/kbridge.ini.5
deploy=$repo/docs/deploy.md

# --- man pages -----------------------------------------------------------------------------------
if need groff groff; then
    for page in "$man1" "$man5"; do
        groff_quiet() {
            out=$(timeout 30 groff -ww -z -man "$1" 2>&1)
            printf '%s\n' "$out"
            [ -z "$out" ]
        }
        check "groff -ww -z -man $(basename "$page"): no warnings" groff_quiet "$page"
    done
fi
if need man man-db; then
    for page in "$man1" "$man5"; do
        man_quiet() {
            out=$(MANWIDTH=80 LC_ALL=C.UTF-8 timeout 30 man --warnings -l "$1" 2>&1 >/dev/null)
            printf '%s\n' "$out"
            [ -z "$out" ]
        }
        check "man --warnings -l $(basename "$page"): renders, no warnings" man_quiet "$page"
    done
fi

keys_documented() { # every key in config.md's tables and conf/kbridge.ini has a .BR entry
    missing=
    for k in $(sed -n 's/^| `\([a-z_]*\)` |.*/\1/p' "$repo/docs/config.md") \
        $(sed -n 's/^\([a-z_]*\) *=.*/\1/p' "$repo/conf/kbridge.ini"); do
        grep -q "^\.BR $k " "$man5" || missing="$missing $k"
    done
    [ -z "$missing" ] || { echo "not in kbridge.ini.5:$missing"; return 1; }
}
check "every key of docs/config.md and conf/kbridge.ini is in kbridge.ini(5)" keys_documented

if need_kbridge; then
    options_documented() { # every --long option of kbridge --help, written \-\-long in roff
        missing=
        for o in $("$KBRIDGE" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
            roff=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
            grep -q -- "$roff" "$man1" || missing="$missing $o"
        done
        [ -z "$missing" ] || { echo "not in kbridge.1:$missing"; return 1; }
    }
    check "every option of kbridge --help is in kbridge(1)" options_documented
fi

# --- docs/deploy.md ------------------------------------------------------------------------------
for s in "## Deploying" "## Moving a job from direct TLS to kbridge" \
    "### Converting JKS stores to PEM" "### GCP Dataproc: initialization action" \
    "### Kubernetes: sidecar" "### Docker" "### A host: make install and systemd"; do
    check "docs/deploy.md has \"$s\"" grep -qxF "$s" "$deploy"
done
ssl_rows() { # each option a direct-TLS job sets has a row in the mapping table
    missing=
    for o in security.protocol=SSL ssl.truststore.location ssl.truststore.password \
        ssl.truststore.type ssl.keystore.location ssl.keystore.password ssl.keystore.type \
        ssl.key.password ssl.endpoint.identification.algorithm ssl.enabled.protocols \
        ssl.protocol ssl.cipher.suites security.protocol=SASL_SSL; do
        grep -q "^| \`kafka\.$o" "$deploy" || grep -q "^| .*\`kafka\.$o" "$deploy" ||
            missing="$missing kafka.$o"
    done
    for k in tls_ca_file tls_cert_file tls_key_file tls_verify "tls = on"; do
        grep -q "^|.*$k" "$deploy" || missing="$missing ($k)"
    done
    [ -z "$missing" ] || { echo "no table row for:$missing"; return 1; }
}
check "docs/deploy.md maps every kafka.ssl.* option to a kbridge key" ssl_rows
check "docs/deploy.md shows the gcloud --initialization-actions / --metadata line" \
    sh -c 'grep -q -- "--initialization-actions gs://BUCKET/kbridge-init.sh" "$1" &&
           grep -q -- "--metadata kbridge-bootstrap-servers=" "$1"' sh "$deploy"

# --- shellcheck ------------------------------------------------------------------------------------
if need shellcheck shellcheck; then
    for f in "$repo"/deploy/dataproc/kbridge-init.sh "$repo"/tests/deploy/*.sh; do
        check "shellcheck $(basename "$f")" sh -c 'cd "$(dirname "$1")" && shellcheck -x "$1"' sh "$f"
    done
fi

finish
