#!/bin/bash
# test_update_fifo.sh - untrusted files never block creto (issue 11 §2): a
# FIFO (or symlink) where a package is expected is refused at once with exit
# 1 and the `container` rule by `update verify|apply|inspect`, and apply does
# not hold the state lock on it.  The diode watcher opens each candidate
# once (O_NONBLOCK, O_NOFOLLOW) and decides from that descriptor: under a
# swap race (a FIFO and a regular file renamed onto one name in a loop) it
# keeps processing other packages and stops on time (--timeout and SIGTERM).
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
command -v timeout >/dev/null || skip "timeout missing"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
pkg() { # NAME VERSION
  mkdir -p "p$2"; head -c 20000 /dev/urandom >"p$2/w.bin"
  "$CRETO" update create --type model-weights --name m --version "$2" --payload "p$2" -o "$1.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "p$2" -o "$1.crupdate" --force >/dev/null
}
pkg v1 1; pkg v2 2; pkg v3 3
"$CRETO" state init --state S --trust root.json >/dev/null 2>&1 || true

# --- a FIFO to each command: refused at once, exit 1, rule container ---
mkfifo x.crupdate
# `timeout` turns a hang into exit 124 (a failure), never a wait without end.
expect 1 --err "container" -- timeout 20 "$CRETO" update verify x.crupdate --trust root.json
expect 1 --err "container" -- timeout 20 "$CRETO" update verify x.crupdate --trust root.json --state S
expect 1 --err "container" -- timeout 20 "$CRETO" update apply x.crupdate --trust root.json --state S
expect 1 --err "container" -- timeout 20 "$CRETO" update inspect x.crupdate
expect 1 --out '"rule": "container"' -- timeout 20 "$CRETO" update verify x.crupdate --trust root.json --json
ln -s v1.crupdate link.crupdate
expect 1 --err "container" -- timeout 20 "$CRETO" update verify link.crupdate --trust root.json
# The state lock was not left held: the next apply goes through.
expect 0 -- timeout 60 "$CRETO" update apply v1.crupdate --trust root.json --state S

# --- the watcher: a FIFO in the drop directory is quarantined, not waited on ---
mkdir D
mkfifo D/fifo.crupdate
cp v2.crupdate D/v2.crupdate
expect 1 --out "applied v2.crupdate" -- timeout 60 "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 50
echo "$OUT" | grep -q " quarantined fifo.crupdate: .*container" || fail "FIFO not quarantined: $OUT"
grep -q "rule: container" S/quarantine/fifo.crupdate.reason || fail "no container reason for the FIFO"

# --- swap race: a FIFO and a regular file renamed onto one name in a loop ---
cat >race.py <<'PY'
import os, sys, time
d, src, deadline = sys.argv[1], open(sys.argv[2], "rb").read(), time.time() + float(sys.argv[3])
name = os.path.join(d, "race.crupdate")
i = 0
while time.time() < deadline and i < 200000:   # bounded either way
    i += 1
    f = os.path.join(d, ".f%d" % i)
    os.mkfifo(f)
    os.rename(f, name)
    r = os.path.join(d, ".r%d" % i)
    with open(r, "wb") as fh:
        fh.write(src)
    os.rename(r, name)
PY
python3 race.py D v1.crupdate 8 &
R=$!
start=$(date +%s)
"$CRETO" diode watch D --trust root.json --state S --settle-ms 50 --timeout 6 >race.log 2>&1 &
W=$!
sleep 1
cp v3.crupdate D/v3.crupdate
# The watcher must end by itself (timeout 6 s); allow a generous bound, then fail.
for i in $(seq 1 300); do kill -0 $W 2>/dev/null || break; sleep 0.1; done
if kill -0 $W 2>/dev/null; then
  fail "watcher did not stop on --timeout under the swap race"; kill -KILL $W
fi
wait $W; rc=$?
[ "$rc" = 0 ] || fail "watcher exited $rc under the swap race: $(tail -5 race.log)"
wait $R || true
grep -q " applied v3.crupdate" race.log || fail "other package not processed under the swap race: $(grep -v race race.log | tail -5)"
[ "$(readlink S/models/m/current)" = 3 ] || fail "v3 not current after the race"
grep -q " race.crupdate: " race.log || fail "the racing name was never decided about: $(tail -3 race.log)"
echo "swap race: $(grep -c ' race.crupdate: ' race.log) decisions on the racing name, $(grep -c ' retry race' race.log) retries"
# Nothing that was moved out was decided about under another identity:
# every race file in processed/ is a duplicate or was applied (never a FIFO).
for f in S/processed/race.crupdate*; do
  [ -e "$f" ] || continue
  [ -p "$f" ] && fail "a FIFO landed in processed/"
done
ok

# --- SIGTERM while a FIFO sits in the drop directory: stops at once ---
rm -f D/*.crupdate D/.f* D/.r* 2>/dev/null
mkfifo D/hang.crupdate
"$CRETO" diode watch D --trust root.json --state S --settle-ms 50 >term.log 2>&1 &
W=$!
for i in $(seq 1 100); do grep -q "fifo\|hang" term.log && break; sleep 0.1; done
kill -TERM $W
for i in $(seq 1 100); do kill -0 $W 2>/dev/null || break; sleep 0.1; done
if kill -0 $W 2>/dev/null; then fail "watcher ignored SIGTERM"; kill -KILL $W; fi
wait $W || true
grep -q " quarantined hang.crupdate" term.log || fail "FIFO not quarantined before SIGTERM: $(cat term.log)"
finish
