#!/usr/bin/env bash
# Generates tlsbridge's throwaway test PKI into OUTDIR (openssl CLI only). Idempotent: re-running
# into an existing directory regenerates every file. Names and purposes:
#   ca.crt/.key            root CA (RSA 2048, sha256, self-signed, CA:TRUE)
#   inter.crt/.key         intermediate CA (sha256) signed by ca
#   server.*               leaf CN=localhost, SAN localhost, mail.test, 127.0.0.1, signed by inter
#   sni-a.*, sni-b.*       leaves for a.test / b.test, signed by inter
#   sha1.*                 CN=legacy.test, SAN localhost + 127.0.0.1, signed by ca with SHA-1
#                          (the legacy backend's certificate)
#   md5inter.crt/.key      intermediate signed by ca with MD5
#   md5leaf.*              leaf (sha256) signed by md5inter; chain = md5leaf + md5inter
#   rsa1024.*              RSA-1024 leaf signed by inter
#   expired.*              leaf valid 2020-01-01..2021-01-01 signed by inter (via `openssl ca`,
#                          because `openssl x509 -req` in 3.0 cannot set dates)
#   selfsigned.crt/.key    self-signed leaf, SAN localhost
#   client.*               client certificate (clientAuth) signed by inter
#   client-sha1.*          client certificate signed by ca with SHA-1
#   otherca.crt/.key       a second root CA, unrelated to ca (what a client_ca must not trust)
#   impostorca.crt/.key    a root with ca's very subject name but its own key
#   client-md5self.*       self-signed MD5 certificate as `openssl req -x509 -md5` makes it
#   client-md5self-eku.*   the same with clientAuth EKU and CA:FALSE; neither in any trust store
#   client-other.*         client certificate signed by otherca; chain = leaf + otherca
#   client-impostor.*      client certificate signed by impostorca; chain = leaf + impostorca
#   client-rooted-elsewhere.chain.pem  client-other + otherca + ca.crt: carries client_ca's own
#                          certificate, yet its path ends in otherca (key: client-other.key)
# Leaves come as NAME.crt, NAME.key and NAME.chain.pem (leaf + issuing intermediate, if any).
# Keys are mode 0644 on purpose: daemons under test (postfix, dovecot) must read them.
# Usage: make_test_certs.sh OUTDIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tlsbridge-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
# No user or system openssl.cnf oddities: everything comes from the command line / our own files.
export OPENSSL_CONF=/dev/null
cd "$work"

days=3650

# ext NAME LINES... : writes an extension file $work/NAME.ext
ext() {
  local name=$1
  shift
  printf '%s\n' "$@" >"$work/$name.ext"
}

ext ca "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" \
  "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
ext server "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
  "subjectAltName=DNS:localhost,DNS:mail.test,IP:127.0.0.1"
ext local "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1"
ext sni-a "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:a.test"
ext sni-b "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:b.test"
ext client "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=clientAuth" "subjectAltName=DNS:client.test"

# key NAME BITS : new RSA key $out/NAME.key
key() {
  openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$out/$1.key" 2>/dev/null
  chmod 644 "$out/$1.key"
}

# sign NAME CN ISSUER DIGEST EXT : CSR from NAME.key, certificate NAME.crt signed by ISSUER
sign() {
  local name=$1 cn=$2 issuer=$3 md=$4 extname=$5
  openssl req -new -key "$out/$name.key" -subj "/O=tlsbridge test/CN=$cn" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$out/$issuer.crt" -CAkey "$out/$issuer.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days "$days" "-$md" \
    -extfile "$work/$extname.ext" -out "$out/$name.crt" 2>/dev/null
}

# chain NAME [INTERMEDIATE] : NAME.chain.pem = leaf (+ intermediate)
chain() {
  if [[ $# -gt 1 ]]; then
    cat "$out/$1.crt" "$out/$2.crt" >"$out/$1.chain.pem"
  else
    cat "$out/$1.crt" >"$out/$1.chain.pem"
  fi
}

# Root CA
key ca 2048
openssl req -x509 -new -key "$out/ca.key" -subj "/O=tlsbridge test/CN=tlsbridge test root CA" \
  -days "$days" -sha256 -set_serial "0x$(openssl rand -hex 8)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" -out "$out/ca.crt"

# Intermediates
key inter 2048
sign inter "tlsbridge test intermediate CA" ca sha256 ca
key md5inter 2048
sign md5inter "tlsbridge test MD5 intermediate CA" ca md5 ca

# Leaves under the sha256 intermediate
key server 2048
sign server localhost inter sha256 server
chain server inter
key sni-a 2048
sign sni-a a.test inter sha256 sni-a
chain sni-a inter
key sni-b 2048
sign sni-b b.test inter sha256 sni-b
chain sni-b inter
key rsa1024 1024
sign rsa1024 rsa1024.test inter sha256 local
chain rsa1024 inter
key client 2048
sign client client.test inter sha256 client
chain client inter

# Weak-hash leaves
key sha1 2048
sign sha1 legacy.test ca sha1 local
chain sha1
key client-sha1 2048
sign client-sha1 client-sha1.test ca sha1 client
chain client-sha1
key md5leaf 2048
sign md5leaf md5leaf.test md5inter sha256 local
chain md5leaf md5inter

# Expired leaf: `openssl ca` with a throwaway database, for -startdate/-enddate.
key expired 2048
openssl req -new -key "$out/expired.key" -subj "/O=tlsbridge test/CN=expired.test" \
  -out "$work/expired.csr"
mkdir -p "$work/ca/newcerts"
: >"$work/ca/index.txt"
openssl rand -hex 8 >"$work/ca/serial"
cat >"$work/ca.cnf" <<CNF
[ ca ]
default_ca = throwaway
[ throwaway ]
dir = $work/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
organizationName = optional
commonName = supplied
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:expired.test,DNS:localhost
authorityKeyIdentifier = keyid
CNF
openssl ca -batch -notext -config "$work/ca.cnf" -extensions leaf_ext \
  -cert "$out/inter.crt" -keyfile "$out/inter.key" \
  -startdate 20200101000000Z -enddate 20210101000000Z \
  -in "$work/expired.csr" -out "$out/expired.crt" 2>/dev/null
chain expired inter

# Self-signed leaf
key selfsigned 2048
openssl req -x509 -new -key "$out/selfsigned.key" -subj "/O=tlsbridge test/CN=selfsigned.test" \
  -days "$days" -sha256 -addext "basicConstraints=critical,CA:FALSE" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out "$out/selfsigned.crt"

# Client chains that must not be trusted by a client_ca of ca.crt (issue 12 item 5).
# root NAME CN : a self-signed root CA NAME.crt
root() {
  key "$1" 2048
  openssl req -x509 -new -key "$out/$1.key" -subj "/O=tlsbridge test/CN=$2" \
    -days "$days" -sha256 -set_serial "0x$(openssl rand -hex 8)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$out/$1.crt"
}
root otherca "tlsbridge test other root CA"
root impostorca "tlsbridge test root CA"
# As an attacker makes it: `openssl req -x509 -md5`, OpenSSL's default extensions (CA:TRUE).
key client-md5self 2048
openssl req -x509 -new -key "$out/client-md5self.key" -md5 -days "$days" \
  -subj "/O=tlsbridge test/CN=client-md5self.test" -out "$out/client-md5self.crt" 2>/dev/null
chain client-md5self
# The same with a client leaf's extensions (CA:FALSE, digitalSignature, clientAuth).
key client-md5self-eku 2048
openssl req -x509 -new -key "$out/client-md5self-eku.key" -md5 -days "$days" \
  -subj "/O=tlsbridge test/CN=client-md5self-eku.test" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=clientAuth" -out "$out/client-md5self-eku.crt" 2>/dev/null
chain client-md5self-eku
key client-other 2048
sign client-other client-other.test otherca sha256 client
chain client-other otherca
key client-impostor 2048
sign client-impostor client-impostor.test impostorca sha256 client
chain client-impostor impostorca
cat "$out/client-other.crt" "$out/otherca.crt" "$out/ca.crt" >"$out/client-rooted-elsewhere.chain.pem"

chmod 644 "$out"/*.crt "$out"/*.pem "$out"/*.key
