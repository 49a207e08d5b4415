// In-host tests of the extension's VS Code side: activation, commands, the Model
// Inspector custom editor, settings reaching the audit options, and one real audit
// through the command (worker, progress, report panel, saved folder), and a
// weights-only file whose architecture is picked among the workspace's models.
// The model and data are the bundled demo's (a fresh clone runs them all); the
// weights-only flow also runs on the lab's bd_weights.h5 when ../shared is there.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../src/host/ids';
import { acceptingPicks, allTabs, demoDir, extension, until } from './helpers';

const labDir = () => path.resolve(extension().extensionPath, '../shared/fixtures/lab-badnet');

suite('extension host side', () => {
  let ws: string;
  let model: string;

  suiteSetup(() => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the suite needs a workspace folder');
    ws = folder.uri.fsPath;
    // The demo's names are the lab's, so the data pickers recognise them.
    model = path.join(ws, 'bd_net.h5');
    for (const f of ['bd_net.h5', 'valid.h5', 'bd_valid.h5']) copyFileSync(path.join(demoDir(), f), path.join(ws, f));
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('activates and returns its API', async () => {
    const api = await extension().activate();
    assert.equal(extension().isActive, true);
    assert.equal(typeof api.auditOptionsFor, 'function');
  });

  test('every command of src/host/ids.ts is contributed in package.json and registered', async () => {
    await extension().activate();
    const pkg = JSON.parse(readFileSync(path.join(extension().extensionPath, 'package.json'), 'utf8'));
    const contributed = new Set((pkg.contributes.commands as { command: string }[]).map((c) => c.command));
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const id of Object.values(COMMANDS)) {
      assert.ok(contributed.has(id), `${id} is not in package.json`);
      assert.ok(registered.has(id), `${id} is not registered`);
    }
  });

  test('the Model Inspector custom editor opens a model', async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand(COMMANDS.inspect, vscode.Uri.file(model));
    const tab = await until('the inspector tab', () => allTabs().find((t) =>
      t.input instanceof vscode.TabInputCustom && t.input.viewType === 'backdoorAudit.modelInspector' && t.input.uri.fsPath === model));
    assert.equal(tab.label, 'bd_net.h5');
  });

  test('settings are honoured in the audit options', async () => {
    const api = await extension().activate();
    const cfg = vscode.workspace.getConfiguration('backdoorAudit');
    const changes: Record<string, unknown> = {
      thresholds: [10, 2, 30], layer: 'conv_3', rankOrder: 'decreasing', rankBy: 'conv', backend: 'wasm',
      batchSize: 32, workers: 1, fullSweep: true, outputFolder: '${workspaceFolder}/audits', target: '0',
    };
    try {
      for (const [k, v] of Object.entries(changes)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
      const o = api.auditOptionsFor(model, { cleanValid: path.join(ws, 'valid.h5') });
      assert.deepEqual(o.thresholds, [2, 10, 30]);
      assert.equal(o.layer, 'conv_3');
      assert.equal(o.order, 'decreasing');
      assert.equal(o.rankBy, 'conv');
      assert.equal(o.backend, 'wasm');
      assert.equal(o.batchSize, 32);
      assert.equal(o.workers, 1);
      assert.equal(o.fullSweep, true);
      assert.equal(o.target, 0);
      assert.equal(o.out, path.join(ws, 'audits', 'bd_net.h5.audit'));
    } finally {
      for (const k of Object.keys(changes)) await cfg.update(k, undefined, vscode.ConfigurationTarget.Workspace);
    }
    const d = api.auditOptionsFor(model, { cleanValid: path.join(ws, 'valid.h5') });
    assert.deepEqual(d.thresholds, [2, 4, 10]);
    assert.equal(d.out, path.join(ws, 'bd_net.h5.audit'));
    assert.equal(d.backend, undefined);
  });

  test('Audit for Backdoors… with the preselected data picks runs the audit and opens the report', async function () {
    this.timeout(180_000);
    const dir = path.join(ws, 'bd_net.h5.audit');
    rmSync(dir, { recursive: true, force: true });
    // No data given: the four quick picks appear; the names preselect valid.h5,
    // bd_valid.h5, None, None, so accepting each is the lab's choice. The fifth,
    // the repair, starts on "Pruning only (as the lab)".
    const out = await acceptingPicks(vscode.commands.executeCommand<string | undefined>(COMMANDS.audit, vscode.Uri.file(model)));
    assert.equal(out, dir);
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8'));
    assert.equal(report.options.cleanValid, path.join(ws, 'valid.h5'));
    assert.equal(report.options.poisonedValid, path.join(ws, 'bd_valid.h5'));
    assert.equal(report.options.cleanTest, undefined);
    assert.equal(report.options.repair, undefined, 'pruning only');
    assert.deepEqual(report.thresholds.map((t: { drop: number }) => t.drop), [2, 4, 10]);
    for (const t of report.thresholds) if (t.repairedModel) assert.ok(existsSync(path.join(dir, t.repairedModel)), t.repairedModel);
    await until('the report panel', () => allTabs().find((t) =>
      t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('backdoorAudit.auditPanel') && t.label === 'Audit: bd_net.h5'));
  });

  test('Open Report and Re-run take an audit folder', async function () {
    this.timeout(180_000);
    const dir = path.join(ws, 'bd_net.h5.audit');
    if (!existsSync(path.join(dir, 'report.json'))) this.skip();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand(COMMANDS.openReport, dir);
    await until('the report panel', () => allTabs().find((t) => t.label === 'Audit: bd_net.h5'));
    const before = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')).createdAt;
    await vscode.commands.executeCommand(COMMANDS.rerun, { kind: 'audit', dir });
    const after = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')).createdAt;
    assert.notEqual(after, before, 'the re-run wrote a new report');
  });
});

suite('audits of one model and of several', () => {
  let ws: string;
  let data: { cleanValid: string; poisonedValid: string };
  const auditOf = (model: string, args: Record<string, unknown>) =>
    vscode.commands.executeCommand<string | undefined>(COMMANDS.audit, vscode.Uri.file(model), { data, open: false, ...args });

  /** Until the runner has taken the audit of `model` (queued or running). */
  const started = async (model: string) => {
    const api = await extension().activate();
    await until(`the audit of ${path.basename(model)} to start`, () => api.writing(`${model}.audit`), 10_000);
  };

  suiteSetup(() => {
    ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
    mkdirSync(path.join(ws, 'models'), { recursive: true });
    for (const m of ['one.h5', 'two.h5']) copyFileSync(path.join(demoDir(), 'bd_net.h5'), path.join(ws, 'models', m));
    data = { cleanValid: path.join(demoDir(), 'valid.h5'), poisonedValid: path.join(demoDir(), 'bd_valid.h5') };
  });

  test('a second audit of the same model: "Keep it" leaves the running one alone', async function () {
    this.timeout(120_000);
    const model = path.join(ws, 'models', 'one.h5');
    const first = auditOf(model, {});
    await started(model);
    const second = await auditOf(model, { ifBusy: 'keep' });
    assert.equal(second, undefined);
    assert.equal(await first, path.join(ws, 'models', 'one.h5.audit'));
  });

  test('"Cancel the running audit" stops the first; the second then runs', async function () {
    this.timeout(120_000);
    const model = path.join(ws, 'models', 'one.h5');
    const first = auditOf(model, {});
    await started(model);
    const second = auditOf(model, { ifBusy: 'cancel' });
    assert.equal(await first, undefined, 'the first was cancelled');
    assert.equal(await second, path.join(ws, 'models', 'one.h5.audit'));
  });

  test('"Wait" queues the second after the first; different models run side by side', async function () {
    this.timeout(180_000);
    const one = path.join(ws, 'models', 'one.h5');
    const two = path.join(ws, 'models', 'two.h5');
    const first = auditOf(one, {});
    const other = auditOf(two, {});
    await started(one);
    const queued = auditOf(one, { ifBusy: 'wait', thresholds: [2, 30] });
    assert.deepEqual(await Promise.all([first, other, queued]), [
      path.join(ws, 'models', 'one.h5.audit'), path.join(ws, 'models', 'two.h5.audit'), path.join(ws, 'models', 'one.h5.audit'),
    ]);
    // the queued audit ran last: its thresholds are the ones saved
    const report = JSON.parse(readFileSync(path.join(ws, 'models', 'one.h5.audit', 'report.json'), 'utf8'));
    assert.deepEqual(report.thresholds.map((t: { drop: number }) => t.drop), [2, 30]);
  });

  test('the Backdoor Audits view lists the saved audits', async () => {
    const api = await extension().activate();
    const dirs = await api.auditFolders();
    for (const d of ['one.h5.audit', 'two.h5.audit']) assert.ok(dirs.includes(path.join(ws, 'models', d)), `${d} not in ${dirs.join(', ')}`);
  });
});

suite('weights-only models', () => {
  /** The demo's weights beside its full model; the lab's beside the student's pruned model (same layers). */
  const subjects = () => [
    { name: 'demo', dir: demoDir(), weights: 'bd_weights.h5', arch: 'bd_net.h5', clean: 'valid.h5', poisoned: 'bd_valid.h5' },
    { name: 'lab', dir: labDir(), weights: 'bd_weights.h5', arch: 'bd_net_pruned45_keras2.15.h5', clean: 'faces_clean.h5', poisoned: 'faces_sunglasses.h5' },
  ];

  for (const name of ['demo', 'lab']) {
    test(`${name}: inspecting weights alone asks for the architecture, remembers it, and the audit and its re-run use it`, async function () {
      this.timeout(180_000);
      const s = subjects().find((x) => x.name === name)!;
      if (!existsSync(path.join(s.dir, s.weights))) {
        console.log(`# SKIP weights-only (${name}): ${s.dir} is absent`);
        this.skip();
      }
      const ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
      const dir = path.join(ws, `weights-${name}`);
      mkdirSync(dir, { recursive: true });
      for (const f of [s.weights, s.arch]) copyFileSync(path.join(s.dir, f), path.join(dir, f));
      const weights = path.join(dir, s.weights);
      const arch = path.join(dir, s.arch);
      const api = await extension().activate();
      assert.equal(api.architectureOf(weights), undefined);

      // Inspect: the architecture pick offers the fitting models, the one beside the weights first.
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      // The command returns once the inspector opens; the inspector then asks.
      await vscode.commands.executeCommand(COMMANDS.inspect, vscode.Uri.file(weights));
      await until('the inspector of the weights', () => allTabs().find((t) =>
        t.input instanceof vscode.TabInputCustom && t.input.viewType === 'backdoorAudit.modelInspector' && t.input.uri.fsPath === weights));
      await until('the architecture to be picked and remembered', async () => {
        await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
        return api.architectureOf(weights);
      });
      assert.equal(api.architectureOf(weights), arch);

      // The audit asks nothing more about the architecture, and records it.
      const out = await vscode.commands.executeCommand<string | undefined>(COMMANDS.audit, vscode.Uri.file(weights), {
        data: { cleanValid: path.join(s.dir, s.clean), poisonedValid: path.join(s.dir, s.poisoned) }, open: false,
      });
      assert.equal(out, path.join(dir, `${s.weights}.audit`));
      const report = JSON.parse(readFileSync(path.join(out!, 'report.json'), 'utf8'));
      assert.equal(report.arch, arch);
      assert.equal(report.layer, 'conv_3');
      const before = report.createdAt;
      await vscode.commands.executeCommand(COMMANDS.rerun, { kind: 'audit', dir: out });
      const again = JSON.parse(readFileSync(path.join(out!, 'report.json'), 'utf8'));
      assert.notEqual(again.createdAt, before, 'the re-run wrote a new report');
      assert.equal(again.arch, arch, 'the re-run used the same architecture');
    });
  }
});
