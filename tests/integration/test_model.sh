#!/bin/bash
# test_model.sh - `creto model hash|manifest|verify` on small model
# directories: determinism, every kind of change detected, edge cases
# (empty files and directories, non-ASCII names, exact shard multiples),
# and digests cross-checked against independent tools (python3 hashlib,
# openssl dgst over dd'ed byte ranges).
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"

SH=65536 # shard size used in shards mode (small so files have several shards)

# rnd FILE BYTES: random content.
rnd() { head -c "$2" /dev/urandom >"$1"; }
# flip FILE OFFSET: xor one byte in place.
flip() {
  local b
  b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# A model directory: mk DIR.  cpr SRC DST: the same content created in the
# reverse order (new inodes, other readdir order).
FILES=(config.json tokenizer.json "a.txt" "a/b" "a-b" "weights/model-00001-of-00002.safetensors"
       "weights/model-00002-of-00002.safetensors" "données/模型.bin" empty.txt "z/y/x/deep.bin")
mk() {
  local d=$1 f
  mkdir -p "$d"
  for f in "${FILES[@]}"; do
    mkdir -p "$d/$(dirname "$f")"
    case "$f" in
      config.json) echo '{"architectures":["Demo"],"hidden_size":64}' >"$d/$f" ;;
      tokenizer.json) echo '{"version":"1.0","model":{"type":"BPE"}}' >"$d/$f" ;;
      empty.txt) : >"$d/$f" ;;
      weights/model-00001*) rnd "$d/$f" $((3 * SH + 1234)) ;;
      weights/model-00002*) rnd "$d/$f" $((2 * SH)) ;;   # exact multiple of the shard size
      *) rnd "$d/$f" 777 ;;
    esac
  done
  mkdir -p "$d/emptydir/nested" "$d/.git/objects"
  echo "ref: refs/heads/main" >"$d/.git/HEAD"
  echo "*.bin filter=lfs" >"$d/.gitattributes"
}
cpr() {
  local i f
  for ((i = ${#FILES[@]} - 1; i >= 0; i--)); do
    f=${FILES[$i]}
    mkdir -p "$2/$(dirname "$f")"
    cat "$1/$f" >"$2/$f"
  done
}

M=$T/model
mk "$M"
cpr "$M" "$T/copy"
touch -d '2001-01-01' "$T/copy/config.json"

# ---- determinism ----------------------------------------------------------
expect 0 -- "$CRETO" model hash "$M"
D1=$OUT
[[ "$D1" =~ ^sha3-256:[0-9a-f]{64}$ ]] && ok || fail "hash output '$D1'"
expect 0 --out "$D1" -- "$CRETO" model hash "$T/copy"
expect 0 --out "$D1" -- "$CRETO" model hash "$M" --threads 1
expect 0 --out "$D1" -- "$CRETO" model hash "$M/"
for args in "--hash sha256" "--method shards --shard-size $SH" "--hash sha256 --method shards --shard-size $SH"; do
  expect 0 -- "$CRETO" model hash "$M" $args
  a=$OUT
  expect 0 --out "$a" -- "$CRETO" model hash "$T/copy" $args --threads 3
done
# empty directories and the default ignores do not change the digest
mkdir -p "$M/another/empty/dir"
rm -rf "$M/.git"
expect 0 --out "$D1" -- "$CRETO" model hash "$M"

# ---- independent computations ----------------------------------------------
# sha256/files root digest: what sigstore/model-transparency computes, with
# a few lines of python3 hashlib (PurePosixPath order, SHA-256 over the
# concatenated raw file digests).  sha3-256 roots (docs/model-manifest.md
# §1): SHA-256 over the header lines binding method, shard size and
# allow_symlinks, then u32be(len(name)) || name || digest per resource, an
# empty file as one empty shard.
indep() { python3 - "$1" "$2" "${3:-0}" <<'PY'
import hashlib, os, struct, sys
from pathlib import PurePosixPath
root, alg, shard = sys.argv[1], sys.argv[2], int(sys.argv[3])
ign = {'.git', '.gitattributes', '.github', '.gitignore'}
items = []
for d, dirs, files in os.walk(root):
    for f in files:
        rel = os.path.relpath(os.path.join(d, f), root)
        if rel.split('/')[0] in ign:
            continue
        data = open(os.path.join(d, f), 'rb').read()
        if shard == 0:
            items.append(((PurePosixPath(rel), 0), rel, hashlib.new(alg, data).digest()))
        else:
            starts = list(range(0, len(data), shard)) or ([0] if alg == 'sha3_256' else [])
            for s in starts:
                e = min(s + shard, len(data))
                items.append(((PurePosixPath(rel), s), '%s:%d:%d' % (rel, s, e),
                              hashlib.new(alg, data[s:e]).digest()))
items.sort(key=lambda kv: kv[0])
if alg == 'sha256':
    print(hashlib.sha256(b''.join(d for _, _, d in items)).hexdigest())
else:
    h = hashlib.sha256(('creto-model-root-v1\nmethod=%s\nshard_size=%d\nallow_symlinks=0\nresources=%d\n'
                        % ('shards' if shard else 'files', shard, len(items))).encode())
    for _, name, d in items:
        n = name.encode()
        h.update(struct.pack('>I', len(n)) + n + d)
    print(h.hexdigest())
PY
}
expect 0 -- "$CRETO" model hash "$M" --hash sha256 --method files
[ "$OUT" = "sha256:$(indep "$M" sha256)" ] && ok || fail "sha256/files root differs from python: $OUT"
# the default: sha3-256 shards of a fixed 64 MiB
[ "$D1" = "sha3-256:$(indep "$M" sha3_256 67108864)" ] && ok || fail "sha3-256 default root differs from python"
expect 0 --out "$D1" -- "$CRETO" model hash "$M" --method shards --shard-size 67108864
expect 0 -- "$CRETO" model hash "$M" --method files
[ "$OUT" = "sha3-256:$(indep "$M" sha3_256)" ] && ok || fail "sha3-256/files root differs from python"
[ "$OUT" != "$D1" ] && ok || fail "sha3-256 root does not bind the method"
expect 0 -- "$CRETO" model hash "$M" --method shards --shard-size $SH
[ "$OUT" = "sha3-256:$(indep "$M" sha3_256 $SH)" ] && ok || fail "sha3-256/shards root differs from python"

# shard digests against openssl dgst of the same byte ranges cut with dd
expect 0 -- "$CRETO" model manifest "$M" -o "$T/shards.json" --method shards --shard-size $SH
python3 -c "
import json,sys
for r in json.load(open(sys.argv[1]))['predicate']['resources']:
    p,s,e=r['name'].rsplit(':',2); print(p, s, e, r['digest'])" "$T/shards.json" | grep -v '^empty.txt ' >"$T/shards.txt"
n=0
while read -r p s e dg; do
  got=$(dd if="$M/$p" bs=$SH skip=$((s / SH)) count=1 status=none | openssl dgst -sha3-256 -r | cut -d' ' -f1)
  [ $((e - s)) -le $SH ] || fail "shard $p:$s:$e longer than the shard size"
  [ "$got" = "$dg" ] || fail "shard $p:$s:$e: openssl $got, creto $dg"
  n=$((n + 1))
done <"$T/shards.txt"
[ "$n" -ge 8 ] && ok || fail "only $n shards checked"
grep -q '"weights/model-00002-of-00002.safetensors:65536:131072"' "$T/shards.json" && ok || fail "exact multiple: last shard"
grep -q 'model-00002-of-00002.safetensors:131072' "$T/shards.json" && fail "exact multiple: spurious empty shard" || ok
grep -q '"empty.txt:0:0"' "$T/shards.json" && ok || fail "sha3-256: the empty file has no empty shard"
# files mode: non-ASCII name and empty file listed, digest = openssl's
expect 0 -- "$CRETO" model manifest "$M" -o "$M/manifest.json"
python3 -c "
import json,sys
m=json.load(open(sys.argv[1])); names=[r['name'].rsplit(':',2)[0] for r in m['predicate']['resources']]
assert m['predicate']['serialization']['method'] == 'shards' and m['predicate']['serialization']['shard_size'] == 67108864
assert names.index('a/b') < names.index('a-b') < names.index('a.txt'), names
assert 'données/模型.bin' in names and 'empty.txt' in names and 'manifest.json' not in names, names
assert 'manifest.json' in m['predicate']['serialization']['ignore_paths']
assert m['subject'][0]['name'] == 'model'
" "$M/manifest.json" && ok || fail "manifest content"
want=$(openssl dgst -sha3-256 -r "$M/données/模型.bin" | cut -d' ' -f1)
grep -q "$want" "$M/manifest.json" && ok || fail "non-ASCII file digest"

# ---- verify -------------------------------------------------------------------
expect 0 --out verified -- "$CRETO" model verify "$M" --manifest "$M/manifest.json"
expect 0 -- "$CRETO" model verify "$M" --manifest "$M/manifest.json" --expect "$D1"
expect 1 --err "expected sha256:" -- "$CRETO" model verify "$M" --manifest "$M/manifest.json" --expect "sha256:${D1#sha3-256:}"
expect 0 --out '"ok": true' -- "$CRETO" model verify "$M" --manifest "$M/manifest.json" --json
expect 0 -- "$CRETO" model verify "$T/copy" --manifest "$M/manifest.json"
expect 0 -- "$CRETO" model manifest "$M" -o "$T/sm.json" --method shards --shard-size $SH --hash sha256
expect 0 -- "$CRETO" model verify "$M" --manifest "$T/sm.json"
grep -q 'empty.txt' "$T/sm.json" && fail "sha256 shards: the empty file has a shard (model-signing has none)" || ok

# fresh CASE: a copy of the model to damage
fresh() { rm -rf "$T/c"; cp -a "$M" "$T/c"; }
W=weights/model-00001-of-00002.safetensors
WS=$((3 * SH + 1234))
for man in "$M/manifest.json" "$T/sm.json"; do
  for off in 0 $((WS / 2)) $((WS - 1)) $((SH - 1)) $SH $((2 * SH)); do
    fresh; flip "$T/c/$W" $off
    expect 1 --err "modified file: $W (modified 1, missing 0, extra 0, renamed 0)" -- \
      "$CRETO" model verify "$T/c" --manifest "$man"
  done
  fresh; truncate -s -1 "$T/c/$W"
  expect 1 --err "modified file: $W" -- "$CRETO" model verify "$T/c" --manifest "$man"
  fresh; mv "$T/c/tokenizer.json" "$T/c/tokenizer2.json"
  expect 1 --err "renamed file: tokenizer.json -> tokenizer2.json (modified 0, missing 0, extra 0, renamed 1)" -- \
    "$CRETO" model verify "$T/c" --manifest "$man"
done
for man in "$M/manifest.json"; do
  fresh; rm "$T/c/config.json"
  expect 1 --err "missing file: config.json (modified 0, missing 1, extra 0, renamed 0)" -- \
    "$CRETO" model verify "$T/c" --manifest "$man"
  fresh; echo 'import os' >"$T/c/extra.py"
  expect 1 --err "extra file: extra.py (modified 0, missing 0, extra 1, renamed 0)" -- \
    "$CRETO" model verify "$T/c" --manifest "$man"
  fresh; ln -s /etc/passwd "$T/c/escape"
  expect 1 --err "escape: symlink refused" -- "$CRETO" model verify "$T/c" --manifest "$man"
  fresh; echo 'x' >"$T/c/a.txt"; rm "$T/c/config.json"; echo y >"$T/c/zz"
  expect 1 --err "modified file: a.txt (modified 1, missing 1, extra 1, renamed 0)" -- \
    "$CRETO" model verify "$T/c" --manifest "$man"
done
# an extra empty file (files mode lists empty files; shards mode cannot, see docs)
fresh; : >"$T/c/__init__.py"
expect 1 --err "extra file: __init__.py" -- "$CRETO" model verify "$T/c" --manifest "$M/manifest.json"
# an emptied file
fresh; : >"$T/c/config.json"
expect 1 --err "modified file: config.json" -- "$CRETO" model verify "$T/c" --manifest "$M/manifest.json"
# JSON report of a rejection
fresh; rm "$T/c/a/b"
expect 1 --err "missing file: a/b" --out '"missing": 1' -- "$CRETO" model verify "$T/c" --manifest "$M/manifest.json" --json
grep -q '"path": "a/b"' "$T/.out" && ok || fail "json first path"

# ---- symlinks -------------------------------------------------------------------
fresh; ln -s config.json "$T/c/link.json"
expect 1 --err "link.json: symlink refused (--allow-symlinks not given)" -- "$CRETO" model hash "$T/c"
ln -s ../../etc/passwd "$T/c/weights/up"
expect 1 --err "weights/up: symlink resolves outside the model root" -- "$CRETO" model hash "$T/c" --allow-symlinks
rm "$T/c/weights/up"; ln -s /etc/passwd "$T/c/abs"
expect 1 --err "abs: symlink resolves outside the model root" -- "$CRETO" model hash "$T/c" --allow-symlinks
rm "$T/c/abs"; ln -s "$T/model/config.json" "$T/c/absout"
expect 1 --err "absout: symlink resolves outside the model root" -- "$CRETO" model hash "$T/c" --allow-symlinks
rm "$T/c/absout"; ln -s weights "$T/c/wdir"
expect 1 --err "wdir: symlink to something other than a regular file" -- "$CRETO" model hash "$T/c" --allow-symlinks
rm "$T/c/wdir"; ln -s missing "$T/c/dangling"
expect 1 --err "dangling: dangling symlink" -- "$CRETO" model hash "$T/c" --allow-symlinks
rm "$T/c/dangling"
expect 0 -- "$CRETO" model manifest "$T/c" -o "$T/sym.json" --allow-symlinks
python3 -c "
import json,sys
m=json.load(open(sys.argv[1])); r={x['name'].rsplit(':',2)[0]:x['digest'] for x in m['predicate']['resources']}
assert r['link.json']==r['config.json'] and m['predicate']['serialization']['allow_symlinks'] is True
" "$T/sym.json" && ok || fail "allowed inner symlink hashed as its target"
expect 0 -- "$CRETO" model verify "$T/c" --manifest "$T/sym.json"
ln -s /etc/hostname "$T/c/later"
expect 1 --err "later: symlink resolves outside the model root" -- "$CRETO" model verify "$T/c" --manifest "$T/sym.json"

# ---- refused directory contents ---------------------------------------------------
fresh; touch "$T/c/$(printf 'bad\xff.bin')"
expect 1 --err 'bad\xff.bin: file name is not valid UTF-8' -- "$CRETO" model hash "$T/c"
fresh; mkfifo "$T/c/fifo"
expect 1 --err "fifo: not a regular file or directory" -- "$CRETO" model hash "$T/c"

# ---- a file written while it is verified ---------------------------------------
# rewritten in place, same size, by a concurrent writer: exit 3 naming the
# file, never "verified" and never "modified" (bounded: the writer stops
# with verify)
fresh; head -c $((96 * 1024 * 1024)) /dev/zero >"$T/c/big.bin"
expect 0 -- "$CRETO" model manifest "$T/c" -o "$T/chg.json"
( i=0; while [ ! -e "$T/chg.stop" ] && [ $i -lt 100000 ]; do
    printf '%02x' $((i % 256)) | dd of="$T/c/big.bin" bs=2 seek=$((i * 4099 % 1000000)) conv=notrunc status=none
    i=$((i + 1)); done ) &
WPID=$!
sleep 0.2
expect 3 --err "big.bin: changed while being verified" -- "$CRETO" model verify "$T/c" --manifest "$T/chg.json" --threads 2
touch "$T/chg.stop"; wait "$WPID"; rm -f "$T/chg.stop" "$T/c/big.bin"

# ---- ignores -------------------------------------------------------------------
fresh; echo x >"$T/c/notes.md"; mkdir -p "$T/c/logs"; echo x >"$T/c/logs/run.log"
expect 0 -- "$CRETO" model hash "$T/c" --ignore notes.md --ignore "$T/c/logs/"
a=$OUT
rm -rf "$T/c/notes.md" "$T/c/logs"
expect 0 --out "$a" -- "$CRETO" model hash "$T/c"
echo x >"$T/c/notes.md"
expect 0 -- "$CRETO" model manifest "$T/c" -o "$T/ign.json" --ignore notes.md
echo changed >"$T/c/notes.md"
expect 0 -- "$CRETO" model verify "$T/c" --manifest "$T/ign.json"
# an unsigned manifest may not widen the ignores on its own under --expect
expect 0 -- "$CRETO" model hash "$T/c" --ignore notes.md
a=$OUT
expect 1 --err "ignore_paths entry 'notes.md' not confirmed" -- "$CRETO" model verify "$T/c" --manifest "$T/ign.json" --expect "$a"
expect 0 -- "$CRETO" model verify "$T/c" --manifest "$T/ign.json" --expect "$a" --ignore notes.md
# nor choose how the directory is read: with sha256 shards an empty file
# adds no digest, so such an unsigned manifest pinned by --expect is refused
"$CRETO" model manifest "$M" -o "$T/shards2.json" --method shards --shard-size 65536 --hash sha256 >/dev/null
SHD=$("$CRETO" model hash "$M" --method shards --shard-size 65536 --hash sha256)
expect 1 --err "method shards not confirmed" -- "$CRETO" model verify "$M" --manifest "$T/shards2.json" --expect "$SHD"
expect 0 -- "$CRETO" model verify "$M" --manifest "$T/shards2.json"
# a sha3-256 root binds method, shard size and every file: --expect pins it
"$CRETO" model manifest "$M" -o "$T/shards3.json" --method shards --shard-size 65536 >/dev/null
SHD=$("$CRETO" model hash "$M" --method shards --shard-size 65536)
expect 0 -- "$CRETO" model verify "$M" --manifest "$T/shards3.json" --expect "$SHD"
# ... and an added empty file is seen (a sha256 shards manifest cannot see it)
rm -rf "$T/c"; cp -a "$M" "$T/c"; : >"$T/c/__init__.py"
expect 1 --err "extra file: __init__.py" -- "$CRETO" model verify "$T/c" --manifest "$T/shards3.json" --expect "$SHD"
expect 0 -- "$CRETO" model verify "$T/c" --manifest "$T/shards2.json"

# ---- untrusted manifests ----------------------------------------------------------
edit() { python3 -c "import sys; s=open(sys.argv[1]).read(); open(sys.argv[2],'w').write($1)" "$M/manifest.json" "$T/bad.json"; }
python3 - "$M/manifest.json" "$T/bad.json" <<'PY'
import json,sys
m=json.load(open(sys.argv[1]))
d=m['predicate']['resources'][0]['digest']
m['predicate']['resources'][0]['digest']=('1' if d[0]!='1' else '2')+d[1:]
json.dump(m,open(sys.argv[2],'w'))
PY
expect 1 --err "does not match the root digest" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
edit "s.replace('\"predicateType\"', '\"_type\": \"x\", \"predicateType\"', 1)"
expect 1 --err "duplicate" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
edit "s + '{}'"
expect 1 --err "invalid JSON" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
edit "s.replace('\"name\": \"a-b', '\"name\": \"../a-b', 1)"
expect 1 --err "not a clean relative path" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
edit "s.replace('\"hash_type\": \"sha3-256\"', '\"hash_type\": \"md5\"', 1)"
expect 1 --err "hash_type: unsupported" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
edit "s.replace('\"method\": \"shards\"', '\"method\": \"shards\", \"evil\": 1', 1)"
expect 1 --err "unexpected field 'evil'" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
python3 - "$M/manifest.json" "$T/bad.json" <<'PY'
import json,sys
m=json.load(open(sys.argv[1])); r=m['predicate']['resources']; r[0],r[1]=r[1],r[0]
json.dump(m,open(sys.argv[2],'w'))
PY
expect 1 --err "not in canonical order" -- "$CRETO" model verify "$M" --manifest "$T/bad.json"
head -c $((65 * 1024 * 1024)) /dev/zero >"$T/big.json"
expect 1 --err "larger than" -- "$CRETO" model verify "$M" --manifest "$T/big.json"
rm -f "$T/big.json"
# protobuf-made JSON writes integers as floats: accepted
python3 -c "
import sys; s=open(sys.argv[1]).read(); open(sys.argv[2],'w').write(s.replace('\"shard_size\": $SH', '\"shard_size\": $SH.0'))" "$T/sm.json" "$T/float.json"
grep -q "$SH.0" "$T/float.json" && ok || fail "float edit"
expect 0 -- "$CRETO" model verify "$M" --manifest "$T/float.json"

# ---- usage and operational errors ------------------------------------------------
expect 2 -- "$CRETO" model hash
expect 2 -- "$CRETO" model hash "$M" --hash md5
expect 2 -- "$CRETO" model hash "$M" --shard-size 10
expect 2 -- "$CRETO" model hash "$M" --method shards --shard-size 0
expect 2 -- "$CRETO" model hash "$M" --ignore ../x
expect 2 -- "$CRETO" model hash "$M/config.json"
expect 2 -- "$CRETO" model manifest "$M"
expect 2 -- "$CRETO" model verify "$M"
expect 2 -- "$CRETO" model verify "$M" --manifest "$M/manifest.json" --hash sha256
expect 2 -- "$CRETO" model verify "$M" --manifest "$M/manifest.json" --expect nope
expect 3 -- "$CRETO" model hash "$T/does-not-exist"
expect 3 -- "$CRETO" model verify "$M" --manifest "$T/does-not-exist.json"
expect 0 --out '"files": 11' -- "$CRETO" model hash "$M" --json
expect 0 --out "usage: creto model verify" -- "$CRETO" model verify --help
finish
