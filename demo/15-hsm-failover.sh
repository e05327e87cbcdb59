# demo/15-hsm-failover.sh - two HSM endpoints serving one token (sourced by
# demo/run.sh): two `p11-kit server` processes, each over its own copy of a
# SoftHSM2 token, stand for two HSM hosts (docs/hsm-remote.md).  An
# availability drill signs in a loop while host a is killed and restarted
# and host b hangs (stopped, not dead) and resumes: every signature
# succeeds, and every switch is an event.  p11-kit names the endpoints by
# module configuration files; the demo puts them in place in a private
# mount namespace of its own (nothing on the machine changes).  Its own
# token, so it runs alone too.
HA_D=$DEMO_DIR/hsm-ha
HA_CLIENT=""
for c in /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so /usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so; do
  [ -e "$c" ] && HA_CLIENT=$c
done
if ! command -v p11-kit >/dev/null || [ -z "$HA_CLIENT" ] || ! command -v unshare >/dev/null ||
  [ ! -d /usr/share/p11-kit/modules ] || [ "$(id -u)" != 0 ]; then
  step "HSM failover: skipped (needs p11-kit, p11-kit-modules, unshare and root for a private mount namespace)"
else
step "HSM failover: one token on two HSM hosts (two p11-kit servers over copies of it)"
mkdir -p "$HA_D/tokens"
chmod 700 "$HA_D"
(
cd "$HA_D"
umask 077
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$HA_D/tokens" >softhsm2-a.conf
od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >pin
od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >so.pin
export SOFTHSM2_CONF=$HA_D/softhsm2-a.conf
"$CRETO" hsm init --module "$HSM_MODULE" --label ha --so-pin-file so.pin --pin-file pin >/dev/null 2>&1
"$CRETO" hsm keygen --module "$HSM_MODULE" --pin-file pin --type ec-p256 --label issuer pkcs11:token=ha >/dev/null 2>&1
cp -a tokens tokens-b
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$HA_D/tokens-b" >softhsm2-b.conf
mkdir p11mods
printf 'remote: unix:path=%s\n' "$HA_D/a.sock" >p11mods/hsm-a.module
printf 'remote: unix:path=%s\n' "$HA_D/b.sock" >p11mods/hsm-b.module
printf 'the message the drill signs\n' >msg
)
say "host a: p11-kit server on $HA_D/a.sock; host b: on $HA_D/b.sock (an ECDSA P-256 key, the same on both)"
say "creto names them p11-kit:hsm-a and p11-kit:hsm-b (module files with a 'remote:' line)"
HA_RC=0
HA_D=$HA_D HSM_MODULE=$HSM_MODULE CRETO=$CRETO unshare -m --propagation private bash -s <<'EOF' || HA_RC=$?
set -u
cd "$HA_D"
mount --bind "$HA_D/p11mods" /usr/share/p11-kit/modules || exit 77
declare -A PG
start_server() { # NAME CONF: a host, in its own process group
  rm -f "$HA_D/$1.sock"
  SOFTHSM2_CONF=$2 setsid p11-kit server -f -n "$HA_D/$1.sock" --provider "$HSM_MODULE" pkcs11:token=ha \
    >"$HA_D/server-$1.log" 2>&1 &
  PG[$1]=$!
  for _ in $(seq 1 100); do [ -S "$HA_D/$1.sock" ] && return 0; sleep 0.05; done
  echo "   demo: server $1 did not start" >&2
  return 1
}
stop_all() { for n in "${!PG[@]}"; do kill -CONT -- "-${PG[$n]}" 2>/dev/null; kill -TERM -- "-${PG[$n]}" 2>/dev/null; done; }
trap stop_all EXIT
start_server a "$HA_D/softhsm2-a.conf" || exit 1
start_server b "$HA_D/softhsm2-b.conf" || exit 1
printf '   $ creto hsm compare --endpoint p11-kit:hsm-a --endpoint p11-kit:hsm-b --pin-file pin pkcs11:token=ha\n'
"$CRETO" hsm compare --endpoint p11-kit:hsm-a --endpoint p11-kit:hsm-b --pin-file pin pkcs11:token=ha 2>&1 |
  sed 's/^/     /'
printf '   $ creto hsm sign --endpoint p11-kit:hsm-a --endpoint p11-kit:hsm-b --deadline-ms 500 --repeat 200 --interval-ms 15 ...\n'
"$CRETO" hsm sign --endpoint p11-kit:hsm-a --endpoint p11-kit:hsm-b --pin-file pin --deadline-ms 500 \
  --repeat 200 --interval-ms 15 --events events.jsonl -i msg "pkcs11:token=ha;object=issuer" \
  >drill.out 2>&1 &
drill=$!
sleep 0.8
echo "     (host a is killed)"
kill -TERM -- "-${PG[a]}"
sleep 0.8
echo "     (host a comes back)"
start_server a "$HA_D/softhsm2-a.conf" || exit 1
sleep 1
echo "     (host b hangs: stopped, not dead)"
kill -STOP -- "-${PG[b]}"
sleep 1.2
echo "     (host b resumes)"
kill -CONT -- "-${PG[b]}"
for _ in $(seq 1 300); do kill -0 "$drill" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$drill" 2>/dev/null; then kill "$drill"; echo "   demo: the drill did not finish" >&2; exit 1; fi
rc=0; wait "$drill" || rc=$?
sed 's/^/     /' drill.out
[ "$rc" = 0 ] || { echo "   demo: the drill failed (exit $rc)" >&2; exit 1; }
echo "   every switch is an event (events.jsonl), as creto serve writes them to its audit log:"
python3 - events.jsonl <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") in ("endpoint-down", "endpoint-up", "failover"):
        who = e.get("endpoint") or "%s -> %s" % (e.get("from"), e.get("to"))
        print("     %-13s %-32s %s" % (e["event"], who, e.get("reason") or ""))
PY
EOF
case $HA_RC in
  0) say "-> all signatures made through a killed host and a hung one; creto serve signs its audit checkpoints and tokens the same way ([hsm] endpoint = ...)" ;;
  77) say "-> skipped: no private mount namespace here (the module files cannot be put in place)" ;;
  *) echo "   demo: HSM failover step failed (exit $HA_RC)" >&2; exit 1 ;;
esac
fi
