#!/bin/bash
# test_update_operator.sh - operator safety (issue 11 §6 and §7 for the
# update commands): state only from `state init` (a typo is exit 2, never a
# fresh start; state from an earlier version keeps working), outputs that
# carry signatures or trust created exclusively (--force replaces; create
# --force drops stale .sigs), assemble --trust catches an under-signed
# statement, the quarantine handled (list, show, requeue), a different
# package with an applied name+version quarantined (only the same statement
# is a duplicate), one writer per state, readable trust show / update status,
# expiry warnings, --json on every command, watcher lines with timestamps.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
for k in a b c d; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
expect 0 -- "$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 2 -o root1.json
# --- outputs are never silently replaced ---
expect 2 --err "already exists (--force replaces it)" -- "$CRETO" trust init --key a.pub --threshold 1 -o root1.json
for k in a b; do expect 0 --err "signed root1.json with key" -- "$CRETO" trust sign root1.json --key $k.key; done
expect 0 -- "$CRETO" trust sign root1.json --key c.key --quiet
[ -z "$ERR" ] || fail "--quiet printed: $ERR"
[ -z "$OUT" ] || fail "status line on stdout: $OUT"
cp root1.json other.json
expect 2 --err "already exists (--force replaces it)" -- "$CRETO" trust sign root1.json --key a.key -o other.json
mkdir p1; head -c 4000 /dev/urandom >p1/w.bin
expect 0 --err "wrote v1.st" -- "$CRETO" update create --type model-weights --name m --version 1 --payload p1 -o v1.st
[ -z "$OUT" ] || fail "update create printed on stdout: $OUT"
expect 0 -- "$CRETO" update sign v1.st --key a.key
expect 2 --err "v1.st: already exists (--force replaces it)" -- "$CRETO" update create --type model-weights --name m --version 1 --payload p1 -o v1.st
[ -f v1.st.sigs ] || fail "refused create touched the .sigs"
expect 0 -- "$CRETO" update create --type model-weights --name m --version 1 --payload p1 -o v1.st --force
[ ! -e v1.st.sigs ] || fail "update create --force left the stale .sigs"
expect 0 --out '"keyid"' -- "$CRETO" update sign v1.st --key a.key --json
# --- assemble --trust refuses what the enclave would refuse ---
expect 1 --err "signature threshold: 1 valid distinct signature of role model-weights, 2 required" -- \
  "$CRETO" update assemble v1.st --payload p1 --trust root1.json -o v1.crupdate
[ ! -e v1.crupdate ] || fail "an under-signed package was assembled"
expect 0 --err "NOT checked against a trust root (--no-verify)" -- "$CRETO" update assemble v1.st --payload p1 --no-verify -o lone.crupdate
expect 2 -- "$CRETO" update assemble v1.st --payload p1 --no-verify --trust root1.json -o x.crupdate
expect 0 -- "$CRETO" update sign v1.st --key b.key
expect 0 -- "$CRETO" update assemble v1.st --payload p1 --trust root1.json -o v1.crupdate
expect 2 --err "v1.crupdate: already exists" -- "$CRETO" update assemble v1.st --payload p1 --trust root1.json -o v1.crupdate
# --- numbers from argv are checked ---
expect 2 --err "--version: '1x' is not a whole number" -- "$CRETO" update create --type policy --name p --version 1x --payload p1 -o z.st
expect 2 --err "--audit: '-3' is not a whole number" -- "$CRETO" update status --state S --audit -3
expect 2 --err "diode watch: --timeout: '5s' is not a whole number" -- "$CRETO" diode watch D --trust root1.json --state S --timeout 5s
expect 2 --err "--threshold: 'two' is not a whole number" -- "$CRETO" trust init --key a.pub --threshold two -o t.json

# --- a state directory comes only from `state init` ---
mkdir D
expect 2 --err "state directory S does not exist" -- "$CRETO" update apply v1.crupdate --trust root1.json --state S
expect 2 --err "state directory S does not exist" -- "$CRETO" update verify v1.crupdate --trust root1.json --state S
expect 2 --err "state directory S does not exist" -- "$CRETO" update status --state S
expect 2 --err "state directory S does not exist" -- "$CRETO" diode watch D --trust root1.json --state S --once
expect 2 --out '"status": "usage"' -- "$CRETO" update status --state S --json
mkdir Sempty
expect 2 --err "Sempty holds no initialised state" -- "$CRETO" diode watch D --trust root1.json --state Sempty --once
[ ! -e S ] && [ -z "$(ls Sempty)" ] || fail "a refused command created state"
expect 0 --err "initialised state S for trust root version 1" -- "$CRETO" state init --state S --trust root1.json
expect 2 --err "already initialised" -- "$CRETO" state init --state S --trust root1.json
[ "$(stat -c %a S)" = 700 ] || fail "state directory not 0700"
expect 0 --out "applied model-weights m version 1" -- "$CRETO" update apply v1.crupdate --trust root1.json --state S
# Text by default, JSON with --json.
expect 0 --out "installed (1):" -- "$CRETO" update status --state S
echo "$OUT" | grep -q "model-weights *m *version 1" || fail "status text lacks the target: $OUT"
expect 0 --out '"installed": [' -- "$CRETO" update status --state S --json
expect 0 --out "trust root version 1, expires" -- "$CRETO" trust show root1.json
echo "$OUT" | grep -q "threshold reached" || fail "trust show text: $OUT"
expect 0 --out '"self_signed": true' -- "$CRETO" trust show root1.json --json

# --- state made by an earlier version (no state_version row) keeps working ---
mkdir Sold
python3 - Sold/state.db <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE installed(type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, statement_digest TEXT NOT NULL, installed_at INTEGER NOT NULL, PRIMARY KEY(type, name));
CREATE TABLE applied(statement_digest TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, created INTEGER NOT NULL, keyids TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, source TEXT NOT NULL, statement_digest TEXT, type TEXT, name TEXT, version INTEGER, keyids TEXT, decision TEXT NOT NULL, reason TEXT);
INSERT INTO meta VALUES('time_floor', '1700000000');
""")
db.commit()
PY
expect 0 --out "applied model-weights m version 1" -- "$CRETO" update apply v1.crupdate --trust root1.json --state Sold
expect 1 --err "replay" -- "$CRETO" update apply v1.crupdate --trust root1.json --state Sold
python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("SELECT v FROM meta WHERE k=\"state_version\"").fetchone(); assert r and r[0]=="2", r' Sold/state.db ||
  fail "earlier state not upgraded in place"
# ... and its decisions now go to its audit log, created on that first write
# (docs/audit.md "Who writes": its empty old audit table carried over).
expect 0 --out "update migrate ok subject=Sold carried=0" -- "$CRETO" audit show --dir Sold/audit
echo "$OUT" | grep -q "update apply duplicate subject=m@1 .*reason=replay" || fail "earlier state: no log entry: $OUT"

# --- one writer per state; readers work beside it ---
"$CRETO" diode watch D --trust root1.json --state S --settle-ms 50 --timeout 60 >w.log 2>&1 &
WP=$!
for i in $(seq 1 100); do grep -q "started" w.log && break; sleep 0.1; done
grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z started: watching D, state S, trust root version 1" w.log || fail "no start line: $(cat w.log)"
mkdir p2; head -c 4000 /dev/urandom >p2/w.bin
"$CRETO" update create --type model-weights --name m --version 2 --payload p2 -o v2.st >/dev/null 2>&1
for k in a b; do "$CRETO" update sign v2.st --key $k.key >/dev/null 2>&1; done
"$CRETO" update assemble v2.st --payload p2 --trust root1.json -o v2.crupdate >/dev/null 2>&1
expect 2 --err "in use by process $WP" -- "$CRETO" update apply v2.crupdate --trust root1.json --state S
expect 2 --err "in use by process $WP" -- "$CRETO" update apply v2.crupdate --trust root1.json --state S --wait 1
expect 2 --err "in use by process $WP" -- "$CRETO" diode watch D --trust root1.json --state S --once
expect 0 -- "$CRETO" update verify v2.crupdate --trust root1.json --state S
expect 0 -- "$CRETO" update status --state S

# --- the watcher: a tampered copy of the applied package is quarantined with
# its rule; only the very same package is a duplicate ---
cp v1.crupdate t.crupdate; flip t.crupdate $(( $(stat -c %s t.crupdate) - 1500 ))
cp t.crupdate D/tampered.crupdate
cp v1.crupdate D/again.crupdate
for i in $(seq 1 100); do [ -f S/quarantine/tampered.crupdate.reason ] && [ -f S/processed/again.crupdate ] && break; sleep 0.1; done
grep -qE "Z quarantined tampered.crupdate: .*digest" w.log || fail "tampered copy not quarantined by digest: $(cat w.log)"
grep -qE "Z duplicate again.crupdate: already applied" w.log || fail "same package not a duplicate: $(cat w.log)"
# A package signed only by d (not in root 1): quarantined now (a rotation that
# has not arrived yet), requeued later.
"$CRETO" update create --type model-weights --name m --version 2 --payload p2 -o v2d.st >/dev/null 2>&1
for k in c d; do "$CRETO" update sign v2d.st --key $k.key >/dev/null 2>&1; done
"$CRETO" update assemble v2d.st --payload p2 --no-verify -o v2d.crupdate >/dev/null 2>&1
cp v2d.crupdate D/early.crupdate
for i in $(seq 1 100); do [ -f S/quarantine/early.crupdate.reason ] && break; sleep 0.1; done
kill -TERM $WP; wait $WP || true

expect 0 --out "signature threshold" -- "$CRETO" diode quarantine list --state S
echo "$OUT" | grep -q "early.crupdate" || fail "quarantine list lacks early.crupdate: $OUT"
expect 0 --out '"rule": "signature threshold"' -- "$CRETO" diode quarantine show early.crupdate --state S --json
expect 0 --out '"rule": "digest"' -- "$CRETO" diode quarantine show tampered.crupdate --state S --json
expect 2 --err "no package nope.crupdate" -- "$CRETO" diode quarantine show nope.crupdate --state S
expect 2 -- "$CRETO" diode quarantine show ../state.db --state S
# Root 2 (b c d) arrives by rotation; the quarantined package is requeued.
"$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 2 --version 2 -o root2.json >/dev/null 2>&1
for k in b c; do "$CRETO" trust sign root2.json --key $k.key >/dev/null 2>&1; done
"$CRETO" trust sign root2.json --key a.key --previous >/dev/null 2>&1
mkdir r2.d; cp root2.json r2.d/root.json
"$CRETO" update create --type cert-rotation --name trust-root --version 2 --payload r2.d/root.json -o r2.st >/dev/null 2>&1
for k in a b; do "$CRETO" update sign r2.st --key $k.key >/dev/null 2>&1; done
"$CRETO" update assemble r2.st --payload r2.d/root.json --trust root1.json -o r2.crupdate >/dev/null 2>&1
expect 0 -- "$CRETO" update apply r2.crupdate --trust root1.json --state S
expect 0 --err "requeued early.crupdate into D" -- "$CRETO" diode quarantine requeue early.crupdate --state S --drop D
[ -f D/early.crupdate ] && [ ! -e S/quarantine/early.crupdate ] || fail "not requeued"
expect 0 --out "applied early.crupdate" -- "$CRETO" diode watch D --trust root1.json --state S --once --settle-ms 20
expect 0 --out '"decision": "requeued"' -- "$CRETO" update status --state S --json --audit 20
# --json: one JSON object per decision line.
cp v1.crupdate D/j.crupdate
"$CRETO" diode watch D --trust root1.json --state S --once --settle-ms 20 --json >j.log 2>/dev/null
python3 - j.log <<'PY' || fail "watch --json lines: $(cat j.log)"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert objs[0]["event"] == "started" and objs[0]["trust_root_version"] == 2, objs[0]
d = [o for o in objs if "decision" in o]
assert len(d) == 1 and d[0]["decision"] == "duplicate" and d[0]["file"] == "j.crupdate", d
assert d[0]["at"].endswith("Z"), d
PY
ok

# --- expiry warnings: trust init, trust show, state init, watcher start ---
soon=$(date -u -d @$(( $(date +%s) + 10 * 86400 )) +%Y-%m-%dT%H:%M:%SZ)
expect 0 --err "expires at $soon, in" -- "$CRETO" trust init --key a.pub --threshold 1 --expires "$soon" -o soon.json
"$CRETO" trust sign soon.json --key a.key >/dev/null 2>&1
expect 0 --err "warning: trust root version 1 expires at" -- "$CRETO" trust show soon.json
expect 0 --err "warning: trust root version 1 expires at" -- "$CRETO" state init --state S3 --trust soon.json
mkdir D3
expect 0 --err "warning: trust root version 1 expires at" -- "$CRETO" diode watch D3 --trust soon.json --state S3 --once
finish
