// Settings -> the engine's AuditOptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAuditOptions, normalizeSettings, normalizeThresholds, parseTarget } from '../../src/host/options';

const from = (values: Record<string, unknown>) => normalizeSettings((k) => values[k]);

test('defaults when nothing is set', () => {
  const s = from({});
  assert.deepEqual(s.thresholds, [2, 4, 10]);
  assert.equal(s.layer, '');
  assert.equal(s.rankOrder, 'increasing');
  assert.equal(s.rankBy, 'pool');
  assert.equal(s.backend, undefined);
  assert.equal(s.batchSize, 256);
  assert.equal(s.workers, 0);
  assert.equal(s.fullSweep, false);
  assert.equal(s.target, undefined);
  assert.deepEqual(s.defaultData, { cleanValid: '', poisonedValid: '', cleanTest: '', poisonedTest: '' });
});

test('wrong types and values fall back to the defaults', () => {
  const s = from({ thresholds: 'x', rankOrder: 'sideways', rankBy: 7, backend: 'gpu', batchSize: 0, workers: -1, fullSweep: 'yes', target: 'abc', layer: 5 });
  assert.deepEqual(s, from({}));
});

test('thresholds: kept in (0, 100], sorted, unique', () => {
  assert.deepEqual(normalizeThresholds([10, 2, 4, 2, 30]), [2, 4, 10, 30]);
  assert.deepEqual(normalizeThresholds([0, -1, 101, NaN, 'x', 5]), [5]);
  assert.deepEqual(normalizeThresholds([]), [2, 4, 10]);
});

test('target: "" or a whole number, also typed as a string', () => {
  assert.equal(parseTarget(''), undefined);
  assert.equal(parseTarget('0'), 0);
  assert.equal(parseTarget(' 12 '), 12);
  assert.equal(parseTarget(3), 3);
  assert.equal(parseTarget(-1), undefined);
  assert.equal(parseTarget(1.5), undefined);
  assert.equal(parseTarget('1e3'), undefined);
});

test('buildAuditOptions takes every setting and leaves unset optional keys out', () => {
  const s = from({ thresholds: [2, 4, 10, 30], layer: 'conv_3', rankOrder: 'decreasing', rankBy: 'conv', backend: 'wasm', batchSize: 64, workers: 2, fullSweep: true, target: '0' });
  const o = buildAuditOptions(s, '/m/bd_net.h5', { cleanValid: '/d/valid.h5', poisonedValid: '/d/bd_valid.h5' }, '/m/bd_net.h5.audit');
  assert.deepEqual(o, {
    model: '/m/bd_net.h5', cleanValid: '/d/valid.h5', poisonedValid: '/d/bd_valid.h5',
    thresholds: [2, 4, 10, 30], order: 'decreasing', rankBy: 'conv', fullSweep: true,
    out: '/m/bd_net.h5.audit', batchSize: 64, workers: 2, layer: 'conv_3', backend: 'wasm', target: 0,
  });
  assert.equal('cleanTest' in o, false);
});

test('buildAuditOptions: explicit thresholds (the webview\'s re-run) override the setting', () => {
  const o = buildAuditOptions(from({}), '/m.h5', { cleanValid: '/v.h5' }, '/o', [30, 2]);
  assert.deepEqual(o.thresholds, [2, 30]);
  assert.equal('backend' in o, false);
  assert.equal('layer' in o, false);
  assert.equal('target' in o, false);
});
