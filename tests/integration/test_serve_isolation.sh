#!/bin/bash
# test_serve_isolation.sh - `creto serve` with on_violation = refuse, inside a
# network namespace this test makes (unshare -n): isolated at start (only
# lo), the gateway answers; a default route via a veth (whose peer stays in
# the namespace) is a violation: the gateway answers 503 and the diode
# watcher pauses, both audited; the route removed, it recovers.  Every
# packet stays in the namespace.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVE_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || skip "needs root for unshare -n"
  command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare/ip missing"
  unshare -n true 2>/dev/null || skip "unshare -n not permitted"
  trap - EXIT
  rm -rf "$T"
  SERVE_IN_NETNS=1 exec unshare -n bash "$0" "$@"
fi
ip link set lo up
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/serve_env.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
umask 077
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
"$CRETO" key gen --alg ed25519 -o cp >/dev/null
"$CRETO" audit init --dir A --origin serve.test/iso --key cp.key >/dev/null || fail "audit init"
mkdir -p D R; chmod 755 D
gw_agents
gw_standin one --model m1
mkdir -p w1; head -c 50000 /dev/urandom >w1/weights.bin
"$CRETO" model sign w1 --key a.key -o w1/model.sig >/dev/null 2>&1 || fail "model sign"
"$CRETO" update create --type model-weights --name m1 --version 1 --payload w1 -o m1.st >/dev/null
for k in a b; do "$CRETO" update sign m1.st --key $k.key >/dev/null; done
"$CRETO" update assemble m1.st --payload w1 -o m1.crupdate >/dev/null 2>&1
"$CRETO" update apply m1.crupdate --trust root.json --state S >/dev/null || fail "apply m1"
printf 'nameserver 127.0.0.1\n' >resolv.conf; chmod 644 resolv.conf
serve_conf "$T/root.json" "on_violation = refuse
isolation_interval = 200ms" "resolv_conf = $T/resolv.conf"
serve_start "$CRETO" serve.err
wait_line serve.err 'isolation info event=isolated' >/dev/null && ok || fail "not isolated at start: $(cat serve.err)"
GW=127.0.0.1:$PORT
BODY='{"model":"m1","messages":[{"role":"user","content":"hi"}]}'
chat() { gwcurl agent-r -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions 2>/dev/null; }
for i in $(seq 1 50); do st=$(chat); [ "$st" = 200 ] && break; sleep 0.1; done
[ "$st" = 200 ] && ok || fail "isolated: chat $st"
# a way out: default route via a veth
ip link add v0 type veth peer name v1
ip link set v0 up; ip link set v1 up
ip addr add 10.99.0.2/24 dev v0
ip route add default via 10.99.0.1
wait_line serve.err 'event=refusing' >/dev/null && ok || fail "no refusal on violation: $(tail -5 serve.err)"
st=$(chat); [ "$st" = 503 ] && ok || fail "violated: chat $st, want 503"
grep -q 'event=violated' serve.err && ok || fail "violation not logged"
# a package dropped while paused waits in the drop directory
cp m1.crupdate D/again.crupdate
sleep 0.5
[ -f D/again.crupdate ] && ok || fail "watcher not paused"
ip route del default; ip link del v0
wait_line serve.err 'event=admitting' >/dev/null && ok || fail "no recovery"
for i in $(seq 1 50); do st=$(chat); [ "$st" = 200 ] && break; sleep 0.1; done
[ "$st" = 200 ] && ok || fail "restored: chat $st"
for i in $(seq 1 50); do [ -f S/processed/again.crupdate ] && break; sleep 0.1; done
[ -f S/processed/again.crupdate ] && ok || fail "watcher not resumed"
cp serve.err serve.keep; kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc"
"$CRETO" key pub cp.key -o cp.pub >/dev/null 2>&1 || "$CRETO" key pub --key cp.key -o cp.pub >/dev/null 2>&1
"$CRETO" audit show --dir A >show.txt
for w in 'isolation state violated' 'admission refusing' 'watcher paused' 'isolation state isolated' 'admission admitting' 'watcher resumed'; do
  grep -q "$w" show.txt && ok || fail "audit lacks '$w': $(cat show.txt | head -30)"
done
grep -qE '==[0-9]+==ERROR|runtime error:' serve.err && fail "sanitizer report in serve.err" || ok
[ $N_FAIL -gt 0 ] && cat serve.err >&2
finish
