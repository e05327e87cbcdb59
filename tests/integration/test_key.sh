#!/bin/bash
# creto key gen|pub|id: every algorithm, file modes, no overwrite, strict
# parsing of key files, JSON output.
. "$(dirname "$0")/lib.sh"
cd "$T"

ALGS="ed25519 ecdsa-p256 ecdsa-p384 ml-dsa-44 ml-dsa-65 ml-dsa-87 hybrid hybrid-cnsa2"
for a in $ALGS; do
  expect 0 --out "key id" -- "$CRETO" key gen --alg "$a" -o "k-$a"
  [ "$(stat -c %a "k-$a.key")" = 600 ] && ok || fail "k-$a.key mode $(stat -c %a "k-$a.key"), expected 600"
  [ "$(stat -c %a "k-$a.pub")" = 644 ] && ok || fail "k-$a.pub mode $(stat -c %a "k-$a.pub")"
  grep -q "^creto-seckey-v1 $a [0-9a-f]\{16\}\$" "k-$a.key" && ok || fail "k-$a.key line 2"
  grep -q "^creto-pubkey-v1 $a [0-9a-f]\{16\}\$" "k-$a.pub" && ok || fail "k-$a.pub line 2"
  # key pub reproduces the .pub file byte for byte
  expect 0 -- "$CRETO" key pub "k-$a.key"
  printf '%s\n' "$OUT" | cmp -s - "k-$a.pub" && ok || fail "key pub k-$a.key differs from k-$a.pub"
  # key id is the same from .key and .pub, and the one in line 2
  id=$(awk 'NR==2{print $3}' "k-$a.pub")
  expect 0 --out "$id" -- "$CRETO" key id "k-$a.pub"
  [ "$OUT" = "$id" ] && ok || fail "key id printed '$OUT'"
  expect 0 --out "$id" -- "$CRETO" key id "k-$a.key"
done

# default algorithm is hybrid; JSON output
expect 0 --out '"alg": "hybrid"' -- "$CRETO" key gen -o def --json
expect 0 --out '"keyid"' -- "$CRETO" key id --json def.pub
id=$(awk 'NR==2{print $3}' def.pub)
expect 0 --out "\"keyid\": \"$id\"" -- "$CRETO" key id --json def.key

# never overwritten: both files intact after a refused gen
cp k-ed25519.key before.key
expect 2 --err "already exists" -- "$CRETO" key gen --alg ed25519 -o k-ed25519
cmp -s before.key k-ed25519.key && ok || fail "k-ed25519.key changed"
: >only.pub
expect 2 --err "only.pub: already exists" -- "$CRETO" key gen --alg ed25519 -o only
[ ! -e only.key ] && ok || fail "only.key created beside an existing only.pub"

# usage errors
expect 2 --err "unknown algorithm 'rsa'" -- "$CRETO" key gen --alg rsa -o x
expect 2 -- "$CRETO" key gen --alg ed25519
expect 2 -- "$CRETO" key pub
expect 2 -- "$CRETO" key nope

# strict parsing: each damaged file refused with one line, exit 1
sed '2s/ed25519/ecdsa-p256/' k-ed25519.pub >bad-alg.pub
expect 1 --err "bad-alg.pub" -- "$CRETO" key id bad-alg.pub
sed '2s/[0-9a-f]$/x/' k-ed25519.pub >bad-id.pub
expect 1 --err "key id" -- "$CRETO" key id bad-id.pub
{ cat k-ed25519.pub; echo extra; } >trail.pub
expect 1 --err "trailing data" -- "$CRETO" key id trail.pub
sed 's/$/\r/' k-ed25519.pub >crlf.pub
expect 1 --err "crlf.pub" -- "$CRETO" key id crlf.pub
# a mismatched key id (the id of another key)
other=$(awk 'NR==2{print $3}' k-ecdsa-p256.pub)
sed "2s/[0-9a-f]\{16\}\$/$other/" k-ed25519.pub >swap.pub
expect 1 --err "does not match" -- "$CRETO" key id swap.pub
# corrupted secret key: checksum
cp k-ed25519.key bad.key; chmod 600 bad.key
body=$(sed -n 3p bad.key); c=${body:0:1}; [ "$c" = A ] && n=B || n=A
sed -i "3s/^./$n/" bad.key
expect 1 --err "checksum mismatch" -- "$CRETO" key pub bad.key
# symlinked key refused
ln -s k-ed25519.key link.key
expect 1 --err "symbolic link" -- "$CRETO" key pub link.key
# missing file: operational error
expect 3 --err "missing.key" -- "$CRETO" key pub missing.key
finish
