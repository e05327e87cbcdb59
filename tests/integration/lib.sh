# lib.sh - shared helpers for integration tests that drive the real creto.
# Source it first:  . "$(dirname "$0")/lib.sh"
# Provides: $CRETO, $T (a private temp dir removed at exit), run/expect
# helpers that assert the exit code and the one-line reason, hsm_env.
set -u
: "${CRETO_BIN:?run through ctest (CRETO_BIN unset)}"
: "${CRETO_BUILD_DIR:?run through ctest}"
CRETO=$CRETO_BIN
TEST_NAME=$(basename "$0" .sh)
mkdir -p "$CRETO_BUILD_DIR/test-tmp"
T=$(mktemp -d "$CRETO_BUILD_DIR/test-tmp/$TEST_NAME.XXXXXX")
trap 'rm -rf "$T"' EXIT
N_PASS=0
N_FAIL=0

fail() { echo "FAIL: $*" >&2; N_FAIL=$((N_FAIL + 1)); }
ok() { N_PASS=$((N_PASS + 1)); }
# flip FILE OFFSET: invert the byte at OFFSET (always a change; writing a
# fixed byte leaves random data unchanged once in 256 runs).
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# expect CODE [--err SUBSTRING] [--out SUBSTRING] -- CMD...
# Runs CMD, asserts its exit code and, optionally, substrings of stderr/stdout.
# Leaves the output in $OUT and $ERR.
expect() {
  local code=$1; shift
  local want_err="" want_out=""
  while [ "$1" != "--" ]; do
    case "$1" in
      --err) want_err=$2; shift 2 ;;
      --out) want_out=$2; shift 2 ;;
      *) echo "expect: bad option $1" >&2; exit 2 ;;
    esac
  done
  shift
  local rc=0
  "$@" >"$T/.out" 2>"$T/.err" || rc=$?
  OUT=$(cat "$T/.out"); ERR=$(cat "$T/.err")
  if [ "$rc" != "$code" ]; then
    fail "'$*' exited $rc, expected $code; stderr: $ERR"
    return 0
  fi
  if [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$T/.err"; then
    fail "'$*' stderr lacks '$want_err'; stderr: $ERR"
    return 0
  fi
  if [ -n "$want_out" ] && ! grep -qF -- "$want_out" "$T/.out"; then
    fail "'$*' stdout lacks '$want_out'; stdout: $OUT"
    return 0
  fi
  # Every rejection and operational failure is exactly one line on stderr
  # (usage errors may add the usage text).
  if [ "$code" != 0 ] && [ "$code" != 2 ] && [ "$(grep -c '' "$T/.err")" != 1 ]; then
    fail "'$*' printed $(grep -c '' "$T/.err") stderr lines, expected 1: $ERR"
    return 0
  fi
  ok
}

# Call last: prints the plain summary line and exits non-zero on any failure.
finish() {
  echo "$TEST_NAME: $N_PASS passed, $N_FAIL failed"
  [ "$N_FAIL" = 0 ]
  exit $?
}

skip() { echo "SKIP: $*"; exit 77; }

# hsm_env: a private SoftHSM2 configuration and token directory under $T
# (never /etc/softhsm or /var/lib/softhsm).  Exports SOFTHSM2_CONF, HSM_MODULE.
hsm_env() {
  HSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
  [ -e "$HSM_MODULE" ] || skip "SoftHSM2 module missing (scripts/deps.sh test installs it)"
  mkdir -p "$T/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$T/tokens" >"$T/softhsm2.conf"
  export SOFTHSM2_CONF="$T/softhsm2.conf" HSM_MODULE
}
