#!/bin/bash
# test_config_example.sh - the example /etc/creto/creto.conf that `make
# install` and the .deb ship: `creto config check` refuses it untouched,
# naming what is missing (trust root, state, PIN file, store, keys), and
# passes once the enclave's pieces exist where it points (paths moved under
# a temp root, the user `creto` replaced by `nobody` on this machine).
. "$(dirname "$0")/lib.sh"
hsm_env
EX=$CRETO_SRC_DIR/deploy/etc/creto.conf
[ -s "$EX" ] || { fail "no deploy/etc/creto.conf"; finish; }

# ---- untouched: refused, each problem named ----
expect 2 --err "trust.root" -- "$CRETO" config check --config "$EX"
for k in "state.dir" "hsm.pin_file" "nhi.store" "nhi.jwks" "upstream.key_file"; do
  grep -q "$k" <<<"$ERR" && ok || fail "untouched example: $k not named"
done

# ---- filled in ----
cd "$T"
umask 077
E=$T/etc V=$T/var
mkdir -p "$E/hsm" "$E/trust" "$E/nhi" "$E/vllm" "$V"
sed -e "s|/etc/creto|$E|g" -e "s|/var/lib/creto|$V|g" -e "s|^user = creto$|user = nobody|" \
    -e "s|^module = .*|module = $HSM_MODULE|" "$EX" >"$E/creto.conf"
printf '1234-user\n' >"$E/hsm/user.pin"; printf '5678-so\n' >so.pin
"$CRETO" hsm init --module "$HSM_MODULE" --label enclave --so-pin-file so.pin --pin-file "$E/hsm/user.pin" >/dev/null || fail "hsm init"
"$CRETO" hsm keygen --type ed25519 --label audit-checkpoint \
  "pkcs11:token=enclave?module-path=$HSM_MODULE&pin-source=file:$E/hsm/user.pin" >/dev/null || fail "keygen"
for k in a b; do "$CRETO" key gen --alg ed25519 -o $k >/dev/null 2>&1; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o "$E/trust/root.json" >/dev/null 2>&1
for k in a b; do "$CRETO" trust sign "$E/trust/root.json" --key $k.key >/dev/null 2>&1; done
"$CRETO" state init --state "$V/state" --trust "$E/trust/root.json" >/dev/null 2>&1 || fail "state init"
mkdir -p "$V/drop"
. "$CRETO_SRC_DIR/tests/integration/jose/nhi_keys.sh"
nhi_make_key "$T/issuer" ed25519
"$CRETO" nhi init --db "$V/nhi.db" >/dev/null 2>&1
"$CRETO" nhi jwks --key "$T/issuer.key" -o "$E/nhi/jwks.json" >/dev/null 2>&1
printf 'vllm-key-%s\n' "$RANDOM$RANDOM" >"$E/vllm/api-key"
expect 0 -- "$CRETO" config check --config "$E/creto.conf"
# the gateway reads the same full file: serve's sections are syntax-checked,
# not refused, and [nhi] store and jwks stand in for [gateway] nhi_db and
# jwks, so the example runs a standalone gateway as it is
expect 0 -- "$CRETO" gateway --config "$E/creto.conf" --check
# [gateway] nhi_db and jwks win over [nhi]'s: a missing store named there fails
sed -e "s|^\[gateway\]$|[gateway]\nnhi_db = $V/none.db|" "$E/creto.conf" >"$E/gateway-own.conf"
expect 3 --err "none.db" -- "$CRETO" gateway --config "$E/gateway-own.conf" --check
sed -e "s|^\[gateway\]$|[gateway]\nnhi_db = $V/nhi.db\njwks = $E/nhi/jwks.json|" "$E/creto.conf" >"$E/gateway-full.conf"
expect 0 -- "$CRETO" gateway --config "$E/gateway-full.conf" --check
printf '[vault]\nx = 1\n' >>"$E/gateway-full.conf"
expect 2 --err "unknown section [vault]" -- "$CRETO" gateway --config "$E/gateway-full.conf" --check
# a PIN file readable by others is refused again
chmod 644 "$E/hsm/user.pin"
expect 2 --err "hsm.pin_file" -- "$CRETO" config check --config "$E/creto.conf"
finish
