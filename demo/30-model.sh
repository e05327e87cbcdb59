# 30-model.sh - model integrity: a model directory is hashed, its manifest
# written and verified; one flipped byte and one added file are refused;
# then the manifest is signed and the signature verified.
# Sourced by demo/run.sh ($CRETO, $DEMO_DIR, step/say/show/refused).
# Leaves $DEMO_DIR/models/demo-llm and its manifest for later steps.
step "Model integrity: manifest, verify, tamper, sign"
MODEL=$DEMO_DIR/models/demo-llm
MANIFEST=$DEMO_DIR/models/demo-llm.manifest.json
mkdir -p "$MODEL/tokenizer"
head -c 3000000 /dev/urandom >"$MODEL/model-00001-of-00002.safetensors"
head -c 2000000 /dev/urandom >"$MODEL/model-00002-of-00002.safetensors"
echo '{"architectures":["DemoForCausalLM"],"hidden_size":256}' >"$MODEL/config.json"
echo '{"version":"1.0","model":{"type":"BPE"}}' >"$MODEL/tokenizer/tokenizer.json"
say "a sample model directory: two weight files, config, tokenizer"
show "$CRETO" model hash "$MODEL"
MODEL_DIGEST=$("$CRETO" model hash "$MODEL")
say "the manifest lists every file in 64 MiB shards with SHA3-256 digests (OpenSSF model-signing format; the root binds the layout, so --expect alone pins it)"
show "$CRETO" model manifest "$MODEL" -o "$MANIFEST"
show "$CRETO" model verify "$MODEL" --manifest "$MANIFEST" --expect "$MODEL_DIGEST"

say "flip one byte in the middle of a weight file:"
cp "$MODEL/model-00002-of-00002.safetensors" "$DEMO_DIR/models/.orig"
b=$(od -An -tu1 -j1000000 -N1 "$MODEL/model-00002-of-00002.safetensors" | tr -d ' ')
printf "\\x$(printf %02x $(((b + 1) % 256)))" |
  dd of="$MODEL/model-00002-of-00002.safetensors" bs=1 seek=1000000 conv=notrunc status=none
refused "$CRETO" model verify "$MODEL" --manifest "$MANIFEST"
mv "$DEMO_DIR/models/.orig" "$MODEL/model-00002-of-00002.safetensors"

say "an added file (code that a loader might import) is named too:"
echo 'import os' >"$MODEL/sitecustomize.py"
refused "$CRETO" model verify "$MODEL" --manifest "$MANIFEST"
rm -f "$MODEL/sitecustomize.py"
show "$CRETO" model verify "$MODEL" --manifest "$MANIFEST"

if "$CRETO" key gen --alg ecdsa-p256 -o "$DEMO_DIR/models/model-signer" >/dev/null 2>&1; then
  say "sign the manifest: a DSSE envelope in a Sigstore bundle v0.3 (ECDSA P-256), as OpenSSF model-signing writes it"
  show "$CRETO" model sign "$MANIFEST" --key "$DEMO_DIR/models/model-signer.key" -o "$DEMO_DIR/models/demo-llm.sig"
  show "$CRETO" model verify "$MODEL" --sig "$DEMO_DIR/models/demo-llm.sig" --pub "$DEMO_DIR/models/model-signer.pub"
  say "the signature holds the manifest; a changed config is refused:"
  cp "$MODEL/config.json" "$DEMO_DIR/models/.cfg"
  echo '{"architectures":["DemoForCausalLM"],"hidden_size":512}' >"$MODEL/config.json"
  refused "$CRETO" model verify "$MODEL" --sig "$DEMO_DIR/models/demo-llm.sig" --pub "$DEMO_DIR/models/model-signer.pub"
  mv "$DEMO_DIR/models/.cfg" "$MODEL/config.json"
else
  say "(model signing needs the signatures module, not in this build)"
fi
