# 70-audit.sh - the tamper-evident audit log: every security decision as an
# entry of a Merkle tree, signed checkpoints, proofs, and a verifier that
# names what was changed.  Self-sufficient; runs last and ends by verifying
# the log it wrote and showing tampered copies refused.
# Sourced by demo/run.sh (uses $CRETO, $DEMO_DIR, step/say/show/refused).
demo_audit() {
  step "Audit: a tamper-evident record of every security decision"
  local A="$DEMO_DIR/audit"
  mkdir -p "$A/keys" "$A/offsite"
  "$CRETO" key gen --alg hybrid -o "$A/keys/audit" >/dev/null
  say "The log's checkpoint key is a hybrid key (Ed25519 + ML-DSA-65); a pkcs11: URI works the same."
  show "$CRETO" audit init --dir "$A/log" --origin enclave-a.example/audit --key "$A/keys/audit.key"
  say "Components record their decisions (here through 'creto audit append', as a script would):"
  local ev
  for ev in \
    '{"component":"update","event":"apply","outcome":"ok","subject":"demo-llm 2 sha256:5f2c","actor":"diode"}' \
    '{"component":"update","event":"verify","outcome":"refused","reason":"too-few-signatures","subject":"demo-llm 3"}' \
    '{"component":"nhi","event":"revoke","outcome":"ok","subject":"agent-7","actor":"uid:0"}' \
    '{"component":"gateway","event":"token","outcome":"refused","reason":"expired","actor":"agent-7","fields":{"count":12}}' \
    '{"component":"hsm","event":"login","outcome":"failed","reason":"CKR_PIN_INCORRECT","subject":"token demo"}'; do
    printf '%s' "$ev" | "$CRETO" audit append --dir "$A/log" --key "$A/keys/audit.key" >/dev/null
  done
  show "$CRETO" audit show --dir "$A/log"
  say "The newest signed checkpoint (C2SP tlog-checkpoint), kept off the host:"
  show "$CRETO" audit checkpoint --dir "$A/log" -o "$A/offsite/kept.checkpoint"
  cut -c1-100 "$A/offsite/kept.checkpoint" | sed 's/^/     /'
  printf '{"component":"isolation","event":"check","outcome":"ok"}' |
    "$CRETO" audit append --dir "$A/log" --key "$A/keys/audit.key" >/dev/null
  say "An inclusion proof that entry 1 is in the signed tree:"
  "$CRETO" audit prove --dir "$A/log" 1 >"$A/proof.json"
  head -n 6 "$A/proof.json" | sed 's/^/     /'
  show "$CRETO" audit export --dir "$A/log" -o "$A/offsite/audit.jsonl"
  say "Verify the log, and that it still extends the checkpoint kept off the host:"
  show "$CRETO" audit verify --dir "$A/log" --pub "$A/keys/audit.pub" --checkpoint "$A/offsite/kept.checkpoint"
  show "$CRETO" audit verify --export "$A/offsite/audit.jsonl" --pub "$A/keys/audit.pub"
  say "Someone edits one entry (the refusal becomes an approval):"
  sed 's/"outcome":"refused","reason":"too-few-signatures"/"outcome":"ok","reason":"too-few-signatures"/' \
    "$A/offsite/audit.jsonl" >"$A/edited.jsonl"
  refused "$CRETO" audit verify --export "$A/edited.jsonl" --pub "$A/keys/audit.pub"
  say "Someone deletes the failed HSM login and the entries after it:"
  grep -v '"seq":[4-9],' "$A/offsite/audit.jsonl" | grep -v '^{"checkpoint":"enclave-a.example/audit\\n[5-9]' >"$A/cut.jsonl"
  refused "$CRETO" audit verify --export "$A/cut.jsonl" --pub "$A/keys/audit.pub" --checkpoint "$A/offsite/kept.checkpoint"
}
demo_audit
