// What the user sees while a batch runs, and after.
//
// - stderr is a TTY: a live cli-progress bar (bytes, files, rate, ETA,
//   current files).
// - otherwise: one plain line every intervalMs, so logs of a cron job show
//   how far it got.
// - --json: one NDJSON object per file on stdout, then a summary object;
//   without it, the summary and the failures are printed as text.

import { SingleBar } from 'cli-progress';

export interface Outcome {
  type: 'file';
  path: string;
  status: 'ok' | 'skipped' | 'failed';
  size: number;
  error?: { code: string; message: string };
  /** Anything else is printed with the result (id, sha256, attempts, ...). */
  [extra: string]: unknown;
}

export interface Summary {
  type: 'summary';
  command: string;
  files: number;
  ok: number;
  skipped: number;
  failed: number;
  /** Bytes transferred for files that succeeded. */
  bytes: number;
  durationMs: number;
  filesPerSecond: number;
  bytesPerSecond: number;
  interrupted: boolean;
  failures: { path: string; code: string; message: string }[];
}

export interface ProgressOptions {
  command: string;
  json: boolean;
  quiet: boolean;
  intervalMs: number;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export class Progress {
  readonly #o: ProgressOptions;
  readonly #started = performance.now();
  #totalFiles = 0;
  #totalBytes = 0;
  #doneFiles = 0;
  #bytes = 0;
  #okBytes = 0;
  #counts = { ok: 0, skipped: 0, failed: 0 };
  #failures: Summary['failures'] = [];
  #current = new Set<string>();
  #bar: SingleBar | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: ProgressOptions) {
    this.#o = o;
  }

  /** Totals known: start the display. */
  plan(files: number, bytes: number): void {
    this.#totalFiles = files;
    this.#totalBytes = bytes;
    if (this.#o.quiet) return;
    if (this.#o.stderr.isTTY) {
      this.#bar = new SingleBar({
        stream: this.#o.stderr,
        format: ' {bar} {percentage}% | {files} files | {amount} | {rate} | ETA {etaText} | {current}',
        barsize: 24,
        fps: 5,
        hideCursor: true,
        clearOnComplete: true,
      });
      this.#bar.start(Math.max(1, bytes), 0, this.#payload());
      this.#timer = setInterval(() => this.#bar?.update(this.#bytes, this.#payload()), 200);
    } else {
      this.#timer = setInterval(() => this.#o.stderr.write(this.#line() + '\n'), this.#o.intervalMs);
    }
    this.#timer.unref();
  }

  start(path: string): void {
    this.#current.add(path);
  }

  bytes(n: number): void {
    this.#bytes += n;
  }

  /** Notes a message (retries, reconcile) without breaking the bar. */
  note(message: string): void {
    if (this.#o.quiet) return;
    if (this.#bar) {
      this.#bar.stop();
      this.#o.stderr.write(message + '\n');
      this.#bar.start(Math.max(1, this.#totalBytes), this.#bytes, this.#payload());
    } else {
      this.#o.stderr.write(message + '\n');
    }
  }

  /** A file's outcome. Its bytes were reported through bytes() if it succeeded. */
  finish(result: Outcome): void {
    this.#current.delete(result.path);
    this.#doneFiles++;
    this.#counts[result.status]++;
    if (result.status === 'ok') this.#okBytes += result.size;
    // Skipped and failed files count as done for the bar.
    else this.#bytes += result.size;
    if (result.status === 'failed') this.#failures.push({ path: result.path, code: result.error?.code ?? 'FAILED', message: result.error?.message ?? '' });
    if (this.#o.json) this.#o.stdout.write(JSON.stringify(result) + '\n');
  }

  /** Stops the display and prints the summary. */
  end(interrupted: boolean): Summary {
    if (this.#timer) clearInterval(this.#timer);
    this.#bar?.stop();
    const durationMs = Math.round(performance.now() - this.#started);
    const secs = Math.max(durationMs, 1) / 1000;
    const summary: Summary = {
      type: 'summary',
      command: this.#o.command,
      files: this.#totalFiles,
      ...this.#counts,
      bytes: this.#okBytes,
      durationMs,
      filesPerSecond: round(this.#counts.ok / secs),
      bytesPerSecond: Math.round(this.#okBytes / secs),
      interrupted,
      failures: this.#failures,
    };
    if (this.#o.json) {
      this.#o.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      const verb = this.#o.command === 'download' ? 'downloaded' : 'uploaded';
      const lines = [
        `${interrupted ? 'interrupted: ' : ''}${verb} ${summary.ok} files (${fmtBytes(summary.bytes)}) in ${fmtDuration(durationMs)}: ` +
          `${summary.filesPerSecond} files/s, ${fmtBytes(summary.bytesPerSecond)}/s; skipped ${summary.skipped}, failed ${summary.failed}` +
          (interrupted ? `, not started ${this.#totalFiles - this.#doneFiles}` : ''),
      ];
      if (this.#failures.length > 0) {
        lines.push('failed:');
        for (const f of this.#failures) lines.push(`  ${f.path}: ${f.code} ${f.message}`);
      }
      this.#o.stdout.write(lines.join('\n') + '\n');
    }
    return summary;
  }

  #payload(): Record<string, string> {
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = elapsed > 0 ? this.#bytes / elapsed : 0;
    const eta = rate > 0 ? (this.#totalBytes - this.#bytes) / rate : Infinity;
    const current = [...this.#current].slice(0, 3).map((p) => p.slice(-30)).join(', ');
    return {
      files: `${this.#doneFiles}/${this.#totalFiles}`,
      amount: `${fmtBytes(this.#bytes)}/${fmtBytes(this.#totalBytes)}`,
      rate: `${fmtBytes(rate)}/s ${round(elapsed > 0 ? this.#doneFiles / elapsed : 0)} files/s`,
      etaText: Number.isFinite(eta) ? fmtDuration(eta * 1000) : '?',
      current,
    };
  }

  #line(): string {
    const p = this.#payload();
    return `sluice ${this.#o.command}: ${p.files} files, ${p.amount}, ${p.rate}, ETA ${p.etaText}`;
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
