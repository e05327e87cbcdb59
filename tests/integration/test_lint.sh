#!/bin/bash
# test_lint.sh - `creto lint` on the fixtures of tests/lint: the design
# document's manifest, one fixture per rule that fires it (bad/RULE*.yaml)
# and ones that must not (good/), YAML bombs and malformed input, the JSON
# and SARIF 2.1.0 shapes, and the exit codes.
. "$(dirname "$0")/lib.sh"
FX=$CRETO_SRC_DIR/tests/lint
REG="--registry harbor.internal"

# rules RULE... present in the --json findings of FILE (exit code in $RC)
lint_json() { RC=0; "$CRETO" lint --json $REG "$@" >"$T/out.json" 2>"$T/err" || RC=$?; }
has_rule() { python3 - "$T/out.json" "$@" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
got = {f["rule"] for f in doc["findings"]}
missing = [r for r in sys.argv[2:] if r not in got]
if missing:
    print("missing:", missing, "got:", sorted(got)); sys.exit(1)
PY
}
lacks_rule() { python3 - "$T/out.json" "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
hit = [f for f in doc["findings"] if f["rule"] == sys.argv[2]]
if hit:
    print("unexpected:", hit); sys.exit(1)
PY
}

# 1. The design document's own manifest.
lint_json "$FX/design-doc.yaml"
[ "$RC" = 1 ] && ok || fail "design-doc.yaml: exit $RC, want 1"
has_rule vllm-api-key-file image-digest vllm-usage-stats vllm-offline model-unverified namespace-egress \
  probes no-security-context && ok || fail "design-doc.yaml lacks a required finding"
expect 1 --err "creto: lint: 6 errors" --out "design-doc.yaml:21:13: error [vllm-api-key-file]" -- \
  "$CRETO" lint $REG "$FX/design-doc.yaml"

# 2. Every rule has a fixture that fires it; every fixture fires its rule.
"$CRETO" lint --sarif "$FX/good/clean.yaml" >"$T/rules.sarif"
python3 -c 'import json,sys; [print(r["id"]) for r in json.load(open(sys.argv[1]))["runs"][0]["tool"]["driver"]["rules"]]' \
  "$T/rules.sarif" >"$T/rules"
[ "$(grep -c '' "$T/rules")" -ge 20 ] && ok || fail "fewer than 20 rules listed"
rule_of() { # longest rule id that names fixture $1
  local base best="" r
  base=$(basename "$1" .yaml)
  while read -r r; do
    if [ "$base" = "$r" ] || [ "${base#"$r"-}" != "$base" ]; then
      [ ${#r} -gt ${#best} ] && best=$r
    fi
  done <"$T/rules"
  echo "$best"
}
while read -r r; do
  { [ -e "$FX/bad/$r.yaml" ] || compgen -G "$FX/bad/$r-*.yaml" >/dev/null; } && ok ||
    fail "rule $r has no fixture in tests/lint/bad"
done <"$T/rules"
for f in "$FX"/bad/*.yaml; do
  r=$(rule_of "$f")
  [ -n "$r" ] || { fail "$f names no rule"; continue; }
  lint_json "$f"
  has_rule "$r" >/dev/null && ok || fail "$(basename "$f"): rule $r did not fire"
  sev=$(python3 -c 'import json,sys; print(max((f["severity"]=="error") for f in json.load(open(sys.argv[1]))["findings"]))' "$T/out.json")
  if [ "$sev" = True ]; then [ "$RC" = 1 ] && ok || fail "$(basename "$f"): exit $RC with an error finding"; fi
done
# ... and the ones that must not fire it.
lint_json "$FX/good/clean.yaml"
[ "$RC" = 0 ] && ok || fail "good/clean.yaml: exit $RC"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["findings"]) != 0)' "$T/out.json" \
  && ok || fail "good/clean.yaml has findings: $(cat "$T/out.json")"
for f in "$FX"/good/*.yaml; do
  [ "$(basename "$f")" = clean.yaml ] && continue
  r=$(rule_of "$f")
  [ -n "$r" ] || { fail "$f names no rule"; continue; }
  lint_json "$f"
  lacks_rule "$r" && ok || fail "$(basename "$f"): rule $r fired"
done
# vllm-offline-envfrom also covers vllm-usage-stats through envFrom
lint_json "$FX/good/vllm-offline-envfrom.yaml"
lacks_rule vllm-usage-stats && ok || fail "envFrom ConfigMap not followed for DO_NOT_TRACK"

# 3. Registries: without --registry, public registries are refused and an
# internal one passes; with it, only the named ones.
expect 1 --out "[image-registry]" -- "$CRETO" lint "$FX/bad/image-registry-public.yaml"
"$CRETO" lint "$FX/good/clean.yaml" | grep -q image-registry && fail "internal registry refused" || ok
expect 1 --out "[image-registry]" -- "$CRETO" lint --registry other.internal "$FX/good/clean.yaml"
expect 0 -- "$CRETO" lint --registry other.internal --registry harbor.internal/creto "$FX/good/clean.yaml"
expect 1 --out "[image-registry]" -- "$CRETO" lint --registry harbor.internal/cret "$FX/good/clean.yaml"

# 4. Directories, several files, standard input, multi-document files.
mkdir -p "$T/dir/sub" "$T/dir/.hidden"
cp "$FX/bad/privileged.yaml" "$T/dir/sub/a.yml"
cp "$FX/bad/privileged.yaml" "$T/dir/.hidden/a.yaml"
cp "$FX/bad/privileged.yaml" "$T/dir/notes.txt"
ln -s "$FX/bad/host-network.yaml" "$T/dir/link.yaml"
lint_json "$T/dir"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["files"]==1, d["files"]; assert {f["file"] for f in d["findings"]}=={sys.argv[2]}' \
  "$T/out.json" "$T/dir/sub/a.yml" && ok || fail "directory walk: $(head -c 400 "$T/out.json")"
lacks_rule host-network && ok || fail "directory walk followed a symbolic link"
expect 1 --out "-:" -- sh -c "'$CRETO' lint $REG - <'$FX/bad/privileged.yaml'"
expect 1 --out "link.yaml: error [yaml] is a symbolic link" -- "$CRETO" lint "$T/dir/link.yaml"

# 5. Usage and I/O errors.
expect 2 -- "$CRETO" lint
expect 2 --err "exclude each other" -- "$CRETO" lint --json --sarif "$FX/good/clean.yaml"
expect 2 --err "is not a registry" -- "$CRETO" lint --registry "a b" "$FX/good/clean.yaml"
expect 2 -- "$CRETO" lint --frobnicate "$FX/good/clean.yaml"
expect 3 --err "no-such.yaml" -- "$CRETO" lint "$T/no-such.yaml"
expect 3 --out '"code": 3' -- "$CRETO" lint --json "$T/no-such.yaml"
expect 0 --out "usage: creto lint" -- "$CRETO" lint --help

# 6. Hostile YAML: each refused with a clear reason, in bounded time and memory.
bomb() { # NAME WANT: the file $T/NAME gives a yaml finding containing WANT
  local rc=0
  # memory bound: 1 GB of address space (not under ASan, whose shadow
  # memory needs terabytes of it)
  ( grep -qa __asan_init "$CRETO" || ulimit -v 1000000; timeout 60 "$CRETO" lint --json "$T/$1" >"$T/out.json" 2>"$T/err" ) || rc=$?
  if [ "$rc" != 1 ]; then fail "$1: exit $rc: $(cat "$T/err")"; return; fi
  python3 - "$T/out.json" "$2" <<'PY' && ok || fail "$1: $(head -c 300 "$T/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert any(f["rule"] == "yaml" and sys.argv[2] in f["message"] for f in d["findings"])
PY
}
python3 - "$T" <<'PY'
import sys
t = sys.argv[1]
open(t + "/big.yaml", "w").write("a: " + "x" * (8 * 1024 * 1024) + "\n")
open(t + "/scalar.yaml", "w").write("a: " + "x" * (1024 * 1024 + 1) + "\n")
open(t + "/nodes.yaml", "w").write("[" + ",".join(["1"] * 600000) + "]\n")
open(t + "/deep.yaml", "w").write("[" * 10000 + "]" * 10000 + "\n")
open(t + "/deepmap.yaml", "w").write("".join(" " * i + "k:\n" for i in range(200)))
lines = ["a0: &a0 [" + ",".join(["x"] * 10) + "]"]
for i in range(1, 12):
    lines.append("a%d: &a%d [" % (i, i) + ",".join(["*a%d" % (i - 1)] * 10) + "]")
open(t + "/laughs.yaml", "w").write("\n".join(lines) + "\n")
# a big scalar aliased many times: counted by its size
lines = ["s: &s " + "y" * 60000, "l: [" + ",".join(["*s"] * 2000) + "]"]
open(t + "/scalaralias.yaml", "w").write("\n".join(lines) + "\n")
# many documents, each an alias bomb of its own
doc = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
open(t + "/docs.yaml", "w").write("---\n".join([doc] * 2000))
open(t + "/dup.yaml", "w").write("a: 1\nb: 2\n\"a\": 3\n")
open(t + "/dupmany.yaml", "w").write("".join("k%d: 1\n" % i for i in range(100000)) + "k5: 2\n")
open(t + "/complexkey.yaml", "w").write("? [a]\n: 1\n")
open(t + "/mergebad.yaml", "w").write("a:\n  <<: 5\n")
open(t + "/control.yaml", "w").write("a: b\x01c\n")
PY
bomb big.yaml "larger than"
bomb scalar.yaml "scalar of"
bomb nodes.yaml "YAML nodes"
bomb deep.yaml "nested deeper"
bomb deepmap.yaml "nested deeper"
bomb laughs.yaml "alias expansion"
bomb scalaralias.yaml "alias expansion"
bomb docs.yaml "alias expansion"
bomb dup.yaml "duplicate key 'a'"
bomb dupmany.yaml "duplicate key 'k5'"
bomb complexkey.yaml "not a scalar"
bomb mergebad.yaml "merge key"
bomb control.yaml "control characters"
# the line of a YAML error is the finding's line
expect 1 --out "yaml-duplicate-key.yaml:8:3: error [yaml] duplicate key 'hostNetwork' (first at line 7)" -- \
  "$CRETO" lint "$FX/bad/yaml-duplicate-key.yaml"

# 7. SARIF 2.1.0: the properties the schema requires, and what code-scanning
# tools read (ruleId/ruleIndex agreeing with the driver's rules, levels,
# locations with 1-based regions, relative URIs).
RC=0
"$CRETO" lint --sarif $REG "$FX/design-doc.yaml" "$FX/bad/yaml-syntax.yaml" "$FX/bad/host-network.yaml" \
  >"$T/out.sarif" 2>"$T/err" || RC=$?
[ "$RC" = 1 ] && ok || fail "sarif: exit $RC"
python3 - "$T/out.sarif" <<'PY' && ok || fail "SARIF shape"
import json, re, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == "2.1.0", d["version"]
assert d["$schema"].endswith("sarif-2.1.0.json")
assert isinstance(d["runs"], list) and len(d["runs"]) == 1
run = d["runs"][0]
drv = run["tool"]["driver"]
assert isinstance(drv["name"], str) and drv["name"]
assert re.match(r"^\d+\.\d+\.\d+", drv["version"])
ids = [r["id"] for r in drv["rules"]]
assert len(ids) == len(set(ids))
for r in drv["rules"]:
    assert r["shortDescription"]["text"] and r["help"]["text"]
    assert r["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
assert run["columnKind"] in ("utf16CodeUnits", "unicodeCodePoints")
res = run["results"]
assert len(res) >= 10, len(res)
seen = set()
for x in res:
    assert isinstance(x["message"]["text"], str) and x["message"]["text"]
    assert x["level"] in ("none", "note", "warning", "error")
    assert ids[x["ruleIndex"]] == x["ruleId"]
    seen.add(x["ruleId"])
    for loc in x["locations"]:
        pl = loc["physicalLocation"]
        uri = pl["artifactLocation"]["uri"]
        assert re.match(r"^[A-Za-z0-9._~/%-]+$", uri), uri
        if "region" in pl:
            assert pl["region"]["startLine"] >= 1 and pl["region"].get("startColumn", 1) >= 1
        for ll in loc.get("logicalLocations", []):
            assert ll["fullyQualifiedName"]
assert {"vllm-api-key-file", "yaml", "host-network"} <= seen, seen
PY
# --json: the documented shape (docs/lint.md)
lint_json "$FX/design-doc.yaml"
python3 - "$T/out.json" <<'PY' && ok || fail "JSON shape"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and d["status"] == "rejected" and d["code"] == 1
assert d["files"] == 1 and d["errors"] == 6 and d["warnings"] >= 3
for f in d["findings"]:
    assert set(f) == {"file", "line", "column", "rule", "severity", "message", "object", "fix"}, f
    assert f["severity"] in ("error", "warning", "note")
PY
# a file name that needs percent-encoding in SARIF
cp "$FX/bad/host-network.yaml" "$T/a b%.yaml"
(cd "$T" && "$CRETO" lint --sarif "a b%.yaml" >"$T/pct.sarif") || true
grep -q '"uri": "a%20b%25.yaml"' "$T/pct.sarif" && ok || fail "SARIF uri not percent-encoded: $(grep uri "$T/pct.sarif")"

finish
