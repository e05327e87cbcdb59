#!/bin/bash
# test_gateway_audit.sh - `creto gateway --audit DIR`: one record per
# request lands in the real audit log through its group commit (allowed,
# refused for scope, refused token), never the prompt or the token, a
# final checkpoint is signed at SIGTERM, and `creto audit verify` passes on
# what the gateway wrote.  Without --audit the gateway says on stderr that
# nothing is recorded in a log.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"

gw_agents
"$CRETO" key gen --alg ed25519 -o "$T/audit" 2>/dev/null && ok || fail "audit key"
expect 0 -- "$CRETO" audit init --dir "$T/log" --origin test.gateway/audit --key "$T/audit.key"
gw_standin s1 --model m1 --model m2 --tokens 4
GW_ARGS="--audit $T/log --audit-key $T/audit.key"
gw_start "" "model m1 = http://127.0.0.1:$PORT_s1
model m2 = http://127.0.0.1:$PORT_s1"
CHAT=http://$GW/v1/chat/completions
hi='"messages":[{"role":"user","content":"hello secret-prompt-words"}]'
expect_status agent-a 200 "chat" "$CHAT" -d "{\"model\":\"m1\",$hi}"
expect_status agent-b 403 "out of scope" "$CHAT" -d "{\"model\":\"m1\",$hi}"
"$CRETO" nhi revoke --db "$T/nhi.db" agent-r 2>/dev/null && ok || fail "revoke agent-r"
sleep 1.2 # the gateway sees revocations within a second
expect_status agent-r 401 "revoked" "$CHAT" -d "{\"model\":\"m1\",$hi}"
grep -q "nothing is recorded" "$T/gw.err" && fail "warned about no audit log although --audit was given" || ok
gw_stop

"$CRETO" audit show --dir "$T/log" --component gateway --json >"$T/show.json" 2>"$T/show.err" && ok ||
  fail "audit show: $(cat "$T/show.err")"
python3 - "$T/show.json" <<'PY' && ok || fail "gateway records: $(head -c 1500 "$T/show.json")"
import json, sys
ents = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]  # one entry per line
gw = [e for e in ents if e.get("component") == "gateway"]
assert len(gw) >= 3, len(gw)
text = json.dumps(gw)
assert "secret-prompt-words" not in text, "prompt text in the audit log"
statuses = sorted(str(e.get("fields", {}).get("status", "")) for e in gw)
for want in ("200", "401", "403"):
    assert want in statuses, (want, statuses)
PY
grep -c "eyJ" "$T/show.json" | grep -qx 0 && ok || fail "a token in the audit log"
"$CRETO" key pub "$T/audit.key" >"$T/audit.pub" 2>/dev/null
expect 0 --out "verified audit log" -- "$CRETO" audit verify --dir "$T/log" --pub "$T/audit.pub"

# without --audit: a warning, records only on stderr
GW_ARGS=""
gw_start "" "model m1 = http://127.0.0.1:$PORT_s1"
grep -q "nothing is recorded in an audit log" "$T/gw.err" && ok || fail "no warning without --audit: $(head -5 "$T/gw.err")"
gw_stop
expect 2 --err "--audit-key needs --audit" -- "$CRETO" gateway --config "$T/gw.conf" --audit-key "$T/audit.key"
finish
