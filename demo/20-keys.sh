# demo/20-keys.sh - sourced by demo/run.sh: officers' hybrid keys, a signed
# file, and a tampered copy refused.
step "Signing keys: officers generate hybrid keys (Ed25519 + ML-DSA-65; CNSA 2.0: P-384 + ML-DSA-87)"
mkdir -p "$DEMO_DIR/keys"
show "$CRETO" key gen --alg hybrid -o "$DEMO_DIR/keys/officer1"
show "$CRETO" key gen --alg hybrid-cnsa2 -o "$DEMO_DIR/keys/officer2"
say "secret keys are written 0600 and never overwritten:"
show ls -l "$DEMO_DIR/keys"
if show "$CRETO" key gen --alg hybrid -o "$DEMO_DIR/keys/officer1"; then
	echo "   demo: an existing key was overwritten" >&2
	exit 1
fi
say "-> refused (exit 2): the existing key is untouched"
show "$CRETO" key id "$DEMO_DIR/keys/officer1.pub"
show head -n 2 "$DEMO_DIR/keys/officer1.pub"

step "Officer 1 signs a file; the enclave verifies it with the public key only"
printf 'policy: allow model llama-3-8b for agents in group analysts\n' >"$DEMO_DIR/policy.txt"
show "$CRETO" sign --key "$DEMO_DIR/keys/officer1.key" --context creto-policy \
	"$DEMO_DIR/policy.txt" -o "$DEMO_DIR/policy.txt.sig"
show "$CRETO" verify --pub "$DEMO_DIR/keys/officer1.pub" --context creto-policy \
	"$DEMO_DIR/policy.txt" "$DEMO_DIR/policy.txt.sig"

step "Tampering, the wrong key, or the wrong context are refused (exit 1, one line)"
sed 's/analysts/everyone/' "$DEMO_DIR/policy.txt" >"$DEMO_DIR/policy-tampered.txt"
refused "$CRETO" verify --pub "$DEMO_DIR/keys/officer1.pub" --context creto-policy \
	"$DEMO_DIR/policy-tampered.txt" "$DEMO_DIR/policy.txt.sig"
refused "$CRETO" verify --pub "$DEMO_DIR/keys/officer2.pub" --context creto-policy \
	"$DEMO_DIR/policy.txt" "$DEMO_DIR/policy.txt.sig"
refused "$CRETO" verify --pub "$DEMO_DIR/keys/officer1.pub" --context creto-model \
	"$DEMO_DIR/policy.txt" "$DEMO_DIR/policy.txt.sig"
