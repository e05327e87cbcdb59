#!/bin/bash
# test_update_context.sh - the update context as the CLI uses it (docs/
# crupdate.md 5a): a running watcher holds the state (lock, database, trust
# root) while read-only commands work beside it (update models, update
# verify --state, update status, quarantine list) and a second writer is
# refused; SIGTERM stops the watcher through its stop handle (exit 0, a
# clean last line), and the next writer then finds no stale lock.
. "$(dirname "$0")/lib.sh"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
pkg() { # NAME VERSION
  mkdir -p "p$1$2"; head -c 7000 /dev/urandom >"p$1$2/w.bin"
  "$CRETO" update create --type model-weights --name "$1" --version "$2" --payload "p$1$2" -o "$1$2.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1$2.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1$2.st" --payload "p$1$2" --trust root.json -o "$1$2.crupdate" --force >/dev/null 2>&1
}
pkg llama 1; pkg llama 2; pkg mistral 1
"$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
expect 0 --out "no models installed" -- "$CRETO" update models --state S
expect 2 --err "does not exist" -- "$CRETO" update models --state nowhere

mkdir D
"$CRETO" diode watch D --trust root.json --state S --settle-ms 50 --timeout 120 >w.log 2>&1 &
W=$!
for i in $(seq 1 100); do grep -q " started: " w.log && break; sleep 0.1; done
grep -q " started: " w.log || fail "watcher did not start: $(cat w.log)"
cp llama1.crupdate D/; cp mistral1.crupdate D/
for i in $(seq 1 150); do [ "$(grep -c ' applied ' w.log)" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c ' applied ' w.log)" -ge 2 ] || fail "not applied: $(cat w.log)"

# Beside the running writer: readers work, a second writer is refused.
expect 0 -- "$CRETO" update models --state S --json
python3 - S <<PY || fail "update models: $OUT"
import json, os, sys
m = json.loads('''$OUT''')
assert [(x["name"], x["version"]) for x in m] == [("llama", 1), ("mistral", 1)], m
for x in m:
    assert x["path"] == os.path.join(sys.argv[1], "models", x["name"], str(x["version"])), x
    assert os.path.isfile(os.path.join(x["path"], "w.bin")), x
    assert len(x["statement_digest"]) == 64 and x["installed_at"].endswith("Z"), x
PY
expect 0 --out "verified model-weights llama version 2" -- "$CRETO" update verify llama2.crupdate --trust root.json --state S
expect 0 --out "installed (2)" -- "$CRETO" update status --state S
expect 0 -- "$CRETO" diode quarantine list --state S
expect 2 --err "is in use by process $W" -- "$CRETO" update apply llama2.crupdate --trust root.json --state S

# The watcher's context holds the trust root: a later package is judged by it.
cp llama2.crupdate D/
for i in $(seq 1 150); do grep -q " applied llama2.crupdate" w.log && break; sleep 0.1; done
grep -q " applied llama2.crupdate: model-weights llama version 2" w.log || fail "v2 not applied: $(cat w.log)"

# SIGTERM: the handle stops it; exit 0, nothing left half done.
kill -TERM $W
rc=0; wait $W || rc=$?
[ "$rc" = 0 ] || fail "watcher exit $rc after SIGTERM: $(cat w.log)"
[ -z "$(ls S/staging 2>/dev/null)" ] || fail "staging not empty after stop"
expect 0 --out "S/models/llama/2" -- "$CRETO" update models --state S
# The lock went with the process: the next writer gets it at once.
expect 1 --err "replay" -- "$CRETO" update apply llama2.crupdate --trust root.json --state S
ok
finish
