#!/bin/bash
# test_trust_rotation.sh - trust root init/sign/show and rotation through a
# cert-rotation package: N -> N+1 only, signed by a threshold of the old
# root AND of the new one; afterwards keys dropped from the root are refused.
. "$(dirname "$0")/lib.sh"
cd "$T"
for k in a b c d; do "$CRETO" key gen --alg hybrid -o $k >/dev/null || fail "key gen $k"; done
expect 2 -- "$CRETO" trust init --key a.pub --threshold 2 -o bad.json
expect 0 -- "$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 2 -o root1.json
expect 0 -- "$CRETO" trust sign root1.json --key a.key
expect 0 --out '"self_signed": false' -- "$CRETO" trust show root1.json --json
expect 0 -- "$CRETO" trust sign root1.json --key b.key
expect 0 --out '"self_signed": true' -- "$CRETO" trust show root1.json --json

# A payload and model package helper.
mkdir -p m && echo weights >m/w.bin
model() { # NAME VERSION SIGNERS...
  local n=$1 v=$2; shift 2
  "$CRETO" update create --type model-weights --name m --version "$v" --payload m -o "$n.st" --force >/dev/null
  for k in "$@"; do "$CRETO" update sign "$n.st" --key "$k.key" >/dev/null; done
  "$CRETO" update assemble "$n.st" --payload m -o "$n.crupdate" --force >/dev/null
}
rotation() { # NAME ROOTFILE VERSION SIGNERS...
  local n=$1 r=$2 v=$3; shift 3
  rm -rf "$n.d"; mkdir "$n.d"; cp "$r" "$n.d/root.json"
  "$CRETO" update create --type cert-rotation --name trust-root --version "$v" --payload "$n.d/root.json" -o "$n.st" --force >/dev/null
  for k in "$@"; do "$CRETO" update sign "$n.st" --key "$k.key" >/dev/null; done
  "$CRETO" update assemble "$n.st" --payload "$n.d/root.json" -o "$n.crupdate" --force >/dev/null
}
model m1 1 a b
expect 0 -- "$CRETO" state init --state S --trust root1.json
expect 0 -- "$CRETO" update apply m1.crupdate --trust root1.json --state S

# Root 2 drops a, adds d.  Signed by its own b, c and by the old a (--previous).
expect 0 -- "$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 2 --version 2 -o root2.json
cp root2.json root2-new-only.json
for k in b c; do "$CRETO" trust sign root2.json --key $k.key >/dev/null; done
expect 1 --err "not in the root role" -- "$CRETO" trust sign root2.json --key a.key
expect 0 -- "$CRETO" trust sign root2.json --key a.key --previous
# Signed only by keys of the new root: not enough of the old root (only b).
for k in c d; do "$CRETO" trust sign root2-new-only.json --key $k.key >/dev/null; done
rotation r2bad root2-new-only.json 2 a b
expect 1 --err "rotation: new trust root not signed by the current root's keys" -- \
  "$CRETO" update verify r2bad.crupdate --trust root1.json --state S
# Version jump N -> N+2.
"$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 2 --version 3 -o root3.json >/dev/null
for k in b c; do "$CRETO" trust sign root3.json --key $k.key >/dev/null; done
"$CRETO" trust sign root3.json --key a.key --previous >/dev/null
rotation r3 root3.json 3 a b
expect 1 --err "fast-forward" -- "$CRETO" update verify r3.crupdate --trust root1.json --state S
rotation r3b root3.json 2 a b
expect 1 --err "rotation: new trust root version 3, statement version 2; only 1 -> 2 is allowed" -- \
  "$CRETO" update verify r3b.crupdate --trust root1.json --state S
# The rotation statement itself needs the cert-rotation role's threshold.
rotation r2one root2.json 2 a
expect 1 --err "signature threshold" -- "$CRETO" update verify r2one.crupdate --trust root1.json --state S
# The honest rotation.
rotation r2 root2.json 2 a b
expect 0 --out "applied cert-rotation trust-root version 2" -- "$CRETO" update apply r2.crupdate --trust root1.json --state S
cmp -s root2.json S/trust-root.json || fail "trust-root.json not replaced"
# After rotation: a is gone, even though the operator still passes root1.
model m2 2 a b
expect 1 --err "key $("$CRETO" update inspect m2.crupdate --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["signed_by"][0])') unknown to the trust root" -- \
  "$CRETO" update apply m2.crupdate --trust root1.json --state S
model m2b 2 b d
expect 0 -- "$CRETO" update apply m2b.crupdate --trust root1.json --state S
# Replaying the rotation, or rotating back to root 1, is refused.
expect 1 --err "replay" -- "$CRETO" update apply r2.crupdate --trust root1.json --state S
rotation back root1.json 1 b c
expect 1 --err "rollback" -- "$CRETO" update verify back.crupdate --trust root1.json --state S
# Once a rotation is recorded, --trust cannot override it: a file of the
# recorded version must be that very root (root2-new-only.json is a version 2
# signed by c and d only), and a newer one never came through the diode.
model m3 3 c d
expect 0 -- "$CRETO" update verify m3.crupdate --trust root2.json --state S
expect 1 --err "version 2 is not the root that rotation installed" -- \
  "$CRETO" update verify m3.crupdate --trust root2-new-only.json --state S
expect 1 --err "version 3 is newer than the last rotation applied (2)" -- \
  "$CRETO" update apply m3.crupdate --trust root3.json --state S
# Temp files a killed atomic write leaves behind are removed by recovery.
echo partial >S/trust-root.json.tmp.AbC123; echo partial >S/trust/root-3.json.tmp.XyZ789
expect 0 -- "$CRETO" update apply m3.crupdate --trust root2.json --state S
[ -z "$(ls S/*.tmp.* S/trust/*.tmp.* 2>/dev/null)" ] || fail "temp files left: $(ls S S/trust)"

# --- officers signing at once lose nothing (issue 11 §4c): three concurrent
# `trust sign` and three concurrent `update sign` on one file, in rounds ---
nsigned() { python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["signatures"]))' "$1"; }
for round in 1 2 3 4 5; do
  "$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 2 --version 9 -o conc.json >/dev/null 2>&1 ||
    "$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 2 --version 9 -o conc.json --force >/dev/null
  pids=""; for k in a b c; do "$CRETO" trust sign conc.json --key $k.key >/dev/null 2>&1 & pids="$pids $!"; done
  for p in $pids; do wait $p || fail "round $round: a concurrent trust sign failed"; done
  [ "$(nsigned conc.json)" = 3 ] || fail "round $round: concurrent trust sign lost a signature ($(nsigned conc.json) of 3)"
  rm -f conc.st conc.st.sigs
  "$CRETO" update create --type model-weights --name m --version 50 --payload m -o conc.st --force >/dev/null
  pids=""; for k in a b c; do "$CRETO" update sign conc.st --key $k.key >/dev/null 2>&1 & pids="$pids $!"; done
  for p in $pids; do wait $p || fail "round $round: a concurrent update sign failed"; done
  [ "$(nsigned conc.st.sigs)" = 3 ] || fail "round $round: concurrent update sign lost a signature ($(nsigned conc.st.sigs) of 3)"
  rm -f conc.json
done
ok

# --- a rotation must not install a root already expired at the time floor
# its own commit sets: created 23 h ahead (within the 24 h skew), new root
# expiring in 12 h ---
now=$(date +%s)
"$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 2 --version 3 \
  --expires "$(date -u -d @$((now + 12 * 3600)) +%Y-%m-%dT%H:%M:%SZ)" -o root3short.json >/dev/null 2>&1
for k in b c; do "$CRETO" trust sign root3short.json --key $k.key >/dev/null 2>&1; done
"$CRETO" trust sign root3short.json --key d.key >/dev/null 2>&1
rm -rf r3s.d; mkdir r3s.d; cp root3short.json r3s.d/root.json
"$CRETO" update create --type cert-rotation --name trust-root --version 3 --payload r3s.d/root.json \
  --created "$(date -u -d @$((now + 23 * 3600)) +%Y-%m-%dT%H:%M:%SZ)" -o r3s.st >/dev/null
for k in c d; do "$CRETO" update sign r3s.st --key $k.key >/dev/null 2>&1; done
"$CRETO" update assemble r3s.st --payload r3s.d/root.json -o r3s.crupdate --force >/dev/null 2>&1
expect 1 --err "expired: the new trust root expires at" -- "$CRETO" update apply r3s.crupdate --trust root2.json --state S
cmp -s root2.json S/trust-root.json || fail "the short-lived root was installed"
finish
