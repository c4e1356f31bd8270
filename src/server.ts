// The entry point: load config, build the app, listen, wire signals. Nothing else.

import { buildApp, defaultDeps } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createStorage } from './storage/index.ts';

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
const deps = { ...defaultDeps(config, storage), shutdownSignal: shutdown.signal };
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
      .then(() => storage.close())
      .then(() => process.exit(0));
  });
}
