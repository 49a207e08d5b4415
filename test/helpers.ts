// Shared test helpers: where the fixtures are, visible skips without them, temp folders, and a zip-header patcher for hostile archives.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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

const made: string[] = [];
// Each test file runs in its own process: its temp folders go when it ends (BDA_KEEP_TMP=1 keeps them).
process.on('exit', () => {
  if (!process.env.BDA_KEEP_TMP) for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process exits. */
export function tmpDir(prefix = 'ba-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Rewrites the declared uncompressed size of `member` in both zip headers. */
export function declareZipSize(zip: Uint8Array, member: string, size: number): Uint8Array {
  const z = Uint8Array.from(zip);
  const dv = new DataView(z.buffer);
  const name = Buffer.from(member);
  for (let o = 0; o + 46 < z.length; o++) {
    const sig = dv.getUint32(o, true);
    if (sig === 0x02014b50 && name.equals(z.subarray(o + 46, o + 46 + name.length))) dv.setUint32(o + 24, size, true);
    if (sig === 0x04034b50 && name.equals(z.subarray(o + 30, o + 30 + name.length))) dv.setUint32(o + 22, size, true);
  }
  return z;
}

/** The largest absolute difference between two arrays of the same length. */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The largest absolute value in an array. */
export const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
