// The OpenAPI description builds, is served at /docs, and lists every route the
// app serves (bar the hidden operational ones), with the schemas routes validate with.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

/** Hidden on purpose (schema.hide): the spec itself and the Prometheus endpoint. */
const HIDDEN = new Set(['/docs', '/docs/openapi.json', '/metrics']);

/** "METHOD /path/{}" for every route in Fastify's printRoutes tree (HEAD only where declared beside GET it is implicit). */
function servedRoutes(tree: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = Math.floor(at / 4);
    const m = /^(\S+) \(([A-Z, ]+)\)$/.exec(line.slice(at + 3));
    const segment = m ? m[1]! : line.slice(at + 3).trim();
    stack.length = depth;
    stack.push(segment);
    if (!m) continue;
    const full = stack.join('').replace(/:[^/|]+(\|:[^/]+)*/g, '{}');
    // The API: /v1 routes and the probes (the upload page's static files are not API).
    if (HIDDEN.has(full) || !(full.startsWith('/v1/') || full === '/v1' || full === '/health' || full === '/ready')) continue;
    for (const method of m[2]!.split(', ')) if (method !== 'HEAD') out.add(`${method} ${full}`);
  }
  return out;
}

describe('OpenAPI', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  it('is served at /docs and lists every route', async () => {
    const res = await call(`${srv.url}/docs/openapi.json`);
    assert.equal(res.status, 200);
    const spec = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    assert.match(spec.openapi, /^3\./);
    assert.deepEqual((await call(`${srv.url}/docs`)).json(), spec);

    const documented = new Set<string>();
    for (const [p, ops] of Object.entries(spec.paths)) {
      for (const method of Object.keys(ops)) if (method !== 'head') documented.add(`${method.toUpperCase()} ${p.replace(/\{[^}]+\}/g, '{}')}`);
    }
    const served = servedRoutes(srv.app.printRoutes({ commonPrefix: false }));
    assert.ok(served.size >= 7, [...served].join('\n'));
    assert.deepEqual([...documented].sort(), [...served].sort());
  });

  it('carries the schemas the routes validate with', async () => {
    const spec = (await call(`${srv.url}/docs/openapi.json`)).json<{ paths: Record<string, Record<string, { parameters?: { name: string }[] }>> }>();
    const list = spec.paths['/v1/files']!.get!;
    assert.deepEqual(list.parameters?.map((p) => p.name).sort(), ['cursor', 'limit', 'prefix']);
  });
});
