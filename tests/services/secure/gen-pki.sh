#!/usr/bin/env bash
# Generates the test PKI of the secure services (kafka-secure, cassandra-tls) into DIR (default
# .cache/services/state/pki), once: a second run with every file present does nothing.
#
#   ca.pem/ca.key              the test CA that signs everything below ("sluice test CA")
#   server.pem/server.key      server cert, SAN DNS:localhost, IP:127.0.0.1; server.p12 (alias server) for the JVMs
#   client.pem/client.key      client cert (CN=sluice-client) for mutual TLS; client-enc.key: the same key encrypted
#                              with the passphrase in client-enc.pass (tests ssl_key_password_env)
#   expired.pem/expired.key    signed by the CA, valid 2020-01-01..2020-01-02: as a server cert (expired.p12, the
#                              kafka-secure EXPIRED listener) and as a client cert (cassandra-tls rejects it)
#   rogue-ca.pem               another CA ("rogue CA"); rogue-server.* and rogue-client.* are signed by it
#   truststore.p12             the CA as a trusted entry, for the JVMs to verify client certs
# Store password of the .p12 files: "changeit" (a test fixture, in the services' configs).
set -euo pipefail
DIR=${1:?usage: gen-pki.sh DIR}
STOREPASS=changeit
mkdir -p "$DIR"
cd "$DIR"
[ -f pki.complete ] && exit 0
rm -rf ./*.pem ./*.key ./*.p12 ./*.csr ./*.srl ca-db
OSSL="openssl"
subj() { echo "/O=sluice tests/CN=$1"; }

ca() { # name cn
  $OSSL req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3650 -subj "$(subj "$2")" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
ext_server="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
ext_client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

leaf() { # name cn ca ext days
  $OSSL req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$(subj "$2")" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  $OSSL x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days "$5" -out "$1.pem" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "sluice test CA"
ca rogue-ca "rogue CA"
leaf server localhost ca "$ext_server" 3650
leaf client sluice-client ca "$ext_client" 3650
leaf rogue-server localhost rogue-ca "$ext_server" 3650
leaf rogue-client sluice-client rogue-ca "$ext_client" 3650

# An expired certificate: `openssl ca` is the one CLI path that takes explicit validity dates.
mkdir -p ca-db/new
: > ca-db/index.txt
echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = $DIR/ca-db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[ any ]
organizationName = optional
commonName = supplied
[ ext ]
$ext_server
CNF
$OSSL req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "$(subj localhost)" 2>/dev/null
$OSSL ca -batch -notext -config ca-db/ca.cnf -cert ca.pem -keyfile ca.key -extensions ext \
  -startdate 20200101000000Z -enddate 20200102000000Z -in expired.csr -out expired.pem 2>/dev/null
rm -f expired.csr

# The client key under a passphrase (PKCS#8, AES-256).
head -c 18 /dev/urandom | base64 | tr -d '/+=' > client-enc.pass
$OSSL pkcs8 -topk8 -v2 aes-256-cbc -in client.key -out client-enc.key -passout file:client-enc.pass

p12() { # name
  $OSSL pkcs12 -export -in "$1.pem" -inkey "$1.key" -certfile ca.pem -name server -out "$1.p12" \
    -passout pass:$STOREPASS
}
p12 server
p12 expired
keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.p12 -storetype PKCS12 \
  -storepass $STOREPASS >/dev/null 2>&1
chmod 600 ./*.key client-enc.pass
touch pki.complete
