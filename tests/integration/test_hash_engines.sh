#!/bin/bash
# test_hash_engines.sh - the SHA3-256 engine changes the speed, never a
# digest (issue 17, docs/sha3-engine.md): one model directory hashed and
# written as manifests, one update package verified, applied and refused
# (a changed shard), once per back end this CPU has, each in its own process
# (the CRETO_SHA3_NO_AVX512 / CRETO_SHA3_NO_AVX2 switches: avx512, avx2,
# OpenSSL's single stream) and with --fips (OpenSSL only): every root digest,
# manifest, installed tree and verdict is identical.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
# name and environment of every back end to run
ENGINES=("openssl CRETO_SHA3_NO_AVX2=1")
case " $flags " in *" avx2 "*) ENGINES+=("avx2 CRETO_SHA3_NO_AVX512=1") ;; esac
case " $flags " in *" avx512f "*) ENGINES+=("avx512 CRETO_SHA3_NO_AVX512=0") ;; esac
names=""
for e in "${ENGINES[@]}"; do names="$names ${e%% *}"; done
echo "back ends run:$names fips"

# incompressible data of N bytes
gen() { head -c "$2" /dev/urandom >"$1"; }

# ---- a model directory --------------------------------------------------
mkdir -p model/sub
gen model/weights-1.safetensors $((3 * 1048576 + 5))
gen model/weights-2.safetensors $((1048576 - 1))
gen model/sub/tok.bin 137
: >model/empty.bin
echo '{"model": "engines"}' >model/config.json

# model hash/manifest/verify under one back end: "$1" = label, rest = env
model_case() {
  local label=$1; shift
  local fips=()
  [ "$label" = fips ] && fips=(--fips)
  expect 0 -- env "$@" "$CRETO" model hash model "${fips[@]}"
  echo "$OUT" >"hash-$label.txt"
  expect 0 -- env "$@" "$CRETO" model hash model --method shards --shard-size 65536 "${fips[@]}"
  echo "$OUT" >"hash-shards-$label.txt"
  expect 0 -- env "$@" "$CRETO" model manifest model -o "manifest-$label.json" "${fips[@]}"
  expect 0 -- env "$@" "$CRETO" model manifest model -o "manifest-shards-$label.json" \
    --method shards --shard-size 65536 "${fips[@]}"
}
for e in "${ENGINES[@]}"; do
  # shellcheck disable=SC2086
  model_case ${e%% *} ${e#* }
done
model_case fips CRETO_SHA3_NO_AVX512=0

for e in ${names# } fips; do
  for f in hash hash-shards; do
    cmp -s "$f-openssl.txt" "$f-$e.txt" || fail "$f differs on $e: $(cat "$f-$e.txt") vs $(cat "$f-openssl.txt")"
  done
  for f in manifest manifest-shards; do
    cmp -s "$f-openssl.json" "$f-$e.json" || fail "$f.json differs on $e"
  done
done
grep -q '^sha3-256:[0-9a-f]\{64\}$' hash-openssl.txt || fail "hash output: $(cat hash-openssl.txt)"
# verify against a manifest made on another back end, both ways
for e in "${ENGINES[@]}"; do
  # shellcheck disable=SC2086
  expect 0 -- env ${e#* } "$CRETO" model verify model --manifest manifest-openssl.json
done
expect 0 -- env CRETO_SHA3_NO_AVX2=1 "$CRETO" model verify model --manifest "manifest-shards-${ENGINES[-1]%% *}.json" --fips
# a changed byte is found on every back end, with the same message
flip model/weights-1.safetensors 200000
msg=""
for e in "${ENGINES[@]}" "fips CRETO_SHA3_NO_AVX512=0"; do
  fips=()
  [ "${e%% *}" = fips ] && fips=(--fips)
  # shellcheck disable=SC2086
  expect 1 -- env ${e#* } "$CRETO" model verify model --manifest manifest-shards-openssl.json "${fips[@]}"
  [ -z "$msg" ] && msg=$ERR
  [ "$ERR" = "$msg" ] || fail "verify message differs on ${e%% *}: $ERR vs $msg"
done
case "$msg" in *weights-1.safetensors*) ;; *) fail "verify does not name the file: $msg" ;; esac

# ---- an update package --------------------------------------------------
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null 2>&1
for k in a b; do "$CRETO" trust sign root.json --key $k.key --quiet; done
mkdir p
gen p/w1.bin $((3 * 1048576 + 5))
printf 'MARKER-FOR-THE-SHARD-TEST' | dd of=p/w1.bin bs=1 seek=200000 conv=notrunc status=none
gen p/w2.bin 100000
: >p/e.bin
echo '{"model": "u"}' >p/config.json
expect 0 -- "$CRETO" update create --type model-weights --name u --version 1 --shard-size 65536 \
  --payload p -o u.st --quiet
for k in a b; do "$CRETO" update sign u.st --key $k.key --quiet; done
expect 0 -- "$CRETO" update assemble u.st --payload p --trust root.json -o u.crupdate --quiet
cp u.crupdate bad.crupdate
off=$(grep -obUa 'MARKER-FOR-THE-SHARD-TEST' bad.crupdate | head -n 1 | cut -d: -f1)
[ -n "$off" ] || fail "marker not found in the package"
flip bad.crupdate $((off + 3))
first=""
for e in "${ENGINES[@]}"; do
  label=${e%% *}
  # shellcheck disable=SC2086
  expect 0 -- env ${e#* } "$CRETO" state init --state "S-$label" --trust root.json --quiet
  # shellcheck disable=SC2086
  expect 0 -- env ${e#* } "$CRETO" update verify u.crupdate --trust root.json
  # shellcheck disable=SC2086
  expect 0 -- env ${e#* } "$CRETO" update apply u.crupdate --trust root.json --state "S-$label" --json
  echo "$OUT" | grep -o '"statement_digest": *"[0-9a-f]\{64\}"' >"apply-$label.txt" ||
    fail "apply --json on $label lacks the statement digest: $OUT"
  (cd "S-$label/models/u/1" && find . -type f | sort | xargs sha256sum) >"tree-$label.txt"
  # shellcheck disable=SC2086
  expect 1 --err "digest: payload file w1.bin shard 4 of 49 does not match the statement" -- \
    env ${e#* } "$CRETO" update verify bad.crupdate --trust root.json
  [ -z "$first" ] && first=$label
  cmp -s "tree-$first.txt" "tree-$label.txt" || fail "installed tree differs on $label"
  cmp -s "apply-$first.txt" "apply-$label.txt" || fail "apply result differs on $label"
done
[ "$(wc -l <"tree-$first.txt")" = 4 ] || fail "installed tree: $(cat "tree-$first.txt")"
(cd p && find . -type f | sort | xargs sha256sum) >tree-source.txt
cmp -s tree-source.txt "tree-$first.txt" || fail "installed files differ from the payload"
finish
