#!/usr/bin/env node
// `npm run package`: minified build, then `vsce package --no-dependencies`
// (everything the extension runs is bundled into dist/, see .vscodeignore).
// Prints the .vsix path, size and file list.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './paths.mjs';

const pkg = (await import(path.join(repoRoot, 'package.json'), { with: { type: 'json' } })).default;
const out = path.join(repoRoot, `${pkg.name}-${pkg.version}.vsix`);
execFileSync(process.execPath, ['scripts/build.mjs', '--minify'], { cwd: repoRoot, stdio: 'inherit' });

const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
const args = [vsce, 'package', '--no-dependencies', '--out', out];
// Without these vsce stops to ask y/N, which fails with no stdin (CI).
// Without a repository vsce cannot rewrite README's relative links (the screenshots)
// to absolute URLs and refuses to package: keep them relative.
if (!pkg.repository) args.push('--allow-missing-repository', '--no-rewrite-relative-links');
if (!['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(path.join(repoRoot, f)))) args.push('--skip-license');
const r = spawnSync(process.execPath, args, { cwd: repoRoot, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

const list = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: repoRoot, encoding: 'utf8' });
console.log(`files:\n${list.trim().split('\n').map((f) => `  ${f}`).join('\n')}`);
console.log(`${path.relative(process.cwd(), out)}: ${(statSync(out).size / 1024 / 1024).toFixed(2)} MiB`);
