#!/bin/bash
# bench/token.sh - token endpoint issuance rate beside its ceiling, measured
# in the same process and run (issue 18 §4).
# Usage: bench/token.sh path/to/creto [SECONDS]   (bench_token from the same dir)
#        ROUNDS=N (default 3), HTTP_ONLY=1 (only the over-HTTP rows),
#        CONNS="4 1" (wrk connections of the over-HTTP rows)
# Issuance = creto_nhi_token_endpoint, the library call the gateway's POST
# /oauth/token makes, on one thread, over client assertions made before the
# timed run.  Ceiling = the two raw operations issuance cannot avoid, back to
# back on one thread over the same messages: OpenSSL verify of the
# assertion's signature + the issuer's signature (OpenSSL sign for a file
# key; for a SoftHSM2 key, C_Sign through creto's pkcs11 signer).  Goal:
# issuance >= 80% of the ceiling.  The two alternate in 0.1 s slices (the
# machine may be shared); each line is the run with the median ratio of
# ROUNDS runs.
# Over HTTP: `creto gateway` with workers = 1 (one thread issues) and
# token_endpoint = yes on 127.0.0.1:0, driven by wrk -t1 (one client thread;
# bench/token_http.lua sends pre-made form bodies, each once) over CONNS
# keep-alive connections (default "4 1": four agents asking at once, which
# is the issuance rate of the one gateway thread, then one at a time, where
# every request also waits for wrk's round trip).  Each
# round measures the library and the ceiling (bench_token, alternating
# slices) then, right after, SECONDS of HTTP; ratio = HTTP rate / that
# round's ceiling; gw-us/issue = the gateway process's CPU time (utime +
# stime from /proc/PID/stat, all threads) per issuance.  Rate limits are
# off, the replay cache holds every assertion, every issuance is a record
# of the audit log (creto gateway --audit DIR: group commit, as in serve).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
CRETO=$(realpath "${1:-build/creto}")
SECS=${2:-2}
ROUNDS=${ROUNDS:-3}
B=$(dirname "$CRETO")/bench_token
[ -x "$B" ] || { echo "bench_token not built next to $CRETO" >&2; exit 2; }
W=$(mktemp -d /tmp/creto-bench-token.XXXXXX)
GPID=""
cleanup() { [ -z "$GPID" ] || { kill "$GPID" 2>/dev/null || true; wait "$GPID" 2>/dev/null || true; }; rm -rf "$W"; }
trap cleanup EXIT

# median RUN...: of ROUNDS runs, the one with the median ratio (a best-of
# ratio would favour whichever side a load spike happened to hit)
median() {
  local i line
  for i in $(seq "$ROUNDS"); do
    line=$("$@")
    echo "$line $(echo "$line" | awk '{ printf "%d", 100 * $1 / $2 }')"
  done | sort -n -k3 | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}

if [ "${HTTP_ONLY:-0}" = 0 ]; then
echo "creto token endpoint benchmark ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)); median of $ROUNDS x ${SECS}s, one thread"
printf '%-9s %-9s %-8s %-6s %10s %10s %6s %9s\n' assertion issuer "key" store "issued/s" "ceiling/s" ratio "us/issue"
for st in file mem; do
  for a in ed25519 p256; do
    for i in ed25519 p256; do
      read -r rate ceil ratio <<<"$(median "$B" "$a" "$i" "$SECS" "$W" "$st")"
      printf '%-9s %-9s %-8s %-6s %10s %10s %5s%% %9s\n' "$a" "$i" file "$st" "$rate" "$ceil" "$ratio" \
        "$(awk -v r="$rate" 'BEGIN { printf "%.0f", 1e6 / r }')"
    done
  done
done

M=/usr/lib/softhsm/libsofthsm2.so
if [ -e "$M" ]; then
  mkdir "$W/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$W/tokens" >"$W/softhsm2.conf"
  export SOFTHSM2_CONF=$W/softhsm2.conf
  (umask 077; echo 1234 >"$W/pin"; echo 5678 >"$W/so")
  "$CRETO" hsm init --module "$M" --label bench --so-pin-file "$W/so" --pin-file "$W/pin" >/dev/null 2>&1
  "$CRETO" hsm keygen --module "$M" --pin-file "$W/pin" --type ed25519 --label ed pkcs11:token=bench >/dev/null 2>&1
  "$CRETO" hsm keygen --module "$M" --pin-file "$W/pin" --type ec-p256 --label p256 pkcs11:token=bench >/dev/null 2>&1
  Q="module-path=$M&pin-source=file:$W/pin"
  for a in ed25519 p256; do
    for k in ed:ed25519 p256:p256; do
      IFS=: read -r label i <<<"$k"
      read -r rate ceil ratio <<<"$(median "$B" "$a" "$i" "$SECS" "$W" file "pkcs11:token=bench;object=$label;type=private?$Q")"
      printf '%-9s %-9s %-8s %-6s %10s %10s %5s%% %9s\n' "$a" "$i" softhsm2 file "$rate" "$ceil" "$ratio" \
        "$(awk -v r="$rate" 'BEGIN { printf "%.0f", 1e6 / r }')"
    done
  done
else
  echo "(SoftHSM2 not installed: HSM issuer rows skipped)"
fi
echo "ratio = issued/s / ceiling/s (goal >= 80%); us/issue: wall time of one issuance;"
echo "store file: an SQLite file (each lookup takes and drops its locks); mem: loaded in memory (as from a backup)"
fi # HTTP_ONLY

# ---- over HTTP: creto gateway, one worker, one keep-alive connection ----
if ! command -v wrk >/dev/null; then
  echo "(wrk not installed: over-HTTP rows skipped)"
  exit 0
fi
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime, all threads
HSECS=$(awk -v s="$SECS" 'BEGIN { n = int(s); if (n < s) n++; if (n < 1) n = 1; print n }') # wrk takes whole seconds
PER=$((HSECS * 12000)) # bodies per round: above any rate one thread reaches here
CONNS=${CONNS:-4 1}
NC=$(echo $CONNS | wc -w)
echo
echo "over HTTP: creto gateway workers=1, wrk -t1 keep-alive over c connections, file issuer key, SQLite store file;"
echo "each round: library + ceiling (bench_token), then ${HSECS}s over HTTP; min/median/max of $ROUNDS rounds"
printf '%-9s %-9s %-2s %-17s %-17s %-17s %-10s %-14s %-10s\n' assertion issuer c "lib/s" "ceiling/s" "http/s" "ratio %" "gw-us/issue" "cpu-ratio %"
for a in ed25519 p256; do
  for i in ed25519 p256; do
    D=$W/http-$a-$i
    mkdir "$D"
    [ "$i" = p256 ] && ka=ecdsa-p256 || ka=ed25519
    "$CRETO" key gen --alg "$ka" -o "$D/issuer" >/dev/null 2>&1
    "$CRETO" nhi jwks --key "$D/issuer.key" -o "$D/jwks.json" >/dev/null 2>&1
    "$CRETO" nhi token replay-init --replay-state "$D/jti.state" >/dev/null 2>&1
    # the assertions, made before the timed runs (exp: 300 s later)
    "$B" forms "$a" $((PER * ROUNDS * NC)) "$D" http://creto.bench/oauth/token
    cat >"$D/gw.conf" <<EOF
[gateway]
listen = 127.0.0.1:0
workers = 1
nhi_db = $D/nhi.db
jwks = $D/jwks.json
token_endpoint = yes
issuer_key = $D/issuer.key
issuer_url = http://creto.bench
replay_state = $D/jti.state
replay_capacity = $((PER * ROUNDS * NC + 16))
token_rate_agent = -1
token_rate_source = -1
[upstream]
# required by the config; never contacted by the token endpoint
model m1 = http://127.0.0.1:9
EOF
    # the real audit log (group commit off the request path), as in serve
    "$CRETO" audit init --dir "$D/audit" --origin bench-token >/dev/null 2>&1
    "$CRETO" gateway --config "$D/gw.conf" --audit "$D/audit" 2>"$D/gw.err" &
    GPID=$!
    PORT=""
    for _ in $(seq 1 100); do # the port it bound
      PORT=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$GPID," 'index($0, p) { n = split($4, x, ":"); print x[n]; exit }')
      [ -n "$PORT" ] && break
      kill -0 "$GPID" 2>/dev/null || break
      sleep 0.05
    done
    [ -n "$PORT" ] || { echo "token.sh: gateway did not start: $(cat "$D/gw.err")" >&2; exit 3; }
    run=0
    for cn in $CONNS; do
    for r in $(seq "$ROUNDS"); do
      run=$((run + 1))
      read -r lib ceil <<<"$("$B" "$a" "$i" "$SECS" "$W" file)"
      c0=$(cpu_ticks "$GPID")
      wrk -t1 -c"$cn" -d"${HSECS}s" -s "$HERE/token_http.lua" "http://127.0.0.1:$PORT" -- \
        "$D/forms" $(((run - 1) * PER + 1)) "$PER" >"$D/wrk.$r"
      c1=$(cpu_ticks "$GPID")
      if grep -q 'Non-2xx\|Socket errors' "$D/wrk.$r"; then
        echo "token.sh: errors or refusals during the HTTP run: $(grep 'Non-2xx\|Socket errors' "$D/wrk.$r")" >&2
        exit 3
      fi
      n=$(awk '/ requests in / { print $1 }' "$D/wrk.$r")
      rate=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$D/wrk.$r")
      echo "$lib $ceil $rate" \
        "$(awk -v h="$rate" -v c="$ceil" 'BEGIN { printf "%.0f", 100 * h / c }')" \
        "$(awk -v d=$((c1 - c0)) -v t="$TCK" -v n="$n" 'BEGIN { printf "%.0f", 1e6 * d / t / n }')" \
        "$(awk -v d=$((c1 - c0)) -v t="$TCK" -v n="$n" -v c="$ceil" 'BEGIN { printf "%.0f", 100 * (1e6 / c) / (1e6 * d / t / n) }')"
    done >"$D/rows.$cn"
    mmm() { # min/median/max of column $1 over the rounds
      awk -v c="$1" '{ print $c }' "$D/rows.$cn" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR] }'
    }
    printf '%-9s %-9s %-2s %-17s %-17s %-17s %-10s %-14s %-10s\n' "$a" "$i" "$cn" "$(mmm 1)" "$(mmm 2)" "$(mmm 3)" "$(mmm 4)" "$(mmm 5)" "$(mmm 6)"
    done
    kill "$GPID"
    wait "$GPID" 2>/dev/null || true
    GPID=""
  done
done
echo "http/s: tokens issued per second over HTTP, every answer 200 (checked); ratio = http/s / ceiling/s of the same round (goal >= 80%)"
echo "gw-us/issue: gateway CPU microseconds per issuance (/proc utime+stime, all threads, ${TCK} Hz ticks);"
echo "cpu-ratio = ceiling us per operation pair / gw-us/issue (the same goal in CPU time: wrk shares the CPUs)"
echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
