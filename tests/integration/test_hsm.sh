#!/bin/bash
# test_hsm.sh - `creto hsm` against the real SoftHSM2 module in a private
# token directory: init, keygen of every type, list, pub, destroy, OpenSC
# pkcs11-tool interop both ways, and one negative test per error class.
. "$(dirname "$0")/lib.sh"
hsm_env

umask 077
printf '1234-user\n' >"$T/pin"
printf '5678-so\n' >"$T/so.pin"
printf '0000\n' >"$T/bad.pin"
M=$HSM_MODULE
TOK="pkcs11:token=enclave?module-path=$M&pin-source=file:$T/pin"

# ---- init ----
expect 0 --err "initialised token 'enclave'" --out "pkcs11:token=enclave" -- "$CRETO" hsm init --module "$M" --label enclave \
  --so-pin-file "$T/so.pin" --pin-file "$T/pin"
expect 2 --err "token 'enclave' already exists" -- "$CRETO" hsm init --module "$M" --label enclave \
  --so-pin-file "$T/so.pin" --pin-file "$T/pin"
expect 2 --err "PIN file" -- "$CRETO" hsm init --module "$M" --label other \
  --so-pin-file "$T/missing.pin" --pin-file "$T/pin"
expect 2 -- "$CRETO" hsm init --module "$M" --label other
# a PIN on the command line is not an option at all
expect 2 -- "$CRETO" hsm init --module "$M" --label other --pin 1234

# ---- keygen ----
expect 0 --err "generated ed25519 key 'issuer'" -- "$CRETO" hsm keygen --type ed25519 --label issuer "$TOK"
expect 0 --out "pkcs11:token=enclave;object=p256" -- "$CRETO" hsm keygen --type ec-p256 --label p256 "$TOK"
expect 0 -- "$CRETO" hsm keygen --type ec-p384 --label p384 "$TOK"
expect 0 --out '"type": "aes-256"' -- "$CRETO" hsm keygen --json --type aes-256 --label nhi-backup-key "$TOK"
# --module / --pin-file instead of URI attributes
expect 0 -- "$CRETO" hsm keygen --module "$M" --pin-file "$T/pin" --type ed25519 --label by-opts pkcs11:token=enclave
expect 2 --err "key 'issuer' already exists on token 'enclave'" -- "$CRETO" hsm keygen --type ed25519 --label issuer "$TOK"
expect 2 --err "unknown --type 'rsa'" -- "$CRETO" hsm keygen --type rsa --label r "$TOK"
expect 2 -- "$CRETO" hsm keygen --type ed25519 "$TOK"
expect 2 --err "not a pkcs11: URI" -- "$CRETO" hsm keygen --type ed25519 --label x token=enclave
expect 2 --err "name the key with --label" -- "$CRETO" hsm keygen --type ed25519 --label x \
  "pkcs11:token=enclave;object=y?module-path=$M&pin-source=file:$T/pin"

# ---- one key id everywhere (issue 11 §6): keygen and list print the creto key
# id that `key id`, `hsm pub` and trust roots use; the CKA_ID only as "CKA_ID" ----
expect 0 --err "key id" --out "pkcs11:token=enclave;object=named" -- "$CRETO" hsm keygen --type ed25519 --label named "$TOK"
KG_ID=$(echo "$ERR" | sed -n "s/.*, key id \([0-9a-f]\{16\}\) (CKA_ID [0-9a-f]\{16\}).*/\1/p")
[ -n "$KG_ID" ] || fail "keygen printed no creto key id: $OUT"
expect 0 -- "$CRETO" key id "pkcs11:token=enclave;object=named?module-path=$M"
[ "$OUT" = "$KG_ID" ] || fail "keygen key id '$KG_ID' is not 'key id' output '$OUT'"
expect 0 -- "$CRETO" hsm list "$TOK"
[ "$(echo "$OUT" | grep -c " named .* key id $KG_ID  CKA_ID ")" = 2 ] || fail "list does not name 'named' by its key id: $OUT"
expect 0 --out "\"key_id\": \"$KG_ID\"" -- "$CRETO" hsm list --json "$TOK"
echo "$OUT" | grep -q '"cka_id": "' || fail "list --json lacks cka_id"
expect 0 --out "\"key_id\": \"" -- "$CRETO" hsm keygen --json --type ec-p384 --label named384 "$TOK"
K384=$(echo "$OUT" | sed -n 's/.*"key_id": "\([0-9a-f]*\)".*/\1/p')
expect 0 --err "key id $K384" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=named384?module-path=$M" -o "$T/named384.pub"

# ---- list ----
expect 0 --out "secret-key aes-256  nhi-backup-key" -- "$CRETO" hsm list "$TOK"
echo "$OUT" | grep -q "private    ed25519  issuer .* non-extractable" || fail "list: issuer private key not shown as non-extractable"
expect 0 --out '"key_type": "ec-p384"' -- "$CRETO" hsm list --json "$TOK"
# without a PIN only public objects are visible
expect 0 --out "public objects only" -- "$CRETO" hsm list "pkcs11:token=enclave?module-path=$M"
echo "$OUT" | grep -q nhi-backup-key && fail "list without login shows a private object"

# ---- interop: pkcs11-tool sees creto's keys ----
if command -v pkcs11-tool >/dev/null; then
  P11="pkcs11-tool --module $M --token-label enclave"
  out=$($P11 --login --pin 1234-user --list-objects 2>/dev/null)
  for l in issuer p256 p384 nhi-backup-key; do
    echo "$out" | grep -q "label:      $l\$" && ok || fail "pkcs11-tool does not list '$l'"
  done
  echo "$out" | grep -A3 "label:      nhi-backup-key" | grep -q "never extractable" && ok \
    || fail "pkcs11-tool: nhi-backup-key is not never-extractable"
  # pkcs11-tool makes keys; creto exports their public keys
  $P11 --login --pin 1234-user --keypairgen --key-type EC:prime256v1 --label pt-p256 --id 0102 >/dev/null 2>&1 \
    || fail "pkcs11-tool --keypairgen EC:prime256v1"
  $P11 --login --pin 1234-user --keypairgen --key-type EC:edwards25519 --label pt-ed --id 0103 >/dev/null 2>&1 \
    || fail "pkcs11-tool --keypairgen EC:edwards25519"
else
  echo "note: pkcs11-tool missing, interop skipped"
fi

# ---- pub ----
expect 2 -- "$CRETO" hsm pub "pkcs11:token=enclave?module-path=$M"
expect 0 --err "ed25519 public key" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=issuer?module-path=$M" -o "$T/issuer.pub"
[ -s "$T/issuer.pub" ] && ok || fail "issuer.pub not written"
expect 2 --err "already exists" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=issuer?module-path=$M" -o "$T/issuer.pub"
expect 0 --err "ecdsa-p384 public key" -- "$CRETO" hsm pub --module "$M" "pkcs11:token=enclave;object=p384" -o "$T/p384.pub"
if command -v pkcs11-tool >/dev/null; then
  expect 0 --err "ecdsa-p256 public key" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=pt-p256?module-path=$M" -o "$T/pt-p256.pub"
  expect 0 --err "ed25519 public key" -- "$CRETO" hsm pub "pkcs11:token=enclave;id=%01%03?module-path=$M" -o "$T/pt-ed.pub"
fi
expect 2 --err "key 'ghost' (public key) not found on token 'enclave'" -- "$CRETO" hsm pub \
  "pkcs11:token=enclave;object=ghost?module-path=$M" -o "$T/ghost.pub"
[ -e "$T/ghost.pub" ] && fail "ghost.pub written on failure"

# ---- sign / verify through the signer interface (once sign/verify exist) ----
printf 'hello enclave\n' >"$T/msg"
if "$CRETO" sign --help >/dev/null 2>&1; then
  for k in issuer p256 p384 pt-p256 pt-ed; do
    [ -e "$T/$k.pub" ] || "$CRETO" hsm pub "pkcs11:token=enclave;object=$k?module-path=$M" -o "$T/$k.pub" >/dev/null
    expect 0 -- "$CRETO" sign --key "pkcs11:token=enclave;object=$k?module-path=$M&pin-source=file:$T/pin" \
      "$T/msg" -o "$T/$k.sig"
    expect 0 -- "$CRETO" verify --pub "$T/$k.pub" "$T/msg" "$T/$k.sig"
  done
  printf 'tampered\n' >"$T/msg2"
  expect 1 -- "$CRETO" verify --pub "$T/issuer.pub" "$T/msg2" "$T/issuer.sig"
  # the hybrid HSM key: Ed25519 in the HSM, ML-DSA-65 in a wrapped file
  expect 0 --out "x-creto-pq=$T/root.pqkey" -- "$CRETO" hsm keygen --type hybrid --label root \
    --pq-file "$T/root.pqkey" "$TOK"
  HURI="pkcs11:token=enclave;object=root?module-path=$M&pin-source=file:$T/pin&x-creto-pq=$T/root.pqkey"
  expect 0 --err "hybrid public key" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=root?module-path=$M&x-creto-pq=$T/root.pqkey" -o "$T/root.pub"
  expect 0 -- "$CRETO" sign --key "$HURI" "$T/msg" -o "$T/root.sig"
  expect 0 -- "$CRETO" verify --pub "$T/root.pub" "$T/msg" "$T/root.sig"
  expect 1 -- "$CRETO" verify --pub "$T/root.pub" "$T/msg2" "$T/root.sig"
  # the classical half alone does not verify as the hybrid
  expect 1 -- "$CRETO" verify --pub "$T/issuer.pub" "$T/msg" "$T/root.sig"
  sed 's/^wrap-id: .*/wrap-id: 0000000000000000/' "$T/root.pqkey" >"$T/bad.pqkey"
  expect 1 --err "bad.pqkey" -- "$CRETO" sign --key "pkcs11:token=enclave;object=root?module-path=$M&pin-source=file:$T/pin&x-creto-pq=$T/bad.pqkey" "$T/msg" -o "$T/bad.sig"
  [ -e "$T/bad.sig" ] && fail "bad.sig written on failure"
  expect 2 --err "already exists" -- "$CRETO" hsm keygen --type hybrid --label root2 --pq-file "$T/root.pqkey" "$TOK"
  expect 2 --err "CKR_PIN_INCORRECT" -- "$CRETO" sign \
    --key "pkcs11:token=enclave;object=issuer?module-path=$M&pin-source=file:$T/bad.pin" "$T/msg" -o "$T/x.sig"
else
  echo "note: creto sign/verify not built yet; HSM signing is covered by unit/test_hsm"
fi

# ---- errors: one line, exit 2 or 3, never a crash ----
expect 2 --err "C_Login on token 'enclave': CKR_PIN_INCORRECT" -- "$CRETO" hsm list \
  "pkcs11:token=enclave?module-path=$M&pin-source=file:$T/bad.pin"
expect 2 --err "PKCS#11 module '/nonexistent/libpkcs11.so'" -- "$CRETO" hsm list \
  "pkcs11:token=enclave?module-path=/nonexistent/libpkcs11.so"
expect 3 --err "cannot load" -- "$CRETO" hsm list "pkcs11:token=enclave?module-path=$T/pin"
expect 3 --err "token 'nosuch' not found in module" -- "$CRETO" hsm list "pkcs11:token=nosuch?module-path=$M"
expect 2 --err "PIN file" -- "$CRETO" hsm list "pkcs11:token=enclave?module-path=$M&pin-source=file:$T/nope"
expect 2 --err "unknown path attribute 'tokn'" -- "$CRETO" hsm list "pkcs11:tokn=enclave"
expect 2 --err "appears twice" -- "$CRETO" hsm list "pkcs11:token=a;token=b"
expect 2 --err "no PIN for the token" -- "$CRETO" hsm keygen --type ed25519 --label np "pkcs11:token=enclave?module-path=$M"
expect 2 --err "key 'ghost' not found on token 'enclave'" -- "$CRETO" hsm destroy "pkcs11:token=enclave;object=ghost?module-path=$M&pin-source=file:$T/pin"
expect 2 --out '"ok": false' -- "$CRETO" hsm destroy --json "pkcs11:token=enclave;object=ghost?module-path=$M&pin-source=file:$T/pin"
# SOFTHSM2_CONF pointing nowhere: the module cannot initialise
SOFTHSM2_CONF=$T/missing.conf expect 3 --err "C_Initialize of module" -- "$CRETO" hsm list "pkcs11:token=enclave?module-path=$M"

# ---- a URI matching two keys never acts (issue 11 §4c) ----
if command -v pkcs11-tool >/dev/null; then
  P11="pkcs11-tool --module $M --token-label enclave"
  $P11 --login --pin 1234-user --keypairgen --key-type EC:edwards25519 --label twin --id 0a01 >/dev/null 2>&1 \
    || fail "pkcs11-tool --keypairgen twin 0a01"
  $P11 --login --pin 1234-user --keypairgen --key-type EC:edwards25519 --label twin --id 0a02 >/dev/null 2>&1 \
    || fail "pkcs11-tool --keypairgen twin 0a02"
  TW="pkcs11:token=enclave;object=twin?module-path=$M&pin-source=file:$T/pin"
  expect 2 --err "key 'twin' is ambiguous on token 'enclave': the URI matches 2 keys (id=0a01, id=0a02); add id=" \
    -- "$CRETO" hsm destroy "$TW"
  expect 2 --out '"ok": false' -- "$CRETO" hsm destroy --json "$TW"
  expect 2 --err "ambiguous" -- "$CRETO" hsm pub "$TW" -o "$T/twin.pub"
  [ -e "$T/twin.pub" ] && fail "twin.pub written for an ambiguous URI"
  expect 2 --err "ambiguous" -- "$CRETO" sign --key "$TW" "$T/msg" -o "$T/twin.sig"
  expect 2 --err "ambiguous" -- "$CRETO" key id "$TW"
  expect 0 -- "$CRETO" hsm list "$TOK"
  [ "$(echo "$OUT" | grep -c ' twin ')" = 4 ] || fail "ambiguous destroy removed objects: $OUT"
  expect 0 --err "destroyed 2 objects" -- "$CRETO" hsm destroy \
    "pkcs11:token=enclave;object=twin;id=%0a%02?module-path=$M&pin-source=file:$T/pin"
  expect 0 --err "destroyed 2 objects" -- "$CRETO" hsm destroy "$TW"
fi

# ---- one CLI convention (issue 11 §7) ----
# status lines on stderr, only the requested output on stdout; --quiet silences them
expect 0 --out "pkcs11:token=enclave;object=quiet1" -- "$CRETO" hsm keygen --quiet --type ed25519 --label quiet1 "$TOK"
[ -z "$ERR" ] || fail "keygen --quiet printed on stderr: $ERR"
[ "$OUT" = "pkcs11:token=enclave;object=quiet1" ] || fail "keygen stdout is not just the URI: $OUT"
expect 0 -- "$CRETO" hsm pub --quiet "pkcs11:token=enclave;object=quiet1?module-path=$M" -o "$T/quiet1.pub"
[ -z "$OUT$ERR" ] || fail "pub --quiet printed: $OUT $ERR"
expect 0 -- "$CRETO" hsm destroy --quiet "pkcs11:token=enclave;object=quiet1?module-path=$M&pin-source=file:$T/pin"
[ -z "$OUT$ERR" ] || fail "destroy --quiet printed: $OUT $ERR"
# --json everywhere, also for usage errors (docs/errors.md shape)
for cmd in init keygen list pub destroy; do
  expect 2 --err "creto: hsm $cmd: unknown option '--bogus'" --out '"status": "usage"' -- "$CRETO" hsm $cmd --json --bogus
done
expect 0 --out '"key_id": "' -- "$CRETO" hsm keygen --json --type ed25519 --label jdel "$TOK"
expect 0 --out '"destroyed": 2' -- "$CRETO" hsm destroy --json "pkcs11:token=enclave;object=jdel?module-path=$M&pin-source=file:$T/pin"
[ -z "$ERR" ] || fail "destroy --json printed a status line: $ERR"
expect 0 --out '"file":' -- "$CRETO" hsm pub --json "pkcs11:token=enclave;object=issuer?module-path=$M" -o "$T/issuer-j.pub"
# usage errors: one form, naming what is wrong
expect 2 --err "creto: hsm keygen: --label is required" -- "$CRETO" hsm keygen --type ed25519 "$TOK"
expect 2 --err "creto: hsm keygen: --type is required (ec-p256, ec-p384, ed25519, aes-256, hybrid, hybrid-cnsa2)" \
  -- "$CRETO" hsm keygen --label x "$TOK"
expect 2 --err "creto: hsm keygen: option '--label' needs a value" -- "$CRETO" hsm keygen --type ed25519 --label
expect 2 --err "creto: hsm list: option '--label' does not apply to hsm list" -- "$CRETO" hsm list --label x "$TOK"
expect 2 --err "creto: hsm pub: -o NAME.pub is required" -- "$CRETO" hsm pub "pkcs11:token=enclave;object=issuer"
expect 2 --err "creto: hsm destroy: a pkcs11: URI is required" -- "$CRETO" hsm destroy
expect 2 --err "creto: hsm list: unexpected operand" -- "$CRETO" hsm list "$TOK" extra
expect 2 --err "creto: hsm init: --label is required" -- "$CRETO" hsm init --so-pin-file "$T/so.pin" --pin-file "$T/pin"
expect 2 --err "creto: hsm list: option '--json' takes no value" -- "$CRETO" hsm list --json=yes
# an option's value is never a help request; --help where an option is read is
expect 0 --out "usage: creto hsm destroy" -- "$CRETO" hsm destroy --help

# ---- destroy ----
expect 0 --err "destroyed 2 objects on token 'enclave'" -- "$CRETO" hsm destroy "pkcs11:token=enclave;object=p384?module-path=$M&pin-source=file:$T/pin"
expect 0 --err "destroyed 1 object on token 'enclave'" -- "$CRETO" hsm destroy \
  "pkcs11:token=enclave;object=by-opts;type=public?module-path=$M&pin-source=file:$T/pin"
expect 0 -- "$CRETO" hsm list "$TOK"
echo "$OUT" | grep -q " p384 " && fail "p384 still listed after destroy"
echo "$OUT" | grep -q "private    ed25519  by-opts" || fail "by-opts private key should remain"

finish
