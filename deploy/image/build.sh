#!/bin/sh
# build.sh - the creto OCI image: from scratch, the binary, exactly the
# shared libraries ldd names for it (and the dynamic loader), an
# /etc/passwd and /etc/group for the non-root user 10001, no shell.
# Saved as an oci-archive that crosses the diode as a software-package
# update (docs/deploy-kubernetes.md).
# Usage: deploy/image/build.sh BINARY OUT.tar [VERSION]
# Needs buildah (Debian); runs rootless or as root (`buildah unshare` is used
# when not root).
set -eu
bin=$1; out=$2; version=${3:-0.0.0}
command -v buildah >/dev/null 2>&1 || { echo "build.sh: buildah missing (apt-get install buildah skopeo)" >&2; exit 3; }
[ -x "$bin" ] || { echo "build.sh: $bin is not an executable" >&2; exit 2; }
if [ "$(id -u)" != 0 ] && [ -z "${BUILDAH_ISOLATION_DONE:-}" ]; then
  BUILDAH_ISOLATION_DONE=1 exec buildah unshare "$0" "$@"
fi
root=$(mktemp -d)
trap 'rm -rf "$root"; [ -n "${ctr:-}" ] && buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mkdir -p "$root/usr/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
install -m 0755 "$bin" "$root/usr/bin/creto"
# Exactly the runtime libraries: every path ldd resolves, and the loader.
ldd "$bin" | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]*ld-linux/{print $1}' | sort -u >"$root.libs"
while read -r lib; do
  real=$(readlink -f "$lib")
  mkdir -p "$root$(dirname "$lib")"
  cp "$real" "$root$lib"
done <"$root.libs"
rm -f "$root.libs"
# libsofthsm2 and p11-kit modules are loaded with dlopen by path from the
# config: a deployment adds them in a layer of its own (docs).
printf 'creto:x:10001:10001:creto:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'creto:x:10001:\n' >"$root/etc/group"
ctr=$(buildah from scratch)
buildah copy "$ctr" "$root" / >/dev/null
buildah config \
  --entrypoint '["/usr/bin/creto"]' --cmd '--help' \
  --user 10001:10001 --workingdir / \
  --env PATH=/usr/bin \
  --label org.opencontainers.image.title=creto \
  --label org.opencontainers.image.description="creto-airgap: verified updates, models and agent identities for air-gapped enclaves" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.source=creto-airgap \
  "$ctr"
rm -f "$out"
buildah commit --format oci --rm "$ctr" "oci-archive:$out" >/dev/null
ctr=
echo "build.sh: wrote $out"
