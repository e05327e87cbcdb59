# demo/80-gateway.sh - the inference gateway (sourced by demo/run.sh).
# Three agents call the local "vLLM" (the test stand-in, since vLLM needs a
# GPU) only through `creto gateway`: one streams a chat completion token by
# token, one is refused a model outside its scopes, one is refused because
# its token was revoked; the audit records show all three.  Its own store
# and file-key issuer, so it runs alone too.  Needs Node.js and curl.
GW_D=$DEMO_DIR/gateway
mkdir -p "$GW_D"
chmod 700 "$GW_D"
if ! command -v node >/dev/null || ! command -v curl >/dev/null; then
  step "gateway: skipped (Node.js and curl are needed for the vLLM stand-in and the client)"
else
step "gateway: agents, their tokens, a vLLM replica holding its own API key"
"$CRETO" key gen --alg ed25519 -o "$GW_D/issuer" >/dev/null
show "$CRETO" nhi init --db "$GW_D/agents.db"
show "$CRETO" nhi jwks --key "$GW_D/issuer.key" -o "$GW_D/jwks.json"
show "$CRETO" nhi add --db "$GW_D/agents.db" --id chat-agent --name "Chat agent" --scope model:llama-3.1-8b-instruct
show "$CRETO" nhi add --db "$GW_D/agents.db" --id tool-agent --name "Tool agent" --scope model:embedder
show "$CRETO" nhi add --db "$GW_D/agents.db" --id old-agent --name "Retired agent" --scope model:llama-3.1-8b-instruct
# self-agent obtains its own tokens: its key is made where it runs, only the public half registered
"$CRETO" key gen --alg ed25519 -o "$GW_D/self-agent" >/dev/null
show "$CRETO" nhi add --db "$GW_D/agents.db" --id self-agent --name "Self-serving agent" \
  --scope model:llama-3.1-8b-instruct --pub "$GW_D/self-agent.pub"
"$CRETO" key gen --alg ed25519 -o "$GW_D/old-agent" >/dev/null
"$CRETO" nhi key add --db "$GW_D/agents.db" old-agent --pub "$GW_D/old-agent.pub" >/dev/null
"$CRETO" nhi token replay-init --replay-state "$GW_D/jti.state" >/dev/null
for a in chat-agent tool-agent old-agent; do
  "$CRETO" nhi token issue --db "$GW_D/agents.db" --agent "$a" --key "$GW_D/issuer.key" --ttl 15m -o "$GW_D/$a.jwt"
  # curl reads the header from a 0600 file: a bearer token never goes on a command line
  ( umask 077; printf 'Authorization: Bearer %s\n' "$(cat "$GW_D/$a.jwt")" >"$GW_D/$a.hdr" )
done
( umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$GW_D/vllm.key" )
VLLM_API_KEY=$(cat "$GW_D/vllm.key") node "$DEMO_SRC/../tests/standin/vllm.mjs" --model llama-3.1-8b-instruct \
  --model embedder --interval-ms 60 >"$GW_D/vllm.out" 2>&1 &
GW_VLLM_PID=$!
for _ in $(seq 1 100); do grep -q '^listening' "$GW_D/vllm.out" && break; sleep 0.05; done
GW_VPORT=$(sed -n 's/^listening //p' "$GW_D/vllm.out")
say "replica on 127.0.0.1:$GW_VPORT; its key is in a 0600 file, never on a command line"

step "gateway: the config (docs/config.md) and creto gateway in the foreground"
cat >"$GW_D/creto.conf" <<EOF
[gateway]
listen = 127.0.0.1:0
nhi_db = $GW_D/agents.db
jwks = $GW_D/jwks.json
token_endpoint = yes
issuer_key = $GW_D/issuer.key
replay_state = $GW_D/jti.state

[upstream]
key_file = $GW_D/vllm.key
model llama-3.1-8b-instruct = http://127.0.0.1:$GW_VPORT
model embedder = http://127.0.0.1:$GW_VPORT
EOF
show cat "$GW_D/creto.conf"
"$CRETO" gateway --config "$GW_D/creto.conf" 2>"$GW_D/gateway.log" &
GW_PID=$!
for _ in $(seq 1 100); do grep -q 'event=listening' "$GW_D/gateway.log" && break; sleep 0.05; done
GW_ADDR=$(sed -n 's/.*event=listening addr=\([^ ]*\).*/\1/p' "$GW_D/gateway.log" | head -1)
say "listening on $GW_ADDR"

step "gateway: chat-agent streams a chat completion, token by token"
printf '   $ curl -N http://%s/v1/chat/completions -H @chat-agent.hdr -d {...,"stream":true}\n' "$GW_ADDR"
printf '     '
curl -sN "http://$GW_ADDR/v1/chat/completions" -H @"$GW_D/chat-agent.hdr" \
  -d '{"model":"llama-3.1-8b-instruct","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Say hello"}]}' |
  while IFS= read -r line; do
    case $line in
      'data: [DONE]'*) printf ' [DONE]\n' ;;
      data:*) printf '%s' "$(printf '%s' "${line#data: }" | python3 -c 'import json,sys; c=json.load(sys.stdin)["choices"]; print(c[0]["delta"].get("content","") if c else "", end="")')" ;;
    esac
  done

step "gateway: tool-agent asks for a model outside its scopes"
show curl -s "http://$GW_ADDR/v1/chat/completions" -H @"$GW_D/tool-agent.hdr" \
  -d '{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"hi"}]}' -w ' -> HTTP %{http_code}\n'
say "403 whether or not the model exists: no existence leak."

step "gateway: old-agent is revoked; its still-unexpired token is refused"
show "$CRETO" nhi revoke --db "$GW_D/agents.db" old-agent
sleep 1.2 # the gateway re-reads the store's revocation generation every second
show curl -s "http://$GW_ADDR/v1/models" -H @"$GW_D/old-agent.hdr" -w ' -> HTTP %{http_code}\n'
say "The client learns only 'invalid token'; the reason goes to the audit record."

step "gateway: vLLM's open paths stay unreachable through the gateway"
show curl -s "http://$GW_ADDR/metrics" -H @"$GW_D/chat-agent.hdr" -w ' -> HTTP %{http_code}\n'

step "gateway: self-agent fetches its own token from POST /oauth/token (private_key_jwt)"
# the client assertion: signed with the agent's own key, aud = the token endpoint, 60 s
"$CRETO" nhi token issue --agent self-agent --issuer self-agent --key "$GW_D/self-agent.key" \
  --aud "http://$GW_ADDR/oauth/token" --ttl 60s 2>/dev/null | tr -d '\n' >"$GW_D/self-agent.assertion"
printf '   $ curl http://%s/oauth/token -d grant_type=client_credentials -d client_assertion_type=...jwt-bearer -d client_assertion=@self-agent.assertion\n' "$GW_ADDR"
( umask 077
  curl -s "http://$GW_ADDR/oauth/token" -d grant_type=client_credentials \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode client_assertion@"$GW_D/self-agent.assertion" >"$GW_D/self-agent.token.json" )
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print("     token_type=%s expires_in=%s scope=%s access_token=%s..." % (t["token_type"], t["expires_in"], t["scope"], t["access_token"][:16]) if "access_token" in t else "     refused: %s" % t)' \
  "$GW_D/self-agent.token.json"
( umask 077; python3 -c 'import json,sys; print("Authorization: Bearer " + json.load(open(sys.argv[1]))["access_token"])' \
  "$GW_D/self-agent.token.json" >"$GW_D/self-agent.hdr" )
say "and streams a completion with it:"
printf '     '
curl -sN "http://$GW_ADDR/v1/chat/completions" -H @"$GW_D/self-agent.hdr" \
  -d '{"model":"llama-3.1-8b-instruct","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Say hello"}]}' |
  while IFS= read -r line; do
    case $line in
      'data: [DONE]'*) printf ' [DONE]\n' ;;
      data:*) printf '%s' "$(printf '%s' "${line#data: }" | python3 -c 'import json,sys; c=json.load(sys.stdin)["choices"]; print(c[0]["delta"].get("content","") if c else "", end="")')" ;;
    esac
  done
step "gateway: the revoked old-agent signs an assertion with its key: refused"
"$CRETO" nhi token issue --agent old-agent --issuer old-agent --key "$GW_D/old-agent.key" \
  --aud "http://$GW_ADDR/oauth/token" --ttl 60s 2>/dev/null | tr -d '\n' >"$GW_D/old-agent.assertion"
show curl -s "http://$GW_ADDR/oauth/token" -d grant_type=client_credentials \
  --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  --data-urlencode client_assertion@"$GW_D/old-agent.assertion" -w ' -> HTTP %{http_code}\n'

step "gateway: the same gateway with TLS (tls_cert, tls_key: docs/gateway.md \"TLS\")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$GW_D/tls.key" -out "$GW_D/tls.crt" 2>/dev/null
chmod 600 "$GW_D/tls.key"
# (the first gateway keeps the token endpoint and its replay state)
sed -e "s|^\[gateway\]$|[gateway]\ntls_cert = $GW_D/tls.crt\ntls_key = $GW_D/tls.key|" \
  -e '/^token_endpoint\|^issuer_key\|^replay_state/d' "$GW_D/creto.conf" >"$GW_D/creto-tls.conf"
say "a self-signed P-256 certificate; the key file is 0600 (a readable key is refused)"
"$CRETO" gateway --config "$GW_D/creto-tls.conf" 2>"$GW_D/gateway-tls.log" &
GW_TLS_PID=$!
for _ in $(seq 1 100); do grep -q 'event=listening' "$GW_D/gateway-tls.log" && break; sleep 0.05; done
GW_TLS_ADDR=$(sed -n 's/.*event=listening addr=\([^ ]*\).*/\1/p' "$GW_D/gateway-tls.log" | head -1)
[ -n "$GW_TLS_ADDR" ] || { cat "$GW_D/gateway-tls.log" >&2; exit 3; }
printf '   $ curl --cacert tls.crt https://%s/v1/chat/completions -H @chat-agent.hdr -d {...}\n' "$GW_TLS_ADDR"
curl -sv --cacert "$GW_D/tls.crt" "https://$GW_TLS_ADDR/v1/chat/completions" -H @"$GW_D/chat-agent.hdr" \
  -d '{"model":"llama-3.1-8b-instruct","max_tokens":8,"messages":[{"role":"user","content":"Say hello"}]}' \
  -o "$GW_D/tls.out" 2>&1 | sed -n 's/^\* \(SSL connection using .*\)/     \1/p; s/^< \(HTTP\/1.1 .*\)/     \1/p' | tr -d '\r'
say "answer: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' "$GW_D/tls.out" 2>/dev/null || cat "$GW_D/tls.out")"
say "plain HTTP to the TLS port: $(curl -s "http://$GW_TLS_ADDR/v1/models" -o /dev/null -w 'HTTP %{http_code}') (this port speaks TLS only)"
kill -TERM "$GW_TLS_PID"; wait "$GW_TLS_PID" || true

kill -TERM "$GW_PID"; wait "$GW_PID" || true
kill "$GW_VLLM_PID" 2>/dev/null; wait "$GW_VLLM_PID" 2>/dev/null || true
step "gateway: the audit records of the three agents (never a prompt, never a token)"
grep ' audit ' "$GW_D/gateway.log" | grep '"component":"gateway"' | grep -E 'chat-agent|tool-agent|revoked' |
  sed 's/^[^ ]* audit //' | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    f = r.get("fields", r)
    if r.get("event") == "token_refused":  # refusals are counted per rule, agent claimed and source
        print("     %-11s %-24s status %s  %-8s x%s  reason: %s" % (f.get("claimed_agent") or "-", "(token refused)",
              f.get("status"), r["outcome"], f.get("count"), r.get("reason")))
    else:
        print("     %-11s %-24s status %s  %-8s %s%s" % (r.get("actor") or "-", f.get("endpoint"), f.get("status"),
              r["outcome"], f.get("end"), ("  reason: " + r["reason"]) if r.get("reason") else ""))'
say "the token endpoint's records (component nhi: each issuance; refusals counted per rule):"
grep ' audit ' "$GW_D/gateway.log" | grep '"component":"nhi"' | sed 's/^[^ ]* audit /     /'
fi
