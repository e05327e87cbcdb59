#!/bin/bash
# test_serve_hsm_remote.sh - `creto config check` with [hsm] endpoint: each
# pkcs11: key of the config (here the audit checkpoint key) is checked with
# the HSM's mechanism check through every endpoint.  One `p11-kit server`
# over a SoftHSM2 token on a Unix socket in the temp dir, reached through a
# p11-kit module configuration (p11-kit:hsm-a) bind-mounted in a private
# mount namespace, as test_hsm_remote.sh does: an Ed25519 checkpoint key is
# refused naming CKM_EDDSA (p11-kit's RPC does not carry it), an ECDSA key
# passes.
if [ -z "${CRETO_HSM_REMOTE_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
  CRETO_HSM_REMOTE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
hsm_env
command -v p11-kit >/dev/null || skip "p11-kit missing (scripts/deps.sh test installs it)"
[ -e /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so ] || [ -e /usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so ] ||
  skip "p11-kit-modules missing (scripts/deps.sh test installs it)"
[ -d /usr/share/p11-kit/modules ] || skip "/usr/share/p11-kit/modules missing"
cd "$T"
umask 077
M=$HSM_MODULE
printf '1234-user\n' >pin; printf '5678-so\n' >so.pin
"$CRETO" hsm init --module "$M" --label enclave --so-pin-file so.pin --pin-file pin >/dev/null || fail "hsm init"
TOK="pkcs11:token=enclave"
"$CRETO" hsm keygen --module "$M" --pin-file pin --type ed25519 --label cp-ed "$TOK" >/dev/null || fail "keygen ed"
"$CRETO" hsm keygen --module "$M" --pin-file pin --type ec-p256 --label cp-ec "$TOK" >/dev/null || fail "keygen ec"
SOFTHSM2_CONF=$SOFTHSM2_CONF setsid p11-kit server -f -n "$T/a.sock" --provider "$M" "$TOK" >server.log 2>&1 &
SRV=$!
stop_srv() { kill -TERM -- "-$SRV" 2>/dev/null; rm -rf "$T"; }
trap stop_srv EXIT
for _ in $(seq 1 100); do [ -S "$T/a.sock" ] && break; sleep 0.05; done
[ -S "$T/a.sock" ] || fail "p11-kit server did not create its socket"
mkdir p11mods
printf 'remote: unix:path=%s\n' "$T/a.sock" >p11mods/hsm-a.module
mount --bind "$T/p11mods" /usr/share/p11-kit/modules || skip "cannot bind-mount in a private mount namespace"
for k in a b; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 1 -o root.json >/dev/null
"$CRETO" trust sign root.json --key a.key >/dev/null
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
"$CRETO" key gen --alg ed25519 -o iss >/dev/null
"$CRETO" nhi init --db nhi.db >/dev/null
"$CRETO" nhi jwks --key iss.key -o jwks.json >/dev/null
conf() { # LABEL AUDITDIR
cat <<C
[hsm]
module = $M
pin_file = $T/pin
endpoint = p11-kit:hsm-a
[trust]
root = $T/root.json
[state]
dir = $T/S
[diode]
drop = $T/D
[nhi]
store = $T/nhi.db
jwks = $T/jwks.json
[audit]
dir = $T/$2
checkpoint_key = $TOK;object=$1?module-path=$M&pin-source=file:$T/pin
[serve]
runtime_dir = $T/R
C
}
mkdir -p D R; chmod 755 D
"$CRETO" audit init --dir Aed --origin serve.test/ed --key "$TOK;object=cp-ed?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "audit init ed"
"$CRETO" audit init --dir Aec --origin serve.test/ec --key "$TOK;object=cp-ec?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "audit init ec"
conf cp-ed Aed >ed.conf; conf cp-ec Aec >ec.conf; chmod 600 ed.conf ec.conf
expect 2 --err "CKM_EDDSA" -- "$CRETO" config check --config ed.conf
grep -q "hsm.endpoint" "$T/.err" && ok || fail "the refusal does not name hsm.endpoint: $ERR"
grep -q "audit.checkpoint_key through endpoint p11-kit:hsm-a" "$T/.err" && ok || fail "the refusal does not name the key and endpoint: $ERR"
expect 0 --out "ok" -- "$CRETO" config check --config ec.conf
finish
