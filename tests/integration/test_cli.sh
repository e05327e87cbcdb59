#!/bin/bash
# The CLI skeleton: help, version, usage errors and their exit codes.
. "$(dirname "$0")/lib.sh"
expect 0 --out "usage: creto" -- "$CRETO" --help
expect 0 --out "creto 0." -- "$CRETO" --version
expect 2 --err "unknown group 'nope'" -- "$CRETO" nope
rc=0; "$CRETO" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && ok || fail "no arguments exited $rc, expected 2"
finish
