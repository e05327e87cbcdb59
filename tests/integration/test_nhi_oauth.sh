#!/bin/bash
# test_nhi_oauth.sh - agents' own keys and the token endpoint (docs/nhi.md
# "Agent keys", "Token endpoint") through `creto nhi key ...` and
# `creto nhi token exchange`, which runs the endpoint logic the gateway
# serves at POST /oauth/token on one form body.  Client assertions are built
# by the npm `jose` package (an independent JOSE implementation) with keys
# `creto key gen` made; the access tokens that come back resolve with
# `creto nhi resolve` and verify with jose.  Every refusal asserts exit 1,
# the RFC 6749 error in the answer and the rule on stderr.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"

: "${CRETO_TEST_BIN:?build with -DCRETO_TESTS=ON (build/creto-test)}"
[ -x "$CRETO_TEST_BIN" ] || skip "build/creto-test missing"
command -v node >/dev/null || skip "node not installed"
PEER=$CRETO_BUILD_DIR/jose-peer
mkdir -p "$PEER"
cp "$CRETO_SRC_DIR/tests/integration/jose/package.json" "$CRETO_SRC_DIR/tests/integration/jose/peer.mjs" "$PEER/"
if [ ! -f "$PEER/node_modules/jose/package.json" ]; then
  command -v npm >/dev/null || skip "npm not installed"
  (cd "$PEER" && npm install --no-audit --no-fund --silent >"$T/npm.log" 2>&1) ||
    skip "npm install jose failed: $(tail -n 2 "$T/npm.log")"
fi
peer() { node "$PEER/peer.mjs" "$@"; }

CRETO=$CRETO_TEST_BIN
NOW=1900000000
export CRETO_TEST_NOW=$NOW
URL=https://creto.enclave.test
DB=$T/nhi.db
STATE=$T/jti.state
nhi_make_key "$T/issuer" ed25519
nhi_make_key "$T/a-ed" ed25519
nhi_make_key "$T/a-ec" p256
nhi_make_key "$T/b-ec" p256
nhi_make_key "$T/stranger" ed25519

# ---- agent keys ----
expect 0 --err "schema 3" -- "$CRETO" nhi init --db "$DB"
expect 0 --err "with its keys" -- "$CRETO" nhi add --db "$DB" --id agent-a --name "Agent A" \
  --scope model:llama-3.1-8b-instruct --scope tool:search --pub "$T/a-ed.pub"
ED_KID=$OUT
expect 0 -- "$CRETO" nhi key add --db "$DB" agent-a --pub "$T/a-ec.pub"
EC_KID=$OUT
[ ${#EC_KID} = 16 ] && ok || fail "key add: kid '$EC_KID'"
# a PEM SubjectPublicKeyInfo (as openssl writes it) works too
openssl pkey -in "$T/b-ec.pem" -pubout -out "$T/b-ec.spki.pem" 2>/dev/null
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-b --name "Agent B" --scope tool:search --pub "$T/b-ec.spki.pem"
expect 0 --out '"alg": "ES256"' -- "$CRETO" nhi key list --db "$DB" agent-a --json
ED_KID=$(node -e 'const k=JSON.parse(process.argv[1]).keys; console.log(k.find(x=>x.alg==="EdDSA").kid)' "$OUT")
expect 0 --out "agent-b" -- "$CRETO" nhi key list --db "$DB"
# refusals: the same key again, another agent's key, a private key never stored
expect 1 --err "already registered" -- "$CRETO" nhi key add --db "$DB" agent-b --pub "$T/a-ed.pub"
expect 1 --err "unknown agent 'nobody'" -- "$CRETO" nhi key add --db "$DB" nobody --pub "$T/stranger.pub"
expect 2 --err "exactly one --pub" -- "$CRETO" nhi key add --db "$DB" agent-a

# ---- the endpoint ----
"$CRETO" nhi jwks --key "$T/issuer.key" -o "$T/issuer-jwks.json" --quiet
AT=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer
# assertion PEM ALG KID SUB AUD IAT EXP JTI -> a compact JWS made by jose
assertion() {
  peer sign "$1" "$2" "$3" "{\"iss\":\"$4\",\"sub\":\"$4\",\"aud\":\"$5\",\"iat\":$6,\"exp\":$7,\"jti\":\"$8\"}"
}
# form FILE ASSERTION [EXTRA]
form() { printf 'grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s%s' "$AT" "$2" "${3:-}" >"$1"; }
exchange() {
  "$CRETO" nhi token exchange --db "$DB" --key "$T/issuer.key" --issuer-url "$URL" --replay-state "$STATE" \
    --form-file "$@"
}

# A first start without replay state: assertions made before start + 60 s
# are refused, so nothing accepted before a crash can be replayed.
form "$T/f0" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) j0)"
expect 1 --err "rule issued_before_start" --out '"error":"invalid_client"' -- exchange "$T/f0"
[ -f "$STATE" ] && ok || fail "replay state not written at close"
NOW=$((NOW + 120))
export CRETO_TEST_NOW=$NOW

# EdDSA, every scope by default
form "$T/f1" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) j1)"
expect 0 --out '"token_type":"Bearer"' -- exchange "$T/f1"
TOK=$(node -e 'console.log(JSON.parse(process.argv[1]).access_token)' "$OUT")
node -e 'const r=JSON.parse(process.argv[1]); if (r.expires_in!==900||r.scope!=="model:llama-3.1-8b-instruct tool:search") process.exit(1)' "$OUT" &&
  ok || fail "token response: $OUT"
# the access token is the gateway's usual token: creto resolves it, jose verifies it
expect 0 --out '"sub": "agent-a"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/issuer-jwks.json" --token-file - <<<"$TOK"
expect 0 --out '"sub":"agent-a"' -- peer verify "$T/issuer-jwks.json" "$TOK" creto-airgap creto-gateway $((NOW + 1))
# replayed: the very same form again
expect 1 --err "rule replay" --out '"error":"invalid_client"' -- exchange "$T/f1"
# ES256 with a scope asked for, through standard input, aud = the issuer identifier
form "$T/f2" "$(assertion "$T/a-ec.pem" ES256 "$EC_KID" agent-a "$URL" $NOW $((NOW + 60)) j2)" "&scope=tool%3Asearch"
expect 0 --out '"scope":"tool:search"' -- exchange - <"$T/f2"
# agent-b's key from a PEM SPKI
B_KID=$("$CRETO" nhi key list --db "$DB" agent-b --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).keys[0].kid))')
form "$T/f3" "$(assertion "$T/b-ec.pem" ES256 "$B_KID" agent-b "$URL/oauth/token" $NOW $((NOW + 60)) j3)"
expect 0 --out '"scope":"tool:search"' -- exchange "$T/f3"

# ---- refusals ----
refuse() { # RULE ERROR FORMFILE
  expect 1 --err "rule $1" --out "\"error\":\"$2\"" -- exchange "$3"
}
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "https://other.test/oauth/token" $NOW $((NOW + 60)) r1)"
refuse audience invalid_client "$T/r"
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $((NOW - 400)) $((NOW - 200)) r2)"
refuse expired invalid_client "$T/r"
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 3600)) r3)"
refuse lifetime invalid_client "$T/r"
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r4)" "&scope=model%3Aother"
refuse scope invalid_scope "$T/r"
# alg confusion: an ES256 assertion naming the agent's Ed25519 key
form "$T/r" "$(assertion "$T/a-ec.pem" ES256 "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r5)"
refuse alg_mismatch invalid_client "$T/r"
# HS256 with the public key as the secret, and alg none, crafted by hand
printf '%s' "$(cat "$T/a-ed.pub")" >"$T/hs.secret"
form "$T/r" "$(peer craft - "{\"alg\":\"HS256\",\"kid\":\"$ED_KID\"}" "{\"iss\":\"agent-a\",\"sub\":\"agent-a\",\"aud\":\"$URL\",\"iat\":$NOW,\"exp\":$((NOW + 60)),\"jti\":\"r6\"}" "$T/hs.secret")"
refuse assertion_malformed invalid_client "$T/r"
# a key of nobody's claiming to be agent-a
STRANGER_KID=$("$CRETO" nhi jwks --key "$T/stranger.pub" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).keys[0].kid))')
form "$T/r" "$(assertion "$T/stranger.pem" EdDSA "$STRANGER_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r7)"
refuse unknown_key invalid_client "$T/r"
# removed key: the ES256 key worked above; gone now
expect 0 -- "$CRETO" nhi key remove --db "$DB" agent-a "$EC_KID"
form "$T/r" "$(assertion "$T/a-ec.pem" ES256 "$EC_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r8)"
refuse unknown_key invalid_client "$T/r"
expect 1 --err "has no key" -- "$CRETO" nhi key remove --db "$DB" agent-a "$EC_KID"
# form problems: missing field, duplicated field, oversized body, wrong content type
A9=$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r9)
printf 'client_assertion_type=%s&client_assertion=%s' "$AT" "$A9" >"$T/r"
refuse grant_type_missing invalid_request "$T/r"
printf 'grant_type=client_credentials&client_assertion=%s' "$A9" >"$T/r"
refuse assertion_missing invalid_client "$T/r"
form "$T/r" "$A9" "&grant_type=client_credentials"
refuse form invalid_request "$T/r"
form "$T/r" "$A9" "&client_assertion=$A9"
refuse form invalid_request "$T/r"
form "$T/r" "$A9" "&pad=$(head -c 13000 /dev/zero | tr '\0' a)"
refuse body_size invalid_request "$T/r"
form "$T/r" "$A9"
expect 1 --err "rule content_type" -- exchange "$T/r" --content-type application/json
# suspended, then revoked agent
expect 0 -- "$CRETO" nhi suspend --db "$DB" agent-a
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r10)"
refuse agent_status unauthorized_client "$T/r"
expect 0 -- "$CRETO" nhi revoke --db "$DB" agent-a
form "$T/r" "$(assertion "$T/a-ed.pem" EdDSA "$ED_KID" agent-a "$URL/oauth/token" $NOW $((NOW + 60)) r11)"
refuse agent_status unauthorized_client "$T/r"
# usage: the replay state is required (no replay protection without it)
expect 2 --err "--replay-state" -- "$CRETO" nhi token exchange --db "$DB" --key "$T/issuer.key" --issuer-url "$URL" --form-file "$T/r"

# a first start can begin with an empty state (no warm-up); never twice
expect 0 --err "empty replay state" -- "$CRETO" nhi token replay-init --replay-state "$T/first.state"
expect 2 --err "already exists" -- "$CRETO" nhi token replay-init --replay-state "$T/first.state"
form "$T/f4" "$(assertion "$T/b-ec.pem" ES256 "$B_KID" agent-b "$URL/oauth/token" $NOW $((NOW + 60)) j4)"
expect 0 --out '"access_token"' -- "$CRETO" nhi token exchange --db "$DB" --key "$T/issuer.key" --issuer-url "$URL" \
  --replay-state "$T/first.state" --form-file "$T/f4"

# ---- backup carries the keys ----
hsm_env
softhsm2-util --init-token --free --label nhi --so-pin 1234 --pin 5678 >/dev/null
printf '5678' >"$T/pin"
pkcs11-tool --module "$HSM_MODULE" --token-label nhi --login --pin 5678 --keygen --key-type AES:32 \
  --sensitive --usage-wrap --label nhi-backup-key >/dev/null 2>&1
WRAP="pkcs11:token=nhi;object=nhi-backup-key?module-path=$HSM_MODULE&pin-source=file:$T/pin"
expect 0 -- "$CRETO" nhi backup --db "$DB" --wrap-key "$WRAP" -o "$T/nhi.bak"
expect 0 --out '"format_version": 2' -- "$CRETO" nhi restore "$T/nhi.bak" --wrap-key "$WRAP" --db "$T/restored.db" --json
expect 0 --out "$B_KID" -- "$CRETO" nhi key list --db "$T/restored.db" agent-b
finish
