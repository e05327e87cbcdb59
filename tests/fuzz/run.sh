#!/bin/sh
# Runs every libFuzzer target for a bounded time from its seed corpus.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -eu
build=$1; secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
for t in "$build"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  work=$(mktemp -d)
  [ -d "$src/corpus/$name" ] && cp -r "$src/corpus/$name/." "$work/"
  echo "== $name (${secs}s)"
  "$t" -max_total_time="$secs" -max_len=65536 "$work" 2>&1 | tail -n 3
  rm -rf "$work"
done
