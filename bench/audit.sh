#!/bin/bash
# bench/audit.sh - the audit log's performance goals (docs/audit.md
# "Performance"), each beside its baseline measured in the same run:
#   1. group-commit appends >= 100,000 entries/s on one core
#      (baseline: the same entries as plain SQLite inserts, WAL,
#      synchronous=NORMAL, 1000 rows per transaction)
#   2. verify of 1,000,000 entries < 2 s (baseline: sha256sum over the same
#      entry bytes)
#   3. a warm inclusion proof < 50 us, in process
#   4. proof cost at 10^4 .. 10^6 entries (10^7 with AUDIT_BIG=1: ~4 GiB of
#      disk and minutes of appending)
# The machine may be shared: every figure is the best of ROUNDS runs, and
# CPU time is printed beside wall time (CPU time does not grow with others'
# load).  Appends and the SQLite baseline run pinned to one CPU (taskset).
# Usage: bench/audit.sh path/to/creto   (bench_audit is taken from the same dir)
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
B=$(dirname "$CRETO")/bench_audit
[ -x "$B" ] || { echo "bench_audit not built next to $CRETO" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
N=${AUDIT_N:-1000000}
W=$(mktemp -d "${BENCH_DIR:-/tmp}/creto-bench-audit.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=""
echo "creto audit benchmark ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)); best of $ROUNDS"

best_rate() { sort -k3 -n | tail -n 1; }   # highest entries/s (wall)
best_time() { sort -k3 -n | head -n 1; }   # lowest seconds (wall)

# 1. appends vs plain SQLite inserts, interleaved rounds
: >app.txt; : >sql.txt
for r in $(seq "$ROUNDS"); do
  rm -rf log base.db*
  $PIN "$B" append log "$N" >>app.txt
  $PIN "$B" sqlite base.db "$N" >>sql.txt
done
read -r _ n a_wall a_rate a_cpu a_cpurate < <(best_rate <app.txt)
read -r _ _ s_wall s_rate s_cpu s_cpurate < <(best_rate <sql.txt)
printf 'appends (group commit, 1 CPU):  %8d entries/s wall (%d per CPU-s)  [%d entries in %.2f s]\n' "$a_rate" "$a_cpurate" "$n" "$a_wall"
printf 'baseline SQLite inserts:        %8d rows/s wall    (%d per CPU-s)\n' "$s_rate" "$s_cpurate"
echo "log size: $(du -sh log | cut -f1) for $n entries ($(du -b log/audit.db | cut -f1) bytes)"

# 2. verify vs sha256sum over the same bytes (the page cache is warm for both)
"$B" entries log entries.bin
: >ver.txt; : >sha.txt
for r in $(seq "$ROUNDS"); do
  "$B" verify log >>ver.txt
  s0=$(date +%s.%N); sha256sum entries.bin >/dev/null; s1=$(date +%s.%N)
  echo "sha x $(echo "$s1 - $s0" | bc)" >>sha.txt
done
read -r _ vn v_wall v_cpu < <(best_time <ver.txt)
read -r _ _ sha_wall < <(best_time <sha.txt)
printf 'verify %d entries:          %6.3f s wall (%.3f s CPU)   goal < 2 s\n' "$vn" "$v_wall" "$v_cpu"
printf 'baseline sha256sum same bytes:  %6.3f s  (%s MiB)\n' "$sha_wall" "$(( $(stat -c %s entries.bin) / 1048576 ))"

# 3 + 4. warm inclusion proofs at growing sizes
echo "inclusion proofs (warm, in process; each also verified):"
printf '  %10s %12s %12s %8s\n' entries "us/proof" "us CPU" hashes
sizes="10000 100000"
[ "$N" -ge 1000000 ] && sizes="$sizes 1000000"
[ "${AUDIT_BIG:-0}" = 1 ] && sizes="$sizes 10000000"
for s in $sizes; do
  d=log
  if [ "$s" != "$n" ]; then
    d=log-$s; rm -rf "$d"; "$B" append "$d" "$s" >/dev/null
  fi
  : >pr.txt
  for r in $(seq "$ROUNDS"); do "$B" prove "$d" 50000 >>pr.txt; done
  read -r _ pn p_wall p_cpu p_h < <(sort -k3 -n pr.txt | head -n 1)
  printf '  %10d %12.2f %12.2f %8.1f\n' "$pn" "$p_wall" "$p_cpu" "$p_h"
  if [ "$d" != log ]; then rm -rf "$d"; fi
done
