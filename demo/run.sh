#!/bin/bash
# The end-to-end enclave demo: runs demo/NN-*.sh in order, in one shell, in
# a fresh workspace, so later steps use what earlier ones made.
# Usage: demo/run.sh path/to/creto
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
DEMO_SRC=$(cd "$(dirname "$0")" && pwd)
DEMO_DIR=$(mktemp -d /tmp/creto-demo.XXXXXX)
export CRETO DEMO_SRC DEMO_DIR
trap 'rm -rf "$DEMO_DIR"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
# show CMD...: print the command, run it, indent its output.
show() { printf '   $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/     /'; return "${PIPESTATUS[0]}"; }
# flip FILE OFFSET: invert one byte (tampering that always changes it).
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# refused CMD...: the command must fail with exit 1 (a rejection).
refused() {
  printf '   $ %s\n' "$*"
  local rc=0
  "$@" >"$DEMO_DIR/.out" 2>&1 || rc=$?
  sed 's/^/     /' "$DEMO_DIR/.out"
  if [ "$rc" != 1 ]; then echo "   demo: expected a rejection (exit 1), got exit $rc" >&2; exit 1; fi
  say "-> refused, exit 1, as it must be"
}

echo "creto-airgap demo (workspace $DEMO_DIR)"
for s in "$DEMO_SRC"/[0-9][0-9]-*.sh; do
  # shellcheck disable=SC1090
  . "$s"
done
printf '\n\033[1mdemo complete\033[0m\n'
