#!/usr/bin/env node
// Thin launcher: the CLI is bundled to dist/cli.mjs by `npm run build` (run on install).
import { existsSync } from 'node:fs';
const cli = new URL('../dist/cli.mjs', import.meta.url);
if (!existsSync(cli)) {
  console.error('backdoor-audit: dist/cli.mjs is missing; run `npm run build` first.');
  process.exit(2);
}
await import(cli.href);
