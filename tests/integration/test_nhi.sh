#!/bin/bash
# test_nhi.sh - the NHI store CLI and `creto nhi resolve` with every
# rejection the token profile names (docs/nhi.md), each asserting exit 1 and
# the reason.  Tokens are issued by creto and, for the malformed ones,
# crafted here with openssl (an independent Ed25519 signer).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/jose/nhi_keys.sh"

# Token times are judged against a pinned clock: only the test program
# (build/creto-test) honours CRETO_TEST_NOW; build/creto ignores it (checked
# at the end).
: "${CRETO_TEST_BIN:?build with -DCRETO_TESTS=ON (build/creto-test)}"
[ -x "$CRETO_TEST_BIN" ] || skip "build/creto-test missing"
CRETO_RELEASE=$CRETO
CRETO=$CRETO_TEST_BIN
NOW=1900000000 # 2030-03-17T17:46:40Z
export CRETO_TEST_NOW=$NOW
DB=$T/nhi.db

# ---- store ----
expect 0 --err "schema 3" -- "$CRETO" nhi init --db "$DB" --issuer creto-test
[ -z "$OUT" ] && ok || fail "init: status line on stdout: $OUT"
expect 2 --err "already exists" -- "$CRETO" nhi init --db "$DB"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-1 --name "Agent One" \
  --scope model:llama-3.1-70b-instruct --scope tool:search
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-2 --name "Agent Two" --scope tool:search
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-3 --name "Suspended" --scope tool:search
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-old --name "Expired agent" --scope tool:search \
  --not-after 2029-01-01
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-future --name "Not yet" --scope tool:search \
  --not-before 2031-01-01
expect 1 --err "agent agent-1 already exists" -- "$CRETO" nhi add --db "$DB" --id agent-1 --name X --scope a
expect 1 --err "agent id 'bad id'" -- "$CRETO" nhi add --db "$DB" --id "bad id" --name X --scope a
expect 1 --err "scope 'a\"b'" -- "$CRETO" nhi add --db "$DB" --id agent-9 --name X --scope 'a"b'
expect 1 --err "given twice" -- "$CRETO" nhi add --db "$DB" --id agent-9 --name X --scope a --scope a
expect 2 --err "--scope" -- "$CRETO" nhi add --db "$DB" --id agent-9 --name X
expect 2 --err "--not-after" -- "$CRETO" nhi add --db "$DB" --id agent-9 --name X --scope a --not-after tomorrow
expect 0 --out '"status": "suspended"' -- "$CRETO" nhi suspend --db "$DB" agent-3 --json
expect 0 --out "agent-1" -- "$CRETO" nhi list --db "$DB"
expect 0 --out '"id": "agent-3"' -- "$CRETO" nhi list --db "$DB" --status suspended --json
[ "$(echo "$OUT" | grep -c '"id"')" = 1 ] && ok || fail "list --status suspended: $OUT"
expect 0 --out '"model:llama-3.1-70b-instruct"' -- "$CRETO" nhi show --db "$DB" agent-1 --json
expect 1 --err "unknown agent 'nobody'" -- "$CRETO" nhi show --db "$DB" nobody
# a row edited behind creto's back with a scope list longer than add()
# allows is refused, never cut down to a shorter list
cp "$DB" "$T/edited.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE agents SET scopes = ? WHERE id = 'agent-2'\", ('tool:search ' + 'x' * 3000,)); c.commit()" "$T/edited.db"
expect 1 --err "agent agent-2: a column is longer than allowed in store" -- "$CRETO" nhi show --db "$T/edited.db" agent-2
expect 1 --err "unknown agent 'nobody'" -- "$CRETO" nhi revoke --db "$DB" nobody
# a store carrying a trigger that turns a revoked agent back to active is
# refused by every command, so `nhi revoke` can never say "revoked" falsely
cp "$DB" "$T/trig.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"CREATE TRIGGER unrevoke AFTER UPDATE OF status ON agents WHEN NEW.status = 'revoked' BEGIN UPDATE agents SET status = 'active' WHERE id = NEW.id; END\"); c.commit()" "$T/trig.db"
expect 1 --err "store schema: unexpected trigger 'unrevoke'" -- "$CRETO" nhi revoke --db "$T/trig.db" agent-2
expect 1 --err "unexpected trigger 'unrevoke'" -- "$CRETO" nhi list --db "$T/trig.db"
expect 1 --err "unexpected trigger 'unrevoke'" -- "$CRETO" nhi show --db "$T/trig.db" agent-2
echo "not a database, just text padded out to more than a page of bytes $(head -c 5000 /dev/zero | tr '\0' x)" >"$T/junk.db"
expect 1 --err "junk.db" -- "$CRETO" nhi list --db "$T/junk.db"
sqlite3 "$T/other.db" "CREATE TABLE t(x)" 2>/dev/null || python3 -c "import sqlite3; sqlite3.connect('$T/other.db').execute('CREATE TABLE t(x)')"
expect 1 --err "not an NHI store" -- "$CRETO" nhi list --db "$T/other.db"

# ---- keys, JWKS ----
nhi_make_key "$T/ed" ed25519
nhi_make_key "$T/ec" p256
nhi_make_key "$T/rogue" ed25519
expect 0 -- "$CRETO" nhi jwks --key "$T/ed.key" --key "$T/ec.key" -o "$T/jwks.json"
expect 0 --out '"kty": "OKP"' -- cat "$T/jwks.json"
EDKID=$(python3 -c "import json,sys; print(json.load(open('$T/jwks.json'))['keys'][0]['kid'])")
ECKID=$(python3 -c "import json,sys; print(json.load(open('$T/jwks.json'))['keys'][1]['kid'])")
[ ${#EDKID} = 16 ] && ok || fail "kid '$EDKID'"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-pinned --name "Pinned to EC" --scope tool:search \
  --issuer-kid "$ECKID"

issue() { "$CRETO" nhi token issue --db "$DB" "$@"; }
resolve() { "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" "$@"; }

# ---- valid tokens ----
TOK=$(issue --agent agent-1 --key "$T/ed.key" --ttl 1h)
expect 0 --out '"sub": "agent-1"' -- resolve --token-file - <<<"$TOK"
expect 0 --out '"alg": "EdDSA"' -- resolve --token-file - --aud creto-gateway <<<"$TOK"
TOKEC=$(issue --agent agent-1 --key "$T/ec.key" --ttl 10m --scope tool:search)
expect 0 --out '"alg": "ES256"' -- resolve --token-file - <<<"$TOKEC"
echo "$TOKEC" >"$T/tok"
expect 0 --out '"tool:search"' -- resolve --token-file "$T/tok"
expect 0 --out '"sub": "agent-pinned"' -- resolve --token-file - <<<"$(issue --agent agent-pinned --key "$T/ec.key")"
expect 0 --out '"sub": "agent-1"' -- resolve --token-file - --aud other <<<"$(issue --agent agent-1 --key "$T/ed.key" --aud other)"

# ---- times (skew 60 s) ----
expect 0 -- env CRETO_TEST_NOW=$((NOW + 3600 + 60)) "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
expect 1 --err "token expired at" -- env CRETO_TEST_NOW=$((NOW + 3600 + 61)) "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
expect 0 -- env CRETO_TEST_NOW=$((NOW - 60)) "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"
expect 1 --err "token not valid before" -- env CRETO_TEST_NOW=$((NOW - 61)) "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK"

# ---- claims wrong in turn ----
expect 1 --err "aud: does not include 'creto-gateway'" -- resolve --token-file - <<<"$(issue --agent agent-1 --key "$T/ed.key" --aud elsewhere)"
expect 1 --err "iss: 'someone-else' is not the issuer 'creto-test'" -- resolve --token-file - <<<"$(issue --agent agent-1 --key "$T/ed.key" --issuer someone-else)"
expect 1 --err "unknown agent 'ghost'" -- resolve --token-file - <<<"$("$CRETO" nhi token issue --agent ghost --key "$T/ed.key" --issuer creto-test)"
expect 1 --err "agent agent-3 is suspended" -- resolve --token-file - <<<"$("$CRETO" nhi token issue --agent agent-3 --key "$T/ed.key" --issuer creto-test)"
expect 1 --err "agent agent-old expired at 2029-01-01" -- resolve --token-file - <<<"$("$CRETO" nhi token issue --agent agent-old --key "$T/ed.key" --issuer creto-test)"
expect 1 --err "agent agent-future not valid before 2031-01-01" -- resolve --token-file - <<<"$("$CRETO" nhi token issue --agent agent-future --key "$T/ed.key" --issuer creto-test)"
expect 1 --err "key $EDKID is not its issuer key $ECKID" -- resolve --token-file - <<<"$(issue --agent agent-pinned --key "$T/ed.key")"
expect 1 --err "scope 'tool:shell' not granted to agent agent-2" -- resolve --token-file - <<<"$("$CRETO" nhi token issue --agent agent-2 --key "$T/ed.key" --issuer creto-test --scope tool:shell)"
expect 1 --err "scope 'tool:shell' not granted" -- issue --agent agent-2 --key "$T/ed.key" --scope tool:shell
expect 1 --err "agent agent-3 is suspended" -- issue --agent agent-3 --key "$T/ed.key"

# ---- crafted tokens (openssl Ed25519 signer) ----
b64u() { basenc --base64url -w0 | tr -d '='; }
# craft HEADER PAYLOAD [KEY|-]: header and payload verbatim, Ed25519 signature by KEY
craft() {
  local input sig=""
  input="$(printf '%s' "$1" | b64u).$(printf '%s' "$2" | b64u)"
  if [ "${3:-$T/ed.pem}" != - ]; then
    printf '%s' "$input" >"$T/.craft"
    sig=$(openssl pkeyutl -sign -rawin -in "$T/.craft" -inkey "${3:-$T/ed.pem}" | b64u)
  fi
  printf '%s.%s' "$input" "$sig"
}
H="{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"$EDKID\"}"
claims() { # claims [extra members...]: a valid payload for agent-1, members overridable
  local iss=creto-test sub=agent-1 aud=creto-gateway iat=$NOW exp=$((NOW + 600)) jti=j1 extra=""
  for kv in "$@"; do
    case "$kv" in
      iss=*) iss=${kv#iss=} ;; sub=*) sub=${kv#sub=} ;; aud=*) aud=${kv#aud=} ;;
      iat=*) iat=${kv#iat=} ;; exp=*) exp=${kv#exp=} ;; jti=*) jti=${kv#jti=} ;;
      +*) extra="$extra,${kv#+}" ;;
    esac
  done
  printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%s,"exp":%s,"jti":"%s"%s}' \
    "$iss" "$sub" "$aud" "$iat" "$exp" "$jti" "$extra"
}
expect 0 --out '"sub": "agent-1"' -- resolve --token-file - <<<"$(craft "$H" "$(claims)")"
expect 0 --out '"sub": "agent-1"' -- resolve --token-file - --aud x <<<"$(craft "$H" "$(claims aud=x '+"nbf":1')")"
expect 1 --err "alg 'none' refused" -- resolve --token-file - <<<"$(craft '{"alg":"none","kid":"'"$EDKID"'"}' "$(claims)" -)"
expect 1 --err "alg 'NONE' refused" -- resolve --token-file - <<<"$(craft '{"alg":"NONE","kid":"'"$EDKID"'"}' "$(claims)")"
# alg confusion: HS256 keyed with the public key bytes
HS="$(printf '{"alg":"HS256","kid":"%s"}' "$EDKID" | b64u).$(claims | b64u)"
HSSIG=$(printf '%s' "$HS" | openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$T/jwks.json")" -binary | b64u)
expect 1 --err "alg 'HS256' refused" -- resolve --token-file - <<<"$HS.$HSSIG"
expect 1 --err "alg 'RS256' not supported" -- resolve --token-file - <<<"$(craft '{"alg":"RS256","kid":"'"$EDKID"'"}' "$(claims)")"
expect 1 --err "alg ES256 does not match key $EDKID (ed25519)" -- resolve --token-file - <<<"$(craft '{"alg":"ES256","kid":"'"$EDKID"'"}' "$(claims)")"
expect 1 --err "alg EdDSA does not match key $ECKID (ecdsa-p256)" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","kid":"'"$ECKID"'"}' "$(claims)")"
expect 1 --err "unknown key id 'ffffffffffffffff'" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","kid":"ffffffffffffffff"}' "$(claims)")"
expect 1 --err "kid missing" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA"}' "$(claims)")"
expect 1 --err "token signature (key $EDKID)" -- resolve --token-file - <<<"$(craft "$H" "$(claims)" "$T/rogue.pem")"
expect 1 --err "'jwk' refused" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","kid":"'"$EDKID"'","jwk":{}}' "$(claims)")"
expect 1 --err "'crit' refused" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","kid":"'"$EDKID"'","crit":["exp"]}' "$(claims)")"
expect 1 --err "typ must be 'JWT'" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","kid":"'"$EDKID"'","typ":"JOSE+JSON"}' "$(claims)")"
# duplicate JSON keys: header and payload (signed correctly, so only the duplicate can refuse)
expect 1 --err "token header: duplicate JSON key" -- resolve --token-file - <<<"$(craft '{"alg":"EdDSA","alg":"EdDSA","kid":"'"$EDKID"'"}' "$(claims)")"
expect 1 --err "token payload: duplicate JSON key" -- resolve --token-file - <<<"$(craft "$H" "$(claims '+"sub":"agent-2"')")"
expect 1 --err "token payload: invalid JSON" -- resolve --token-file - <<<"$(craft "$H" '{"sub":')"
expect 1 --err "token payload: not a JSON object" -- resolve --token-file - <<<"$(craft "$H" '[1,2]')"
# each claim wrong in turn (signed correctly)
expect 1 --err "iss: 'evil' is not the issuer" -- resolve --token-file - <<<"$(craft "$H" "$(claims iss=evil)")"
expect 1 --err "unknown agent 'nobody'" -- resolve --token-file - <<<"$(craft "$H" "$(claims sub=nobody)")"
expect 1 --err "sub: 'bad sub' is not an agent id" -- resolve --token-file - <<<"$(craft "$H" "$(claims 'sub=bad sub')")"
expect 1 --err "aud: does not include" -- resolve --token-file - <<<"$(craft "$H" "$(claims aud=nobody)")"
expect 1 --err "token expired at" -- resolve --token-file - <<<"$(craft "$H" "$(claims exp=$((NOW - 61)) iat=$((NOW - 600)))")"
expect 1 --err "iat: " -- resolve --token-file - <<<"$(craft "$H" "$(claims iat=$((NOW + 120)) exp=$((NOW + 600)))")"
expect 1 --err "exp: not after iat" -- resolve --token-file - <<<"$(craft "$H" "$(claims exp=$NOW)")"
expect 1 --err "token not valid before" -- resolve --token-file - <<<"$(craft "$H" "$(claims '+"nbf":'$((NOW + 61)))")"
expect 1 --err "exp: not an integer" -- resolve --token-file - <<<"$(craft "$H" "$(claims 'exp="soon"')")"
expect 1 --err "jti: missing" -- resolve --token-file - <<<"$(craft "$H" '{"iss":"creto-test","sub":"agent-1","aud":"creto-gateway","iat":'$NOW',"exp":'$((NOW + 60))'}')"
expect 1 --err "exp: missing" -- resolve --token-file - <<<"$(craft "$H" '{"iss":"creto-test","sub":"agent-1","aud":"creto-gateway","iat":'$NOW',"jti":"x"}')"
expect 1 --err "scope: bad scope" -- resolve --token-file - <<<"$(craft "$H" "$(claims '+"scope":"a  b"')")"
expect 1 --err "scope 'tool:shell' not granted" -- resolve --token-file - <<<"$(craft "$H" "$(claims '+"scope":"tool:search tool:shell"')")"
# malformed encodings and sizes
expect 1 --err "token header: bad base64url" -- resolve --token-file - <<<"eyJhbGciOiJFZERTQSJ9=.e30.AAAA"
expect 1 --err "bad base64url" -- resolve --token-file - <<<"$(craft "$H" "$(claims)" | sed 's/\.\([^.]*\)$/.\1+/')"
expect 1 --err "token payload: bad base64url" -- resolve --token-file - <<<"$(craft "$H" "$(claims)" | awk -F. '{print $1".*"$2"."$3}')"
expect 1 --err "want 3 dot-separated segments" -- resolve --token-file - <<<"abc.def"
expect 1 --err "more than 3 segments" -- resolve --token-file - <<<"a.b.c.d.e"
expect 1 --err "signature: empty" -- resolve --token-file - <<<"$(craft "$H" "$(claims)" -)"
expect 1 --err "signature: 48 bytes" -- resolve --token-file - <<<"$(craft "$H" "$(claims)" | sed 's/\.[^.]*$//').$(head -c 48 /dev/zero | b64u)"
BIG=$(head -c 9000 /dev/zero | tr '\0' a)
expect 1 --err "over the 8192-byte cap" -- resolve --token-file - <<<"$(craft "$H" "$(claims "+\"pad\":\"$BIG\"")")"
expect 1 --err "NUL" -- bash -c "printf 'a.b\0.c' >'$T/nul'; '$CRETO' nhi resolve --db '$DB' --jwks '$T/jwks.json' --token-file '$T/nul'"

# ---- JWKS strictness ----
cp "$T/jwks.json" "$T/bad.json"
python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
j = json.load(open(t + '/jwks.json'))
k = dict(j['keys'][0]); k['kid'] = '0000000000000000'
json.dump({'keys': [k]}, open(t + '/wrongkid.json', 'w'))
k = dict(j['keys'][0]); k['d'] = k['x']
json.dump({'keys': [k]}, open(t + '/private.json', 'w'))
json.dump({'keys': [j['keys'][0], j['keys'][0]]}, open(t + '/dupkid.json', 'w'))
json.dump({'keys': [{'kty': 'RSA', 'kid': 'r', 'n': 'AQAB', 'e': 'AQAB'}]}, open(t + '/rsa.json', 'w'))
open(t + '/dupkey.json', 'w').write('{"keys":[],"keys":[]}')
EOF
TOK=$(issue --agent agent-1 --key "$T/ed.key")
expect 1 --err "is not the key id" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/wrongkid.json" --token-file - <<<"$TOK"
expect 1 --err "private or secret material" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/private.json" --token-file - <<<"$TOK"
expect 1 --err "appears twice" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/dupkid.json" --token-file - <<<"$TOK"
expect 1 --err "kty 'RSA' not supported" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/rsa.json" --token-file - <<<"$TOK"
expect 1 --err "duplicate JSON key" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/dupkey.json" --token-file - <<<"$TOK"

# ---- revocation is final; --json errors ----
expect 0 -- resolve --token-file - <<<"$TOK"
expect 0 --err "agent agent-1 revoked" -- "$CRETO" nhi revoke --db "$DB" agent-1
[ -z "$OUT" ] && ok || fail "revoke: status line on stdout: $OUT"
expect 1 --err "agent agent-1 is revoked" -- resolve --token-file - <<<"$TOK"
expect 1 --out '"ok": false' -- resolve --token-file - --json <<<"$TOK"
expect 1 --err "revoked (final)" -- "$CRETO" nhi suspend --db "$DB" agent-1
expect 0 -- "$CRETO" nhi resume --db "$DB" agent-3
expect 0 --out '"sub": "agent-3"' -- resolve --token-file - <<<"$(issue --agent agent-3 --key "$T/ed.key")"
expect 2 --err "give --db FILE or --backup" -- "$CRETO" nhi resolve --jwks "$T/jwks.json" --token-file - <<<x
# a token is never taken from argv
expect 2 --err "never taken from the command line" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token "$TOK"
"$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token "$TOK" 2>&1 | grep -q "${TOK:0:40}" && fail "the token was echoed"
expect 2 --err "give --token-file FILE, or --token-file -" -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json"
expect 2 --err "unknown or misplaced option" -- "$CRETO" nhi list --db "$DB" --wrap-key x

# ---- scopes: one per --scope; a space is refused like a tab, never split ----
expect 1 --err "scope 'a b': want 1..256 printable characters, no space" -- \
  "$CRETO" nhi add --db "$DB" --id agent-sp --name X --scope "a b"
expect 1 --err "': want 1..256 printable characters, no space" -- \
  "$CRETO" nhi add --db "$DB" --id agent-sp --name X --scope "a	b"
expect 1 --err "unknown agent 'agent-sp'" -- "$CRETO" nhi show --db "$DB" agent-sp
expect 1 --err "scope 'tool:search model:x'" -- issue --agent agent-2 --key "$T/ed.key" --scope "tool:search model:x"

# ---- one CLI convention: --json everywhere, usage errors "creto: nhi CMD: ...",
# status lines on stderr, --quiet ----
expect 2 --err "creto: nhi show: one agent ID expected" -- "$CRETO" nhi show --db "$DB"
expect 2 --err "creto: nhi add: --db is required" -- "$CRETO" nhi add --id x --name y --scope z
expect 2 --err "creto: nhi token: want 'token issue' or 'token exchange'" -- "$CRETO" nhi token mint
expect 2 --err "creto: nhi token issue: --ttl 'forever'" -- issue --agent agent-2 --key "$T/ed.key" --ttl forever
expect 2 --err "creto: nhi list: --status 'gone': want active, suspended or revoked" -- "$CRETO" nhi list --db "$DB" --status gone
expect 2 --out '"status": "usage"' -- "$CRETO" nhi show --db "$DB" --json
expect 2 --out '"error": "nhi list: unknown or misplaced option' -- "$CRETO" nhi list --db "$DB" --wrap-key x --json
expect 2 --out '"code": 2' -- "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --json
expect 0 --out '"keys"' -- "$CRETO" nhi jwks --key "$T/ed.key" --json
expect 0 --err "wrote $T/jwks2.json: 1 keys" -- "$CRETO" nhi jwks --key "$T/ed.key" -o "$T/jwks2.json"
expect 0 --out '"output"' -- "$CRETO" nhi jwks --key "$T/ed.key" -o "$T/jwks3.json" --json --quiet
[ -z "$ERR" ] && ok || fail "jwks --quiet: $ERR"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-q --name Q --scope a --quiet
# --quiet silences status lines, not the warning that nothing was audited
[ "$OUT$ERR" = "creto: warning: nhi add: no --audit DIR: nothing was recorded" ] && ok || fail "add --quiet printed: $OUT$ERR"
expect 0 --out '"status": "suspended"' -- "$CRETO" nhi suspend --db "$DB" agent-q --json --quiet
[ "$ERR" = "creto: warning: nhi suspend: no --audit DIR: nothing was recorded" ] && ok || fail "suspend --json --quiet: $ERR"
expect 0 --err "token for agent agent-2" -- issue --agent agent-2 --key "$T/ed.key" -o "$T/tok2"
[ -z "$OUT" ] && ok || fail "token issue -o: stdout: $OUT"
expect 0 --out '"ok": true' -- "$CRETO" nhi init --db "$T/other2.db" --json

# ---- the clock: build/creto ignores CRETO_TEST_NOW (a token issued at the
# pinned 2030 time is not yet valid for it, whatever the variable says) ----
TOK30=$(issue --agent agent-2 --key "$T/ed.key" --ttl 1h)
expect 0 -- env CRETO_TEST_NOW=$NOW "$CRETO" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK30"
expect 1 --err "token not valid before 2030-03-17T17:46:40Z" -- env CRETO_TEST_NOW=$NOW "$CRETO_RELEASE" nhi resolve --db "$DB" --jwks "$T/jwks.json" --token-file - <<<"$TOK30"

finish
