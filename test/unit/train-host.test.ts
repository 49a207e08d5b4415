// The repair settings and the quick pick's choice turned into the engine's options (pure, no vscode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildAuditOptions, normalizeSettings } from '../../src/host/options';
import { repoRoot } from '../helpers';

const from = (values: Record<string, unknown>) => normalizeSettings((k) => values[k]);
const data = { cleanValid: '/d/valid.h5', poisonedValid: '/d/bd_valid.h5' };

test('pruning only (the default) adds no repair; fine-tune and unlearn carry the repair settings', () => {
  const s = from({ 'repair.epochs': 3, 'repair.learningRate': 0.001, 'repair.layers': 'above', 'repair.seed': 7 });
  assert.equal(buildAuditOptions(s, '/m.h5', data, '/o').repair, undefined);
  assert.equal(buildAuditOptions(s, '/m.h5', data, '/o', undefined, { method: 'none' }).repair, undefined);
  const ft = buildAuditOptions(s, '/m.h5', data, '/o', undefined, { method: 'fine-tune' }).repair;
  assert.deepEqual(ft, { epochs: 3, learningRate: 0.001, optimizer: 'adam', batchSize: 64, layers: 'above', share: 0.2, seed: 7 });
  assert.equal(buildAuditOptions(s, '/m.h5', data, '/o', undefined, { method: 'unlearn', trigger: '/t/trigger_0.h5' }).repair?.trigger, '/t/trigger_0.h5');
  assert.equal(buildAuditOptions(s, '/m.h5', data, '/o', undefined, { method: 'unlearn', fromPoisoned: true }).repair?.triggerFromPoisoned, true);
});

test('repair settings of the wrong type fall back to the defaults, which package.json declares', () => {
  const s = from({ 'repair.epochs': 0, 'repair.learningRate': -1, 'repair.optimizer': 'rmsprop', 'repair.layers': 'x', 'repair.unlearnShare': 1 });
  assert.deepEqual(s.repair, { epochs: 5, learningRate: 1e-4, optimizer: 'adam', batchSize: 64, layers: 'all', share: 0.2, seed: 1 });
  const props = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration.properties;
  const declared = (k: string) => props[`backdoorAudit.repair.${k}`].default;
  assert.deepEqual(
    [declared('epochs'), declared('learningRate'), declared('optimizer'), declared('batchSize'), declared('layers'), declared('unlearnShare'), declared('seed')],
    [s.repair.epochs, s.repair.learningRate, s.repair.optimizer, s.repair.batchSize, s.repair.layers, s.repair.share, s.repair.seed],
  );
});
