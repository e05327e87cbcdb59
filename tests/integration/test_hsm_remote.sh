#!/bin/bash
# test_hsm_remote.sh - the HSM on two "hosts" (docs/hsm-remote.md): two
# `p11-kit server` processes on two Unix sockets in the test's temp dir, each
# over its own copy of one SoftHSM2 token, reached by creto through p11-kit
# module configurations with `remote:` lines (p11-kit:hsm-a, p11-kit:hsm-b).
#
# p11-kit reads module configurations from /usr/share/p11-kit/modules and
# /etc/pkcs11/modules only (as root it skips the user's), so the test runs
# in its own mount namespace with its configuration directory bind-mounted
# over /usr/share/p11-kit/modules: nothing outside the temp dir changes.
#
# Checked: mechanisms, check (Ed25519 and AES-wrap keys refused naming the
# mechanism), compare, a loop of ECDSA signatures that keeps succeeding
# while one server is killed and restarted and the other stopped (SIGSTOP)
# and resumed (zero failures, at most one retry each, every switch in the
# event log), a wrong PIN reported at once and never failed over.
if [ -z "${CRETO_HSM_REMOTE_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
  CRETO_HSM_REMOTE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
hsm_env
CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
command -v p11-kit >/dev/null || skip "p11-kit missing (scripts/deps.sh test installs it)"
[ -e "$CLIENT" ] || [ -e /usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so ] ||
  skip "p11-kit-modules missing (scripts/deps.sh test installs it)"
[ -d /usr/share/p11-kit/modules ] || skip "/usr/share/p11-kit/modules missing"

umask 077
printf '1234-user\n' >"$T/pin"
printf '5678-so\n' >"$T/so.pin"
printf '0000\n' >"$T/bad.pin"
M=$HSM_MODULE

# ---- one token, two copies ----
expect 0 -- "$CRETO" hsm init --module "$M" --label enclave --so-pin-file "$T/so.pin" --pin-file "$T/pin"
TOK="pkcs11:token=enclave"
expect 0 -- "$CRETO" hsm keygen --module "$M" --pin-file "$T/pin" --type ec-p256 --label issuer "$TOK"
expect 0 -- "$CRETO" hsm keygen --module "$M" --pin-file "$T/pin" --type ed25519 --label ed "$TOK"
expect 0 -- "$CRETO" hsm keygen --module "$M" --pin-file "$T/pin" --type aes-256 --label nhi-backup-key "$TOK"
cp -a "$T/tokens" "$T/tokens-b"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$T/tokens-b" >"$T/softhsm2-b.conf"

# ---- two servers, each in its own process group (a connection is served by
# a child process: killing the group is what kills the "host") ----
declare -A PG
start_server() { # NAME CONF
  rm -f "$T/$1.sock"
  SOFTHSM2_CONF=$2 setsid p11-kit server -f -n "$T/$1.sock" --provider "$M" "pkcs11:token=enclave" \
    >"$T/server-$1.log" 2>&1 &
  PG[$1]=$!
  for _ in $(seq 1 100); do [ -S "$T/$1.sock" ] && return 0; sleep 0.05; done
  fail "server $1 did not create its socket"
}
stop_server() { # NAME: kill the host's process group and wait (bounded) until it is gone
  kill -TERM -- "-${PG[$1]}" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 -- "-${PG[$1]}" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL -- "-${PG[$1]}" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 -- "-${PG[$1]}" 2>/dev/null || return 0; sleep 0.05; done
  fail "server $1 did not stop"
}
stop_all() {
  for n in "${!PG[@]}"; do
    kill -CONT -- "-${PG[$n]}" 2>/dev/null
    kill -TERM -- "-${PG[$n]}" 2>/dev/null
  done
  rm -rf "$T"
}
trap stop_all EXIT
start_server a "$SOFTHSM2_CONF"
start_server b "$T/softhsm2-b.conf"

mkdir "$T/p11mods"
printf 'remote: unix:path=%s\n' "$T/a.sock" >"$T/p11mods/hsm-a.module"
printf 'remote: unix:path=%s\n' "$T/b.sock" >"$T/p11mods/hsm-b.module"
mount --bind "$T/p11mods" /usr/share/p11-kit/modules || skip "cannot bind-mount in a private mount namespace"
A=p11-kit:hsm-a
B=p11-kit:hsm-b
KEY="$TOK;object=issuer"

# ---- what works remotely ----
expect 0 --out CKM_ECDSA -- "$CRETO" hsm mechanisms --endpoint "$A" "$TOK"
if grep -q CKM_EDDSA <<<"$OUT"; then fail "p11-kit remoting offers CKM_EDDSA (docs/hsm-remote.md says it does not)"; else ok; fi
if grep -q CKM_AES_KEY_WRAP_PAD <<<"$OUT"; then fail "p11-kit remoting offers AES key wrap"; else ok; fi
expect 0 --out CKM_EDDSA -- "$CRETO" hsm mechanisms --module "$M" "$TOK"
expect 0 --err "CKM_ECDSA offered" -- "$CRETO" hsm check --endpoint "$A" --endpoint "$B" --pin-file "$T/pin" "$KEY"
expect 2 --err "needs CKM_EDDSA to sign, which the module does not offer: use an ec-p256 key" -- \
  "$CRETO" hsm check --endpoint "$A" --pin-file "$T/pin" "$TOK;object=ed"
expect 2 --err "needs CKM_AES_KEY_WRAP_PAD to wrap/unwrap" -- \
  "$CRETO" hsm check --endpoint "$A" --pin-file "$T/pin" "$TOK;object=nhi-backup-key"
# in process, the same keys pass
expect 0 --err "CKM_EDDSA offered" -- "$CRETO" hsm check --module "$M" --pin-file "$T/pin" "$TOK;object=ed"
# a failover signer refuses the Ed25519 key at open, naming the mechanism
echo "issuer token claims" >"$T/msg"
expect 2 --err "CKM_EDDSA" -- "$CRETO" hsm sign --endpoint "$A" --endpoint "$B" --pin-file "$T/pin" \
  -i "$T/msg" "$TOK;object=ed"

# ---- the replicas hold the same keys ----
expect 0 --err "same keys on 2 endpoints" -- "$CRETO" hsm compare --endpoint "$A" --endpoint "$B" \
  --pin-file "$T/pin" "$TOK"
expect 0 -- "$CRETO" hsm keygen --module "$M" --pin-file "$T/pin" --type ec-p256 --label only-a "$TOK"
expect 1 --err "'only-a'" -- "$CRETO" hsm compare --endpoint "$A" --endpoint "$B" --pin-file "$T/pin" "$TOK"
expect 1 --out '"same": false' -- "$CRETO" hsm compare --json --endpoint "$A" --endpoint "$B" \
  --pin-file "$T/pin" "$TOK"
expect 0 -- "$CRETO" hsm destroy --module "$M" --pin-file "$T/pin" "$TOK;object=only-a"

# ---- a wrong PIN: at once, never failed over ----
rm -f "$T/ev-pin.jsonl"
expect 2 --err "CKR_PIN_INCORRECT" -- "$CRETO" hsm sign --endpoint "$A" --endpoint "$B" \
  --pin-file "$T/bad.pin" --events "$T/ev-pin.jsonl" -i "$T/msg" "$KEY"
if grep -q '"failover"\|"endpoint-down"' "$T/ev-pin.jsonl" 2>/dev/null; then
  fail "a wrong PIN caused a failover"; else ok; fi
# (one failed login is reported, from the first endpoint only)
n=$(grep -c '"event":"login"' "$T/ev-pin.jsonl" 2>/dev/null || true)
[ "$n" = 1 ] && ok || fail "expected one failed login event, got '$n'"

# ---- the drill: a loop of ECDSA signatures through failures ----
rm -f "$T/ev.jsonl"
"$CRETO" hsm sign --endpoint "$A" --endpoint "$B" --pin-file "$T/pin" --deadline-ms 500 \
  --repeat 400 --interval-ms 15 --events "$T/ev.jsonl" --json -i "$T/msg" "$KEY" \
  >"$T/drill.json" 2>"$T/drill.err" &
DRILL=$!
sleep 1
kill -TERM -- "-${PG[a]}"                 # host a dies
sleep 1
start_server a "$SOFTHSM2_CONF"           # and comes back
sleep 1.5
kill -STOP -- "-${PG[b]}"                 # host b hangs (stopped, not dead)
sleep 2
kill -CONT -- "-${PG[b]}"                 # and resumes
# the drill is bounded: 400 signatures at >= 15 ms, each at most two deadlines
for _ in $(seq 1 300); do kill -0 "$DRILL" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DRILL" 2>/dev/null; then kill "$DRILL"; fail "the drill did not finish"; fi
wait "$DRILL"; rc=$?
[ "$rc" = 0 ] && ok || { fail "drill exit $rc: $(cat "$T/drill.err")"; }
val() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$T/drill.json" "$1"; }
[ "$(val succeeded)" = 400 ] && ok || fail "drill: $(val succeeded) of 400 succeeded"
[ "$(val failed)" = 0 ] && ok || fail "drill: $(val failed) failed"
[ "$(val max_attempts)" -le 2 ] && ok || fail "drill: an operation tried $(val max_attempts) endpoints"
[ "$(val retries)" -ge 2 ] && ok || fail "drill: expected a retry for the death and one for the hang, got $(val retries)"
# every switch is in the event log: a down on a (broken socket), b (deadline),
# failovers both ways, both back up
grep -q '"endpoint":"p11-kit:hsm-a","event":"endpoint-down","outcome":"failed","reason":"CKR_DEVICE_ERROR"' "$T/ev.jsonl" \
  && ok || fail "no endpoint-down for a killed server: $(cat "$T/ev.jsonl")"
grep -q '"endpoint":"p11-kit:hsm-b","event":"endpoint-down","outcome":"failed","reason":"deadline"' "$T/ev.jsonl" \
  && ok || fail "no endpoint-down (deadline) for a stopped server: $(cat "$T/ev.jsonl")"
grep -q '"event":"failover","from":"p11-kit:hsm-a".*"to":"p11-kit:hsm-b"' "$T/ev.jsonl" && ok || fail "no failover a->b"
grep -q '"event":"failover","from":"p11-kit:hsm-b".*"to":"p11-kit:hsm-a"' "$T/ev.jsonl" && ok || fail "no failover b->a"
grep -q '"endpoint":"p11-kit:hsm-a","event":"endpoint-up"' "$T/ev.jsonl" && ok || fail "a never came back up"

# ---- one endpoint down at the start: the other serves, the first is probed ----
stop_server a
expect 0 --out '"succeeded": 3' -- "$CRETO" hsm sign --json --endpoint "$A" --endpoint "$B" \
  --pin-file "$T/pin" --repeat 3 -i "$T/msg" "$KEY"
stop_server b
expect 3 --err "no HSM endpoint answered" -- "$CRETO" hsm sign --endpoint "$A" --endpoint "$B" \
  --pin-file "$T/pin" -i "$T/msg" "$KEY"

# ---- endpoint syntax ----
expect 2 --err "absolute path or p11-kit:NAME" -- "$CRETO" hsm sign --endpoint relative.so -i "$T/msg" "$KEY"
expect 2 --err "unknown or repeated option 'bogus=1'" -- "$CRETO" hsm sign --endpoint "$A,bogus=1" -i "$T/msg" "$KEY"
expect 2 --err "no p11-kit module configuration 'nope.module'" -- "$CRETO" hsm check --endpoint p11-kit:nope \
  --pin-file "$T/pin" "$KEY"
expect 2 --err "exclude each other" -- "$CRETO" hsm check --endpoint "$A" --module "$M" "$KEY"
finish
