# 70-audit.sh - the tamper-evident audit log, as the real commands wrote it:
# state init and the diode watcher (applied, quarantined, duplicate, the
# trust rotation) recorded every decision into the state's log
# ($U/enclave/audit, 40-update.sh) before acting.  Runs last: verifies that
# log against the checkpoint kept off the host, then shows tampered copies
# refused.  Sourced by demo/run.sh (uses $CRETO, $DEMO_DIR, $U, step/say/show/refused).
demo_audit() {
  step "Audit: verifying the record the update and diode commands wrote"
  local L="$U/enclave/audit" A="$DEMO_DIR/audit"
  mkdir -p "$A"
  say "Each decision above is an entry of a Merkle tree log; the last few:"
  show "$CRETO" audit tail --dir "$L" -n 5
  say "Verify it: every leaf, every checkpoint signature, and that it still extends the"
  say "checkpoint kept off the host (nothing recorded before it was changed, removed or cut):"
  show "$CRETO" audit verify --dir "$L" --pub "$U/audit-key.pub" --checkpoint "$U/offsite/kept.checkpoint"
  say "An inclusion proof that entry 2 (the first install) is in the signed tree:"
  "$CRETO" audit prove --dir "$L" 2 >"$A/proof.json"
  head -n 4 "$A/proof.json" | sed 's/^/     /'
  say "An export an auditor verifies elsewhere (JSONL and the signed checkpoints):"
  show "$CRETO" audit export --dir "$L" -o "$A/audit.jsonl"
  show "$CRETO" audit verify --export "$A/audit.jsonl" --pub "$U/audit-key.pub"
  say "Someone edits one entry of a copy (the quarantined tampered model becomes 'applied'):"
  sed '/demo-llm-2-tampered/s/"outcome":"quarantined"/"outcome":"applied"/' "$A/audit.jsonl" >"$A/edited.jsonl"
  if cmp -s "$A/audit.jsonl" "$A/edited.jsonl"; then echo "   demo: nothing was edited" >&2; exit 1; fi
  refused "$CRETO" audit verify --export "$A/edited.jsonl" --pub "$U/audit-key.pub"
  say "Someone cuts a copy back to before the attacks were quarantined, checkpoints and all:"
  awk '/"outcome":"quarantined"/ { exit } { print }' "$A/audit.jsonl" >"$A/cut.jsonl"
  refused "$CRETO" audit verify --export "$A/cut.jsonl" --pub "$U/audit-key.pub" --checkpoint "$U/offsite/kept.checkpoint"
}
demo_audit
