// bench:faults — two kinds of fault, on the real server process:
//  1. N clients (default 200) cut off at random offsets mid-upload: within 10 s
//     storage must hold no object and no pending multipart upload.
//  2. R rounds (default 20) of SIGKILL with M uploads (default 50) in flight,
//     restarting each time: every upload answered 2xx reads back byte-exact,
//     and after the restart's sweep nothing partial remains.
//
//  3. Issue 13's windows, counted (bench/lib/fault-rounds.ts): deletes racing
//     job saves (resurrected), storage outages and SIGTERM during tus finishes
//     (tus_finish_lost), duplicate zero-byte final PATCHes (duplicate_finish_lost),
//     SIGKILL mid-commit of multi-file requests (partial_requests).
//
//   npm run bench:faults -- [--backend s3|fs] [--cut 200] [--rounds 20] [--inflight 50]
//     [--race-files 40] [--race-deletes 20] [--tus-outages 24] [--tus-term-rounds 3] [--tus-term-uploads 10]
//     [--duplicates 12] [--commit-rounds 8] [--commit-requests 6] [--commit-files 3]

import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.ts';
import { createStorage } from '../src/storage/index.ts';
import { childLeftovers, startChild, type ChildServer } from '../test/helpers/child-server.ts';
import { commitKills, deleteRace, duplicateFinishes, tusFinishFaults } from './lib/fault-rounds.ts';
import { arg, BENCH_ENV, loadNote, MiB, payloadHead, s3ForBench, slowBody } from './lib/harness.ts';

const backend = arg('backend', 's3') as 's3' | 'fs';
const cutClients = Number(arg('cut', '200'));
const rounds = Number(arg('rounds', '20'));
const inflight = Number(arg('inflight', '50'));
const raceFiles = Number(arg('race-files', '40'));
const raceDeletes = Math.min(raceFiles, Number(arg('race-deletes', '20')));
const tusOutages = Number(arg('tus-outages', '24'));
const tusTermRounds = Number(arg('tus-term-rounds', '3'));
const tusTermUploads = Number(arg('tus-term-uploads', '10'));
const duplicates = Number(arg('duplicates', '12'));
const commitRounds = Number(arg('commit-rounds', '8'));
const commitRequests = Number(arg('commit-requests', '6'));
const commitFiles = Number(arg('commit-files', '3'));
// The restart's sweep removes everything older than this; the bench waits longer than it before restarting.
// Above the tus expiry and the upload deadline set below, as start-up requires.
const REAPER_MAX_AGE_MS = 2500;

async function cutUpload(port: number, head: Buffer): Promise<void> {
  const size = 256 * 1024 + Math.floor(Math.random() * 12 * MiB);
  const cutAt = Math.floor(Math.random() * size);
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()).once('error', () => resolve()));
  sock.write(`PUT /v1/files/cut.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  let sent = 0;
  const chunk = 256 * 1024;
  while (sent < cutAt && !sock.destroyed) {
    const n = Math.min(chunk, cutAt - sent);
    const b = sent === 0 ? Buffer.concat([head, randomBytes(Math.max(0, n - head.length))]).subarray(0, n) : randomBytes(n);
    await new Promise<void>((resolve) => sock.write(b, () => resolve()));
    sent += n;
  }
  await new Promise((r) => setTimeout(r, Math.random() * 300));
  sock.destroy();
}

async function partials(srv: Pick<ChildServer, 'env' | 'dataDir' | 'bucket' | 's3'>) {
  const config = loadConfig(srv.env);
  const storage = await createStorage(config);
  const groups = new Map<string, Set<string>>();
  let objects = 0;
  for (let after: string | undefined; ; ) {
    const page = await storage.list({ prefix: `${config.keyPrefix}/`, startAfter: after });
    for (const o of page.objects) {
      objects++;
      const [, , id, leaf] = o.key.split('/');
      if (id && leaf) (groups.get(id) ?? groups.set(id, new Set()).get(id)!).add(leaf);
    }
    if (!page.truncated || page.objects.length === 0) break;
    after = page.objects.at(-1)!.key;
  }
  const left = await childLeftovers(srv);
  return {
    storage,
    prefix: config.keyPrefix,
    objects,
    partial: [...groups.values()].filter((g) => !g.has('manifest.json')).length + left.keys.filter((k) => k.includes('.sluice-tmp-')).length,
    pending: left.pending,
  };
}

async function phaseCut(head: Buffer): Promise<{ objectsLeft: number; pending: number; cleanAfterMs: number }> {
  const srv = await startChild({ backend, label: 'bench-faults-cut', env: BENCH_ENV });
  try {
    await Promise.all(Array.from({ length: cutClients }, () => cutUpload(srv.port, head)));
    const t0 = performance.now();
    let state = await partials(srv);
    while ((state.objects > 0 || state.pending > 0) && performance.now() - t0 < 10_000) {
      await state.storage.close();
      await new Promise((r) => setTimeout(r, 250));
      state = await partials(srv);
    }
    await state.storage.close();
    return { objectsLeft: state.objects, pending: state.pending, cleanAfterMs: Math.round(performance.now() - t0) };
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
    await srv.cleanup();
  }
}

interface Ack {
  id: string;
  sha256: string;
}

async function phaseKill(head: Buffer) {
  const reaperEnv = { SLUICE_REAPER_INTERVAL_MS: String(3600_000), SLUICE_REAPER_MAX_AGE_MS: String(REAPER_MAX_AGE_MS), SLUICE_TUS_EXPIRY_MS: '1000', SLUICE_UPLOAD_DEADLINE_MS: '2000' };
  let srv = await startChild({ backend, label: 'bench-faults-kill', env: { ...BENCH_ENV, ...reaperEnv } });
  const reuse = { dataDir: srv.dataDir, bucket: srv.bucket, s3: srv.s3 };
  const acked: Ack[] = [];
  let clientErrors = 0;
  for (let r = 0; r < rounds; r++) {
    await srv.waitForLog((l) => l.msg === 'reaper: sweep done');
    const agent = new Agent({ connections: inflight + 5 });
    const uploads = Array.from({ length: inflight }, async (_, i) => {
      // Up to 1.5 MiB at ~3 MiB/s: many complete around the moment of the kill, some span it.
      const size = 64 * 1024 + Math.floor(Math.random() * 1.5 * MiB);
      const { body, state } = slowBody(head, size, 64 * 1024, 20);
      try {
        const res = await request(`${srv.url}/v1/files/k${r}-${i}.png`, { method: 'PUT', headers: { 'content-length': String(size) }, body: Readable.from(body), dispatcher: agent });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          const f = (JSON.parse(text) as { files: { id: string; sha256: string }[] }).files[0]!;
          if (f.sha256 !== state.sha256) throw new Error(`server sha256 differs for ${f.id}`);
          acked.push({ id: f.id, sha256: state.sha256 });
        } else clientErrors++;
      } catch {
        clientErrors++;
      }
    });
    await new Promise((res) => setTimeout(res, 300 + Math.random() * 1500));
    srv.proc.kill('SIGKILL');
    await srv.exited;
    await Promise.all(uploads);
    await agent.close();
    // Everything the dead server left is now older than the sweep's max age.
    await new Promise((res) => setTimeout(res, REAPER_MAX_AGE_MS + 200));
    srv = await startChild({ backend, label: 'bench-faults-kill', env: { ...BENCH_ENV, ...reaperEnv }, reuse });
  }
  await srv.waitForLog((l) => l.msg === 'reaper: sweep done');
  const state = await partials(srv);
  let lost = 0;
  for (const a of acked) {
    try {
      const { body } = await state.storage.get(`${state.prefix}/default/${a.id}/original`);
      const h = createHash('sha256');
      for await (const c of body) h.update(c as Buffer);
      const manifest = await state.storage.head(`${state.prefix}/default/${a.id}/manifest.json`);
      if (h.digest('hex') !== a.sha256 || !manifest) lost++;
    } catch {
      lost++;
    }
  }
  await state.storage.close();
  srv.proc.kill('SIGTERM');
  await srv.exited;
  await srv.cleanup();
  if (reuse.dataDir) await (await import('node:fs/promises')).rm(reuse.dataDir, { recursive: true, force: true });
  return { acked: acked.length, clientErrors, lost, partial: state.partial, pending: state.pending };
}

const minio = await s3ForBench(backend);
try {
  console.log(`bench:faults backend=${backend} cut=${cutClients} rounds=${rounds} inflight=${inflight}; ${await loadNote()}`);
  const head = await payloadHead();
  const cut = await phaseCut(head);
  console.log(`cut clients: ${cutClients} cut at random offsets → objects_left=${cut.objectsLeft} pending_multipart=${cut.pending} (clean after ${cut.cleanAfterMs} ms of polling)`);
  const kill = await phaseKill(head);
  console.log(`SIGKILL: ${rounds} rounds × ${inflight} uploads → acked=${kill.acked} client_errors=${kill.clientErrors} acked_lost=${kill.lost}; after the restart's sweep: partial=${kill.partial} pending_multipart=${kill.pending}`);
  const race = await deleteRace(backend, raceFiles, raceDeletes);
  console.log(`delete race: ${race.files} files with gzip jobs, ${race.deletes} deleted while their job's save was held → deleted_then_404=${race.deleted404} resurrected=${race.resurrected}`);
  const tus = await tusFinishFaults(backend, tusOutages, tusTermRounds, tusTermUploads);
  console.log(
    `tus finish: ${tus.outageUploads} finishes with storage down at random commits (${tus.outageFailed} answered with an error), ${tusTermRounds} SIGTERMs × ${tusTermUploads} final PATCHes (${tus.termAcked} acked) → tus_finish_lost=${tus.lost}`,
  );
  const dup = await duplicateFinishes(backend, duplicates);
  console.log(`duplicate finishes: ${dup.uploads} uploads, second final PATCH answered ${JSON.stringify(dup.secondAnswers)} → duplicate_finish_lost=${dup.lost}`);
  const commit = await commitKills(backend, commitRounds, commitRequests, commitFiles);
  console.log(`commit kills: ${commitRounds} SIGKILLs × ${commitRequests} requests of ${commitFiles} files (${commit.answered} answered 201) → partial_requests=${commit.partial}`);
  console.log(`after: ${await loadNote()}`);
  console.log(
    `RESULT faults cut_clients=${cutClients} objects_left=${cut.objectsLeft} pending_multipart=${cut.pending + kill.pending} sigkill_rounds=${rounds} acked_lost=${kill.lost} partial_after_sweep=${kill.partial} resurrected=${race.resurrected} tus_finish_lost=${tus.lost} duplicate_finish_lost=${dup.lost} partial_requests=${commit.partial}`,
  );
} finally {
  await minio?.stop();
}
