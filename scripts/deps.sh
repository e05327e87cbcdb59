#!/bin/sh
# Installs the Debian packages the build, tests, demo and benchmarks need,
# and only those that are missing.  Usage: scripts/deps.sh [build|test|fuzz|bench|all]
set -eu
what=${1:-build}
build="cmake make gcc clang pkg-config libssl-dev openssl libsqlite3-dev libjansson-dev libp11-kit-dev libyaml-dev libseccomp-dev"
test="$build libcmocka-dev softhsm2 opensc p11-kit p11-kit-modules sqlite3 iproute2 python3 python3-yaml python3-cryptography util-linux procps time strace git curl systemd debhelper dpkg-dev lintian fakeroot"
fuzz="$build clang libclang-rt-14-dev"
case "$what" in
  build) pkgs=$build ;;
  test)  pkgs=$test ;;
  fuzz)  pkgs=$fuzz ;;
  bench) pkgs="$test wrk nginx-light" ;;
  all)   pkgs="$test $fuzz buildah skopeo" ;;
  *) echo "deps.sh: unknown set '$what' (build|test|fuzz|bench|all)" >&2; exit 2 ;;
esac
missing=""
# Node.js + npm run the independent JOSE peer in the tests; any install of
# them will do (Debian's, or a vendor package that bundles npm).
if [ "$what" = test ] || [ "$what" = bench ] || [ "$what" = all ]; then
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing Debian packages:$missing (run as root, or install them)" >&2
  exit 3
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
