#!/usr/bin/env python3
"""audit_check.py - an independent verifier of a creto audit log, written
from docs/audit.md alone: Python hashlib for the RFC 6962 tree, the C2SP
signed-note rules for checkpoints, and `openssl pkeyutl` for the Ed25519
signatures.  Prints "OK <size>" and exits 0, or "BAD <reason>" and exits 1.

usage: audit_check.py DIR_OR_EXPORT PUBFILE [KEPT_CHECKPOINT]
"""
import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile


def h(b):
    return hashlib.sha256(b).digest()


def mth(leaves):
    if not leaves:
        return h(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def bad(msg):
    print("BAD " + msg)
    sys.exit(1)


def load(path):
    if os.path.isdir(path):
        db = sqlite3.connect("file:%s/audit.db?mode=ro" % path, uri=True)
        origin = db.execute("SELECT v FROM meta WHERE k='origin'").fetchone()[0]
        rows = db.execute("SELECT seq, entry FROM entries ORDER BY seq").fetchall()
        cps = [bytes(r[0]) for r in db.execute("SELECT note FROM checkpoints ORDER BY size")]
        if rows and rows[0][0] != 0:
            bad("archived log: check its export instead")
        return origin, [bytes(r[1]) for r in rows], cps
    entries, cps = [], []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] != b"":
        bad("export does not end with a newline")
    head = json.loads(lines[0])
    if head["start"] != 0:
        bad("export does not start at 0")
    for ln in lines[1:-1]:
        if ln.startswith(b'{"checkpoint":'):
            cps.append(json.loads(ln)["checkpoint"].encode())
        else:
            entries.append(ln)
    return head["origin"], entries, cps


def check_entry(i, raw, prev_time):
    d = json.loads(raw)
    if list(d) != sorted(d):
        bad("entry %d: keys not sorted" % i)
    again = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if again != raw:
        bad("entry %d: not canonical" % i)
    if d["seq"] != i:
        bad("entry %d: seq %d" % (i, d["seq"]))
    if d["time"] < prev_time:
        bad("entry %d: time went back" % i)
    return d["time"]


def check_sig(note, origin, pk):
    text, sigs = note.rsplit(b"\n\n", 1)
    text += b"\n"
    kid = h(origin.encode() + b"\n\x01" + pk)[:4]
    spki = bytes.fromhex("302a300506032b6570032100") + pk
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki) + b"\n-----END PUBLIC KEY-----\n"
    for line in sigs.split(b"\n"):
        if not line:
            continue
        name, blob = line[len("\u2014 ".encode()):].split(b" ")
        blob = base64.b64decode(blob)
        if name.decode() != origin or blob[:4] != kid:
            continue
        with tempfile.TemporaryDirectory() as t:
            for n, b in (("pk.pem", pem), ("msg", text), ("sig", blob[4:])):
                with open(os.path.join(t, n), "wb") as f:
                    f.write(b)
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                                os.path.join(t, "pk.pem"), "-rawin", "-in", os.path.join(t, "msg"),
                                "-sigfile", os.path.join(t, "sig")], capture_output=True)
            return r.returncode == 0
    return False


def main():
    path, pubfile = sys.argv[1], sys.argv[2]
    pk = base64.b64decode(open(pubfile).read().split("\n")[2])
    origin, entries, cps = load(path)
    t = 0
    for i, raw in enumerate(entries):
        t = check_entry(i, raw, t)
    leaves = [h(b"\x00" + e) for e in entries]
    if len(sys.argv) > 3:
        cps.append(open(sys.argv[3], "rb").read())
    for note in cps:
        lines = note.split(b"\n")
        if lines[0].decode() != origin:
            bad("checkpoint of another origin")
        size = int(lines[1])
        if size > len(leaves):
            bad("checkpoint of size %d beyond %d entries" % (size, len(leaves)))
        if base64.b64decode(lines[2]) != mth(leaves[:size]):
            bad("checkpoint of size %d: root mismatch" % size)
        if not check_sig(note, origin, pk):
            bad("checkpoint of size %d: signature" % size)
    print("OK %d" % len(entries))


main()
