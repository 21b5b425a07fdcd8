#!/bin/sh
# test_jks_convert.sh - the JKS-to-PEM blocks of docs/deploy.md ("Converting JKS stores to
# PEM"), run verbatim: build a JKS truststore and keystore the way MSK guides do, run each
# marked ```sh block in their directory, and check that the PEM files are the right
# certificates and an unencrypted matching key, and that kbridge --check-config accepts them.
# shellcheck disable=SC2016  # the sh -c '...' sh ARG snippets are single-quoted on purpose
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

doc=$repo/docs/deploy.md
need keytool default-jre-headless || true
need openssl openssl || true
need_kbridge || true
if ! command -v keytool >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    finish
    exit 1
fi

# block NAME: the ```sh block after "<!-- tests/deploy/test_jks_convert.sh runs this block: NAME -->"
block() {
    awk -v m="<!-- tests/deploy/test_jks_convert.sh runs this block: $1 -->" '
        $0 == m { armed = 1; next }
        armed && /^```sh$/ { on = 1; next }
        on && /^```$/ { exit }
        on { print }' "$doc"
}

# --- JKS stores as a Kafka client would have them -------------------------------------------------
w=$tmp/w
mkdir -p "$w" "$tmp/pki"
(
    cd "$tmp/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj /CN=test-msk-ca
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=spark-client
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -out client.crt
    echo 'changeit-trust' >"$w/truststore.pass"
    echo 'changeit-keys' >"$w/keystore.pass"
    keytool -importcert -noprompt -alias caroot -file ca.pem -storetype JKS \
        -keystore "$w/kafka.client.truststore.jks" -storepass:file "$w/truststore.pass"
    openssl pkcs12 -export -in client.crt -inkey client.key -certfile ca.pem -name client \
        -out client-src.p12 -passout file:"$w/keystore.pass"
    keytool -importkeystore -noprompt -srckeystore client-src.p12 -srcstoretype PKCS12 \
        -srcstorepass:file "$w/keystore.pass" -destkeystore "$w/kafka.client.keystore.jks" \
        -deststoretype JKS -deststorepass:file "$w/keystore.pass"
) >"$tmp/pki.log" 2>&1 || {
    fail "test PKI and JKS stores built"
    tail -n 10 "$tmp/pki.log" | sed 's/^/     | /'
    finish
    exit 1
}
ok "JKS truststore and keystore built with keytool"

fingerprint() {
    openssl x509 -noout -fingerprint -sha256 -in "$1"
}

# --- the documented commands ---------------------------------------------------------------------
for name in truststore keystore; do
    block "$name" >"$tmp/$name.sh"
    if [ ! -s "$tmp/$name.sh" ]; then
        fail "docs/deploy.md has the marked $name block"
        continue
    fi
    check "docs/deploy.md $name block runs ($(wc -l <"$tmp/$name.sh") lines)" \
        sh -c 'cd "$1" && timeout 120 sh -eu "$2"' sh "$w" "$tmp/$name.sh"
done

same_ca() {
    [ "$(fingerprint "$w/ca.pem")" = "$(fingerprint "$tmp/pki/ca.pem")" ]
}
client_cert_first() { # tls_cert_file: the client certificate first, then its chain
    [ "$(fingerprint "$w/client.pem")" = "$(fingerprint "$tmp/pki/client.crt")" ] &&
        [ "$(grep -c 'BEGIN CERTIFICATE' "$w/client.pem")" -eq 2 ]
}
key_unencrypted_matches() {
    ! grep -q ENCRYPTED "$w/client.key" &&
        [ "$(openssl pkey -in "$w/client.key" -pubout)" = \
            "$(openssl x509 -in "$w/client.pem" -noout -pubkey)" ]
}
check "ca.pem is the truststore's CA" same_ca
check "client.pem is the client certificate, then the CA" client_cert_first
check "client.key is unencrypted and matches client.pem" key_unencrypted_matches

cat >"$tmp/mtls.ini" <<INI
[msk]
bootstrap_servers = b-1.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9094
tls_ca_file = $w/ca.pem
tls_cert_file = $w/client.pem
tls_key_file = $w/client.key
INI
if [ -x "$KBRIDGE" ]; then
    check "kbridge --check-config accepts the converted ca.pem, client.pem, client.key" \
        timeout 30 "$KBRIDGE" --check-config -c "$tmp/mtls.ini"
    # What the docs promise when someone points kbridge at the JKS file itself.
    sed "s|^tls_ca_file = .*|tls_ca_file = $w/kafka.client.truststore.jks|" "$tmp/mtls.ini" \
        >"$tmp/jks.ini"
    jks_refused() {
        out=$(timeout 30 "$KBRIDGE" --check-config -c "$tmp/jks.ini" 2>&1) && return 1
        printf '%s\n' "$out"
        printf '%s\n' "$out" | grep -q 'Java keystore'
    }
    check "kbridge refuses a JKS tls_ca_file and says it is a Java keystore" jks_refused
fi

finish
