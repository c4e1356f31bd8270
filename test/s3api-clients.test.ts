// Real S3 tools against the S3 endpoint, as child processes: aws-cli (a
// 100 MiB `s3 cp`, which goes multipart, and `s3 sync` of a tree), rclone and
// boto3, one round trip each. Each tool is skipped when it is not installed.
// An ELF named .jpg is refused through aws-cli with sluice's code shown.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { elf } from './helpers/http.ts';
import { issueKey, s3ApiEnv } from './helpers/s3api.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const run = promisify(execFile);
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const HAVE_AWS = has('aws', ['--version']);
const HAVE_RCLONE = has('rclone', ['version']);
const HAVE_BOTO3 = has('python3', ['-c', 'import boto3']);

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

describe('S3 endpoint with real S3 tools (fs)', () => {
  let srv: TestServer;
  let dir: string;
  const key = issueKey('tools');
  let awsEnv: NodeJS.ProcessEnv;
  before(async () => {
    srv = await startServer({ backend: 'fs', env: s3ApiEnv([key]), label: 's3api-clients' });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-s3tools-'));
    const awsConfig = path.join(dir, 'aws-config');
    await writeFile(awsConfig, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
    awsEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_CONFIG_FILE: awsConfig,
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_MAX_ATTEMPTS: '1',
    };
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  const aws = (...args: string[]) => run('aws', ['--endpoint-url', `${srv.url}/s3`, ...args], { env: awsEnv, maxBuffer: 64 * 1024 * 1024 });

  test('aws s3 cp of a 100 MiB file (multipart) and back', { skip: !HAVE_AWS && 'aws-cli not installed' }, async () => {
    const src = path.join(dir, 'big.txt');
    const line = 'a line of text for the aws-cli round trip through sluice\n';
    await writeFile(src, line.repeat(Math.ceil((100 * 1024 * 1024) / line.length)));
    await aws('s3', 'cp', src, 's3://tools/cli/big.txt');
    const back = path.join(dir, 'big-back.txt');
    await aws('s3', 'cp', 's3://tools/cli/big.txt', back);
    assert.equal(await fileSha256(back), await fileSha256(src));
    await rm(src);
    await rm(back);
  });

  test('aws s3 sync of a tree, then ls', { skip: !HAVE_AWS && 'aws-cli not installed' }, async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'sub', 'deeper'), { recursive: true });
    await writeFile(path.join(tree, 'a.txt'), 'a\n');
    await writeFile(path.join(tree, 'sub', 'b.csv'), 'x,y\n1,2\n');
    await writeFile(path.join(tree, 'sub', 'deeper', 'c.json'), '{"c":1}\n');
    await aws('s3', 'sync', tree, 's3://tools/tree');
    const { stdout } = await aws('s3', 'ls', '--recursive', 's3://tools/tree/');
    const keys = stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).at(-1));
    assert.deepEqual(keys, ['tree/a.txt', 'tree/sub/b.csv', 'tree/sub/deeper/c.json']);
    // A second sync finds nothing to do: sizes and times match.
    const again = await aws('s3', 'sync', tree, 's3://tools/tree');
    assert.equal(again.stdout.trim(), '');
  });

  test('aws s3 cp of an ELF named .jpg fails, showing TYPE_NOT_ALLOWED', { skip: !HAVE_AWS && 'aws-cli not installed' }, async () => {
    const src = path.join(dir, 'cat.jpg');
    await writeFile(src, elf());
    await assert.rejects(aws('s3', 'cp', src, 's3://tools/cat.jpg'), (err: { stderr?: string }) => {
      assert.match(String(err.stderr), /TYPE_NOT_ALLOWED/);
      return true;
    });
  });

  test('rclone copy and cat', { skip: !HAVE_RCLONE && 'rclone not installed' }, async () => {
    const tree = path.join(dir, 'rc');
    await mkdir(tree, { recursive: true });
    await writeFile(path.join(tree, 'r.txt'), 'from rclone\n');
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      RCLONE_CONFIG: path.join(dir, 'rclone.conf'),
      RCLONE_CONFIG_SL_TYPE: 's3',
      RCLONE_CONFIG_SL_PROVIDER: 'Other',
      RCLONE_CONFIG_SL_ENDPOINT: `${srv.url}/s3`,
      RCLONE_CONFIG_SL_ACCESS_KEY_ID: key.accessKeyId,
      RCLONE_CONFIG_SL_SECRET_ACCESS_KEY: key.secretAccessKey,
      RCLONE_CONFIG_SL_REGION: 'us-east-1',
      RCLONE_CONFIG_SL_FORCE_PATH_STYLE: 'true',
    };
    await run('rclone', ['copy', '--retries', '1', tree, 'sl:tools/rc'], { env });
    const { stdout } = await run('rclone', ['cat', 'sl:tools/rc/r.txt'], { env });
    assert.equal(stdout, 'from rclone\n');
    const ls = await run('rclone', ['lsf', '-R', 'sl:tools/rc'], { env });
    assert.equal(ls.stdout.trim(), 'r.txt');
  });

  test('boto3 put_object, get_object, delete_object', { skip: !HAVE_BOTO3 && 'boto3 not installed' }, async () => {
    const script = `
import boto3, os, sys
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=os.environ['EP'], region_name='us-east-1', aws_access_key_id=os.environ['AK'], aws_secret_access_key=os.environ['SK'],
                  config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
s3.put_object(Bucket='tools', Key='py/hello.txt', Body=b'hello from boto3\\n', ContentType='text/plain')
body = s3.get_object(Bucket='tools', Key='py/hello.txt')['Body'].read()
assert body == b'hello from boto3\\n', body
s3.delete_object(Bucket='tools', Key='py/hello.txt')
try:
    s3.head_object(Bucket='tools', Key='py/hello.txt')
    sys.exit('still there')
except s3.exceptions.ClientError as e:
    assert e.response['Error']['Code'] in ('404', 'NoSuchKey'), e.response
print('ok')
`;
    const file = path.join(dir, 'boto.py');
    await writeFile(file, script);
    const { stdout } = await run('python3', [file], { env: { PATH: process.env.PATH, HOME: dir, EP: `${srv.url}/s3`, AK: key.accessKeyId, SK: key.secretAccessKey } });
    assert.equal(stdout.trim(), 'ok');
    assert.ok((await readFile(file)).length > 0);
  });
});
