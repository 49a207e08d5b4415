// In-host test of the repair after pruning, chosen in the editor: Audit for Backdoors…
// on the bundled demo, the four data picks as preselected, then "Unlearn with a
// trigger file…" in the repair pick and the demo's sunglasses trigger in the trigger
// pick, one epoch. The picks are the real workbench's, driven by its commands; the
// test only watches window.showQuickPick (title, focused item) to know which pick
// is showing and where its focus is.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../src/host/ids';
import type { AuditReport } from '../../src/core/types';
import { allTabs, demoDir, extension, until } from './helpers';

interface ShownPick { title?: string; focused: string[] }

/** Records each quick pick the extension shows with window.showQuickPick, and every item focused in it. */
function watchQuickPicks(): { shown: ShownPick[]; stop: () => void } {
  const window = vscode.window as { showQuickPick: typeof vscode.window.showQuickPick };
  const original = window.showQuickPick;
  const shown: ShownPick[] = [];
  window.showQuickPick = ((items: never, options?: vscode.QuickPickOptions, token?: vscode.CancellationToken) => {
    const pick: ShownPick = { title: options?.title, focused: [] };
    shown.push(pick);
    return original.call(vscode.window, items, {
      ...options,
      onDidSelectItem: (item: string | vscode.QuickPickItem) => {
        pick.focused.push(typeof item === 'string' ? item : item.label);
        return options?.onDidSelectItem?.(item);
      },
    }, token);
  }) as typeof vscode.window.showQuickPick;
  return { shown, stop: () => { window.showQuickPick = original; } };
}

const accept = () => vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');

/** Moves the focus down the shown pick (the list wraps), one step at a time, until it is on `label`. */
function focusOn(pick: ShownPick, label: string): Promise<true> {
  return until(`"${label}" focused in "${pick.title}"`, async () => {
    if (pick.focused.at(-1) === label) return true;
    const moves = pick.focused.length;
    await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
    await until('the focus to move', () => pick.focused.length > moves, 10_000);
    return undefined;
  }, 60_000);
}

suite('repair after pruning, chosen in the editor', () => {
  let dir: string;
  let model: string;
  let trigger: string;

  suiteSetup(() => {
    // A folder of its own: the data picks preselect the files beside the model.
    dir = path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, 'repair');
    mkdirSync(dir, { recursive: true });
    model = path.join(dir, 'bd_net.h5');
    for (const f of ['bd_net.h5', 'valid.h5', 'bd_valid.h5', 'test.h5', 'bd_test.h5']) copyFileSync(path.join(demoDir(), f), path.join(dir, f));
    // The demo's trigger (the generator's sunglasses), as the README's unlearning rows used it.
    trigger = path.join(dir, 'sunglasses_trigger.h5');
    const root = extension().extensionPath;
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(root, 'scripts', 'make-demo', 'trigger.ts'), trigger], { cwd: root, stdio: 'pipe' });
  });

  test('"Unlearn with a trigger file…" in the repair pick: report.json has the trained rows and the repaired files exist', async function () {
    this.timeout(900_000);
    const out = path.join(dir, 'bd_net.h5.audit');
    rmSync(out, { recursive: true, force: true });
    const cfg = vscode.workspace.getConfiguration('backdoorAudit');
    // One epoch of the layers above the pruned one: the shortest training the setting allows.
    const settings: Record<string, unknown> = { 'repair.epochs': 1, 'repair.layers': 'above' };
    for (const [k, v] of Object.entries(settings)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
    const picks = watchQuickPicks();
    try {
      const running = Promise.resolve(vscode.commands.executeCommand<string | undefined>(COMMANDS.audit, vscode.Uri.file(model)));
      let settled = false;
      void running.then(() => { settled = true; }, () => { settled = true; });
      const showing = (title: string) => picks.shown.find((p) => p.title?.endsWith(title));

      // The four data picks (quick picks of their own) start on the demo's files: accept each until the repair pick shows.
      const repair = await until('the repair pick', async () => {
        const p = showing(': repair');
        if (p || settled) return p ?? { title: 'none: the command ended first', focused: [] };
        await accept();
        return undefined;
      }, 180_000);
      assert.equal(repair.title, 'Audit bd_net.h5: repair');

      await focusOn(repair, 'Unlearn with a trigger file…');
      await accept();

      // The trigger pick lists files named like a trigger first.
      const triggerPick = await until('the trigger pick', () => showing(': trigger to unlearn'), 60_000);
      await focusOn(triggerPick, path.basename(trigger));
      await accept();

      assert.equal(await running, out);
    } finally {
      picks.stop();
      for (const k of Object.keys(settings)) await cfg.update(k, undefined, vscode.ConfigurationTarget.Workspace);
    }

    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as AuditReport;
    assert.equal(report.options.repair?.trigger, trigger);
    assert.equal(report.options.repair?.epochs, 1);
    assert.equal(report.trigger?.source, 'file');
    assert.ok((report.trigger?.pixels ?? 0) > 0, 'the trigger stamps no pixel');
    const reached = report.thresholds.filter((t) => t.reached);
    assert.ok(reached.length > 0, 'no threshold was reached');
    for (const t of reached) {
      const f = t.fineTuned;
      assert.ok(f, `the ${t.drop}% row has no fineTuned result`);
      assert.equal(f.method, 'unlearn');
      assert.equal(f.layers, 'above');
      assert.deepEqual(f.epochs.map((e) => e.epoch), [0, 1], `the ${t.drop}% row's epochs`);
      for (const e of f.epochs) assert.ok(e.validAccuracy >= 0 && e.validAccuracy <= 1, `valid accuracy ${e.validAccuracy}`);
      // epoch 0 is B′ before training: its accuracy is the pruning row's
      assert.equal(f.epochs[0].validAccuracy, t.validAccuracy);
      for (const v of [f.prunedModel.testAccuracy, f.prunedModel.testAttackRate, f.goodNet.testAccuracy, f.goodNet.poisonedFlagged]) {
        assert.equal(typeof v, 'number', `the ${t.drop}% trained row lacks a test figure`);
      }
      assert.equal(f.repairedModel, `repaired_${t.drop}_unlearned.h5`);
      assert.ok(existsSync(path.join(out, f.repairedModel)), `${f.repairedModel} is missing`);
      assert.ok(t.repairedModel && existsSync(path.join(out, t.repairedModel)), `the pruning-only model of the ${t.drop}% row is missing`);
    }
    await until('the report panel', () => allTabs().find((tab) =>
      tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('backdoorAudit.auditPanel') && tab.label === 'Audit: bd_net.h5'), 60_000);
  });
});
