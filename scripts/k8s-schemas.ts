// Writes JSON schemas in kubeconform's layout from a Kubernetes OpenAPI v2
// document (swagger.json), so `kubeconform -schema-location` can check
// deploy/k8s/ without fetching schemas from the web (scripts/check-k8s.sh).
//   node scripts/k8s-schemas.ts <swagger.json> <out-dir>
//
// The same conversion as openapi2jsonschema --strict, which makes kubeconform's
// usual schemas: one _definitions.json holding every definition, and per kind
// a file `<kind>-<group>-<version>.json` (core: `<kind>-<version>.json`) that
// refers into it. Strict: an object with declared properties takes no others,
// so a misspelt field fails instead of being dropped by the API server. Two
// types are serialised differently from what the spec declares and are
// widened as openapi2jsonschema does: int-or-string, and Quantity (`cpu: 2`).

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

type Schema = { [k: string]: unknown };
interface Swagger {
  info: { version: string };
  definitions: Record<string, Schema>;
}

const [input, outDir] = process.argv.slice(2);
if (!input || !outDir) {
  process.stderr.write('usage: node scripts/k8s-schemas.ts <swagger.json> <out-dir>\n');
  process.exit(2);
}

const INT_OR_STRING = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
const QUANTITY = { oneOf: [{ type: 'string' }, { type: 'number' }] };

function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (node === null || typeof node !== 'object') return node;
  const s = node as Schema;
  if (s.format === 'int-or-string') return INT_OR_STRING;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    // Property names (under `properties`) are not schemas keywords; their values are schemas.
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, ps]) => [p, strict(ps)])) : strict(v);
  }
  if (s.properties !== undefined && s.additionalProperties === undefined && s['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

const swagger = JSON.parse(await readFile(input, 'utf8')) as Swagger;
const definitions: Record<string, unknown> = {};
for (const [name, def] of Object.entries(swagger.definitions)) {
  definitions[name] = name === 'io.k8s.apimachinery.pkg.api.resource.Quantity' ? QUANTITY : strict(def);
}
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, '_definitions.json'), JSON.stringify({ definitions }));

let kinds = 0;
for (const [name, def] of Object.entries(swagger.definitions)) {
  const gvks = def['x-kubernetes-group-version-kind'] as { group: string; version: string; kind: string }[] | undefined;
  for (const { group, version, kind } of gvks ?? []) {
    // kubeconform's {{ .KindSuffix }}: -<first label of the group>-<version>, or -<version> for the core group.
    const suffix = group === '' ? `-${version}` : `-${group.split('.')[0]}-${version}`;
    const file = `${kind.toLowerCase()}${suffix}.json`;
    await writeFile(join(outDir, file), JSON.stringify({ $ref: `_definitions.json#/definitions/${name}` }));
    kinds++;
  }
}
process.stdout.write(`k8s-schemas: ${kinds} kinds of Kubernetes ${swagger.info.version} into ${outDir}\n`);
