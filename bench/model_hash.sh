#!/bin/bash
# model_hash.sh - throughput and peak RSS of `creto model hash` beside
# sequential `openssl dgst -sha3-256` and `sha256sum` over the same files,
# and beside the machine's limit (openssl speed -evp sha3-256, one core, x
# cores), all measured in this run.
# Usage: bench/model_hash.sh path/to/creto [GiB]
#   Two cases: a model-like directory (4 weight files of GiB/4 each plus 300
#   small files) and a single large file of GiB (default 4).  Data is
#   generated under the build directory and deleted afterwards.
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
GIB=${2:-4}
RUN=$(dirname "$CRETO")/bench_measure
[ -x "$RUN" ] || { echo "bench_measure missing next to $CRETO (cmake --build)" >&2; exit 2; }
CORES=$(nproc)
W=$(mktemp -d "$(dirname "$CRETO")/bench-model.XXXXXX")
trap 'rm -rf "$W"' EXIT
MIB=$((GIB * 1024))

gen() { # gen FILE MiB: incompressible data, fast (AES-CTR keystream)
  { openssl enc -aes-128-ctr -nosalt -pass pass:"$1" -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $(($2 * 1024 * 1024)) >"$1"
}
echo "generating ${GIB} GiB model directory and ${GIB} GiB single file under $W ..."
mkdir -p "$W/model/tok" "$W/single"
for i in 1 2 3 4; do gen "$W/model/model-0000$i-of-00004.safetensors" $((MIB / 4)); done
for i in $(seq 1 300); do head -c $((4096 + i * 97)) /dev/urandom >"$W/model/tok/part-$i.json" || true; done
gen "$W/single/model.safetensors" "$MIB"
cat "$W"/model/*.safetensors "$W"/model/tok/* "$W"/single/* >/dev/null # page cache warm

# openssl speed: single-core SHA3-256 rate in bytes/s on 1 MiB blocks
SPEED=$(openssl speed -evp sha3-256 -bytes 1048576 -seconds 3 2>/dev/null | awk '/^sha3-256|^SHA3-256/ {v=$NF} END {print v}')
SPEED_BPS=$(awk -v s="${SPEED%k}" 'BEGIN {printf "%.0f", s * 1000}')
LIMIT=$((SPEED_BPS * CORES))

# measure LABEL BYTES CMD...: prints a table row; MB/s = 10^6 bytes/s
measure() {
  local label=$1 bytes=$2; shift 2
  local out
  out=$("$RUN" "$@" 2>&1 >/dev/null | tail -n 1)
  local secs=${out% *} rss=${out#* }
  awk -v l="$label" -v b="$bytes" -v s="$secs" -v r="$rss" -v lim="$LIMIT" -v base="${BASE:-0}" \
    'BEGIN { mbs = b / s / 1e6; printf "  %-50s %7.2f s %9.1f MB/s %7.1f MiB RSS", l, s, mbs, r / 1024;
             if (base > 0) printf "  %5.2fx seq. openssl", mbs / base;
             if (l ~ /sha3-256|-sha3-256/) printf "  %5.1f%% of limit", 100 * b / s / lim;
             printf "\n" }'
  LAST_MBS=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.3f", b / s / 1e6 }')
}

echo
echo "machine: $CORES cores; openssl speed -evp sha3-256 (1 MiB blocks): $((SPEED_BPS / 1000000)) MB/s per core;"
echo "limit (x $CORES cores): $((LIMIT / 1000000)) MB/s.  Other processes may share the CPU: see load below."
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for case in model single; do
  D=$W/$case
  BYTES=$(find "$D" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
  NF=$(find "$D" -type f | wc -l)
  echo
  echo "case '$case': $NF files, $((BYTES / 1048576)) MiB"
  mapfile -t FILES < <(find "$D" -type f | sort)
  BASE=0
  measure "openssl dgst -sha3-256 (sequential)" "$BYTES" openssl dgst -sha3-256 "${FILES[@]}"
  BASE=$LAST_MBS
  measure "sha256sum (sequential)" "$BYTES" sha256sum "${FILES[@]}"
  measure "creto model hash (files, sha3-256)" "$BYTES" "$CRETO" model hash "$D"
  measure "creto model hash (shards 1e9, sha3-256)" "$BYTES" "$CRETO" model hash "$D" --method shards
  measure "creto model hash (shards, sha3-256, --threads 1)" "$BYTES" "$CRETO" model hash "$D" --method shards --threads 1
  measure "creto model hash (shards 1e9, sha256)" "$BYTES" "$CRETO" model hash "$D" --method shards --hash sha256
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "goal: >= 1.8x sequential openssl dgst on 2 cores, within 10% of the limit, peak RSS < 64 MiB"
