#!/bin/bash
# test_diode_watch.sh - the diode watcher: a scan at start (--once), then
# packages dropped while it runs (inotify), half-written files (.part, still
# growing, or held open by a writer that paused) waited for, rejected ones quarantined with a reason, nothing
# deleted, nothing processed twice, one audit row per decision.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
pkg() { # NAME VERSION
  mkdir -p "p$2"; head -c 100000 /dev/urandom >"p$2/w.bin"
  "$CRETO" update create --type model-weights --name m --version "$2" --payload "p$2" -o "$1.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "p$2" -o "$1.crupdate" --force >/dev/null
}
pkg v1 1; pkg v2 2; pkg v3 3; pkg old 2; pkg v4 4
cp v2.crupdate bad.crupdate   # a tampered copy of v2: must not block the real v2
flip bad.crupdate $(( $(stat -c %s bad.crupdate) - 5000 ))
mkdir D
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
# --- scan at start with --once ---
cp v1.crupdate D/a-v1.crupdate; cp bad.crupdate D/b-bad.crupdate; cp v2.crupdate D/c-v2.crupdate.part
# --once exits 1 when anything was quarantined in the pass (b-bad).
expect 1 --out "applied a-v1.crupdate" -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 100
echo "$OUT" | grep -q "quarantined b-bad.crupdate" || fail "bad package not quarantined: $OUT"
[ -f S/processed/a-v1.crupdate ] || fail "applied package not moved to processed/"
[ -f S/quarantine/b-bad.crupdate ] || fail "rejected package not in quarantine/"
grep -q "rule: digest" S/quarantine/b-bad.crupdate.reason || fail "reason file lacks the rule"
[ -f D/c-v2.crupdate.part ] || fail ".part file touched"
[ "$(readlink S/models/m/current)" = 1 ] || fail "v1 not current"
# --- packages dropped while the watcher runs ---
"$CRETO" diode watch D --trust root.json --state S --settle-ms 300 --timeout 60 >watch.log 2>&1 &
W=$!
sleep 0.5
mv D/c-v2.crupdate.part D/c-v2.crupdate            # the .part protocol
# A file written slowly (still growing) is waited for.
python3 - v3.crupdate D/d-v3.crupdate <<'PY'
import sys, time
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as f:
    for i in range(0, len(data), 8192):
        f.write(data[i:i + 8192]); f.flush(); time.sleep(0.02)
PY
for i in $(seq 1 100); do [ -f S/processed/d-v3.crupdate ] && break; sleep 0.2; done
cp old.crupdate D/e-old.crupdate                    # a rollback to version 2
cp v2.crupdate D/f-v2-again.crupdate                # the same package again
for i in $(seq 1 100); do [ -f S/quarantine/e-old.crupdate.reason ] && [ -f S/processed/f-v2-again.crupdate ] && break; sleep 0.2; done
# A writer that pauses for longer than the settle interval, the file still
# open: waited for (it holds the file open for writing), then taken whole.
# Another file dropped meanwhile wakes the watcher during the pause.
python3 - v4.crupdate D/g-paused.crupdate v1.crupdate D/h-wake.crupdate <<'PY'
import shutil, sys, time
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as f:
    f.write(data[:len(data) // 2]); f.flush()
    shutil.copyfile(sys.argv[3], sys.argv[4])
    time.sleep(2)
    f.write(data[len(data) // 2:])
PY
for i in $(seq 1 100); do [ -f S/processed/g-paused.crupdate ] && break; [ -f S/quarantine/g-paused.crupdate ] && break; sleep 0.2; done
kill -TERM $W; wait $W || true
[ -f S/processed/c-v2.crupdate ] || fail "v2 not processed: $(cat watch.log)"
[ -f S/processed/d-v3.crupdate ] || fail "growing v3 not processed: $(cat watch.log)"
grep -q "quarantined d-v3" watch.log && fail "a growing file was taken before it was complete"
grep -q " applied g-paused.crupdate" watch.log || fail "a paused writer's file was taken before it was complete: $(cat watch.log)"
grep -q "rule: rollback" S/quarantine/e-old.crupdate.reason || fail "rollback not quarantined with its reason"
grep -q " duplicate f-v2-again.crupdate: already applied" watch.log || fail "second copy of v2 not recognised: $(cat watch.log)"
[ "$(readlink S/models/m/current)" = 4 ] || fail "v4 not current"
cmp -s p4/w.bin S/models/m/current/w.bin || fail "v4 content wrong"
# Nothing lost: every dropped file is in processed/ or quarantine/, byte-identical.
[ -z "$(ls D)" ] || fail "files left in the diode directory: $(ls D)"
for f in a-v1:v1 c-v2:v2 d-v3:v3 f-v2-again:v2 g-paused:v4 h-wake:v1; do
  cmp -s "S/processed/${f%%:*}.crupdate" "${f#*:}.crupdate" || fail "processed ${f%%:*} differs"
done
cmp -s S/quarantine/b-bad.crupdate bad.crupdate || fail "quarantined package altered"
n=$(ls S/processed S/quarantine | grep -c '\.crupdate$'); [ "$n" = 8 ] || fail "expected 8 packages kept, found $n"
# One audit row per decision, with statement digest and key ids.
"$CRETO" update status --state S --audit 100 --json >status.json
python3 - status.json <<'PY' || fail "audit rows incomplete"
import json, sys
a = json.load(open(sys.argv[1]))["audit"]
dec = [r["decision"] for r in a]
assert dec.count("applied") == 4, dec
assert "duplicate" in dec and "quarantined" in dec, dec
# One row per rejection: `quarantined` (b-bad, e-old), no extra `rejected`.
assert dec.count("quarantined") == 2 and "rejected" not in dec, dec
assert all(r.get("statement_digest") for r in a if r["decision"] == "applied")
assert all(r.get("keyids") for r in a if r["decision"] == "applied")
PY
ok
# A restart finds nothing to do and processes nothing twice.
expect 0 -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 50
echo "$OUT" | grep -qE " (applied|duplicate|quarantined|retry) " && fail "restart processed something: $OUT"
echo "$OUT" | grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z started: watching D, state S, trust root version 1 \(expires " ||
  fail "no start line: $OUT"
finish
