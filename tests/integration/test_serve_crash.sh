#!/bin/bash
# test_serve_crash.sh - `creto serve` killed mid-apply and mid-stream, then
# restarted: the state is intact (the old version current, then the new one
# after the package is processed again), the audit log verifies (with an
# `aborted` record for the decision whose commit never happened), and no
# package is applied twice.  The mid-apply crash uses build/creto-test's
# fault injection (CRETO_TEST_CRASH_AT: the process _exits at that point,
# as abruptly as kill -9); the mid-stream one is a real kill -9.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/serve_env.sh"
command -v python3 >/dev/null || skip "python3 missing"
CT="$CRETO_BUILD_DIR/creto-test"
[ -x "$CT" ] || skip "creto-test not built"
cd "$T"
umask 077
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
"$CRETO" key gen --alg ed25519 -o cp >/dev/null
"$CRETO" audit init --dir A --origin serve.test/crash --key cp.key >/dev/null || fail "audit init"
mkdir -p D R; chmod 755 D
gw_agents
gw_standin one --model m1 --interval-ms 100 --tokens 40
mkpkg() { # OUT NAME VERSION
  mkdir -p "p$3"; head -c 150000 /dev/urandom >"p$3/w.bin"
  "$CRETO" model sign "p$3" --key a.key -o "p$3/model.sig" >/dev/null 2>&1 || fail "model sign $1"
  "$CRETO" update create --type model-weights --name "$2" --version "$3" --payload "p$3" -o "$1.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "p$3" -o "$1.crupdate" --force >/dev/null 2>&1
}
mkpkg v1 m1 1; mkpkg v2 m1 2
"$CRETO" update apply v1.crupdate --trust root.json --state S >/dev/null || fail "apply v1"
printf 'nameserver 127.0.0.1\n' >resolv.conf; chmod 644 resolv.conf
serve_conf "$T/root.json" "" "resolv_conf = $T/resolv.conf"
# --- crash during an apply (after the decision is recorded, before the commit) ---
serve_start "$CT" s1.err CRETO_TEST_CRASH_AT=before-commit
cp v2.crupdate D/v2.crupdate
rc=0; for i in $(seq 1 100); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
wait $SP || rc=$?
[ "$rc" = 99 ] && ok || fail "no crash at before-commit (exit $rc): $(tail -3 s1.err)"
[ "$(readlink S/models/m1/current)" = 1 ] && ok || fail "current moved by a crashed apply"
[ -f D/v2.crupdate ] && ok || fail "the package left the drop dir before its commit"
# --- restart: recovery, the package processed once ---
serve_start "$CRETO" s2.err
for i in $(seq 1 100); do [ -f S/processed/v2.crupdate ] && break; sleep 0.1; done
[ "$(readlink S/models/m1/current)" = 2 ] && ok || fail "v2 not current after restart"
# --- kill -9 mid-stream ---
GW=127.0.0.1:$PORT
SBODY='{"model":"m1","stream":true,"messages":[{"role":"user","content":"long"}]}'
for i in $(seq 1 50); do
  st=$(gwcurl agent-r -X POST -H 'content-type: application/json' -d '{"model":"m1","messages":[{"role":"user","content":"x"}]}' http://$GW/v1/chat/completions 2>/dev/null)
  [ "$st" = 200 ] && break; sleep 0.1
done
curl -sS -N --max-time 20 -H "Authorization: Bearer $(cat tok.agent-r)" -H 'content-type: application/json' \
  -d "$SBODY" http://$GW/v1/chat/completions >stream.out 2>/dev/null &
CP=$!
for i in $(seq 1 50); do grep -q '^data: ' stream.out 2>/dev/null && break; sleep 0.05; done
kill -9 $SP; wait $SP 2>/dev/null
wait $CP 2>/dev/null
grep -q 'data: \[DONE\]' stream.out && fail "a killed gateway finished the stream?" || ok
# --- restart again: state intact, the same package never applied twice ---
cp v2.crupdate D/v2-again.crupdate
serve_start "$CRETO" s3.err
for i in $(seq 1 100); do [ -f S/processed/v2-again.crupdate ] && break; sleep 0.1; done
wait_line s3.err 'event=duplicate' >/dev/null && ok || fail "re-dropped package not a duplicate: $(grep diode s3.err)"
[ "$(readlink S/models/m1/current)" = 2 ] && ok || fail "current changed"
kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc"
expect 0 --out "verified audit log" -- "$CRETO" audit verify --dir A --pub cp.pub
"$CRETO" audit show --dir A >show.txt
grep -q 'aborted' show.txt && ok || fail "no aborted record for the crashed apply: $(grep -E 'diode|update' show.txt)"
# the crashed decision was recorded (then marked aborted): applied - aborted = 1
n=$(grep -c 'diode apply applied subject=m1@2' show.txt)
x=$(grep -c 'diode apply aborted subject=m1@2' show.txt)
[ $((n - x)) = 1 ] && ok || fail "m1@2 applied $n times, $x aborted"
cat s2.err s3.err | grep -qE '==[0-9]+==ERROR|runtime error:' && fail "sanitizer report" || ok
[ $N_FAIL -gt 0 ] && { cat s3.err; cat show.txt; } >&2
finish
