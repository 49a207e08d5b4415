// Path safety of the extension host: what a webview or a report may make the host open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  auditDirFor, expandVariables, isInAuditFolder, isInside, isInsideAny, resolveInside, resolveSettingPath,
} from '../../src/host/paths';
import { tmpDir } from '../helpers';

const root = path.resolve('/ws/models/bd_net.h5.audit');

test('isInside: the folder itself and what is below it, nothing else', () => {
  assert.equal(isInside(root, root), true);
  assert.equal(isInside(root, path.join(root, 'repaired_2.h5')), true);
  assert.equal(isInside(root, path.join(root, 'a/b/c.h5')), true);
  assert.equal(isInside(root, path.join(root, '..')), false);
  assert.equal(isInside(root, path.join(root, '../other.h5')), false);
  // a sibling whose name starts with the folder's name is not inside it
  assert.equal(isInside(root, root + '2/x.h5'), false);
  assert.equal(isInside(root, '/etc/passwd'), false);
  // a file whose name merely starts with two dots is inside
  assert.equal(isInside(root, path.join(root, '..hidden.h5')), true);
});

test('isInsideAny checks every root', () => {
  assert.equal(isInsideAny(['/a', '/b'], '/b/c'), true);
  assert.equal(isInsideAny(['/a', '/b'], '/c/b'), false);
  assert.equal(isInsideAny([], '/a'), false);
});

test('resolveInside: relative names resolve against the folder; escapes are refused', () => {
  assert.equal(resolveInside(root, 'repaired_2.h5'), path.join(root, 'repaired_2.h5'));
  assert.equal(resolveInside(root, path.join(root, 'repaired_4.h5')), path.join(root, 'repaired_4.h5'));
  assert.equal(resolveInside(root, '../bd_net.h5'), undefined);
  assert.equal(resolveInside(root, '../../../../etc/passwd'), undefined);
  assert.equal(resolveInside(root, '/etc/passwd'), undefined);
  assert.equal(resolveInside(root, 'sub/../../x.h5'), undefined);
  assert.equal(resolveInside(root, ''), undefined);
  assert.equal(resolveInside(root, 'a\0b'), undefined);
});

test('resolveInside follows symlinks: a link inside that points outside is refused', (t) => {
  const tmp = tmpDir('host-paths-');
  const dir = path.join(tmp, 'm.h5.audit');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'repaired_2.h5'), 'x');
  writeFileSync(path.join(tmp, 'secret.h5'), 'x');
  try {
    symlinkSync(path.join(tmp, 'secret.h5'), path.join(dir, 'link.h5'));
  } catch {
    t.skip('symlinks are not allowed here');
    return;
  }
  assert.equal(resolveInside(dir, 'repaired_2.h5'), path.join(dir, 'repaired_2.h5'));
  assert.equal(resolveInside(dir, 'link.h5'), undefined);
});

test('expandVariables: ${workspaceFolder}, ${userHome}, ~; undefined when a variable has no value', () => {
  assert.equal(expandVariables('${workspaceFolder}/data/valid.h5', { workspaceFolder: '/ws' }), '/ws/data/valid.h5');
  assert.equal(expandVariables('${userHome}/x', { userHome: '/home/u' }), '/home/u/x');
  assert.equal(expandVariables('~/x', { userHome: '/home/u' }), '/home/u/x');
  assert.equal(expandVariables('a~/x', { userHome: '/home/u' }), 'a~/x');
  assert.equal(expandVariables('${workspaceFolder}/x', {}), undefined);
  assert.equal(expandVariables('/abs/${unknown}/x', {}), '/abs/${unknown}/x');
});

test('resolveSettingPath: empty is unset; relative paths resolve against the base', () => {
  assert.equal(resolveSettingPath('', { workspaceFolder: '/ws' }, '/ws'), undefined);
  assert.equal(resolveSettingPath('   ', { workspaceFolder: '/ws' }, '/ws'), undefined);
  assert.equal(resolveSettingPath('data/valid.h5', { workspaceFolder: '/ws' }, '/ws'), path.resolve('/ws/data/valid.h5'));
  assert.equal(resolveSettingPath('${workspaceFolder}/out', { workspaceFolder: '/ws' }, '/elsewhere'), path.resolve('/ws/out'));
  assert.equal(resolveSettingPath('${workspaceFolder}/out', {}, '/elsewhere'), undefined);
});

test('auditDirFor: beside the model by default, else one folder per model in the output folder', () => {
  assert.equal(auditDirFor('/ws/models/bd_net.h5'), path.join('/ws/models', 'bd_net.h5.audit'));
  assert.equal(auditDirFor('/ws/models/bd_net.h5', '/out'), path.join('/out', 'bd_net.h5.audit'));
});

test('isInAuditFolder: files in *.audit folders (and the engine\'s partial/old swaps) are outputs', () => {
  assert.equal(isInAuditFolder('/ws/bd_net.h5.audit/repaired_2.h5'), true);
  assert.equal(isInAuditFolder('/ws/bd_net.h5.audit.partial-123/repaired_2.h5'), true);
  assert.equal(isInAuditFolder('/ws/bd_net.h5.audit.old-9/repaired_2.h5'), true);
  assert.equal(isInAuditFolder('/ws/data/valid.h5'), false);
  assert.equal(isInAuditFolder('/ws/x.audit'), false); // a file so named, not a folder
  assert.equal(isInAuditFolder('/ws/auditing/valid.h5'), false);
});
