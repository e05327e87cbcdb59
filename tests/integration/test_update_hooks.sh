#!/bin/bash
# test_update_hooks.sh - no test hooks in the product (issue 11 §5):
# build/creto ignores CRETO_TEST_NOW (an expired package stays refused, a
# statement's default `created` is the real time) and CRETO_TEST_CRASH_AT
# (apply runs to the end); build/creto-test, the test program, honours both.
. "$(dirname "$0")/lib.sh"
: "${CRETO_TEST_BIN:?run through ctest (CRETO_TEST_BIN unset)}"
[ -x "$CRETO_TEST_BIN" ] || skip "creto-test not built"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
now=$(date +%s)
mkdir p; head -c 5000 /dev/urandom >p/w.bin
# A package created two days ago that expired yesterday.
"$CRETO" update create --type model-weights --name m --version 1 --payload p \
  --created "$(date -u -d @$((now - 2 * 86400)) +%Y-%m-%dT%H:%M:%SZ)" \
  --expires "$(date -u -d @$((now - 86400)) +%Y-%m-%dT%H:%M:%SZ)" -o old.st >/dev/null
for k in a b; do "$CRETO" update sign old.st --key $k.key >/dev/null; done
"$CRETO" update assemble old.st --payload p -o old.crupdate --force >/dev/null
past=$((now - 3 * 86400))
"$CRETO" state init --state S --trust root.json >/dev/null 2>&1 || true
# The product: the pinned clock is ignored.
expect 1 --err "expired: statement expired at" -- env CRETO_TEST_NOW=$past "$CRETO" update verify old.crupdate --trust root.json
expect 1 --err "expired" -- env CRETO_TEST_NOW=$past "$CRETO" update apply old.crupdate --trust root.json --state S
mkdir D; cp old.crupdate D/old.crupdate
CRETO_TEST_NOW=$past "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 20 >w.log 2>&1
grep -q "quarantined old.crupdate" w.log || fail "watcher accepted an expired package under CRETO_TEST_NOW: $(cat w.log)"
# `update create` dates a statement by the real clock.
env CRETO_TEST_NOW=$past "$CRETO" update create --type model-weights --name m --version 2 --payload p -o now.st --force >/dev/null
python3 - now.st "$now" <<'PY' || fail "update create took its time from CRETO_TEST_NOW"
import json, sys, calendar, time
c = json.load(open(sys.argv[1]))["created"]
t = calendar.timegm(time.strptime(c, "%Y-%m-%dT%H:%M:%SZ"))
assert abs(t - int(sys.argv[2])) < 3600, c
PY
# The test program: the same package verifies at the pinned time.
expect 0 -- env CRETO_TEST_NOW=$past "$CRETO_TEST_BIN" update verify old.crupdate --trust root.json
# Crash injection: build/creto runs to the end; creto-test dies at the point.
mkdir q; head -c 5000 /dev/urandom >q/w.bin
"$CRETO" update create --type model-weights --name k --version 1 --payload q -o k1.st --force >/dev/null
for k in a b; do "$CRETO" update sign k1.st --key $k.key >/dev/null; done
"$CRETO" update assemble k1.st --payload q -o k1.crupdate --force >/dev/null
expect 0 --out "applied model-weights k version 1" -- env CRETO_TEST_CRASH_AT=staged "$CRETO" update apply k1.crupdate --trust root.json --state S
rc=0; { CRETO_TEST_CRASH_AT=staged "$CRETO_TEST_BIN" update apply k1.crupdate --trust root.json --state S2 >/dev/null 2>&1; } 2>/dev/null || rc=$?
[ "$rc" = 137 ] || [ "$rc" = 2 ] || fail "creto-test did not honour CRETO_TEST_CRASH_AT (exit $rc)"
# Neither variable name appears in the product binary's strings.
if command -v strings >/dev/null; then
  strings "$CRETO" | grep -q "CRETO_TEST_NOW\|CRETO_TEST_CRASH_AT" && fail "build/creto contains a test hook variable name"
fi
finish
