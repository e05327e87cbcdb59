#!/bin/bash
# test_serve_hsm_failover.sh - `creto serve` signs through two HSM
# endpoints (docs/hsm-remote.md, docs/serve.md "HSM endpoints"): two
# `p11-kit server` processes on two Unix sockets, each over its own copy of
# one SoftHSM2 token holding an ECDSA P-256 audit checkpoint key and an
# ES256 token issuer key, reached through p11-kit module configurations
# (p11-kit:hsm-a, p11-kit:hsm-b) bind-mounted in a private mount namespace
# as test_hsm_remote.sh does.  serve opens both keys before its sandbox and
# starts the endpoints' threads after it (Landlock and seccomp on in a
# release build).  A loop of token requests (POST /oauth/token, each signed
# with the issuer key, each audited, the audit log checkpointed with the
# checkpoint key every second or two entries) runs while host a is killed
# and restarted and host b is stopped (SIGSTOP: hung, not dead) and
# resumed.  Checked: no request fails, no checkpoint fails; each switch
# (endpoint-down, failover, endpoint-up) is in the audit log, which
# verifies with the HSM checkpoint key; RUNTIME/hsm.json and `creto serve
# status` show the endpoint down, then up again; the admin /metrics
# carries the HSM gauges.
if [ -z "${CRETO_HSM_REMOTE_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
  CRETO_HSM_REMOTE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/serve_env.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"
hsm_env
command -v p11-kit >/dev/null || skip "p11-kit missing (scripts/deps.sh test installs it)"
[ -e /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so ] || [ -e /usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so ] ||
  skip "p11-kit-modules missing (scripts/deps.sh test installs it)"
[ -d /usr/share/p11-kit/modules ] || skip "/usr/share/p11-kit/modules missing"
# the agent's client assertions are signed with python3-cryptography (Debian's,
# installed by scripts/deps.sh test): the first python3 that has it
PY=python3
$PY -c 'import cryptography' 2>/dev/null || PY=/usr/bin/python3
$PY -c 'import cryptography' 2>/dev/null || skip "python3-cryptography missing (scripts/deps.sh test installs it)"
cd "$T"
umask 077
M=$HSM_MODULE
TOK="pkcs11:token=enclave"
LOCAL="module-path=$M&pin-source=file:$T/pin"

# ---- one token, two copies, two servers ("hosts") ----
printf '1234-user\n' >pin; printf '5678-so\n' >so.pin
"$CRETO" hsm init --module "$M" --label enclave --so-pin-file so.pin --pin-file pin >/dev/null || fail "hsm init"
"$CRETO" hsm keygen --module "$M" --pin-file pin --type ec-p256 --label cp "$TOK" >/dev/null || fail "keygen cp"
"$CRETO" hsm keygen --module "$M" --pin-file pin --type ec-p256 --label iss "$TOK" >/dev/null || fail "keygen iss"
"$CRETO" hsm pub --module "$M" --pin-file pin "$TOK;object=cp" -o cp.pub >/dev/null || fail "hsm pub cp"
cp -a tokens tokens-b
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$T/tokens-b" >softhsm2-b.conf
declare -A PG
start_server() { # NAME CONF
  rm -f "$T/$1.sock"
  SOFTHSM2_CONF=$2 setsid p11-kit server -f -n "$T/$1.sock" --provider "$M" "$TOK" >"$T/server-$1.log" 2>&1 &
  PG[$1]=$!
  for _ in $(seq 1 100); do [ -S "$T/$1.sock" ] && return 0; sleep 0.05; done
  fail "server $1 did not create its socket"
}
stop_all() {
  for n in "${!PG[@]}"; do
    kill -CONT -- "-${PG[$n]}" 2>/dev/null
    kill -TERM -- "-${PG[$n]}" 2>/dev/null
  done
  gw_cleanup
}
trap stop_all EXIT
start_server a "$SOFTHSM2_CONF"
start_server b "$T/softhsm2-b.conf"
mkdir p11mods
printf 'remote: unix:path=%s\n' "$T/a.sock" >p11mods/hsm-a.module
printf 'remote: unix:path=%s\n' "$T/b.sock" >p11mods/hsm-b.module
mount --bind "$T/p11mods" /usr/share/p11-kit/modules || skip "cannot bind-mount in a private mount namespace"

# ---- the enclave: trust root, a verified model, the agent store ----
"$CRETO" key gen --alg ed25519 -o a >/dev/null
"$CRETO" trust init --key a.pub --threshold 1 -o root.json >/dev/null || fail "trust init"
"$CRETO" trust sign root.json --key a.key >/dev/null || fail "trust sign"
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
mkdir p1; head -c 20000 /dev/urandom >p1/w.bin
"$CRETO" model sign p1 --key a.key -o p1/model.sig >/dev/null 2>&1 || fail "model sign"
"$CRETO" update create --type model-weights --name m1 --version 1 --payload p1 -o v1.st --force >/dev/null || fail "create"
"$CRETO" update sign v1.st --key a.key >/dev/null
"$CRETO" update assemble v1.st --payload p1 -o v1.crupdate --force >/dev/null 2>&1 || fail "assemble"
"$CRETO" update apply v1.crupdate --trust root.json --state S >/dev/null || fail "apply v1"
"$CRETO" audit init --dir A --origin serve.test/hsm-failover --key "$TOK;object=cp?$LOCAL" >/dev/null || fail "audit init"
"$CRETO" nhi init --db nhi.db >/dev/null
"$CRETO" nhi jwks --key "$TOK;object=iss?$LOCAL" -o jwks.json >/dev/null || fail "nhi jwks of the HSM issuer key"
nhi_make_key "$T/agent" ed25519
"$CRETO" nhi add --db nhi.db --id agent-a --name "Agent A" --scope model:m1 --pub agent.pub >/dev/null || fail "nhi add"
KID=$("$CRETO" key id agent.pub | awk '{print $1}')
"$CRETO" nhi token replay-init --replay-state "$T/jti.state" >/dev/null || fail "replay-init"
printf 'vllm-secret-key-%s\n' "$RANDOM$RANDOM" >vllm.key
mkdir -p D R; chmod 755 D
gw_standin one --model m1
APORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve_conf "$T/root.json" "stop_timeout = 10s
isolation_interval = 60s"
# the keys on the HSM endpoints ([hsm] module stays the local token, for
# an NHI wrap key; no URI here names a module)
"$PY" - "$T" "$APORT" <<'PY'
import sys
t, aport = sys.argv[1], sys.argv[2]
c = open('creto.conf').read()
c = ('[hsm]\nmodule = /usr/lib/softhsm/libsofthsm2.so\npin_file = %s/pin\n'
     'endpoint = p11-kit:hsm-a\nendpoint = p11-kit:hsm-b\ndeadline = 1s\n' % t) + c
c = c.replace('checkpoint_key = %s/cp.key' % t,
              'checkpoint_key = pkcs11:token=enclave;object=cp\ncheckpoint_interval = 1s\ncheckpoint_entries = 2')
c = c.replace('[gateway]\n', '[gateway]\ntoken_endpoint = yes\nissuer_key = pkcs11:token=enclave;object=iss\n'
              'replay_state = %s/jti.state\nadmin_listen = 127.0.0.1:%s\n'
              'token_rate_agent = -1\ntoken_rate_source = -1\n' % (t, aport), 1)
open('creto.conf', 'w').write(c)
PY
expect 0 --out ok -- "$CRETO" config check --config creto.conf
if grep -q "not used by serve" "$T/.err" 2>/dev/null; then fail "config check still says serve ignores the endpoints"; else ok; fi

# sanitizer builds: serve reads the leak suppressions at exit, under its
# sandbox (the config directory is readable)
cp "$CRETO_SRC_DIR/tests/lsan.supp" lsan.supp
LSAN="LSAN_OPTIONS=suppressions=$T/lsan.supp"
serve_start "$CRETO" serve.err "$LSAN"
grep -q 'sandbox info event=applied' serve.err && ok || fail "no sandbox line: $(cat serve.err)"
grep -q 'hsm info event=endpoint name=p11-kit:hsm-a up=1 active=1 keys=2' serve.err && ok ||
  fail "serve did not open both keys through hsm-a: $(grep hsm serve.err)"
grep -q 'event=token_endpoint' serve.err && ok || fail "no token endpoint: $(grep gateway serve.err | tail -3)"
status() { # ENDPOINT FIELD: from RUNTIME/hsm.json
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([e for e in d["endpoints"] if e["name"]==sys.argv[2]][0][sys.argv[3]])' R/hsm.json "$1" "$2" 2>/dev/null
}
wait_status() { # ENDPOINT FIELD VALUE: bounded
  for _ in $(seq 1 200); do [ "$(status "$1" "$2")" = "$3" ] && return 0; sleep 0.05; done
  return 1
}
[ "$(status p11-kit:hsm-a up)" = True ] && [ "$(status p11-kit:hsm-a active)" = True ] && ok ||
  fail "hsm.json at start: $(cat R/hsm.json)"

# ---- traffic: token requests, each signed with the issuer key ----
cat >driver.py <<'PY'
import base64, http.client, json, os, sys, time, uuid
from cryptography.hazmat.primitives import serialization
port, kid, pem, stop, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
key = serialization.load_pem_private_key(open(pem, 'rb').read(), None)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
url = 'http://127.0.0.1:%s' % port
res = {'sent': 0, 'ok': 0, 'failed': [], 'max_s': 0.0}
for i in range(4000):  # bounded: the test stops it much earlier
    if os.path.exists(stop):
        break
    now = int(time.time())
    h = b64(json.dumps({'alg': 'EdDSA', 'kid': kid, 'typ': 'JWT'}).encode())
    p = b64(json.dumps({'iss': 'agent-a', 'sub': 'agent-a', 'aud': url + '/oauth/token', 'iat': now,
                        'exp': now + 60, 'jti': str(uuid.uuid4())}).encode())
    jws = h + '.' + p + '.' + b64(key.sign((h + '.' + p).encode()))
    body = ('grant_type=client_credentials&client_assertion_type='
            'urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=' + jws)
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection('127.0.0.1', int(port), timeout=15)
        c.request('POST', '/oauth/token', body, {'Content-Type': 'application/x-www-form-urlencoded'})
        r = c.getresponse()
        data = r.read()
        st = r.status
        c.close()
    except Exception as ex:
        st, data = 0, str(ex).encode()
    res['sent'] += 1
    res['max_s'] = max(res['max_s'], time.monotonic() - t0)
    if st == 200 and b'"access_token"' in data:
        res['ok'] += 1
    else:
        res['failed'].append('%d %s' % (st, data[:200].decode(errors='replace')))
    time.sleep(0.02)
json.dump(res, open(out, 'w'))
PY
"$PY" driver.py "$PORT" "$KID" agent.pem "$T/stop" "$T/drive.json" 2>driver.err &
DRV=$!
GW_PIDS="$GW_PIDS $DRV"
sleep 1

# host a dies: its endpoint goes down, signatures fail over to b
kill -TERM -- "-${PG[a]}"
wait_line serve.err 'hsm warn event=endpoint-down outcome=failed endpoint=p11-kit:hsm-a' >/dev/null && ok ||
  fail "no endpoint-down for a: $(grep ' hsm ' serve.err)"
wait_status p11-kit:hsm-a up False && ok || fail "hsm.json does not show a down: $(cat R/hsm.json)"
wait_status p11-kit:hsm-b active True && ok || fail "hsm.json does not show b active: $(cat R/hsm.json)"
expect 0 --out 'active endpoint p11-kit:hsm-b' -- "$CRETO" serve status --config creto.conf
grep -Eq 'p11-kit:hsm-a +down +downs 1 \(last: CKR_DEVICE_ERROR\)' <<<"$OUT" && ok || fail "serve status: $OUT"
sleep 0.5
# and comes back: the probe (under the sandbox) reconnects
start_server a "$SOFTHSM2_CONF"
wait_line serve.err 'hsm info event=endpoint-up outcome=ok endpoint=p11-kit:hsm-a' >/dev/null && ok ||
  fail "a never came back up: $(grep ' hsm ' serve.err)"
wait_status p11-kit:hsm-a up True && ok || fail "hsm.json does not show a up again: $(cat R/hsm.json)"
expect 0 -- "$CRETO" serve status --config creto.conf
grep -Eq 'p11-kit:hsm-a +up +downs 1' <<<"$OUT" && ok || fail "serve status after a came back: $OUT"
expect 0 --out '"active": "p11-kit:hsm-b"' -- "$CRETO" serve status --json --config creto.conf
sleep 0.5
# host b hangs (stopped, not dead): the deadline marks it down
kill -STOP -- "-${PG[b]}"
for _ in $(seq 1 3); do
  wait_line serve.err 'endpoint-down outcome=failed endpoint=p11-kit:hsm-b reason="deadline"' >/dev/null && break
done
grep -q 'endpoint-down outcome=failed endpoint=p11-kit:hsm-b reason="deadline"' serve.err && ok ||
  fail "no endpoint-down (deadline) for b: $(grep ' hsm ' serve.err)"
wait_status p11-kit:hsm-b up False && ok || fail "hsm.json does not show b down: $(cat R/hsm.json)"
sleep 0.5
kill -CONT -- "-${PG[b]}"
for _ in $(seq 1 3); do
  wait_line serve.err 'hsm info event=endpoint-up outcome=ok endpoint=p11-kit:hsm-b' >/dev/null && break
done
grep -q 'hsm info event=endpoint-up outcome=ok endpoint=p11-kit:hsm-b' serve.err && ok ||
  fail "b never came back up: $(grep ' hsm ' serve.err)"
sleep 1

# the admin /metrics
expect 0 --out 'creto_hsm_endpoint_up{endpoint="p11-kit:hsm-a"} 1' -- curl -sS --max-time 5 "http://127.0.0.1:$APORT/metrics"
for m in 'creto_hsm_endpoint_up{endpoint="p11-kit:hsm-b"} 1' 'creto_hsm_endpoint_active{endpoint="p11-kit:hsm-a"} 1' \
  'creto_hsm_endpoint_downs_total{endpoint="p11-kit:hsm-b"} 1' 'creto_hsm_sign_failures_total 0'; do
  grep -qF "$m" <<<"$OUT" && ok || fail "/metrics lacks '$m': $(grep creto_hsm <<<"$OUT")"
done
fo=$(sed -n 's/^creto_hsm_failovers_total //p' <<<"$OUT")
[ "${fo:-0}" -ge 2 ] && ok || fail "creto_hsm_failovers_total '$fo', want >= 2"
rt=$(sed -n 's/^creto_hsm_sign_retries_total //p' <<<"$OUT")
[ "${rt:-0}" -ge 1 ] && ok || fail "creto_hsm_sign_retries_total '$rt', want >= 1"

# ---- the loop's result ----
touch stop
for _ in $(seq 1 300); do kill -0 $DRV 2>/dev/null || break; sleep 0.05; done
[ -s drive.json ] || fail "the driver wrote no result: $(cat driver.err)"
res() { python3 -c 'import json,sys; print(json.load(open("drive.json"))[sys.argv[1]])' "$1"; }
n=$(res ok); nf=$(python3 -c 'import json; print(len(json.load(open("drive.json"))["failed"]))')
[ "$nf" = 0 ] && ok || fail "$nf token requests failed, the first: $(python3 -c 'import json; print(json.load(open("drive.json"))["failed"][:3])')"
[ "${n:-0}" -ge 50 ] && ok || fail "only ${n:-0} tokens issued"
echo "tokens issued: $n, slowest $(res max_s) s" >&2
if grep -q 'event=checkpoint_failed' serve.err; then fail "a checkpoint failed: $(grep checkpoint_failed serve.err | head -2)"; else ok; fi
nck=$(grep -c 'audit info event=checkpoint ' serve.err)
[ "$nck" -ge 4 ] && ok || fail "only $nck checkpoints signed"

kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc: $(tail -5 serve.err)"
if grep -qE '==[0-9]+==ERROR|runtime error:' serve.err; then fail "sanitizer: $(grep -A5 -E '==[0-9]+==ERROR|runtime error' serve.err | head)"; else ok; fi

# ---- the audit log: every switch, and it verifies with the HSM key ----
expect 0 -- "$CRETO" audit show --dir A --component hsm --json
for pat in '"event":"endpoint-down".*"endpoint":"p11-kit:hsm-a"\|"endpoint":"p11-kit:hsm-a".*"event":"endpoint-down"' \
  '"event":"endpoint-up"' '"event":"failover"' '"reason":"deadline"' '"from":"p11-kit:hsm-a"' '"from":"p11-kit:hsm-b"'; do
  grep -q "$pat" <<<"$OUT" && ok || fail "audit log lacks $pat: $OUT"
done
expect 0 -- "$CRETO" audit verify --dir A --pub cp.pub

# ---- an endpoint hung at start: the check names it, serve starts on the
# other (the late open is unblocked and joined before the sandbox), and
# once it resumes its probe opens it from scratch under the sandbox ----
kill -STOP -- "-${PG[b]}"
expect 0 --err 'not checked: ' -- "$CRETO" config check --config creto.conf
grep -q 'p11-kit:hsm-b' "$T/.err" && ok || fail "the check does not name the hung endpoint: $ERR"
serve_start "$CRETO" serve2.err "$LSAN"
grep -q 'hsm warn event=endpoint name=p11-kit:hsm-b up=0' serve2.err && ok || fail "b not down at start: $(grep hsm serve2.err)"
grep -q 'landlock=enforced' serve2.err && ok || echo "note: Landlock not enforced on this kernel" >&2
wait_line serve2.err 'endpoint-down outcome=failed endpoint=p11-kit:hsm-b reason="deadline"' >/dev/null && ok ||
  fail "no endpoint-down (deadline) for b at start: $(grep hsm serve2.err)"
kill -CONT -- "-${PG[b]}"
wait_line serve2.err 'hsm info event=endpoint-up outcome=ok endpoint=p11-kit:hsm-b' >/dev/null && ok ||
  fail "b did not come up under the sandbox: $(grep hsm serve2.err)"
expect 0 -- "$CRETO" serve status --config creto.conf
grep -Eq 'p11-kit:hsm-b +up' <<<"$OUT" && ok || fail "serve status after b resumed: $OUT"
kill -TERM $SP; rc=0; wait $SP || rc=$?
[ "$rc" = 0 ] && ok || fail "serve exit $rc: $(tail -5 serve2.err)"
if grep -qE '==[0-9]+==ERROR|runtime error:' serve2.err; then fail "sanitizer: $(grep -A5 -E '==[0-9]+==ERROR|runtime error' serve2.err | head)"; else ok; fi
expect 0 -- "$CRETO" audit verify --dir A --pub cp.pub
finish
