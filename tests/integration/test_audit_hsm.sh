#!/bin/bash
# test_audit_hsm.sh - audit checkpoints signed by HSM keys (SoftHSM2, private
# token dir) through pkcs11: URIs: Ed25519 (signed-note type 0x01) and ECDSA
# P-256 (type 0x02, DER signature, key id = SHA-256 of the SPKI), each
# checked by creto and, independently, by Python + openssl.
. "$(dirname "$0")/lib.sh"
hsm_env
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
umask 077
printf '1234-user\n' >pin; printf '5678-so\n' >so.pin
M=$HSM_MODULE
"$CRETO" hsm init --module "$M" --label audit --so-pin-file so.pin --pin-file pin >/dev/null || fail "hsm init"
for t in ed25519 ec-p256; do
  "$CRETO" hsm keygen --type $t --label log-$t "pkcs11:token=audit?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "keygen $t"
  "$CRETO" hsm pub "pkcs11:token=audit;object=log-$t?module-path=$M" -o $t.pub >/dev/null || fail "pub $t"
  URI="pkcs11:token=audit;object=log-$t?module-path=$M&pin-source=file:$T/pin"
  expect 0 --out "checkpoints signed by key" -- "$CRETO" audit init --dir log-$t --origin hsm.example/$t --key "$URI"
  for i in 1 2 3; do
    printf '{"component":"hsm","event":"sign","outcome":"ok","fields":{"n":%s}}' $i |
      "$CRETO" audit append --dir log-$t --key "$URI" >/dev/null || fail "append $t $i"
  done
  expect 0 --out "4 signed checkpoints" -- "$CRETO" audit verify --dir log-$t --pub $t.pub
  expect 0 --out "4 signed checkpoints" -- "$CRETO" audit verify --dir log-$t --pub "pkcs11:token=audit;object=log-$t?module-path=$M"
  "$CRETO" audit checkpoint --dir log-$t -o $t.cp
  # independent check of the newest checkpoint's signature line
  python3 - $t $t.cp $t.pub hsm.example/$t <<'EOF' || fail "$t: independent checkpoint check"
import base64, hashlib, subprocess, sys, tempfile, os
kind, cp, pub, name = sys.argv[1:5]
note = open(cp, "rb").read()
text, sigs = note.rsplit(b"\n\n", 1)
text += b"\n"
pk = base64.b64decode(open(pub).read().split("\n")[2])
if kind == "ed25519":
    spki = bytes.fromhex("302a300506032b6570032100") + pk
    kid = hashlib.sha256(name.encode() + b"\n\x01" + pk).digest()[:4]
else:
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + pk
    kid = hashlib.sha256(spki).digest()[:4]
line = sigs.strip().split(b"\n")[0]
assert line.startswith("\u2014 ".encode() + name.encode() + b" ")
blob = base64.b64decode(line.split(b" ")[-1])
assert blob[:4] == kid, "key id"
pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki) + b"\n-----END PUBLIC KEY-----\n"
with tempfile.TemporaryDirectory() as t:
    for n, b in (("pk.pem", pem), ("msg", text), ("sig", blob[4:])):
        open(os.path.join(t, n), "wb").write(b)
    if kind == "ed25519":
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", t + "/pk.pem", "-rawin",
               "-in", t + "/msg", "-sigfile", t + "/sig"]
    else:
        cmd = ["openssl", "dgst", "-sha256", "-verify", t + "/pk.pem", "-signature", t + "/sig", t + "/msg"]
    r = subprocess.run(cmd, capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr
EOF
done
expect 1 --err "no signature by key" -- "$CRETO" audit verify --dir log-ed25519 --pub ec-p256.pub
finish
