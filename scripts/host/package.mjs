#!/usr/bin/env node
// `npm run package`: minified build, then one .vsix per platform that ONNX Runtime
// ships a CPU binary for (`vsce package --target …`, carrying only that platform's
// binary), plus a universal .vsix without it, which runs on the wasm backend.
// Everything else the extension runs is bundled into dist/ (see .vscodeignore); the
// native module is staged in dist/node_modules/, where the worker's import finds it.
// `--target linux-x64` (repeatable) or `--target universal` packages only those.
// Prints each .vsix's path and size, and the file list of the first.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './paths.mjs';

/** vsce target → onnxruntime-node's bin/napi-v6/<platform>/<arch> (onnxruntime-node 1.30 has no darwin-x64 binary). */
const NATIVE = { 'linux-x64': 'linux/x64', 'linux-arm64': 'linux/arm64', 'darwin-arm64': 'darwin/arm64', 'win32-x64': 'win32/x64', 'win32-arm64': 'win32/arm64' };

const { values: args } = parseArgs({ options: { target: { type: 'string', multiple: true } } });
const targets = args.target ?? [...Object.keys(NATIVE), 'universal'];
for (const t of targets) if (t !== 'universal' && !NATIVE[t]) throw new Error(`no ONNX Runtime binary for target ${t}; use one of ${Object.keys(NATIVE).join(', ')}, or universal`);

const pkg = (await import(path.join(repoRoot, 'package.json'), { with: { type: 'json' } })).default;
execFileSync(process.execPath, ['scripts/build.mjs', '--minify'], { cwd: repoRoot, stdio: 'inherit' });

const staged = path.join(repoRoot, 'dist', 'node_modules');
const modules = path.join(repoRoot, 'node_modules');
/** onnxruntime-node's JS, its one run-time dependency, and the binary of one platform. */
function stageNative(platformDir) {
  rmSync(staged, { recursive: true, force: true });
  const ortNode = path.join(staged, 'onnxruntime-node');
  for (const f of ['package.json', 'LICENSE', 'dist']) {
    const from = path.join(modules, 'onnxruntime-node', f);
    if (existsSync(from)) cpSync(from, path.join(ortNode, f), { recursive: true, filter: (p) => !p.endsWith('.map') && !p.endsWith('.d.ts') });
  }
  const bin = path.join('bin', 'napi-v6', platformDir);
  mkdirSync(path.join(ortNode, bin), { recursive: true });
  cpSync(path.join(modules, 'onnxruntime-node', bin), path.join(ortNode, bin), { recursive: true });
  for (const f of ['package.json', 'LICENSE', 'dist']) {
    const from = path.join(modules, 'onnxruntime-common', f);
    if (existsSync(from)) cpSync(from, path.join(staged, 'onnxruntime-common', f), { recursive: true, filter: (p) => !p.endsWith('.map') && !p.endsWith('.d.ts') });
  }
}

const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
const made = [];
try {
  for (const target of targets) {
    const native = target !== 'universal';
    if (native) stageNative(NATIVE[target]);
    else rmSync(staged, { recursive: true, force: true });
    const out = path.join(repoRoot, `${pkg.name}-${native ? `${target}-` : ''}${pkg.version}.vsix`);
    const vsceArgs = [vsce, 'package', '--no-dependencies', '--out', out, ...(native ? ['--target', target] : [])];
    // Without these vsce stops to ask y/N, which fails with no stdin (CI).
    // Without a repository vsce cannot rewrite README's relative links (the screenshots)
    // to absolute URLs and refuses to package: keep them relative.
    if (!pkg.repository) vsceArgs.push('--allow-missing-repository', '--no-rewrite-relative-links');
    if (!['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(path.join(repoRoot, f)))) vsceArgs.push('--skip-license');
    const r = spawnSync(process.execPath, vsceArgs, { cwd: repoRoot, stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
    if (!made.length) {
      const list = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: repoRoot, encoding: 'utf8' });
      console.log(`files (${target}):\n${list.trim().split('\n').map((f) => `  ${f}`).join('\n')}`);
    }
    made.push({ target, out });
  }
} finally {
  // The staged copy would shadow node_modules/ for the development build.
  rmSync(staged, { recursive: true, force: true });
}
for (const { target, out } of made) {
  console.log(`${target}: ${path.relative(process.cwd(), out)}: ${(statSync(out).size / 1024 / 1024).toFixed(2)} MiB`);
}
