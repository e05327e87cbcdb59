#!/bin/bash
# bench/sha3.sh - the multi-buffer SHA3-256 engine (src/hash/sha3x.c) per
# core on every back end this CPU has, against `openssl speed -evp sha3-256`
# measured in the same run, then on all cores.
# Usage: bench/sha3.sh BUILD/creto [SECONDS_PER_FIGURE]   (default 2)
# The driver is BUILD/bench_sha3x (built from bench/sha3x.c next to creto).
# Per-core figures are CPU time of one thread (as openssl speed counts them),
# so load from other processes lowers them less; the all-cores figure is
# wall time and depends on what else runs (load average printed).
set -euo pipefail
creto=${1:?usage: bench/sha3.sh PATH/TO/creto [SECONDS]}
secs=${2:-2}
drv="$(dirname "$creto")/bench_sha3x"
[ -x "$drv" ] || { echo "bench/sha3.sh: $drv not found (build the bench targets)" >&2; exit 2; }

model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
fam=$(awk -F': ' '/^cpu family/ {print $2; exit}' /proc/cpuinfo)
mod=$(awk -F': ' '/^model[ \t]*:/ {print $2; exit}' /proc/cpuinfo)
flags=$(grep -m1 -ow -E 'avx2|avx512f|avx512vl' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
echo "cpu: $model (family $fam model $mod), $(nproc) CPUs, flags: ${flags:-none}"
echo "switches: CRETO_SHA3_NO_AVX2=${CRETO_SHA3_NO_AVX2:-unset} CRETO_SHA3_NO_AVX512=${CRETO_SHA3_NO_AVX512:-unset}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# openssl speed: one core, 1 MiB blocks; "k" = 1000 bytes/s
speed=$(openssl speed -evp sha3-256 -bytes 1048576 -seconds "$secs" 2>/dev/null |
  awk '/^sha3-256|^SHA3-256/ {v=$NF} END {print v}')
speed_mbs=$(awk -v s="${speed%k}" 'BEGIN {printf "%.0f", s / 1000}')
echo "openssl speed -evp sha3-256 (1 MiB blocks, one core, $(openssl version | cut -d' ' -f1-2)): $speed_mbs MB/s"
echo

out=$("$drv" "$secs")
echo "$out" | awk '/^chosen/ {print "back end chosen at run time: " $2} /^calibration/ {$1 = ""; print "calibration at first use (MB/s per core):" $0}'
echo
printf '%-10s %5s %12s %18s %16s\n' "back end" lanes "MB/s/core" "x openssl speed" "x EVP in-process"
echo "$out" | awk -v sp="$speed_mbs" '/^core/ {printf "%-10s %5s %12s %17.2fx %15.2fx\n", $2, $3, $4, $4 / sp, $5}'
echo
echo "$out" | awk -v sp="$speed_mbs" '/^all/ {split($5, t, "="); printf "all %s cores, %s: %s MB/s (%.2fx one core of openssl speed; x %s = %.0f MB/s if openssl ran on every core)\n", t[2], $2, $4, $4 / sp, t[2], sp * t[2]}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
