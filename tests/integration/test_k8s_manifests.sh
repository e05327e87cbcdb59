#!/bin/bash
# test_k8s_manifests.sh - deploy/k8s: `creto lint` finds no error (nor
# warning) in the base, the overlay, and the overlay rendered; the objects
# pass offline schema validation with kubernetes-models 4.5.1 (npm,
# installed under the build tree once; skipped when npm cannot install it);
# the overlay pins one model version and verifies that same version.
. "$(dirname "$0")/lib.sh"
K8S=$CRETO_SRC_DIR/deploy/k8s

expect 0 --out "0 errors, 0 warnings" -- "$CRETO" lint --registry harbor.internal "$K8S"
expect 0 --out "0 errors, 0 warnings" -- "$CRETO" lint "$K8S"

# the first python3 with PyYAML: the one on PATH, else Debian's (python3-yaml)
PY=python3
$PY -c 'import yaml' 2>/dev/null || PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || skip "python3-yaml missing (scripts/deps.sh test installs it)"
"$PY" "$CRETO_SRC_DIR/tests/k8s/render.py" "$K8S/overlays/example" >"$T/rendered.yaml" && ok || fail "render"
expect 0 --out "0 errors, 0 warnings" -- "$CRETO" lint --registry harbor.internal "$T/rendered.yaml"
"$PY" - "$T/rendered.yaml" <<'PY' && ok || fail "rendered overlay"
import sys, yaml
objs = list(yaml.safe_load_all(open(sys.argv[1])))
kinds = sorted({o["kind"] for o in objs})
assert kinds == ["ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim",
                 "Service", "ServiceAccount", "StatefulSet"], kinds
assert all(o["metadata"].get("namespace") == "creto-inference" for o in objs if o["kind"] != "Namespace")
v = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "vllm"][0]["spec"]["template"]["spec"]
sub = {m["subPath"] for c in v["initContainers"] + v["containers"] for m in c["volumeMounts"] if m["name"] == "models"}
assert sub == {"state/models/llama-3.1-70b-instruct/2024.09.01"}, sub
imgs = [c["image"] for c in v["initContainers"] + v["containers"]]
assert imgs == ["harbor.internal/creto/creto@sha256:" + "3" * 64,
                "harbor.internal/creto/vllm-openai@sha256:" + "4" * 64], imgs
PY
# A broken overlay is caught after rendering: verifying one version and
# serving another.
"$PY" - "$T/rendered.yaml" >"$T/skew.yaml" <<'PY'
import sys, yaml
objs = list(yaml.safe_load_all(open(sys.argv[1])))
for o in objs:
    if o["kind"] == "Deployment" and o["metadata"]["name"] == "vllm":
        o["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = \
            "state/models/llama-3.1-70b-instruct/2024.10.01"
yaml.safe_dump_all(objs, sys.stdout, sort_keys=False)
PY
expect 1 --out "[model-unverified]" -- "$CRETO" lint --registry harbor.internal "$T/skew.yaml"

# Offline schema validation: kubernetes-models 4.x validators (Node 20).
NM=$CRETO_BUILD_DIR/k8s-validate
if [ ! -d "$NM/node_modules/kubernetes-models" ]; then
  command -v npm >/dev/null || skip "npm missing: schema validation not run"
  mkdir -p "$NM"
  timeout 300 npm install --silent --no-audit --no-fund --prefix "$NM" kubernetes-models@4.5.1 js-yaml@4.1.0 \
    >"$T/npm.log" 2>&1 || skip "npm could not install kubernetes-models 4.5.1: $(tail -1 "$T/npm.log")"
fi
files=$(find "$K8S/base" -name '*.yaml' | sort)
# shellcheck disable=SC2086
expect 0 --out "0 invalid" -- env NODE_PATH="$NM/node_modules" node "$CRETO_SRC_DIR/tests/k8s/validate.js" \
  $files "$T/rendered.yaml"
# the validators do reject a broken object
sed 's/replicas: 4/replicas: four/' "$K8S/base/vllm.yaml" >"$T/broken.yaml"
expect 1 --err "1 invalid" --out "replicas" -- env NODE_PATH="$NM/node_modules" node "$CRETO_SRC_DIR/tests/k8s/validate.js" \
  "$T/broken.yaml"

# ---- the ConfigMap's creto.conf and gateway.conf follow the real config
# schema (docs/config.md): only missing files may be reported here (the
# volumes are not mounted), never a syntax error or an unknown key
"$PY" - "$CRETO_SRC_DIR/deploy/k8s/base/config.yaml" "$T" <<'PY' && ok || fail "ConfigMap creto-config unreadable"
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "creto-config":
        for k in ("creto.conf", "gateway.conf"):
            open(sys.argv[2] + "/" + k, "w").write(d["data"][k])
PY
"$CRETO" config check --config "$T/creto.conf" --no-keys >/dev/null 2>"$T/cc.err"
if grep -qE "line [0-9]+:|unknown (key|section)" "$T/cc.err"; then fail "creto.conf: $(grep -E 'line [0-9]+:|unknown' "$T/cc.err" | head -3)"; else ok; fi
"$CRETO" gateway --config "$T/gateway.conf" --check >/dev/null 2>"$T/gc.err"
if grep -qE "line [0-9]+:|unknown (key|section)" "$T/gc.err"; then fail "gateway.conf: $(head -3 "$T/gc.err")"; else ok; fi
finish
