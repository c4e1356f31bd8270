// The upload page in a real Chromium (Debian's, driven by playwright-core; no
// browser download): a real server process serves the page, Uppy uploads a
// multi-MiB file over tus with the upload bandwidth throttled, the server is
// killed mid-upload and restarted, Uppy resumes the same upload, and the
// stored file's sha256 equals the source's. Set UPDATE_SCREENSHOT=1 to refresh
// docs/upload-page.png.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext } from 'playwright-core';
import sharp from 'sharp';
import { buildWeb } from '../scripts/build-web.ts';
import { call, elf, pngOfSize, sha256 } from './helpers/http.ts';
import { TEST_SERVER_ENV } from './helpers/test-env.ts';

const CHROMIUM = '/usr/bin/chromium';
const MiB = 1024 * 1024;
const root = path.resolve(import.meta.dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function startProcess(port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, 'src/server.ts')], {
    env: { PATH: process.env.PATH ?? '', ...TEST_SERVER_ENV, PORT: String(port), HOST: '127.0.0.1', SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Polled until it answers; a loaded machine starts node slowly, so only a hang reaches the deadline.
  const giveUp = Date.now() + 60_000;
  while (Date.now() < giveUp && child.exitCode === null) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('server did not start');
}

/** Bytes of the one upload in progress under the data dir, or 0. */
async function bytesOnDisk(dataDir: string): Promise<number> {
  const tenantDir = path.join(dataDir, 'sluice', 'default');
  const ids = existsSync(tenantDir) ? await readdir(tenantDir) : [];
  let total = 0;
  for (const id of ids) {
    const st = await stat(path.join(tenantDir, id, 'original')).catch(() => null);
    total += st?.size ?? 0;
  }
  return total;
}

describe('upload page in Chromium', { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}` }, () => {
  let dataDir: string;
  let profile: string;
  let port: number;
  let server: ChildProcess | undefined;
  let context: BrowserContext | undefined;
  before(async () => {
    await buildWeb({ ifStale: true });
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-browser-data-'));
    profile = await mkdtemp(path.join(tmpdir(), 'sluice-browser-profile-'));
    port = await freePort();
    server = await startProcess(port, dataDir);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 900 },
    });
  });
  after(async () => {
    await context?.close();
    server?.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    await rm(profile, { recursive: true, force: true });
  });

  it('uploads with Uppy, survives a server restart mid-upload, and stores the exact bytes', async () => {
    const source = await pngOfSize(24 * MiB);
    const fileDir = await mkdtemp(path.join(tmpdir(), 'sluice-browser-file-'));
    const file = path.join(fileDir, 'harbour-panorama.png');
    await writeFile(file, source);
    const page = await context!.newPage();
    // Throttle the upload so the restart lands mid-upload: about 6 s for 24 MiB.
    const cdp = await context!.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * MiB });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('.uppy-Dashboard-input').first().setInputFiles(file);
    await page.locator('.uppy-StatusBar-actionBtn--upload').click();

    // Kill the server once a third of the bytes are stored, restart it on the same port.
    const deadline = Date.now() + 120_000;
    let atKill = 0;
    while (Date.now() < deadline) {
      atKill = await bytesOnDisk(dataDir);
      if (atKill >= 8 * MiB) break;
      await sleep(50);
    }
    assert.ok(atKill >= 8 * MiB && atKill < source.length, `killed mid-upload (at ${atKill} bytes)`);
    server!.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));
    await sleep(500);
    server = await startProcess(port, dataDir);

    await page.locator('#files tbody tr').first().waitFor({ timeout: 60_000 });
    const listed = await call(`http://127.0.0.1:${port}/v1/files`);
    const files = listed.json<{ files: { id: string; name: string; sha256: string; size: number }[] }>().files;
    assert.equal(files.length, 1, 'one file: the upload resumed instead of starting over');
    assert.equal(files[0]!.name, path.basename(file));
    assert.equal(files[0]!.sha256, sha256(source));
    const content = await call(`http://127.0.0.1:${port}/v1/files/${files[0]!.id}/content`);
    assert.equal(sha256(content.body), sha256(source));
    const ids = await readdir(path.join(dataDir, 'sluice', 'default'));
    assert.equal(ids.length, 1, 'no second upload was created');

    await page.locator('.uppy-StatusBar.is-complete').waitFor({ timeout: 10_000 });
    // A small photo uploaded the plain way, so the list shows a preview too.
    const photo = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#2f7fb8' } })
      .composite([{ input: Buffer.from('<svg width="320" height="200"><circle cx="230" cy="70" r="40" fill="#f4c542"/><rect y="140" width="320" height="60" fill="#1d4f73"/></svg>') }])
      .jpeg()
      .toBuffer();
    assert.equal((await call(`http://127.0.0.1:${port}/v1/files/sunset.jpg`, { method: 'PUT', body: photo })).status, 201);
    await page.locator('#refresh').click();
    await page.locator('#files tbody tr td.thumb img').first().waitFor({ timeout: 10_000 });
    const shot = path.join(tmpdir(), `sluice-upload-page-${port}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(shot, path.join(root, 'docs', 'upload-page.png'));
    await rm(shot, { force: true });
    await rm(fileDir, { recursive: true, force: true });
  });

  it('shows the server\'s JSON refusal of a disallowed type (TYPE_NOT_ALLOWED at the first PATCH) on the file in Uppy', async () => {
    const fileDir = await mkdtemp(path.join(tmpdir(), 'sluice-browser-file-'));
    const file = path.join(fileDir, 'installer.bin');
    await writeFile(file, Buffer.concat([elf(), Buffer.alloc(64 * 1024)]));
    const page = await context!.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('.uppy-Dashboard-input').first().setInputFiles(file);
    await page.locator('.uppy-StatusBar-actionBtn--upload').click();
    // The file's error button carries the error text (the page sets it from our JSON body) as its label.
    const shown = page.locator('.uppy-Dashboard-Item.is-error .uppy-Dashboard-Item-errorDetails[aria-label*="TYPE_NOT_ALLOWED"]').first();
    await shown.waitFor({ state: 'attached', timeout: 60_000 });
    assert.match(String(await shown.getAttribute('aria-label')), /The file type is not allowed \(TYPE_NOT_ALLOWED\)/);
    await page.close();
    await rm(fileDir, { recursive: true, force: true });
  });
});
