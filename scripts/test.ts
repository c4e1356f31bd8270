// `npm test [-- files...]`: node:test over test/**/*.test.ts against a real S3.
//
// The S3 server is S3_TEST_ENDPOINT if set, else a MinIO started here for the whole
// run. Without either, CI fails and a local run skips the S3 suites loudly
// (SLUICE_TEST_S3=skip). Tests read the server through test/helpers/s3.ts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { findMinioBinary, startMinio } from './minio.ts';
import type { MinioServer } from './minio.ts';

const DEFAULT_TEST_GLOB = 'test/**/*.test.ts';
// --test-force-exit: a file whose tests all finished exits even if a handle is still open (a pool
// thread busy in a native encode after its bounded destroy, seen once holding a CI slot for 12
// minutes). Handle leaks of the service itself are caught by tests that look for them
// (test/lingering-close.test.ts), not by hanging the run.
const NODE_TEST_ARGS = ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-force-exit', '--test-reporter=spec'];

const SKIP_BANNER = `
################################################################################
#                                                                              #
#   S3 SUITES SKIPPED: no MinIO found; run scripts/install-minio.sh            #
#                                                                              #
#   (or set MINIO_BIN, or point S3_TEST_ENDPOINT at an S3 server)              #
#                                                                              #
################################################################################
`;

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal !== null ? (osConstants.signals[signal] ?? 0) : 1);
}

async function main(): Promise<number> {
  const files = process.argv.slice(2);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SLUICE_TEST_S3; // decided here, not inherited
  let minio: MinioServer | null = null;
  let child: ChildProcess | null = null;
  // Installed before MinIO starts, so a Ctrl-C or CI timeout during start-up still stops it.
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    child?.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (process.env.S3_TEST_ENDPOINT) {
    if (!process.env.S3_TEST_ACCESS_KEY_ID || !process.env.S3_TEST_SECRET_ACCESS_KEY) {
      console.error('S3_TEST_ENDPOINT is set: S3_TEST_ACCESS_KEY_ID and S3_TEST_SECRET_ACCESS_KEY must be set too.');
      return 1;
    }
    env.S3_TEST_REGION = process.env.S3_TEST_REGION || 'us-east-1';
    console.log(`S3 tests use S3_TEST_ENDPOINT=${process.env.S3_TEST_ENDPOINT}`);
  } else if (findMinioBinary() !== null) {
    // A binary that is there but will not start is a failure, never a skip.
    minio = await startMinio();
    env.S3_TEST_ENDPOINT = minio.endpoint;
    env.S3_TEST_ACCESS_KEY_ID = minio.accessKeyId;
    env.S3_TEST_SECRET_ACCESS_KEY = minio.secretAccessKey;
    env.S3_TEST_REGION = minio.region;
    console.log(`S3 tests use a MinIO started for this run at ${minio.endpoint}`);
  } else if (process.env.CI === 'true') {
    console.error('CI: no S3 server for the tests (no MinIO binary, no S3_TEST_ENDPOINT). Run scripts/install-minio.sh first.');
    return 1;
  } else {
    console.error(SKIP_BANNER);
    env.SLUICE_TEST_S3 = 'skip';
  }

  try {
    if (interrupted !== null) return exitCodeOf(null, interrupted);
    const running = spawn(process.execPath, [...NODE_TEST_ARGS, ...(files.length > 0 ? files : [DEFAULT_TEST_GLOB])], {
      env,
      stdio: 'inherit',
    });
    child = running;
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      running.once('error', reject);
      running.once('exit', (c, s) => resolve([c, s]));
    });
    return exitCodeOf(code, signal);
  } finally {
    await minio?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
