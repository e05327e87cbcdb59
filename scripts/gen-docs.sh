#!/bin/sh
# Writes the man pages and the bash completion that a creto binary generates
# from its own command tables (creto __man, creto __completion bash):
#   scripts/gen-docs.sh CRETO OUTDIR  ->  OUTDIR/man/creto*.1, OUTDIR/creto.bash
# Run by the build (CMakeLists.txt, CRETO_DOCS) and by tests/integration/test_man.sh.
set -eu
creto=$1
out=$2
mkdir -p "$out/man"
rm -f "$out"/man/creto*.1
for page in $("$creto" __man --list); do
  group=${page#creto}
  group=${group#-}
  # shellcheck disable=SC2086 # no group: creto(1)
  "$creto" __man $group > "$out/man/$page.1.tmp"
  mv "$out/man/$page.1.tmp" "$out/man/$page.1"
done
"$creto" __completion bash > "$out/creto.bash.tmp"
mv "$out/creto.bash.tmp" "$out/creto.bash"
