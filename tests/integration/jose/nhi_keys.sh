# nhi_keys.sh - sourced by tests/integration/test_nhi*.sh.
# nhi_make_key BASE ed25519|p256: writes BASE.pem (PKCS#8, for openssl and the
# jose peer) and BASE.key (the same key as creto's key loader reads it).
nhi_make_key() {
  local base=$1 alg=$2
  case "$alg" in
    ed25519) openssl genpkey -algorithm ed25519 -out "$base.pem" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$base.pem" 2>/dev/null ;;
  esac
  cp "$base.pem" "$base.key"
  chmod 600 "$base.key" "$base.pem"
}
