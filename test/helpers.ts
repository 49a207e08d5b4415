// Shared test helpers: where the fixtures are, and visible skips without them.
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const fixtures = path.resolve(repoRoot, '../shared/fixtures');
export const lab = (f: string) => path.join(fixtures, 'lab-badnet', f);
export const k3 = (f: string) => path.join(fixtures, 'keras3-small', f);
export const demo = (f: string) => path.join(repoRoot, 'demo', f);
export const workerPath = path.join(repoRoot, 'dist/worker.mjs');
export const cliPath = path.join(repoRoot, 'dist/cli.mjs');

export const hasShared = existsSync(path.join(fixtures, 'lab-badnet/bd_weights.h5'));
export const hasDemo = existsSync(demo('bd_net.h5'));
/** node:test prints the reason next to every skipped test. */
export const needsShared = hasShared ? false : 'needs ../shared/fixtures beside the repo (absent here)';
export const needsDemo = hasDemo ? false : 'needs demo/ (run npm run make-demo)';

export const tmpDir = (prefix = 'ba-test-') => mkdtempSync(path.join(os.tmpdir(), prefix));
