// The host's side of the backdoor scan: where scans and trigger audits are written, the
// job options built from the settings, reading scan.json and resolving its trigger files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { progressText, scanSummary } from '../../src/host/format';
import { buildScanOptions, buildTriggerAuditOptions, normalizeSettings } from '../../src/host/options';
import { isInAuditFolder, scanDirFor, triggerAuditDirFor } from '../../src/host/paths';
import { findReportDirs, readScan, reportDirFromState, SCAN_FILE, triggerFilePath } from '../../src/host/reports';
import { tmpDir } from '../helpers';

const from = (values: Record<string, unknown>) => normalizeSettings((k) => values[k]);

test('scan settings: 200 images, 3 candidate labels, 20 calibration labels unless set', () => {
  assert.deepEqual(from({}).scan, { images: 200, labels: 3, calibration: 20 });
  assert.deepEqual(from({ 'scan.images': 5, 'scan.labels': 2, 'scan.calibration': 0 }).scan, { images: 5, labels: 2, calibration: 0 });
  assert.deepEqual(from({ 'scan.images': 0, 'scan.labels': 'x', 'scan.calibration': -1 }).scan, { images: 200, labels: 3, calibration: 20 });
});

test('buildScanOptions takes the layer, backend, batch size and workers of the audit settings', () => {
  const o = buildScanOptions(from({ layer: 'conv_3', backend: 'wasm', batchSize: 64, workers: 2, 'scan.images': 5 }), '/m/bd_net.h5', '/d/valid.h5', '/m/bd_net.h5.scan');
  assert.deepEqual(o, {
    model: '/m/bd_net.h5', clean: '/d/valid.h5', out: '/m/bd_net.h5.scan', images: 5, labels: 3, calibration: 20,
    seed: 1, batchSize: 64, workers: 2, layer: 'conv_3', backend: 'wasm',
  });
  assert.equal('layer' in buildScanOptions(from({}), '/m/a.h5', '/d/v.h5', '/o'), false, 'auto layer is left to the engine');
});

test('an audit with a trigger: no poisoned sets, the trigger label as the target, its own folder', () => {
  const s = from({ target: '7' });
  const out = triggerAuditDirFor('/m/bd_net.h5', 0);
  assert.equal(out, path.join('/m', 'bd_net.h5.trigger_0.audit'));
  const o = buildTriggerAuditOptions(s, '/m/bd_net.h5', { cleanValid: '/d/valid.h5' }, '/m/bd_net.h5.scan/trigger_0.h5', 0, out);
  assert.equal(o.trigger, '/m/bd_net.h5.scan/trigger_0.h5');
  assert.equal(o.triggerTarget, 0);
  assert.equal(o.target, 0, 'the scan’s label, not the target setting');
  assert.equal(o.poisonedValid, undefined);
  assert.equal(o.cleanTest, undefined);
  assert.equal(buildTriggerAuditOptions(s, '/m/a.h5', { cleanValid: '/v.h5', cleanTest: '/t.h5' }, '/t_3.h5', 3, '/o').cleanTest, '/t.h5');
});

test('scan folders: <model>.scan beside the model or in the output folder; their files are not data', () => {
  assert.equal(scanDirFor('/ws/m/bd_net.h5'), path.join('/ws/m', 'bd_net.h5.scan'));
  assert.equal(scanDirFor('/ws/m/bd_net.h5', '/out'), path.join('/out', 'bd_net.h5.scan'));
  assert.equal(isInAuditFolder('/ws/bd_net.h5.scan/trigger_0.h5'), true);
  assert.equal(isInAuditFolder('/ws/bd_net.h5.scan.partial-12/trigger_0.h5'), true);
  assert.equal(isInAuditFolder('/ws/scans/valid.h5'), false);
});

test('readScan checks scan.json; trigger files resolve only inside the scan folder', async () => {
  const tmp = tmpDir('host-scan-');
  const dir = path.join(tmp, 'bd_net.h5.scan');
  mkdirSync(dir);
  const scan = {
    version: 1, kind: 'scan', model: '/elsewhere/bd_net.h5', verdict: 'backdoor', evidence: [], channels: [],
    targets: [{ label: 0, anomalyIndex: 4, maskL1: 10, triggerAttackRate: 1, channels: [], trigger: 'trigger_0.h5' }],
    labels: [{ label: 0, role: 'candidate', maskL1: 10, triggerAttackRate: 1, anomalyIndex: 4, trigger: 'trigger_0.h5' },
      { label: 5, role: 'calibration', maskL1: 90, triggerAttackRate: 0.2, anomalyIndex: 0, trigger: '../../etc/passwd' }],
  };
  writeFileSync(path.join(dir, SCAN_FILE), JSON.stringify(scan));
  const r = await readScan(dir);
  assert.equal(r.verdict, 'backdoor');
  assert.equal(triggerFilePath(dir, r, 0), path.join(dir, 'trigger_0.h5'));
  assert.equal(triggerFilePath(dir, r, 5), path.join(dir, 'passwd'), 'only the file name of an entry is used');
  assert.equal(triggerFilePath(dir, r, 9), undefined, 'no such label');
  assert.deepEqual(findReportDirs(tmp, SCAN_FILE), [dir]);

  writeFileSync(path.join(dir, SCAN_FILE), JSON.stringify({ ...scan, verdict: 'maybe' }));
  await assert.rejects(readScan(dir), /not a Backdoor Audit scan/);
  await assert.rejects(readScan(tmp), (e: Error & { file?: string }) => /not found/.test(e.message) && e.file === path.join(tmp, SCAN_FILE));
});

test('a restored scan panel takes only an absolute scan folder from its state', () => {
  assert.equal(reportDirFromState({ view: { view: 'scan', reportDir: '/ws/m.h5.scan' }, ui: {} }, 'scan'), path.resolve('/ws/m.h5.scan'));
  assert.equal(reportDirFromState({ view: { view: 'audit', reportDir: '/ws/m.h5.audit' } }, 'scan'), undefined);
  assert.equal(reportDirFromState({ view: { view: 'scan', reportDir: 'rel' } }, 'scan'), undefined);
});

test('a scan in the tree and its progress in the notification, in words', () => {
  const base = { layer: 'conv_3', images: 200, createdAt: '2026-12-02T18:54:25.218Z' };
  assert.equal(scanSummary({ ...base, verdict: 'backdoor', targets: [{ label: 0 }, { label: 7 }] } as never), 'backdoor → 0, 7 · conv_3 · 200 images · 2026-12-02 18:54');
  assert.equal(scanSummary({ ...base, verdict: 'clean', targets: [] } as never), 'clean · conv_3 · 200 images · 2026-12-02 18:54');
  assert.equal(scanSummary({ ...base, verdict: 'clean', conclusive: false, targets: [] } as never), 'inconclusive · conv_3 · 200 images · 2026-12-02 18:54');
  assert.equal(progressText({ phase: 'trigger', message: 'label 5', step: 2, total: 20 }), 'Reconstructing triggers · step 2/20 · label 5');
  assert.equal(progressText({ phase: 'stimulation', message: 'Stimulating channels' }), 'Stimulating channels');
});
