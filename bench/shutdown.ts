// bench:shutdown — SIGTERM during N concurrent uploads, on the real server
// process. Every upload must either complete (its bytes read back from
// storage with the sha256 the client computed) or its client must get an
// error; afterwards storage holds no partial object (original without
// manifest, fs temp file) and no pending multipart upload.
//
//   npm run bench:shutdown -- [--backend s3|fs] [--uploads 200] [--rounds 3] [--grace-ms 3000] [--term-at-ms 2000]

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.ts';
import { createStorage } from '../src/storage/index.ts';
import { childLeftovers, startChild } from '../test/helpers/child-server.ts';
import { arg, BENCH_ENV, loadNote, MiB, payloadHead, rssSampler, s3ForBench, slowBody } from './lib/harness.ts';

const backend = arg('backend', 's3') as 's3' | 'fs';
const uploads = Number(arg('uploads', '200'));
const rounds = Number(arg('rounds', '3'));
const graceMs = Number(arg('grace-ms', '3000'));
const termAtMs = Number(arg('term-at-ms', '2000'));
const CHUNK = 32 * 1024;
const EVERY_MS = 100; // 320 KiB/s per client

interface Round {
  uploads: number;
  completedVerified: number;
  clientErrors: number;
  lost: number;
  partialObjects: number;
  pendingMultipart: number;
  exitCode: number | null;
  rssMiB: number;
}

async function round(): Promise<Round> {
  const srv = await startChild({
    backend,
    label: 'bench-shutdown',
    env: { ...BENCH_ENV, SLUICE_SHUTDOWN_GRACE_MS: String(graceMs), SLUICE_SHUTDOWN_ABORT_MS: '15000' },
  });
  const head = await payloadHead();
  const rss = rssSampler(srv.proc.pid!);
  const agent = new Agent({ connections: uploads + 10 });
  const results = await new Promise<{ status: number; sha256: string; id?: string; expected: string }[]>((resolve) => {
    const all = Array.from({ length: uploads }, async (_, i) => {
      const size = 128 * 1024 + Math.floor(Math.random() * (3 * MiB - 128 * 1024));
      const { body, state } = slowBody(head, size, CHUNK, EVERY_MS);
      try {
        const res = await request(`${srv.url}/v1/files/u${i}.png`, {
          method: 'PUT',
          headers: { 'content-length': String(size) },
          body: Readable.from(body),
          dispatcher: agent,
        });
        const text = await res.body.text();
        if (res.statusCode !== 201) return { status: res.statusCode, sha256: '', expected: state.sha256 };
        const f = (JSON.parse(text) as { files: { id: string; sha256: string }[] }).files[0]!;
        return { status: 201, sha256: f.sha256, id: f.id, expected: state.sha256 };
      } catch {
        return { status: 0, sha256: '', expected: state.sha256 };
      }
    });
    setTimeout(() => srv.proc.kill('SIGTERM'), termAtMs);
    void Promise.all(all).then(resolve);
  });
  const rssMiB = await rss.stop();
  const { code } = await srv.exited;
  await agent.close();

  // Verify against storage directly: the server is gone.
  const storage = await createStorage(loadConfig(srv.env));
  const prefix = `${loadConfig(srv.env).keyPrefix}/`;
  const keys: string[] = [];
  for (let after: string | undefined; ; ) {
    const page = await storage.list({ prefix, startAfter: after });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated || page.objects.length === 0) break;
    after = page.objects.at(-1)!.key;
  }
  const groups = new Map<string, Set<string>>();
  for (const k of keys) {
    const [, , id, leaf] = k.split('/');
    if (!id || !leaf) continue;
    (groups.get(id) ?? groups.set(id, new Set()).get(id)!).add(leaf);
  }
  let completedVerified = 0;
  let lost = 0;
  for (const r of results.filter((x) => x.status === 201)) {
    const g = groups.get(r.id!);
    let ok = g?.has('manifest.json') === true && r.sha256 === r.expected;
    if (ok) {
      const { body } = await storage.get(`${prefix}default/${r.id}/original`);
      const h = createHash('sha256');
      for await (const c of body) h.update(c as Buffer);
      ok = h.digest('hex') === r.expected;
    }
    if (ok) completedVerified++;
    else lost++;
  }
  const left = await childLeftovers(srv);
  const partialObjects = [...groups.values()].filter((g) => !g.has('manifest.json')).length + left.keys.filter((k) => k.includes('.sluice-tmp-')).length;
  await storage.close();
  await srv.cleanup();
  return {
    uploads,
    completedVerified,
    clientErrors: results.filter((r) => r.status !== 201).length,
    lost,
    partialObjects,
    pendingMultipart: left.pending,
    exitCode: code,
    rssMiB,
  };
}

const minio = await s3ForBench(backend);
try {
  console.log(`bench:shutdown backend=${backend} uploads=${uploads} rounds=${rounds} grace=${graceMs}ms SIGTERM at ${termAtMs}ms; ${await loadNote()}`);
  const all: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await round();
    all.push(r);
    console.log(`round ${i + 1}: completed_verified=${r.completedVerified} client_errors=${r.clientErrors} lost=${r.lost} partial_objects=${r.partialObjects} pending_multipart=${r.pendingMultipart} exit=${r.exitCode} peak_rss=${r.rssMiB}MiB`);
  }
  const sum = (f: (r: Round) => number) => all.reduce((n, r) => n + f(r), 0);
  console.log(`after: ${await loadNote()}`);
  console.log(
    `RESULT shutdown uploads=${sum((r) => r.uploads)} completed_verified=${sum((r) => r.completedVerified)} client_errors=${sum((r) => r.clientErrors)} lost=${sum((r) => r.lost)} partial_objects=${sum((r) => r.partialObjects)} pending_multipart=${sum((r) => r.pendingMultipart)}`,
  );
} finally {
  await minio?.stop();
}
