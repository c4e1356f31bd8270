// `npm run build:web`: bundles the upload page (public/src/main.ts and its CSS)
// into public/build/ with esbuild. `--if-stale` skips the build when the
// bundle is newer than every file of public/src (prestart, tests), so an edit
// of the page is never served from an old bundle.

import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
export const WEB_BUILD_DIR = path.join(root, 'public', 'build');

const SOURCES = path.join(root, 'public', 'src');

/** Newest modification time of the page's sources (a build script: sync fs is fine here). */
function newestSource(): number {
  return readdirSync(SOURCES, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((t, e) => Math.max(t, statSync(path.join(e.parentPath, e.name)).mtimeMs), 0);
}

function upToDate(): boolean {
  const outputs = ['app.js', 'app.css'].map((f) => path.join(WEB_BUILD_DIR, f));
  if (!outputs.every((f) => existsSync(f))) return false;
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  return built >= newestSource();
}

export async function buildWeb(opts: { ifStale?: boolean } = {}): Promise<void> {
  if (opts.ifStale && upToDate()) return;
  await build({
    entryPoints: { app: path.join(root, 'public', 'src', 'main.ts') },
    outdir: WEB_BUILD_DIR,
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: ['es2022'],
    logLevel: 'warning',
  });
}

if (import.meta.main) await buildWeb({ ifStale: process.argv.includes('--if-stale') });
