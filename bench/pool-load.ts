// Load generator for bench/pool.ts, run as its own process so its work never
// counts against the server's event loop: probes GET /health every 20 ms and
// streams uploads (PUT, process=none) back to back for `durationMs`. Prints
// one JSON line: health latencies and upload throughput.

import { request } from 'undici';

const [url, durationArg, sizeArg, parallelArg] = process.argv.slice(2);
const durationMs = Number(durationArg);
const uploadBytes = Number(sizeArg);
const parallel = Number(parallelArg ?? 2);
const body = Buffer.alloc(uploadBytes, 'sluice bench line of text\n');
const deadline = performance.now() + durationMs;

const health: number[] = [];
async function probe(): Promise<void> {
  while (performance.now() < deadline) {
    const t = performance.now();
    const res = await request(`${url}/health`);
    await res.body.dump();
    health.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let uploaded = 0;
async function uploader(i: number): Promise<void> {
  for (let n = 0; performance.now() < deadline; n++) {
    const res = await request(`${url}/v1/files/load-${i}-${n}.txt?process=none`, { method: 'PUT', body, headers: { 'content-type': 'text/plain' } });
    await res.body.dump();
    if (res.statusCode !== 201) throw new Error(`upload answered ${res.statusCode}`);
    uploaded += uploadBytes;
  }
}

const started = performance.now();
await Promise.all([probe(), ...Array.from({ length: parallel }, (_, i) => uploader(i))]);
const elapsed = performance.now() - started;
health.sort((a, b) => a - b);
const p = (q: number) => health[Math.min(health.length - 1, Math.floor(q * health.length))] ?? NaN;
process.stdout.write(
  JSON.stringify({ healthP50: p(0.5), healthP99: p(0.99), probes: health.length, uploadMBps: uploaded / 1e6 / (elapsed / 1000), uploadedMB: uploaded / 1e6 }) + '\n',
);
