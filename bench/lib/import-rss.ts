// Child of bench/idle-rss.ts: imports the modules named on the command line,
// then prints this process's resident set (VmRSS) in KiB after a full GC.
// Imports nothing else, so only what it is asked to load is counted.
// Run with --expose-gc.

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
for (const m of process.argv.slice(2)) await import(m);
// Two GCs with a turn between them: finalizers run by the first free more for the second.
gc();
await sleep(50);
gc();
const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
process.stdout.write(`${kib}\n`);
