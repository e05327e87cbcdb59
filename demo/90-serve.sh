# demo/90-serve.sh - `creto serve`, the enclave's one daemon (sourced by
# demo/run.sh): one config file, `creto config check`, the daemon starts
# with no model routed, a signed model-weights update through the diode
# makes the gateway route it, an agent streams, SIGTERM ends it cleanly and
# the audit log verifies.  Its own pieces, so it runs alone too.
SV_D=$DEMO_DIR/serve
mkdir -p "$SV_D"
chmod 700 "$SV_D"
if ! command -v node >/dev/null || ! command -v curl >/dev/null; then
  step "serve: skipped (Node.js and curl are needed for the vLLM stand-in and the client)"
else
step "serve: the enclave's pieces (trust root, state, audit log, agents, a vLLM replica)"
(
cd "$SV_D"
umask 077
for k in officer1 officer2 audit issuer; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" trust init --key officer1.pub --key officer2.pub --threshold 2 -o root.json >/dev/null
for k in officer1 officer2; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
"$CRETO" state init --state state --trust root.json >/dev/null
"$CRETO" audit init --dir audit --origin demo.enclave/audit --key audit.key >/dev/null
"$CRETO" nhi init --db agents.db >/dev/null
"$CRETO" nhi jwks --key issuer.key -o jwks.json >/dev/null
"$CRETO" nhi add --db agents.db --id chat-agent --name "Chat agent" --scope model:llama-demo >/dev/null
"$CRETO" nhi token issue --db agents.db --agent chat-agent --key issuer.key --ttl 15m -o chat.jwt >/dev/null
printf 'Authorization: Bearer %s\n' "$(cat chat.jwt)" >chat.hdr
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >vllm.key
mkdir -p drop run weights
printf 'nameserver 127.0.0.1\n' >resolv.conf; chmod 644 resolv.conf
head -c 300000 /dev/urandom >weights/model.safetensors
"$CRETO" model sign weights --key officer1.key -o weights/model.sig >/dev/null 2>&1
"$CRETO" update create --type model-weights --name llama-demo --version 1 --payload weights -o m.st >/dev/null
for k in officer1 officer2; do "$CRETO" update sign m.st --key $k.key >/dev/null; done
"$CRETO" update assemble m.st --payload weights -o llama-demo-1.crupdate >/dev/null 2>&1
)
VLLM_API_KEY=$(cat "$SV_D/vllm.key") node "$DEMO_SRC/../tests/standin/vllm.mjs" --model llama-demo \
  --interval-ms 80 --tokens 12 >"$SV_D/vllm.out" 2>&1 &
SV_VLLM_PID=$!
for _ in $(seq 1 100); do grep -q '^listening' "$SV_D/vllm.out" && break; sleep 0.05; done
SV_VPORT=$(sed -n 's/^listening //p' "$SV_D/vllm.out")
SV_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

step "serve: one config file for every component"
cat >"$SV_D/creto.conf" <<EOF
[trust]
root = $SV_D/root.json
[state]
dir = $SV_D/state
[diode]
drop = $SV_D/drop
settle = 100ms
[nhi]
store = $SV_D/agents.db
jwks = $SV_D/jwks.json
[audit]
dir = $SV_D/audit
checkpoint_key = $SV_D/audit.key
[isolation]
resolv_conf = $SV_D/resolv.conf
[serve]
runtime_dir = $SV_D/run
[gateway]
listen = 127.0.0.1:$SV_PORT
[upstream]
model llama-demo = http://127.0.0.1:$SV_VPORT
key_file = $SV_D/vllm.key
EOF
chmod 600 "$SV_D/creto.conf"
sed 's/^/     /' "$SV_D/creto.conf"
show "$CRETO" config check --config "$SV_D/creto.conf" || true
say "the model is not installed yet: a warning, and the gateway will not route it"

step "serve: start (sandboxed: Landlock, seccomp, no new privileges)"
"$CRETO" serve --config "$SV_D/creto.conf" 2>"$SV_D/serve.log" &
SV_PID=$!
for _ in $(seq 1 200); do grep -q 'event=ready' "$SV_D/serve.log" && break; sleep 0.05; done
grep -E 'sandbox info|event=ready' "$SV_D/serve.log" | cut -c1-160 | sed 's/^/     /'

step "serve: a signed model-weights update arrives through the diode"
cp "$SV_D/llama-demo-1.crupdate" "$SV_D/drop/"
for _ in $(seq 1 200); do grep -q 'event=listening address' "$SV_D/serve.log" && break; sleep 0.05; done
grep -E 'diode info event=applied|gateway info event=listening address' "$SV_D/serve.log" | cut -c1-160 | sed 's/^/     /'
say "verified and installed first, then routed"

step "serve: the agent streams a chat completion; SIGTERM arrives mid-stream"
curl -sS -N --max-time 20 -H @"$SV_D/chat.hdr" -H 'content-type: application/json' \
  -d '{"model":"llama-demo","stream":true,"messages":[{"role":"user","content":"hello"}]}' \
  "http://127.0.0.1:$SV_PORT/v1/chat/completions" >"$SV_D/stream.out" &
SV_CURL=$!
sleep 0.4
kill -TERM "$SV_PID"
wait "$SV_CURL" || true
SV_RC=0; wait "$SV_PID" || SV_RC=$?
say "creto serve exited $SV_RC"
sed -n 's/^data: //p' "$SV_D/stream.out" | tail -n 2 | cut -c1-100 | sed 's/^/     /'
say "the in-flight stream finished before the gateway closed"
show "$CRETO" audit verify --dir "$SV_D/audit" --pub "$SV_D/audit.pub"
"$CRETO" audit show --dir "$SV_D/audit" | grep -E ' serve | diode apply' | cut -c1-120 | sed 's/^/     /'
kill "$SV_VLLM_PID" 2>/dev/null; wait "$SV_VLLM_PID" 2>/dev/null || true
fi
