#!/bin/bash
# bench/serve.sh - an idle `creto serve` (gateway with one routed model, diode
# watcher, isolation monitor every 60 s, audit log with a file checkpoint
# key): start time (exec to the "ready" log line), resident memory (VmRSS)
# and wakeups per second (voluntary + involuntary context switches of all
# its threads over WINDOW seconds, from /proc/PID/task/*/status).  Baseline
# in the same run: `creto gateway` alone on the same config's gateway part.
# Everything on 127.0.0.1.  Usage: bench/serve.sh [BUILD_DIR] [WINDOW] [RUNS]
set -euo pipefail
B=$(realpath "${1:-build}")
WIN=${2:-10}
RUNS=${3:-3}
CRETO=$B/creto
UP=$B/bench_upstream
for x in "$CRETO" "$UP"; do [ -x "$x" ] || { echo "serve.sh: $x missing (build first)" >&2; exit 2; }; done
W=$(mktemp -d /tmp/creto-bench-serve.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cd "$W"
umask 077
# ---- the enclave ----
for k in a b; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
"$CRETO" state init --state S --trust root.json >/dev/null
"$CRETO" key gen --alg ed25519 -o cp >/dev/null
"$CRETO" audit init --dir A --origin bench/serve --key cp.key >/dev/null
"$CRETO" key gen --alg ed25519 -o iss >/dev/null
"$CRETO" nhi init --db nhi.db >/dev/null
"$CRETO" nhi jwks --key iss.key -o jwks.json >/dev/null
mkdir -p D R w; head -c 100000 /dev/urandom >w/weights.bin
"$CRETO" model sign w --key a.key -o w/model.sig >/dev/null 2>&1
"$CRETO" update create --type model-weights --name m1 --version 1 --payload w -o m.st >/dev/null
for k in a b; do "$CRETO" update sign m.st --key $k.key >/dev/null; done
"$CRETO" update assemble m.st --payload w -o m.crupdate >/dev/null 2>&1
"$CRETO" update apply m.crupdate --trust root.json --state S >/dev/null
UPORT=$(freeport)
"$UP" "$UPORT" >up.out 2>&1 &
PIDS="$PIDS $!"
printf 'nameserver 127.0.0.1\n' >resolv.conf
chmod 644 resolv.conf
gwpart() {
cat <<C
[gateway]
listen = 127.0.0.1:$1
workers = 2
nhi_db = $W/nhi.db
jwks = $W/jwks.json
[upstream]
model m1 = http://127.0.0.1:$UPORT
C
}
mkconf() {
cat <<C
[trust]
root = $W/root.json
[state]
dir = $W/S
[diode]
drop = $W/D
[nhi]
store = $W/nhi.db
[audit]
dir = $W/A
checkpoint_key = $W/cp.key
[isolation]
resolv_conf = $W/resolv.conf
[serve]
runtime_dir = $W/R
C
gwpart "$1"
}
now_ms() { date +%s%3N; }
ctxsw() { # PID: total context switches of all threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'
}
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
measure() { # NAME CMD...: prints start ms, RSS KiB, wakeups/s
  local name=$1; shift
  : >"$name.err"
  local t0; t0=$(now_ms)
  "$@" 2>"$name.err" &
  local pid=$!
  local i
  for i in $(seq 1 400); do grep -qE "$READY" "$name.err" && break; sleep 0.01; done
  local t1; t1=$(now_ms)
  grep -qE "$READY" "$name.err" || { echo "$name did not start: $(tail -3 "$name.err")" >&2; kill $pid; exit 3; }
  sleep 1
  local c0; c0=$(ctxsw $pid)
  sleep "$WIN"
  local c1; c1=$(ctxsw $pid)
  local rss; rss=$(rss_kib $pid)
  kill -TERM $pid; wait $pid || true
  echo "$((t1 - t0)) $rss $(( (c1 - c0) / WIN ))"
}
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report() { # NAME FILE
  printf '%-14s start %5s ms   RSS %6s KiB   wakeups %4s /s   (median of %s runs, %s s window)\n' "$1" \
    "$(cut -d' ' -f1 "$2" | med)" "$(cut -d' ' -f2 "$2" | med)" "$(cut -d' ' -f3 "$2" | med)" "$RUNS" "$WIN"
}
: >serve.res; : >gw.res
for r in $(seq 1 "$RUNS"); do
  P=$(freeport); mkconf "$P" >creto.conf
  READY='serve info event=ready'
  measure serve "$CRETO" serve --config "$W/creto.conf" >>serve.res
  P=$(freeport); gwpart "$P" >gw.conf
  READY='event=listening addr='
  measure gateway "$CRETO" gateway --config "$W/gw.conf" >>gw.res
done
echo "bench/serve.sh: idle daemon, $(nproc) CPUs, $(uname -r)"
report "creto serve" serve.res
report "gateway only" gw.res
