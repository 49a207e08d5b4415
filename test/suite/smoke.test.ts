// Runs inside the real extension host: the extension activates and registers
// every command its package.json contributes (read from disk at test time).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';

const ID = 'backdoor-audit.backdoor-audit';

suite('smoke', () => {
  test('the extension is installed and activates', async () => {
    const ext = vscode.extensions.getExtension(ID);
    assert.ok(ext, `${ID} is not loaded`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('every contributed command is registered', async () => {
    const ext = vscode.extensions.getExtension(ID);
    assert.ok(ext);
    await ext.activate();
    const pkg = JSON.parse(readFileSync(path.join(ext.extensionPath, 'package.json'), 'utf8'));
    const contributed: string[] = (pkg.contributes?.commands ?? []).map((c: { command: string }) => c.command);
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(contributed.filter((c) => !registered.has(c)), [], 'contributed but not registered');
  });
});
