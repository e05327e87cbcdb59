// validate.js - schema validation of Kubernetes objects with the validators
// of the npm package kubernetes-models (4.x runs on Node 20): every object
// of every YAML file given must be of a known apiVersion/kind and valid.
// Usage: node validate.js FILE...   (NODE_PATH names the install)
"use strict";
const fs = require("fs");
const yaml = require("js-yaml");

const groups = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
};
let bad = 0, n = 0;
for (const file of process.argv.slice(2)) {
  for (const obj of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!obj) continue;
    if (obj.kind === "Kustomization") continue; // not a cluster object
    const mod = groups[obj.apiVersion];
    if (!mod) { console.log(`${file}: ${obj.apiVersion} ${obj.kind}: unknown apiVersion`); bad++; continue; }
    const Cls = require(mod)[obj.kind];
    if (!Cls) { console.log(`${file}: ${obj.apiVersion} ${obj.kind}: unknown kind`); bad++; continue; }
    try {
      new Cls(obj).validate();
      n++;
    } catch (e) {
      console.log(`${file}: ${obj.kind}/${obj.metadata && obj.metadata.name}: ${e.message}`);
      bad++;
    }
  }
}
(bad ? console.error : console.log)(`validated ${n} objects, ${bad} invalid`);
process.exit(bad ? 1 : 0);
