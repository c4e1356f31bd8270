#!/usr/bin/env node
// The `sluice` command.
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
