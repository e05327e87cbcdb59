#!/bin/bash
# The CLI skeleton: help, version, usage errors and their exit codes.
. "$(dirname "$0")/lib.sh"
expect 0 --out "usage: creto" -- "$CRETO" --help
expect 0 --out "creto 0." -- "$CRETO" --version
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
finish
