#!/bin/bash
# test_serve_jwks.sh - the issuer JWK Set rotates through the diode while
# `creto serve` runs: a `policy` update named nhi-jwks ([serve] jwks_update)
# carrying jwks.json with a new issuer's public key replaces the set the
# gateway trusts (copied to RUNTIME/jwks.json, the configured [nhi] jwks is
# left as it is) and the gateway restarts: a token by the new issuer key is
# accepted, one by the old key (no longer in the set) refused.  A malformed
# JWK Set update is refused and audited (serve jwks refused), the set in
# force kept, and the gateway keeps serving.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/serve_env.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
umask 077
for k in a cp; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --threshold 1 -o root.json >/dev/null || fail "trust init"
"$CRETO" trust sign root.json --key a.key >/dev/null || fail "trust sign"
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
"$CRETO" audit init --dir A --origin serve.test/jwks --key cp.key >/dev/null || fail "audit init"
mkdir -p D R; chmod 755 D
gw_agents            # issuer key -> jwks.json; tok.agent-r by the old issuer key
mkpkg() { # OUT TYPE NAME VERSION PAYLOAD
  "$CRETO" update create --type "$2" --name "$3" --version "$4" --payload "$5" -o "$1.st" --force >/dev/null || fail "create $1"
  "$CRETO" update sign "$1.st" --key a.key >/dev/null
  "$CRETO" update assemble "$1.st" --payload "$5" -o "$1.crupdate" --force >/dev/null 2>&1 || fail "assemble $1"
}
mkdir p1; head -c 40000 /dev/urandom >p1/w.bin
"$CRETO" model sign p1 --key a.key -o p1/model.sig >/dev/null 2>&1 || fail "model sign"
mkpkg v1 model-weights m1 1 p1
"$CRETO" update apply v1.crupdate --trust root.json --state S >/dev/null || fail "apply v1"
# the new issuer: its JWK Set carried as policy update nhi-jwks
nhi_make_key "$T/issuer2" ed25519
"$CRETO" nhi token issue --db nhi.db --agent agent-r --key issuer2.key -o tok.new >/dev/null || fail "token issue new"
mkdir j1; "$CRETO" nhi jwks --key issuer2.key -o j1/jwks.json >/dev/null || fail "nhi jwks issuer2"
mkpkg jw1 policy nhi-jwks 1 j1
# a malformed JWK Set (signed and valid as a package: serve must refuse it)
mkdir j2; printf '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"not-base64url!","kid":"k"}]}\n' >j2/jwks.json
mkpkg jw2 policy nhi-jwks 2 j2
cp jwks.json jwks.orig
gw_standin one --model m1
serve_conf "$T/root.json" "isolation_interval = 10s
stop_timeout = 10s"
serve_start "$CRETO" serve.err
GW=127.0.0.1:$PORT
BODY='{"model":"m1","messages":[{"role":"user","content":"hi"}]}'
req() { # AGENT_TOKEN_SUFFIX EXPECTED: retried while the gateway (re)starts
  local st i
  for i in $(seq 1 50); do
    st=$(gwcurl "$1" -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions 2>/dev/null)
    [ "$st" = "$2" ] && break; sleep 0.1
  done
  echo "$st"
}
st=$(req agent-r 200); [ "$st" = 200 ] && ok || fail "old issuer's token not accepted before the rotation: $st"
st=$(req new 401); [ "$st" = 401 ] && ok || fail "new issuer's token accepted before the rotation: $st"

# the rotation
cp jw1.crupdate D/
wait_line serve.err 'serve info event=jwks_rotated' >/dev/null && ok || fail "jwks not rotated: $(tail -5 serve.err)"
wait_line serve.err 'gateway info event=restart reason=jwks-rotation' >/dev/null && ok || fail "gateway not restarted"
cmp -s j1/jwks.json R/jwks.json && ok || fail "R/jwks.json is not the new set"
cmp -s jwks.orig jwks.json && ok || fail "the configured [nhi] jwks was modified"
# the restart is logged before the new gateway's config is written
for i in $(seq 1 50); do grep -q "^jwks = $T/R/jwks.json\$" R/gateway.conf && break; sleep 0.1; done
grep -q "^jwks = $T/R/jwks.json\$" R/gateway.conf && ok || fail "gateway.conf does not name R/jwks.json: $(grep '^jwks' R/gateway.conf)"
st=$(req new 200); [ "$st" = 200 ] && ok || fail "new issuer's token refused after the rotation: $st"
st=$(req agent-r 401); [ "$st" = 401 ] && ok || fail "old issuer's token accepted after the rotation: $st"

# a malformed set: refused, audited, the new set kept, the gateway serving
cp jw2.crupdate D/
wait_line serve.err 'serve error event=jwks_refused' >/dev/null && ok || fail "malformed jwks not refused: $(tail -5 serve.err)"
cmp -s j1/jwks.json R/jwks.json && ok || fail "R/jwks.json changed by a refused set"
st=$(req new 200); [ "$st" = 200 ] && ok || fail "gateway not serving after the refused set: $st"
st=$(req agent-r 401); [ "$st" = 401 ] && ok || fail "old issuer's token accepted after the refused set: $st"

# a restart of serve keeps the installed set: the current one (v2) does
# not parse, so the last accepted copy (R/jwks.json) stays in force
kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc: $(tail -5 serve.err)"
serve_start "$CRETO" serve2.err
grep -q 'event=jwks_kept' serve2.err && ok || fail "restart: last accepted set not kept: $(grep jwks serve2.err)"
st=$(req new 200); [ "$st" = 200 ] && ok || fail "restart: new issuer's token refused: $st"
st=$(req agent-r 401); [ "$st" = 401 ] && ok || fail "restart: old issuer's token accepted: $st"
kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc: $(tail -5 serve2.err)"
grep -qE '==[0-9]+==ERROR|runtime error:' serve.err serve2.err && fail "sanitizer: $(grep -h -A5 -E '==[0-9]+==ERROR|runtime error' serve.err serve2.err | head)" || ok
"$CRETO" key pub cp.key -o cp.pub >/dev/null 2>&1 || "$CRETO" key pub --key cp.key -o cp.pub >/dev/null 2>&1
expect 0 -- "$CRETO" audit verify --dir A --pub cp.pub
"$CRETO" audit show --dir A >show.txt 2>&1
for w in 'serve +jwks +ok' 'serve +jwks +refused' 'gateway-restart +ok.*jwks-rotation'; do
  grep -Eq "$w" show.txt && ok || fail "audit log lacks $w: $(grep -E 'jwks' show.txt | head)"
done
[ $N_FAIL -gt 0 ] && cat serve.err >&2
finish
