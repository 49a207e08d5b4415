// Entry point: wires the host modules together. All behaviour lives in src/host/.
import path from 'node:path';
import * as vscode from 'vscode';
import { Architectures } from './host/architecture';
import { AuditRunner } from './host/auditRunner';
import { AuditsTree } from './host/auditsTree';
import { Actions, registerCommands } from './host/commands';
import { AUDIT_PANEL_TYPE, AUDITS_VIEW, SCAN_PANEL_TYPE } from './host/ids';
import { ModelInspectorProvider } from './host/inspectorEditor';
import { createLog } from './host/log';
import type { DataChoice } from './host/options';
import { Panels } from './host/panels';
import { REPORT_FILE, SCAN_FILE } from './host/reports';
import { SECTION, configuredOutputRoots, readSettings } from './host/settings';
import type { AuditOptions } from './protocol';

/** What activate() returns: a small surface for the in-host tests and other extensions. */
export interface BackdoorAuditApi {
  /** The options "Audit for Backdoors…" would run `model` with, from the settings. */
  auditOptionsFor(model: string, data: DataChoice): AuditOptions;
  /** The audit folders the Backdoor Audits view lists, after a fresh scan. */
  auditFolders(): Promise<string[]>;
  /** Is an audit or scan writing `folder` (running or queued)? */
  writing(folder: string): boolean;
  /** The architecture remembered for a weights-only `model` in this workspace. */
  architectureOf(model: string): string | undefined;
  /** The scan folders the Backdoor Audits view lists, with their verdicts, after a fresh look. */
  scanFolders(): Promise<{ dir: string; verdict: string; description: string }[]>;
  /** "Audit with this trigger" without the pickers (for the in-host tests). */
  auditWithTrigger(scanFolder: string, label: number, data: DataChoice): Promise<string | undefined>;
}

export function activate(ctx: vscode.ExtensionContext): BackdoorAuditApi {
  const log = createLog();
  const workerPath = path.join(ctx.extensionPath, 'dist', 'worker.mjs');
  const runner = new AuditRunner(workerPath);
  const tree = new AuditsTree(configuredOutputRoots);
  const archs = new Architectures(ctx.workspaceState, workerPath);

  // Folders a restored audit panel may read from: where audits are written.
  const allowedRoots = () => [
    ...(vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
    ctx.globalStorageUri.fsPath,
    path.join(ctx.extensionPath, 'demo'),
    ...configuredOutputRoots(),
  ];
  // `actions` is created after `panels`, which calls back into it only on user action.
  let actions: Actions | undefined;
  const panels = new Panels({
    extensionUri: ctx.extensionUri,
    workerPath,
    settings: () => readSettings(),
    allowedRoots,
    rerun: async (dir, thresholds) => void (await actions?.rerun(dir, thresholds)),
    modelSource: (model, choose) => (choose ? archs.choose(model) : archs.resolve(model)),
    auditWithTrigger: async (dir, label) => void (await actions?.auditWithTrigger(dir, label)),
  });
  actions = new Actions(ctx, runner, panels, tree, archs);

  const watcher = vscode.workspace.createFileSystemWatcher(`**/{${REPORT_FILE},${SCAN_FILE}}`);
  ctx.subscriptions.push(
    log, runner, tree, panels, watcher,
    ...registerCommands(actions),
    ModelInspectorProvider.register(panels),
    vscode.window.registerWebviewPanelSerializer(AUDIT_PANEL_TYPE, panels.serializer),
    vscode.window.registerWebviewPanelSerializer(SCAN_PANEL_TYPE, panels.scanSerializer),
    vscode.window.createTreeView(AUDITS_VIEW, { treeDataProvider: tree, showCollapseAll: true }),
    watcher.onDidCreate(() => tree.refresh()),
    watcher.onDidChange(() => tree.refresh()),
    watcher.onDidDelete(() => tree.refresh()),
    runner.onDidFinish(() => tree.refresh()),
    runner.onDidProgress(({ dir, progress }) => {
      panels.postToAudit(dir, { type: 'progress', progress });
      panels.postToScan(dir, { type: 'progress', progress });
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${SECTION}.outputFolder`)) tree.refresh();
    }),
  );
  log.info(`Backdoor Audit ${ctx.extension.packageJSON.version as string} activated`);

  const a = actions;
  return {
    auditOptionsFor: (model, data) => a.auditOptionsFor(model, data),
    writing: (folder) => runner.isWriting(folder),
    architectureOf: (model) => archs.remembered(model),
    auditFolders: async () => (await tree.rescan()).filter((n) => n.kind !== 'scan').map((n) => n.dir),
    scanFolders: async () => (await tree.rescan()).flatMap((n) => (n.kind === 'scan'
      ? [{ dir: n.dir, verdict: n.report.verdict, description: String(tree.getTreeItem(n).description ?? '') }] : [])),
    auditWithTrigger: (dir, label, data) => a.auditWithTrigger(dir, label, { data, ifBusy: 'wait' }),
  };
}

export function deactivate(): void {
  // Everything is in ctx.subscriptions; disposing the runner cancels running workers.
}
