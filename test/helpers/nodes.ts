// Several real sluice processes sharing one storage location and one Redis,
// as a deployment runs them: the first node makes the storage (fs dir or S3
// bucket), the others reuse it. Plus a held upload over a raw socket whose
// admission is observed by its 100 Continue, so a test knows exactly when an
// upload holds its slot.

import { connect } from 'node:net';
import { s3TestServer } from './s3.ts';
import { startChild, type ChildOptions, type ChildServer } from './child-server.ts';

export interface Nodes {
  nodes: ChildServer[];
  /** Start one more node on the same storage and Redis. */
  add(env?: Record<string, string>, args?: string[]): Promise<ChildServer>;
  cleanup(): Promise<void>;
}

/** S3 (MinIO) when the run has it, else a shared fs directory. */
export async function startNodes(label: string, base: Record<string, string>, roles: ('ingest' | 'worker' | 'all')[]): Promise<Nodes> {
  const backend = s3TestServer() ? 's3' : 'fs';
  const nodes: ChildServer[] = [];
  const add = async (env: Record<string, string> = {}, role: string = 'all') => {
    const first = nodes[0];
    const opts: ChildOptions = { backend, label, env: { ...base, SLUICE_ROLE: role, ...env }, startTimeoutMs: 60_000 };
    if (first) opts.reuse = { dataDir: first.dataDir, bucket: first.bucket, s3: first.s3 };
    const n = await startChild(opts);
    nodes.push(n);
    return n;
  };
  for (const role of roles) await add({}, role);
  return {
    nodes,
    add: (env) => add(env, env?.SLUICE_ROLE ?? 'all'),
    async cleanup() {
      // The first node owns the data dir: clean it last.
      for (const n of [...nodes].reverse()) await n.cleanup();
    },
  };
}

export interface HeldUpload {
  /** The first status the server sent: 100 when admitted (slot held), else the refusal's status. */
  admitted: Promise<number>;
  /** Send the rest of the body; resolves with the final status. */
  finish(): Promise<number>;
  destroy(): void;
  /** Everything the server sent so far, for assertion messages. */
  received(): string;
}

/** A PUT of `body.length` bytes with Expect: 100-continue; nothing is sent until finish(). */
export function heldUpload(port: number, headers: Record<string, string>, name = 'held.txt', body = Buffer.from('hello world')): HeldUpload {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  const head = Object.entries({ host: 'x', 'content-type': 'text/plain', 'content-length': String(body.length), expect: '100-continue', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  sock.write(`PUT /v1/files/${name} HTTP/1.1\r\n${head}\r\n`);
  let raw = '';
  let all = '';
  const statuses: number[] = [];
  const waiters: ((s: number) => void)[] = [];
  sock.on('data', (d: Buffer) => {
    raw += d.toString('latin1');
    all += d.toString('latin1');
    for (let m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n/.exec(raw); m; m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n/.exec(raw)) {
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) break;
      statuses.push(Number(m[1]));
      raw = raw.slice(end + 4);
      for (const w of waiters.splice(0)) w(statuses.length);
    }
  });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  const nth = (n: number) =>
    new Promise<number>((resolve) => {
      const check = () => (statuses.length >= n ? resolve(statuses[n - 1]!) : waiters.push(check));
      check();
      void closed.then(() => resolve(statuses[n - 1] ?? 0));
    });
  return {
    admitted: nth(1),
    async finish() {
      sock.write(body);
      const s = await nth(2);
      sock.end();
      return s;
    },
    destroy: () => sock.destroy(),
    received: () => all,
  };
}
