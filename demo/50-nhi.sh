# demo/50-nhi.sh - pre-provisioned agent identities (sourced by demo/run.sh).
# Provision agents, back the store up under an HSM key, restore it inside,
# issue a token with the HSM issuer key, resolve it offline, revoke, refused.
# Self-sufficient: makes its own SoftHSM2 token under $DEMO_DIR/nhi (the
# earlier HSM step's token is left alone) and restores SOFTHSM2_CONF after.
N=$DEMO_DIR/nhi
mkdir -p "$N/tokens" "$N/outside" "$N/inside"
NHI_PREV_CONF=${SOFTHSM2_CONF:-}
NHI_MODULE=${HSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$N/tokens" >"$N/softhsm2.conf"
export SOFTHSM2_CONF=$N/softhsm2.conf
softhsm2-util --init-token --free --label nhi-demo --so-pin 10203040 --pin 4321 >/dev/null
printf '4321\n' >"$N/pin"; chmod 600 "$N/pin"
P11=(pkcs11-tool --module "$NHI_MODULE" --token-label nhi-demo --login --pin 4321)
"${P11[@]}" --keygen --key-type AES:32 --sensitive --usage-wrap --label nhi-backup-key >/dev/null 2>&1
"${P11[@]}" --keypairgen --key-type EC:edwards25519 --label nhi-issuer >/dev/null 2>&1
H=(--module "$NHI_MODULE" --pin-file "$N/pin")
WRAP='pkcs11:token=nhi-demo;object=nhi-backup-key;type=secret-key'
ISSUER='pkcs11:token=nhi-demo;object=nhi-issuer;type=private'

step "NHI: provision agents outside, ship them in under an HSM-wrapped key"
say "SoftHSM2 token 'nhi-demo' holds an AES-256 wrap key and the Ed25519 token issuer key."
show "$CRETO" nhi init --db "$N/outside/agents.db"
show "$CRETO" nhi add --db "$N/outside/agents.db" --id research-agent --name "Research agent" \
  --scope model:llama-3.1-70b-instruct --scope tool:search --issuer-key "$ISSUER" "${H[@]}"
show "$CRETO" nhi add --db "$N/outside/agents.db" --id batch-summarizer --name "Batch summarizer" \
  --scope model:llama-3.1-8b-instruct --not-after 2030-01-01
show "$CRETO" nhi backup --db "$N/outside/agents.db" --wrap-key "$WRAP" "${H[@]}" -o "$N/nhi.bak"
say "A tampered backup is refused and nothing is restored:"
cp "$N/nhi.bak" "$N/tampered.bak"
printf 'X' | dd of="$N/tampered.bak" bs=1 seek=200 conv=notrunc status=none
refused "$CRETO" nhi restore "$N/tampered.bak" --wrap-key "$WRAP" "${H[@]}" --db "$N/inside/agents.db"
show "$CRETO" nhi restore "$N/nhi.bak" --wrap-key "$WRAP" "${H[@]}" --db "$N/inside/agents.db"
show "$CRETO" nhi list --db "$N/inside/agents.db"

step "NHI: an agent token signed in the HSM, resolved offline"
show "$CRETO" nhi jwks --key "$ISSUER" "${H[@]}" -o "$N/jwks.json"
NHI_TOKEN=$("$CRETO" nhi token issue --db "$N/inside/agents.db" --agent research-agent --ttl 15m \
  --scope model:llama-3.1-70b-instruct --key "$ISSUER" "${H[@]}")
say "token: ${NHI_TOKEN:0:60}..."
show "$CRETO" nhi resolve --db "$N/inside/agents.db" --jwks "$N/jwks.json" --token "$NHI_TOKEN"
say "The same, straight from the encrypted backup into an in-memory store:"
show "$CRETO" nhi resolve --backup "$N/nhi.bak" --wrap-key "$WRAP" "${H[@]}" --jwks "$N/jwks.json" --token "$NHI_TOKEN"
say "A token with alg none is refused:"
NHI_NONE="$(printf '{"alg":"none","kid":"x"}' | basenc --base64url -w0 | tr -d =).${NHI_TOKEN#*.}"
refused "$CRETO" nhi resolve --db "$N/inside/agents.db" --jwks "$N/jwks.json" --token "${NHI_NONE%.*}."
show "$CRETO" nhi revoke --db "$N/inside/agents.db" research-agent
refused "$CRETO" nhi resolve --db "$N/inside/agents.db" --jwks "$N/jwks.json" --token "$NHI_TOKEN"

if [ -n "$NHI_PREV_CONF" ]; then export SOFTHSM2_CONF=$NHI_PREV_CONF; else unset SOFTHSM2_CONF; fi
