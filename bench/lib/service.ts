// Runs sluice as a child process (the real entry point) for benchmarks, and
// reads its peak RSS from the kernel (VmHWM), which catches short spikes that
// polling would miss.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { procMemMiB } from './harness.ts';

export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  /** Peak resident set size so far, in MiB. */
  peakRssMb(): Promise<number>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

let built = false;
/** Benchmarks measure what production runs: the compiled dist/, built once per bench run. */
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  built = true;
}

export async function startService(env: Record<string, string>, entry = 'dist/src/server.js'): Promise<ServiceProcess> {
  if (entry.startsWith('dist/')) buildOnce();
  const port = await freePort();
  // Same V8 flag as `npm start` (package.json): a 1 MiB young generation is
  // scavenged often enough that socket buffers are freed promptly (peak RSS
  // 216 → 138 MiB for one 512 MiB upload, measured in this bench's setup).
  // BENCH_SEMI overrides it for comparisons (docs/performance.md, upload RSS: 1 stays the lowest).
  const child = spawn(process.execPath, [`--max-semi-space-size=${process.env.BENCH_SEMI ?? 1}`, entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sluice exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('sluice did not start');
    await sleep(100);
  }
  return {
    url,
    child,
    peakRssMb: () => procMemMiB(child.pid!, 'VmHWM'),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

export { median } from './harness.ts';
