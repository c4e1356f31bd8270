// Imported first by src/server.ts, before any module that could touch fs,
// crypto, zlib or dns: libuv reads UV_THREADPOOL_SIZE once, when its
// threadpool first starts, and setting it any later has no effect. That is why
// this is the one place outside config.ts that touches process.env: it copies
// the `--uv-threadpool-size` flag into the variable in time. config.ts still
// validates the value (UV_THREADPOOL_SIZE, 1..1024) and reports it in metrics.

import { envFromFlags } from './flags.ts';

let flagged: string | undefined;
try {
  flagged = envFromFlags(process.argv.slice(2)).UV_THREADPOOL_SIZE;
} catch {
  // Bad flags are reported by server.ts with the config errors.
}
if (flagged !== undefined) process.env.UV_THREADPOOL_SIZE = flagged;
