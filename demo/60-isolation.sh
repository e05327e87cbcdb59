# 60-isolation.sh - isolation verification: the enclave proves it has no way
# out.  Self-sufficient.  Everything runs inside network namespaces made here
# (unshare -n), so no probe can leave this machine; CRETO_TEST makes creto
# itself refuse --active anywhere else.
demo_isolation() {
  step "Isolation: prove the enclave has no way out"
  if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
    say "skipped: needs root and network namespaces (unshare -n)"
    return 0
  fi
  local outer
  outer=$(stat -L -c %i /proc/self/ns/net)
  printf 'nameserver 127.0.0.1\n' >"$DEMO_DIR/resolv.conf"
  cat >"$DEMO_DIR/isolation.conf" <<CONF
# the enclave's own range, and probe targets that must never answer
allow = 10.20.0.0/16
canary = 192.0.2.10:443
canary = [2001:db8::10]:443
resolver = 198.51.100.53
dns_name = canary.example
timeout = 2s
resolv_conf = $DEMO_DIR/resolv.conf
CONF
  say "config: $DEMO_DIR/isolation.conf (allowed 10.20.0.0/16; canaries and resolver are documentation addresses)"
  # Two tiny namespace setups, so the commands below read plainly.
  printf 'ip link set lo up && exec "$@"\n' >"$DEMO_DIR/netns-loopback.sh"
  printf '%s\n' 'ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up &&' \
    'ip link set v1 up && ip addr add 10.99.0.2/24 dev v0 && ip route add default via 10.99.0.1 && exec "$@"' \
    >"$DEMO_DIR/netns-default-route.sh"
  say "A namespace with only loopback: passive checks pass, and with --active every probe fails fast."
  show env CRETO_TEST=1 CRETO_TEST_OUTER_NETNS="$outer" unshare -n sh "$DEMO_DIR/netns-loopback.sh" \
    "$CRETO" isolation check --active --config "$DEMO_DIR/isolation.conf"
  say "A namespace with a veth, an address and a default route (its peer stays inside: nothing leaves):"
  refused unshare -n sh "$DEMO_DIR/netns-default-route.sh" "$CRETO" isolation check --config "$DEMO_DIR/isolation.conf"
  say "The resolver file is read as glibc reads it: 0x8.0x8.0x8.0x8 is 8.8.8.8."
  printf 'nameserver 127.0.0.1\nnameserver 0x8.0x8.0x8.0x8\n' >"$DEMO_DIR/resolv-hex.conf"
  refused unshare -n sh "$DEMO_DIR/netns-loopback.sh" "$CRETO" isolation check --resolv-conf "$DEMO_DIR/resolv-hex.conf"
  say "A proxy URL is read as curl reads it: the host of http://8.8.8.8#@127.0.0.1 is 8.8.8.8."
  refused env 'http_proxy=http://8.8.8.8#@127.0.0.1' unshare -n sh "$DEMO_DIR/netns-loopback.sh" \
    "$CRETO" isolation check --resolv-conf "$DEMO_DIR/resolv.conf"
}
demo_isolation
