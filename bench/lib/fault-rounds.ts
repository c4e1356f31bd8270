// The rounds of bench:faults that come from issue 13: the scenarios of
// test/jobs-delete-race.test.ts, test/tus-finish-safety.test.ts and
// test/upload-commit-crash.test.ts, run many times over and counted instead
// of asserted. Each round owns its server(s) and storage location.
//   deleteRace:        N files with a job, M of them deleted while the job's save is held → resurrected
//   tusFinishFaults:   storage outages at the commit, and SIGTERM during final PATCHes → tus_finish_lost
//   duplicateFinishes: a second zero-byte final PATCH while the first finish is held → duplicate_finish_lost
//   commitKills:       SIGKILL of a child at a random step of multi-file commits → partial_requests

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.ts';
import { listFiles } from '../../src/core/files.ts';
import { fileKeys } from '../../src/core/keys.ts';
import { createStorage } from '../../src/storage/index.ts';
import type { Storage } from '../../src/storage/storage.ts';
import { startChild, type ChildServer } from '../../test/helpers/child-server.ts';
import { FaultyStorage } from '../../test/helpers/faulty-storage.ts';
import { call, multipartBody, pngOfSize, sha256 } from '../../test/helpers/http.ts';
import { startJobsServer } from '../../test/helpers/jobs.ts';
import { s3Env, startServer, type Backend, type TestServer } from '../../test/helpers/server.ts';
import { createUpload, head, patch } from '../../test/helpers/tus.ts';
import { BENCH_ENV } from './harness.ts';

const isManifest = (key: string) => key.endsWith('/manifest.json');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `fn` over `items`, `width` at a time. */
async function eachLimited<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function allKeys(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (let startAfter: string | undefined; ; ) {
    const page = await storage.list({ prefix: `${prefix}/`, startAfter });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated || page.objects.length === 0) return keys;
    startAfter = page.objects.at(-1)!.key;
  }
}

/** Manifests listed whose original is gone: a file that came back after its DELETE, or lost its bytes. */
async function manifestsWithoutOriginal(storage: Storage, prefix: string): Promise<number> {
  const keys = new Set(await allKeys(storage, prefix));
  return [...keys].filter((k) => isManifest(k) && !k.includes('/_system/') && !keys.has(k.replace(/manifest\.json$/, 'original'))).length;
}

// --- deletes racing job saves -------------------------------------------------

export async function deleteRace(backend: Backend, files: number, deletes: number): Promise<{ files: number; deletes: number; deleted404: number; resurrected: number }> {
  let faulty!: FaultyStorage;
  const srv = await startJobsServer({ backend, label: 'bench-delete-race', env: BENCH_ENV, wrapStorage: (s) => (faulty = new FaultyStorage(s)) });
  try {
    // Every file's second manifest write is its job's first save: held until the bench says.
    const holds = new Map<string, { held: Promise<void>; onHeld: () => void; release: Promise<{ fail: boolean }>; letGo: (v: { fail: boolean }) => void }>();
    const holdFor = (key: string) => {
      let h = holds.get(key);
      if (!h) {
        let onHeld!: () => void;
        let letGo!: (v: { fail: boolean }) => void;
        const held = new Promise<void>((r) => (onHeld = r));
        const release = new Promise<{ fail: boolean }>((r) => (letGo = r));
        holds.set(key, (h = { held, onHeld, release, letGo }));
      }
      return h;
    };
    const manifestPuts = new Map<string, number>();
    faulty.putFault = (key) => {
      if (!isManifest(key)) return undefined;
      const n = (manifestPuts.get(key) ?? 0) + 1;
      manifestPuts.set(key, n);
      if (n !== 2) return undefined;
      const h = holdFor(key);
      h.onHeld();
      return { kind: 'hold', release: h.release };
    };
    const body = Buffer.from('a log line that compresses well\n'.repeat(8_000));
    let deleted404 = 0;
    await eachLimited(Array.from({ length: files }, (_, i) => i), 8, async (i) => {
      const res = await call(`${srv.url}/v1/files/race-${i}.log?process=gzip`, { method: 'PUT', body });
      if (res.status !== 201) throw new Error(`upload race-${i}: ${res.status} ${res.body.toString()}`);
      const id = res.json<{ files: { id: string }[] }>().files[0]!.id;
      const h = holdFor(fileKeys(srv.config.keyPrefix, 'default', id).manifest);
      if (i >= deletes) return h.letGo({ fail: false }); // not deleted: the save goes on whenever it comes
      await h.held;
      const del = await call(`${srv.url}/v1/files/${id}`, { method: 'DELETE' });
      if (del.status !== 204) throw new Error(`delete ${id}: ${del.status} ${del.body.toString()}`);
      h.letGo({ fail: false });
      if ((await call(`${srv.url}/v1/files/${id}`)).status === 404) deleted404++;
    });
    while (srv.jobs.stats().activeFiles > 0) await sleep(50);
    const resurrected = await manifestsWithoutOriginal(srv.storage, srv.config.keyPrefix);
    return { files, deletes, deleted404, resurrected };
  } finally {
    await srv.close();
  }
}

// --- tus finishes under storage outages and SIGTERM ---------------------------

interface TusCase {
  path: string;
  data: Buffer;
  ackedId?: string;
}

async function contentSha(base: string, id: string): Promise<string | undefined> {
  const res = await call(`${base}/v1/files/${id}/content`);
  return res.status === 200 ? sha256(res.body) : undefined;
}

/**
 * After the fault: every upload must be committed (HEAD says Upload-Offset = length) or resumable
 * (offset < length; the rest is sent), and every file acknowledged with an id reads back byte-exact.
 * Counts what breaks either: acknowledged bytes that are gone.
 */
async function settleTus(base: string, cases: TusCase[]): Promise<number> {
  let lost = 0;
  await eachLimited(cases, 8, async (c) => {
    const url = new URL(c.path, base).toString();
    try {
      const h = await head(url);
      let id: string | undefined;
      if (h.status === 200) {
        const offset = Number(h.headers['upload-offset']);
        const tail = c.data.subarray(offset);
        id = h.headers['sluice-file-id'] ? String(h.headers['sluice-file-id']) : undefined;
        if (!id) {
          const done = await patch(url, offset, tail);
          id = done.status === 204 && done.headers['sluice-file-id'] ? String(done.headers['sluice-file-id']) : undefined;
        }
      }
      if (!id || (await contentSha(base, id)) !== sha256(c.data)) lost++;
      else if (c.ackedId && c.ackedId !== id && (await contentSha(base, c.ackedId)) !== sha256(c.data)) lost++;
    } catch {
      lost++;
    }
  });
  return lost;
}

export async function tusFinishFaults(
  backend: Backend,
  outages: number,
  termRounds: number,
  perRound: number,
): Promise<{ outageUploads: number; outageFailed: number; termUploads: number; termAcked: number; lost: number }> {
  // 1. Storage down at a random share of commits, for `outages` uploads, 8 at a time.
  let lost = 0;
  let outageFailed = 0;
  {
    let faulty!: FaultyStorage;
    const srv: TestServer = await startServer({ backend, label: 'bench-tus-outage', env: { ...BENCH_ENV, SLUICE_TUS_LOCK_TIMEOUT_MS: '2000' }, wrapStorage: (s) => (faulty = new FaultyStorage(s)) });
    try {
      let down = true;
      faulty.putFault = (key) => (down && isManifest(key) && Math.random() < 0.6 ? { kind: 'down' } : undefined);
      const cases: TusCase[] = [];
      await eachLimited(Array.from({ length: outages }, (_, i) => i), 8, async (i) => {
        const data = await pngOfSize(100_000 + Math.floor(Math.random() * 300_000));
        const { url } = await createUpload(srv.url, data.length, { filename: `outage-${i}.png`, filetype: 'image/png' });
        const c: TusCase = { path: new URL(url).pathname, data };
        cases.push(c);
        const res = await patch(url, 0, data);
        if (res.status === 204 && res.headers['sluice-file-id']) c.ackedId = String(res.headers['sluice-file-id']);
        else outageFailed++;
      });
      down = false;
      lost += await settleTus(srv.url, cases);
    } finally {
      await srv.close();
    }
  }
  // 2. SIGTERM while final PATCHes are in flight; then a restart on the same storage.
  let termAcked = 0;
  // Odd rounds give in-flight requests no grace at all, so finishes are cut at whatever step they reached.
  const termEnv = (r: number) => ({ ...BENCH_ENV, SLUICE_SHUTDOWN_GRACE_MS: r % 2 === 1 ? '0' : '300', SLUICE_SHUTDOWN_ABORT_MS: '2000' });
  let srv: ChildServer = await startChild({ backend, label: 'bench-tus-term', env: termEnv(0) });
  const reuse = { dataDir: srv.dataDir, bucket: srv.bucket, s3: srv.s3 };
  try {
    for (let r = 0; r < termRounds; r++) {
      const cases: TusCase[] = [];
      await eachLimited(Array.from({ length: perRound }, (_, i) => i), 8, async (i) => {
        const data = await pngOfSize(200_000 + Math.floor(Math.random() * 600_000));
        const { url } = await createUpload(srv.url, data.length, { filename: `term-${r}-${i}.png`, filetype: 'image/png' });
        const half = Math.floor(data.length / 2);
        const first = await patch(url, 0, data.subarray(0, half));
        if (first.status !== 204) throw new Error(`first PATCH ${url}: ${first.status}`);
        cases.push({ path: new URL(url).pathname, data });
      });
      const finals = cases.map(async (c) => {
        const half = Math.floor(c.data.length / 2);
        try {
          const res = await patch(new URL(c.path, srv.url).toString(), half, c.data.subarray(half));
          if (res.status === 204 && res.headers['sluice-file-id']) {
            c.ackedId = String(res.headers['sluice-file-id']);
            termAcked++;
          }
        } catch {
          // cut off by the shutdown: settled after the restart
        }
      });
      await sleep(Math.random() * 100);
      srv.proc.kill('SIGTERM');
      await srv.exited;
      await Promise.all(finals);
      srv = await startChild({ backend, label: 'bench-tus-term', env: termEnv(r + 1), reuse });
      lost += await settleTus(srv.url, cases);
    }
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
    await srv.cleanup();
  }
  return { outageUploads: outages, outageFailed, termUploads: termRounds * perRound, termAcked, lost };
}

// --- duplicate zero-byte final PATCHes ----------------------------------------

export async function duplicateFinishes(backend: Backend, uploads: number): Promise<{ uploads: number; secondAnswers: Record<string, number>; lost: number }> {
  let faulty!: FaultyStorage;
  const srv = await startServer({ backend, label: 'bench-tus-twice', env: { ...BENCH_ENV, SLUICE_TUS_LOCK_TIMEOUT_MS: '1000' }, wrapStorage: (s) => (faulty = new FaultyStorage(s)) });
  const secondAnswers: Record<string, number> = {};
  const cases: TusCase[] = [];
  try {
    // One at a time: the first manifest write of each upload's finish is held, the duplicate sent meanwhile.
    for (let i = 0; i < uploads; i++) {
      const data = await pngOfSize(100_000 + Math.floor(Math.random() * 200_000));
      const { url } = await createUpload(srv.url, data.length, { filename: `twice-${i}.png`, filetype: 'image/png' });
      const c: TusCase = { path: new URL(url).pathname, data };
      cases.push(c);
      let letGo!: (v: { fail: boolean }) => void;
      const release = new Promise<{ fail: boolean }>((r) => (letGo = r));
      let firstHeld!: () => void;
      const isHeld = new Promise<void>((r) => (firstHeld = r));
      let held = false;
      faulty.putFault = (key) => {
        if (!isManifest(key) || held) return undefined;
        held = true;
        firstHeld();
        return { kind: 'hold', release };
      };
      const note = (a: { status: number; headers: Record<string, unknown> }) => {
        if (a.status === 204 && a.headers['sluice-file-id']) c.ackedId = String(a.headers['sluice-file-id']);
        return a;
      };
      const first = patch(url, 0, data).then(note, () => undefined);
      await isHeld;
      const second = patch(url, data.length, Buffer.alloc(0)).then(note, () => undefined);
      // Let the first go (half of them failing) before or after the second has been waiting for the lock.
      await sleep(Math.random() * 1300);
      letGo({ fail: Math.random() < 0.5 });
      const [, b] = await Promise.all([first, second]);
      secondAnswers[String(b?.status ?? 'error')] = (secondAnswers[String(b?.status ?? 'error')] ?? 0) + 1;
      faulty.putFault = () => undefined;
    }
    return { uploads, secondAnswers, lost: await settleTus(srv.url, cases) };
  } finally {
    await srv.close();
  }
}

// --- SIGKILL mid-commit of multi-file requests --------------------------------

const CHILD = fileURLToPath(new URL('../../test/helpers/held-write-child.ts', import.meta.url));

export async function commitKills(
  backend: Backend,
  rounds: number,
  requestsPerRound: number,
  filesPerRequest: number,
): Promise<{ requests: number; answered: number; partial: number }> {
  const base = { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', SLUICE_JOBS_POOL_SIZE: '0', SLUICE_REAPER_INTERVAL_MS: '0', ...BENCH_ENV };
  let dir: string | undefined;
  let env: Record<string, string>;
  if (backend === 's3') env = { ...base, ...(await s3Env('bench-commit-kill')).env };
  else env = { ...base, SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: (dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-commit-'))) };
  // Every write step of a commit: a manifest, and the commit record that makes the request visible.
  const steps = (n: number) => [`put:manifest.json:${1 + Math.floor(Math.random() * n * filesPerRequest)}`, `delete:_system/commits/:${1 + Math.floor(Math.random() * n)}`, `put:_system/commits/:${1 + Math.floor(Math.random() * n)}`];
  const answeredIds = new Set<string>();
  let answered = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const choices = steps(requestsPerRound);
      const hold = choices[Math.floor(Math.random() * choices.length)]!;
      const child = spawn(process.execPath, [CHILD], { env: { PATH: process.env.PATH ?? '', ...env, TEST_HOLD: hold }, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      let onHeld: () => void = () => {};
      const heldNow = new Promise<void>((resolve) => (onHeld = resolve));
      const port = await new Promise<number>((resolve, reject) => {
        child.once('exit', () => reject(new Error('child exited before listening')));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const j = JSON.parse(line) as { listening?: number; held?: string };
          if (j.listening) resolve(j.listening);
          if (j.held) onHeld();
        });
      });
      const requests = Array.from({ length: requestsPerRound }, (_, q) => {
        const form = multipartBody(
          Array.from({ length: filesPerRequest }, (_, f) => ({ name: `f${f}`, filename: `r${r}-q${q}-f${f}.txt`, contentType: 'text/plain', data: `round ${r} request ${q} file ${f}\n` })),
        );
        return fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } }).then(
          async (res) => (res.status === 201 ? `r${r}-q${q}` : (await res.body?.cancel(), undefined)),
          () => undefined,
        );
      });
      // The held write stops one request; the kill lands while the others are at whatever step they reached.
      await Promise.race([heldNow, Promise.all(requests)]);
      child.kill('SIGKILL');
      await exited;
      for (const id of await Promise.all(requests)) {
        if (!id) continue;
        answeredIds.add(id);
        answered++;
      }
    }
    const config = loadConfig(env);
    const storage = await createStorage(config);
    try {
      const byRequest = new Map<string, number>();
      for (let cursor: string | undefined; ; ) {
        const page = await listFiles(storage, config.keyPrefix, 'default', { limit: 1000, cursor });
        for (const m of page.files) {
          const req = m.name.replace(/-f\d+\.txt$/, '');
          byRequest.set(req, (byRequest.get(req) ?? 0) + 1);
        }
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      let partial = 0;
      for (const n of byRequest.values()) if (n !== filesPerRequest) partial++;
      // A request answered 201 that shows none of its files is counted too (some of it, the answer, was seen).
      for (const id of answeredIds) if (!byRequest.has(id)) partial++;
      return { requests: rounds * requestsPerRound, answered, partial };
    } finally {
      await storage.close();
    }
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
