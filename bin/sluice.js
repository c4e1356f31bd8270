#!/usr/bin/env -S node --max-semi-space-size=1
// The `sluice` command.
//
// --max-semi-space-size=1, as the server runs: a small young generation is
// scavenged often enough that the CLI's read buffers and request chunks are
// freed promptly (peak RSS for 5,000 small files 139 → 117 MB; docs/cli.md).
// The flag cannot be set once Node runs (v8.setFlagsFromString has no effect
// on the heap's layout), hence the shebang; `env -S` splits it on Linux and
// macOS, and npm's Windows shims read it.
//
// Installed as a package (this file under node_modules) it runs the compiled
// CLI in dist/ (`npm run build`, done before publishing), because Node does
// not strip types under node_modules. In a checkout it runs the TypeScript
// sources directly (Node >= 22.18), so a stale dist/ never shadows your edits;
// a checkout without src/ (a built tarball unpacked elsewhere) uses dist/ too.
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const installed = realpathSync(fileURLToPath(import.meta.url)).split(/[\\/]/).includes('node_modules');
const useCompiled = existsSync(compiled) && (installed || !existsSync(source));
if (installed && !useCompiled) {
  process.stderr.write('sluice: this install has no dist/ (the package was packed without `npm run build`)\n');
  process.exit(2);
}
const { main } = await import((useCompiled ? compiled : source).href);
await main();
