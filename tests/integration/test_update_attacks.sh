#!/bin/bash
# test_update_attacks.sh - every attack of the update threat model (issue 5)
# is refused with exit 1 and one stderr line naming the rule; the honest
# path is accepted.  Packages are built with the real CLI and doctored with
# GNU tar (ustar) and python3 where an attacker would.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"

for k in a b c d; do "$CRETO" key gen --alg hybrid -o $k >/dev/null || fail "key gen $k"; done
"$CRETO" key gen --alg ed25519 -o e >/dev/null || fail "key gen ed25519"
# Root: a, b, c (+ the ed25519 key e in the model role); threshold 2;
# policy role only c with threshold 1 (a key of the wrong role test).
expect 0 -- "$CRETO" trust init --key a.pub --key b.pub --key c.pub --key e.pub --threshold 2 \
  --role model-weights=1,2,3,4:2 --role policy=3:1 --role root=1,2,3:2 --role cert-rotation=1,2,3:2 \
  --role software-package=1,2,3:2 -o root.json
: >empty.crupdate
expect 1 --err "signature threshold" -- "$CRETO" update verify empty.crupdate --trust root.json
expect 1 --err "container: /dev/null is a device" -- "$CRETO" update verify /dev/null --trust root.json
for k in a b; do expect 0 -- "$CRETO" trust sign root.json --key $k.key; done
expect 1 --err "already signed" -- "$CRETO" trust sign root.json --key a.key
expect 1 --err "not in the root role" -- "$CRETO" trust sign root.json --key d.key

mkdir -p pl/sub
head -c 300000 /dev/urandom >pl/weights.bin
echo '{"arch":"tiny"}' >pl/config.json
echo hello >pl/sub/tok.txt
# mk NAME VERSION [signers...]: statement + signatures + package NAME.crupdate
mk() {
  local n=$1 v=$2; shift 2
  rm -f "$n.statement" "$n.statement.sigs"
  "$CRETO" update create --type model-weights --name llama --version "$v" --shard-size 65536 \
    ${EXTRA_CREATE:-} --payload pl -o "$n.statement" >/dev/null || fail "create $n"
  for k in "$@"; do "$CRETO" update sign "$n.statement" --key "$k.key" >/dev/null || fail "sign $n $k"; done
  "$CRETO" update assemble "$n.statement" --payload pl -o "$n.crupdate" --force >/dev/null || fail "assemble $n"
}
# explode PKG DIR: members into DIR (statement.json, signatures.json, payload/...)
explode() { rm -rf "$2"; mkdir -p "$2"; tar -xf "$1" -C "$2"; }
# repack DIR OUT MEMBERS...: a ustar in the given member order
repack() { local d=$1 o=$2; shift 2; tar --format=ustar -cf "$o" -C "$d" "$@"; }
MEMBERS="statement.json signatures.json payload/config.json payload/sub/tok.txt payload/weights.bin"

# --- honest package: verify and inspect; 1, 2, 3 of 3 against thresholds ---
mk good 1 a b
expect 0 --out "verified model-weights llama version 1" -- "$CRETO" update verify good.crupdate --trust root.json
tar tvf good.crupdate >/dev/null || fail "tar tvf cannot list a package"
expect 0 --out "signed by" -- "$CRETO" update inspect good.crupdate
expect 0 --out '"signed_by"' -- "$CRETO" update inspect good.crupdate --json

# --- arbitrary package ---
head -c 5000 /dev/urandom >random.crupdate
expect 1 --err "container" -- "$CRETO" update verify random.crupdate --trust root.json
# --- too few signatures / key compromise below threshold ---
mk one 1 c
expect 1 --err "signature threshold: 1 valid distinct signature of role model-weights, 2 required" -- \
  "$CRETO" update verify one.crupdate --trust root.json
# --- one key counted twice ---
expect 1 --err "already signed" -- "$CRETO" update sign one.statement --key c.key
python3 - one.statement.sigs <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["signatures"].append(d["signatures"][0])
open(sys.argv[1], "w").write(json.dumps(d))
PY
"$CRETO" update assemble one.statement --payload pl -o twice.crupdate --force >/dev/null
expect 1 --err "signed twice, counted once" -- "$CRETO" update verify twice.crupdate --trust root.json
# --- unknown key ---
mk unk 1 a d
expect 1 --err "unknown to the trust root" -- "$CRETO" update verify unk.crupdate --trust root.json
# --- wrong role: c alone may sign policy (threshold 1) but model-weights needs 2 ---
mk role 1 c
cp role.statement pol.json
expect 1 --err "signature threshold" -- "$CRETO" update verify role.crupdate --trust root.json
EXTRA_CREATE="" 
"$CRETO" update create --type policy --name pol --version 1 --payload pl/config.json -o pol.statement --force >/dev/null
"$CRETO" update sign pol.statement --key a.key >/dev/null
"$CRETO" update assemble pol.statement --payload pl/config.json -o pol.crupdate --force >/dev/null
expect 1 --err "not in role policy" -- "$CRETO" update verify pol.crupdate --trust root.json
"$CRETO" update sign pol.statement --key c.key >/dev/null
"$CRETO" update assemble pol.statement --payload pl/config.json -o pol.crupdate --force >/dev/null
expect 0 -- "$CRETO" update verify pol.crupdate --trust root.json
# --- threshold from the package: a threshold field in the signatures part ---
explode one.crupdate x
python3 - x/signatures.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["threshold"] = 1
open(sys.argv[1], "w").write(json.dumps(d))
PY
repack x thr.crupdate $MEMBERS
expect 1 --err "unknown field threshold" -- "$CRETO" update verify thr.crupdate --trust root.json
# --- a hybrid key and a classical key together meet the threshold ---
mk mixed 1 a e
expect 0 -- "$CRETO" update verify mixed.crupdate --trust root.json

# --- substituted payload (same size, other bytes) ---
explode good.crupdate x
flip x/payload/weights.bin 200000
repack x subst.crupdate $MEMBERS
expect 1 --err "digest: payload file weights.bin shard 4 of 5 does not match" -- \
  "$CRETO" update verify subst.crupdate --trust root.json
# --- mix-and-match: statement of one package, payload of another ---
cp -r pl pl.keep; head -c 300000 /dev/urandom >pl/weights.bin
mk other 2 a b
explode good.crupdate x; explode other.crupdate y
cp y/payload/weights.bin x/payload/weights.bin
repack x mix.crupdate $MEMBERS
expect 1 --err "digest: payload file weights.bin" -- "$CRETO" update verify mix.crupdate --trust root.json
cp x/signatures.json y/signatures.json   # signatures of A on statement of B
repack y mix2.crupdate $MEMBERS
expect 1 --err "signature threshold: 0 valid" -- "$CRETO" update verify mix2.crupdate --trust root.json
rm -rf pl; mv pl.keep pl
# --- reordered members ---
explode good.crupdate x
repack x order.crupdate statement.json signatures.json payload/sub/tok.txt payload/config.json payload/weights.bin
expect 1 --err "order: member payload/sub/tok.txt" -- "$CRETO" update verify order.crupdate --trust root.json
repack x first.crupdate signatures.json statement.json payload/config.json payload/sub/tok.txt payload/weights.bin
expect 1 --err "container: member signatures.json where statement.json was expected" -- \
  "$CRETO" update verify first.crupdate --trust root.json
# --- path traversal and absolute paths in the container ---
explode good.crupdate x
python3 - good.crupdate trav.crupdate abs.crupdate <<'PY'
import sys, tarfile, io
for out, bad in ((sys.argv[2], "payload/../../../tmp/evil"), (sys.argv[3], "/etc/evil")):
    src = tarfile.open(sys.argv[1])
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "payload/config.json":
                m.name = bad
            t.addfile(m, io.BytesIO(data))
PY
expect 1 --err "order: member payload/../../../tmp/evil" -- "$CRETO" update verify trav.crupdate --trust root.json
expect 1 --err "order: member /etc/evil" -- "$CRETO" update verify abs.crupdate --trust root.json
# --- symlink, hard link, FIFO, device, directory members ---
explode good.crupdate x
rm x/payload/config.json; ln -s /etc/passwd x/payload/config.json
repack x sym.crupdate $MEMBERS
expect 1 --err "member type: payload/config.json is a symbolic link" -- "$CRETO" update verify sym.crupdate --trust root.json
explode good.crupdate x
rm x/payload/sub/tok.txt; ln x/payload/config.json x/payload/sub/tok.txt
repack x hard.crupdate $MEMBERS
tar tvf hard.crupdate | grep -q "link to" || fail "tar did not store a hard link"
expect 1 --err "member type: payload/sub/tok.txt is a hard link" -- "$CRETO" update verify hard.crupdate --trust root.json
explode good.crupdate x
rm x/payload/config.json; mkfifo x/payload/config.json
repack x fifo.crupdate $MEMBERS
expect 1 --err "member type: payload/config.json is a FIFO" -- "$CRETO" update verify fifo.crupdate --trust root.json
if [ "$(id -u)" = 0 ]; then
  explode good.crupdate x
  rm x/payload/config.json; mknod x/payload/config.json c 1 3
  repack x dev.crupdate $MEMBERS
  expect 1 --err "is a character device" -- "$CRETO" update verify dev.crupdate --trust root.json
fi
explode good.crupdate x
repack x dir.crupdate statement.json signatures.json payload/sub payload/config.json
expect 1 --err "member type: payload/sub/ is a directory" -- "$CRETO" update verify dir.crupdate --trust root.json
# --- duplicate names ---
explode good.crupdate x
python3 - good.crupdate dup.crupdate <<'PY'
import sys, tarfile, io
src = tarfile.open(sys.argv[1])
with tarfile.open(sys.argv[2], "w", format=tarfile.USTAR_FORMAT) as t:
    for m in src.getmembers():
        data = src.extractfile(m).read()
        if m.name == "payload/sub/tok.txt":
            m = src.getmember("payload/config.json"); data = src.extractfile(m).read()
        t.addfile(m, io.BytesIO(data))
PY
expect 1 --err "duplicate name: member payload/config.json appears twice" -- "$CRETO" update verify dup.crupdate --trust root.json
# --- endless data: a member larger than the statement says, a huge statement ---
explode good.crupdate x
head -c 1000 /dev/zero >>x/payload/config.json
repack x big.crupdate $MEMBERS
expect 1 --err "size: member payload/config.json is 1016 bytes, the statement says 16" -- \
  "$CRETO" update verify big.crupdate --trust root.json
python3 - huge.crupdate <<'PY'
import sys, tarfile
ti = tarfile.TarInfo("statement.json"); ti.size = 8 * 1024**3 - 1
open(sys.argv[1], "wb").write(ti.tobuf(format=tarfile.USTAR_FORMAT))
PY
expect 1 --err "size: statement.json is 8589934591 bytes, at most 4194304 allowed" -- \
  "$CRETO" update verify huge.crupdate --trust root.json
# --- truncated and trailing garbage ---
sz=$(stat -c %s good.crupdate)
head -c $((sz - 2000)) good.crupdate >trunc.crupdate
expect 1 --err "truncated" -- "$CRETO" update verify trunc.crupdate --trust root.json
head -c 700 good.crupdate >trunc2.crupdate
expect 1 --err "truncated" -- "$CRETO" update verify trunc2.crupdate --trust root.json
cp good.crupdate trail.crupdate; echo garbage >>trail.crupdate
expect 1 --err "trailing data" -- "$CRETO" update verify trail.crupdate --trust root.json
cp good.crupdate trail2.crupdate; head -c 20480 /dev/zero >>trail2.crupdate
expect 1 --err "trailing data" -- "$CRETO" update verify trail2.crupdate --trust root.json

# --- state: replay, rollback, fast-forward ---
expect 2 --err "state directory S does not exist" -- "$CRETO" update apply good.crupdate --trust root.json --state S
[ ! -e S ] || fail "apply created a state directory"
expect 0 -- "$CRETO" state init --state S --trust root.json
expect 0 --out "applied model-weights llama version 1" -- "$CRETO" update apply good.crupdate --trust root.json --state S
[ "$(readlink S/models/llama/current)" = 1 ] || fail "current link not at 1"
cmp -s pl/weights.bin S/models/llama/1/weights.bin || fail "installed file differs"
expect 1 --err "replay: statement" -- "$CRETO" update apply good.crupdate --trust root.json --state S
expect 1 --err "replay" -- "$CRETO" update verify good.crupdate --trust root.json --state S
mk v3 3 a b
expect 0 -- "$CRETO" update apply v3.crupdate --trust root.json --state S
mk v2 2 a b
expect 1 --err "rollback: model-weights llama version 2 is not newer than installed version 3" -- \
  "$CRETO" update apply v2.crupdate --trust root.json --state S
mk v99 99 a b
expect 1 --err "fast-forward: model-weights llama version 99 jumps more than 10 past installed version 3" -- \
  "$CRETO" update apply v99.crupdate --trust root.json --state S
[ "$(readlink S/models/llama/current)" = 3 ] || fail "current moved after rejections"
n=$("$CRETO" update status --state S --audit 100 --json | grep -cE '"decision": "(rejected|duplicate)"')
[ "$n" -ge 3 ] || fail "rejections not audited ($n rows)"

# --- freeze: expiry against the clock and against the trusted time floor ---
now=$(date +%s)
EXTRA_CREATE="--expires $(date -u -d @$((now + 86400)) +%Y-%m-%dT%H:%M:%SZ)" mk exp 4 a b
expect 1 --err "expired: statement expired at" -- env CRETO_TEST_NOW=$((now + 2 * 86400)) \
  "$CRETO_TEST_BIN" update verify exp.crupdate --trust root.json
# A statement created two days ahead raises the floor; the clock set back
# does not bring an expired statement back to life.
CRETO=$CRETO_TEST_BIN CRETO_TEST_NOW=$((now + 2 * 86400)) EXTRA_CREATE="" mk fut 4 a b
expect 0 -- env CRETO_TEST_NOW=$((now + 2 * 86400)) "$CRETO_TEST_BIN" update apply fut.crupdate --trust root.json --state S
EXTRA_CREATE="--expires $(date -u -d @$((now + 86400)) +%Y-%m-%dT%H:%M:%SZ)" mk exp5 5 a b
expect 1 --err "trusted time" -- "$CRETO" update verify exp5.crupdate --trust root.json --state S
expect 0 -- "$CRETO" update verify exp5.crupdate --trust root.json
finish
