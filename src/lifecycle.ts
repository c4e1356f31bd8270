// Graceful shutdown. Two signals, because a load balancer must hear "not
// ready" before anything is refused or cut:
//   draining  /ready answers 503 and new uploads are refused (SHUTTING_DOWN)
//   abort     every in-flight upload fails cleanly (storage aborts its write)
// The sequence on SIGTERM/SIGINT:
//   1. draining; wait SLUICE_SHUTDOWN_DRAIN_DELAY_MS with the listener open
//   2. stop accepting connections; close idle keep-alive ones
//   3. wait up to SLUICE_SHUTDOWN_GRACE_MS for in-flight requests to finish
//   4. abort the rest; give them SLUICE_SHUTDOWN_ABORT_MS to remove their
//      partial state (S3 waits for parts in flight before aborting), then cut
//      whatever connections remain
//   5. run the closers (jobs, reaper, storage) in reverse order of registration
//   6. flush logs; exit 0 (1 if anything had to be cut or failed)
// A second signal skips the wait in step 3: uploads are still aborted cleanly.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { SluiceError } from './errors.ts';

/** Something to stop at shutdown: the jobs service, the reaper, storage. */
export interface Closer {
  name: string;
  /** Finish or park work within `graceMs`, then release resources. */
  close(graceMs: number): Promise<void>;
}

export interface ShutdownTimings {
  graceMs: number;
  drainDelayMs: number;
  abortMs: number;
}

export interface Closable {
  server: Server;
  close(): Promise<unknown>;
}

export class Lifecycle {
  readonly #drain = new AbortController();
  readonly #abort = new AbortController();
  readonly #closers: Closer[] = [];
  readonly #timings: ShutdownTimings;
  #inflight = 0;
  #idleWaiters: (() => void)[] = [];
  #skipGrace: (() => void) | undefined;
  #shutdown: Promise<number> | undefined;

  constructor(timings: ShutdownTimings) {
    this.#timings = timings;
  }

  /** Aborted when shutdown begins: /ready turns 503, new uploads are refused. */
  get drainSignal(): AbortSignal {
    return this.#drain.signal;
  }

  /** Aborted when the grace period is over: in-flight uploads fail and clean up. */
  get shutdownSignal(): AbortSignal {
    return this.#abort.signal;
  }

  get inflight(): number {
    return this.#inflight;
  }

  addCloser(c: Closer): void {
    this.#closers.push(c);
  }

  /** Count every request on the server (uploads and downloads alike) until its response closes. */
  track(server: Server): void {
    server.on('request', (_req, res) => {
      this.#inflight++;
      res.once('close', () => {
        this.#inflight--;
        if (this.#drain.signal.aborted) {
          // A keep-alive connection that just went idle would hold the server open until its timeout.
          setImmediate(() => server.closeIdleConnections());
          if (this.#inflight === 0) for (const w of this.#idleWaiters.splice(0)) w();
        }
      });
    });
  }

  /**
   * Run the shutdown sequence once. A later call (a second signal) ends the
   * grace period early, unless it passes `force: false` (a cluster primary's
   * request arriving after the terminal's SIGINT).
   */
  shutdown(app: Closable, log: Logger, reason: string, opts: { force?: boolean } = {}): Promise<number> {
    if (this.#shutdown) {
      if (opts.force === false) return this.#shutdown;
      log.warn({ reason }, 'second shutdown request: aborting in-flight uploads now');
      this.#skipGrace?.();
      return this.#shutdown;
    }
    this.#shutdown = this.#run(app, log, reason);
    return this.#shutdown;
  }

  async #run(app: Closable, log: Logger, reason: string): Promise<number> {
    const t = this.#timings;
    const started = performance.now();
    let code = 0;
    log.info({ reason, inflight: this.#inflight, graceMs: t.graceMs }, 'shutdown: draining');
    this.#drain.abort(new SluiceError('SHUTTING_DOWN'));
    if (t.drainDelayMs > 0) await this.#wait(t.drainDelayMs, 'fixed');

    // Fastify closes the listener and idle connections; in-flight requests go on.
    const closing = app.close().catch((err: unknown) => log.error({ err }, 'shutdown: closing the server failed'));
    if (!(await this.#wait(t.graceMs, 'grace'))) {
      log.warn({ inflight: this.#inflight }, 'shutdown: grace period over, aborting in-flight uploads');
      this.#abort.abort(new SluiceError('SHUTTING_DOWN'));
      if (!(await this.#wait(t.abortMs, 'idle'))) {
        log.error({ inflight: this.#inflight }, 'shutdown: requests still open after the abort period; cutting connections');
        code = 1;
      }
      app.server.closeAllConnections();
    }
    await closing;

    const remaining = Math.max(0, t.graceMs - (performance.now() - started));
    for (const c of [...this.#closers].reverse()) {
      try {
        await c.close(remaining);
      } catch (err) {
        log.error({ err, closer: c.name }, 'shutdown: closer failed');
        code = 1;
      }
    }
    log.info({ durationMs: Math.round(performance.now() - started), exitCode: code }, 'shutdown: done');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    return code;
  }

  /**
   * 'fixed': wait `ms`. 'idle': wait up to `ms` for no request in flight.
   * 'grace': like idle, and a second signal ends it early. Resolves true when idle.
   */
  #wait(ms: number, mode: 'fixed' | 'idle' | 'grace'): Promise<boolean> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        if (this.#skipGrace === done) this.#skipGrace = undefined;
        resolve(this.#inflight === 0);
      };
      const timer = setTimeout(done, ms);
      if (mode === 'fixed') return;
      if (this.#inflight === 0) return done();
      this.#idleWaiters.push(done);
      if (mode === 'grace') this.#skipGrace = done;
    });
  }
}
