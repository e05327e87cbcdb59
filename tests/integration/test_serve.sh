#!/bin/bash
# test_serve.sh - `creto serve` end to end on loopback: a private SoftHSM2
# token (the audit checkpoint key), the vLLM stand-in, a drop directory.
# config check (ok, then each kind of problem named); start with no model
# installed (nothing routed), a model-weights update makes the gateway route
# it, a policy update reloads the gateway's policy, a tampered package is
# quarantined and audited, SIGHUP with a broken config keeps the old one,
# the sandbox is in force (NoNewPrivs, seccomp, Landlock log line), SIGTERM
# mid-stream ends the stream cleanly, and `creto audit verify` passes.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
hsm_env
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
umask 077
M=$HSM_MODULE
# --- the enclave's pieces ---
printf '1234-user\n' >pin; printf '5678-so\n' >so.pin
"$CRETO" hsm init --module "$M" --label serve --so-pin-file so.pin --pin-file pin >/dev/null || fail "hsm init"
"$CRETO" hsm keygen --type ed25519 --label audit-cp "pkcs11:token=serve?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "keygen"
"$CRETO" hsm pub "pkcs11:token=serve;object=audit-cp?module-path=$M" -o cp.pub >/dev/null || fail "pub"
CPKEY="pkcs11:token=serve;object=audit-cp?module-path=$M&pin-source=file:$T/pin"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
"$CRETO" audit init --dir A --origin serve.test/audit --key "$CPKEY" >/dev/null || fail "audit init"
mkdir -p D R
chmod 755 D
gw_agents
gw_standin one --model m1 --interval-ms 100 --tokens 30
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkpkg() { # OUT TYPE NAME VERSION PAYLOAD
  "$CRETO" update create --type "$2" --name "$3" --version "$4" --payload "$5" -o "$1.st" --force >/dev/null || fail "create $1"
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "$5" -o "$1.crupdate" --force >/dev/null || fail "assemble $1"
}
# model-weights payloads: the model files plus model.sig (`creto model sign`).
# m1 v1 unsigned, v2 signed by a key outside the model-weights role: both
# installed by the watcher, never routed; v3 signed by role key a: routed.
"$CRETO" key gen --alg hybrid -o c >/dev/null
mkdir -p w1; head -c 200000 /dev/urandom >w1/weights.bin; echo '{"arch":"x"}' >w1/config.json
mkpkg m1v1 model-weights m1 1 w1
cp -r w1 w1c; "$CRETO" model sign w1c --key c.key -o w1c/model.sig >/dev/null 2>&1 || fail "model sign c"
mkpkg m1v2 model-weights m1 2 w1c
cp -r w1 w1a; "$CRETO" model sign w1a --key a.key -o w1a/model.sig >/dev/null 2>&1 || fail "model sign a"
mkpkg m1v3 model-weights m1 3 w1a
mkdir -p pol; printf '{"version":1,"agents":{"agent-a":{"endpoints":["models"]}}}\n' >pol/policy
mkpkg pol1 policy gateway-policy 1 pol
# an NHI backup in which agent-r is revoked, carried as a `policy` update named nhi-backup
"$CRETO" hsm keygen --type aes-256 --label nhi-wrap "pkcs11:token=serve?module-path=$M&pin-source=file:$T/pin" >/dev/null || fail "aes keygen"
WRAP="pkcs11:token=serve;object=nhi-wrap;type=secret-key"
cp nhi.db nhi2.db
"$CRETO" nhi revoke --db nhi2.db agent-r >/dev/null || fail "revoke in the copy"
mkdir -p nb
"$CRETO" nhi backup --db nhi2.db --wrap-key "$WRAP" --module "$M" --pin-file "$T/pin" -o nb/nhi.backup >/dev/null || fail "nhi backup"
mkpkg nhi1 policy nhi-backup 1 nb
mkdir -p w2; head -c 100000 /dev/urandom >w2/weights.bin
mkpkg m1v4 model-weights m1 4 w2
cp m1v4.crupdate bad.crupdate
flip bad.crupdate $(( $(stat -c %s bad.crupdate) - 3000 ))

conf() { # extra lines for [serve]
cat <<C
# creto serve test config
[hsm]
module = $M
pin_file = $T/pin
[trust]
root = $T/root.json
[state]
dir = $T/S
[diode]
drop = $T/D
settle = 100ms
[nhi]
store = $T/nhi.db
jwks = $T/jwks.json
wrap_key = $WRAP
[audit]
dir = $T/A
checkpoint_key = $CPKEY
checkpoint_interval = 2s
checkpoint_entries = 5
[isolation]
allow = 10.0.0.0/8
[serve]
runtime_dir = $T/R
isolation_interval = 500ms
stop_timeout = 10s
${1:-}
[gateway]
listen = 127.0.0.1:$PORT
workers = 1
header_timeout = 2s
drain_timeout = 8s
[upstream]
model m1 = http://127.0.0.1:$PORT_one
key_file = $T/vllm.key
health_interval = 300ms
C
}
conf >creto.conf
chmod 600 creto.conf

# --- config check ---
expect 0 --out "ok" -- "$CRETO" config check --config creto.conf
grep -q "model 'm1' has no installed, verified version" "$T/.err" || fail "missing model not warned: $ERR"
expect 0 -- "$CRETO" config check --config creto.conf --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["errors"]==0 and d["warnings"]>=1, d' "$T/.out" || fail "check --json: $OUT"
chmod 644 pin
expect 2 --err "hsm.pin_file" -- "$CRETO" config check --config creto.conf
chmod 600 pin
conf "bogus = 1" >bad.conf
expect 2 --err "unknown key 'bogus'" -- "$CRETO" config check --config bad.conf
sed "s#dir = $T/S#dir = $T/nostate#" creto.conf >bad2.conf
expect 2 --err "state.dir" -- "$CRETO" config check --config bad2.conf
conf "on_violation = sometimes" >bad3.conf
expect 2 --err "on_violation" -- "$CRETO" config check --config bad3.conf
# serve refuses to start on a config error
expect 2 --err "state.dir" -- "$CRETO" serve --config bad2.conf

# --- start ---
: >serve.err
"$CRETO" serve --config creto.conf 2>serve.err &
SP=$!
GW_PIDS="$GW_PIDS $SP"
wait_line serve.err 'serve info event=ready' >/dev/null || { cat serve.err >&2; fail "serve not ready"; finish; }
ok
grep -q 'sandbox info event=applied' serve.err && ok || fail "no sandbox line: $(cat serve.err)"
grep 'NoNewPrivs' /proc/$SP/status | grep -q 1 && ok || fail "NoNewPrivs not set"
if grep -q 'seccomp=on' serve.err; then
  grep -E '^Seccomp:' /proc/$SP/status | grep -q 2 && ok || fail "seccomp filter not in /proc status"
fi
# nothing routed yet: the gateway does not listen
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$PORT/v1/models || true)
[ "$st" = 000 ] && ok || fail "gateway answered ($st) before a model was verified"

# --- model-weights updates: routed only once installed and verified ---
cp m1v1.crupdate D/m1v1.crupdate
wait_line serve.err 'event=model_refused model=m1/1' >/dev/null && ok || fail "unsigned m1/1 not refused: $(tail -5 serve.err)"
grep -q 'model=m1/1 outcome=refused msg="no model.sig' serve.err && ok || fail "m1/1 refusal reason: $(grep model_refused serve.err)"
[ "$(readlink S/models/m1/current)" = 1 ] && ok || fail "m1/1 not installed by the watcher"
cp m1v2.crupdate D/m1v2.crupdate
wait_line serve.err 'event=model_refused model=m1/2' >/dev/null && ok || fail "m1/2 by a non-role key not refused: $(tail -5 serve.err)"
grep 'model=m1/2' serve.err | grep -q 'signature by no key of the model-weights role' && ok || fail "m1/2 refusal reason: $(grep model_refused serve.err)"
[ "$(readlink S/models/m1/current)" = 2 ] && ok || fail "m1/2 not installed by the watcher"
grep -q 'event=listening' serve.err && fail "the gateway routed an unverified version" || ok
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$PORT/v1/models || true)
[ "$st" = 000 ] && ok || fail "gateway answered ($st) with only unverified versions installed"
[ ! -e R/routable/m1 ] && ok || fail "an unverified version published as routable: $(cat R/routable/m1)"
cp m1v3.crupdate D/m1v3.crupdate
wait_line serve.err 'event=model_verified model=m1/3' >/dev/null && ok || fail "m1/3 not verified: $(tail -5 serve.err)"
wait_line serve.err "gateway info event=listening address=127.0.0.1:$PORT models=m1" >/dev/null || fail "m1 not routed after its update: $(tail -5 serve.err)"
GW=127.0.0.1:$PORT
BODY='{"model":"m1","messages":[{"role":"user","content":"hi"}]}'
for i in $(seq 1 50); do
  st=$(gwcurl agent-a -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions 2>/dev/null)
  [ "$st" = 200 ] && break; sleep 0.1
done
[ "$st" = 200 ] && ok || fail "agent-a chat after m1 verified: $st $(cat body 2>/dev/null)"
[ -d S/models/m1/3 ] && ok || fail "m1/3 not installed"
[ "$(cat R/routable/m1)" = 3 ] && ok || fail "routable m1 is not 3: $(cat R/routable/m1)"
grep -q '^m1 3 [0-9a-f]\{64\} [0-9a-f]\{16\} sha3-256:' R/verified-models && ok || fail "record: $(cat R/verified-models)"
grep -q '^m1 [12] ' R/verified-models && fail "an unverified version recorded" || ok

# --- a policy update: the gateway's policy reloads from it ---
cp pol1.crupdate D/pol1.crupdate
wait_line serve.err 'event=policy_reload' >/dev/null || fail "policy not reloaded: $(tail -5 serve.err)"
sleep 0.3
expect_status agent-a 403 "agent-a chat under the new policy" -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions
expect_status agent-r 200 "agent-r chat under the new policy" -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions

# --- a tampered package: quarantined, audited, nothing changes ---
cp bad.crupdate D/bad.crupdate
wait_line serve.err 'diode warn event=quarantined' >/dev/null || fail "tampered package not quarantined"
[ -f S/quarantine/bad.crupdate ] && ok || fail "not in quarantine/"
[ "$(readlink S/models/m1/current)" = 3 ] && ok || fail "current changed by a tampered package"

# --- SIGHUP with a broken config: refused, old kept; then a good one ---
cp creto.conf good.conf
conf "on_violation = sometimes" >creto.conf
kill -HUP $SP
wait_line serve.err 'event=reload_refused' >/dev/null && ok || fail "broken config not refused"
kill -0 $SP 2>/dev/null && ok || fail "serve died on a broken config"
expect_status agent-r 200 "serving on the old config" -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions
cp good.conf creto.conf
kill -HUP $SP
wait_line serve.err 'serve info event=reloaded' >/dev/null && ok || fail "good config not reloaded"

# --- an NHI update revokes agent-r: restored through the HSM, its next request refused ---
cp nhi1.crupdate D/nhi1.crupdate
wait_line serve.err 'nhi info event=restored' >/dev/null && ok || fail "nhi backup not restored: $(grep -E 'nhi|diode' serve.err | tail -3)"
for i in $(seq 1 50); do
  st=$(gwcurl agent-r -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions 2>/dev/null)
  [ "$st" = 401 ] || [ "$st" = 403 ] && break; sleep 0.1
done
[ "$st" = 401 ] || [ "$st" = 403 ] && ok || fail "revoked agent-r got $st"
expect_status agent-l 200 "agent-l after the NHI update" -X POST -H 'content-type: application/json' -d "$BODY" http://$GW/v1/chat/completions

# --- SIGTERM mid-stream: the stream ends cleanly ---
SBODY='{"model":"m1","stream":true,"messages":[{"role":"user","content":"long"}]}'
curl -sS -N --max-time 20 -H "Authorization: Bearer $(cat tok.agent-l)" -H 'content-type: application/json' \
  -d "$SBODY" http://$GW/v1/chat/completions >stream.out 2>stream.err &
CP=$!
for i in $(seq 1 50); do grep -q '^data: ' stream.out 2>/dev/null && break; sleep 0.05; done
kill -TERM $SP
rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exited $rc after SIGTERM: $(tail -5 serve.err)"
wait $CP; crc=$?
[ "$crc" = 0 ] && ok || fail "stream client exit $crc: $(cat stream.err)"
tail -n 3 stream.out | grep -q 'data: \[DONE\]' && ok || fail "stream did not end with [DONE]: $(tail -c 300 stream.out)"
grep -q 'audit info event=checkpoint reason=shutdown' serve.err && ok || fail "no checkpoint at shutdown"
if grep -qE '==[0-9]+==ERROR|runtime error:' serve.err; then fail "sanitizer: $(grep -A5 -E '==[0-9]+==ERROR|runtime error' serve.err | head)"; fi

# --- the audit log verifies and lists it all ---
expect 0 --out "signed checkpoints" -- "$CRETO" audit verify --dir A --pub cp.pub
"$CRETO" audit show --dir A >show.txt 2>&1 || fail "audit show"
grep -Eq 'serve +model-verify +refused.*m1/1' show.txt && ok || fail "m1/1 refusal not audited: $(grep model-verify show.txt)"
grep -Eq 'serve +model-verify +refused.*m1/2' show.txt && ok || fail "m1/2 refusal not audited"
grep -Eq 'serve +model-verify +ok.*m1/3' show.txt && ok || fail "m1/3 verification not audited"
for w in 'nhi restore ok' 'serve.*start' 'serve.*sandbox' 'diode.*apply' 'models-routed' 'policy-reload' 'quarantine' 'reload.*refused' 'serve.*stop'; do
  grep -Eq "$w" show.txt && ok || fail "audit log lacks $w: $(head -40 show.txt)"
done
grep -q 'pin\b.*1234' serve.err && fail "a PIN in the log" || ok
[ $N_FAIL -gt 0 ] && grep -A30 "ERROR: AddressSanitizer" serve.err >&2
finish
