#!/bin/bash
# test_install.sh - `make install`'s rules (CMake install, DESTDIR honoured):
# the program, libcreto.a with creto.pc and the public headers, the man pages
# and bash completion, the example config, the units with their paths
# rewritten for the prefix, the sysusers.d file and the docs.  A tiny C
# program is built against the installed header and creto.pc and run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"
command -v pkg-config >/dev/null || skip "pkg-config missing (scripts/deps.sh build installs it)"
prefix=$(build_prefix)
[ -n "$prefix" ] || { fail "no CMAKE_INSTALL_PREFIX in $CRETO_BUILD_DIR/CMakeCache.txt"; finish; }
R=$T/root
install_into "$R" && ok || { fail "cmake --install: $(tail -3 "$T/install.log")"; finish; }
P=$R$prefix
case "$prefix" in /usr) etc=$R/etc ;; *) etc=$P/etc ;; esac

# the program: the release one, never the test program with its hooks
[ -x "$P/bin/creto" ] && ok || fail "no $prefix/bin/creto"
[ ! -e "$P/bin/creto-test" ] && ok || fail "creto-test installed"
expect 0 --out "creto $("$CRETO" --version | cut -d' ' -f2)" -- "$P/bin/creto" --version
grep -q CRETO_TEST_NOW "$P/bin/creto" && fail "installed creto holds the test clock hook" || ok

# the library: static archive, creto.pc, every public header
lib=$(find "$P" -name libcreto.a | head -1)
[ -n "$lib" ] && ok || fail "no libcreto.a under $P"
pc=$(find "$P" -name creto.pc | head -1)
[ -n "$pc" ] && ok || { fail "no creto.pc under $P"; finish; }
for h in "$CRETO_SRC_DIR"/include/creto/*.h; do
  cmp -s "$h" "$P/include/creto/$(basename "$h")" && ok || fail "header $(basename "$h") not installed"
done
grep -qx "prefix=$prefix" "$pc" && ok || fail "creto.pc prefix is not $prefix: $(head -1 "$pc")"
client_like_build
expect 0 --out "sha256 ba7816bf" -- build_client "$(dirname "$pc")" "$P" "$T/client"
[ "$N_FAIL" = 0 ] || cat "$T/client.log" >&2

# man pages and completion (generated at build time unless CRETO_DOCS=OFF)
if grep -q '^CRETO_DOCS:BOOL=ON' "$CRETO_BUILD_DIR/CMakeCache.txt"; then
  for g in $("$CRETO" --help | awk '/^groups:/{on=1;next} on&&NF==0{on=0} on{print $1}'); do
    [ -s "$P/share/man/man1/creto-$g.1" ] && ok || fail "no man page creto-$g(1)"
  done
  [ -s "$P/share/man/man1/creto.1" ] && ok || fail "no creto(1)"
  [ -s "$P/share/bash-completion/completions/creto" ] && ok || fail "no bash completion"
else
  echo "note: CRETO_DOCS=OFF in this build tree (sanitizer build): man pages and completion not checked here"
fi
[ -s "$P/share/man/man5/creto.conf.5" ] && ok || fail "no creto.conf(5)"

# the example config, the units (paths for this prefix), sysusers, docs
[ -s "$etc/creto/isolation.conf" ] && ok || fail "no $etc/creto/isolation.conf"
# the example parses: the verdict (0 isolated / 1 not) depends on the host
rc=0
"$P/bin/creto" isolation check --config "$etc/creto/isolation.conf" >"$T/iso.out" 2>"$T/iso.err" || rc=$?
case $rc in 0|1) ok ;; *) fail "example isolation.conf: exit $rc: $(cat "$T/iso.err")" ;; esac
case "$prefix" in /usr) unitdir=$R/lib/systemd/system ;; *) unitdir=$P/lib/systemd/system ;; esac
for u in "$CRETO_SRC_DIR"/deploy/systemd/*.service "$CRETO_SRC_DIR"/deploy/systemd/*.timer; do
  n=$(basename "$u")
  [ -s "$unitdir/$n" ] && ok || { fail "unit $n not installed in $unitdir"; continue; }
  # the HSM host's unit runs p11-kit, not creto
  if grep -q '^ExecStart=' "$unitdir/$n" && ! grep -q '^ExecStart=/usr/bin/p11-kit ' "$unitdir/$n"; then
    grep '^ExecStart=' "$unitdir/$n" | grep -q "=$prefix/bin/creto " && ok ||
      fail "$n: ExecStart does not name $prefix/bin/creto"
  fi
done
find "$R" -path '*sysusers.d/creto.conf' | grep -q . && ok || fail "no sysusers.d/creto.conf"
[ -s "$P/share/doc/creto/install.md" ] && ok || fail "docs not installed"
finish
