#!/bin/bash
# test_nhi_openid.sh - an agent gets its own token from `creto gateway`'s
# token endpoint with the npm `openid-client` package (RFC 8414 discovery,
# then client_credentials with private_key_jwt, keys made by `creto key
# gen`), and streams a chat completion through the same gateway with the npm
# `openai` package using that token.  Refusals over HTTP with curl and
# assertions built by npm `jose`: a replayed jti (also after SIGHUP), a wrong
# aud, an oversized body, a missing or duplicated form field, a second
# authentication method, a revoked agent.  All on 127.0.0.1.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"

PEER=$CRETO_BUILD_DIR/jose-peer
mkdir -p "$PEER"
for f in package.json peer.mjs oidc_client.mjs; do cp "$CRETO_SRC_DIR/tests/integration/jose/$f" "$PEER/"; done
if [ ! -f "$PEER/node_modules/openid-client/package.json" ] || [ ! -f "$PEER/node_modules/jose/package.json" ]; then
  command -v npm >/dev/null || skip "npm not installed"
  (cd "$PEER" && npm install --no-audit --no-fund --silent >"$T/npm.log" 2>&1) ||
    skip "npm install failed: $(tail -n 2 "$T/npm.log")"
fi
NPMDIR=$CRETO_BUILD_DIR/npm-openai
if [ ! -f "$NPMDIR/node_modules/openai/package.json" ]; then
  command -v npm >/dev/null || skip "npm not installed"
  mkdir -p "$NPMDIR"
  cp "$STANDIN_DIR/openai/package.json" "$NPMDIR/"
  npm install --prefix "$NPMDIR" --no-audit --no-fund --silent >"$T/npm.log" 2>&1 ||
    skip "npm install openai failed: $(tail -n 2 "$T/npm.log")"
fi
cp "$STANDIN_DIR/openai/stream_chat.mjs" "$NPMDIR/"
peer() { node "$PEER/peer.mjs" "$@"; }

# the store: agent-a with an Ed25519 and a P-256 key, agent-b with one
DB=$T/nhi.db
nhi_make_key "$T/issuer" ed25519
nhi_make_key "$T/a-ed" ed25519
nhi_make_key "$T/a-ec" p256
nhi_make_key "$T/b-ed" ed25519
expect 0 -- "$CRETO" nhi init --db "$DB"
expect 0 -- "$CRETO" nhi jwks --key "$T/issuer.key" -o "$T/jwks.json"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-a --name "Agent A" --scope model:m1 \
  --scope tool:search --pub "$T/a-ed.pub" --pub "$T/a-ec.pub"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-b --name "Agent B" --scope model:m1 --pub "$T/b-ed.pub"
ED_KID=$("$CRETO" key id "$T/a-ed.pub" | awk '{print $1}')
EC_KID=$("$CRETO" key id "$T/a-ec.pub" | awk '{print $1}')
B_KID=$("$CRETO" key id "$T/b-ed.pub" | awk '{print $1}')
expect 0 -- "$CRETO" nhi token replay-init --replay-state "$T/jti.state"
printf 'vllm-secret-key-%s\n' "$RANDOM$RANDOM" >"$T/vllm.key"
chmod 600 "$T/vllm.key"

gw_standin s1 --model m1 --interval-ms 5
gw_start "token_endpoint = yes
issuer_key = $T/issuer.key
replay_state = $T/jti.state" "model m1 = http://127.0.0.1:$PORT_s1"
URL=http://$GW
grep -q "event=token_endpoint issuer_url=$URL " "$T/gw.err" && ok || fail "no token_endpoint log line: $(cat "$T/gw.err")"
[ -e "$T/jti.state" ] && fail "the running gateway left the replay state file in place" || ok

# discovery documents, served by the gateway without a token
expect 0 --out "\"token_endpoint\":\"$URL/oauth/token\"" -- curl -sS --max-time 5 "$URL/.well-known/oauth-authorization-server"
echo "$OUT" | grep -qF '"token_endpoint_auth_methods_supported":["private_key_jwt"]' && ok || fail "metadata: $OUT"
expect 0 --out '"kty": "OKP"' -- curl -sS --max-time 5 "$URL/.well-known/jwks.json"

# openid-client: discovery + client_credentials + private_key_jwt (EdDSA, Ed25519, ES256 with a scope)
oidc() { node "$PEER/oidc_client.mjs" "$URL" "$@"; }
expect 0 --out '"token_type":"bearer"' -- oidc agent-a "$T/a-ed.pem" "$ED_KID" EdDSA
echo "$OUT" | grep -qF "\"token_endpoint\":\"$URL/oauth/token\"" && ok || fail "discovery: $OUT"
node -e 'console.log(JSON.parse(process.argv[1]).access_token)' "$OUT" >"$T/tok.a"
expect 0 --out '"expires_in":900' -- oidc agent-a "$T/a-ed.pem" "$ED_KID" Ed25519
expect 0 --out '"scope":"tool:search"' -- oidc agent-a "$T/a-ec.pem" "$EC_KID" ES256 tool:search
node -e 'console.log(JSON.parse(process.argv[1]).access_token)' "$OUT" >"$T/tok.search"

# the token it got works on the gateway with the openai client, streamed
expect 0 --out 'chunks=8' -- node "$NPMDIR/stream_chat.mjs" "$URL" "$T/tok.a" m1
echo "$OUT" | grep -q '^tok0' && ok || fail "streamed text: $OUT"
# a token narrowed to tool:search does not reach the model
expect 1 --err 'openai: 403' -- node "$NPMDIR/stream_chat.mjs" "$URL" "$T/tok.search" m1

# curl with assertions built by jose
NOW=$(date +%s)
AT=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer
assertion() { # PEM ALG KID SUB AUD JTI
  peer sign "$1" "$2" "$3" "{\"iss\":\"$4\",\"sub\":\"$4\",\"aud\":\"$5\",\"iat\":$NOW,\"exp\":$((NOW + 60)),\"jti\":\"$6\"}"
}
form() { printf 'grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s%s' "$AT" "$1" "${2:-}"; }
# post FILE [CURL ARGS]: prints the status; body in $T/body, head in $T/hdr
post() {
  local f=$1; shift
  curl -sS -o "$T/body" -D "$T/hdr" -w '%{http_code}' --max-time 5 \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$f" "$@" "$URL/oauth/token"
}
# refuse WANT_STATUS WANT_ERROR DESC FILE [CURL ARGS]
refuse() {
  local want=$1 err=$2 desc=$3; shift 3
  local got
  got=$(post "$@")
  if [ "$got" = "$want" ] && grep -qF "\"error\":\"$err\"" "$T/body"; then ok; else
    fail "$desc: $got $(cat "$T/body"), want $want $err"; fi
}

form "$(assertion "$T/b-ed.pem" EdDSA "$B_KID" agent-b "$URL/oauth/token" j1)" >"$T/f1"
[ "$(post "$T/f1")" = 200 ] && ok || fail "curl issuance: $(cat "$T/body")"
grep -qi '^cache-control: no-store' "$T/hdr" && grep -qi '^pragma: no-cache' "$T/hdr" && ok ||
  fail "token answer without no-store/no-cache: $(cat "$T/hdr")"
grep -q '"token_type":"Bearer"' "$T/body" && ok || fail "token body: $(cat "$T/body")"
refuse 401 invalid_client "replayed jti" "$T/f1"
grep -qi '^cache-control: no-store' "$T/hdr" && ok || fail "refusal without no-store"
kill -HUP "$GW_PID"
wait_line "$T/gw.err" 'event=reloaded' >/dev/null && ok || fail "no reload"
refuse 401 invalid_client "replayed jti after SIGHUP" "$T/f1"
form "$(assertion "$T/b-ed.pem" EdDSA "$B_KID" agent-b "https://elsewhere.test/oauth/token" j2)" >"$T/f2"
refuse 401 invalid_client "wrong aud" "$T/f2"
form "$(assertion "$T/b-ed.pem" EdDSA "$B_KID" agent-b "$URL/oauth/token" j3)" "&scope=model%3Aother" >"$T/f3"
refuse 400 invalid_scope "scope not granted" "$T/f3"
A4=$(assertion "$T/b-ed.pem" EdDSA "$B_KID" agent-b "$URL/oauth/token" j4)
printf 'client_assertion_type=%s&client_assertion=%s' "$AT" "$A4" >"$T/f4"
refuse 400 invalid_request "missing grant_type" "$T/f4"
form "$A4" "&grant_type=client_credentials" >"$T/f4"
refuse 400 invalid_request "duplicated grant_type" "$T/f4"
form "$A4" >"$T/f4"
refuse 400 invalid_request "two authentication methods" "$T/f4" -H "Authorization: Basic YTpi"
got=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 5 --data-binary "@$T/f4" -H 'Content-Type: text/plain' "$URL/oauth/token")
[ "$got" = 400 ] && ok || fail "wrong Content-Type: $got"
# oversized: refused from the head, the body unread, the connection closed
head -c 20000 /dev/zero | tr '\0' a >"$T/big"
refuse 400 invalid_request "oversized body" "$T/big"
grep -qi '^connection: close' "$T/hdr" && ok || fail "oversized: connection not closed: $(cat "$T/hdr")"
# the well-formed assertion j4 was never consumed by the refusals above
[ "$(post "$T/f4")" = 200 ] && ok || fail "j4: $(cat "$T/body")"
# the token endpoint is only at its exact path and method
expect_status a 404 "GET /oauth/token" "$URL/oauth/token"

# a revoked agent: its assertion refused, its earlier token refused by the gateway
expect 0 -- "$CRETO" nhi revoke --db "$DB" agent-a
sleep 1.2
expect 1 --err "unauthorized_client" -- oidc agent-a "$T/a-ed.pem" "$ED_KID" EdDSA
form "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" j5)" >"$T/f5"
refuse 400 unauthorized_client "revoked agent" "$T/f5"
expect 1 --err 'openai: 401' -- node "$NPMDIR/stream_chat.mjs" "$URL" "$T/tok.a" m1

gw_stop
# audit: issuances one record each, refusals aggregated (emitted at shutdown at the latest)
grep -q '"component":"nhi","event":"token","outcome":"ok"' "$T/gw.err" && ok || fail "no issuance record: $(grep audit "$T/gw.err" | head -5)"
grep '"component":"nhi"' "$T/gw.err" | grep -q 'replay' && ok || fail "no replay refusal record: $(grep '"nhi"' "$T/gw.err" | head)"
grep -q 'client_assertion=\|eyJ' "$T/gw.err" && fail "an assertion or token in the log" || ok
[ -s "$T/jti.state" ] && ok || fail "the replay state was not saved at shutdown"
finish
