// Bundles every entry point with esbuild. The worker and CLI are ESM (h5wasm's
// Node build is ESM with top-level await); the extension is CJS for VS Code.
import * as esbuild from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const nodeEsmBanner = [
  "import { createRequire as __cr } from 'node:module';",
  "import { fileURLToPath as __fu } from 'node:url';",
  "import { dirname as __dn } from 'node:path';",
  'const require = __cr(import.meta.url);',
  'const __filename = __fu(import.meta.url);',
  'const __dirname = __dn(__filename);',
].join(' ');

const common = { bundle: true, sourcemap: true, minify, logLevel: 'warning', absWorkingDir: root };
const node = { ...common, platform: 'node', target: 'node20' };
const entries = [
  { ...node, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.cjs', format: 'cjs', external: ['vscode'] },
  { ...node, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.mjs', format: 'esm', banner: { js: nodeEsmBanner }, external: ['@tensorflow/tfjs-node', 'onnxruntime-node'] },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.mjs', format: 'esm', banner: { js: nodeEsmBanner }, external: ['@tensorflow/tfjs-node', 'onnxruntime-node'] },
  { ...common, platform: 'browser', target: 'es2022', entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', format: 'iife', loader: { '.css': 'text' } },
  // The webview's stylesheet: linked by webviewHtml(), inlined by standaloneHtml().
  { ...common, entryPoints: ['webview/style.css'], outfile: 'dist/webview.css' },
].filter((e) => existsSync(path.join(root, e.entryPoints[0])))
  // --only=webview builds just the outputs whose name starts with that (the webview test uses it).
  .filter((e) => !only || path.basename(e.outfile).startsWith(only));

mkdirSync(path.join(root, 'dist'), { recursive: true });
// tfjs-backend-wasm loads its .wasm binaries from next to the bundle at run time.
const wasmDir = path.join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
  cpSync(path.join(wasmDir, f), path.join(root, 'dist', f));
}

if (watch) {
  for (const e of entries) await (await esbuild.context(e)).watch();
  console.log('watching', entries.map((e) => e.outfile).join(', '));
} else {
  await Promise.all(entries.map((e) => esbuild.build(e)));
  console.log('built', entries.map((e) => e.outfile).join(', '));
}
