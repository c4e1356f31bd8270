#!/usr/bin/env node
// The `sluice` command. Uses the compiled CLI in dist/ (`npm run build`) when
// present, so it works from node_modules, where Node does not strip types;
// otherwise runs the TypeScript sources directly (Node >= 22.18).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const { main } = await import(existsSync(compiled) ? compiled.href : new URL('../src/cli/main.ts', import.meta.url).href);
await main();
