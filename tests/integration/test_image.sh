#!/bin/bash
# test_image.sh - `make image`'s recipe (deploy/image/build.sh): builds the
# OCI archive with buildah and inspects it: entrypoint, user, labels, no
# shell, and every shared library the binary needs (recursively, by ELF
# DT_NEEDED) present inside the image.  Skips (77) with the reason when
# buildah is missing or cannot run here.  Running the image is not tested:
# podman/containers may not run on CI machines (reason printed).
. "$(dirname "$0")/lib.sh"
command -v buildah >/dev/null || skip "buildah missing (apt-get install buildah skopeo)"
command -v skopeo >/dev/null || skip "skopeo missing (apt-get install skopeo)"
command -v readelf >/dev/null || skip "readelf missing (binutils)"
buildah from scratch >"$T/probe" 2>"$T/probe.err" || skip "buildah cannot run here: $(tail -1 "$T/probe.err")"
buildah rm "$(cat "$T/probe")" >/dev/null 2>&1 || true

expect 0 --out "wrote" -- "$CRETO_SRC_DIR/deploy/image/build.sh" "$CRETO" "$T/creto.tar" 9.8.7
[ -s "$T/creto.tar" ] || { fail "no archive"; finish; }

skopeo inspect --config "oci-archive:$T/creto.tar" >"$T/config.json" 2>"$T/err" && ok || fail "skopeo: $(cat "$T/err")"
python3 - "$T/config.json" <<'PY' && ok || fail "image config: $(head -c 600 "$T/config.json")"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["Entrypoint"] == ["/usr/bin/creto"], c.get("Entrypoint")
assert c["User"] == "10001:10001", c.get("User")
l = c["Labels"]
assert l["org.opencontainers.image.title"] == "creto" and l["org.opencontainers.image.version"] == "9.8.7", l
PY

# The image's file system: unpack the layers of the OCI layout.
mkdir -p "$T/oci" "$T/root"
tar -xf "$T/creto.tar" -C "$T/oci"
python3 - "$T/oci" "$T/root" <<'PY' && ok || fail "unpack"
import json, os, subprocess, sys
oci, root = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(oci, "blobs", *d.split(":"))
idx = json.load(open(os.path.join(oci, "index.json")))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
for layer in man["layers"]:
    subprocess.run(["tar", "-xf", blob(layer["digest"]), "-C", root], check=True)
PY
[ -x "$T/root/usr/bin/creto" ] && ok || fail "no /usr/bin/creto in the image"
for sh in bin/sh bin/bash usr/bin/sh bin/busybox; do
  [ -e "$T/root/$sh" ] && fail "the image has a shell: /$sh"
done
ok
grep -q '^creto:x:10001:10001:' "$T/root/etc/passwd" && ok || fail "no user 10001 in /etc/passwd"
# every DT_NEEDED of the binary and of each library it pulls in is in the image
python3 - "$T/root" <<'PY' && ok || fail "missing libraries in the image"
import os, re, subprocess, sys
root = sys.argv[1]
dirs = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib",
        "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"]
def find(name):
    for d in dirs:
        p = os.path.join(root, d, name)
        if os.path.exists(p):
            return p
    return None
todo, seen, missing = [os.path.join(root, "usr/bin/creto")], set(), []
while todo:
    f = todo.pop()
    out = subprocess.run(["readelf", "-d", "-l", f], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requesting program interpreter: (\S+)\]", out)
    if m and not os.path.exists(root + m.group(1)):
        missing.append(m.group(1))
    for n in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out):
        if n in seen:
            continue
        seen.add(n)
        p = find(n)
        if p is None:
            missing.append(n)
        else:
            todo.append(p)
print("libraries:", sorted(seen))
if missing:
    print("missing:", missing); sys.exit(1)
PY
# ldd against the image root: the image's own loader, its own library
# directories first, resolves every library to a file inside the image.
ld=$(ls "$T"/root/lib64/ld-linux-*.so.* "$T"/root/lib/ld-linux-*.so.* 2>/dev/null | head -1)
if [ -n "$ld" ]; then
  libpath="$T/root/lib/x86_64-linux-gnu:$T/root/usr/lib/x86_64-linux-gnu:$T/root/lib64"
  "$ld" --inhibit-cache --library-path "$libpath" --list "$T/root/usr/bin/creto" >"$T/ldd" 2>&1 && ok ||
    fail "image loader: $(cat "$T/ldd")"
  awk '/=> \//{print $3}' "$T/ldd" | grep -v "^$T/root/" >"$T/outside" || true
  [ ! -s "$T/outside" ] && ok || fail "libraries resolved outside the image: $(cat "$T/outside")"
  "$ld" --inhibit-cache --library-path "$libpath" "$T/root/usr/bin/creto" --version | grep -q '^creto ' && ok ||
    fail "creto --version with the image's loader and libraries"
fi
if command -v podman >/dev/null 2>&1; then
  echo "note: podman present, running the image is left to operators (rootless limits on CI)"
else
  echo "note: podman missing: the image is inspected, not run"
fi
finish
