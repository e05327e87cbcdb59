#!/bin/bash
# bench/update.sh - verify+apply throughput and peak RSS of a multi-file
# .crupdate (4 GiB by default), beside the sequential baseline measured in
# the same run over the same payload: `openssl dgst -sha3-256` of every file
# followed by `cp` of them (what a careful operator would do by hand).
# Goals (issue 5): peak RSS < 64 MiB; throughput >= 1.5x the baseline.
# Usage: bench/update.sh path/to/creto   (BENCH_SIZE_MB=4096, BENCH_DIR=/tmp)
# Both sides read from a warm page cache (the files are read once before
# timing); nothing is written outside BENCH_DIR.
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
MEASURE=$(dirname "$CRETO")/bench_measure
[ -x "$MEASURE" ] || { echo "bench_measure missing next to $CRETO (build bench/measure.c)" >&2; exit 2; }
SIZE_MB=${BENCH_SIZE_MB:-4096}
W=$(mktemp -d "${BENCH_DIR:-/tmp}/creto-bench-update.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
echo "creto update benchmark: ${SIZE_MB} MiB payload in 5 files, $(nproc) CPUs (shared: figures vary with load)"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
mkdir -p payload
# Several files of different sizes: 40% + 30% + 20% + 9% + a small one.
for spec in 40:weights-1.bin 30:weights-2.bin 20:weights-3.bin 9:weights-4.bin; do
  mb=$((SIZE_MB * ${spec%%:*} / 100))
  head -c $((mb * 1048576)) /dev/urandom >"payload/${spec#*:}"
done
echo '{"model":"bench"}' >payload/config.json
BYTES=$(du -cb payload/* | tail -1 | cut -f1)
read -r t_create _ < <("$MEASURE" "$CRETO" update create --type model-weights --name bench --version 1 \
  --payload payload -o b.statement 2>&1 >/dev/null | tail -1)
for k in a b; do "$CRETO" update sign b.statement --key $k.key >/dev/null; done
"$CRETO" update assemble b.statement --payload payload -o b.crupdate >/dev/null
cat payload/* b.crupdate >/dev/null   # warm the page cache for both sides

rate() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
# Baseline: sequential digest of every file, then copy.
read -r t_dgst rss_dgst < <("$MEASURE" sh -c 'openssl dgst -sha3-256 payload/* >/dev/null' 2>&1 >/dev/null | tail -1)
read -r t_cp _ < <("$MEASURE" cp -r payload base-copy 2>&1 >/dev/null | tail -1)
sync
t_base=$(awk -v a="$t_dgst" -v b="$t_cp" 'BEGIN { printf "%.3f", a + b }')
rm -rf base-copy
read -r t_verify rss_verify < <("$MEASURE" "$CRETO" update verify b.crupdate --trust root.json 2>&1 >/dev/null | tail -1)
"$CRETO" state init --state S --trust root.json --quiet || exit 1
read -r t_apply rss_apply < <("$MEASURE" "$CRETO" update apply b.crupdate --trust root.json --state S 2>&1 >/dev/null | tail -1)
[ "$(readlink S/models/bench/current)" = 1 ] || { echo "apply did not install" >&2; exit 1; }
printf '\n%-44s %9s %10s %12s\n' "run" "seconds" "MiB/s" "peak RSS"
printf '%-44s %9s %10s %12s\n' "baseline: openssl dgst -sha3-256 + cp" "$t_base" "$(rate "$t_base")" "-"
printf '%-44s %9s %10s %12s\n' "  openssl dgst -sha3-256 alone" "$t_dgst" "$(rate "$t_dgst")" "$((rss_dgst / 1024)) MiB"
printf '%-44s %9s %10s %12s\n' "  cp alone" "$t_cp" "$(rate "$t_cp")" "-"
printf '%-44s %9s %10s %12s\n' "creto update verify (digests, no copy)" "$t_verify" "$(rate "$t_verify")" "$((rss_verify / 1024)) MiB"
printf '%-44s %9s %10s %12s\n' "creto update apply (verify+stage+fsync+install)" "$t_apply" "$(rate "$t_apply")" "$((rss_apply / 1024)) MiB"
printf '%-44s %9s %10s\n' "creto update create (hash pool, outside)" "$t_create" "$(rate "$t_create")"
awk -v a="$t_base" -v b="$t_apply" -v r="$rss_apply" 'BEGIN {
  printf "\napply vs baseline: %.2fx (goal >= 1.5x); apply peak RSS %d MiB (goal < 64 MiB)\n", a / b, r / 1024 }'
