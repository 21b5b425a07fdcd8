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
sasl_rows() { # each SASL option a job sets for MSK has a row, naming the key that replaces it
    missing=
    for o in 'kafka\.security\.protocol=SASL_SSL' 'kafka\.sasl\.mechanism=SCRAM-SHA-512' \
        'kafka\.sasl\.mechanism=AWS_MSK_IAM' 'kafka\.sasl\.mechanism=OAUTHBEARER' \
        'kafka\.sasl\.jaas\.config' ScramLoginModule IAMLoginModule \
        'kafka\.sasl\.client\.callback\.handler\.class' 'kafka\.sasl\.login\.callback\.handler\.class'; do
        grep -q "^| [^|]*$o" "$deploy" || missing="$missing $o"
    done
    for k in 'sasl_mechanism = SCRAM-SHA-512' sasl_username sasl_password_file \
        'sasl_mechanism = AWS_MSK_IAM' 'sasl_mechanism = OAUTHBEARER' aws_credentials aws_role_arn; do
        grep -q "^|.*$k" "$deploy" || missing="$missing ($k)"
    done
    [ -z "$missing" ] || { echo "no table row for:$missing"; return 1; }
}
check "docs/deploy.md maps kafka.sasl.* and SASL_SSL to the sasl_*/aws_* keys" sasl_rows
no_iam_passthrough() { # IAM cannot pass through kbridge: no row may advise keeping it on the job
    if grep -n '^| [^|]*AWS_MSK_IAM[^|]*|[^|]*keep `kafka\.sasl' "$deploy"; then
        echo "a row keeps kafka.sasl.* on the client for AWS_MSK_IAM"
        return 1
    fi
}
check "docs/deploy.md does not tell IAM jobs to keep kafka.sasl.* (the signature names 127.0.0.1)" \
    no_iam_passthrough
check "docs/deploy.md has \"## Dataproc to MSK with IAM and no AWS keys\"" \
    grep -qxF "## Dataproc to MSK with IAM and no AWS keys" "$deploy"
iam_policies() { # the JSON blocks marked for this test parse, and say what the section promises
    PYTHONDONTWRITEBYTECODE=1 "$PYTHON" - "$deploy" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
blocks = dict(re.findall(r"<!-- tests/deploy/test_docs.sh parses this block as JSON: ([^>]+?) -->\n```json\n(.*?)```", text, re.S))
assert set(blocks) == {"trust policy", "MSK policy"}, sorted(blocks)
trust = json.loads(blocks["trust policy"])["Statement"][0]
assert trust["Principal"] == {"Federated": "accounts.google.com"}, trust["Principal"]
assert trust["Action"] == "sts:AssumeRoleWithWebIdentity", trust["Action"]
cond = trust["Condition"]["StringEquals"]
assert re.fullmatch(r"\d{21}", cond["accounts.google.com:aud"]), "aud is the unique id"
assert cond["accounts.google.com:sub"] == cond["accounts.google.com:aud"], "sub = aud = unique id"
assert cond["accounts.google.com:oaud"] == "sts.amazonaws.com", "oaud = gcp_audience's default"
msk = json.loads(blocks["MSK policy"])["Statement"]
acts = {a: st["Resource"] for st in msk for a in st["Action"]}
for a in ("Connect", "DescribeCluster", "DescribeTopic", "ReadData", "WriteData",
          "DescribeGroup", "AlterGroup"):
    assert "kafka-cluster:" + a in acts, a
def arns(r):
    return r if isinstance(r, list) else [r]
for act, kind in (("Connect", "cluster"), ("ReadData", "topic"), ("AlterGroup", "group")):
    for r in arns(acts["kafka-cluster:" + act]):
        assert re.match(r"arn:aws:kafka:[a-z0-9-]+:\d{12}:%s/" % kind, r), (act, r)
PY
}
check "docs/deploy.md: the trust policy and the MSK policy are valid JSON with the promised conditions and ARNs" \
    iam_policies
check "docs/deploy.md: the trust policy's oaud is gcp_audience's default in config.md" \
    grep -q '^| `gcp_audience` | string | `sts.amazonaws.com`' "$repo/docs/config.md"

# --- README.md -----------------------------------------------------------------------------------
readme=$repo/README.md
check "README.md has \"## Authenticating to MSK\"" grep -qxF "## Authenticating to MSK" "$readme"
readme_auth() { # the section covers every MSK access mode and what kbridge does itself
    sec=$(sed -n '/^## Authenticating to MSK$/,/^## [^A]/p' "$readme")
    missing=
    for w in 9094 9194 9096 9196 9098 9198 SCRAM-SHA-512 AWS_MSK_IAM OAUTHBEARER \
        aws_credentials KIP-368 ILLEGAL_SASL_STATE /readyz 'SaslHandshake v0'; do
        printf '%s\n' "$sec" | grep -qF -- "$w" || missing="$missing $w"
    done
    [ -z "$missing" ] || { echo "README \"Authenticating to MSK\" does not mention:$missing"; return 1; }
}
check "README.md \"Authenticating to MSK\": ports, mechanisms, re-authentication, refusals" readme_auth
check "README.md no longer calls SaslHandshake v0 unsupported" sh -c \
    '! grep -qi "not supported:.*SaslHandshake v0" "$1"' sh "$readme"
check "docs/deploy.md shows the gcloud --initialization-actions / --metadata line" \
    sh -c 'grep -q -- "--initialization-actions gs://BUCKET/kbridge-init.sh" "$1" &&
           grep -qF -- "$2" "$1"' sh "$deploy" "--metadata '^#^kbridge-bootstrap-servers="

# --- shellcheck ------------------------------------------------------------------------------------
if need shellcheck shellcheck; then
    for f in "$repo"/deploy/dataproc/kbridge-init.sh "$repo"/tests/deploy/*.sh; do
        check "shellcheck $(basename "$f")" sh -c 'cd "$(dirname "$1")" && shellcheck -x "$1"' sh "$f"
    done
fi

finish
