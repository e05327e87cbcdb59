#!/bin/bash
# test_sandbox.sh - the daemon's least privilege end to end (docs/serve-sandbox.md),
# through build/sandbox_probe, a stand-in for `creto serve`'s start-up: a
# private SoftHSM2 token made by the real `creto hsm init/keygen`, the HSM
# signer, SQLite state, a loopback listener and the notify socket opened
# first; then the user switch to nobody (when root), Landlock and seccomp;
# then the work: config read, state written, SQLite, TCP accept, OpenSSL and
# HSM signatures (also a fresh PKCS#11 session and login), READY=1 received
# by an independent reader (Python) on an abstract socket.  Writes outside
# the rules fail with EACCES; ptrace, mount, unshare, fork and execve kill the
# process with SIGSYS (KILL mode) or fail with EPERM (EPERM mode).
. "$(dirname "$0")/lib.sh"
PROBE=$CRETO_BUILD_DIR/sandbox_probe
[ -x "$PROBE" ] || skip "build/sandbox_probe missing (configure with -DCRETO_TESTS=ON)"
command -v python3 >/dev/null || skip "python3 missing"
# The dropped user must reach every directory it uses, wherever the tree is
# (CI may clone it under a 0700 home): work in a fresh directory under /tmp.
T=$(mktemp -d /tmp/creto-sandbox.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
hsm_env

conf=$T/conf state=$T/state outside=$T/outside hsm=$T/tokens
mkdir -p "$conf" "$state" "$outside"
printf '[state]\ndir = %s\n' "$state" >"$conf/creto.conf"
printf '1234-user\n' >"$conf/hsm.pin"
printf '5678-so\n' >"$T/so.pin"
chmod 600 "$conf/hsm.pin" "$T/so.pin"
expect 0 -- "$CRETO" hsm init --module "$HSM_MODULE" --label serve --so-pin-file "$T/so.pin" \
  --pin-file "$conf/hsm.pin"
KEY="pkcs11:token=serve;object=checkpoint?module-path=$HSM_MODULE&pin-source=file:$conf/hsm.pin"
expect 0 -- "$CRETO" hsm keygen --type ed25519 --label checkpoint \
  "pkcs11:token=serve?module-path=$HSM_MODULE&pin-source=file:$conf/hsm.pin"

user_args=()
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  # the service user owns its state, token and PIN file, as deployed
  chown -R nobody "$state" "$hsm" "$conf/hsm.pin"
  user_args=(--user nobody)
  want_uid=$(id -u nobody)
else
  echo "note: not root: running without the user switch"
  want_uid=$(id -u)
fi

# An independent reader of the notify datagrams: binds the abstract socket,
# writes each message to a file, stops after one message or 30 s.
notify_reader() {
  python3 - "$1" "$2" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1][1:])
open(sys.argv[2] + ".bound", "w").close()
s.settimeout(30)
try:
    data = s.recv(4096)
    open(sys.argv[2], "wb").write(data)
except socket.timeout:
    pass
EOF
  READER=$!
  for _ in $(seq 1 100); do [ -e "$2.bound" ] && return 0; sleep 0.1; done
  fail "notify reader did not start"
}

probe() {
  "$PROBE" --conf "$conf" --state "$state" --outside "$outside" --hsm-dir "$hsm" \
    --module "$HSM_MODULE" --key "$KEY" "$@"
}

# ---- 1. the full sandbox (KILL mode): the work runs, the rest is refused ----
NS="@creto-test-sandbox-$$"
notify_reader "$NS" "$T/notify.msg"
rc=0
probe "${user_args[@]}" --notify "$NS" >"$T/run1.out" 2>"$T/run1.err" || rc=$?
wait "$READER" 2>/dev/null || true
cat "$T/run1.out"
[ "$rc" = 0 ] || fail "probe exited $rc: $(cat "$T/run1.err")"
SANDBOX_LINE=$(grep '^sandbox ' "$T/run1.out")
LL=$(echo "$SANDBOX_LINE" | sed -n 's/.* landlock=\([01]\) .*/\1/p')
SC=$(echo "$SANDBOX_LINE" | sed -n 's/.* seccomp=\([01]\)$/\1/p')
echo "$SANDBOX_LINE" | grep -q "uid=$want_uid " || fail "not running as uid $want_uid: $SANDBOX_LINE"
for s in read-config write-state sqlite-write sqlite-open-after tcp-loopback openssl-sign hsm-sign \
         hsm-reopen-sign notify-ready; do
  if grep -qx "ok $s" "$T/run1.out"; then ok; else fail "step $s did not work"; fi
done
if [ "$(printf 'READY=1\nSTATUS=probe sandboxed')" = "$(cat "$T/notify.msg" 2>/dev/null)" ]; then
  ok
else
  fail "notify reader got '$(cat "$T/notify.msg" 2>/dev/null)'"
fi
if [ "$LL" = 1 ]; then
  for s in write-outside read-etc-shadow write-config; do
    if grep -qx "denied $s EACCES" "$T/run1.out"; then ok; else fail "$s not refused with EACCES"; fi
  done
  [ ! -e "$outside/escaped" ] && ok || fail "a file was created outside the rules"
else
  echo "SKIP (Landlock part): kernel has no Landlock: $(grep '^warning landlock' "$T/run1.out")"
fi
[ -s "$state/written-by-probe" ] && ok || fail "the state file was not written"
if [ ${#user_args[@]} -gt 0 ]; then
  [ "$(stat -c %U "$state/written-by-probe")" = nobody ] && ok || fail "state file not owned by nobody"
fi

# ---- 2. forbidden syscalls ----
if [ "$SC" = 1 ]; then
  for f in ptrace mount unshare fork execve; do
    rc=0
    probe "${user_args[@]}" --forbid "$f" >"$T/forbid.out" 2>&1 || rc=$?
    # 128 + SIGSYS (31): the kernel killed the whole process
    if [ "$rc" = 159 ] && ! grep -q "^alive after" "$T/forbid.out"; then ok
    else fail "$f: exit $rc, expected death by SIGSYS: $(tail -2 "$T/forbid.out")"; fi
  done
  rc=0
  probe "${user_args[@]}" --seccomp eperm --forbid ptrace >"$T/eperm.out" 2>&1 || rc=$?
  if [ "$rc" = 0 ] && grep -qx "alive after ptrace: -1 EPERM" "$T/eperm.out"; then ok
  else fail "EPERM mode: exit $rc: $(tail -2 "$T/eperm.out")"; fi
else
  echo "SKIP (seccomp part): sanitizer build, the filter is never installed"
  grep -q '^warning seccomp: not installed: sanitizer build' "$T/run1.out" && ok \
    || fail "no warning that seccomp is off in this build"
fi

# ---- 3. started as root without a user: runs, and says so ----
if [ "$(id -u)" = 0 ]; then
  rc=0
  probe >"$T/root.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] && grep -qx "warning running as root: no user to switch to was given" "$T/root.out" \
    && ok || fail "as root without --user: exit $rc: $(cat "$T/root.out")"
  # a user that does not exist is refused before anything changes
  expect 2 --err "user 'no-such-creto-user': no such user" -- probe --user no-such-creto-user
fi
finish
