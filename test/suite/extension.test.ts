// In-host tests of the extension's VS Code side: activation, commands, the Model
// Inspector custom editor, settings reaching the audit options, and one real audit
// through the command (worker, progress, report panel, saved folder).
// The model and data are the shared lab fixtures, copied into the test workspace.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../src/host/ids';
import type { BackdoorAuditApi } from '../../src/extension';

const ID = 'backdoor-audit.backdoor-audit';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function extension(): vscode.Extension<BackdoorAuditApi> {
  const ext = vscode.extensions.getExtension<BackdoorAuditApi>(ID);
  assert.ok(ext, `${ID} is not loaded`);
  return ext;
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function allTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs);
}

suite('extension host side', () => {
  let ws: string;
  let fixtures: string;
  let model: string;

  suiteSetup(function () {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the suite needs a workspace folder');
    ws = folder.uri.fsPath;
    fixtures = path.resolve(extension().extensionPath, '../shared/fixtures/lab-badnet');
    if (!existsSync(fixtures)) {
      console.log(`# SKIP extension host side: fixtures not found at ${fixtures}`);
      this.skip();
    }
    // The lab's names, so the data pickers can recognise them.
    model = path.join(ws, 'bd_net.h5');
    copyFileSync(path.join(fixtures, 'bd_net_pruned45_keras2.15.h5'), model);
    copyFileSync(path.join(fixtures, 'faces_clean.h5'), path.join(ws, 'valid.h5'));
    copyFileSync(path.join(fixtures, 'faces_sunglasses.h5'), path.join(ws, 'bd_valid.h5'));
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
    const running = vscode.commands.executeCommand<string | undefined>(COMMANDS.audit, vscode.Uri.file(model));
    for (let step = 0; step < 5; step++) {
      await sleep(1500);
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    }
    const out = await running;
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

  suiteSetup(function () {
    ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const fixtures = path.resolve(extension().extensionPath, '../shared/fixtures/lab-badnet');
    if (!existsSync(fixtures)) this.skip();
    mkdirSync(path.join(ws, 'models'), { recursive: true });
    for (const m of ['one.h5', 'two.h5']) copyFileSync(path.join(fixtures, 'bd_net_pruned45_keras2.15.h5'), path.join(ws, 'models', m));
    data = { cleanValid: path.join(fixtures, 'faces_clean.h5'), poisonedValid: path.join(fixtures, 'faces_sunglasses.h5') };
  });

  test('a second audit of the same model: "Keep it" leaves the running one alone', async function () {
    this.timeout(120_000);
    const model = path.join(ws, 'models', 'one.h5');
    const first = auditOf(model, {});
    await sleep(300);
    const second = await auditOf(model, { ifBusy: 'keep' });
    assert.equal(second, undefined);
    assert.equal(await first, path.join(ws, 'models', 'one.h5.audit'));
  });

  test('"Cancel the running audit" stops the first; the second then runs', async function () {
    this.timeout(120_000);
    const model = path.join(ws, 'models', 'one.h5');
    const first = auditOf(model, {});
    await sleep(300);
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
    await sleep(300);
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
