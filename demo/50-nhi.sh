# demo/50-nhi.sh - pre-provisioned agent identities (sourced by demo/run.sh).
# Provision agents, back the store up under the HSM's nhi-backup-key, restore
# it inside, issue a token with the HSM issuer key, resolve it offline,
# revoke, resolve refused.  Uses the token of demo/10-hsm.sh
# (HSM_ISSUER_URI, HSM_BACKUP_KEY_URI); run alone, it makes its own.
N=$DEMO_DIR/nhi
mkdir -p "$N/outside" "$N/inside"
if [ -z "${HSM_ISSUER_URI:-}" ] || [ -z "${HSM_BACKUP_KEY_URI:-}" ]; then
  HSM_MODULE=${HSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
  mkdir -p "$N/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$N/tokens" >"$N/softhsm2.conf"
  export SOFTHSM2_CONF=$N/softhsm2.conf
  softhsm2-util --init-token --free --label enclave --so-pin 10203040 --pin 4321 >/dev/null
  ( umask 077; printf '4321' >"$N/user.pin" )
  NHI_P11=(pkcs11-tool --module "$HSM_MODULE" --token-label enclave --login --pin 4321)
  "${NHI_P11[@]}" --keygen --key-type AES:32 --sensitive --usage-wrap --label nhi-backup-key >/dev/null 2>&1
  "${NHI_P11[@]}" --keypairgen --key-type EC:edwards25519 --label nhi-issuer >/dev/null 2>&1
  NHI_Q="module-path=$HSM_MODULE&pin-source=file:$N/user.pin"
  HSM_ISSUER_URI="pkcs11:token=enclave;object=nhi-issuer?$NHI_Q"
  HSM_BACKUP_KEY_URI="pkcs11:token=enclave;object=nhi-backup-key?$NHI_Q"
fi
DB_OUT=$N/outside/agents.db
DB_IN=$N/inside/agents.db
# Inside, every nhi decision goes into the enclave's audit log: the one the
# update commands write (40-update.sh, $U/enclave/audit, its checkpoints
# signed by $U/audit-key); run alone, a log of its own.
if [ -n "${U:-}" ] && [ -f "$U/enclave/audit/audit.db" ]; then
  NHI_AUDIT=$U/enclave/audit NHI_AUDIT_KEY=$U/audit-key.key
else
  NHI_AUDIT=$N/audit NHI_AUDIT_KEY=$N/audit-key.key
  "$CRETO" key gen --alg ed25519 -o "$N/audit-key" >/dev/null
  "$CRETO" audit init --dir "$NHI_AUDIT" --origin creto.demo/nhi --key "$NHI_AUDIT_KEY" >/dev/null
fi
AUD=(--audit "$NHI_AUDIT" --audit-key "$NHI_AUDIT_KEY")

step "NHI: provision agents outside, ship them in encrypted under the HSM's nhi-backup-key"
show "$CRETO" nhi init --db "$DB_OUT"
show "$CRETO" nhi add --db "$DB_OUT" --id research-agent --name "Research agent" \
  --scope model:llama-3.1-70b-instruct --scope tool:search --issuer-key "$HSM_ISSUER_URI"
show "$CRETO" nhi add --db "$DB_OUT" --id batch-summarizer --name "Batch summarizer" \
  --scope model:llama-3.1-8b-instruct --not-after 2030-01-01
show "$CRETO" nhi backup --db "$DB_OUT" --wrap-key "$HSM_BACKUP_KEY_URI" -o "$N/nhi.bak"
say "AES-256-GCM under a fresh data key, the data key wrapped in the HSM (CKM_AES_KEY_WRAP_PAD)."
say "(Outside there is no enclave audit log: the commands above say that nothing was recorded.)"
say "Inside: a tampered backup is refused and nothing is restored (the refusal is recorded)."
cp "$N/nhi.bak" "$N/tampered.bak"
flip "$N/tampered.bak" 300
refused "$CRETO" nhi restore "$N/tampered.bak" --wrap-key "$HSM_BACKUP_KEY_URI" --db "$DB_IN" "${AUD[@]}"
show "$CRETO" nhi restore "$N/nhi.bak" --wrap-key "$HSM_BACKUP_KEY_URI" --db "$DB_IN" "${AUD[@]}"
show "$CRETO" nhi list --db "$DB_IN"

step "NHI: an agent token signed in the HSM, resolved with no network"
show "$CRETO" nhi jwks --key "$HSM_ISSUER_URI" -o "$N/jwks.json"
show cat "$N/jwks.json"
show "$CRETO" nhi token issue --db "$DB_IN" --agent research-agent --ttl 15m \
  --scope model:llama-3.1-70b-instruct --key "$HSM_ISSUER_URI" -o "$N/agent.jwt" "${AUD[@]}"
NHI_TOKEN=$(cat "$N/agent.jwt")
say "token (EdDSA JWS, signed by the HSM): ${NHI_TOKEN:0:72}..."
show "$CRETO" nhi resolve --db "$DB_IN" --jwks "$N/jwks.json" --token-file "$N/agent.jwt" "${AUD[@]}"
say "The same, straight from the encrypted backup into an in-memory store:"
show "$CRETO" nhi resolve --backup "$N/nhi.bak" --wrap-key "$HSM_BACKUP_KEY_URI" --jwks "$N/jwks.json" \
  --token-file "$N/agent.jwt" --json "${AUD[@]}"
say "alg none (the signature stripped) is refused:"
echo "$(printf '{"alg":"none","typ":"JWT"}' | basenc --base64url -w0 | tr -d =).$(echo "$NHI_TOKEN" | cut -d. -f2)." >"$N/none.jwt"
refused "$CRETO" nhi resolve --db "$DB_IN" --jwks "$N/jwks.json" --token-file "$N/none.jwt" "${AUD[@]}"
show "$CRETO" nhi revoke --db "$DB_IN" research-agent "${AUD[@]}"
refused "$CRETO" nhi resolve --db "$DB_IN" --jwks "$N/jwks.json" --token-file "$N/agent.jwt" "${AUD[@]}"

step "NHI: an agent fetches its own short-lived token (OAuth 2.0 client credentials, private_key_jwt)"
say "The agent's key is made where the agent runs; only its public half is registered."
show "$CRETO" key gen --alg ed25519 -o "$N/summarizer"
show "$CRETO" nhi key add --db "$DB_IN" batch-summarizer --pub "$N/summarizer.pub" "${AUD[@]}"
show "$CRETO" nhi key list --db "$DB_IN"
NHI_URL=https://creto.enclave.local
say "A first start of the token endpoint: an empty replay cache state."
show "$CRETO" nhi token replay-init --replay-state "$N/jti.state"
# exchange FORMFILE: what the gateway's POST /oauth/token does, once
nhi_exchange() {
  "$CRETO" nhi token exchange --db "$DB_IN" --key "$HSM_ISSUER_URI" --issuer-url "$NHI_URL" \
    --replay-state "$N/jti.state" --form-file "$1" "${AUD[@]}"
}
nhi_form() { # AGENT KEY OUT: the agent signs a 60-second assertion (iss = sub = itself, aud = the endpoint)
  local a
  # the agent's side, not a decision of the enclave: nothing to record there
  a=$("$CRETO" nhi token issue --agent "$1" --issuer "$1" --key "$2" --aud "$NHI_URL/oauth/token" --ttl 60s \
    2> >(grep -v 'no --audit DIR' >&2))
  printf 'grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s&scope=model%%3Allama-3.1-8b-instruct' "$a" >"$3"
}
nhi_form batch-summarizer "$N/summarizer.key" "$N/form"
say "The agent's assertion, signed with its own key, goes to the token endpoint:"
show nhi_exchange "$N/form"
say "The access token is the usual one (15 minutes, signed in the HSM): the gateway's resolver takes it."
nhi_exchange "$N/form" >/dev/null 2>&1 || say "(the same assertion a second time is a replay: refused)"
nhi_form batch-summarizer "$N/summarizer.key" "$N/form2"
nhi_exchange "$N/form2" 2>/dev/null | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' >"$N/summarizer.jwt"
show "$CRETO" nhi resolve --db "$DB_IN" --jwks "$N/jwks.json" --token-file "$N/summarizer.jwt" "${AUD[@]}"
say "Replaying an assertion is refused; so is the assertion of a revoked agent:"
refused nhi_exchange "$N/form2"
show "$CRETO" nhi revoke --db "$DB_IN" batch-summarizer "${AUD[@]}"
nhi_form batch-summarizer "$N/summarizer.key" "$N/form3"
refused nhi_exchange "$N/form3"
say "Every decision inside is in the enclave's audit log (no token, no assertion in it: jti and key ids):"
show "$CRETO" audit show --dir "$NHI_AUDIT" --component nhi
say "(Streaming a completion through the gateway with that token comes with the gateway's HTTP server.)"
