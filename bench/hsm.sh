#!/bin/bash
# bench/hsm.sh - signatures/s through SoftHSM2: creto's HSM signer with 1 and
# 2 threads, beside the module's own cost (a raw C_SignInit+C_Sign loop in
# the same program), `pkcs11-tool --sign` in a loop, and OpenSSL signing in
# process, all in the same run, for Ed25519 and ECDSA P-256.
# Usage: bench/hsm.sh path/to/creto [SECONDS]
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
SECS=${2:-3}
BENCH=$(dirname "$CRETO")/bench_hsm
M=/usr/lib/softhsm/libsofthsm2.so
[ -x "$BENCH" ] || { echo "bench_hsm missing next to $CRETO" >&2; exit 2; }
[ -e "$M" ] || { echo "SoftHSM2 missing" >&2; exit 2; }
W=$(mktemp -d /tmp/creto-bench-hsm.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir "$W/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$W/tokens" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
umask 077
echo 1234 >"$W/pin"; echo 5678 >"$W/so"
"$CRETO" hsm init --module "$M" --label bench --so-pin-file "$W/so" --pin-file "$W/pin" >/dev/null
"$CRETO" hsm keygen --module "$M" --pin-file "$W/pin" --type ed25519 --label ed pkcs11:token=bench >/dev/null
"$CRETO" hsm keygen --module "$M" --pin-file "$W/pin" --type ec-p256 --label p256 pkcs11:token=bench >/dev/null
head -c 64 /dev/zero >"$W/msg"
head -c 32 /dev/zero >"$W/hash"   # pkcs11-tool's CKM_ECDSA signs a given hash
idof() { "$CRETO" hsm list --module "$M" --pin-file "$W/pin" pkcs11:token=bench \
  | awk -v l="$1" '$1 == "private" && $3 == l {sub("id=", "", $4); print $4}'; }

rate() { awk '{print $1}'; }
cpu() { awk '{print $4}'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "SoftHSM2 $(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null || echo '?'), $(nproc) CPUs, ${SECS}s per figure"
printf '%-11s %11s %11s %9s %11s %11s %9s %12s %8s %12s %12s\n' alg "creto 1thr" "creto 2thr" "2/1" \
  "raw 1thr" "raw 2thr" "raw 2/1" "cpu-diff us" "lib us" "pkcs11-tool" "openssl"
for k in ed:ed25519:EDDSA p256:ecdsa-p256:ECDSA; do
  IFS=: read -r label alg mech <<<"$k"
  c1line=$("$BENCH" creto "$M" bench "$W/pin" "$label" "$SECS" 1)
  c1=$(echo "$c1line" | rate); c1cpu=$(echo "$c1line" | cpu)
  c2=$("$BENCH" creto "$M" bench "$W/pin" "$label" "$SECS" 2 | rate)
  r1line=$("$BENCH" raw "$M" bench "$W/pin" "$label" "$SECS" 1)
  r1=$(echo "$r1line" | rate); r1cpu=$(echo "$r1line" | cpu)
  r2=$("$BENCH" raw "$M" bench "$W/pin" "$label" "$SECS" 2 | rate)
  os=$("$BENCH" openssl "$alg" "$SECS" | rate)
  cn=$("$BENCH" creto-null "$M" bench "$W/pin" "$label" "$SECS" 1 | cpu)
  rn=$("$BENCH" raw-null "$M" bench "$W/pin" "$label" "$SECS" 1 | cpu)
  lib=$(awk -v c="$cn" -v r="$rn" 'BEGIN{printf "%.2f", c - r}')
  # pkcs11-tool: one process per signature (load module, log in, sign).
  pt="n/a"
  if command -v pkcs11-tool >/dev/null; then
    id=$(idof "$label")
    in=$W/msg; [ "$mech" = ECDSA ] && in=$W/hash
    n=0; t0=$(date +%s.%N)
    while :; do
      pkcs11-tool --module "$M" --token-label bench --login --pin 1234 --sign --mechanism "$mech" \
        --id "$id" -i "$in" -o "$W/sig" >/dev/null 2>&1 || { echo "pkcs11-tool --sign failed" >&2; exit 3; }
      n=$((n + 1))
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" -v s="$SECS" 'BEGIN{exit !(b-a >= s)}' && break
    done
    pt=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}')
  fi
  ratio=$(awk -v a="$c1" -v b="$c2" 'BEGIN{printf "%.2fx", b/a}')
  rratio=$(awk -v a="$r1" -v b="$r2" 'BEGIN{printf "%.2fx", b/a}')
  over=$(awk -v c="$c1cpu" -v r="$r1cpu" 'BEGIN{printf "%.1f", c - r}')
  printf '%-11s %11s %11s %9s %11s %11s %9s %12s %8s %12s %12s\n' "$alg" "$c1/s" "$c2/s" "$ratio" "$r1/s" \
    "$r2/s" "$rratio" "$over" "$lib" "$pt/s" "$os/s"
done
echo "cpu-diff us: creto's CPU time per signature minus the raw C_Sign loop's, 1 thread, same program"
echo "  (noisy: SoftHSM2's own cost varies by more than the difference on a loaded machine)."
echo "lib us: the same difference with C_SignInit/C_Sign replaced by functions that return at once,"
echo "  i.e. creto's own per-signature overhead (pool, lookup, host hashing for ECDSA) over SoftHSM2."
