// A batch starts only once the service answers GET /health (with the usual
// retries), so a server that is down costs one wait, not every file's retries.

import { type ApiClient, CliError, type RetryPolicy } from './client.ts';
import { EXIT, type Io } from './io.ts';

/** Undefined when the service answers; otherwise the exit code, with the reason on stderr. */
export async function unreachable(client: ApiClient, retry: RetryPolicy, io: Io, command: string): Promise<number | undefined> {
  try {
    await client.preflight(retry, io.signal);
    return undefined;
  } catch (err) {
    await client.close();
    if (io.signal.aborted) return EXIT.INTERRUPTED;
    const e = err instanceof CliError ? err : new CliError('SERVER_UNREACHABLE', String(err));
    io.stderr.write(`sluice ${command}: ${e.code}: ${e.message}\n`);
    return EXIT.FAILED;
  }
}
