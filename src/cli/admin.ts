// `sluice admin revoke`: POST /v1/admin/revoke with { subject } or { tenant }.
// The answer's JSON is printed as is; errors exit non-zero with their code.

import { ApiClient, CliError } from './client.ts';
import { EXIT, type Io } from './io.ts';

export interface RevokeCommand {
  server: string;
  token: string | undefined;
  subject: string | undefined;
  tenant: string | undefined;
}

export async function runRevoke(cmd: RevokeCommand, io: Io): Promise<number> {
  if ((cmd.subject === undefined) === (cmd.tenant === undefined)) {
    io.stderr.write('sluice admin revoke: give exactly one of --subject or --tenant\n');
    return EXIT.USAGE;
  }
  const client = new ApiClient({ server: cmd.server, token: cmd.token, connections: 1 });
  try {
    const body = cmd.subject !== undefined ? { subject: cmd.subject } : { tenant: cmd.tenant };
    const res = await client.json<unknown>({
      method: 'POST',
      path: '/v1/admin/revoke',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: io.signal,
    });
    io.stdout.write(JSON.stringify(res) + '\n');
    return EXIT.OK;
  } catch (err) {
    const e = err instanceof CliError ? err : new CliError('CLIENT_ERROR', err instanceof Error ? err.message : String(err));
    io.stderr.write(`sluice admin revoke: ${e.code}: ${e.message}\n`);
    return EXIT.FAILED;
  } finally {
    await client.close();
  }
}
