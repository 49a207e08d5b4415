// Bundles the in-host mocha suite (test/suite) to out/test/suite/*.js as CommonJS,
// the format VS Code's extensionTestsPath loader requires. The package is
// "type": "module", so out/test/package.json marks that folder as CommonJS.
// `vscode` comes from the extension host; mocha resolves from node_modules.
import * as esbuild from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './paths.mjs';

const src = path.join(repoRoot, 'test', 'suite');
const out = path.join(repoRoot, 'out', 'test');
const entries = readdirSync(src).filter((f) => f === 'index.ts' || f.endsWith('.test.ts')).map((f) => path.join(src, f));
rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'suite'), { recursive: true });
writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
await esbuild.build({
  entryPoints: entries,
  outdir: path.join(out, 'suite'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  external: ['vscode', 'mocha'],
  logLevel: 'warning',
  absWorkingDir: repoRoot,
});
console.log(`built in-host suite: ${entries.length - 1} test file(s) -> ${path.relative(repoRoot, out)}/suite`);
