#!/bin/bash
# test_update_crash.sh - kill -9 at every injected point of apply
# (CRETO_TEST_CRASH_AT, test-only, docs/crupdate.md "Crash safety"): before
# the database commit the previous version stays installed and current; the
# package is re-processable; after the commit a restart completes it.
. "$(dirname "$0")/lib.sh"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
pkg() { # NAME VERSION DIR
  "$CRETO" update create --type model-weights --name m --version "$2" --shard-size 65536 --payload "$3" -o "$1.st" --force >/dev/null
  for k in a b; do "$CRETO" update sign "$1.st" --key $k.key >/dev/null; done
  "$CRETO" update assemble "$1.st" --payload "$3" -o "$1.crupdate" --force >/dev/null
}
mkdir -p p1/d p2/d
head -c 200000 /dev/urandom >p1/w.bin; echo one >p1/d/c.txt
head -c 300000 /dev/urandom >p2/w.bin; echo two >p2/d/c.txt
pkg v1 1 p1; pkg v2 2 p2
installed() { "$CRETO" update status --state S --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(str(r["version"]) for r in d["installed"]))'; }
command -v python3 >/dev/null || skip "python3 missing"
for point in staged renamed before-commit committed link-tmp; do
  rm -rf S
  "$CRETO" state init --state S --trust root.json >/dev/null || fail "state init"
  "$CRETO" update apply v1.crupdate --trust root.json --state S >/dev/null || fail "$point: v1"
  sum=$(sha256sum v2.crupdate)
  rc=0; CRETO_TEST_CRASH_AT=$point "$CRETO_TEST_BIN" update apply v2.crupdate --trust root.json --state S >/dev/null 2>&1 || rc=$?
  [ "$rc" = 137 ] || fail "$point: expected a kill -9 (137), got $rc"
  [ "$(sha256sum v2.crupdate)" = "$sum" ] || fail "$point: package changed"
  case $point in
  committed|link-tmp)
    [ "$(installed)" = 2 ] || fail "$point: database should hold version 2 after its commit" ;;
  *)
    [ "$(installed)" = 1 ] || fail "$point: database moved to $(installed) before the commit"
    [ "$(readlink S/models/m/current)" = 1 ] || fail "$point: current moved before the commit"
    cmp -s p1/w.bin S/models/m/current/w.bin || fail "$point: version 1 damaged" ;;
  esac
  cmp -s p1/w.bin S/models/m/1/w.bin && cmp -s p1/d/c.txt S/models/m/1/d/c.txt || fail "$point: version 1 files damaged"
  ok
  # Restart: re-process the same package.
  case $point in
  committed|link-tmp) expect 1 --err "replay" -- "$CRETO" update apply v2.crupdate --trust root.json --state S ;;
  *) expect 0 -- "$CRETO" update apply v2.crupdate --trust root.json --state S ;;
  esac
  [ "$(installed)" = 2 ] || fail "$point: not at version 2 after restart"
  [ "$(readlink S/models/m/current)" = 2 ] || fail "$point: current not at 2 after restart"
  cmp -s p2/w.bin S/models/m/current/w.bin || fail "$point: version 2 content wrong"
  [ -z "$(ls -A S/staging 2>/dev/null)" ] || fail "$point: staging leftovers"
done
finish
