# nhi_keys.sh - sourced by tests/integration/test_nhi*.sh.
# nhi_make_key BASE ed25519|p256: `creto key gen` writes BASE.key / BASE.pub
# (docs/signatures.md); the same secret is re-encoded as PKCS#8 PEM in
# BASE.pem for openssl and the jose peer (a file key can be exported; an HSM
# key cannot, which is why interop uses a file key).
nhi_make_key() {
  local base=$1 alg=$2
  [ "$alg" = p256 ] && alg=ecdsa-p256
  "$CRETO" key gen --alg "$alg" -o "$base" >/dev/null
  python3 - "$base.key" "$base.pem" "$alg" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split('\n')
body = base64.b64decode(lines[2])
secret = body[:-8]  # secret || 8-byte checksum
assert len(secret) == 32
if sys.argv[3] == 'ed25519':
    der = bytes.fromhex('302e020100300506032b657004220420') + secret
else:  # PKCS#8 wrapping an RFC 5915 ECPrivateKey without the optional public key
    der = bytes.fromhex('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420') + secret
pem = '-----BEGIN PRIVATE KEY-----\n' + base64.encodebytes(der).decode() + '-----END PRIVATE KEY-----\n'
open(sys.argv[2], 'w').write(pem)
PY
  chmod 600 "$base.pem"
}
