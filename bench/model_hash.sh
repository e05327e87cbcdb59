#!/bin/bash
# model_hash.sh - `creto model hash` (DEFAULT options: sha3-256, shards of
# 64 MiB) on a single file and on a model directory, against OpenSSL, all
# measured in this run (issue 17 §5):
#   - the CPU model and the SHA3-256 back end creto chooses on it;
#   - `openssl speed -evp sha3-256` (one core, 1 MiB blocks);
#   - `openssl dgst -sha3-256` over the same files (sequential);
#   - creto on one thread (--threads 1) on each back end this CPU has
#     (separate processes with the CRETO_SHA3_NO_* switches);
#   - creto on all cores (defaults);
#   - the page-cache read limit: `cat` of the same files to /dev/null;
# then `creto model verify` of a directory whose 100,000 files were all
# renamed (rename detection, issue 11).
# Usage: bench/model_hash.sh path/to/creto [RUNS]
#   RUNS: rounds, commands interleaved round by round (default 3); the
#   best round counts (other load on a shared machine only slows a run).
#   BENCH_GIB: data size per case in GiB (default 1, so the script stays
#   under about 5 minutes on 2 cores; BENCH_GIB=4 for the issue's 4 GiB).
#   Data is generated under the build directory and deleted afterwards;
#   everything is read from a warm page cache.  The load average is
#   printed before and after each case.
#   BENCH_CACHE: how the files sit in the page cache.  "reread" (default):
#   as after a model was read from disk: the generated files are written
#   back, dropped from the cache (dd iflag=nocache) and read in again, so
#   the kernel's readahead caches them in large folios (2 MiB where the
#   file system has them), which creto's mapped reading maps with one
#   page-table entry each.  "written": as the generator wrote them (small
#   folios: more page faults; docs/sha3-engine.md has both).
# Goals (issue 17): one thread against `openssl speed`: >= 4x on avx512,
# >= 2x on full-width avx2, >= 1.0x on half-width avx2 (then openssl is
# chosen); all cores against `openssl dgst`: >= 3.5x on 2 cores.
set -euo pipefail
CRETO=$(realpath "${1:-build/creto}")
RUNS=${2:-3}
GIB=${BENCH_GIB:-1}
CACHE=${BENCH_CACHE:-reread}
case $CACHE in reread | written) ;; *) echo "BENCH_CACHE: reread or written" >&2; exit 2 ;; esac
B=$(dirname "$CRETO")
RUN=$B/bench_measure
ENG=$B/bench_hash_engine
for x in "$RUN" "$ENG"; do
  [ -x "$x" ] || { echo "$x missing next to $CRETO (cmake --build)" >&2; exit 2; }
done
CORES=$(nproc)
W=$(mktemp -d "$B/bench-model.XXXXXX")
trap 'rm -rf "$W"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
gen() { # gen FILE MiB: incompressible data, fast (AES-CTR keystream)
  { openssl enc -aes-128-ctr -nosalt -pass pass:"$1" -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $(($2 * 1024 * 1024)) >"$1"
}
# tm CMD...: one run; prints "WALL_SECONDS CPU_SECONDS" (user + system)
tm() {
  local TIMEFORMAT='%R %U %S' t
  t=$({ time "$@" >/dev/null 2>&1; } 2>&1 | tail -n 1)
  echo "$t" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }'
}
minof() { echo "$1" | tr ' ' '\n' | grep . | sort -g | head -n 1; }
# settle FILE...: the files in the page cache as BENCH_CACHE says
settle() {
  [ "$CACHE" = reread ] || return 0
  sync "$@"
  local f
  for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done
  cat "$@" >/dev/null
}

model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
fam=$(awk -F': ' '/^cpu family/ {print $2; exit}' /proc/cpuinfo)
mod=$(awk -F': ' '/^model[ \t]*:/ {print $2; exit}' /proc/cpuinfo)
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
echo "cpu: $model (family $fam model $mod), $CORES CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
echo "creto: $CRETO; $(openssl version | cut -d' ' -f1-2); $RUNS rounds; ${GIB} GiB per case; page cache: $CACHE"
"$ENG" | sed 's/^engine /back end chosen: /; s/^calibration /calibration at first use, MB\/s per core: /'
echo "load average at start: $(load)"

# the back ends to run on one thread: label and environment
BE=("openssl CRETO_SHA3_NO_AVX2=1")
case "$flags" in *" avx2 "*) BE+=("avx2 CRETO_SHA3_NO_AVX512=1") ;; esac
case "$flags" in *" avx512f "*) BE+=("avx512 CRETO_SHA3_NO_AVX512=0") ;; esac
for i in "${!BE[@]}"; do # label by what the engine really runs under the switch
  # shellcheck disable=SC2086
  got=$(env ${BE[$i]#* } "$ENG" | awk '/^engine/ {print $2}')
  [ "$got" = "${BE[$i]%% *}" ] || echo "note: ${BE[$i]%% *} switch gives $got (calibration: not faster than OpenSSL here)"
done

speed=$(openssl speed -evp sha3-256 -bytes 1048576 -seconds 3 2>/dev/null |
  awk '/^sha3-256|^SHA3-256/ {v=$NF} END {print v}')
SPEED=$(awk -v s="${speed%k}" 'BEGIN {printf "%.0f", s / 1000}')
echo "openssl speed -evp sha3-256 (one core, 1 MiB blocks): $SPEED MB/s"

row() { # row LABEL BYTES WALL CPU
  awk -v l="$1" -v b="$2" -v w="$3" -v c="$4" 'BEGIN {
    printf "  %-46s %7.3f s  %7.0f MB/s  %7.0f MB per CPU-second\n", l, w, b / w / 1e6, b / c / 1e6 }'
}

run_case() { # run_case LABEL DIR
  local label=$1 D=$2 i
  local files
  files=$(find "$D" -type f | sort)
  # shellcheck disable=SC2086
  cat $files >/dev/null # page cache warm
  local BYTES
  # shellcheck disable=SC2086
  BYTES=$(du -cb $files | tail -n 1 | cut -f1)
  echo
  echo "case: $label, $BYTES bytes (load before: $(load))"
  declare -A WT CT
  local keys=(cat dgst all)
  for b in "${BE[@]}"; do keys+=("one-${b%% *}"); done
  for k in "${keys[@]}"; do WT[$k]=""; CT[$k]=""; done
  local digest="" r
  for ((i = 0; i < RUNS; i++)); do
    # shellcheck disable=SC2086
    r=$(tm cat $files); WT[cat]+=" ${r% *}"; CT[cat]+=" ${r#* }"
    # shellcheck disable=SC2086
    r=$(tm openssl dgst -sha3-256 $files); WT[dgst]+=" ${r% *}"; CT[dgst]+=" ${r#* }"
    for b in "${BE[@]}"; do
      # shellcheck disable=SC2086
      r=$(tm env ${b#* } "$CRETO" model hash "$D" --threads 1); WT[one-${b%% *}]+=" ${r% *}"; CT[one-${b%% *}]+=" ${r#* }"
    done
    r=$(tm "$CRETO" model hash "$D"); WT[all]+=" ${r% *}"; CT[all]+=" ${r#* }"
  done
  # the digests: the same on every back end
  for b in "${BE[@]}"; do
    # shellcheck disable=SC2086
    d=$(env ${b#* } "$CRETO" model hash "$D" --threads 1)
    [ -z "$digest" ] && digest=$d
    [ "$d" = "$digest" ] || { echo "  DIGEST DIFFERS on ${b%% *}: $d vs $digest" >&2; exit 1; }
  done
  echo "  root digest (the same on every back end): $digest"
  row "cat to /dev/null (page-cache read limit)" "$BYTES" "$(minof "${WT[cat]}")" "$(minof "${CT[cat]}")"
  row "openssl dgst -sha3-256 (sequential)" "$BYTES" "$(minof "${WT[dgst]}")" "$(minof "${CT[dgst]}")"
  for b in "${BE[@]}"; do
    row "creto model hash --threads 1, ${b%% *}" "$BYTES" "$(minof "${WT[one-${b%% *}]}")" "$(minof "${CT[one-${b%% *}]}")"
  done
  row "creto model hash (defaults, $CORES cores)" "$BYTES" "$(minof "${WT[all]}")" "$(minof "${CT[all]}")"
  for b in "${BE[@]}"; do
    local n=${b%% *} goal
    # goals: avx512 4x, avx2 2x; OpenSSL's own stream is the baseline (the
    # 1.0x goal of half-width AVX2 is met by choosing it there)
    case $n in avx512) goal=4 ;; avx2) goal=2 ;; *) goal=0 ;; esac
    awk -v n="$n" -v b="$BYTES" -v w="$(minof "${WT[one-$n]}")" -v c="$(minof "${CT[one-$n]}")" -v s="$SPEED" -v g="$goal" 'BEGIN {
      v = b / c / 1e6 / s
      printf "  one thread, %-7s vs openssl speed: %.2fx per CPU-second, %.2fx wall", n, v, b / w / 1e6 / s
      if (g > 0) printf " (goal >= %.1fx: %s)", g, ((v >= g) ? "met" : "NOT met")
      printf "\n" }'
  done
  awk -v b="$BYTES" -v a="$(minof "${WT[all]}")" -v d="$(minof "${WT[dgst]}")" -v r="$(minof "${WT[cat]}")" -v n="$CORES" 'BEGIN {
    printf "  all %d cores vs openssl dgst -sha3-256: %.2fx wall (goal >= 3.5x on 2 cores: %s); %.0f%% of the read limit\n",
           n, d / a, (d / a >= 3.5) ? "met" : "NOT met", 100 * r / a }'
  echo "  load after: $(load)"
}

# one file
mkdir -p "$W/file"
gen "$W/file/model.safetensors" $((GIB * 1024))
settle "$W/file/model.safetensors"
run_case "one ${GIB} GiB file" "$W/file"
rm -rf "$W/file"
# a model directory: weights in shards of different sizes, small files beside
mkdir -p "$W/dir"
for spec in 40:model-00001-of-00004.safetensors 30:model-00002-of-00004.safetensors \
  20:model-00003-of-00004.safetensors 9:model-00004-of-00004.safetensors; do
  gen "$W/dir/${spec#*:}" $((GIB * 1024 * ${spec%%:*} / 100))
done
gen "$W/dir/tokenizer.json" 7
echo '{"architectures": ["Bench"]}' >"$W/dir/config.json"
settle "$W"/dir/*
run_case "a ${GIB} GiB model directory (4 weight files, 2 small)" "$W/dir"
rm -rf "$W/dir"

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
"$CRETO" model manifest "$R/model" -o "$R/manifest.json" >/dev/null 2>&1
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
