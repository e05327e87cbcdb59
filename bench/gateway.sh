#!/bin/bash
# bench/gateway.sh - the inference gateway beside nginx, in the same run, on
# the same small C upstream (bench_upstream: one fixed chat completion):
#   - added latency at concurrency 1 (p50, p99 over going direct),
#   - throughput at concurrency 64 with the proxy's CPU microseconds per
#     request,
#   - both also through bench_relay (bench/relay.c), the floor: a bare
#     two-thread TCP relay that parses nothing, so the kernel's share of any
#     proxy on this machine stands beside the goals,
# each as min/median/max of RUNS repeated wrk runs.  The gateway runs with
# its token check (warm cache), the strict body parse, usage accounting and
# one audit record per request (the real audit log: group commit, off the
# request path, as in creto serve).
# nginx: Debian's, worker_processes auto, keepalive upstream,
# proxy_buffering off.  Everything on 127.0.0.1.
# Usage: bench/gateway.sh [BUILD_DIR] [SECONDS] [RUNS]   (default build 3 3)
set -euo pipefail
B=$(realpath "${1:-build}")
SECS=${2:-3}
RUNS=${3:-3}
CRETO=$B/creto
UP=$B/bench_upstream
RELAY=$B/bench_relay
for x in "$CRETO" "$UP" "$RELAY"; do [ -x "$x" ] || { echo "gateway.sh: $x missing (build first)" >&2; exit 2; }; done
command -v wrk >/dev/null || { echo "gateway.sh: wrk missing (apt-get install wrk)" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "gateway.sh: nginx missing (apt-get install nginx)" >&2; exit 2; }
W=$(mktemp -d /tmp/creto-bench-gw.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
waitport() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# ---- upstream ----
UPORT=$(freeport)
"$UP" "$UPORT" >"$W/up.out" &
UPID=$!; PIDS="$PIDS $UPID"
waitport "$UPORT"

# ---- the floor: a bare relay in front of the same upstream ----
RPORT=$(freeport)
"$RELAY" "$RPORT" "$UPORT" >"$W/relay.out" &
RPID=$!; PIDS="$PIDS $RPID"
waitport "$RPORT"

# ---- agent identity ----
"$CRETO" key gen --alg ed25519 -o "$W/issuer" >/dev/null
"$CRETO" nhi init --db "$W/nhi.db" >/dev/null
"$CRETO" nhi jwks --key "$W/issuer.key" -o "$W/jwks.json" >/dev/null
"$CRETO" nhi add --db "$W/nhi.db" --id bench --name Bench --scope model:m1 >/dev/null 2>&1
"$CRETO" nhi token issue --db "$W/nhi.db" --agent bench --key "$W/issuer.key" --ttl 1h -o "$W/tok" >/dev/null 2>&1
export TOKEN
TOKEN=$(cat "$W/tok")

# ---- gateway ----
GPORT=$(freeport)
cat >"$W/gw.conf" <<EOF
[gateway]
listen = 127.0.0.1:$GPORT
workers = 2
nhi_db = $W/nhi.db
jwks = $W/jwks.json
[upstream]
model m1 = http://127.0.0.1:$UPORT
pool_idle = 128
EOF
# one audit record per request in the real audit log (group commit off the
# request path, as in creto serve)
"$CRETO" audit init --dir "$W/audit" --origin bench-gateway >/dev/null
"$CRETO" gateway --config "$W/gw.conf" --audit "$W/audit" 2>"$W/gw.err" &
GPID=$!; PIDS="$PIDS $GPID"
waitport "$GPORT"
# the same gateway with busy polling (busy_poll_us = 100: docs/gateway.md
# "Busy polling"), its own audit log
BPORT=$(freeport)
sed "s/^listen = .*/listen = 127.0.0.1:$BPORT/; s/^\[gateway\]$/[gateway]\nbusy_poll_us = 100/" "$W/gw.conf" >"$W/gwbp.conf"
"$CRETO" audit init --dir "$W/audit-bp" --origin bench-gateway-bp >/dev/null
"$CRETO" gateway --config "$W/gwbp.conf" --audit "$W/audit-bp" 2>"$W/gwbp.err" &
BPID=$!; PIDS="$PIDS $BPID"
waitport "$BPORT"

# ---- nginx ----
NPORT=$(freeport)
mkdir -p "$W/nginx/logs"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes auto;
user root;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/nginx/cb; proxy_temp_path $W/nginx/px;
  fastcgi_temp_path $W/nginx/fc; uwsgi_temp_path $W/nginx/uw; scgi_temp_path $W/nginx/sc;
  upstream vllm { server 127.0.0.1:$UPORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NPORT;
    location / {
      proxy_pass http://vllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' &
NPID=$!; PIDS="$PIDS $NPID"
waitport "$NPORT"

cat >"$W/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"m1","messages":[{"role":"user","content":"hello there"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
EOF
# sanity: every path answers 200
for p in "$UPORT" "$RPORT" "$NPORT" "$GPORT" "$BPORT"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -d '{"model":"m1","messages":[]}' "http://127.0.0.1:$p/v1/chat/completions")
  [ "$code" = 200 ] || { echo "gateway.sh: port $p answered $code" >&2; cat "$W/gw.err" >&2; exit 3; }
done

# CPU ticks (utime+stime) of a process and its children's threads
ticks() {
  local t=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)
# to_us: wrk latency "123.45us" / "1.23ms" / "1.00s" -> microseconds
to_us() { awk '{v=$1; if (v ~ /us$/) {sub("us","",v); print v+0} else if (v ~ /ms$/) {sub("ms","",v); print v*1000} else {sub("s","",v); print v*1000000}}'; }

# run NAME PORT CONNS -> fills $W/NAME.CONNS with "p50 p99 rps cpu_us_per_req" lines
run() {
  local name=$1 port=$2 conns=$3 pid=$4 threads=1
  [ "$conns" -gt 1 ] && threads=2
  local c0 c1 out
  c0=$(ticks $pid)
  out=$(wrk -t$threads -c"$conns" -d"${SECS}s" --latency -s "$W/post.lua" "http://127.0.0.1:$port/v1/chat/completions")
  c1=$(ticks $pid)
  local p50 p99 rps reqs
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_us)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_us)
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then echo "gateway.sh: $name returned errors: $out" >&2; grep -v " audit {" "$W/gw.err" | head -20 >&2; exit 3; fi
  echo "$p50 $p99 $rps $(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')" >>"$W/$name.$conns"
}
# the busy-polling gateway sleeps between runs (no events, no polling)
for r in $(seq 1 "$RUNS"); do
  run direct "$UPORT" 1 "$UPID"; run floor "$RPORT" 1 "$RPID"; run nginx "$NPORT" 1 "$NPID"
  run gateway "$GPORT" 1 "$GPID"
  run gateway-bp "$BPORT" 1 "$BPID"
done
for r in $(seq 1 "$RUNS"); do
  run direct "$UPORT" 64 "$UPID"; run floor "$RPORT" 64 "$RPID"; run nginx "$NPORT" 64 "$NPID"
  run gateway "$GPORT" 64 "$GPID"
  run gateway-bp "$BPORT" 64 "$BPID"
done

# ---- SSE: 25 events written 20 ms apart; first-event time and per-event
# delay (upstream write -> client read), direct and through each proxy ----
RAWPY=$(dirname "$(realpath "$0")")/../tests/standin/raw.py
SBODY='{"model":"m1","stream":true,"messages":[{"role":"user","content":"hello"}]}'
for r in $(seq 1 "$RUNS"); do
  for n in direct:$UPORT nginx:$NPORT gateway:$GPORT; do
    python3 "$RAWPY" stream "127.0.0.1:${n#*:}" "$TOKEN" "$SBODY" >"$W/sse.out"
    grep -q '^events 26' "$W/sse.out" || { echo "gateway.sh: SSE through ${n%%:*}: $(cat "$W/sse.out")" >&2; exit 3; }
    echo "$(sed -n 's/^first_event_ms //p' "$W/sse.out") $(sed -n 's/^delay_p50_ms //p' "$W/sse.out") $(sed -n 's/^delay_max_ms //p' "$W/sse.out")" >>"$W/sse.${n%%:*}"
  done
done

# ---- cold tokens: the first request of each of COLD fresh tokens against
# the same token again (warm cache), GET /v1/models (answered by the
# gateway itself, so only authentication differs) ----
COLD=${COLD:-200}
mkdir -p "$W/cold"
for i in $(seq 1 "$COLD"); do
  "$CRETO" nhi token issue --db "$W/nhi.db" --agent bench --key "$W/issuer.key" --ttl 1h -o "$W/cold/$i" >/dev/null 2>&1
done
python3 - "$GPORT" "$W/cold" "$TOKEN" "$GPID" >"$W/cold.out" <<'PY'
import os, socket, sys, time
port, d, warm, gpid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def cpu_ns(): # the gateway's CPU time, all threads (schedstat: ns on CPU)
    t = 0
    for tid in os.listdir("/proc/%s/task" % gpid):
        try: t += int(open("/proc/%s/task/%s/schedstat" % (gpid, tid)).read().split()[0])
        except OSError: pass
    return t
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def rt(tok):
    req = ("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % tok).encode()
    t = time.perf_counter(); s.sendall(req); buf = b""
    while True:
        buf += s.recv(65536)
        if b"\r\n\r\n" in buf:
            h, b = buf.split(b"\r\n\r\n", 1)
            n = int([l for l in h.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
            if len(b) >= n:
                assert h.startswith(b"HTTP/1.1 200"), h
                return (time.perf_counter() - t) * 1e6
toks = [open(os.path.join(d, f)).read().strip() for f in sorted(os.listdir(d))]
for _ in range(50): rt(warm)
# warm and cold requests alternate, so the audit log's group commits and
# the other threads' work fall evenly on both; the gateway's CPU time is
# read around each request
w, c, wc, cc = [], [], 0, 0
for t in toks:
    a = cpu_ns(); w.append(rt(warm)); b = cpu_ns(); c.append(rt(t)); d = cpu_ns()
    wc += b - a; cc += d - b
w.sort(); c.sort()
print("warm_p50_us %.1f" % w[len(w) // 2]); print("cold_p50_us %.1f" % c[len(c) // 2])
print("warm_cpu_us %.1f" % (wc / 1e3 / len(toks))); print("cold_cpu_us %.1f" % (cc / 1e3 / len(toks)))
PY
VERIFY_US=$(openssl speed -seconds 1 ed25519 2>/dev/null | awk '/^ 253 bits EdDSA/ {printf "%.1f", 1e6 / $NF}')

# ---- 10,000 idle keep-alive connections held open ----
IDLE=${IDLE:-10000}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
r0=$(rss "$GPID")
python3 - "$GPORT" "$IDLE" "$W/idle.ready" "$W/idle.stop" <<'PY' &
import os, resource, socket, sys, time
port, n, ready, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
socks = []
for i in range(n):
    s = socket.socket(); s.connect(("127.0.0.1", port)); socks.append(s)
open(ready, "w").close()
for _ in range(600):
    if os.path.exists(stop): break
    time.sleep(0.1)
PY
IDLEPID=$!; PIDS="$PIDS $IDLEPID"
for _ in $(seq 1 600); do [ -e "$W/idle.ready" ] && break; sleep 0.1; done
sleep 0.5
r1=$(rss "$GPID")
: >"$W/idle.1"
for r in $(seq 1 "$RUNS"); do run gateway_idle "$GPORT" 1 "$GPID"; done
touch "$W/idle.stop"; wait "$IDLEPID" 2>/dev/null || true

# min/median/max of column COL of a file
mmm() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{v[NR]=$c} END {printf "%s/%s/%s", v[1], v[int((NR+1)/2)], v[NR]}'; }
med() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{v[NR]=$c} END {print v[int((NR+1)/2)]}'; }
echo "gateway bench: $RUNS runs of ${SECS}s each, wrk on 127.0.0.1, $(nproc) CPUs shared by wrk, proxy and upstream"
echo "figures are min/median/max over runs"
echo
echo "concurrency 1: latency (us)"
printf '  %-11s %-22s %-22s %-20s\n' path p50 p99 "added p50 (median)"
dp50=$(med "$W/direct.1" 1)
for n in direct floor nginx gateway gateway-bp; do
  printf '  %-11s %-22s %-22s %-20s\n' "$n" "$(mmm "$W/$n.1" 1)" "$(mmm "$W/$n.1" 2)" \
    "$(awk -v a="$(med "$W/$n.1" 1)" -v b="$dp50" 'BEGIN {printf "+%.0f", a - b}')"
done
dp99=$(med "$W/direct.1" 2)
echo "  added p99 (median): floor +$(awk -v a="$(med "$W/floor.1" 2)" -v b="$dp99" 'BEGIN {printf "%.0f", a - b}')" \
  " nginx +$(awk -v a="$(med "$W/nginx.1" 2)" -v b="$dp99" 'BEGIN {printf "%.0f", a - b}')" \
  " gateway +$(awk -v a="$(med "$W/gateway.1" 2)" -v b="$dp99" 'BEGIN {printf "%.0f", a - b}')" \
  " gateway-bp +$(awk -v a="$(med "$W/gateway-bp.1" 2)" -v b="$dp99" 'BEGIN {printf "%.0f", a - b}')"
echo "  (floor: bench_relay, a bare TCP relay parsing nothing; gateway-bp: the gateway with busy_poll_us = 100)"
echo
echo "concurrency 64: throughput"
printf '  %-11s %-28s %-24s\n' path "req/s" "proxy CPU us/request"
for n in direct floor nginx gateway gateway-bp; do
  printf '  %-11s %-28s %-24s\n' "$n" "$(mmm "$W/$n.64" 3)" "$(mmm "$W/$n.64" 4)"
done
echo "  gateway / nginx req/s (medians): $(awk -v a="$(med "$W/gateway.64" 3)" -v b="$(med "$W/nginx.64" 3)" 'BEGIN {printf "%.2fx", a / b}')," \
  "gateway-bp / nginx: $(awk -v a="$(med "$W/gateway-bp.64" 3)" -v b="$(med "$W/nginx.64" 3)" 'BEGIN {printf "%.2fx", a / b}')," \
  "floor / nginx: $(awk -v a="$(med "$W/floor.64" 3)" -v b="$(med "$W/nginx.64" 3)" 'BEGIN {printf "%.2fx", a / b}')"
echo "  (direct: the CPU column is the upstream's own)"
echo
echo "SSE, 25 events 20 ms apart (ms; first event = request sent -> first event read; delay = upstream write -> client read)"
printf '  %-8s %-24s %-24s %-24s\n' path "first event" "delay p50" "delay max"
for n in direct nginx gateway; do
  printf '  %-8s %-24s %-24s %-24s\n' "$n" "$(mmm "$W/sse.$n" 1)" "$(mmm "$W/sse.$n" 2)" "$(mmm "$W/sse.$n" 3)"
done
echo
echo "cold token (GET /v1/models, one keep-alive connection, $COLD fresh tokens): warm p50 $(sed -n 's/^warm_p50_us //p' "$W/cold.out") us," \
  "cold p50 $(sed -n 's/^cold_p50_us //p' "$W/cold.out") us; one Ed25519 verification (openssl speed): ${VERIFY_US:-?} us"
echo "  gateway CPU per request (all threads): warm $(sed -n 's/^warm_cpu_us //p' "$W/cold.out") us," \
  "cold $(sed -n 's/^cold_cpu_us //p' "$W/cold.out") us (cold - warm is what a first token costs: goal one verification + 20 us)"
echo
echo "$IDLE idle connections held: gateway RSS +$(( (r1 - r0) / 1024 )) MiB ($(( (r1 - r0) * 1024 / IDLE )) bytes per connection)"
echo "  c=1 p50/p99 (us) with them held: $(mmm "$W/gateway_idle.1" 1) / $(mmm "$W/gateway_idle.1" 2)"
kill "$GPID" 2>/dev/null && wait "$GPID" 2>/dev/null || true # drained: the log is complete
echo "audit log written by the gateway, its last entry: $("$CRETO" audit tail --dir "$W/audit" -n 1 2>&1 | cut -c1-160)"
