#!/bin/bash
# test_nhi_audit.sh - `creto nhi ... --audit DIR` (docs/nhi.md "Audit"):
# every decision kind lands in the audit log with component nhi, its event,
# outcome, subject, reason and fields; no token text ever does; the log
# verifies with a checkpoint signed before exit (--audit-key); a log that
# cannot be written stops the change (exit 3, store unchanged, no token
# shown); without --audit a granted decision warns that nothing was recorded,
# and read-only commands say nothing.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
"$CRETO" key gen --alg ed25519 -o ak >/dev/null
"$CRETO" key gen --alg ed25519 -o iss >/dev/null
"$CRETO" key gen --alg ed25519 -o agentkey >/dev/null
"$CRETO" audit init --dir log --origin test.example/nhi --key ak.key >/dev/null
"$CRETO" nhi init --db db --quiet
A="--audit log"
n_nhi() { "$CRETO" audit show --dir log --component nhi --json | grep -c '' ; }
last() { "$CRETO" audit show --dir log --component nhi --json | tail -n 1; }
# field NAME VALUE [JSON]: the newest nhi entry has NAME (top level or in
# "fields") equal to VALUE
has() {
  python3 - "$1" "$2" "${3:-$(last)}" <<'PY' && ok || fail "newest entry: $1 != '$2': ${3:-$(last)}"
import json, sys
k, v, e = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
got = e.get(k, e.get("fields", {}).get(k))
sys.exit(0 if str(got) == v else 1)
PY
}

# ---- each decision kind ----
expect 0 --err "added agent a1" -- "$CRETO" nhi add --db db --id a1 --name "Agent 1" --scope tool:x --scope model:m \
  --pub agentkey.pub $A --audit-key ak.key
has event add; has outcome ok; has subject a1; has component nhi; has scopes "tool:x model:m"; has keys 1
[ -z "$(grep 'no --audit' <<<"$ERR")" ] && ok || fail "warned with --audit: $ERR"
expect 1 --err "a1" -- "$CRETO" nhi add --db db --id a1 --name again --scope tool:x $A
has event add; has outcome refused; has subject a1
grep -q '"reason":"' <<<"$(last)" && ok || fail "refusal without a reason: $(last)"
expect 0 -- "$CRETO" nhi add --db db --id a2 --name "Agent 2" --scope tool:x $A
expect 0 -- "$CRETO" nhi suspend --db db a1 $A
has event suspend; has outcome ok; has from active; has to suspended
expect 0 -- "$CRETO" nhi resume --db db a1 $A
has event resume; has outcome ok; has to active
expect 0 -- "$CRETO" nhi revoke --db db a2 $A
has event revoke; has outcome ok; has subject a2
expect 1 --err "revoked (final)" -- "$CRETO" nhi resume --db db a2 $A
has event resume; has outcome refused; has reason "agent a2 is revoked (final)"
expect 1 --err "unknown agent" -- "$CRETO" nhi suspend --db db nobody $A
has outcome refused; has subject nobody
expect 0 -- "$CRETO" nhi key list --db db a1 --json
KID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["keys"][0]["kid"])' "$OUT")
expect 0 -- "$CRETO" nhi key remove --db db a1 "$KID" $A
has event key_remove; has outcome ok; has kid "$KID"
expect 0 -- "$CRETO" nhi key add --db db a1 --pub agentkey.pub $A
has event key_add; has outcome ok; has kid "$KID"; has alg EdDSA

# tokens: the record names the jti and the issuer kid, never the token
"$CRETO" nhi jwks --key iss.key -o jwks.json --quiet
expect 0 -- "$CRETO" nhi token issue --db db --agent a1 --key iss.key --scope tool:x -o tok $A --quiet
JTI=$(python3 -c '
import base64, json, sys
p = open(sys.argv[1]).read().strip().split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["jti"])' tok)
has event token; has outcome ok; has subject a1; has jti "$JTI"; has scopes tool:x; has aud creto-gateway
ISSKID=$("$CRETO" key show iss.pub 2>/dev/null | sed -n 's/^.*key id:* *\([0-9a-f]\{16\}\).*$/\1/p' | head -1)
[ -z "$ISSKID" ] || has kid "$ISSKID"
TOK2=$("$CRETO" nhi token issue --db db --agent a1 --key iss.key $A --jti fixed-jti-1)
has jti fixed-jti-1
expect 1 --err "a2 is revoked" -- "$CRETO" nhi token issue --db db --agent a2 --key iss.key $A
has event token; has outcome refused; has subject a2
grep -q '"jti"' <<<"$(last)" && fail "a refused token has a jti: $(last)" || ok
expect 1 --err "not granted" -- "$CRETO" nhi token issue --db db --agent a1 --key iss.key --scope tool:y $A
has outcome refused

# resolve: one record per call (a one-shot command: nothing to aggregate)
expect 0 --out '"sub": "a1"' -- "$CRETO" nhi resolve --db db --jwks jwks.json --token-file tok $A
has event resolve; has outcome ok; has subject a1; has jti "$JTI"; has token_file tok
"$CRETO" nhi suspend --db db a1 $A --quiet
expect 1 --err "suspended" -- "$CRETO" nhi resolve --db db --jwks jwks.json --token-file - $A <<<"$TOK2"
has event resolve; has outcome refused; has token_file -
# a forged token (signature flipped) is refused and recorded without its text
FORGED=$(python3 -c 'import sys; t=sys.argv[1]; print(t[:-3] + ("AAA" if t[-3:] != "AAA" else "BBB"))' "$TOK2")
expect 1 -- "$CRETO" nhi resolve --db db --jwks jwks.json --token-file - $A <<<"$FORGED"
has outcome refused
"$CRETO" nhi resume --db db a1 $A --quiet

# ---- no token text anywhere in the log (entries, or the database files) ----
"$CRETO" audit show --dir log --json >all.jsonl
for t in "$(cat tok)" "$TOK2" "$FORGED"; do
  sig=${t##*.}
  body=$(cut -d. -f2 <<<"$t")
  if grep -qF -e "$sig" -e "$body" all.jsonl || cat log/* | grep -qaF -e "$sig" -e "$body"; then
    fail "token text in the audit log"
  else ok; fi
done

# ---- the log verifies; the checkpoint of the last --audit-key command ----
expect 0 --out "verified" -- "$CRETO" audit verify --dir log --pub ak.pub
expect 0 -- "$CRETO" nhi revoke --db db a1 $A --audit-key ak.key
N=$("$CRETO" audit show --dir log --json | grep -c '')
expect 0 --out "newest at size $N" -- "$CRETO" audit verify --dir log --pub ak.pub
[ "$(n_nhi)" -ge 20 ] && ok || fail "nhi entries: $(n_nhi)"

# ---- fail closed: a log that cannot be written stops the change, exit 3 ----
"$CRETO" nhi add --db db --id a3 --name "Agent 3" --scope tool:x $A --quiet
cp db db.before
before=$(n_nhi)
mkdir notalog
expect 3 --err "notalog" -- "$CRETO" nhi revoke --db db a3 --audit notalog
expect 3 --err "nothing done" -- "$CRETO" nhi suspend --db db a3 --audit missing-dir
expect 3 -- "$CRETO" nhi add --db db --id a4 --name "Agent 4" --scope tool:x --audit notalog
expect 3 --err "audit-key" -- "$CRETO" nhi suspend --db db a3 $A --audit-key no-such.key
# the log's database replaced by a directory
mv log/audit.db audit.db.saved; mkdir log/audit.db
expect 3 -- "$CRETO" nhi revoke --db db a3 $A
expect 3 -- "$CRETO" nhi token issue --db db --agent a3 --key iss.key -o tok3 $A
[ -z "$OUT" ] && [ ! -e tok3 ] && ok || fail "a token left the process unrecorded"
rmdir log/audit.db; mv audit.db.saved log/audit.db
cmp -s db db.before && ok || fail "the store changed while the log could not be written"
expect 0 --out '"status": "active"' -- "$CRETO" nhi show --db db a3 --json
expect 1 --err "unknown agent" -- "$CRETO" nhi show --db db a4
[ "$(n_nhi)" = "$before" ] && ok || fail "entries appeared: $before -> $(n_nhi)"
# another writer holding the log: waited for (bounded), then exit 3
( exec 9>>log/lock; flock 9; exec sleep 30 ) &
HOLDER=$!
for _ in $(seq 100); do
  flock -n log/lock true 2>/dev/null || break
  sleep 0.05
done
expect 3 -- "$CRETO" nhi revoke --db db a3 $A
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
cmp -s db db.before && ok || fail "the store changed while the log was held"
expect 0 -- "$CRETO" nhi revoke --db db a3 $A
has event revoke; has subject a3
expect 0 --out "verified" -- "$CRETO" audit verify --dir log --pub ak.pub

# ---- without --audit: a warning on a granted decision, silence on reads ----
expect 0 --err "nhi add: no --audit DIR: nothing was recorded" -- "$CRETO" nhi add --db db --id w1 --name W --scope s
expect 0 --err "nhi token issue: no --audit DIR: nothing was recorded" -- "$CRETO" nhi token issue --db db --agent w1 --key iss.key -o tok4
expect 0 --err "nhi resolve: no --audit DIR" -- "$CRETO" nhi resolve --db db --jwks jwks.json --token-file tok4
expect 0 -- "$CRETO" nhi list --db db
[ -z "$ERR" ] && ok || fail "list warned: $ERR"
expect 0 -- "$CRETO" nhi show --db db w1
[ -z "$ERR" ] && ok || fail "show warned: $ERR"
expect 0 -- "$CRETO" nhi jwks --key iss.key
[ -z "$ERR" ] && ok || fail "jwks warned: $ERR"
expect 0 --err "nhi suspend: no --audit DIR: nothing was recorded" -- "$CRETO" nhi suspend --db db w1 --quiet
expect 2 --err "--audit-key needs --audit" -- "$CRETO" nhi revoke --db db w1 --audit-key ak.key
expect 2 --err "audit" -- "$CRETO" nhi list --db db --audit log
finish
