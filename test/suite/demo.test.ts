// Backdoor Audit: Open Demo, on the bundled demo only (no ../shared needed):
// the first call audits the demo through the worker, the second reopens it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../src/host/ids';

const ID = 'backdoor-audit.backdoor-audit';

suite('open demo', () => {
  test('Open Demo audits the bundled BadNet once, shows it, and reopens the saved audit', async function () {
    const ext = vscode.extensions.getExtension(ID)!;
    if (!existsSync(path.join(ext.extensionPath, 'demo/bd_net.h5'))) {
      console.log('# SKIP open demo: demo/ is missing');
      this.skip();
    }
    this.timeout(180_000);
    await ext.activate();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const dir = await vscode.commands.executeCommand<string | undefined>(COMMANDS.openDemo);
    assert.ok(dir, 'Open Demo returns the audit folder');
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8'));
    assert.equal(report.layer, 'conv_3');
    assert.deepEqual(report.thresholds.map((t: { pruned: number }) => t.pruned), [25, 31, 33]);
    // The tab model syncs from the workbench a moment after the panel opens.
    const tabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview);
    for (const deadline = Date.now() + 15_000; !tabs().length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 200));
    assert.ok(tabs().length >= 1, 'the audit panel is open');

    const started = Date.now();
    const again = await vscode.commands.executeCommand<string | undefined>(COMMANDS.openDemo);
    assert.equal(again, dir, 'the saved audit is reopened');
    assert.ok(Date.now() - started < 10_000, 'reopening does not re-run the audit');
  });
});
