// Reads a V8 .cpuprofile (node --cpu-prof) and splits the sampled main-thread
// time into the stages of an upload. Each sample is charged to the first frame,
// walking from the leaf towards the root, that belongs to a known stage, so
// Node's own stream and promise machinery counts for the stage that drove it
// (a stream write under the S3 SDK is SDK time) and only what no stage drove
// is left to "HTTP parse + socket I/O" or "other".

import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Stage names in table order. */
export const STAGES = [
  'HTTP parse + socket I/O',
  'Fastify routing, hooks, plugins',
  'auth + rate limits',
  'admission + budget',
  'busboy (multipart)',
  'ingest stages (idle timeout, size limit, pipeline glue)',
  'sniff (file-type)',
  'sha256',
  'S3 SDK (build, sign, send, parse)',
  'fs storage',
  'manifest write',
  'logging (pino)',
  'metrics (prom-client)',
  'GC',
  'other',
] as const;
export type Stage = (typeof STAGES)[number];

// First match wins; tested against "<url> <functionName>".
const RULES: [RegExp, Stage][] = [
  [/\/(pino|pino-std-serializers|sonic-boom|fast-redact|@pinojs\/redact|thread-stream|on-exit-leak-free)\/|\/src\/logger\.ts/, 'logging (pino)'],
  [/\/prom-client\/|\/src\/metrics\.ts|\/http-metrics\.ts|\/storage\/instrumented\.ts/, 'metrics (prom-client)'],
  [/\/src\/http\/plugins\/auth\.ts|\/src\/core\/auth\/|\/@fastify\/rate-limit\/|\/jose\/|\/tenant-(slots|quota)\.ts|\/upload-limits\.ts/, 'auth + rate limits'],
  [/\/upload-admission\.ts|\/buffer-budget\.ts/, 'admission + budget'],
  [/\/busboy\/|\/streamsearch\/|\/src\/http\/multipart\.ts/, 'busboy (multipart)'],
  [/\/file-type\/|\/strtok3\/|\/token-types\/|\/@tokenizer\/|\/uint8array-extras\/|\/stages\/sniff\.ts|\/core\/file-types\.ts/, 'sniff (file-type)'],
  [/\/stages\/digest\.ts|\/src\/http\/digest-header\.ts/, 'sha256'],
  [/\/core\/files\.ts .*writeManifest|\/core\/jobs\.ts .*writeMarker|\/core\/manifest\.ts/, 'manifest write'],
  [/\/@aws-sdk\/|\/@smithy\/|\/@aws-crypto\/|\/fast-xml-parser\/|\/strnum\/|\/src\/storage\/s3(-upload)?\.ts/, 'S3 SDK (build, sign, send, parse)'],
  [/\/src\/storage\/fs\.ts/, 'fs storage'],
  [/\/stages\/(idle-timeout|byte-limit)\.ts|\/core\/ingest\.ts|\/routes\/upload-|\/core\/keys\.ts|\/uuid\/|\/core\/names\.ts|\/file-view\.ts|\/process-query\.ts/, 'ingest stages (idle timeout, size limit, pipeline glue)'],
  [/\/(fastify|@fastify\/[a-z-]+|find-my-way|avvio|fast-json-stringify|light-my-request|fast-querystring|safe-regex2|process-warning|abstract-logging|toad-cache|rfdc|fastify-plugin|@fastify\/error)\/|\/src\/app\.ts|\/src\/http\/plugins\/|\/src\/http\/routes\/|\/src\/errors\.ts/, 'Fastify routing, hooks, plugins'],
  [/^node:(_http_|http|net|internal\/http|internal\/stream_base|internal\/net|internal\/js_stream|internal\/dns)/, 'HTTP parse + socket I/O'],
];

function stageOf(frame: CallFrame): Stage | undefined {
  if (frame.functionName === '(garbage collector)') return 'GC';
  const s = `${frame.url} ${frame.functionName}`;
  for (const [re, stage] of RULES) if (re.test(s)) return stage;
  return undefined;
}

export interface StageSplit {
  /** Sampled non-idle main-thread time per stage, µs. */
  us: Map<Stage, number>;
  /** Sampled non-idle time in the window, µs. */
  busyUs: number;
  /** The heaviest self-time frames, for the write-up. */
  top: { frame: string; us: number }[];
}

/** Splits the samples taken between `fromUs` and `toUs` (CLOCK_MONOTONIC µs, as process.hrtime). */
export async function splitProfile(file: string, fromUs = 0, toUs = Number.POSITIVE_INFINITY): Promise<StageSplit> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stageCache = new Map<number, Stage>();
  const stageForNode = (id: number): Stage => {
    const hit = stageCache.get(id);
    if (hit) return hit;
    let s: Stage | undefined;
    const isHttpRoot = (fr: CallFrame) => RULES.at(-1)![0].test(`${fr.url} ${fr.functionName}`);
    // Leaf to root; the HTTP rule only counts when nothing more specific drove the frame.
    let http = false;
    for (let cur: number | undefined = id; cur !== undefined && !s; cur = parent.get(cur)) {
      const fr = byId.get(cur)!.callFrame;
      if (isHttpRoot(fr)) {
        http = true;
        continue;
      }
      s = stageOf(fr);
    }
    const out = s ?? (http ? 'HTTP parse + socket I/O' : 'other');
    stageCache.set(id, out);
    return out;
  };
  const us = new Map<Stage, number>(STAGES.map((s) => [s, 0]));
  const self = new Map<number, number>();
  let t = p.startTime;
  let busyUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    const node = byId.get(p.samples[i]!)!;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)' || fn === '(root)') continue;
    // A sample's time is the gap to the next one; use this sample's delta as the estimate.
    const w = p.timeDeltas[i + 1] ?? dt;
    busyUs += w;
    const st = fn === '(program)' ? 'other' : stageForNode(node.id);
    us.set(st, us.get(st)! + w);
    self.set(node.id, (self.get(node.id) ?? 0) + w);
  }
  const top = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([id, v]) => {
      const f = byId.get(id)!.callFrame;
      return { frame: `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}`, us: v };
    });
  return { us, busyUs, top };
}
