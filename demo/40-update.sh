# demo/40-update.sh - a signed model update crosses the data diode.
# Sourced by demo/run.sh (uses $CRETO, $DEMO_DIR, step/say/show/refused).
U=$DEMO_DIR/update
mkdir -p "$U/officers" "$U/outside" "$U/diode" "$U/enclave" "$U/offsite"

step "Update: three officers, a 2-of-3 trust root (hybrid Ed25519 + ML-DSA-65 keys)"
for o in alice bob carol; do
  "$CRETO" key gen --alg hybrid -o "$U/officers/$o" >/dev/null
done
show "$CRETO" trust init --key "$U/officers/alice.pub" --key "$U/officers/bob.pub" \
  --key "$U/officers/carol.pub" --threshold 2 -o "$U/root.json"
for o in alice bob; do show "$CRETO" trust sign "$U/root.json" --key "$U/officers/$o.key"; done

step "Outside: the staging server hashes the model into a statement; officers sign it offline"
mkdir -p "$U/outside/model-v1"
head -c 3000000 /dev/urandom >"$U/outside/model-v1/model.safetensors"
echo '{"architectures":["DemoForCausalLM"]}' >"$U/outside/model-v1/config.json"
show "$CRETO" update create --type model-weights --name demo-llm --version 1 \
  --payload "$U/outside/model-v1" -o "$U/outside/v1.statement"
say "each officer signs only the small statement, on their own machine:"
for o in alice carol; do show "$CRETO" update sign "$U/outside/v1.statement" --key "$U/officers/$o.key"; done
say "assemble checks the signatures against the root the enclave will use (2 of 3 reached):"
show "$CRETO" update assemble "$U/outside/v1.statement" --payload "$U/outside/model-v1" --trust "$U/root.json" \
  -o "$U/outside/demo-llm-1.crupdate"
show "$CRETO" update inspect "$U/outside/demo-llm-1.crupdate"
say "standard tools can list the package:"
show tar tvf "$U/outside/demo-llm-1.crupdate"

step "Inside: the diode watcher verifies 2-of-3, streams, installs atomically"
say "the state directory is created once, explicitly: a mistyped --state is an error, never a fresh start."
say "It comes with its audit log (enclave/audit): every decision below is recorded there before it takes"
say "effect, and checkpoints are signed with the key recorded here (a key reference, never a secret):"
"$CRETO" key gen --alg hybrid -o "$U/audit-key" >/dev/null
show "$CRETO" state init --state "$U/enclave" --trust "$U/root.json" --audit-key "$U/audit-key.key"
refused_usage() { printf '   $ %s\n' "$*"; local rc=0; "$@" >"$DEMO_DIR/.out" 2>&1 || rc=$?
  sed 's/^/     /' "$DEMO_DIR/.out"; [ "$rc" = 2 ] || { echo "   demo: expected exit 2, got $rc" >&2; exit 1; }; }
refused_usage "$CRETO" update status --state "$U/enclav"
cp "$U/outside/demo-llm-1.crupdate" "$U/diode/"
show "$CRETO" diode watch "$U/diode" --trust "$U/root.json" --state "$U/enclave" --once --settle-ms 100
show ls -l "$U/enclave/models/demo-llm/"
show "$CRETO" update status --state "$U/enclave" --audit 3
say "What the gateway serves: the installed, verified models (read-only: it works beside a running watcher)"
show "$CRETO" update models --state "$U/enclave"

step "Attacks arriving through the diode are quarantined with a reason"
say "a tampered copy of version 2 (one byte of the weights flipped after signing):"
mkdir -p "$U/outside/model-v2" && cp "$U/outside/model-v1/config.json" "$U/outside/model-v2/"
head -c 3000000 /dev/urandom >"$U/outside/model-v2/model.safetensors"
"$CRETO" update create --type model-weights --name demo-llm --version 2 --payload "$U/outside/model-v2" \
  -o "$U/outside/v2.statement" --quiet >/dev/null
for o in alice bob; do "$CRETO" update sign "$U/outside/v2.statement" --key "$U/officers/$o.key" --quiet >/dev/null; done
"$CRETO" update assemble "$U/outside/v2.statement" --payload "$U/outside/model-v2" --trust "$U/root.json" -o "$U/outside/v2.crupdate" --quiet >/dev/null 2>&1
cp "$U/outside/v2.crupdate" "$U/diode/demo-llm-2-tampered.crupdate"
flip "$U/diode/demo-llm-2-tampered.crupdate" 2000000
refused "$CRETO" update verify "$U/diode/demo-llm-2-tampered.crupdate" --trust "$U/root.json" --state "$U/enclave"
say "the genuine version 2, then version 1 signed again (a rollback to an older version):"
cp "$U/outside/v2.crupdate" "$U/diode/demo-llm-2.crupdate"
# A freshly signed statement for the old version 1 (its payload differs
# from the applied v1 by a notes file, so it is not a mere duplicate).
cp -r "$U/outside/model-v1" "$U/outside/model-v1b" && echo "re-release" >"$U/outside/model-v1b/NOTES"
"$CRETO" update create --type model-weights --name demo-llm --version 1 --payload "$U/outside/model-v1b" \
  -o "$U/outside/v1b.statement" --quiet >/dev/null
for o in bob carol; do "$CRETO" update sign "$U/outside/v1b.statement" --key "$U/officers/$o.key" --quiet >/dev/null; done
"$CRETO" update assemble "$U/outside/v1b.statement" --payload "$U/outside/model-v1b" --trust "$U/root.json" -o "$U/diode/zz-rollback.crupdate" --quiet >/dev/null 2>&1
say "and the genuine version 1 package delivered a second time (a duplicate, set aside, not re-applied):"
cp "$U/outside/demo-llm-1.crupdate" "$U/diode/zz-again.crupdate"
say "(--once exits 1 when anything was quarantined in the pass, so a timer can alert)"
refused "$CRETO" diode watch "$U/diode" --trust "$U/root.json" --state "$U/enclave" --once --settle-ms 100
show "$CRETO" diode quarantine list --state "$U/enclave"
show cat "$U/enclave/quarantine/demo-llm-2-tampered.crupdate.reason" "$U/enclave/quarantine/zz-rollback.crupdate.reason"
show readlink "$U/enclave/models/demo-llm/current"
say "nothing was deleted: accepted packages are in processed/, rejected ones in quarantine/."
say "the log recorded each decision; a signed checkpoint of it is carried off the host (printed, removable media):"
show "$CRETO" audit checkpoint --dir "$U/enclave/audit" -o "$U/offsite/kept.checkpoint"

step "Trust-root rotation through the diode: alice leaves, dave joins"
"$CRETO" key gen --alg hybrid -o "$U/officers/dave" >/dev/null
show "$CRETO" trust init --key "$U/officers/bob.pub" --key "$U/officers/carol.pub" \
  --key "$U/officers/dave.pub" --threshold 2 --version 2 -o "$U/outside/root2.json"
say "the new root is signed by a threshold of its own keys, and by the current root's (alice with --previous):"
for o in bob dave; do "$CRETO" trust sign "$U/outside/root2.json" --key "$U/officers/$o.key" --quiet >/dev/null; done
show "$CRETO" trust sign "$U/outside/root2.json" --key "$U/officers/alice.key" --previous
mkdir -p "$U/outside/rot2" && cp "$U/outside/root2.json" "$U/outside/rot2/root.json"
"$CRETO" update create --type cert-rotation --name trust-root --version 2 \
  --payload "$U/outside/rot2/root.json" -o "$U/outside/rot2.statement" --quiet >/dev/null
for o in alice bob; do "$CRETO" update sign "$U/outside/rot2.statement" --key "$U/officers/$o.key" --quiet >/dev/null; done
"$CRETO" update assemble "$U/outside/rot2.statement" --payload "$U/outside/rot2/root.json" \
  --trust "$U/root.json" -o "$U/diode/trust-root-2.crupdate" --quiet >/dev/null 2>&1
show "$CRETO" diode watch "$U/diode" --trust "$U/root.json" --state "$U/enclave" --once --settle-ms 100
say "alice's signature no longer counts, even though the operator still passes the old root.json:"
mkdir -p "$U/outside/model-v3" && cp "$U/outside/model-v2/"* "$U/outside/model-v3/" && echo v3 >"$U/outside/model-v3/NOTES"
"$CRETO" update create --type model-weights --name demo-llm --version 3 --payload "$U/outside/model-v3" \
  -o "$U/outside/v3.statement" --quiet >/dev/null
cp "$U/outside/v3.statement" "$U/outside/v3-old-keys.statement"
for o in alice bob; do "$CRETO" update sign "$U/outside/v3-old-keys.statement" --key "$U/officers/$o.key" --quiet >/dev/null; done
"$CRETO" update assemble "$U/outside/v3-old-keys.statement" --payload "$U/outside/model-v3" --no-verify -o "$U/outside/v3-old-keys.crupdate" --quiet >/dev/null 2>&1
refused "$CRETO" update verify "$U/outside/v3-old-keys.crupdate" --trust "$U/root.json" --state "$U/enclave"
for o in bob dave; do "$CRETO" update sign "$U/outside/v3.statement" --key "$U/officers/$o.key" --quiet >/dev/null; done
"$CRETO" update assemble "$U/outside/v3.statement" --payload "$U/outside/model-v3" --trust "$U/outside/root2.json" -o "$U/outside/v3.crupdate" --quiet >/dev/null 2>&1
show "$CRETO" update verify "$U/outside/v3.crupdate" --trust "$U/root.json" --state "$U/enclave"
