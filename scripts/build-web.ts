// `npm run build:web`: bundles the upload page (public/src/main.ts and its CSS)
// into public/build/ with esbuild. `--if-missing` skips the build when the
// bundle is already there (prestart, tests).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
export const WEB_BUILD_DIR = path.join(root, 'public', 'build');

export async function buildWeb(opts: { ifMissing?: boolean } = {}): Promise<void> {
  if (opts.ifMissing && existsSync(path.join(WEB_BUILD_DIR, 'app.js')) && existsSync(path.join(WEB_BUILD_DIR, 'app.css'))) return;
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

if (import.meta.main) await buildWeb({ ifMissing: process.argv.includes('--if-missing') });
