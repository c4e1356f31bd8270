// A real sluice instance with its job service, and helpers to make
// test images with sharp and wait for a file's jobs to end.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp, defaultDeps, type SluiceApp } from '../../src/app.ts';
import type { AppDeps } from '../../src/http/types.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Manifest } from '../../src/core/manifest.ts';
import { JobService } from '../../src/jobs/service.ts';
import { createLogger } from '../../src/logger.ts';
import { createStorage } from '../../src/storage/index.ts';
import type { Storage } from '../../src/storage/storage.ts';
import { call } from './http.ts';
import { s3Env, type Backend } from './server.ts';
import type { S3TestServer } from './s3.ts';
import { TEST_SERVER_ENV } from './test-env.ts';

export interface JobsServer {
  url: string;
  app: SluiceApp;
  config: Readonly<Config>;
  storage: Storage;
  deps: AppDeps;
  jobs: JobService;
  dataDir?: string;
  bucket?: string;
  s3?: S3TestServer;
  close(): Promise<void>;
}

export async function startJobsServer(
  opts: { backend?: Backend; env?: Record<string, string>; label?: string; wrapStorage?: (s: Storage) => Storage } = {},
): Promise<JobsServer> {
  const env: Record<string, string> = { ...TEST_SERVER_ENV, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', SLUICE_JOBS_POOL_SIZE: '2' };
  let dataDir: string | undefined;
  let s3: Awaited<ReturnType<typeof s3Env>> | undefined;
  if (opts.backend === 's3') {
    s3 = await s3Env(opts.label ?? 'jobs');
    Object.assign(env, s3.env);
  } else {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-jobs-'));
    Object.assign(env, { SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir });
  }
  Object.assign(env, opts.env);
  const config = loadConfig(env);
  const real = await createStorage(config);
  const storage = opts.wrapStorage ? opts.wrapStorage(real) : real;
  const base = await defaultDeps(config, storage, createLogger(config));
  const jobs = await JobService.create({ config, storage, log: base.log });
  await jobs.start();
  const deps = { ...base, jobs };
  const app = await buildApp(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    app,
    config,
    storage,
    deps,
    jobs,
    ...(dataDir ? { dataDir } : {}),
    ...(s3 ? { bucket: s3.bucket, s3: s3.server } : {}),
    async close() {
      await app.close();
      await jobs.close(5_000);
      await storage.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type FileJson = Manifest & { links: Record<string, string> };

/** Poll GET /v1/files/:id until no job is pending or running (and the webhook, if any, is settled). */
export async function waitForJobs(url: string, id: string, opts: { timeoutMs?: number; webhook?: boolean } = {}): Promise<FileJson> {
  // Only a hang takes this long: a loaded CI machine runs image jobs many times slower than a quiet one.
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  for (;;) {
    const res = await call(`${url}/v1/files/${id}`);
    if (res.status !== 200) throw new Error(`GET /v1/files/${id}: ${res.status} ${res.body.toString()}`);
    const m = res.json<FileJson>();
    const busy = Object.values(m.jobs ?? {}).some((j) => j.state === 'pending' || j.state === 'running');
    const webhookBusy = opts.webhook === true && m.webhook?.state !== 'delivered' && m.webhook?.state !== 'failed';
    if (!busy && !webhookBusy) return m;
    if (Date.now() > deadline) throw new Error(`jobs of ${id} still unfinished: ${JSON.stringify({ jobs: m.jobs, webhook: m.webhook })}`);
    await sleep(50);
  }
}

export async function upload(url: string, name: string, body: Buffer, opts: { process?: string; contentType?: string } = {}): Promise<FileJson> {
  const q = opts.process === undefined ? '' : `?process=${encodeURIComponent(opts.process)}`;
  const res = await call(`${url}/v1/files/${encodeURIComponent(name)}${q}`, { method: 'PUT', body, headers: opts.contentType ? { 'content-type': opts.contentType } : {} });
  if (res.status !== 201) throw new Error(`upload ${name}: ${res.status} ${res.body.toString()}`);
  return res.json<{ files: FileJson[] }>().files[0]!;
}

/** Marker keys left under <prefix>/_system/jobs/, once they have settled (a marker goes just after the last manifest write). */
export async function markersLeft(srv: Pick<JobsServer, 'storage' | 'config'>, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await srv.storage.list({ prefix: `${srv.config.keyPrefix}/_system/jobs/` });
    const keys = page.objects.map((o) => o.key);
    if (keys.length === 0 || Date.now() > deadline) return keys;
    await sleep(50);
  }
}
