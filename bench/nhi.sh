#!/bin/bash
# bench/nhi.sh - NHI resolver and store load figures beside OpenSSL's raw
# verify rate, measured in the same run.
# Usage: bench/nhi.sh path/to/creto   (bench_nhi is taken from the same dir)
# Goals (issue 6): cold resolve >= 85% of `openssl speed` verify/s for the same
# algorithm; cached resolve >= 1,000,000/s per core; 1,000,000 agents load from
# backup in < 5 s using < 512 MiB.
# The machine may be shared: each figure is the best of ROUNDS interleaved
# rounds (ours, then OpenSSL's), so both see the same load.
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
B=$(dirname "$CRETO")/bench_nhi
[ -x "$B" ] || { echo "bench_nhi not built next to $CRETO" >&2; exit 2; }
SECS=${SECS:-2}
ROUNDS=${ROUNDS:-3}
AGENTS=${AGENTS:-1000000}
W=$(mktemp -d /tmp/bench-nhi.XXXXXX)
trap 'rm -rf "$W"' EXIT

max() { sort -n | tail -n 1; }
# openssl speed verify/s: ossl ALGO THREADS [-elapsed]; THREADS copies run
# at once and their rates are summed (`-multi` mis-sums EdDSA in 3.0).
#   without -elapsed OpenSSL divides by its CPU user time, with it by wall time
ossl1() {
  openssl speed -seconds "$SECS" ${2:-} "$1" 2>/dev/null |
    awk -v a="$1" '
      a == "ed25519" && /Ed25519/ { print int($NF) }
      a == "ecdsap256" && /nistp256/ { print int($NF) }' | tail -n 1
}
ossl() {
  local i
  for i in $(seq "$2"); do ossl1 "$1" "${3:-}" >"$W/ossl.$i" & done
  wait
  cat "$W"/ossl.* | awk '{ s += $1 } END { print s }'
  rm -f "$W"/ossl.*
}

echo "creto nhi benchmark ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)); best of $ROUNDS x ${SECS}s"
echo "wall: operations / elapsed time (vs openssl speed -elapsed);"
echo "cpu:  operations / CPU time x threads (vs openssl speed, which divides by CPU time)"
printf '%-8s %-7s %-3s %12s %12s %6s   %12s %12s %6s\n' alg mode thr "wall res/s" "ossl wall" ratio "cpu res/s" "ossl cpu" ratio
for alg in ed25519 p256; do
  oalg=$([ $alg = ed25519 ] && echo ed25519 || echo ecdsap256)
  for th in 1 2; do
    ow=(); oc=(); bw=(); bc=(); cw=(); cc=()
    for _ in $(seq "$ROUNDS"); do
      read -r a b <<<"$("$B" resolve $alg cold "$th" "$SECS")"; ow+=("$a"); oc+=("$b")
      bw+=("$(ossl "$oalg" "$th" -elapsed)")
      bc+=("$(ossl "$oalg" "$th")")
      read -r a b <<<"$("$B" resolve $alg cached "$th" "$SECS")"; cw+=("$a"); cc+=("$b")
    done
    OW=$(printf '%s\n' "${ow[@]}" | max); OC=$(printf '%s\n' "${oc[@]}" | max)
    BW=$(printf '%s\n' "${bw[@]}" | max); BC=$(printf '%s\n' "${bc[@]}" | max)
    CW=$(printf '%s\n' "${cw[@]}" | max); CC=$(printf '%s\n' "${cc[@]}" | max)
    printf '%-8s %-7s %-3s %12s %12s %5s%%   %12s %12s %5s%%\n' $alg cold "$th" "$OW" "$BW" "$((100 * OW / BW))" "$OC" "$BC" "$((100 * OC / BC))"
    printf '%-8s %-7s %-3s %12s %12s %6s   %12s %12s %6s\n' $alg cached "$th" "$CW" - - "$CC" "$((CC / th))/core" -
  done
done

echo
echo "where one cold resolve spends its time, microseconds per token (one thread, each stage alone):"
printf '%-8s %8s %8s %8s %8s %8s %6s\n' alg "JWS" verify claims store whole bytes
for alg in ed25519 p256; do
  read -r a b c d w n <<<"$("$B" parts $alg)"
  printf '%-8s %8s %8s %8s %8s %8s %6s\n' $alg "$a" "$b" "$c" "$d" "$w" "$n"
done
echo "(JWS: split, base64url, header JSON; verify: the signature check; claims: payload JSON;"
echo " store: agent lookup in the in-memory SQLite store; bytes: token length)"

echo
echo "store of $AGENTS agents:"
"$B" mkbackup "$AGENTS" "$W/nhi.bak"
best=""
for _ in 1 2 3; do
  r=$("$B" load "$W/nhi.bak")
  t=$(echo "$r" | cut -d' ' -f1)
  if [ -z "$best" ] || awk -v a="$t" -v b="$(echo "$best" | cut -d' ' -f1)" 'BEGIN { exit !(a < b) }'; then best=$r; fi
done
read -r t rss bytes <<<"$best"
echo "backup $(stat -c %s "$W/nhi.bak") bytes (image $bytes); load from backup into memory: ${t} s (goal < 5 s), peak RSS ${rss} MiB (goal < 512 MiB)"
