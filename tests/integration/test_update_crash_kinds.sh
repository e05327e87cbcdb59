#!/bin/bash
# test_update_crash_kinds.sh - kill -9 at every injected point of apply
# (CRETO_TEST_CRASH_AT, docs/crupdate.md "Crash safety") for the kinds that
# test_update_crash.sh does not cover: cert-rotation (first rotation 1 -> 2,
# and 2 -> 3 with an older DIR/trust-root.json already in place),
# software-package and policy.  Before the database commit: the state
# database is byte-for-byte the same, the old trust root stays in force
# (packages signed only with the new root's keys are refused, packages of
# the old root verify), no trust-root.json is written or half-written, the
# previous version stays current.  After the commit: the new root is already
# in force, and a restart completes the derived files.  Last, with strace,
# every directory created before the commit is made durable in its parent
# before the commit (a power loss must not lose what the database records).
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 missing (scripts/deps.sh test installs it)"
cd "$T" || exit 1
S=$(pwd -P)/S

for k in a b c d e; do "$CRETO" key gen --alg hybrid -o $k >/dev/null || fail "key gen $k"; done
# root 1: a b c; root 2 drops a, adds d; root 3 drops b, adds e.  Each new
# root is signed by 2 of its own keys and (--previous) 2 of the old root's.
"$CRETO" trust init --key a.pub --key b.pub --key c.pub --threshold 2 -o root1.json >/dev/null
"$CRETO" trust init --key b.pub --key c.pub --key d.pub --threshold 2 --version 2 -o root2.json >/dev/null
"$CRETO" trust init --key c.pub --key d.pub --key e.pub --threshold 2 --version 3 -o root3.json >/dev/null
for k in a b; do "$CRETO" trust sign root1.json --key $k.key >/dev/null; done
for k in b c; do "$CRETO" trust sign root2.json --key $k.key >/dev/null; done
"$CRETO" trust sign root2.json --key a.key --previous >/dev/null
for k in c d; do "$CRETO" trust sign root3.json --key $k.key >/dev/null; done
"$CRETO" trust sign root3.json --key b.key --previous >/dev/null

pkg() { # OUT TYPE NAME VERSION PAYLOAD SIGNERS...
  local o=$1 t=$2 n=$3 v=$4 p=$5; shift 5
  "$CRETO" update create --type "$t" --name "$n" --version "$v" --shard-size 65536 --payload "$p" -o "$o.st" --force >/dev/null
  for k in "$@"; do "$CRETO" update sign "$o.st" --key "$k.key" >/dev/null; done
  "$CRETO" update assemble "$o.st" --payload "$p" -o "$o.crupdate" --force >/dev/null || fail "assemble $o"
}
rotation() { # OUT ROOTFILE VERSION SIGNERS...
  local o=$1 r=$2 v=$3; shift 3
  mkdir -p "$o.d" && cp "$r" "$o.d/root.json"
  pkg "$o" cert-rotation trust-root "$v" "$o.d/root.json" "$@"
}
digest() { "$CRETO" update inspect "$1" --json | sed -n 's/^  "statement_digest": "\([0-9a-f]*\)",$/\1/p'; }
keyid() { # PKG N: the key id of the N-th (0-based) signature of PKG
  "$CRETO" update inspect "$1" --json | tr -d ' ",' | sed -n '/^signed_by:\[$/,/^\]/p' | sed -n "$(($2 + 2))p"; }
# Read-only SQL on the state database; rows as a|b|c.
q() { sqlite3 -readonly -batch "$S/state.db" "$1"; }
# The state rows (the intent a decision records before its commit aside:
# it is there exactly so that recovery can say `aborted`).
dbdump() { q "$(for t in meta installed applied audit; do echo "SELECT '$t', * FROM $t $([ $t = meta ] && echo "WHERE k != 'pending_event'") ORDER BY 2, 3;"; done)"; }
# The decisions in the state's audit log (docs/audit.md "Who writes"), one
# line each: COMPONENT EVENT OUTCOME DIGEST (an `aborted` from recovery
# names the package by its subject).
logd() { "$CRETO" audit show --dir "$S/audit" --json | python3 -c '
import json, re, sys
for l in sys.stdin:
    e = json.loads(l); f = e.get("fields", {})
    if e["event"] not in ("apply", "rotation"): continue
    m = re.search(r"sha3-256:([0-9a-f]{64})", e.get("subject", ""))
    print(e["component"], e["event"], e["outcome"], f.get("statement_digest") or (m.group(1) if m else "-"))'; }
applied_once() { # LABEL DIGEST: exactly one `applied` entry for it in the log
  [ "$(logd | grep -c " applied $2\$")" = 1 ] || fail "$1: not exactly one applied entry in the log for $2: $(logd)"; }
# `update status` as one line without blanks, to match JSON fragments.
status() { "$CRETO" update status --state "$S" --audit 100 --json | tr -d ' \n'; }
status_has() { # LABEL REGEX...: one `update status`, every REGEX found in it
  local label=$1 st re; shift; st=$(status)
  for re; do grep -qE -- "$re" <<<"$st" || fail "$label: update status lacks $re: $st"; done; }
last_audit() { # LABEL DECISION DIGEST [REGEX...]: the newest decision, in the log and in status
  [ "$(logd | tail -n 1 | cut -d' ' -f3,4)" = "$2 $3" ] ||
    fail "$1: newest decision in the log is not $2 $3: $(logd | tail -n 1)"
  status_has "$1" "\"decision\":\"$2\",[^{}]*\"statement_digest\":\"$3\"[^{}]*\\}\\]\\}\$" "${@:4}"
}
aborted_then_applied() { # LABEL DIGEST: a killed install left `applied` (its record), recovery
  # wrote `aborted` for it, then the restart's `applied`
  [ "$(logd | grep " $2\$" | cut -d' ' -f3 | tr '\n' ' ')" = "applied aborted applied " ] ||
    fail "$1: log is not applied, aborted, applied for $2: $(logd)"; }
crash() { # POINT CMD... : must die of SIGKILL at POINT
  local pt=$1 rc=0; shift
  { CRETO_TEST_CRASH_AT=$pt "$@" >/dev/null 2>&1; } 2>/dev/null || rc=$?  # (no "Killed" notice)
  [ "$rc" = 137 ] || fail "$pt: expected a kill -9 (137), got $rc from $*"
}
no_tmp() { # no temporary or half-written file left anywhere in DIR
  local left; left=$(find "$S" -name '*.tmp.*' -o -name '.current.tmp' | head -3)
  [ -z "$left" ] || fail "$1: leftovers: $left"
}

# Payloads: a file at the top and one two directories down.
mkdir -p p1/d/e p2/d/e
echo one >p1/top.txt; head -c 150000 /dev/urandom >p1/d/e/f.bin
echo two >p2/top.txt; head -c 170000 /dev/urandom >p2/d/e/f.bin
pkg app1 software-package app 1 p1 a b
# Version 2 of app, signed by keys of each root:
pkg old1 software-package app 2 p2 a b   # root 1 only (a is dropped by root 2)
pkg new2 software-package app 2 p2 c d   # root 2 (d unknown to root 1)
pkg old2 software-package app 2 p2 b c   # roots 1 and 2 (b dropped by root 3)
pkg new3 software-package app 2 p2 d e   # root 3 only (e unknown to roots 1, 2)
rotation r2 root2.json 2 a b
rotation r3 root3.json 3 c d
KA=$(keyid old1.crupdate 0) KB=$(keyid old2.crupdate 0) KD=$(keyid new2.crupdate 1) KE=$(keyid new3.crupdate 1)
R2=$(digest r2.crupdate) R3=$(digest r3.crupdate)
for v in "$KA" "$KB" "$KD" "$KE" "$R2" "$R3"; do [[ $v =~ ^[0-9a-f]{16}([0-9a-f]{48})?$ ]] || fail "setup: bad key id or digest '$v'"; done

# Two base states: B1 (root 1, app 1 installed) and B2 (B1 + rotation to 2).
"$CRETO" state init --state "$S" --trust root1.json >/dev/null || fail "state init"
"$CRETO" update apply app1.crupdate --trust root1.json --state "$S" >/dev/null || fail "base: app 1"
cp -a S B1
"$CRETO" update apply r2.crupdate --trust root1.json --state "$S" >/dev/null || fail "base: rotation 2"
cmp -s root2.json S/trust-root.json || fail "base: trust-root.json is not root 2"
cp -a S B2

# ---- cert-rotation, 1 -> 2 (DIR/trust/ and trust-root.json do not exist yet) ----
for point in staged renamed before-commit committed; do
  rm -rf S && cp -a B1 S
  before=$(dbdump)
  crash $point "$CRETO_TEST_BIN" update apply r2.crupdate --trust root1.json --state "$S"
  [ ! -e S/trust-root.json ] || fail "rot1 $point: trust-root.json written before the restart"
  no_tmp "rot1 $point"
  case $point in
  committed)
    [ "$(q "SELECT version, statement_digest FROM installed WHERE type='cert-rotation'")" = "2|$R2" ] ||
      fail "rot1 $point: no installed row for the rotation"
    last_audit "rot1 $point" applied "$R2" '"trust_root_version":2,'
    # The database is the truth: root 2 is in force before any restart.
    expect 1 --err "key $KA unknown to the trust root" -- "$CRETO" update verify old1.crupdate --trust root1.json --state "$S"
    expect 0 -- "$CRETO" update verify new2.crupdate --trust root1.json --state "$S"
    # Restart: re-processing the package is a replay, and recovery writes trust-root.json.
    expect 1 --err "replay" -- "$CRETO" update apply r2.crupdate --trust root1.json --state "$S"
    last_audit "rot1 $point restart" duplicate "$R2" ;;
  *)
    [ "$(dbdump)" = "$before" ] || fail "rot1 $point: state database changed before the commit"
    status_has "rot1 $point" '"trust_root_version":0,"installed":\[\{"type":"software-package","name":"app","version":1,[^]]*\],'
    if [ $point != staged ]; then
      cmp -s root2.json S/trust/root-2.json || fail "rot1 $point: trust/root-2.json not written at renamed"
    else
      [ ! -e S/trust/root-2.json ] || fail "rot1 $point: trust/root-2.json written before renamed"
    fi
    # Root 1 stays in force.
    expect 0 -- "$CRETO" update verify old1.crupdate --trust root1.json --state "$S"
    expect 1 --err "key $KD unknown to the trust root" -- "$CRETO" update verify new2.crupdate --trust root1.json --state "$S"
    # Restart: the package is re-processable.
    expect 0 --out "applied cert-rotation trust-root version 2" -- \
      "$CRETO" update apply r2.crupdate --trust root1.json --state "$S" ;;
  esac
  cmp -s root2.json S/trust-root.json || fail "rot1 $point: trust-root.json is not root 2 after restart"
  cmp -s root2.json S/trust/root-2.json || fail "rot1 $point: trust/root-2.json is not root 2"
  status_has "rot1 $point restart" '"trust_root_version":2,.*\{"type":"cert-rotation","name":"trust-root","version":2,'
  if [ $point = committed ]; then applied_once "rot1 $point" "$R2"; else aborted_then_applied "rot1 $point" "$R2"; fi
  no_tmp "rot1 $point after restart"
  expect 1 --err "key $KA unknown to the trust root" -- "$CRETO" update verify old1.crupdate --trust root1.json --state "$S"
  expect 0 -- "$CRETO" update apply new2.crupdate --trust root1.json --state "$S"
done

# ---- cert-rotation, 2 -> 3: trust-root.json holds root 2 and disagrees with
# the database in the window after the commit; whoever passes it as --trust
# must still get root 3. ----
for point in staged renamed before-commit committed; do
  rm -rf S && cp -a B2 S
  before=$(dbdump)
  crash $point "$CRETO_TEST_BIN" update apply r3.crupdate --trust root1.json --state "$S"
  cmp -s root2.json S/trust-root.json || fail "rot2 $point: trust-root.json damaged"
  no_tmp "rot2 $point"
  case $point in
  committed)
    last_audit "rot2 $point" applied "$R3" '"trust_root_version":3,'
    for tr in root1.json "$S/trust-root.json"; do
      expect 1 --err "key $KB unknown to the trust root" -- "$CRETO" update verify old2.crupdate --trust "$tr" --state "$S"
      expect 0 -- "$CRETO" update verify new3.crupdate --trust "$tr" --state "$S"
    done
    # Restart through another command: applying a package, with the stale
    # copy as --trust (recovery rewrites it first).
    expect 0 -- "$CRETO" update apply new3.crupdate --trust "$S/trust-root.json" --state "$S" ;;
  *)
    [ "$(dbdump)" = "$before" ] || fail "rot2 $point: state database changed before the commit"
    status_has "rot2 $point" '"trust_root_version":2,.*\{"type":"cert-rotation","name":"trust-root","version":2,'
    if [ $point != staged ]; then
      cmp -s root3.json S/trust/root-3.json || fail "rot2 $point: trust/root-3.json not written at renamed"
    else
      [ ! -e S/trust/root-3.json ] || fail "rot2 $point: trust/root-3.json written before renamed"
    fi
    expect 0 -- "$CRETO" update verify old2.crupdate --trust "$S/trust-root.json" --state "$S"
    expect 1 --err "key $KE unknown to the trust root" -- "$CRETO" update verify new3.crupdate --trust root1.json --state "$S"
    expect 0 --out "applied cert-rotation trust-root version 3" -- \
      "$CRETO" update apply r3.crupdate --trust root1.json --state "$S"
    expect 0 -- "$CRETO" update apply new3.crupdate --trust "$S/trust-root.json" --state "$S" ;;
  esac
  cmp -s root3.json S/trust-root.json || fail "rot2 $point: trust-root.json is not root 3 after restart"
  status_has "rot2 $point restart" '"trust_root_version":3,.*\{"type":"cert-rotation","name":"trust-root","version":3,'
  if [ $point = committed ]; then applied_once "rot2 $point" "$R3"; else aborted_then_applied "rot2 $point" "$R3"; fi
  [ "$(q "SELECT version FROM installed WHERE type='software-package' AND name='app'")" = 2 ] ||
    fail "rot2 $point: app 2 not installed under root 3"
  no_tmp "rot2 $point after restart"
done

# ---- the diode watcher killed inside a rotation, then restarted: the
# package waits in the diode directory and the next pass settles it ----
for point in before-commit committed; do
  rm -rf S D && cp -a B1 S && mkdir D && cp r2.crupdate D/
  crash $point "$CRETO_TEST_BIN" diode watch D --trust root1.json --state "$S" --once --settle-ms 50
  [ -e D/r2.crupdate ] && [ ! -e S/processed/r2.crupdate ] || fail "watch $point: package moved by a killed watcher"
  [ ! -e S/trust-root.json ] || fail "watch $point: trust-root.json written by a killed watcher"
  want=applied; [ $point = committed ] && want=duplicate
  expect 0 --out "$want r2.crupdate" -- "$CRETO" diode watch D --trust root1.json --state "$S" --once --settle-ms 50
  [ -e S/processed/r2.crupdate ] && [ ! -e D/r2.crupdate ] || fail "watch $point: package not moved to processed/"
  cmp -s root2.json S/trust-root.json || fail "watch $point: trust-root.json is not root 2 after restart"
  if [ $point = committed ]; then applied_once "watch $point" "$R2"; else aborted_then_applied "watch $point" "$R2"; fi
  [ $point = committed ] && last_audit "watch $point" duplicate "$R2"
  expect 1 --err "key $KA unknown to the trust root" -- "$CRETO" update verify old1.crupdate --trust root1.json --state "$S"
done

# ---- software-package and policy: every point ----
for type in software-package policy; do
  kind=software; [ $type = policy ] && kind=policy
  rm -f k1.* k2.*
  pkg k1 $type conf 1 p1 a b
  pkg k2 $type conf 2 p2 a b
  D2=$(digest k2.crupdate)
  rm -rf K && "$CRETO" state init --state "$T/K" --trust root1.json >/dev/null && "$CRETO" update apply k1.crupdate --trust root1.json --state "$T/K" >/dev/null || fail "$type: v1"
  B=$S/$kind/conf
  for point in staged renamed before-commit committed link-tmp; do
    rm -rf S && cp -a K S
    before=$(dbdump)
    crash $point "$CRETO_TEST_BIN" update apply k2.crupdate --trust root1.json --state "$S"
    case $point in
    committed|link-tmp)
      last_audit "$type $point" applied "$D2" "\\{\"type\":\"$type\",\"name\":\"conf\",\"version\":2,\"statement_digest\":\"$D2\"[^{}]*\\}"
      [ "$(readlink "$B/current")" = 1 ] || fail "$type $point: current moved before its switch"
      if [ $point = link-tmp ]; then
        [ "$(readlink "$B/.current.tmp")" = 2 ] || fail "$type $point: no .current.tmp -> 2"
      fi ;;
    *)
      [ "$(dbdump)" = "$before" ] || fail "$type $point: state database changed before the commit"
      [ "$(readlink "$B/current")" = 1 ] || fail "$type $point: current moved before the commit"
      if [ $point = staged ]; then
        [ ! -e "$B/2" ] || fail "$type $point: version 2 in place before the rename"
        cmp -s p2/d/e/f.bin "$(echo "$S"/staging/*/d/e/f.bin)" || fail "$type $point: staging not complete"
      else
        cmp -s p2/d/e/f.bin "$B/2/d/e/f.bin" || fail "$type $point: version 2 not renamed into place"
      fi ;;
    esac
    cmp -s p1/d/e/f.bin "$B/1/d/e/f.bin" && cmp -s p1/top.txt "$B/current/top.txt" || fail "$type $point: version 1 damaged"
    ok
    case $point in
    committed|link-tmp) expect 1 --err "replay" -- "$CRETO" update apply k2.crupdate --trust root1.json --state "$S" ;;
    *) expect 0 --out "applied $type conf version 2" -- "$CRETO" update apply k2.crupdate --trust root1.json --state "$S" ;;
    esac
    [ "$(readlink "$B/current")" = 2 ] || fail "$type $point: current not at 2 after restart"
    cmp -s p2/d/e/f.bin "$B/current/d/e/f.bin" && cmp -s p2/top.txt "$B/current/top.txt" || fail "$type $point: version 2 content wrong"
    [ "$(q "SELECT version FROM installed WHERE type='$type'")" = 2 ] || fail "$type $point: not at 2 after restart"
    [ "$(q "SELECT count(*) FROM applied WHERE statement_digest='$D2'")" = 1 ] ||
      fail "$type $point: the install is not recorded exactly once"
    case $point in
    committed|link-tmp) applied_once "$type $point" "$D2" ;;
    *) aborted_then_applied "$type $point" "$D2" ;;
    esac
    [ -z "$(ls -A "$S/staging" 2>/dev/null)" ] || fail "$type $point: staging leftovers"
    [ "$(ls "$B")" = "$(printf '1\n2\ncurrent')" ] || fail "$type $point: unexpected entries in $B: $(ls "$B")"
    no_tmp "$type $point after restart"
  done
done

# ---- durability: every directory created before the commit is fsynced in
# its parent before the commit (the staging area aside, which is renamed
# away).  Traced up to the kill at before-commit, so nothing after counts. ----
dirsync() { # LABEL CMD...
  local label=$1; shift
  rm -f trace.log
  crash before-commit strace -f -y -qq -o trace.log -e trace=mkdir,mkdirat,fsync,fdatasync "$@"
  awk -v sdir="$S" -v label="$label" '
    / = 0$/ && match($0, /mkdir(at)?\((AT_FDCWD, )?"[^"]+"/) {
      p = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", p); sub(/"$/, "", p)
      made[++nm] = p; mline[nm] = NR }
    match($0, /f(data)?sync\([0-9]+<[^>]+>/) {
      p = substr($0, RSTART, RLENGTH); sub(/^[^<]*</, "", p); sub(/>$/, "", p)
      synced[++ns] = p; sline[ns] = NR }
    END {
      bad = nm == 0
      for (i = 1; i <= nm; i++) {
        d = made[i]; parent = d; sub(/\/[^\/]*$/, "", parent)
        if (d == sdir || d == sdir "/staging" || parent == sdir "/staging") continue
        ok = 0
        for (k = 1; k <= ns; k++) if (sline[k] > mline[i] && synced[k] == parent) ok = 1
        if (!ok) { print label ": " d " created, its parent never fsynced before the commit" > "/dev/stderr"; bad = 1 }
      }
      exit bad
    }' trace.log && ok || fail "$label: a directory created before the commit is not durable"
}
if ! command -v strace >/dev/null; then
  echo "note: strace missing, directory durability not checked (scripts/deps.sh should install strace)"
elif ! strace -qq -o /dev/null true 2>/dev/null; then
  echo "note: strace cannot trace here, directory durability not checked"
else
  rm -rf S && cp -a B1 S
  dirsync "first rotation" "$CRETO_TEST_BIN" update apply r2.crupdate --trust root1.json --state "$S"
  rm -rf S && "$CRETO" state init --state "$S" --trust root1.json >/dev/null
  dirsync "first install" "$CRETO_TEST_BIN" update apply k1.crupdate --trust root1.json --state "$S"
fi
finish
