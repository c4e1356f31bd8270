// CPU seconds of a process and of its main thread (Linux /proc), and the
// service's Prometheus text, for the benches that report service cost.

import { readFile } from 'node:fs/promises';

/** utime + stime of a /proc stat line, in seconds (clock ticks of 1/100 s). */
function cpuOfStat(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds the whole process (every thread: libuv pool, GC helpers) has used. */
export async function processCpuS(pid: number): Promise<number> {
  return cpuOfStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** CPU seconds of the process's main thread (the event loop) alone. */
export async function threadCpuS(pid: number, tid = pid): Promise<number> {
  return cpuOfStat(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
}

/** The service's /metrics text ('' when unavailable). */
export async function scrape(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/metrics`);
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}

/** Sum of every series of a metric in Prometheus text. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}
