// The allocator the Docker image ships (Dockerfile: LD_PRELOAD of jemalloc with
// MALLOC_CONF), so benches can report memory for what users run beside glibc's.

import { existsSync } from 'node:fs';

/** The Dockerfile's MALLOC_CONF: freed pages go back to the OS within a second instead of ten. */
export const JEMALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0';
/** Debian's path on amd64; JEMALLOC overrides it. */
export const JEMALLOC = process.env.JEMALLOC ?? '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

/** Plain jemalloc, or undefined where it is not installed. */
export function jemallocEnv(): Record<string, string> | undefined {
  return existsSync(JEMALLOC) ? { LD_PRELOAD: JEMALLOC } : undefined;
}

/** The image's allocator (jemalloc with its MALLOC_CONF), or undefined where jemalloc is not installed. */
export function imageAllocatorEnv(): Record<string, string> | undefined {
  return existsSync(JEMALLOC) ? { LD_PRELOAD: JEMALLOC, MALLOC_CONF: JEMALLOC_CONF } : undefined;
}
