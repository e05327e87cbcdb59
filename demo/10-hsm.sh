# demo/10-hsm.sh - a private SoftHSM2 token for the enclave, with the NHI
# issuer's Ed25519 key and the AES-256 key that wraps NHI backups.
# Sourced by demo/run.sh.  Exports for later steps:
#   SOFTHSM2_CONF       private SoftHSM2 config ($DEMO_DIR/hsm/softhsm2.conf)
#   HSM_MODULE          the PKCS#11 module path
#   HSM_PIN_FILE        user PIN file (0600)
#   HSM_URI_BASE        pkcs11:token=enclave
#   HSM_URI_QUERY       module-path=...&pin-source=file:... (append after '?')
#   HSM_ISSUER_URI      the issuer's private key, ready for --key
#   HSM_BACKUP_KEY_URI  nhi-backup-key, ready for creto_hsm_wrap/unwrap
#   HSM_ISSUER_PUB      the issuer's public key file ($DEMO_DIR/hsm/nhi-issuer.pub)
#   HSM_HYBRID_URI      a hybrid (Ed25519 + ML-DSA-65) HSM key, ready for --key

step "HSM: a private SoftHSM2 token"
export HSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
HSM_DIR=$DEMO_DIR/hsm
mkdir -p "$HSM_DIR/tokens"
chmod 700 "$HSM_DIR"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$HSM_DIR/tokens" >"$HSM_DIR/softhsm2.conf"
export SOFTHSM2_CONF=$HSM_DIR/softhsm2.conf
export HSM_PIN_FILE=$HSM_DIR/user.pin
( umask 077
  od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$HSM_PIN_FILE"
  od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$HSM_DIR/so.pin" )
say "PINs live in 0600 files under $HSM_DIR; they never appear on a command line."
show "$CRETO" hsm init --module "$HSM_MODULE" --label enclave --so-pin-file "$HSM_DIR/so.pin" \
  --pin-file "$HSM_PIN_FILE"

export HSM_URI_BASE="pkcs11:token=enclave"
export HSM_URI_QUERY="module-path=$HSM_MODULE&pin-source=file:$HSM_PIN_FILE"
export HSM_ISSUER_URI="$HSM_URI_BASE;object=nhi-issuer?$HSM_URI_QUERY"
export HSM_BACKUP_KEY_URI="$HSM_URI_BASE;object=nhi-backup-key?$HSM_URI_QUERY"

step "HSM: generate the NHI issuer key (Ed25519) and nhi-backup-key (AES-256)"
show "$CRETO" hsm keygen --type ed25519 --label nhi-issuer "$HSM_URI_BASE?$HSM_URI_QUERY"
show "$CRETO" hsm keygen --type aes-256 --label nhi-backup-key "$HSM_URI_BASE?$HSM_URI_QUERY"
say "Both are sensitive and never extractable; the AES key may only wrap and unwrap."
show "$CRETO" hsm list "$HSM_URI_BASE?$HSM_URI_QUERY"

step "HSM: refusals are one line and name the CKR_ code"
printf 'not-the-pin\n' >"$HSM_DIR/wrong.pin"
chmod 600 "$HSM_DIR/wrong.pin"
rc=0
show "$CRETO" hsm list "$HSM_URI_BASE?module-path=$HSM_MODULE&pin-source=file:$HSM_DIR/wrong.pin" || rc=$?
[ "$rc" = 2 ] || { echo "demo: wrong PIN should exit 2, got $rc" >&2; exit 1; }
say "-> exit 2: a wrong PIN is a configuration error, and the token is untouched"
rm -f "$HSM_DIR/wrong.pin"

export HSM_ISSUER_PUB=$HSM_DIR/nhi-issuer.pub
if "$CRETO" sign --help >/dev/null 2>&1; then
  step "HSM: sign with a pkcs11: URI, verify with the .pub alone"
  show "$CRETO" hsm pub "$HSM_URI_BASE;object=nhi-issuer?module-path=$HSM_MODULE" -o "$HSM_ISSUER_PUB"
  printf 'signed inside the HSM\n' >"$HSM_DIR/hello.txt"
  show "$CRETO" sign --key "$HSM_ISSUER_URI" "$HSM_DIR/hello.txt" -o "$HSM_DIR/hello.sig"
  show "$CRETO" verify --pub "$HSM_ISSUER_PUB" "$HSM_DIR/hello.txt" "$HSM_DIR/hello.sig"
  printf 'tampered\n' >>"$HSM_DIR/hello.txt"
  refused "$CRETO" verify --pub "$HSM_ISSUER_PUB" "$HSM_DIR/hello.txt" "$HSM_DIR/hello.sig"

  step "HSM: a hybrid key - Ed25519 in the HSM, ML-DSA-65 sealed by it"
  say "SoftHSM2 has no ML-DSA: its seed lives in a file, AES-256-GCM under a data key the HSM wraps."
  show "$CRETO" hsm keygen --type hybrid --label enclave-root --pq-file "$HSM_DIR/enclave-root.pqkey" \
    "$HSM_URI_BASE?$HSM_URI_QUERY"
  export HSM_HYBRID_URI="$HSM_URI_BASE;object=enclave-root?$HSM_URI_QUERY&x-creto-pq=$HSM_DIR/enclave-root.pqkey"
  say "exported with the PIN, so the ML-DSA half is unsealed and authenticated through the HSM:"
  show "$CRETO" hsm pub "$HSM_HYBRID_URI" -o "$HSM_DIR/enclave-root.pub"
  printf 'signed by both halves\n' >"$HSM_DIR/hybrid.txt"
  show "$CRETO" sign --key "$HSM_HYBRID_URI" "$HSM_DIR/hybrid.txt" -o "$HSM_DIR/hybrid.sig"
  show "$CRETO" verify --pub "$HSM_DIR/enclave-root.pub" "$HSM_DIR/hybrid.txt" "$HSM_DIR/hybrid.sig"
fi
