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
  | awk -v l="$1" '$1 == "private" && $3 == l {for (i = 1; i < NF; i++) if ($i == "CKA_ID") print $(i + 1)}'; }

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

# ---- remote (p11-kit server on a Unix socket) beside in-process, and failover ----
# Two `p11-kit server` processes over two copies of the token, reached through
# p11-kit module configurations in a private mount namespace (as in
# tests/integration/test_hsm_remote.sh).
if [ -z "${CRETO_BENCH_NS:-}" ] && command -v p11-kit >/dev/null && command -v unshare >/dev/null; then
  CRETO_BENCH_NS=1 unshare -m --propagation private bash -c '
    set -euo pipefail
    W=$1; M=$2; BENCH=$3; SECS=$4
    cp -a "$W/tokens" "$W/tokens-b"
    sed "s|$W/tokens|$W/tokens-b|" "$W/softhsm2.conf" >"$W/softhsm2-b.conf"
    declare -A PG
    start() { rm -f "$W/$1.sock"; SOFTHSM2_CONF=$2 setsid p11-kit server -f -n "$W/$1.sock" --provider "$M" pkcs11:token=bench >/dev/null 2>&1 &
      PG[$1]=$!; for _ in $(seq 1 100); do [ -S "$W/$1.sock" ] && return; sleep 0.05; done; echo "server $1 did not start" >&2; exit 3; }
    trap "for p in \${PG[@]}; do kill -CONT -- -\$p 2>/dev/null; kill -- -\$p 2>/dev/null; done" EXIT
    start a "$W/softhsm2.conf"; start b "$W/softhsm2-b.conf"
    mkdir "$W/mods"
    printf "remote: unix:path=%s\n" "$W/a.sock" >"$W/mods/hsm-a.module"
    printf "remote: unix:path=%s\n" "$W/b.sock" >"$W/mods/hsm-b.module"
    mount --bind "$W/mods" /usr/share/p11-kit/modules
    K="pkcs11:token=bench;object=p256"
    inproc=$("$BENCH" ha "$K" "$W/pin" "$SECS" 2000 "$M" | awk "{print \$1}")
    remote=$("$BENCH" ha "$K" "$W/pin" "$SECS" 2000 p11-kit:hsm-a | awk "{print \$1}")
    rawremote=$("$BENCH" creto p11-kit:hsm-a bench "$W/pin" p256 "$SECS" 1 | awk "{print \$1}")
    echo "ECDSA P-256, 1 thread: in-process $inproc/s, remote (p11-kit server, Unix socket) $remote/s through the failover handle, $rawremote/s without it"
    DL=500
    "$BENCH" ha "$K" "$W/pin" 4 $DL p11-kit:hsm-a p11-kit:hsm-b >"$W/kill.out" &
    b=$!; sleep 1.5; kill -- -${PG[a]}; wait $b || true
    echo "server killed:  longest gap between two signatures $(awk "{print \$4}" "$W/kill.out") ms (goal < 100 ms after the failure is seen); $(awk "{print \$3}" "$W/kill.out") failed"
    start a "$W/softhsm2.conf"
    "$BENCH" ha "$K" "$W/pin" 4 $DL p11-kit:hsm-a p11-kit:hsm-b >"$W/hang.out" &
    b=$!; sleep 1.5; kill -STOP -- -${PG[a]}; wait $b || true; kill -CONT -- -${PG[a]}
    echo "server stopped: longest gap between two signatures $(awk "{print \$4}" "$W/hang.out") ms (goal < deadline $DL ms + 100 ms); $(awk "{print \$3}" "$W/hang.out") failed"
  ' bench "$W" "$M" "$BENCH" "$SECS"
else
  echo "remote: p11-kit or unshare missing, skipped"
fi
