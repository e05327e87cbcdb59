# gw_env.sh - sourced by tests/integration/test_gateway*.sh and the demo
# after lib.sh: an NHI store with agents, their tokens, vLLM stand-ins and a
# running `creto gateway`, all on 127.0.0.1 with ports picked by the
# kernel (port 0), all stopped at exit.
#
#   gw_agents            store + JWKS + agents + tokens in $T/tok.<agent>
#   gw_standin NAME ARGS start a stand-in; its port in $PORT_<NAME>
#   gw_start EXTRA_CONF  write $T/gw.conf (EXTRA_CONF appended) and start the
#                        gateway; its address in $GW (127.0.0.1:PORT)
#   gw_stop              SIGTERM the gateway and wait for it
STANDIN_DIR=${CRETO_SRC_DIR:?}/tests/standin
GW_PIDS=""
gw_cleanup() {
  for p in $GW_PIDS; do kill "$p" 2>/dev/null; done
  for p in $GW_PIDS; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap gw_cleanup EXIT

command -v node >/dev/null || skip "node not installed (scripts/deps.sh test installs nodejs)"
command -v curl >/dev/null || skip "curl not installed"

gw_agents() {
  . "$CRETO_SRC_DIR/tests/integration/jose/nhi_keys.sh"
  nhi_make_key "$T/issuer" ed25519
  "$CRETO" nhi init --db "$T/nhi.db" >/dev/null
  "$CRETO" nhi jwks --key "$T/issuer.key" -o "$T/jwks.json" >/dev/null
  "$CRETO" nhi add --db "$T/nhi.db" --id agent-a --name "Agent A" \
    --scope model:m1 --scope model:m2 --scope model:ghost >/dev/null
  "$CRETO" nhi add --db "$T/nhi.db" --id agent-b --name "Agent B" --scope model:m2 >/dev/null
  "$CRETO" nhi add --db "$T/nhi.db" --id agent-r --name "Agent R" --scope model:m1 >/dev/null
  "$CRETO" nhi add --db "$T/nhi.db" --id agent-l --name "Limited" --scope model:m1 >/dev/null
  for a in agent-a agent-b agent-r agent-l; do
    "$CRETO" nhi token issue --db "$T/nhi.db" --agent "$a" --key "$T/issuer.key" -o "$T/tok.$a" >/dev/null ||
      fail "token issue $a"
  done
  # a token of the right shape from a key the gateway does not trust
  nhi_make_key "$T/rogue" ed25519
  "$CRETO" nhi token issue --agent agent-a --key "$T/rogue.key" -o "$T/tok.foreign" >/dev/null
  # an expired token (issued with a pinned clock in the past)
  CRETO_TEST_NOW=$(( $(date +%s) - 7200 )) "$CRETO" nhi token issue --db "$T/nhi.db" --agent agent-a \
    --key "$T/issuer.key" --ttl 60 -o "$T/tok.expired" >/dev/null
  printf 'vllm-secret-key-%s\n' "$RANDOM$RANDOM" >"$T/vllm.key"
  chmod 600 "$T/vllm.key"
}

# wait_line FILE REGEX: up to 10 s for a line matching REGEX; prints it.
wait_line() {
  local i
  for i in $(seq 1 200); do
    if grep -Eq "$2" "$1" 2>/dev/null; then grep -Em1 "$2" "$1"; return 0; fi
    sleep 0.05
  done
  return 1
}

gw_standin() {
  local name=$1; shift
  VLLM_API_KEY=$(cat "$T/vllm.key") node "$STANDIN_DIR/vllm.mjs" "$@" >"$T/standin.$name.out" 2>"$T/standin.$name.err" &
  GW_PIDS="$GW_PIDS $!"
  eval "PID_$name=$!"
  local l
  l=$(wait_line "$T/standin.$name.out" '^listening [0-9]+$') || { cat "$T/standin.$name.err" >&2; skip "stand-in did not start"; }
  eval "PORT_$name=${l#listening }"
}

gw_start() {
  cat >"$T/gw.conf" <<EOF
# written by gw_env.sh
[gateway]
listen = 127.0.0.1:0
listen = unix:$T/gw.sock
workers = 2
nhi_db = $T/nhi.db
jwks = $T/jwks.json
header_timeout = 1s
body_timeout = 2s
access_log = yes
$1

[upstream]
key_file = $T/vllm.key
health_interval = 300ms
eject_time = 1s
$2
EOF
  : >"$T/gw.err"
  "$CRETO" gateway --config "$T/gw.conf" 2>"$T/gw.err" &
  GW_PID=$!
  GW_PIDS="$GW_PIDS $GW_PID"
  local l
  l=$(wait_line "$T/gw.err" 'event=listening addr=127') || { cat "$T/gw.err" >&2; fail "gateway did not start"; finish; }
  GW=${l#*addr=}
  GW=${GW%% *}
}

# gw_stop: SIGTERM, then assert a clean exit (0, no sanitizer report).
gw_stop() {
  kill -TERM "$GW_PID" 2>/dev/null
  local rc=0
  wait "$GW_PID" 2>/dev/null || rc=$?
  [ "$rc" = 0 ] && ok || fail "gateway exited $rc after SIGTERM"
  gw_clean
}

# gw_clean: no sanitizer report in any gateway log
gw_clean() {
  if grep -lE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' "$T"/gw*.err >/dev/null 2>&1; then
    fail "sanitizer report: $(grep -hE -A5 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' "$T"/gw*.err | head -20)"
  else
    ok
  fi
}

# gwcurl AGENT ARGS...: curl to the gateway with AGENT's token (or none
# for "-"); prints "HTTPSTATUS" last; body in $T/body, headers in $T/hdr.
gwcurl() {
  local agent=$1; shift
  local auth=()
  [ "$agent" != - ] && auth=(-H "Authorization: Bearer $(cat "$T/tok.$agent")")
  rm -f "$T/body" "$T/hdr"
  curl -sS -o "$T/body" -D "$T/hdr" -w '%{http_code}' --max-time 10 "${auth[@]}" "$@"
}

# expect_status AGENT WANT DESC CURL-ARGS...
expect_status() {
  local agent=$1 want=$2 desc=$3; shift 3
  local got
  got=$(gwcurl "$agent" "$@" 2>"$T/curl.err")
  if [ "$got" = "$want" ]; then ok; else fail "$desc: status $got, want $want: $(cat "$T/curl.err") $(cat "$T/body" 2>/dev/null | head -c 300)"; fi
}
