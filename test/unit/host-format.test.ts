// Texts of the progress notification and the audits tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropRowLabel, pct, progressText } from '../../src/host/format';
import type { ThresholdResult } from '../../src/protocol';

test('pct: fractions as percent with at most two decimals', () => {
  assert.equal(pct(0.957443), '95.74%');
  assert.equal(pct(1), '100%');
  assert.equal(pct(0), '0%');
  assert.equal(pct(undefined), '–');
  assert.equal(pct(NaN), '–');
});

test('a threshold row reads like the lab\'s table', () => {
  const row: ThresholdResult = {
    drop: 2, reached: true, pruned: 45, prunedChannels: [], validAccuracy: 0.9648, repairedModel: 'repaired_2.h5',
    prunedModel: { testAccuracy: 0.9628, testAttackRate: 1 },
    goodNet: { testAccuracy: 0.957443, testAttackRate: 1 },
  };
  assert.equal(dropRowLabel(row), '2% · 45 pruned · G acc 95.74% · attack 100%');
  const noTest: ThresholdResult = { ...row, reached: false, prunedModel: {}, goodNet: {} };
  assert.equal(dropRowLabel(noTest), '2% · 45 pruned · valid acc 96.48% · not reached');
  const steps = [{ pruned: 44, channel: 3, validAccuracy: 0.97, validAttackRate: 1 }, { pruned: 45, channel: 9, validAccuracy: 0.9648, validAttackRate: 0.5 }];
  assert.equal(dropRowLabel({ ...noTest, reached: true }, steps), '2% · 45 pruned · valid acc 96.48% · valid attack 50%');
});

test('progress: phase, step k/n, accuracy so far, images/s', () => {
  assert.equal(
    progressText({ phase: 'sweep', message: '', step: 12, total: 60, validAccuracy: 0.971, validAttackRate: 0.88, imagesPerSecond: 1320.4 }),
    'Pruning sweep · step 12/60 · acc 97.1% · attack 88% · 1,320 images/s',
  );
  assert.equal(progressText({ phase: 'reading', message: 'valid.h5' }), 'Reading data · valid.h5');
});
