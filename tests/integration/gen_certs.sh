#!/bin/sh
# gen_certs.sh DIR - a throwaway PKI for the tests and the demo. Never use these anywhere else.
#   ca.pem           test CA ("kbridge test CA"); server*.pem are signed by it
#   server.pem/.key  SAN localhost, 127.0.0.1, ::1         (the good broker certificate)
#   wronghost.pem    SAN wrong.example.com                 (hostname mismatch)
#   expired.pem      SAN localhost, 127.0.0.1, expired 2020 (expired)
#   other-ca.pem     a second CA; untrusted.pem is signed by it (chain not trusted)
#   client.pem/.key  client certificate for mTLS; other.key does not match it
set -eu
dir=${1:?usage: gen_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f .done ] && exit 0
days=3650
subj() { printf '/O=kbridge tests/CN=%s' "$1"; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
    -subj "$(subj 'kbridge test CA')" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days $days \
    -subj "$(subj 'some other CA')" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null

# leaf NAME CN SAN CA_PREFIX
leaf() {
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$(subj "$2")" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
        "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days $days \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
leaf server localhost 'DNS:localhost,IP:127.0.0.1,IP:::1' ca
leaf wronghost wrong.example.com 'DNS:wrong.example.com' ca
leaf untrusted localhost 'DNS:localhost,IP:127.0.0.1' other-ca
leaf client 'kbridge client' 'DNS:kbridge-client' ca
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key 2>/dev/null

# expired: openssl ca is the only 3.0 tool that takes explicit start and end dates
mkdir -p ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
cat > ca.db/ca.cnf <<CNF
[ca]
default_ca = tca
[tca]
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = anything
copy_extensions = none
[anything]
organizationName = optional
commonName = supplied
[ext]
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth
basicConstraints = CA:FALSE
CNF
openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "$(subj localhost)" 2>/dev/null
openssl ca -batch -config ca.db/ca.cnf -extensions ext -startdate 20190101000000Z \
    -enddate 20200101000000Z -in expired.csr -out expired.pem -notext 2>/dev/null
rm -f expired.csr
printf 'not a certificate\n' > garbage.pem
touch .done
