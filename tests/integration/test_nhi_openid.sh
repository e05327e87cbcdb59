#!/bin/bash
# test_nhi_openid.sh - an agent gets its token with the npm `openid-client`
# package (RFC 8414 discovery, then client_credentials with private_key_jwt)
# using keys `creto key gen` made, against creto's token endpoint.  Until the
# gateway serves the endpoint, tests/integration/jose/oauth_shim.mjs stands
# in for its HTTP front on 127.0.0.1 (every decision is `creto nhi token
# metadata|exchange`'s).  The access tokens resolve with `creto nhi resolve`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"

command -v node >/dev/null || skip "node not installed"
PEER=$CRETO_BUILD_DIR/jose-peer
mkdir -p "$PEER"
for f in package.json peer.mjs oauth_shim.mjs oidc_client.mjs; do cp "$CRETO_SRC_DIR/tests/integration/jose/$f" "$PEER/"; done
if [ ! -f "$PEER/node_modules/openid-client/package.json" ] || [ ! -f "$PEER/node_modules/jose/package.json" ]; then
  command -v npm >/dev/null || skip "npm not installed"
  (cd "$PEER" && npm install --no-audit --no-fund --silent >"$T/npm.log" 2>&1) ||
    skip "npm install failed: $(tail -n 2 "$T/npm.log")"
fi

DB=$T/nhi.db
nhi_make_key "$T/issuer" ed25519
nhi_make_key "$T/a-ed" ed25519
nhi_make_key "$T/a-ec" p256
nhi_make_key "$T/stranger" ed25519
expect 0 -- "$CRETO" nhi init --db "$DB"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-a --name "Agent A" --scope model:llama-3.1-8b-instruct \
  --scope tool:search --pub "$T/a-ed.pub" --pub "$T/a-ec.pub"
ED_KID=$("$CRETO" key id "$T/a-ed.pub" | awk '{print $1}')
EC_KID=$("$CRETO" key id "$T/a-ec.pub" | awk '{print $1}')
ST_KID=$("$CRETO" key id "$T/stranger.pub" | awk '{print $1}')
expect 0 --out "$ED_KID" -- "$CRETO" nhi key list --db "$DB" agent-a
expect 0 -- "$CRETO" nhi token replay-init --replay-state "$T/jti.state"

node "$PEER/oauth_shim.mjs" "$CRETO" "$DB" "$T/issuer.key" "$T/jti.state" "$T/url" 2>"$T/shim.err" &
SHIM=$!
trap 'kill $SHIM 2>/dev/null; wait $SHIM 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/url" ] && break; sleep 0.1; done
[ -s "$T/url" ] || { fail "the shim did not start: $(cat "$T/shim.err")"; finish; }
URL=$(cat "$T/url")
oidc() { node "$PEER/oidc_client.mjs" "$URL" "$@"; }
"$CRETO" nhi token metadata --db "$DB" --key "$T/issuer.key" --issuer-url "$URL" --jwks-set >"$T/jwks.json"

# EdDSA (remapped to "EdDSA"), Ed25519 (as openid-client sends it), ES256 with a scope
# (openid-client reports token_type in lower case)
expect 0 --out '"token_type":"bearer"' -- oidc agent-a "$T/a-ed.pem" "$ED_KID" EdDSA
echo "$OUT" | grep -qF "\"token_endpoint\":\"$URL/oauth/token\"" && ok || fail "discovery: $OUT"
TOK=$(node -e 'console.log(JSON.parse(process.argv[1]).access_token)' "$OUT")
expect 0 --out '"sub": "agent-a"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
expect 0 --out '"expires_in":900' -- oidc agent-a "$T/a-ed.pem" "$ED_KID" Ed25519
expect 0 --out '"scope":"tool:search"' -- oidc agent-a "$T/a-ec.pem" "$EC_KID" ES256 tool:search
TOK=$(node -e 'console.log(JSON.parse(process.argv[1]).access_token)' "$OUT")
expect 0 --out '"tool:search"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"

# refusals reach openid-client as RFC 6749 errors
expect 1 --err "invalid_scope" -- oidc agent-a "$T/a-ec.pem" "$EC_KID" ES256 model:other
expect 1 --err "invalid_client" -- oidc agent-a "$T/stranger.pem" "$ST_KID" EdDSA
expect 1 --err "invalid_client" -- oidc agent-zz "$T/a-ed.pem" "$ED_KID" EdDSA
expect 0 -- "$CRETO" nhi revoke --db "$DB" agent-a
expect 1 --err "unauthorized_client" -- oidc agent-a "$T/a-ed.pem" "$ED_KID" EdDSA
finish
