#!/bin/bash
# test_nhi_jose.sh - interop with an independent JOSE implementation, the
# npm `jose` package run by Node.js, both ways:
#   tokens issued by creto (EdDSA, ES256) verify with jose against the JWKS
#   from `creto nhi jwks`; tokens signed by jose with the same issuer key
#   (PKCS#8 on the jose side) resolve with `creto nhi resolve`.
# jose is installed into the build tree when missing (never committed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"

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

DB=$T/nhi.db
expect 0 -- "$CRETO" nhi init --db "$DB"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-a --name "Agent A" --scope model:llama-3.1-70b-instruct --scope tool:search
nhi_make_key "$T/ed" ed25519
nhi_make_key "$T/ec" p256
expect 0 -- "$CRETO" nhi jwks --key "$T/ed.key" --key "$T/ec.key" -o "$T/jwks.json"
EDKID=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$T/jwks.json')).keys[0].kid)")
ECKID=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$T/jwks.json')).keys[1].kid)")

# creto -> jose
for k in ed ec; do
  TOK=$("$CRETO" nhi token issue --db "$DB" --agent agent-a --key "$T/$k.key" --ttl 5m --scope tool:search)
  expect 0 --out '"sub":"agent-a"' -- peer verify "$T/jwks.json" "$TOK" creto-airgap creto-gateway
  expect 0 --out '"scope":"tool:search"' -- peer verify "$T/jwks.json" "$TOK" creto-airgap creto-gateway
  # jose refuses what it must refuse too: wrong audience, a flipped signature bit
  expect 1 --err "aud" -- peer verify "$T/jwks.json" "$TOK" creto-airgap other
  SIG=${TOK##*.}
  C=${SIG:10:1}; [ "$C" = A ] && R=B || R=A
  BAD="${TOK%.*}.${SIG:0:10}$R${SIG:11}"
  expect 1 --err "signature" -- peer verify "$T/jwks.json" "$BAD" creto-airgap creto-gateway
  expect 1 --err "token signature (key" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$BAD"
  # Non-canonical base64url (nonzero trailing bits in the last signature
  # character): jose's decoder ignores those bits and accepts; creto refuses,
  # so one token has exactly one encoding.
  # (64 bytes: the last of 86 characters carries 2 bits, so it is A, Q, g or w.)
  L=${SIG: -1}; N=$(echo "$L" | tr 'AQgw' 'BRhx')
  NC="${TOK%?}$N"
  expect 0 -- peer verify "$T/jwks.json" "$NC" creto-airgap creto-gateway
  expect 1 --err "bad base64url" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$NC"
done

# jose -> creto
NOW=$(date +%s)
CLAIMS="{\"iss\":\"creto-airgap\",\"sub\":\"agent-a\",\"aud\":\"creto-gateway\",\"iat\":$NOW,\"nbf\":$NOW,\"exp\":$((NOW + 300)),\"jti\":\"jose-1\",\"scope\":\"model:llama-3.1-70b-instruct\"}"
TOK=$(peer sign "$T/ed.pem" EdDSA "$EDKID" "$CLAIMS")
expect 0 --out '"alg": "EdDSA"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
expect 0 --out '"jti": "jose-1"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
TOK=$(peer sign "$T/ec.pem" ES256 "$ECKID" "$CLAIMS")
expect 0 --out '"alg": "ES256"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
# aud as an array (jose allows it), accepted when it includes ours
CLAIMS2="{\"iss\":\"creto-airgap\",\"sub\":\"agent-a\",\"aud\":[\"x\",\"creto-gateway\"],\"iat\":$NOW,\"exp\":$((NOW + 300)),\"jti\":\"jose-2\"}"
expect 0 --out '"sub": "agent-a"' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$(peer sign "$T/ec.pem" ES256 "$ECKID" "$CLAIMS2")"
# jose-signed but wrong: kid naming the other key (alg/key mismatch), unknown agent, expired
expect 1 --err "alg ES256 does not match key $EDKID" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$(peer sign "$T/ec.pem" ES256 "$EDKID" "$CLAIMS")"
expect 1 --err "unknown agent 'agent-z'" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$(peer sign "$T/ed.pem" EdDSA "$EDKID" "${CLAIMS/agent-a/agent-z}")"
OLD="{\"iss\":\"creto-airgap\",\"sub\":\"agent-a\",\"aud\":\"creto-gateway\",\"iat\":$((NOW - 7200)),\"exp\":$((NOW - 3600)),\"jti\":\"jose-3\"}"
expect 1 --err "token expired at" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$(peer sign "$T/ed.pem" EdDSA "$EDKID" "$OLD")"
# duplicate member crafted on the jose side (node:crypto signer), signed correctly
DUP="{\"iss\":\"creto-airgap\",\"sub\":\"agent-a\",\"sub\":\"agent-a\",\"aud\":\"creto-gateway\",\"iat\":$NOW,\"exp\":$((NOW + 300)),\"jti\":\"d\"}"
expect 1 --err "duplicate JSON key" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$(peer craft "$T/ec.pem" "{\"alg\":\"ES256\",\"kid\":\"$ECKID\"}" "$DUP")"
finish
