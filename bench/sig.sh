#!/bin/bash
# Signature throughput: creto's ops/s for every algorithm beside
# `openssl speed ed25519 ecdsap256` measured in the same run, hybrid verify
# beside its classical half, and `creto verify` wall time per file.
# Usage: bench/sig.sh path/to/creto [SECONDS_PER_FIGURE]
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
SECS=${2:-1}
BENCH=$(dirname "$CRETO")/bench_sig
[ -x "$BENCH" ] || { echo "bench/sig.sh: $BENCH missing (build first)" >&2; exit 3; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

OSECS=$(awk -v s="$SECS" 'BEGIN { n = int(s + 0.999); print (n < 1 ? 1 : n) }')
echo "== baseline: openssl speed ed25519 ecdsap256 (${OSECS}s per figure, one core, ops per CPU second)"
taskset -c 0 openssl speed -seconds "$OSECS" ed25519 ecdsap256 2>/dev/null |
	awk '/sign\/s/ && !h { print "   " $0; h = 1 } /^ *(256|253) bits/ { print "   " $0 }'
echo
echo "== creto (library API, ${SECS} CPU-s per figure, one core; ops per CPU second like openssl speed)"
taskset -c 0 "$BENCH" "$SECS"
echo
echo "== creto verify (whole command: process start, file read, verify), mean of 20 runs"
head -c 65536 /dev/urandom >"$W/file"
for a in ed25519 hybrid ecdsa-p384 hybrid-cnsa2; do
	"$CRETO" key gen --alg "$a" -o "$W/$a" >/dev/null
	"$CRETO" sign --key "$W/$a.key" "$W/file" -o "$W/$a.sig" >/dev/null
	t0=$(date +%s%N)
	for _ in $(seq 20); do "$CRETO" verify --pub "$W/$a.pub" "$W/file" "$W/$a.sig" >/dev/null; done
	t1=$(date +%s%N)
	awk -v a="$a" -v d=$((t1 - t0)) 'BEGIN { printf "   %-13s %6.2f ms per creto verify\n", a, d / 20 / 1e6 }'
done
