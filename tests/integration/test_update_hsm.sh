#!/bin/bash
# test_update_hsm.sh - an officer whose key lives in an HSM (SoftHSM2,
# private token dir) signs the trust root and an update statement through a
# pkcs11: URI, beside an officer with a hybrid key file; 2-of-2 verifies.
. "$(dirname "$0")/lib.sh"
hsm_env
cd "$T"
umask 077
printf '1234-user\n' >pin; printf '5678-so\n' >so.pin
M=$HSM_MODULE
"$CRETO" hsm init --module "$M" --label officers --so-pin-file so.pin --pin-file pin >/dev/null || fail "hsm init"
URI="pkcs11:token=officers;object=bob?module-path=$M&pin-source=file:$T/pin"
"$CRETO" hsm keygen --type ed25519 --label bob "pkcs11:token=officers?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "hsm keygen"
"$CRETO" hsm pub "pkcs11:token=officers;object=bob?module-path=$M" -o bob.pub >/dev/null || fail "hsm pub"
"$CRETO" key gen --alg hybrid -o alice >/dev/null
expect 0 -- "$CRETO" trust init --key alice.pub --key bob.pub --threshold 2 -o root.json
expect 0 -- "$CRETO" trust sign root.json --key alice.key
expect 0 --err "signed root.json with key" -- "$CRETO" trust sign root.json --key "$URI"
mkdir p; echo policy-v1 >p/policy.rego
"$CRETO" update create --type policy --name gw --version 1 --payload p -o s.st --force >/dev/null
expect 0 -- "$CRETO" update sign s.st --key alice.key
"$CRETO" update assemble s.st --payload p -o one.crupdate --force >/dev/null
expect 1 --err "signature threshold: 1 valid" -- "$CRETO" update verify one.crupdate --trust root.json
expect 0 --err "signed s.st with key $("$CRETO" key id bob.pub 2>/dev/null | head -c 16)" -- "$CRETO" update sign s.st --key "$URI"
"$CRETO" update assemble s.st --payload p -o two.crupdate --force >/dev/null
expect 0 -- "$CRETO" state init --state S --trust root.json
expect 0 -- "$CRETO" update apply two.crupdate --trust root.json --state S
cmp -s p/policy.rego S/policy/gw/current/policy.rego || fail "policy not installed"
# The state's audit log with its checkpoint key in the HSM: a pkcs11: URI is
# the recorded key reference (module and PIN source in the URI, never the
# PIN itself); apply signs a checkpoint through it before it exits.
AUD="pkcs11:token=officers;object=audit?module-path=$M&pin-source=file:$T/pin"
"$CRETO" hsm keygen --type ed25519 --label audit "pkcs11:token=officers?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "hsm keygen audit"
"$CRETO" hsm pub "pkcs11:token=officers;object=audit?module-path=$M" -o audit.pub >/dev/null || fail "hsm pub audit"
expect 0 --err "first checkpoint signed" -- "$CRETO" state init --state S2 --trust root.json --audit-key "$AUD"
[ "$(sqlite3 S2/state.db "SELECT v FROM meta WHERE k='audit_key'")" = "$AUD" ] || fail "key reference not recorded"
grep -aq 1234-user S2/state.db S2/audit/audit.db && fail "the PIN reached the state"
expect 0 -- "$CRETO" update apply two.crupdate --trust root.json --state S2
expect 0 --out "2 entries (from 0), 2 signed checkpoints, newest at size 2" -- "$CRETO" audit verify --dir S2/audit --pub audit.pub
# A wrong PIN for the checkpoint key: nothing is decided (exit 2, a bad
# PIN file is a configuration error), and the
# HSM's failed login is itself an entry of the log (reported through the
# event sink; the PIN never appears)
printf '0000-wrong\n' >"$T/bad.pin"; chmod 600 "$T/bad.pin"
BAD="pkcs11:token=officers;object=audit?module-path=$M&pin-source=file:$T/bad.pin"
expect 2 --err "audit checkpoint key" -- "$CRETO" update apply two.crupdate --trust root.json --state S2 --audit-key "$BAD"
expect 0 --out '"reason":"CKR_PIN_INCORRECT"' -- "$CRETO" audit show --dir S2/audit --component hsm --json
grep -q '"event":"login"' <<<"$OUT" && ok || fail "no hsm login entry: $OUT"
grep -aq 0000-wrong S2/audit/audit.db && fail "the wrong PIN reached the log" || ok
finish
