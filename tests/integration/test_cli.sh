#!/bin/bash
# The CLI skeleton: help, version, usage errors and their exit codes.
. "$(dirname "$0")/lib.sh"
expect 0 --out "usage: creto" -- "$CRETO" --help
expect 0 --out "creto 0." -- "$CRETO" --version
expect 0 --out '"version": "0.' -- "$CRETO" --version --json
expect 2 --err "takes no other arguments" -- "$CRETO" --help model
expect 2 --err "unknown group 'nope'" -- "$CRETO" nope
rc=0; "$CRETO" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && ok || fail "no arguments exited $rc, expected 2"
# No core file can carry secrets off: a running creto has RLIMIT_CORE 0
# even when started with an unlimited one (it waits on a FIFO here).
mkfifo "$T/fifo"
(ulimit -c unlimited 2>/dev/null || true
 exec "$CRETO" nhi resolve --db "$T/none.db" --jwks "$T/none.json" --token-file - <"$T/fifo" >/dev/null 2>&1) &
pid=$!
exec 3>"$T/fifo"
for _ in $(seq 50); do grep -q creto "/proc/$pid/cmdline" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
grep -Eq "^Max core file size +0 +0 " "/proc/$pid/limits" && ok || fail "core files allowed: $(grep core "/proc/$pid/limits")"
exec 3>&-
wait "$pid" || true
# ---- §4c: a help request is never a verdict ------------------------------
# Help is only `creto [GROUP [CMD]] --help|-h` alone.  As an option's value
# or an operand it is a file name; mixed with other arguments it is exit 2.
cd "$T"
expect 0 --out "usage: creto model verify" -- "$CRETO" model verify --help
expect 0 --out "usage: creto model verify" -- "$CRETO" model verify -h
expect 0 --out "usage: creto verify" -- "$CRETO" verify -h
expect 0 --out "usage: creto model" -- "$CRETO" model --help
"$CRETO" key gen --alg ed25519 -o a >/dev/null || fail "key gen"
printf 'signed data\n' >file.bin
"$CRETO" sign --quiet --key a.key file.bin -o file.sig || fail "sign"
cp file.bin ./-h; cp file.sig ./-h.sig
# verify: -h in an option position with other arguments is a usage error,
# never exit 0; after -- (or as ./-h) it is a file, and a key file named
# --help given as --pub's value is a key file.
expect 2 --err "verify: -h/--help takes no other arguments" -- "$CRETO" verify --pub a.pub -h -h.sig
expect 2 --err "takes no other arguments" -- "$CRETO" verify --pub a.pub file.bin file.sig --help
expect 0 --out "verified: -h signed by" -- "$CRETO" verify --pub a.pub -- -h -h.sig
expect 0 --out "verified: ./-h signed by" -- "$CRETO" verify --pub a.pub ./-h ./-h.sig
cp a.pub ./--help
expect 0 --out "verified" -- "$CRETO" verify --pub --help file.bin file.sig
printf 'tampered\n' >./-h
expect 1 --err "bad signature" -- "$CRETO" verify --pub a.pub -- -h -h.sig
expect 2 --err "verify: option '--pub' needs a value" -- "$CRETO" verify file.bin file.sig --pub
# model verify: a manifest file named -h is a manifest (verified, then
# rejected once the model changes); a missing value is exit 2.
mkdir m; printf 'weights\n' >m/w.bin
"$CRETO" model manifest m -o ./-h --quiet || fail "model manifest"
expect 0 --out "verified 1 files against manifest -h" -- "$CRETO" model verify m --manifest -h
printf 'other!!\n' >m/w.bin
expect 1 --err "w.bin" -- "$CRETO" model verify m --manifest -h
expect 2 --err "model verify: option '--manifest' needs a value" -- "$CRETO" model verify m --manifest
expect 2 --err "takes no other arguments" -- "$CRETO" model verify m --manifest ./-h --help
# isolation check: a config named --help is a config file; here with a
# resolver outside the allowed prefixes, so the verdict is "not isolated"
# (passive checks only: no packet leaves).
: >./--help
printf 'nameserver 8.8.8.8\n' >resolv.ext
expect 1 --err "not isolated" -- "$CRETO" isolation check --resolv-conf resolv.ext --config --help
expect 2 --err "isolation check: option '--config' needs a value" -- "$CRETO" isolation check --config
expect 2 --err "takes no other arguments" -- "$CRETO" isolation check --resolv-conf resolv.ext -h
# update verify and nhi resolve: --help as a value is a (missing) file, not help.
rc=0; "$CRETO" update verify pkg.crupdate --trust --help >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] && ok || fail "update verify pkg --trust --help exited 0"
rc=0; "$CRETO" nhi resolve --db --help --jwks none.json --token-file none >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] && ok || fail "nhi resolve --db --help exited 0"
rc=0; "$CRETO" update verify --help pkg.crupdate >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && ok || fail "update verify --help pkg exited $rc, expected 2"

# ---- §7: usage errors in one form, as JSON with --json -------------------
expect 2 --err "creto: model hash: --threads: 'x' is not a whole number in 1.." -- "$CRETO" model hash m --threads x
expect 2 --err "--threads: '4x'" -- "$CRETO" model hash m --threads 4x
expect 2 --err "--threads: '-1'" -- "$CRETO" model hash m --threads -1
expect 2 --err "--shard-size: '99999999999999999999999'" -- "$CRETO" model hash m --method shards --shard-size 99999999999999999999999
expect 2 --err "isolation watch: --count: ' 5'" -- "$CRETO" isolation watch --count ' 5'
expect 2 --err "isolation check: --routes: want auto, netlink or proc, not 'x'" -- "$CRETO" isolation check --routes x
expect 2 --err "creto: key gen: --alg: unknown algorithm 'rsa' (want ed25519" -- "$CRETO" key gen --alg rsa -o x
expect 2 --err "model: unknown command 'nope' (one of: hash, manifest, verify, sign)" -- "$CRETO" model nope
expect 2 --err "unknown or ambiguous option '--bogus'" -- "$CRETO" key id --bogus a.pub
expect 2 --err "creto: key gen: -o NAME is required" -- "$CRETO" key gen --alg ed25519
expect 2 --err "creto: verify: 2 operands expected, 1 given" -- "$CRETO" verify --pub a.pub file.bin
expect 2 --err "creto: sign: unexpected argument 'extra'" -- "$CRETO" sign --key a.key file.bin extra -o x.sig
# an argument shown in a usage error is escaped: it cannot forge a line
expect 2 --err "unknown command 'a\\nfake' (one of" -- "$CRETO" model "$(printf 'a\nfake')"
[ "$(grep -c '' "$T/.err")" -ge 2 ] && ! grep -q '^fake' "$T/.err" && ok || fail "newline in a usage error: $ERR"
# every usage error with --json: one JSON error object on stdout
json_usage() {
  expect 2 -- "$@"
  printf '%s' "$OUT" | python3 -c '
import json, sys
o = json.load(sys.stdin)
assert o["ok"] is False and o["status"] == "usage" and o["code"] == 2, o
assert isinstance(o["error"], str) and o["error"], o
' && ok || fail "'$*': stdout is not one JSON usage error: $OUT"
}
json_usage "$CRETO" model verify m --json
json_usage "$CRETO" key gen --bogus --json
json_usage "$CRETO" model hash m --threads 0 --json
json_usage "$CRETO" --json nope
json_usage "$CRETO" isolation check --json --routes x
json_usage "$CRETO" verify --json --pub a.pub file.bin
json_usage "$CRETO" model --json
# --json is accepted by every command of this group (key pub had none)
expect 0 --out '"keyid"' -- "$CRETO" key pub --json a.key
# status lines go to stderr; --quiet silences them; stdout keeps the result
expect 0 --err "signed file.bin with key" -- "$CRETO" sign --key a.key file.bin -o f2.sig
[ -z "$OUT" ] && ok || fail "sign printed on stdout: $OUT"
expect 0 -- "$CRETO" sign --quiet --key a.key file.bin -o f3.sig
[ -z "$ERR" ] && [ -z "$OUT" ] && ok || fail "sign --quiet printed: $OUT / $ERR"
printf 'weights\n' >m/w.bin
expect 0 --err "wrote m.json" -- "$CRETO" model manifest m -o m.json
expect 0 -- "$CRETO" model manifest m -o m2.json --quiet
[ -z "$ERR" ] && ok || fail "model manifest --quiet printed: $ERR"
# progress: --progress forces it on a non-terminal stderr, --quiet wins,
# and it never reaches stdout (the JSON stays parseable).
expect 0 --err "model hash: " -- "$CRETO" model hash m --progress
printf '%s\n' "$ERR" | grep -Eq '^model hash: [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B \([0-9]+%\), .*/s' \
  && ok || fail "no progress line: $ERR"
expect 0 -- "$CRETO" model verify m --manifest m.json --progress --quiet
[ -z "$ERR" ] && ok || fail "--quiet --progress printed: $ERR"
expect 0 --err "model verify: " -- "$CRETO" model verify m --manifest m.json --progress --json
printf '%s' "$OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' && ok || fail "progress mixed into JSON: $OUT"
printf '%s\n' "$ERR" | grep -Eq '^model verify: [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B \(100%\)' \
  && ok || fail "no final verify progress line: $ERR"
expect 0 -- "$CRETO" model hash m
[ -z "$ERR" ] && ok || fail "progress without a terminal or --progress: $ERR"
# the same for update create, verify and apply
"$CRETO" trust init --key a.pub --threshold 1 -o root.json >/dev/null 2>&1 &&
  "$CRETO" trust sign root.json --key a.key >/dev/null 2>&1 || fail "trust root"
expect 0 --err "update create: " -- "$CRETO" update create --type model-weights --name m --version 1 \
  --payload m -o m.st --progress
"$CRETO" update sign m.st --key a.key >/dev/null 2>&1 || fail "update sign"
"$CRETO" update assemble m.st --payload m --trust root.json -o m.crupdate >/dev/null 2>&1 || fail "assemble"
expect 0 --err "update verify: " -- "$CRETO" update verify m.crupdate --trust root.json --progress
"$CRETO" state init --state S --trust root.json >/dev/null 2>&1 || fail "state init"
expect 0 --err "update apply: " -- "$CRETO" update apply m.crupdate --trust root.json --state S --progress --json
printf '%s' "$OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' && ok || fail "progress mixed into apply JSON: $OUT"
cd /
finish
