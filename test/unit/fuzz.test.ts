// A short seeded run of scripts/fuzz.ts (mutated models, archives and data
// through the worker): every case ends in a clear error or a sane result.
// `npm run fuzz -- --cases 400` runs the long version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../scripts/fuzz';
import { workerPath } from '../helpers';

test('fuzz: 40 seeded cases through the worker, no crash and no hang', async () => {
  const lines: string[] = [];
  const s = await runFuzz({ cases: 40, seed: 1, timeLimit: 30000, parallel: 2, workerPath, log: (l) => lines.push(l) });
  assert.equal(s.counts.crash + s.counts.hang, 0, `failures:\n${lines.join('\n')}`);
  assert.equal(s.counts.success + s.counts.clear, 40);
  assert.ok(s.counts.success > 0 && s.counts.clear > 0, JSON.stringify(s.counts));
});
