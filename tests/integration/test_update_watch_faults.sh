#!/bin/bash
# test_update_watch_faults.sh - the diode watcher when its surroundings fail:
# a trust root it cannot use (refused at start with exit 1 or 3; during a pass
# a `retry` that keeps the package, never a quarantine), a trust root given as
# a symlink (a Kubernetes ConfigMap mount), a drop directory on another file
# system (refused at start, exit 2), a move that fails and a .reason file that
# cannot be written (the watcher goes on with the next file).
. "$(dirname "$0")/lib.sh"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o unsigned.json >/dev/null
cp unsigned.json root.json
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
pkg() { # NAME VERSION
  mkdir -p "p$2"; head -c 5000 /dev/urandom >"p$2/w.bin"
  "$CRETO" update create --type model-weights --name m --version "$2" --payload "p$2" -o "$1.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "p$2" -o "$1.crupdate" --force >/dev/null
}
pkg v1 1; pkg v2 2
cp v2.crupdate bad.crupdate   # tampered payload: rejected with rule digest
flip bad.crupdate $(( $(stat -c %s bad.crupdate) - 2000 ))
W() { "$CRETO" diode watch "$@" --settle-ms 50; }
for s in S1 S2 S4 S5 S3; do "$CRETO" state init --state $s --trust root.json >/dev/null || fail "state init $s"; done

# --- a trust root the watcher cannot use: refused at start, nothing touched ---
mkdir D1; cp v1.crupdate D1/a.crupdate
expect 1 --err "trust root" -- W D1 --trust unsigned.json --state S1 --once
[ -f D1/a.crupdate ] || fail "package moved although the trust root is unusable"
[ -z "$(ls S1/quarantine 2>/dev/null)" ] || fail "quarantined with an unusable trust root"
expect 3 --err "missing.json" -- W D1 --trust missing.json --state S1 --once
[ -f D1/a.crupdate ] || fail "package moved although the trust root is missing"

# --- a trust root reached through symlinks, as a ConfigMap mount lays it out ---
mkdir -p cm/..2026_11_30; cp root.json cm/..2026_11_30/root.json
ln -s ..2026_11_30 cm/..data; ln -s ..data/root.json cm/root.json
expect 0 --out "applied a.crupdate" -- W D1 --trust cm/root.json --state S1 --once
[ -f S1/processed/a.crupdate ] || fail "not moved to processed/"
# update verify and apply accept the same --trust path.
expect 0 -- "$CRETO" update verify v2.crupdate --trust cm/root.json --state S1

# --- the trust root turns unusable while the watcher runs: retry, not quarantine ---
cp root.json live.json
mkdir D2
"$CRETO" diode watch D2 --trust live.json --state S2 --settle-ms 50 --timeout 30 >w2.log 2>&1 &
P=$!
sleep 0.5
cp unsigned.json live.json
cp v1.crupdate D2/b.crupdate
for i in $(seq 1 50); do grep -q " retry b.crupdate" w2.log && break; sleep 0.2; done
kill -TERM $P; wait $P || true
grep -q " retry b.crupdate: .*trust root" w2.log || fail "no retry for an unusable trust root: $(cat w2.log)"
grep -q " quarantined " w2.log && fail "a valid package was quarantined over the trust root: $(cat w2.log)"
[ -f D2/b.crupdate ] || fail "package left the drop directory"
[ -z "$(ls S2/quarantine)" ] || fail "quarantine not empty: $(ls S2/quarantine)"
cp root.json live.json   # fixed: the next pass applies it
expect 0 --out "applied b.crupdate" -- W D2 --trust live.json --state S2 --once

# --- drop directory on another file system: refused at start (exit 2) ---
SHM=$(mktemp -d /dev/shm/creto-test.XXXXXX 2>/dev/null || true)
if [ -n "$SHM" ] && [ "$(stat -c %d "$SHM")" != "$(stat -c %d "$T")" ]; then
  trap 'rm -rf "$T" "$SHM"' EXIT
  cp v1.crupdate "$SHM/c.crupdate"
  expect 2 --err "different file systems" -- W "$SHM" --trust root.json --state S3 --once
  [ -f "$SHM/c.crupdate" ] || fail "package taken from a drop directory on another file system"
  [ ! -e S3/models ] || fail "applied although it could not be moved"
  rm -rf "$SHM"
else
  [ -n "$SHM" ] && rm -rf "$SHM"
  echo "note: /dev/shm is not a separate file system here; cross-device case not run"
fi

# --- a move that fails: retry for that file, the next file still handled ---
mkdir -p D4 S4/quarantine
cp bad.crupdate D4/bad.crupdate; cp v1.crupdate D4/good.crupdate
touch S4/quarantine/bad.crupdate; for i in $(seq 1 999); do : >"S4/quarantine/bad.crupdate.$i"; done
expect 0 --out "applied good.crupdate" -- W D4 --trust root.json --state S4 --once
echo "$OUT" | grep -q " retry bad.crupdate: rejected (.*digest" || fail "failed move not a retry: $OUT"
[ -f D4/bad.crupdate ] || fail "package lost after a failed move"
[ -f S4/processed/good.crupdate ] || fail "next package not processed after a failed move"

# --- a .reason file that cannot be written: still quarantined, watcher goes on ---
mkdir -p D5 S5/quarantine/bad.crupdate.reason   # a directory where the file would go
cp bad.crupdate D5/bad.crupdate; cp v1.crupdate D5/good.crupdate
expect 1 --out "applied good.crupdate" -- W D5 --trust root.json --state S5 --once
echo "$OUT" | grep -q " quarantined bad.crupdate: .*reason file not written" || fail "reason failure not reported: $OUT"
cmp -s S5/quarantine/bad.crupdate bad.crupdate || fail "package not in quarantine/"
# One audit row for the rejection (quarantined), none `rejected`.
"$CRETO" update status --state S5 --audit 10 --json >status.json
python3 - status.json <<'PY' || fail "audit rows: $(cat status.json)"
import json, sys
dec = [r["decision"] for r in json.load(open(sys.argv[1]))["audit"]]
assert sorted(dec) == ["applied", "quarantined"], dec
PY
ok
finish
