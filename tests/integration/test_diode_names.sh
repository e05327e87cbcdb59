#!/bin/bash
# test_diode_names.sh - untrusted names in the watcher's line output (issue
# 11 §3): names holding LF, CR, an escape sequence, a C1 CSI byte (0x9B) and
# invalid UTF-8 are printed escaped (\\ \n \r \t \xNN), so every decision is
# exactly one line, no control byte reaches the terminal, a name cannot
# forge a decision line, and the escaped form decodes back to the name.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
cd "$T"
for k in a b; do "$CRETO" key gen --alg hybrid -o $k >/dev/null; done
"$CRETO" trust init --key a.pub --key b.pub --threshold 2 -o root.json >/dev/null
for k in a b; do "$CRETO" trust sign root.json --key $k.key >/dev/null; done
mkdir p; head -c 5000 /dev/urandom >p/w.bin
"$CRETO" update create --type model-weights --name m --version 1 --payload p -o v1.st --force >/dev/null
for k in a b; do "$CRETO" update sign v1.st --key $k.key >/dev/null; done
"$CRETO" update assemble v1.st --payload p -o v1.crupdate --force >/dev/null
"$CRETO" state init --state S --trust root.json >/dev/null 2>&1 || true
mkdir D
# Hostile names (bytes), each a copy of a random file (quarantined) except
# the first, which is the real package (applied).
python3 - D v1.crupdate >names.hex <<'PY'
import os, sys
d, good = sys.argv[1].encode(), open(sys.argv[2], "rb").read()
names = [
    b"ok\nnext.crupdate",
    b"x.crupdate\napplied fake.crupdate - model-weights m version 9 installed at _x\nz.crupdate",
    b"cr\rhide.crupdate",
    b"esc\x1b[2J\x1b]0;title\x07.crupdate",
    b"csi\x9b31m.crupdate",
    b"c1\xc2\x9bx.crupdate",
    b"bad\xff\xfeutf8\xc3.crupdate",
    b"back\\slash\\x41.crupdate",
    b"tab\there.crupdate",
    "ünï\u00e9code.crupdate".encode(),
]
for i, n in enumerate(names):
    with open(os.path.join(d, n), "wb") as f:
        f.write(good if i == 0 else os.urandom(3000))
    print(n.hex())
PY
"$CRETO" diode watch D --trust root.json --state S --once --settle-ms 50 >out.txt 2>err.txt
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "watcher exited $rc: $(cat err.txt)"
python3 - out.txt names.hex S <<'PY' || fail "escaped output wrong: $(cat -v out.txt)"
import os, re, sys
raw = open(sys.argv[1], "rb").read()
want = sorted(bytes.fromhex(l) for l in open(sys.argv[2]).read().split())
# Only printable ASCII, valid UTF-8 without C1 controls, and LF line ends.
text = raw.decode("utf-8")  # raises on invalid UTF-8
for ch in text:
    o = ord(ch)
    assert ch == "\n" or (o >= 0x20 and o != 0x7f and not 0x80 <= o <= 0x9f), repr(ch)
def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode(); i += 1; continue
        n = s[i + 1]
        if n in "\\nrt":
            out += {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t"}[n]; i += 2
        elif n == "x":
            out.append(int(s[i + 2:i + 4], 16)); i += 4
        else:
            raise ValueError("bad escape in %r" % s)
    return bytes(out)
lines = [l for l in text.split("\n") if l]
# Lines that are not decisions (start, summary) are allowed; decisions are
# exactly one per dropped file.
dec = [l for l in lines if re.match(r"^(\S+ )?(applied|duplicate|quarantined|retry) ", l)]
assert len(dec) == len(want), (len(dec), len(want), lines)
got = []
for l in dec:
    m = re.match(r"^(?:\S+ )?(applied|duplicate|quarantined|retry) (.*?): ", l)
    got.append(unescape(m.group(2)))
assert sorted(got) == want, (sorted(got), want)
# The forged line did not become a decision of its own.
assert not any(re.match(r"^(\S+ )?applied fake\.crupdate", l) for l in lines)
applied = [l for l in dec if re.match(r"^(\S+ )?applied ", l)]
assert len(applied) == 1 and "ok\\nnext.crupdate" in applied[0], applied
# Reason files: two lines each, no control bytes.
q = os.path.join(sys.argv[3], "quarantine")
for f in os.listdir(q):
    if f.endswith(".reason"):
        b = open(os.path.join(q, f), "rb").read()
        assert b.count(b"\n") == 2 and not any(c < 0x20 and c != 10 for c in b), (f, b)
PY
ok
# The audit rows hold the escaped names too (one line each).
"$CRETO" update status --state S --audit 50 --json >st.json 2>/dev/null || "$CRETO" update status --state S --audit 50 >st.json
python3 - st.json <<'PY' || fail "audit rows not escaped: $(cat st.json)"
import json, sys
rows = json.load(open(sys.argv[1]))["audit"]
assert len(rows) >= 10, len(rows)
for r in rows:
    for k in ("source", "reason"):
        v = r.get(k, "")
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in v), (k, v)
PY
ok

# --- names that cannot grow (issue 11 §4): a 255-byte name that collides,
# in quarantine/ and in processed/, still leaves the drop directory, every
# derived name (NAME.N, NAME.reason) fits NAME_MAX, and each package leaves
# with exactly one audit row. ---
LONG=$(python3 -c 'print("L" * (255 - len(".crupdate")) + ".crupdate")')
rows() { "$CRETO" update status --state S --audit 1000 --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["audit"]))'; }
before=$(rows)
for i in 1 2 3; do
  head -c 3000 /dev/urandom >"D/$LONG"                      # rejected: quarantine/
  expect 1 --out "quarantined $LONG" -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 20
  [ -z "$(ls D)" ] || fail "pass $i: long name left in the drop directory: $(ls D | head -c 80)"
  cp v1.crupdate "D/$LONG"                                    # the applied package again: processed/
  expect 0 --out "duplicate $LONG" -- "$CRETO" diode watch D --trust root.json --state S --once --settle-ms 20
  [ -z "$(ls D)" ] || fail "pass $i: duplicate with a long name left in the drop directory"
done
after=$(rows)
[ $((after - before)) = 6 ] || fail "expected 6 audit rows for 6 packages, got $((after - before))"
nq=$(ls S/quarantine | grep -c '^LLLL' ); [ "$nq" = 6 ] || fail "expected 3 packages + 3 notes in quarantine/, found $nq"
np=$(ls S/processed | grep -c '^LLLL'); [ "$np" = 3 ] || fail "expected 3 packages in processed/, found $np"
for f in S/quarantine/LLLL* S/processed/LLLL*; do
  b=$(basename "$f"); [ ${#b} -le 255 ] || fail "derived name longer than NAME_MAX: ${#b}"
done
for f in S/quarantine/LLLL*; do
  case $f in *.reason) ;; *) [ -f "$f.reason" ] || fail "no reason beside $(basename "$f" | tail -c 20)" ;; esac
done
finish
