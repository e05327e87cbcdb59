#!/bin/bash
# bench/mldsa.sh - ML-DSA-44/65/87 keygen / sign / verify ops/s on one core,
# beside `openssl speed ed25519` measured in the same run and beside the
# pq-crystals reference figures quoted in issue 3.
# Usage: bench/mldsa.sh BUILD/creto [SECONDS_PER_FIGURE]   (default 1)
# Runs the portable C back end (CRETO_MLDSA_NO_AVX2=1) and then the default
# choice (AVX2 + FMA when the CPU has them).
# The driver is BUILD/bench_mldsa (built from bench/mldsa.c next to creto).
set -euo pipefail
creto=${1:?usage: bench/mldsa.sh PATH/TO/creto [SECONDS]}
secs=${2:-1}
drv="$(dirname "$creto")/bench_mldsa"
[ -x "$drv" ] || { echo "bench/mldsa.sh: $drv not found (build the bench targets)" >&2; exit 2; }

echo "== ML-DSA, creto, portable C (one thread; best of 10 rounds, CPU time) =="
CRETO_MLDSA_NO_AVX2=1 "$drv" "$secs"
echo
echo "== ML-DSA, creto, back end chosen at run time =="
"$drv" "$secs"
echo
echo "sign/s and verify/s: one key, so the per-thread cache of the expanded"
echo "matrix A (and of tr, NTT(t1)) hits. *-cold/s: two keys alternated, so every"
echo "call misses the one-entry cache and expands A, hashes pk and multiplies"
echo "c t1 again: the cost of an operation with a key not seen before."
echo
echo "== openssl speed ed25519 (same run, $(openssl version | cut -d' ' -f1-2)) =="
openssl speed -seconds "$secs" ed25519 2>/dev/null | grep -E 'sign/s|Ed25519'
echo
echo "== baseline quoted from issue 3 (not measured here: the pq-crystals ref"
echo "   cannot be built on this machine) =="
printf '%-10s %10s %10s %10s\n' algorithm keygen/s sign/s verify/s
printf '%-10s %10s %10s %10s\n' "ref 65" 7600 1900 8500
printf '%-10s %10s %10s %10s\n' "goal 65" - 2800 13000
printf '%-10s %10s %10s %10s\n' "avx2 65" - 10000 26000
