#!/bin/bash
# model_hash.sh - `creto model hash` with DEFAULT options (sha3-256, shards
# of 64 MiB) on a single 1 GiB and a single 4 GiB file, beside `openssl dgst
# -sha3-256` over the same file, both repeated and measured in this run
# (min and median wall time, peak RSS; runs interleaved); then `creto model verify` of a
# directory whose 100,000 files were all renamed (rename detection).
# Usage: bench/model_hash.sh path/to/creto [RUNS]
#   RUNS: repetitions per command (default 5).  Data is generated under the
#   build directory and deleted afterwards.  The machine may be shared:
#   the load average is printed before and after each case.
# Goal (issue 11 §8): on 2 cores, creto >= 1.8x openssl dgst for each size.
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
RUNS=${2:-5}
RUN=$(dirname "$CRETO")/bench_measure
[ -x "$RUN" ] || { echo "bench_measure missing next to $CRETO (cmake --build)" >&2; exit 2; }
CORES=$(nproc)
W=$(mktemp -d "$(dirname "$CRETO")/bench-model.XXXXXX")
trap 'rm -rf "$W"' EXIT

gen() { # gen FILE MiB: incompressible data, fast (AES-CTR keystream)
  { openssl enc -aes-128-ctr -nosalt -pass pass:"$1" -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $(($2 * 1024 * 1024)) >"$1"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

# one CMD...: one run; prints "SECONDS MAXRSS_KIB"
one() { "$RUN" "$@" 2>&1 >/dev/null | tail -n 1 || true; }
# stats "S1 S2 ..." RSS: prints "MIN MEDIAN RSS"
stats() {
  echo "$1" | tr ' ' '\n' | grep . | sort -g |
    awk -v rss="$2" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                                   printf "%s %s %s\n", v[1], m, rss }'
}

row() { # row LABEL BYTES MIN MEDIAN RSS
  awk -v l="$1" -v b="$2" -v mn="$3" -v md="$4" -v r="$5" 'BEGIN {
    printf "  %-44s min %7.3f s (%7.1f MB/s)  median %7.3f s (%7.1f MB/s)  %6.1f MiB RSS\n",
           l, mn, b / mn / 1e6, md, b / md / 1e6, r / 1024 }'
}

echo "machine: $CORES cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; $RUNS runs per command"
echo "creto: $CRETO"
echo "load average at start: $(load)"
for GIB in 1 4; do
  D=$W/single-$GIB
  mkdir -p "$D"
  gen "$D/model.safetensors" $((GIB * 1024))
  cat "$D/model.safetensors" >/dev/null # page cache warm
  BYTES=$((GIB * 1024 * 1024 * 1024))
  echo
  echo "case: one ${GIB} GiB file (load before: $(load))"
  # the commands are interleaved run by run, so that a load that comes and
  # goes on a shared machine falls on all of them alike
  OT="" CT="" FT="" ORSS=0 CRSS=0 FRSS=0
  for ((i = 0; i < RUNS; i++)); do
    r=$(one openssl dgst -sha3-256 "$D/model.safetensors"); OT="$OT ${r% *}"; [ "${r#* }" -gt "$ORSS" ] && ORSS=${r#* }
    r=$(one "$CRETO" model hash "$D"); CT="$CT ${r% *}"; [ "${r#* }" -gt "$CRSS" ] && CRSS=${r#* }
    r=$(one "$CRETO" model hash "$D" --hash sha256 --method files); FT="$FT ${r% *}"; [ "${r#* }" -gt "$FRSS" ] && FRSS=${r#* }
  done
  read -r omin omed orss < <(stats "$OT" "$ORSS")
  read -r cmin cmed crss < <(stats "$CT" "$CRSS")
  read -r fmin fmed frss < <(stats "$FT" "$FRSS")
  row "openssl dgst -sha3-256 (baseline)" "$BYTES" "$omin" "$omed" "$orss"
  row "creto model hash (defaults)" "$BYTES" "$cmin" "$cmed" "$crss"
  row "creto model hash --hash sha256 --method files" "$BYTES" "$fmin" "$fmed" "$frss"
  awk -v om="$omin" -v od="$omed" -v cm="$cmin" -v cd="$cmed" -v g="$GIB" 'BEGIN {
    printf "  speed-up vs openssl dgst -sha3-256, %d GiB: %.2fx (min/min), %.2fx (median/median); goal >= 1.8x: %s\n",
           g, om / cm, od / cd, (od / cd >= 1.8 && om / cm >= 1.8) ? "met" : "NOT met" }'
  echo "  load after: $(load)"
  rm -rf "$D"
done

# ---- rename detection: 100,000 files, every one renamed -------------------
N=100000
R=$W/renamed
mkdir -p "$R/model/a"
python3 - "$R/model/a" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, 'f%06d.json' % i), 'w') as f:
        f.write('{"shard": %d}\n' % i)
PY
"$CRETO" model manifest "$R/model" -o "$R/manifest.json" >/dev/null
mv "$R/model/a" "$R/model/b"
echo
echo "case: $N files, all renamed (a/* -> b/*) (load before: $(load))"
out=$("$RUN" "$CRETO" model verify "$R/model" --manifest "$R/manifest.json" 2>&1 >/dev/null) || true
secs=$(echo "$out" | tail -n 1)
verdict=$(echo "$out" | grep -o 'renamed file: .*' | head -n 1)
printf "  creto model verify: %7.3f s wall, %.1f MiB RSS\n" "${secs% *}" "$(awk -v r="${secs#* }" 'BEGIN { print r / 1024 }')"
echo "  verdict: $verdict"
echo "$verdict" | grep -q "renamed $N)" || { echo "  unexpected verdict" >&2; exit 1; }
echo
echo "load average at end: $(load)"
