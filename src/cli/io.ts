// What a command gets from the process: output streams and the Ctrl-C signal.
// Kept apart so commands never touch `process` directly.

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Aborts on the first SIGINT/SIGTERM: in-flight requests are cancelled, no new work starts. */
  signal: AbortSignal;
}

export const EXIT = {
  OK: 0,
  /** At least one file failed; the others went through. */
  FAILED: 1,
  /** Bad usage or an unusable option. */
  USAGE: 2,
  /** Stopped by SIGINT/SIGTERM. */
  INTERRUPTED: 130,
} as const;
