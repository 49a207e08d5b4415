// Saved audits: reading report.json and resolving the files it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  auditDirFromState, dataFileFor, findAuditDirs, readReport, repairedModelPath, reportPath,
} from '../../src/host/reports';
import type { AuditReport } from '../../src/protocol';
import { tmpDir } from '../helpers';

function makeAudit() {
  const tmp = tmpDir('host-reports-');
  const dir = path.join(tmp, 'bd_net.h5.audit');
  mkdirSync(dir);
  writeFileSync(path.join(tmp, 'bd_net.h5'), 'model');
  writeFileSync(path.join(tmp, 'valid.h5'), 'data');
  writeFileSync(path.join(dir, 'repaired_2.h5'), 'x');
  const row = (drop: number, repairedModel?: string) => ({
    drop, reached: true, pruned: 45, prunedChannels: [], validAccuracy: 0.96, repairedModel, prunedModel: {}, goodNet: {},
  });
  const report = {
    version: 1, createdAt: '2024-01-01T00:00:00Z', model: '/somewhere/else/bd_net.h5', backend: 'wasm', workers: 1,
    layer: 'conv_3', rankedBy: 'pool_3', order: 'increasing', classes: 1283,
    options: {}, data: { cleanValid: { file: '/somewhere/else/valid.h5', count: 5, shape: [5, 3, 55, 47], dtype: 'float64', axisOrder: 'channels_first' } },
    baseline: { validAccuracy: 0.98 }, ranking: [], steps: [],
    thresholds: [row(2, 'repaired_2.h5'), row(4, '../bd_net.h5'), row(10, '/etc/passwd'), row(30, '/other/machine/bd_net.h5.audit/repaired_2.h5'), row(50)],
    repairedNetwork: { rule: '', badNet: '', flaggedClass: 1283, prunedNets: {} }, samples: [], timing: { totalSeconds: 1, phases: {} },
  };
  writeFileSync(path.join(dir, 'report.json'), JSON.stringify(report));
  return { tmp, dir };
}

test('readReport reads a version 1 report and rejects anything else, naming the file', async () => {
  const { tmp, dir } = makeAudit();
  const r = await readReport(dir);
  assert.equal(r.layer, 'conv_3');
  await assert.rejects(readReport(tmp), (e: Error & { file?: string }) => /not found/.test(e.message) && e.file === path.join(tmp, 'report.json'));
  writeFileSync(path.join(tmp, 'report.json'), '{"version":2}');
  await assert.rejects(readReport(tmp), /not a Backdoor Audit report/);
  writeFileSync(path.join(tmp, 'report.json'), '{nope');
  await assert.rejects(readReport(tmp), /unreadable/);
});

test('repaired models are only found inside the audit folder', async () => {
  const { dir } = makeAudit();
  const r: AuditReport = await readReport(dir);
  assert.equal(repairedModelPath(dir, r, 2), path.join(dir, 'repaired_2.h5'));
  assert.equal(repairedModelPath(dir, r, 4), undefined, 'the model beside the folder is outside it');
  assert.equal(repairedModelPath(dir, r, 10), undefined, 'an absolute path elsewhere is refused');
  // written on another machine: the same name in this folder is the one meant
  assert.equal(repairedModelPath(dir, r, 30), path.join(dir, 'repaired_2.h5'));
  assert.equal(repairedModelPath(dir, r, 50), undefined, 'no repaired model for that row');
  assert.equal(repairedModelPath(dir, r, 7), undefined, 'no such row');
});

test('model and data paths from another machine fall back to the files beside the audit folder', async () => {
  const { tmp, dir } = makeAudit();
  const r = await readReport(dir);
  assert.equal(reportPath(dir, r.model), path.join(tmp, 'bd_net.h5'));
  assert.deepEqual(dataFileFor(dir, r, 'clean'), { file: path.join(tmp, 'valid.h5'), count: 5 });
  assert.equal(dataFileFor(dir, r, 'poisoned'), undefined);
  assert.equal(reportPath(dir, '/nowhere/x.h5'), '/nowhere/x.h5');
});

test('auditDirFromState takes only an absolute audit folder from the webview state', () => {
  assert.equal(auditDirFromState({ view: { view: 'audit', reportDir: '/ws/m.h5.audit', report: {} }, ui: {} }), path.resolve('/ws/m.h5.audit'));
  assert.equal(auditDirFromState({ view: 'audit', reportDir: '/ws/m.h5.audit' }), path.resolve('/ws/m.h5.audit'));
  assert.equal(auditDirFromState({ view: { view: 'inspect' } }), undefined);
  assert.equal(auditDirFromState({ view: { view: 'audit', reportDir: 'relative/dir' } }), undefined);
  assert.equal(auditDirFromState({ view: { view: 'audit', reportDir: 42 } }), undefined);
  assert.equal(auditDirFromState(null), undefined);
  assert.equal(auditDirFromState('x'), undefined);
});

test('findAuditDirs lists the folder and its direct children that hold a report', () => {
  const { tmp, dir } = makeAudit();
  assert.deepEqual(findAuditDirs(tmp), [dir]);
  assert.deepEqual(findAuditDirs(dir), [dir]);
  assert.deepEqual(findAuditDirs(path.join(tmp, 'missing')), []);
});
