// TEST-ONLY child process: a sluice app whose storage holds one named write
// forever, so a test can SIGKILL the process at exactly that step of a
// request. Not a product setting: TEST_HOLD is read here, in test code only.
//
//   TEST_HOLD=<op>:<key substring>:<n>   op is put or delete; the n-th matching call is held
//
// Prints one JSON line {"listening":port} when ready and {"held":key} when the
// write is held. Everything else is the real app on the real backend (fs dir or MinIO).

import { buildApp, defaultDeps } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createStorage } from '../../src/storage/index.ts';
import { conditionalWrites, type ConditionalWrites, type Storage } from '../../src/storage/storage.ts';

const config = loadConfig(process.env);
const real = await createStorage(config);
const [op, needle, nth] = (process.env.TEST_HOLD ?? '').split(':');
let seen = 0;
const held = (kind: string, key: string): Promise<never> | undefined => {
  if (kind !== op || !needle || !key.includes(needle) || ++seen !== Number(nth)) return undefined;
  process.stdout.write(`${JSON.stringify({ held: key })}\n`);
  return new Promise<never>(() => {});
};
// Manifests are written with putIf (conditional writes): it counts as a put, or the manifest steps would never be held.
const overrides: Partial<Storage & ConditionalWrites> = {
  put: (key, body, opts) => held('put', key) ?? real.put(key, body, opts),
  putIf: (key, body, opts) => held('put', key) ?? conditionalWrites(real).putIf(key, body, opts),
  delete: (key) => held('delete', key) ?? real.delete(key),
};
// Everything else (optional capabilities included) goes straight to the real adapter.
const storage = new Proxy(real, {
  get(target, prop, receiver) {
    const own = overrides[prop as keyof typeof overrides];
    if (own) return own;
    const v: unknown = Reflect.get(target, prop, receiver);
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  },
});
const app = await buildApp(await defaultDeps(config, storage, createLogger(config)));
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.stdout.write(`${JSON.stringify({ listening: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
