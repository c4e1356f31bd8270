// A real sluice instance on a loopback port for tests, on the fs backend (a
// temp dir) or the S3 backend (a fresh bucket on the run's MinIO).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp, defaultDeps, type SluiceApp } from '../../src/app.ts';
import type { AppDeps } from '../../src/http/types.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createStorage } from '../../src/storage/index.ts';
import type { Storage } from '../../src/storage/storage.ts';
import { TEST_SERVER_ENV } from './test-env.ts';
import { createTestBucket, s3TestServer, type S3TestServer } from './s3.ts';

export interface TestServer {
  url: string;
  app: SluiceApp;
  config: Readonly<Config>;
  storage: Storage;
  deps: AppDeps;
  /** The bucket, on the S3 backend. */
  bucket?: string;
  s3?: S3TestServer;
  close(): Promise<void>;
}

export type Backend = 'fs' | 's3';

export async function s3Env(label: string): Promise<{ env: Record<string, string>; bucket: string; server: S3TestServer }> {
  const server = s3TestServer();
  if (!server) throw new Error('no S3 test server');
  const bucket = await createTestBucket(server, label);
  return {
    server,
    bucket,
    env: {
      SLUICE_STORAGE: 's3',
      SLUICE_S3_ENDPOINT: server.endpoint,
      SLUICE_S3_REGION: server.region,
      SLUICE_S3_BUCKET: bucket,
      SLUICE_S3_ACCESS_KEY_ID: server.accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
      SLUICE_S3_FORCE_PATH_STYLE: 'true',
      SLUICE_S3_PART_SIZE: String(5 * 1024 * 1024),
    },
  };
}

export async function startServer(
  opts: { backend?: Backend; env?: Record<string, string>; label?: string; storage?: Storage; wrapStorage?: (s: Storage) => Storage } = {},
): Promise<TestServer> {
  const backend = opts.backend ?? 'fs';
  let dataDir: string | undefined;
  let s3: Awaited<ReturnType<typeof s3Env>> | undefined;
  const env: Record<string, string> = { ...TEST_SERVER_ENV, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', SLUICE_JOBS_POOL_SIZE: '0' }; // no processing jobs (and no job markers) unless a test asks
  if (backend === 's3') {
    s3 = await s3Env(opts.label ?? 'sluice-test');
    Object.assign(env, s3.env);
  } else {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-test-'));
    Object.assign(env, { SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir });
  }
  Object.assign(env, opts.env);
  const config = loadConfig(env);
  const real = opts.storage ?? await createStorage(config);
  const storage = opts.wrapStorage ? opts.wrapStorage(real) : real;
  const deps = await defaultDeps(config, storage, createLogger(config));
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
    ...(s3 ? { bucket: s3.bucket, s3: s3.server } : {}),
    async close() {
      // Every test request has finished by now. A keep-alive socket that last carried a large
      // upload can still count as busy to Node (seen with undici clients) and would hold
      // app.close() for the whole keep-alive timeout.
      app.server.closeAllConnections();
      await app.close();
      await storage.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The backends to run a suite against: fs always, s3 when the run has a server. */
export function backends(): Backend[] {
  return s3TestServer() ? ['fs', 's3'] : ['fs'];
}

/** Every key the service stored (both backends), and pending multipart uploads on S3. */
export async function leftovers(srv: TestServer): Promise<{ keys: string[]; pending: number }> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await srv.storage.list({ prefix: `${srv.config.keyPrefix}/`, startAfter });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated || page.objects.length === 0) break;
    startAfter = page.objects.at(-1)!.key;
  }
  const { listPendingMultipartUploads } = await import('./s3.ts');
  const pending = srv.s3 && srv.bucket ? (await listPendingMultipartUploads(srv.s3, srv.bucket)).length : 0;
  return { keys, pending };
}
