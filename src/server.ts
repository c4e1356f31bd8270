// The entry point: load config, build the app, listen, wire signals. Nothing else.

import { buildApp, defaultDeps } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createStorage } from './storage/index.ts';
import { JobService } from './jobs/service.ts';

/** Running jobs get this long to finish on shutdown; the rest stay pending for the next start. */
const JOBS_SHUTDOWN_GRACE_MS = 10_000;

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`sluice: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const storage = createStorage(config);
const shutdown = new AbortController();
const base = defaultDeps(config, storage);
// Processing jobs (issue 3): started before listening, so recovered work begins at once.
const jobs = new JobService({ config, storage, log: base.log });
await jobs.start();
const deps = { ...base, shutdownSignal: shutdown.signal, jobs };
const app = await buildApp(deps);
await app.listen({ port: config.port, host: config.host });
app.log.info({ storage: storage.kind, host: config.host, port: config.port }, 'sluice listening');

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal: sig }, 'shutting down');
    // Graceful: stop accepting, let in-flight requests finish, then close storage.
    void app
      .close()
      .then(() => jobs.close(JOBS_SHUTDOWN_GRACE_MS))
      .then(() => storage.close())
      .then(() => process.exit(0));
  });
}
