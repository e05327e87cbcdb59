#!/usr/bin/env python3
"""render.py - the small subset of kustomize that deploy/k8s uses, so the
test can render the example overlay with what Debian ships (python3-yaml):
`resources` (files and directories holding a kustomization.yaml),
`namespace`, `images` (newName/newTag/digest) and `patches` with inline
JSON 6902 operations (add/replace/remove) selected by kind and name.
Anything else in a kustomization is refused, so the renderer cannot
silently differ from kustomize.  Usage: render.py DIR > all.yaml"""
import os
import sys

import yaml

KNOWN = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}


def pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def apply_ops(obj, ops):
    for op in ops:
        parent, key = pointer(obj, op["path"])
        if isinstance(parent, list):
            key = len(parent) if key == "-" else int(key)
        if op["op"] == "replace":
            if isinstance(parent, dict) and key not in parent:
                raise SystemExit("replace of a missing path %s" % op["path"])
            parent[key] = op["value"]
        elif op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(key, op["value"])
            else:
                parent[key] = op["value"]
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise SystemExit("unsupported patch op %s" % op["op"])


def set_images(obj, images):
    def walk(spec):
        for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
            name = c["image"].split("@")[0]
            base = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            for im in images:
                if im["name"] != base:
                    continue
                new = im.get("newName", base)
                if "digest" in im:
                    c["image"] = new + "@" + im["digest"]
                elif "newTag" in im:
                    c["image"] = new + ":" + im["newTag"]
                else:
                    c["image"] = new
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        walk(spec)
    elif obj["kind"] == "CronJob":
        walk(spec["jobTemplate"]["spec"]["template"]["spec"])
    elif "template" in spec:
        walk(spec["template"]["spec"])


def render(d):
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
    unknown = set(k) - KNOWN
    if unknown:
        raise SystemExit("%s: kustomization fields this renderer does not implement: %s" % (d, sorted(unknown)))
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(d, r))
        if os.path.isdir(p):
            objs += render(p)
        else:
            objs += [o for o in yaml.safe_load_all(open(p)) if o]
    for o in objs:
        if "namespace" in k and o["kind"] != "Namespace":
            o.setdefault("metadata", {})["namespace"] = k["namespace"]
        set_images(o, k.get("images", []))
    for p in k.get("patches", []):
        t = p["target"]
        hit = [o for o in objs if o["kind"] == t["kind"] and o["metadata"]["name"] == t["name"]]
        if len(hit) != 1:
            raise SystemExit("patch target %s matches %d objects" % (t, len(hit)))
        apply_ops(hit[0], yaml.safe_load(p["patch"]))
    return objs


if __name__ == "__main__":
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=False)
