#!/bin/bash
# test_gateway_refusals.sh - a flood of bad bearer tokens does not write one
# audit record per request: 401 token refusals are counted per (rule,
# claimed agent, source) and written as a few aggregated records with a
# count, on the refusal interval from the health thread and at shutdown.
# Every 401 answer is still sent; other refusals (403) keep their own record.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"

gw_agents
"$CRETO" key gen --alg ed25519 -o "$T/audit" 2>/dev/null && ok || fail "audit key"
expect 0 -- "$CRETO" audit init --dir "$T/log" --origin test.gateway/refusals --key "$T/audit.key"
gw_standin s1 --model m1 --tokens 4
CHAT_PATH=/v1/chat/completions
hi='"messages":[{"role":"user","content":"hi"}]'

# flood URLS N CURL-ARGS...: N requests over one keep-alive connection;
# prints how many were answered 401
flood() {
  local n=$1; shift
  local urls=() i
  for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "http://$GW$CHAT_PATH"); done
  curl -sS -w '%{http_code}\n' --max-time 60 -d "{\"model\":\"m1\",$hi}" "$@" "${urls[@]}" 2>"$T/flood.err" |
    grep -c '^401$'
}

# ---- into the audit log, flushed at shutdown (interval longer than the run) ----
GW_ARGS="--audit $T/log --audit-key $T/audit.key"
gw_start "refusal_interval = 1h" "model m1 = http://127.0.0.1:$PORT_s1"
got=$(flood 200 -H 'Authorization: Bearer abc.def.ghi')
[ "$got" = 200 ] && ok || fail "garbage tokens: $got of 200 answered 401 ($(head -c 300 "$T/flood.err"))"
got=$(flood 50 -H "Authorization: Bearer $(cat "$T/tok.expired")")
[ "$got" = 50 ] && ok || fail "expired token: $got of 50 answered 401 ($(head -c 300 "$T/flood.err"))"
got=$(flood 10)
[ "$got" = 10 ] && ok || fail "no token: $got of 10 answered 401"
expect_status agent-b 403 "out of scope keeps its own record" "http://$GW$CHAT_PATH" -d "{\"model\":\"m1\",$hi}"
expect_status agent-a 200 "accepted" "http://$GW$CHAT_PATH" -d "{\"model\":\"m1\",$hi}"
gw_stop

"$CRETO" audit show --dir "$T/log" --component gateway --json >"$T/show.json" 2>"$T/show.err" && ok ||
  fail "audit show: $(cat "$T/show.err")"
python3 - "$T/show.json" <<'PY' && ok || fail "aggregated records: $(head -c 2000 "$T/show.json")"
import json, sys
ents = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gw = [e for e in ents if e.get("component") == "gateway"]
agg = [e for e in gw if e.get("event") == "token_refused"]
assert 1 <= len(agg) <= 6, ("a handful of records", len(agg))
total = sum(e["fields"]["count"] for e in agg)
assert total == 260, ("counts sum to every 401", total)
by = {}
for e in agg:
    f = e["fields"]
    assert f["status"] == 401 and f["first_us"] <= f["last_us"], f
    assert e["outcome"] == "refused", e
    by[e["reason"]] = by.get(e["reason"], 0) + f["count"]
assert by.get("token_expired") == 50, by
assert by.get("no_bearer_token") == 10, by
assert by.get("token_malformed") == 200, by
exp = [e for e in agg if e["reason"] == "token_expired"]
assert all(e["fields"].get("claimed_agent") == "agent-a" for e in exp), exp
assert all(e["fields"].get("source") == "127.0.0.1" for e in agg), agg
# the others keep one record per request
per = [e for e in gw if e.get("event") == "request"]
assert sorted(e["fields"]["status"] for e in per) == [200, 403], per
assert not [e for e in per if e["fields"]["status"] == 401], "a 401 audited per request"
PY
grep -c "eyJ" "$T/show.json" | grep -qx 0 && ok || fail "a token in the audit log"
"$CRETO" key pub "$T/audit.key" >"$T/audit.pub" 2>/dev/null
expect 0 --out "verified audit log" -- "$CRETO" audit verify --dir "$T/log" --pub "$T/audit.pub"

# ---- on stderr, flushed on the interval while the gateway runs ----
GW_ARGS=""
gw_start "refusal_interval = 200ms" "model m1 = http://127.0.0.1:$PORT_s1"
got=$(flood 30 -H 'Authorization: Bearer abc.def.ghi')
[ "$got" = 30 ] && ok || fail "garbage tokens: $got of 30 answered 401"
wait_line "$T/gw.err" '"token_refused"' >/dev/null && ok || fail "no aggregated record within the interval: $(tail -n 5 "$T/gw.err")"
gw_stop
python3 - "$T/gw.err" <<'PY' && ok || fail "stderr records: $(grep token_refused "$T/gw.err" | head -c 1500)"
import json, sys
recs = []
for l in open(sys.argv[1]):
    i = l.find("{")
    if i < 0 or "token_refused" not in l:
        continue
    recs.append(json.loads(l[i:]))
# the stderr form puts the fields beside the envelope
assert recs and sum(r["count"] for r in recs) == 30, recs
PY
finish
