// extract.cjs - regenerate the pinned Kubernetes JSON schemas in this folder
// from the npm package kubernetes-models (see SOURCE.md). Not run by the
// test suite (which has no network); run by hand when the pin changes:
//
//   mkdir /tmp/km && cd /tmp/km && npm init -y && npm install kubernetes-models@4.3.1
//   NODE_PATH=/tmp/km/node_modules node tests/ops/k8s-schemas/extract.cjs tests/ops/k8s-schemas
//
// kubernetes-models 4.3.1 (Kubernetes 1.27.1 OpenAPI) ships every definition as
// a plain JSON schema object that its _schemas/*.js modules hand to
// register(id, schema) of @kubernetes-models/validate. This script replaces
// register() to collect them, then writes one self-contained draft-07 file
// per kind with the closure of the definitions it references, made "strict"
// the way yannh/kubernetes-json-schema's *-standalone-strict files are:
//   - "$ref": "ID#"            -> "$ref": "#/definitions/ID"
//   - "nullable": true         -> null added to "type"
//   - an object schema with "properties" and no "additionalProperties"
//                              -> "additionalProperties": false (a misspelt
//                                 or misplaced field is an error)
//   - "format": "quantity"     -> also a "pattern" (the package's own regex),
//                                 since Python's jsonschema knows no such format
'use strict';
const fs = require('fs');
const path = require('path');

const validate = require('@kubernetes-models/validate');
const registered = new Map();
// the _schemas modules call validate_1.register at run time: patch the export
validate.register = (id, schema) => { if (!registered.has(id)) registered.set(id, schema); };

const pkgDir = path.dirname(require.resolve('kubernetes-models/package.json'));
const version = require('kubernetes-models/package.json').version;

const KINDS = {
  'statefulset-apps-v1': 'IoK8sApiAppsV1StatefulSet',
  'deployment-apps-v1': 'IoK8sApiAppsV1Deployment',
  'service-v1': 'IoK8sApiCoreV1Service',
  'job-batch-v1': 'IoK8sApiBatchV1Job',
  'poddisruptionbudget-policy-v1': 'IoK8sApiPolicyV1PodDisruptionBudget',
  'configmap-v1': 'IoK8sApiCoreV1ConfigMap',
  'secret-v1': 'IoK8sApiCoreV1Secret',
  'persistentvolumeclaim-v1': 'IoK8sApiCoreV1PersistentVolumeClaim',
  'namespace-v1': 'IoK8sApiCoreV1Namespace',
};
// the regex of format "quantity" in @kubernetes-models/validate
const QUANTITY = '^[+-]?(?:\\d+|\\d+\\.\\d+|\\d+\\.|\\.\\d+)(?:[KMGTPE]i|(?:[YZEPTGMkhdcmunpfazy]|da)|[eE][+-]?(?:\\d+|\\d+\\.\\d+|\\d+\\.|\\.\\d+))?$';

function convert(node, refs) {
  if (Array.isArray(node)) return node.map((x) => convert(x, refs));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable') continue;
    if (k === '$ref' && typeof v === 'string') {
      const id = v.replace(/#$/, '');
      refs.add(id);
      out.$ref = '#/definitions/' + id;
      continue;
    }
    // "properties" maps names to schemas: convert each value, keep the names
    if (k === 'properties' && v && typeof v === 'object') {
      out.properties = {};
      for (const [pn, ps] of Object.entries(v)) out.properties[pn] = convert(ps, refs);
      continue;
    }
    out[k] = convert(v, refs);
  }
  if (node.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if (out.format === 'quantity') out.pattern = QUANTITY;
  return out;
}

const outDir = process.argv[2] || '.';
for (const [file, mod] of Object.entries(KINDS)) {
  registered.clear();
  // modules cache: addSchema registers the closure again on each call
  require(path.join(pkgDir, '_schemas', mod + '.js')).addSchema();
  const rootId = [...registered.keys()].pop();
  const defs = {};
  const todo = [rootId];
  while (todo.length) {
    const id = todo.pop();
    if (defs[id]) continue;
    if (!registered.has(id)) throw new Error(`${file}: ${id} not registered`);
    const refs = new Set();
    defs[id] = convert(registered.get(id), refs);
    for (const r of refs) if (!defs[r]) todo.push(r);
  }
  const sorted = {};
  for (const id of Object.keys(defs).sort()) sorted[id] = defs[id];
  const doc = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    description: `${rootId}, Kubernetes 1.27.1 API, from the npm package kubernetes-models@${version} (strict, standalone; tests/ops/k8s-schemas/SOURCE.md)`,
    allOf: [{ $ref: '#/definitions/' + rootId }],
    definitions: sorted,
  };
  fs.writeFileSync(path.join(outDir, file + '.json'), JSON.stringify(doc, null, 1) + '\n');
  console.log(`${file}.json: ${rootId}, ${Object.keys(sorted).length} definitions`);
}
