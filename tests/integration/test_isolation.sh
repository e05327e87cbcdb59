# test_isolation.sh - `creto isolation` inside network namespaces this test
# makes (unshare -n), never outside: every probe target below is either a
# documentation address inside such a namespace or loopback.  CRETO_TEST and
# CRETO_TEST_OUTER_NETNS make creto itself refuse --active in the runner's
# namespace (checked below with loopback-only targets).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "isolation tests need root for unshare -n (network namespaces)"
command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare or ip (iproute2) missing"
unshare -n true 2>/dev/null || skip "unshare -n (network namespaces) not permitted here"
unshare -n ip link add v0 type veth peer name v1 2>/dev/null || skip "veth links unavailable in namespaces"
# Debian's python3 first: a version-manager shim can take seconds to start.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3 || true)
HAVE_PY=0; [ -n "$PY" ] && HAVE_PY=1
export PY

export CRETO_TEST=1
CRETO_TEST_OUTER_NETNS=$(stat -L -c %i /proc/self/ns/net)
export CRETO_TEST_OUTER_NETNS

# Test files: an internal resolver config, servers that answer inside the namespace.
command -v mount >/dev/null || skip "mount missing"
unshare -n -m true 2>/dev/null || skip "unshare -n -m (network + mount namespaces) not permitted here"
printf 'nameserver 127.0.0.1\n' >"$T/resolv-local"
printf '# test\nnameserver 127.0.0.1\nnameserver 8.8.8.8\n' >"$T/resolv-external"
printf 'hosts: files dns\n' >"$T/nsswitch"

cat >"$T/tcp_server.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
open(sys.argv[3], "w").close()
while True:
    c, _ = s.accept(); c.close()
PY
cat >"$T/dns_server.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
open(sys.argv[2], "w").close()
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 12: continue
    qend = 12
    while qend < len(q) and q[qend] != 0: qend += q[qend] + 1
    question = q[12:qend + 5]
    hdr = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
    ans = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 80])
    s.sendto(hdr + question + ans, peer)
PY

# ns.sh SETUP CMD...: run under `unshare -n -m`; builds the namespace,
# runs CMD, stops any server, exits with CMD's status.
cat >"$T/ns.sh" <<'SH'
set -u
setup=$1; shift
T=$(dirname "$0")
SRV=
wait_ready() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
veth() { ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up; }
{
  ip link set lo up || exit 99
  # The system resolver of this namespace: files and DNS to loopback only, and
  # no nscd (which would resolve in the host's namespace).  unshare -m makes
  # these mounts private to the namespace.
  mount --bind "$T/nsswitch" /etc/nsswitch.conf || exit 99
  if [ -e /etc/resolv.conf ]; then mount --bind "$T/resolv-local" /etc/resolv.conf || exit 99; fi
  for d in /run/nscd /var/run/nscd; do [ -d "$d" ] && { mount -t tmpfs none "$d" || exit 99; }; done
  case $setup in
    lo) ;;
    veth4) veth && ip addr add 10.99.0.2/24 dev v0 && ip route add default via 10.99.0.1 ;;
    veth6) veth && ip -6 addr add 2001:db8::2/64 dev v0 nodad && ip -6 route add default via 2001:db8::1 ;;
    vethboth) veth && ip addr add 10.99.0.2/24 dev v0 && ip route add default via 10.99.0.1 &&
              ip -6 addr add 2001:db8::2/64 dev v0 nodad && ip -6 route add default via 2001:db8::1 ;;
    allowed) veth && ip addr add 10.20.0.2/24 dev v0 && ip route add 10.20.5.0/24 via 10.20.0.1 ;;
    tun) ip tuntap add tun0 mode tun ;;
    canary) ip addr add 198.51.100.7/32 dev lo &&
            { "$PY" "$T/tcp_server.py" 198.51.100.7 8080 "$T/ready.$$" & SRV=$!; } &&
            wait_ready "$T/ready.$$" ;;
    dns) ip addr add 198.51.100.53/32 dev lo &&
         { "$PY" "$T/dns_server.py" 198.51.100.53 "$T/ready.$$" & SRV=$!; } &&
         wait_ready "$T/ready.$$" ;;
    dnssys) ip addr add 198.51.100.53/32 dev lo &&
            printf 'nameserver 198.51.100.53\n' >"$T/resolv-sys" &&
            mount --bind "$T/resolv-sys" /etc/resolv.conf && mount --bind "$T/nsswitch" /etc/nsswitch.conf &&
            { "$PY" "$T/dns_server.py" 198.51.100.53 "$T/ready.$$" & SRV=$!; } &&
            wait_ready "$T/ready.$$" ;;
    *) exit 99 ;;
  esac
} >/dev/null 2>"$T/setup.err" || { echo "namespace setup '$setup' failed: $(cat "$T/setup.err")" >&2; exit 99; }
rc=0
"$@" || rc=$?
[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
exit $rc
SH
NS() { local s=$1; shift; unshare -n -m bash "$T/ns.sh" "$s" "$@"; }
ISO=("$CRETO" isolation check --resolv-conf "$T/resolv-local")

# Loopback only: isolated, passive and active (every probe fails fast).
expect 0 --out "ISOLATED: " -- NS lo "${ISO[@]}"
expect 0 --out "probes run" -- NS lo "${ISO[@]}" --active
if grep -q '^FAIL' "$T/.out"; then fail "loopback --active: a FAIL line"; else ok; fi
nprobe=$(grep -c '^PASS  probe' "$T/.out")
[ "$nprobe" = 12 ] && ok || fail "loopback --active: $nprobe probe lines, expected 12 (default targets)"
if grep '^PASS  probe' "$T/.out" | grep -q 'no answer within'; then
  fail "loopback --active: a probe waited for its timeout instead of failing fast"
else ok; fi

# A veth with an address and a default route: not isolated, the route named (IPv4, IPv6, /proc too).
expect 1 --err "ipv4 default route 0.0.0.0/0 via 10.99.0.1 dev v0" -- NS veth4 "${ISO[@]}"
expect 1 --err "ipv6 default route ::/0 via 2001:db8::1 dev v0" -- NS veth6 "${ISO[@]}"
expect 1 --err "ipv4 default route 0.0.0.0/0 via 10.99.0.1 dev v0" -- NS vethboth "${ISO[@]}" --routes proc
case $ERR in *"ipv6 default route ::/0 via 2001:db8::1 dev v0"*) ok ;; *) fail "/proc: IPv6 default route not named: $ERR" ;; esac
expect 0 --out "(netlink)" -- NS lo "${ISO[@]}" --routes netlink
expect 0 --out "(proc)" -- NS lo "${ISO[@]}" --routes proc

# A route only to an allowed internal prefix: isolated with the config, not without.
printf '# enclave\nallow = 10.20.0.0/16\n' >"$T/allow.conf"
expect 0 --out "10.20.5.0/24 via 10.20.0.1" -- NS allowed "${ISO[@]}" --config "$T/allow.conf"
expect 1 --err "ipv4 route 10.20.0.0/24 dev v0 (table main) leads outside" -- NS allowed "${ISO[@]}"

# Resolver configuration naming an external nameserver.
expect 1 --err "nameserver 8.8.8.8 is outside the allowed prefixes" -- \
  NS lo "$CRETO" isolation check --resolv-conf "$T/resolv-external"

# Every inet_aton form glibc's resolver reads as 8.8.8.8 is 8.8.8.8 (issue 11 §4b),
# and so is a line only a looser resolver reads (CRLF).
for v in 0x8.0x8.0x8.0x8 134744072 8.526344 010.010.010.010 8.8.2056; do
  printf 'nameserver 127.0.0.1\nnameserver %s\n' "$v" >"$T/resolv-aton"
  expect 1 --err "line 2: nameserver 8.8.8.8 is outside the allowed prefixes" -- \
    NS lo "$CRETO" isolation check --resolv-conf "$T/resolv-aton"
done
printf 'nameserver 127.0.0.1\r\nnameserver 8.8.8.8\r\n' >"$T/resolv-crlf"
expect 1 --err "nameserver 8.8.8.8 is outside the allowed prefixes (a line glibc ignores" -- \
  NS lo "$CRETO" isolation check --resolv-conf "$T/resolv-crlf"
# glibc's own reading, checked with glibc itself: getent asks the resolver of
# this namespace, whose only nameserver is written as 0x7f.1 (127.0.0.1), and
# the DNS server on 127.0.0.1 answers; creto calls that nameserver internal.
if [ "$HAVE_PY" = 1 ] && command -v getent >/dev/null; then
  printf 'nameserver 0x7f.1\n' >"$T/resolv-hex"
  cat >"$T/getent-hex.sh" <<'SH'
T=$(dirname "$0")
"$PY" "$T/dns_server.py" 127.0.0.1 "$T/ready.hex" & S=$!
for _ in $(seq 100); do [ -e "$T/ready.hex" ] && break; sleep 0.05; done
mount --bind "$T/resolv-hex" /etc/resolv.conf
rc=0; timeout 10 getent hosts canary.example || rc=$?
kill $S; exit $rc
SH
  expect 0 --out "192.0.2.80" -- NS lo bash "$T/getent-hex.sh"
  expect 0 --out "nameserver 127.0.0.1 is internal" -- NS lo "$CRETO" isolation check --resolv-conf "$T/resolv-hex"
fi

# Proxy variables: named, without their credentials.
expect 1 --err "https_proxy=http://proxy.example:3128" -- \
  env https_proxy=http://user:s3cret@proxy.example:3128 unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}"
case $ERR$OUT in *s3cret*) fail "proxy password printed" ;; *) ok ;; esac
expect 0 -- env http_proxy=http://127.0.0.1:3128 unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}"

# Proxy URLs are read as curl reads them (issue 11 §4b): for each value, what
# curl actually connects to, run inside a loopback-only namespace (no packet
# can leave it: a connect to 8.8.8.8 fails at once with "network
# unreachable"), and the address a Python client (urllib.parse, then
# getaddrinfo of a numeric host) would use.  creto may
# call a value internal only when both go to an internal address.
cat >"$T/curl-proxy.sh" <<'SH'
# prints the address curl tries for the proxy in $http_proxy
ip link set lo up
curl -sv -m 3 --noproxy '' http://example.invalid/ 2>&1 | sed -n 's/^\*  *Trying \[\{0,1\}\([0-9a-fA-F.:]*\)\]\{0,1\}:[0-9]*\.\.\..*/\1/p' | head -n 1
SH
if command -v curl >/dev/null; then
  while IFS=' ' read -r want v; do
    got=$(env http_proxy="$v" unshare -n bash "$T/curl-proxy.sh")
    pyhost=-
    [ "$HAVE_PY" = 1 ] && pyhost=$("$PY" -c '
import socket, sys, urllib.parse as p
v = sys.argv[1]
h = p.urlsplit(v if "://" in v else "http://" + v).hostname
try:  # the address a Python client connects to for a numeric host
    print(socket.getaddrinfo(h, None, flags=socket.AI_NUMERICHOST)[0][4][0])
except Exception:
    print("-")' "$v")
    rc=0
    env http_proxy="$v" unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}" >"$T/.out" 2>"$T/.err" || rc=$?
    case $got in 127.*|::1) curl_internal=1 ;; *) curl_internal=0 ;; esac
    case $pyhost in 127.*|::1) py_internal=1 ;; *) py_internal=0 ;; esac
    if [ "$rc" = 0 ] && { [ "$curl_internal" = 0 ] || [ "$py_internal" = 0 ]; }; then
      fail "proxy '$v': creto says internal, curl connects to '${got:-?}', urllib.parse host '$pyhost'"
    elif [ "$want" = pass ] && [ "$rc" != 0 ]; then
      fail "proxy '$v': creto exit $rc, expected 0 (curl: $got): $(cat "$T/.err")"
    elif [ "$want" = fail ] && [ "$rc" != 1 ]; then
      fail "proxy '$v': creto exit $rc, expected 1 (curl: $got)"
    elif [ "$want" = curl8 ] && [ "$got" != 8.8.8.8 ]; then
      fail "proxy '$v': curl connects to '$got', the test expected 8.8.8.8"
    else ok; fi
  done <<'LIST'
curl8 http://8.8.8.8#@127.0.0.1
curl8 http://8.8.8.8?@127.0.0.1
curl8 http://8.8.8.8/@127.0.0.1
curl8 http://127.0.0.1:3128@8.8.8.8
curl8 8.8.8.8:3128
curl8 http://0x8.0x8.0x8.0x8:3128
fail http://127.0.0.1#@8.8.8.8
fail http://8.8.8.8\@127.0.0.1
pass http://127.0.0.1:3128
pass http://u:p@127.0.0.1:3128/
pass http://[::1]:3128
pass 127.0.0.1:3128
pass http://0x7f.1:3128
LIST
  # the four forms must fail in creto too (checked above via curl8 + the
  # "creto says internal" rule); the password is never shown
  expect 1 --err "http_proxy=http://8.8.8.8:3128: proxy host is not an internal address" -- \
    env http_proxy=http://u:s3cret@8.8.8.8:3128 unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}"
  expect 1 --err "cannot be judged: an '@' after the authority" -- \
    env http_proxy='http://127.0.0.1#@8.8.8.8' unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}"
  expect 1 --err "http_proxy=http://8.8.8.8: proxy host is not an internal address" -- \
    env http_proxy='http://8.8.8.8#@127.0.0.1' unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}"
else
  echo "note: curl missing: proxy URLs not compared with curl"
fi

# JSON for monitoring.
expect 1 -- NS veth4 "${ISO[@]}" --json
if [ "$HAVE_PY" = 1 ]; then
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["isolated"] is False and d["violations"]>=2 and any(c["result"]=="fail" and "default route" in c["evidence"] for c in d["checks"])' "$T/.out" \
    && ok || fail "JSON report: $OUT"
fi

# Bad configuration: exit 2 naming the line.
printf 'allow = 10.0.0.0/8\ncanary = 192.0.2.1\n' >"$T/bad.conf"
expect 2 --err "line 2: canary" -- "$CRETO" isolation check --config "$T/bad.conf"
expect 2 --err "missing.conf" -- "$CRETO" isolation check --config "$T/missing.conf"
expect 2 --err "resolv_conf $T/missing-resolv: no such file" -- "$CRETO" isolation check --resolv-conf "$T/missing-resolv"

# The guard: --active refused in the runner's namespace and with a link that could leave.
# (targets are loopback only, so even a broken guard could not send a packet out)
printf 'canary = 127.0.0.1:9\nresolver = none\ndns_name = none\n' >"$T/loop.conf"
expect 3 --err "refused under CRETO_TEST" -- "${ISO[@]}" --active --config "$T/loop.conf"
expect 3 --err "link tun0 could carry packets out" -- NS tun "${ISO[@]}" --active --config "$T/loop.conf"
expect 0 -- env -u CRETO_TEST unshare -n -m bash "$T/ns.sh" lo "${ISO[@]}" --active --config "$T/loop.conf"

# Active probes answered inside the namespace: each is a violation, named.
if [ "$HAVE_PY" = 1 ]; then
  printf 'allow = 198.51.100.0/24\ncanary = 198.51.100.7:8080\nresolver = none\ndns_name = none\n' >"$T/canary.conf"
  expect 0 -- NS canary "${ISO[@]}" --config "$T/canary.conf"
  expect 1 --err "tcp connect to canary 198.51.100.7:8080 succeeded" -- NS canary "${ISO[@]}" --active --config "$T/canary.conf"
  printf 'allow = 198.51.100.0/24\ncanary = none\nresolver = 198.51.100.53\ndns_name = canary.example\n' >"$T/dns.conf"
  expect 1 --err "dns query for canary.example sent to 198.51.100.53:53 was answered" -- \
    NS dns "${ISO[@]}" --active --config "$T/dns.conf" --timeout 1s
  printf 'allow = 198.51.100.0/24\ncanary = none\nresolver = none\ndns_name = canary.example\n' >"$T/dnssys.conf"
  expect 1 --err "system resolver resolved canary.example to 192.0.2.80" -- \
    NS dnssys "$CRETO" isolation check --active --config "$T/dnssys.conf"
else
  echo "note: python3 missing: answered-probe cases not run"
fi

# watch: logs only changes (one state line for two identical checks, then the change).
expect 0 -- NS lo "$CRETO" isolation watch --interval 1s --count 2 --resolv-conf "$T/resolv-local"
[ "$(printf '%s\n' "$OUT" | grep -c '')" = 1 ] && ok || fail "watch logged more than the first state: $OUT"
case $OUT in 20*"Z ISOLATED ("*) ok ;; *) fail "watch line lacks timestamp/state: $OUT" ;; esac
cat >"$T/watch.sh" <<'SH'
# start watch, wait for its first line, then give the namespace a way out
out=$1; shift
"$@" >"$out" & W=$!
for _ in $(seq 200); do [ -s "$out" ] && break; sleep 0.05; done
ip link add v0 type veth peer name v1; ip link set v0 up; ip link set v1 up
ip addr add 10.99.0.2/24 dev v0; ip route add default via 10.99.0.1
rc=0; wait $W || rc=$?
cat "$out"; exit $rc
SH
expect 1 --out "violation: ipv4 default route 0.0.0.0/0 via 10.99.0.1" -- \
  NS lo bash "$T/watch.sh" "$T/watch.out" "$CRETO" isolation watch --interval 1s --count 2 --resolv-conf "$T/resolv-local"
case $OUT in 20*"Z ISOLATED ("*"Z NOT ISOLATED ("*) ok ;; *) fail "watch did not log the change of state: $OUT" ;; esac

# A full --active check with the default 2 s timeout where every probe hangs
# (default routes into a veth nobody answers on): about one timeout in total.
t0=$(date +%s%N)
expect 1 --out "no answer within 2000 ms" -- NS vethboth "${ISO[@]}" --active
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
inner=$(printf '%s\n' "$OUT" | sed -n 's/^NOT ISOLATED: .*, \([0-9]*\) ms$/\1/p')
echo "full --active check (12 default probes, 2 s timeout, the 10 routed ones hanging): ${ms} ms wall incl. namespace setup, ${inner:-?} ms as creto measured it"

finish
