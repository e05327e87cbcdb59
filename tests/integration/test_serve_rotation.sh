#!/bin/bash
# test_serve_rotation.sh - the trust root rotates while `creto serve` runs:
# root 1 (keys a b c, threshold 1) rotates to root 2 (keys b c d: a removed,
# d added) through a cert-rotation package in the drop directory.  After
# it, a package signed only by the new key d is applied, and one signed
# only by the removed key a is quarantined (key unknown to the trust root).
# A model version whose model.sig is by the removed key a is installed but
# refused by serve (a is no longer in the model-weights role); one signed
# by d is verified and becomes the routable version.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/serve_env.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
umask 077
for k in a b c d cp; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 1 -o root1.json >/dev/null || fail "trust init 1"
"$CRETO" trust sign root1.json --key a.key >/dev/null || fail "trust sign 1"
"$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 1 --version 2 -o root2.json >/dev/null || fail "trust init 2"
"$CRETO" trust sign root2.json --key b.key >/dev/null || fail "trust sign 2"
"$CRETO" trust sign root2.json --key a.key --previous >/dev/null || fail "trust sign 2 --previous"
"$CRETO" state init --state S --trust root1.json >/dev/null || fail "state init"
"$CRETO" audit init --dir A --origin serve.test/rotation --key cp.key >/dev/null || fail "audit init"
mkdir -p D R; chmod 755 D
gw_agents
gw_standin one --model m1
model() { # OUT VERSION STATEMENT_SIGNER MODEL_SIGNER
  rm -rf "p$1"; mkdir "p$1"; head -c 40000 /dev/urandom >"p$1/w.bin"
  "$CRETO" model sign "p$1" --key "$4.key" -o "p$1/model.sig" >/dev/null 2>&1 || fail "model sign $1"
  "$CRETO" update create --type model-weights --name m1 --version "$2" --payload "p$1" -o "$1.st" --force >/dev/null
  "$CRETO" update sign "$1.st" --key "$3.key" >/dev/null
  "$CRETO" update assemble "$1.st" --payload "p$1" -o "$1.crupdate" --force >/dev/null 2>&1 || fail "assemble $1"
}
model v1 1 a a
"$CRETO" update apply v1.crupdate --trust root1.json --state S >/dev/null || fail "apply v1"
mkdir r2.d; cp root2.json r2.d/root.json
"$CRETO" update create --type cert-rotation --name trust-root --version 2 --payload r2.d/root.json -o r2.st >/dev/null
"$CRETO" update sign r2.st --key a.key >/dev/null
"$CRETO" update assemble r2.st --payload r2.d/root.json -o r2.crupdate >/dev/null 2>&1 || fail "assemble r2"
model old 2 a a     # statement by the removed key only
model new 2 d d     # statement and model by the new key only
model mold 3 d a    # statement by the new key, model.sig by the removed key
serve_conf "$T/root1.json" "isolation_interval = 10s
stop_timeout = 10s"
serve_start "$CRETO" serve.err
grep -q 'event=model_verified model=m1/1' serve.err && ok || fail "m1/1 not verified at start: $(cat serve.err)"
[ "$(cat R/routable/m1)" = 1 ] && ok || fail "routable m1 not 1"
grep -q 'trust_root_version=1' serve.err && ok || fail "not on root 1"

# the rotation
cp r2.crupdate D/r2.crupdate
wait_line serve.err 'trust info event=rotated version=2' >/dev/null && ok || fail "rotation not applied: $(tail -5 serve.err)"
cmp -s root2.json S/trust-root.json && ok || fail "S/trust-root.json is not root 2"
# signed only by the removed key: quarantined
cp old.crupdate D/old.crupdate
wait_line serve.err 'diode warn event=quarantined.*old.crupdate: signature threshold' >/dev/null && ok || fail "package by removed key a not quarantined: $(tail -5 serve.err)"
[ -f S/quarantine/old.crupdate ] && ok || fail "old.crupdate not in quarantine/"
grep -q "unknown to the trust root" S/quarantine/old.crupdate.reason 2>/dev/null && ok || fail "reason: $(cat S/quarantine/old.crupdate.reason 2>/dev/null)"
[ "$(readlink S/models/m1/current)" = 1 ] && ok || fail "current moved by a refused package"
# signed only by the new key: applied, its model.sig by d verifies under root 2
cp new.crupdate D/new.crupdate
wait_line serve.err 'event=model_verified model=m1/2' >/dev/null && ok || fail "package by new key d not applied and verified: $(tail -5 serve.err)"
[ "$(readlink S/models/m1/current)" = 2 ] && ok || fail "m1/2 not current"
for i in $(seq 1 50); do [ "$(cat R/routable/m1)" = 2 ] && break; sleep 0.1; done
[ "$(cat R/routable/m1)" = 2 ] && ok || fail "routable m1 not 2"
# a model.sig by the removed key: installed, never routable
cp mold.crupdate D/mold.crupdate
wait_line serve.err 'event=model_refused model=m1/3' >/dev/null && ok || fail "model.sig by removed key a not refused: $(tail -5 serve.err)"
[ "$(readlink S/models/m1/current)" = 3 ] && ok || fail "m1/3 not installed by the watcher"
sleep 0.3
[ "$(cat R/routable/m1)" = 2 ] && ok || fail "routable m1 moved to an unverified version: $(cat R/routable/m1)"
GW=127.0.0.1:$PORT
BODY='{"model":"m1","messages":[{"role":"user","content":"hi"}]}'
for i in $(seq 1 50); do
  st=$(gwcurl agent-r -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions 2>/dev/null)
  [ "$st" = 200 ] && break; sleep 0.1
done
[ "$st" = 200 ] && ok || fail "m1 not served after the rotation: $st"
kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc: $(tail -5 serve.err)"
grep -qE '==[0-9]+==ERROR|runtime error:' serve.err && fail "sanitizer: $(grep -A5 -E '==[0-9]+==ERROR|runtime error' serve.err | head)" || ok
"$CRETO" key pub cp.key -o cp.pub >/dev/null 2>&1 || "$CRETO" key pub --key cp.key -o cp.pub >/dev/null 2>&1
expect 0 -- "$CRETO" audit verify --dir A --pub cp.pub
"$CRETO" audit show --dir A >show.txt 2>&1
for w in 'trust +rotation +applied' 'quarantine' 'model-verify +ok.*m1/2' 'model-verify +refused.*m1/3'; do
  grep -Eq "$w" show.txt && ok || fail "audit log lacks $w: $(grep -E 'trust|model-verify|diode' show.txt | head)"
done
[ $N_FAIL -gt 0 ] && cat serve.err >&2
finish
