#!/bin/bash
# test_gateway_openai.sh - the npm `openai` package (v6, Node 20) as the
# agents' client through `creto gateway` to the vLLM stand-in: chat,
# streaming printed token by token, completions, embeddings (base64),
# the filtered model list, each error mapped to its exception, a 429
# retried after retry-after and a quota 429 not retried.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"

# the client package is installed once into the build tree
NPMDIR=$CRETO_BUILD_DIR/npm-openai
if [ ! -f "$NPMDIR/node_modules/openai/package.json" ]; then
  command -v npm >/dev/null || skip "npm not installed (scripts/deps.sh test installs it)"
  mkdir -p "$NPMDIR"
  cp "$STANDIN_DIR/openai/package.json" "$NPMDIR/"
  npm install --prefix "$NPMDIR" --no-audit --no-fund --silent >"$T/npm.log" 2>&1 ||
    skip "npm install openai failed: $(tail -n 2 "$T/npm.log")"
fi
cp "$STANDIN_DIR/openai/client.mjs" "$NPMDIR/client.mjs"

gw_agents
printf '{"agents": {"agent-l": {"concurrency": 1, "tokens_per_minute": 5000}}}\n' >"$T/policy.json"
gw_standin s1 --model m1 --model m2 --interval-ms 20
gw_start "policy = $T/policy.json" "model m1 = http://127.0.0.1:$PORT_s1
model m2 = http://127.0.0.1:$PORT_s1"

node "$NPMDIR/client.mjs" "http://$GW" "$T" >"$T/client.out" 2>"$T/client.err"
cat "$T/client.err" >&2
while read -r status name; do
  case $status in
    ok) ok ;;
    FAIL) fail "openai client: $name" ;;
  esac
done <"$T/client.out"
[ "$(grep -c '^ok ' "$T/client.out")" = 14 ] && ok || fail "not every client check ran: $(cat "$T/client.out")"
grep -q '"actor":"agent-l".*"status":429' "$T/gw.err" && ok || fail "the 429 was not audited"
gw_stop
finish
