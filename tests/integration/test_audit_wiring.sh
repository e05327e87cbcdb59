#!/bin/bash
# test_audit_wiring.sh - the update, diode and trust commands write the audit
# log of their state, STATE/audit (docs/audit.md "Who writes"): every kind of
# decision lands there with its component, event, outcome, subject, reason
# and fields; `state init` creates the log and records itself; a checkpoint
# is signed before a command exits when a key is configured; the log the
# commands wrote verifies (also against a kept checkpoint); a log that cannot
# be written stops the action (exit 3, nothing installed); a killed install
# is recorded `aborted` on the next run; the old audit table of an earlier
# version's state is carried over once, as the first entries.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
command -v sqlite3 >/dev/null || skip "sqlite3 missing"
cd "$T"
for k in a b; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null; done
"$CRETO" key gen --alg ed25519 -o ak >/dev/null
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null 2>&1
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null 2>&1; done
pkg() { # OUT TYPE NAME VERSION PAYLOAD
  "$CRETO" update create --type "$2" --name "$3" --version "$4" --payload "$5" -o "$1.st" --force >/dev/null 2>&1
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null 2>&1; done
  "$CRETO" update assemble "$1.st" --payload "$5" --trust root.json -o "$1.crupdate" --force >/dev/null 2>&1 ||
    fail "setup: $1"
}
digest() { "$CRETO" update inspect "$1" --json | sed -n 's/^  "statement_digest": "\([0-9a-f]*\)",$/\1/p'; }
for v in 1 2 3 4; do mkdir -p p$v; head -c 6000 /dev/urandom >p$v/w.bin; pkg m$v model-weights m $v p$v; done
cp m2.crupdate bad.crupdate; flip bad.crupdate $(( $(stat -c %s bad.crupdate) - 1500 ))
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 --version 2 -o root2.json >/dev/null 2>&1
for k in a b; do "$CRETO" trust sign root2.json --key $k.key >/dev/null 2>&1; done
"$CRETO" trust sign root2.json --key a.key --previous >/dev/null 2>&1
mkdir r2; cp root2.json r2/root.json; pkg r2 cert-rotation trust-root 2 r2/root.json
D1=$(digest m1.crupdate) D2=$(digest m2.crupdate) D3=$(digest m3.crupdate) R2=$(digest r2.crupdate)

# entries DIR: the log's entries as canonical JSON lines (creto audit show --json)
entries() { "$CRETO" audit show --dir "$1/audit" --json; }
# check DIR FROM PY: run Python assertions over the entries with seq >= FROM
# (list `E`, and `D` = the digests named above)
check() {
  local label=$1 dir=$2 from=$3 py=$4
  entries "$dir" >entries.jsonl || { fail "$label: audit show"; return; }
  if python3 - entries.jsonl "$from" "$D1" "$D2" "$D3" "$R2" <<PY; then ok; else fail "$label: $(tail -n 8 entries.jsonl)"; fi
import json, sys
E = [json.loads(l) for l in open(sys.argv[1])]
# (the log's own entries aside: build/creto-test's clock has whole seconds,
# so its entries after build/creto's are clamped, and that is recorded)
E = [e for e in E if e["seq"] >= int(sys.argv[2]) and e["component"] != "audit"]
D = dict(zip(("m1", "m2", "m3", "r2"), sys.argv[3:7]))
def one(**kw):
    """the one entry whose members (and fields, f_NAME) have these values"""
    m = [e for e in E if all((e.get("fields", {}).get(k[2:]) if k.startswith("f_") else e.get(k)) == v
                             for k, v in kw.items())]
    assert len(m) == 1, (kw, m)
    return m[0]
$py
PY
}
size_of() { "$CRETO" audit show --dir "$1/audit" --json | wc -l; }
cp_size() { "$CRETO" audit checkpoint --dir "$1/audit" | sed -n 2p; }

# --- state init: the log is created and records the init; the key
# reference is recorded and signs the first checkpoint ---
expect 0 --err "audit log S/audit: first checkpoint signed" -- \
  "$CRETO" state init --state S --trust root.json --audit-key ak.key
[ -f S/audit/audit.db ] || fail "state init made no log"
[ "$(stat -c %a S/audit)" = 700 ] || fail "log directory not 0700"
check "state init" S 0 '
e = one(component="update", event="state-init", outcome="ok", subject="S")
assert e["seq"] == 0 and e["fields"]["origin"] == "creto/S" and e["fields"]["trust_root_version"] == 1, e
assert len(e["fields"]["checkpoint_key"]) == 16 and len(e["fields"]["trust_root_digest"]) == 64, e'
[ "$(cp_size S)" = 1 ] || fail "no checkpoint at size 1 after state init"
expect 2 --err "already initialised" -- "$CRETO" state init --state S --trust root.json
expect 0 -- "$CRETO" state init --state S2 --trust root.json --audit-origin enclave-a.example/updates --json
echo "$OUT" | grep -q '"audit_log": "S2/audit"' || fail "state init --json lacks the log: $OUT"
check "origin" S2 0 'one(event="state-init", f_origin="enclave-a.example/updates")'
expect 2 --err "origin" -- "$CRETO" state init --state S3 --trust root.json --audit-origin "has space"
[ ! -e S3/state.db ] || fail "a refused init left state behind"

# --- update apply: applied, duplicate (replay), refused (rule), retry ---
expect 0 -- "$CRETO" update apply m1.crupdate --trust root.json --state S
[ "$(cp_size S)" = "$(size_of S)" ] || fail "apply did not sign a checkpoint at exit (recorded key)"
expect 1 --err "replay" -- "$CRETO" update apply m1.crupdate --trust root.json --state S
expect 1 --err "digest" -- "$CRETO" update apply bad.crupdate --trust root.json --state S
expect 3 -- "$CRETO" update apply missing.crupdate --trust root.json --state S
check "apply" S 1 '
e = one(component="update", event="apply", outcome="applied", f_statement_digest=D["m1"])
assert e["subject"] == "m@1 sha3-256:" + D["m1"] and "reason" not in e, e
f = e["fields"]
assert (f["type"], f["name"], f["version"], f["file"]) == ("model-weights", "m", 1, "m1.crupdate"), f
assert len(f["keyids"].split(",")) == 2, f
e = one(component="update", event="apply", outcome="duplicate")
assert e["reason"] == "replay" and e["fields"]["statement_digest"] == D["m1"], e
e = one(component="update", event="apply", outcome="refused")
assert e["reason"] == "digest" and "digest" in e["fields"]["message"] and e["fields"]["file"] == "bad.crupdate", e
e = one(component="update", event="apply", outcome="retry")
assert e["subject"] == "missing.crupdate" and "reason" not in e, e'

# --- the diode watcher: start, applied, quarantined with its rule,
# duplicate, stop; then a requeue ---
mkdir D
cp m2.crupdate D/; cp bad.crupdate D/; cp m1.crupdate D/again.crupdate
n0=$(size_of S)
expect 1 -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 30
check "watch" S "$n0" '
s = one(component="diode", event="start", outcome="ok")
assert s["subject"] == "D" and s["reason"] == "one pass" and s["fields"]["trust_root_version"] == 1, s
e = one(component="diode", event="apply", outcome="applied")
assert e["fields"]["statement_digest"] == D["m2"] and e["fields"]["file"] == "D/m2.crupdate", e
e = one(component="diode", event="apply", outcome="quarantined")
assert e["reason"] == "digest" and e["fields"]["file"] == "D/bad.crupdate", e
e = one(component="diode", event="apply", outcome="duplicate")
assert e["reason"] == "replay" and e["fields"]["file"] == "D/again.crupdate", e
t = one(component="diode", event="stop", outcome="ok")
assert t["reason"] == "one pass done" and t["seq"] == E[-1]["seq"] and s["seq"] == E[0]["seq"], t'
[ "$(cp_size S)" = "$(size_of S)" ] || fail "the watcher did not sign a checkpoint at exit"
n0=$(size_of S)
expect 0 -- "$CRETO" diode quarantine requeue bad.crupdate --state S --drop D
check "requeue" S "$n0" '
e = one(component="diode", event="requeue", outcome="ok")
assert e["subject"] == "S/quarantine/bad.crupdate" and e["fields"]["file"] == "D/bad.crupdate", e
assert e["fields"]["drop"] == "D", e'
expect 1 -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 30
# update status shows the decisions from the log (watcher start/stop are in
# `creto audit show`, not among the package decisions).
expect 0 -- "$CRETO" update status --state S --audit 3 --json
python3 - <<PY || fail "status --audit 3: $OUT"
import json
a = json.loads('''$OUT''')["audit"]
assert [r["decision"] for r in a] == ["duplicate", "requeued", "quarantined"], a
assert all(r["from"] == "log" and isinstance(r["seq"], int) for r in a), a
assert a[2]["reason"] == "digest" and a[2]["source"] == "D/bad.crupdate", a
PY
expect 0 --out "requeued" -- "$CRETO" update status --state S --audit 3

# --- several writers: a requeue while a watcher runs (each takes the log
# only for its record); SIGTERM's stop is recorded too ---
"$CRETO" diode watch D --trust root.json --state S --settle-ms 30 --timeout 60 >w.log 2>&1 &
W=$!
for i in $(seq 1 100); do grep -q " started: " w.log && break; sleep 0.1; done
n0=$(size_of S)
expect 0 -- "$CRETO" diode quarantine requeue bad.crupdate --state S --drop D
for i in $(seq 1 150); do [ -e S/quarantine/bad.crupdate ] && break; sleep 0.1; done
kill -TERM $W; wait $W || fail "watcher exit after SIGTERM: $(cat w.log)"
check "requeue beside a watcher" S "$n0" '
o = [(e["event"], e["outcome"]) for e in E]
assert o == [("requeue", "ok"), ("apply", "quarantined"), ("stop", "ok")], o
assert E[-1]["reason"] == "stop requested", E[-1]'

# --- a trust rotation (component trust) ---
n0=$(size_of S)
expect 0 -- "$CRETO" update apply r2.crupdate --trust root.json --state S
check "rotation" S "$n0" '
e = one(component="trust", event="rotation", outcome="applied")
assert e["fields"]["type"] == "cert-rotation" and e["fields"]["version"] == 2, e
assert e["subject"] == "trust-root@2 sha3-256:" + D["r2"], e'

# --- killed between the record and the state commit: the next run records
# `aborted` (recovery), then its own decision ---
"$CRETO" audit checkpoint --dir S/audit -o kept.checkpoint >/dev/null || fail "keep a checkpoint"
n0=$(size_of S)
rc=0; { CRETO_TEST_CRASH_AT=before-commit "$CRETO_TEST_BIN" update apply m3.crupdate --trust root.json --state S >/dev/null 2>&1; } 2>/dev/null || rc=$?
[ "$rc" = 137 ] || fail "crash at before-commit: exit $rc"
[ "$(readlink S/models/m/current)" = 2 ] || fail "a killed install moved current"
expect 0 -- "$CRETO" update apply m3.crupdate --trust root.json --state S
check "aborted" S "$n0" '
o = [(e["event"], e["outcome"]) for e in E]
assert o == [("apply", "applied"), ("apply", "aborted"), ("apply", "applied")], o
a = E[1]
assert a["reason"] == "interrupted before the state commit" and a["fields"]["intended"] == "applied", a
assert a["subject"] == "m@3 sha3-256:" + D["m3"] == E[2]["subject"], a'
# Killed inside the log's own append (before its commit): the record was
# never acknowledged, so nothing was installed; the log still verifies.
rc=0; { CRETO_TEST_CRASH_AT=append-before-commit "$CRETO_TEST_BIN" update apply m4.crupdate --trust root.json --state S >/dev/null 2>&1; } 2>/dev/null || rc=$?
[ "$rc" = 137 ] || fail "crash at append-before-commit: exit $rc"
[ ! -e S/models/m/4 ] && [ "$(readlink S/models/m/current)" = 3 ] || fail "installed without its record"
expect 0 --out "extends the kept checkpoint" -- "$CRETO" audit verify --dir S/audit --pub ak.pub --checkpoint kept.checkpoint

# --- fail closed: a log that cannot be written stops the action (exit 3) ---
# (a) its size budget is exhausted
sqlite3 S/state.db "INSERT OR REPLACE INTO meta(k, v) VALUES('audit_budget', '4096')"
expect 3 --err "budget" -- "$CRETO" update apply m4.crupdate --trust root.json --state S
[ ! -e S/models/m/4 ] && [ "$(readlink S/models/m/current)" = 3 ] || fail "installed with the log full"
[ "$(sqlite3 S/state.db "SELECT version FROM installed WHERE name='m'")" = 3 ] || fail "state committed with the log full"
cp m4.crupdate D/
expect 3 --err "budget" -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 30
[ -e D/m4.crupdate ] && [ ! -e S/models/m/4 ] || fail "the watcher acted with the log full"
expect 3 -- "$CRETO" diode quarantine requeue bad.crupdate --state S --drop D
[ -e S/quarantine/bad.crupdate ] || fail "requeued with the log full"
sqlite3 S/state.db "DELETE FROM meta WHERE k='audit_budget'"
# (b) the log is gone: never silently recreated
mv S/audit S/audit.away
expect 3 --err "is missing" -- "$CRETO" update apply m4.crupdate --trust root.json --state S
[ ! -e S/audit ] && [ ! -e S/models/m/4 ] || fail "acted, or recreated the log, while it was missing"
mv S/audit.away S/audit
# (c) the log's database is not writable (a directory in its place)
mv S/audit/audit.db audit.db.saved; mkdir S/audit/audit.db
expect 3 -- "$CRETO" update apply m4.crupdate --trust root.json --state S
[ ! -e S/models/m/4 ] || fail "installed while the log could not be opened"
rmdir S/audit/audit.db; mv audit.db.saved S/audit/audit.db
expect 0 --out "applied m4.crupdate" -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 30
# A checkpoint key that cannot be opened stops the command before it acts.
expect 3 -- "$CRETO" update apply m4.crupdate --trust root.json --state S --audit-key nokey.key
expect 0 --out "extends the kept checkpoint" -- "$CRETO" audit verify --dir S/audit --pub ak.pub --checkpoint kept.checkpoint

# --- without a key: entries are durable, `audit checkpoint --key` signs later ---
"$CRETO" state init --state S4 --trust root.json >/dev/null 2>&1 || fail "state init S4"
expect 0 -- "$CRETO" update apply m1.crupdate --trust root.json --state S4
expect 2 --err "no checkpoint yet" -- "$CRETO" audit checkpoint --dir S4/audit
# The log held by another writer for a moment (a script's `audit append`):
# waited for, then recorded.
flock S4/audit/lock sleep 1 &
FL=$!
sleep 0.2
expect 0 -- "$CRETO" update apply m2.crupdate --trust root.json --state S4 --audit-key ak.key
wait $FL
[ "$(cp_size S4)" = 3 ] || fail "--audit-key did not sign a checkpoint at exit"
expect 0 -- "$CRETO" audit verify --dir S4/audit --pub ak.pub

# --- migration: state of an earlier version, with rows in its audit table ---
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
INSERT INTO audit(at, source, statement_digest, type, name, version, keyids, decision, reason) VALUES
 (1700000100, 'old/x.crupdate', 'aa', 'model-weights', 'x', 1, 'k1,k2', 'applied', NULL),
 (1700000200, 'D/evil\\nname.crupdate', NULL, NULL, NULL, NULL, NULL, 'quarantined', 'D/evil\\nname.crupdate: container: not a tar'),
 (1700000300, 'old/x.crupdate', 'aa', 'model-weights', 'x', 1, 'k1,k2', 'duplicate', 'replay: statement aa'),
 (1700000400, 'old/r.crupdate', 'bb', 'cert-rotation', 'trust-root', 2, 'k1', 'applied', NULL),
 (1700000500, 'D/y.crupdate', NULL, NULL, NULL, NULL, NULL, 'requeued', 'requeued from quarantine/y.crupdate');
""")
db.commit()
PY
expect 0 --out '"from": "state.db"' -- "$CRETO" update status --state Sold --json
# Killed after the first carried entry: the next run resumes, each row once.
rc=0; { CRETO_TEST_CRASH_AT=append-after-commit "$CRETO_TEST_BIN" update apply m1.crupdate --trust root.json --state Sold >/dev/null 2>&1; } 2>/dev/null || rc=$?
[ "$rc" = 137 ] || fail "crash during the migration: exit $rc"
expect 0 -- "$CRETO" update apply m1.crupdate --trust root.json --state Sold
expect 0 -- "$CRETO" update apply m2.crupdate --trust root.json --state Sold
check "migration" Sold 0 '
rows = [e for e in E if "migrated_row" in e.get("fields", {})]
assert [e["fields"]["migrated_row"] for e in rows] == [1, 2, 3, 4, 5], rows
assert [e["seq"] for e in rows] == [0, 1, 2, 3, 4], rows
assert [e["time"] for e in rows] == [(1700000000 + 100 * i) * 1000000 for i in range(1, 6)], rows
k = [(e["component"], e["event"], e["outcome"], e["fields"]["decision"]) for e in rows]
assert k == [("update", "apply", "applied", "applied"), ("diode", "apply", "quarantined", "quarantined"),
             ("update", "apply", "duplicate", "duplicate"), ("trust", "rotation", "applied", "applied"),
             ("diode", "requeue", "ok", "requeued")], k
assert rows[0]["subject"] == "x@1 sha3-256:aa" and rows[0]["fields"]["keyids"] == "k1,k2", rows[0]
# the stored escape text is decoded once: the log escapes the bytes itself
assert rows[1]["fields"]["file"] == "D/evil\\nname.crupdate" and rows[1]["subject"] == "D/evil\\nname.crupdate", rows[1]
m = one(component="update", event="migrate", outcome="ok")
assert m["seq"] == 5 and m["fields"]["carried"] == 4 and m["fields"]["origin"] == "creto/Sold", m
assert [e["outcome"] for e in E[6:]] == ["applied", "applied"], E[6:]'
[ "$(sqlite3 Sold/state.db "SELECT v FROM meta WHERE k='audit_migrated'")" = 5 ] || fail "migration not marked"
expect 0 -- "$CRETO" update status --state Sold --audit 10 --json
python3 - <<PY || fail "status after migration: $OUT"
import json
a = json.loads('''$OUT''')["audit"]
assert [r["decision"] for r in a] == ["applied", "quarantined", "duplicate", "applied", "requeued", "applied", "applied"], a
assert [r["from"] for r in a][:5] == ["migrated"] * 5 and a[0]["at"] == "2023-11-14T22:15:00Z", a
PY
expect 0 -- "$CRETO" audit checkpoint --dir Sold/audit --key ak.key -o old.checkpoint
expect 0 --out "8 entries" -- "$CRETO" audit verify --dir Sold/audit --pub ak.pub
finish
