#!/bin/bash
# test_model_sign.sh - `creto model sign` / `creto model verify --sig`: DSSE
# envelopes over the manifest statement in a Sigstore bundle v0.3, for every
# key algorithm; interoperability with the layout of sigstore/model-
# transparency's key method, checked both ways with independent tools.
#
# The upstream tool (`model_signing`, Python) cannot be installed on these
# machines (no network), so its bundle is built here to its documented
# layout (`src/model_signing/_signing/sign_ec_key.py`, `signing.py`) with
# python3 (json, hashlib, base64) and the openssl CLI, and creto's bundles
# are checked the way that tool checks them.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
"$CRETO" key gen --help >/dev/null 2>&1 || skip "signatures module not built"

M=$T/model
mkdir -p "$M/weights"
head -c 200000 /dev/urandom >"$M/weights/w.safetensors"
echo '{"hidden_size":64}' >"$M/config.json"
: >"$M/empty"

# ---- every algorithm: sign a directory, verify, refuse changes --------------------
for alg in ecdsa-p256 ecdsa-p384 ed25519 ml-dsa-44 ml-dsa-65 ml-dsa-87 hybrid hybrid-cnsa2; do
  expect 0 -- "$CRETO" key gen --alg $alg -o "$T/$alg"
  expect 0 --err "$alg signature" -- "$CRETO" model sign "$M" --key "$T/$alg.key" -o "$T/$alg.sig"
  expect 0 --out verified -- "$CRETO" model verify "$M" --sig "$T/$alg.sig" --pub "$T/$alg.pub"
done
python3 - "$T" <<'PY' && ok || fail "bundle layout"
import json, sys, base64
T = sys.argv[1]
for alg in ['ecdsa-p256', 'ecdsa-p384', 'ed25519', 'ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87', 'hybrid', 'hybrid-cnsa2']:
    b = json.load(open(f'{T}/{alg}.sig'))
    kid = open(f'{T}/{alg}.pub').read().split('\n')[1].split(' ')[2]
    assert b['mediaType'] == 'application/vnd.dev.sigstore.bundle.v0.3+json'
    assert b['verificationMaterial']['tlogEntries'] == []
    env = b['dsseEnvelope']
    assert env['payloadType'] == 'application/vnd.in-toto+json'
    assert len(env['signatures']) == 1
    st = json.loads(base64.b64decode(env['payload']))
    assert st['predicateType'] == 'https://model_signing/signature/v1.0'
    if alg.startswith('ecdsa'):
        assert env['signatures'][0]['keyid'] == '' and len(b['verificationMaterial']['publicKey']['hint']) == 64
    else:
        assert env['signatures'][0]['keyid'] == kid and b['verificationMaterial']['publicKey']['hint'] == kid, alg
PY
# the key of another algorithm, or another key of the same one
expect 1 --err "names another key" -- "$CRETO" model verify "$M" --sig "$T/ed25519.sig" --pub "$T/hybrid.pub"
expect 0 -- "$CRETO" key gen --alg ecdsa-p256 -o "$T/other"
expect 1 --err "names another key" -- "$CRETO" model verify "$M" --sig "$T/ecdsa-p256.sig" --pub "$T/other.pub"
# a changed model, with the signature intact
cp "$M/config.json" "$T/cfg"; echo '{"hidden_size":65}' >"$M/config.json"
expect 1 --err "modified file: config.json" -- "$CRETO" model verify "$M" --sig "$T/hybrid.sig" --pub "$T/hybrid.pub"
cp "$T/cfg" "$M/config.json"
: >"$M/extra.py"
expect 1 --err "extra file: extra.py" -- "$CRETO" model verify "$M" --sig "$T/ml-dsa-65.sig" --pub "$T/ml-dsa-65.pub"
rm "$M/extra.py"

# ---- tampered signatures ----------------------------------------------------------
tamper() { # tamper SIG OUT PYTHON-EXPR-ON-b
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, base64
b = json.load(open(sys.argv[1]))
env = b['dsseEnvelope']
def flip_sig(i):
    s = bytearray(base64.b64decode(env['signatures'][0]['sig'])); s[i] ^= 1
    env['signatures'][0]['sig'] = base64.b64encode(bytes(s)).decode()
def set_payload(f):
    env['payload'] = base64.b64encode(f(base64.b64decode(env['payload']))).decode()
exec(sys.argv[3])
json.dump(b, open(sys.argv[2], 'w'))
PY
}
for alg in ecdsa-p256 hybrid; do
  tamper "$T/$alg.sig" "$T/bad.sig" "flip_sig(10)"
  expect 1 --err "bad.sig" -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/$alg.pub"
  tamper "$T/$alg.sig" "$T/bad.sig" "flip_sig(-1)"
  expect 1 -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/$alg.pub"
  # a payload that lies about a file, with a consistent root digest: the signature stops it
  tamper "$T/$alg.sig" "$T/bad.sig" "set_payload(lambda p: p.replace(b'config.json', b'config.jsom'))"
  expect 1 -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/$alg.pub"
done
tamper "$T/ecdsa-p256.sig" "$T/bad.sig" "env['payloadType'] = 'application/json'"
expect 1 -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/ecdsa-p256.pub"
tamper "$T/ecdsa-p256.sig" "$T/bad.sig" "b['verificationMaterial']['tlogEntries'] = [{'logIndex': '1'}]"
expect 1 --err "tlogEntries" -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/ecdsa-p256.pub"
tamper "$T/ecdsa-p256.sig" "$T/bad.sig" "b['mediaType'] = 'application/vnd.dev.sigstore.bundle.v0.2+json'"
expect 1 --err "mediaType" -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/ecdsa-p256.pub"
tamper "$T/ecdsa-p256.sig" "$T/bad.sig" "b['extra'] = 1"
expect 1 --err "unexpected field 'extra'" -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/ecdsa-p256.pub"
printf '{"mediaType":1,"mediaType":2}' >"$T/bad.sig"
expect 1 --err "duplicate" -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/ecdsa-p256.pub"
# a bare DSSE envelope (no bundle) is accepted too
python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1]))['dsseEnvelope'], open(sys.argv[2],'w'))" \
  "$T/ed25519.sig" "$T/env.json"
expect 0 -- "$CRETO" model verify "$M" --sig "$T/env.json" --pub "$T/ed25519.pub"

# ---- signing a manifest file; signature inside the model; --expect -----------------
expect 0 -- "$CRETO" model manifest "$M" -o "$T/manifest.json" --method shards --shard-size 4096 --hash sha256
expect 0 -- "$CRETO" model sign "$T/manifest.json" --key "$T/hybrid.key" -o "$M/model.sig"
python3 -c "
import json,sys,base64
assert base64.b64decode(json.load(open(sys.argv[1]))['dsseEnvelope']['payload']) == open(sys.argv[2],'rb').read()" \
  "$M/model.sig" "$T/manifest.json" && ok || fail "signed payload is not the manifest's exact bytes"
expect 0 -- "$CRETO" model verify "$M" --sig "$M/model.sig" --pub "$T/hybrid.pub"
expect 0 -- "$CRETO" model hash "$M" --method shards --shard-size 4096 --hash sha256 --ignore model.sig
D=$OUT
expect 0 --out '"signed": true' -- "$CRETO" model verify "$M" --sig "$M/model.sig" --pub "$T/hybrid.pub" --expect "$D" --json
expect 1 --err "expected sha3-256:" -- "$CRETO" model verify "$M" --sig "$M/model.sig" --pub "$T/hybrid.pub" --expect "sha3-256:${D#sha256:}"
rm "$M/model.sig"
echo '{}' >"$T/notmanifest.json"
expect 1 --err "notmanifest.json" -- "$CRETO" model sign "$T/notmanifest.json" --key "$T/hybrid.key" -o "$T/x.sig"
[ -e "$T/x.sig" ] && fail "signature written for a bad manifest" || ok
expect 2 -- "$CRETO" model verify "$M" --sig "$T/hybrid.sig"
expect 2 -- "$CRETO" model verify "$M" --sig "$T/hybrid.sig" --pub "$T/hybrid.pub" --manifest "$T/manifest.json"
expect 2 -- "$CRETO" model sign "$M" -o "$T/x.sig"
expect 2 -- "$CRETO" model sign "$T/manifest.json" --key "$T/hybrid.key" -o "$T/x.sig" --hash sha256

# ---- interoperability: a bundle made to the upstream layout, verified here ----------
# Statement computed independently (python hashlib, PurePosixPath order),
# JSON as protobuf writes it (shard_size as a float), PAE, ECDSA by openssl.
upstream_bundle() { # upstream_bundle CURVE DGST METHOD OUT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$1" -out "$T/up.key" 2>/dev/null
  openssl pkey -in "$T/up.key" -pubout -out "$T/up.pem"
  python3 - "$M" "$3" "$T/pae.bin" "$T/payload.json" <<'PY'
import hashlib, json, os, sys
from pathlib import PurePosixPath
root, method, pae_out, payload_out = sys.argv[1:]
SH = 4096
items = []
for d, _, files in os.walk(root):
    for f in files:
        rel = os.path.relpath(os.path.join(d, f), root)
        data = open(os.path.join(d, f), 'rb').read()
        if method == 'files':
            items.append(((PurePosixPath(rel), 0), rel, hashlib.sha256(data).hexdigest()))
        else:
            for s in range(0, len(data), SH):
                e = min(len(data), s + SH)
                items.append(((PurePosixPath(rel), s), f'{rel}:{s}:{e}', hashlib.sha256(data[s:e]).hexdigest()))
items.sort(key=lambda x: x[0])
rootd = hashlib.sha256(b''.join(bytes.fromhex(x[2]) for x in items)).hexdigest()
ser = {'method': method, 'hash_type': 'sha256', 'allow_symlinks': False,
       'ignore_paths': ['.git', '.gitattributes', '.github', '.gitignore']}
if method == 'shards':
    ser['shard_size'] = float(SH)
st = {'_type': 'https://in-toto.io/Statement/v1',
      'subject': [{'name': os.path.basename(root), 'digest': {'sha256': rootd}}],
      'predicateType': 'https://model_signing/signature/v1.0',
      'predicate': {'serialization': ser,
                    'resources': [{'digest': x[2], 'algorithm': 'sha256', 'name': x[1]} for x in items]}}
payload = json.dumps(st, indent=2).encode()
t = b'application/vnd.in-toto+json'
open(pae_out, 'wb').write(b'DSSEv1 %d %s %d %s' % (len(t), t, len(payload), payload))
open(payload_out, 'wb').write(payload)
PY
  openssl dgst -"$2" -sign "$T/up.key" -out "$T/sig.der" "$T/pae.bin"
  python3 - "$T/up.pem" "$T/sig.der" "$T/payload.json" "$4" <<'PY'
import base64, hashlib, json, sys
pem, sig, payload, out = sys.argv[1:]
b = {'mediaType': 'application/vnd.dev.sigstore.bundle.v0.3+json',
     'verificationMaterial': {'publicKey': {'hint': hashlib.sha256(open(pem, 'rb').read()).hexdigest()},
                              'tlogEntries': []},
     'dsseEnvelope': {'payload': base64.b64encode(open(payload, 'rb').read()).decode(),
                      'payloadType': 'application/vnd.in-toto+json',
                      'signatures': [{'sig': base64.b64encode(open(sig, 'rb').read()).decode(), 'keyid': ''}]}}
json.dump(b, open(out, 'w'), indent=2)
PY
}
upstream_bundle P-256 sha256 files "$T/up256.sig"
expect 0 --out verified -- "$CRETO" model verify "$M" --sig "$T/up256.sig" --pub "$T/up.pem"
expect 1 --err "names another key" -- "$CRETO" model verify "$M" --sig "$T/up256.sig" --pub "$T/ecdsa-p256.pub"
echo x >>"$M/config.json"
expect 1 --err "modified file: config.json" -- "$CRETO" model verify "$M" --sig "$T/up256.sig" --pub "$T/up.pem"
cp "$T/cfg" "$M/config.json"
upstream_bundle P-384 sha384 shards "$T/up384.sig"
expect 0 --out verified -- "$CRETO" model verify "$M" --sig "$T/up384.sig" --pub "$T/up.pem"
tamper "$T/up384.sig" "$T/bad.sig" "flip_sig(20)"
expect 1 -- "$CRETO" model verify "$M" --sig "$T/bad.sig" --pub "$T/up.pem"

# ---- interoperability: creto's ECDSA bundle checked as the upstream verifier does ---
# (PEM SubjectPublicKeyInfo from the creto public key, hint = SHA-256 of the
# PEM text, DER signature over the PAE checked by openssl dgst -verify)
for alg in ecdsa-p256 ecdsa-p384; do
  python3 - "$T/$alg.pub" "$T/$alg.sig" "$T/c.pem" "$T/c.der" "$T/c.pae" <<'PY'
import base64, hashlib, json, sys
pub, sigf, pem_out, der_out, pae_out = sys.argv[1:]
lines = open(pub).read().split('\n')
alg, raw = lines[1].split(' ')[1], base64.b64decode(lines[2])
prefix = {'ecdsa-p256': '3059301306072a8648ce3d020106082a8648ce3d030107034200',
          'ecdsa-p384': '3076301006072a8648ce3d020106052b81040022036200'}[alg]
b64 = base64.b64encode(bytes.fromhex(prefix) + raw).decode()
pem = '-----BEGIN PUBLIC KEY-----\n' + ''.join(b64[i:i + 64] + '\n' for i in range(0, len(b64), 64)) + '-----END PUBLIC KEY-----\n'
open(pem_out, 'w').write(pem)
b = json.load(open(sigf))
assert b['verificationMaterial']['publicKey']['hint'] == hashlib.sha256(pem.encode()).hexdigest(), 'hint'
env = b['dsseEnvelope']
open(der_out, 'wb').write(base64.b64decode(env['signatures'][0]['sig']))
p, t = base64.b64decode(env['payload']), env['payloadType'].encode()
open(pae_out, 'wb').write(b'DSSEv1 %d %s %d %s' % (len(t), t, len(p), p))
PY
  [ $? = 0 ] && ok || fail "$alg: hint or layout differs from the upstream verifier's expectation"
  d=sha256; [ $alg = ecdsa-p384 ] && d=sha384
  openssl dgst -$d -verify "$T/c.pem" -signature "$T/c.der" "$T/c.pae" >/dev/null && ok || fail "$alg: openssl rejects creto's DSSE signature"
  # and the PEM key works with creto too
  expect 0 -- "$CRETO" model verify "$M" --sig "$T/$alg.sig" --pub "$T/c.pem"
done
finish
