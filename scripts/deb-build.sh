#!/bin/sh
# make deb: builds the Debian packages from a clean copy of the source (a
# release build tree: CRETO_TESTS=OFF, so never the test hooks), runs
# lintian on them, and writes beside them the runtime .debs a minimal
# Debian 12 lacks.  usage: scripts/deb-build.sh OUTDIR
#   OUTDIR/creto_<v>_amd64.deb, creto-dbgsym_<v>_amd64.deb,
#   libcreto-dev_<v>_amd64.deb, creto_<v>_amd64.changes,
#   OUTDIR/lintian.txt                 lintian's findings (must have no E: or W:)
#   OUTDIR/runtime-debs.txt            "name version" of each .deb to carry in
#   OUTDIR/build.log                   dpkg-buildpackage's output
set -eu
out=$1
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

"$src/scripts/deps.sh" build
need=""
for p in dpkg-dev debhelper lintian python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deb-build: missing Debian packages:$need (run as root, or install them)" >&2
    exit 3
  fi
  echo "deb-build: installing$need" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
upstream=$(sed -n 's/^project(creto-airgap VERSION \([^ )]*\).*/\1/p' "$src/CMakeLists.txt")
if [ "${version%%-*}" != "$upstream" ]; then
  echo "deb-build: debian/changelog says $version, CMakeLists.txt $upstream: add a changelog entry" >&2
  exit 2
fi

# A clean copy: no build trees (with their test programs), no git metadata.
work="$out/src/creto-$version"
rm -rf "$out/src"
mkdir -p "$work"
(cd "$src" && tar --anchored --exclude-vcs --exclude='./build*' --exclude='./obj-*' \
   --exclude='./debian/.debhelper' --exclude='./debian/tmp' --exclude='./debian/creto' \
   --exclude='./debian/libcreto-dev' -cf - .) | (cd "$work" && tar -xf -)
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
echo "deb-build: dpkg-buildpackage in $work (log: $out/build.log)" >&2
if ! (cd "$work" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$out/build.log" 2>&1; then
  tail -n 30 "$out/build.log" >&2
  echo "deb-build: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 3
fi
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"

arch=$(dpkg --print-architecture)
deb="$out/creto_${version}_${arch}.deb"
lintian --fail-on error,warning --display-info "$out/creto_${version}_${arch}.changes" >"$out/lintian.txt" 2>&1 || {
  cat "$out/lintian.txt" >&2
  echo "deb-build: lintian found errors or warnings" >&2
  exit 1
}
if ! python3 "$src/scripts/deb-deps.py" "$deb" >"$out/runtime-debs.txt"; then
  echo "deb-build: could not compute the runtime .debs (apt lists missing?)" >&2
  exit 3
fi
ls -1 "$out"/*.deb
echo "deb-build: lintian clean ($(grep -c '^[IP]:' "$out/lintian.txt" || true) info/pedantic notes in lintian.txt);" \
     "runtime .debs to carry in: $(wc -l <"$out/runtime-debs.txt") ($out/runtime-debs.txt)" >&2
