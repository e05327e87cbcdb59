# serve_env.sh - what the `creto serve` integration tests share, sourced
# after lib.sh and tests/standin/gw_env.sh, in $T (cd "$T" first): the
# config file of a loopback enclave (trust root, state S, drop D, agent
# store, audit log A with the file checkpoint key cp.key, runtime R, one
# model m1 on the stand-in "one") and starting the daemon.

# serve_conf ROOT [SERVE_LINES] [ISOLATION_LINES]: write creto.conf (0600)
# for trust root ROOT, with extra [serve] lines and, when given, an
# [isolation] section; picks the gateway's port into $PORT.
serve_conf() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local iso=""
  [ -n "${3:-}" ] && iso=$(printf '[isolation]\n%s' "$3")
  cat >creto.conf <<C
[trust]
root = $1
[state]
dir = $T/S
[diode]
drop = $T/D
settle = 100ms
[nhi]
store = $T/nhi.db
jwks = $T/jwks.json
[audit]
dir = $T/A
checkpoint_key = $T/cp.key
$iso
[serve]
runtime_dir = $T/R
${2:-}
[gateway]
listen = 127.0.0.1:$PORT
workers = 1
[upstream]
model m1 = http://127.0.0.1:$PORT_one
key_file = $T/vllm.key
health_interval = 300ms
C
  chmod 600 creto.conf
}

# serve_start BIN LOG [VAR=value...]: start BIN serve on creto.conf with its
# stderr in LOG, the PID in $SP (stopped with the stand-ins at exit), and
# wait (bounded) until it says it is ready.
serve_start() {
  local bin=$1 log=$2; shift 2
  : >"$log"
  env "$@" "$bin" serve --config creto.conf 2>"$log" &
  SP=$!
  GW_PIDS="$GW_PIDS $SP"
  wait_line "$log" 'serve info event=ready' >/dev/null || { cat "$log" >&2; fail "serve not ready ($log)"; finish; }
}
