// The `sluice` command: argument parsing (commander), signal handling and
// exit codes. Each subcommand's work lives in its own module.
//
// Exit codes: 0 all files ok (or skipped), 1 some failed (listed), 2 bad
// usage, 130 interrupted by Ctrl-C / SIGTERM.

import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runRevoke } from './admin.ts';
import { runDownload } from './downloader.ts';
import { EXIT, type Io } from './io.ts';
import { runUpload } from './run-upload.ts';

const MiB = 1024 * 1024;

function positiveInt(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`expected an integer from 1 to ${max}`);
    return n;
  };
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function bytes(v: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected bytes, e.g. 1048576, 512KiB, 64MiB');
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1);
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Options every command that talks to the server takes. */
function withServer(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'sluice service URL').env('SLUICE_SERVER').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'bearer token (prefer the env variable: arguments show in ps)').env('SLUICE_TOKEN'));
}

function withTransfer(cmd: Command): Command {
  return cmd
    .option('-c, --concurrency <n>', 'requests in flight at once (upload: default from the server\'s GET /v1/limits, else 8)', positiveInt(256), 8)
    .option('--retries <n>', 'retries per file on network errors, 408, 429, 502, 503, 504', nonNegativeInt, 5)
    .option('--retry-base-ms <ms>', 'first backoff delay; doubles per retry, with jitter (Retry-After wins)', nonNegativeInt, 500)
    .option('--json', 'NDJSON on stdout: one object per file, then a summary', false)
    .option('-q, --quiet', 'no progress display', false)
    .option('--progress-interval <s>', 'seconds between progress lines when stderr is not a terminal', positiveInt(3600), 5);
}

interface TransferFlags {
  server: string;
  token?: string;
  concurrency: number;
  retries: number;
  retryBaseMs: number;
  json: boolean;
  quiet: boolean;
  progressInterval: number;
}

function retryPolicy(o: TransferFlags) {
  return { retries: o.retries, baseDelayMs: o.retryBaseMs, maxDelayMs: 30_000 };
}

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('sluice')
    .description('Batch upload to and download from a sluice service')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  withTransfer(withServer(program.command('upload')))
    .description('upload files, directories and globs; re-runs skip what is already uploaded')
    .argument('<paths...>', 'files, directories (walked recursively) or quoted globs')
    .option('--process <jobs>', 'processing jobs to request, comma-separated (e.g. thumbnail,webp)')
    .option('--include <glob>', 'upload only matching files (repeatable; no "/" = base name, else path inside the argument)', collect, [])
    .option('--exclude <glob>', 'skip matching files (repeatable; same matching as --include)', collect, [])
    .option('-L, --follow-symlinks', 'follow symlinks met while walking (symlinks named as arguments are always followed)', false)
    .option('--state <file>', 'resume journal', '.sluice-state.ndjson')
    .option('--no-state', 'do not read or write a journal (no resuming)')
    .option('--force', 're-upload files the journal records as done', false)
    .option('--checksum', 'skip a file only if its sha256 also matches the journal (reads every file)', false)
    .option('--buffer-max <bytes>', 'files up to this size are read whole, once', bytes, MiB)
    .option('--hash-first-max <bytes>', 'files up to this size are hashed before sending so the server verifies before commit; larger ones are hashed in the same pass and checked against the answer', bytes, 64 * MiB)
    .option('--batch-max <bytes>', 'files up to this size go several per request (0: one file per request)', bytes, 256 * 1024)
    .option('--batch-bytes <bytes>', 'body size of one batch request, at most (and at most the server\'s limit)', bytes, 4 * MiB)
    .action(async (paths: string[], o: TransferFlags & { process?: string; include: string[]; exclude: string[]; followSymlinks: boolean; state: string | false; force: boolean; checksum: boolean; bufferMax: number; hashFirstMax: number; batchMax: number; batchBytes: number }, cmd: Command) => {
      setExit(
        await runUpload(
          {
            paths,
            server: o.server,
            token: o.token,
            concurrency: o.concurrency,
            concurrencyGiven: cmd.getOptionValueSource('concurrency') !== 'default',
            batchMax: o.batchMax,
            batchBytes: Math.max(64 * 1024, o.batchBytes),
            retry: retryPolicy(o),
            state: o.state === false ? undefined : o.state,
            json: o.json,
            quiet: o.quiet,
            progressIntervalMs: o.progressInterval * 1000,
            followSymlinks: o.followSymlinks,
            include: o.include,
            exclude: o.exclude,
            process: o.process,
            bufferMax: o.bufferMax,
            hashFirstMax: Math.max(o.hashFirstMax, o.bufferMax),
            force: o.force,
            checksum: o.checksum,
          },
          io,
        ),
      );
    });

  withTransfer(withServer(program.command('download')))
    .description('download files by id (or all under --prefix) into their uploaded tree, resuming partial files, verifying sha256')
    .argument('[ids...]', 'file ids')
    .option('--prefix <path>', 'also download every file whose path starts with this (e.g. photos/2024/)')
    .option('-o, --output <dir>', 'directory to write into; each file lands at <dir>/<its path>', '.')
    .option('--overwrite', 'replace an existing file with different content (files of one run that share a path still fail)', false)
    .action(async (ids: string[], o: TransferFlags & { output: string; overwrite: boolean; prefix?: string }) => {
      if (ids.length === 0 && o.prefix === undefined) {
        io.stderr.write('sluice download: give file ids, --prefix, or both\n');
        setExit(EXIT.USAGE);
        return;
      }
      setExit(
        await runDownload(
          { ids, prefix: o.prefix, output: o.output, server: o.server, token: o.token, concurrency: o.concurrency, retry: retryPolicy(o), overwrite: o.overwrite, json: o.json, quiet: o.quiet, progressIntervalMs: o.progressInterval * 1000 },
          io,
        ),
      );
    });

  const admin = program.command('admin').description('administrative actions (need an admin token)');
  withServer(admin.command('revoke'))
    .description('revoke the tokens of a subject or of a whole tenant')
    .option('--subject <sub>', 'token subject to revoke')
    .option('--tenant <tenant>', 'tenant whose tokens to revoke')
    .action(async (o: { server: string; token?: string; subject?: string; tenant?: string }) => {
      setExit(await runRevoke({ server: o.server, token: o.token, subject: o.subject, tenant: o.tenant }, io));
    });

  return program;
}

/** The package's version: package.json is two levels up from src/cli/, three from dist/src/cli/. */
function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sluice' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next level
    }
  }
  return '0.0.0';
}

/** Runs the CLI in this process: wires signals, parses argv, sets the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      process.stderr.write(`\nsluice: ${sig}: stopping; in-flight transfers are aborted (again to quit at once)\n`);
      stop.abort(new Error(sig));
    } else {
      process.exit(EXIT.INTERRUPTED);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number = EXIT.OK;
  const program = buildProgram({ stdout: process.stdout, stderr: process.stderr, signal: stop.signal }, (c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      code = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? EXIT.OK : EXIT.USAGE;
    } else if (stop.signal.aborted) {
      code = EXIT.INTERRUPTED;
    } else {
      process.stderr.write(`sluice: ${e.message ?? String(err)}\n`);
      code = EXIT.FAILED;
    }
  }
  process.exitCode = code;
}
