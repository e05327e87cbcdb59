#!/bin/bash
# An independent verifier built from docs/signatures.md with the openssl
# and coreutils command-line tools: it rebuilds the documented messages
# (context encoding, hybrid construction), key ids and file layouts and
# checks creto's signatures with plain OpenSSL Ed25519.
. "$(dirname "$0")/lib.sh"
cd "$T"
command -v openssl >/dev/null || skip "openssl command missing"

printf 'the enclave trusts this file\n' >msg
b64body() { sed -n 3p "$1" | base64 -d; }
# Ed25519 raw public key (32 bytes, file $1) -> PEM SubjectPublicKeyInfo $2
ed_pem() { { printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; cat "$1"; } |
	openssl pkey -pubin -inform DER -out "$2" 2>/dev/null; }
ossl_verify() { openssl pkeyutl -verify -pubin -inkey "$1" -rawin -in "$2" -sigfile "$3" >/dev/null 2>&1; }

# --- ed25519, empty context: plain RFC 8032 over the file ---
"$CRETO" key gen --alg ed25519 -o ed >/dev/null
b64body ed.pub >ed.raw
ed_pem ed.raw ed.pem
kid=$( { printf 'ed25519\0'; cat ed.raw; } | sha256sum | cut -c1-16)
[ "$(awk 'NR==2{print $3}' ed.pub)" = "$kid" ] && ok || fail "key id differs from SHA-256(alg||0||pk)[0..8)"
"$CRETO" sign --raw --key ed.key msg -o ed.sig >/dev/null
b64body ed.sig >ed.sigbin
[ "$(stat -c %s ed.sigbin)" = 64 ] && ok || fail "ed25519 signature not 64 bytes"
ossl_verify ed.pem msg ed.sigbin && ok || fail "openssl rejects creto's plain ed25519 signature"
# a raw signature can never be made over bytes that begin like a context-bound one
{ printf 'creto-ctx-v1\0ed25519\0\x19creto-update-statement-v1'; cat msg; } >forge.m
expect 1 --err "reserved for context-bound signatures" -- "$CRETO" sign --raw --key ed.key forge.m -o forge.sig
# without --raw or --context, creto sign uses the context creto-file-v1
"$CRETO" sign --key ed.key msg -o edf.sig >/dev/null
b64body edf.sig >edf.sigbin
{ printf 'creto-ctx-v1\0ed25519\0\x0dcreto-file-v1'; cat msg; } >edf.m
ossl_verify ed.pem edf.m edf.sigbin && ok || fail "default file context differs from the documentation"
expect 0 -- "$CRETO" verify --pub ed.pub msg edf.sig
expect 1 --err "bad signature" -- "$CRETO" verify --raw --pub ed.pub msg edf.sig
expect 1 --err "bad signature" -- "$CRETO" verify --pub ed.pub msg ed.sig
expect 0 -- "$CRETO" verify --raw --pub ed.pub msg ed.sig
expect 2 -- "$CRETO" sign --raw --context x --key ed.key msg -o x.sig

# --- ed25519 with context: "creto-ctx-v1" 0 alg 0 u8(len) ctx msg ---
"$CRETO" sign --key ed.key --context abc msg -o edc.sig >/dev/null
b64body edc.sig >edc.sigbin
{ printf 'creto-ctx-v1\0ed25519\0\x03abc'; cat msg; } >edc.m
ossl_verify ed.pem edc.m edc.sigbin && ok || fail "context encoding differs from the documentation"
ossl_verify ed.pem msg edc.sigbin && fail "context signature verifies as a plain one" || ok

# --- hybrid: classical half over Mh = label 0 alg 0 SHA-512(pk) u8(len) ctx msg ---
"$CRETO" key gen --alg hybrid -o hy >/dev/null
b64body hy.pub >hy.raw
[ "$(stat -c %s hy.raw)" = 1984 ] && ok || fail "hybrid public key not 1984 bytes"
head -c 32 hy.raw >hyc.raw
ed_pem hyc.raw hyc.pem
"$CRETO" sign --key hy.key --context ctx1 msg -o hy.sig >/dev/null
b64body hy.sig >hy.sigbin
[ "$(stat -c %s hy.sigbin)" = 3373 ] && ok || fail "hybrid signature not 3373 bytes"
head -c 64 hy.sigbin >hyc.sigbin
{ printf 'creto-hybrid-v1\0hybrid\0'; openssl dgst -sha512 -binary hy.raw; printf '\x04ctx1'; cat msg; } >hy.m
ossl_verify hyc.pem hy.m hyc.sigbin && ok || fail "hybrid classical half is not over the documented Mh"
# stripping: the half is no plain signature of the file, with or without context
ossl_verify hyc.pem msg hyc.sigbin && fail "hybrid classical half verifies as a plain signature" || ok
{ printf 'creto-ctx-v1\0ed25519\0\x04ctx1'; cat msg; } >hy.m2
ossl_verify hyc.pem hy.m2 hyc.sigbin && fail "hybrid classical half verifies as a context signature" || ok
finish
