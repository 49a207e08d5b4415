// The contributed commands. Each one gathers what it needs (model, data, settings),
// then hands the work to the runner (audits) or the panels (views).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { AuditOptions, ScanOptions } from '../protocol';
import type { Architectures } from './architecture';
import type { AuditRunner, IfBusy } from './auditRunner';
import type { AuditNode, AuditsTree } from './auditsTree';
import { pickAuditData, pickRepair } from './dataPicker';
import { COMMANDS, INSPECTOR_VIEW_TYPE } from './ids';
import { log, showError } from './log';
import { buildAuditOptions, buildScanOptions, buildTriggerAuditOptions, normalizeThresholds, type DataChoice, type RepairChoice } from './options';
import type { Panels } from './panels';
import { triggerAuditDirFor } from './paths';
import { REPORT_FILE, SCAN_FILE, readReport, readScan, repairedModelPath, reportPath, triggerFilePath } from './reports';
import { revealPath } from './reveal';
import { auditDir, outputRoot, readSettings, scanDir } from './settings';

/** Extra arguments of backdoorAudit.audit, for scripts and tests (skip the pickers). */
export interface AuditArgs {
  data?: DataChoice;
  /** skips the repair quick pick */
  repair?: RepairChoice;
  thresholds?: number[];
  ifBusy?: IfBusy;
  /** open the report panel when done (default true) */
  open?: boolean;
}

/** Extra arguments of backdoorAudit.scan, for scripts and tests (skip the picker). */
export interface ScanArgs {
  /** clean data file */
  clean?: string;
  ifBusy?: IfBusy;
  /** open the scan view when done (default true) */
  open?: boolean;
}

const DEMO_MODEL = 'bd_net.h5';
const DEMO_DATA: DataChoice = { cleanValid: 'valid.h5', poisonedValid: 'bd_valid.h5', cleanTest: 'test.h5', poisonedTest: 'bd_test.h5' };

export class Actions {
  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly runner: AuditRunner,
    private readonly panels: Panels,
    private readonly tree: AuditsTree,
    private readonly archs: Architectures,
  ) {}

  /** The model the command is about: the explorer selection, the active inspector, or a file picker. */
  private async modelFrom(arg: unknown, verb: string): Promise<string | undefined> {
    if (arg instanceof vscode.Uri) return this.fileOnly(arg);
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (tab instanceof vscode.TabInputCustom && tab.viewType === INSPECTOR_VIEW_TYPE) return this.fileOnly(tab.uri);
    const picked = await vscode.window.showOpenDialog({
      title: `Choose a Keras model to ${verb}`, canSelectMany: false,
      filters: { 'Keras models': ['h5', 'keras'] }, openLabel: verb[0].toUpperCase() + verb.slice(1),
    });
    return picked?.[0] ? this.fileOnly(picked[0]) : undefined;
  }

  private fileOnly(uri: vscode.Uri): string | undefined {
    if (uri.scheme === 'file') return uri.fsPath;
    void vscode.window.showErrorMessage(`Backdoor Audit reads models from disk only; ${uri.toString()} is not a local file.`);
    return undefined;
  }

  async inspect(arg?: unknown): Promise<void> {
    const model = await this.modelFrom(arg, 'inspect');
    if (model) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(model), INSPECTOR_VIEW_TYPE);
  }

  /**
   * Audits run a worker over workspace files, so they need a trusted workspace; inspecting
   * only reads a file and works in restricted mode.
   */
  private async requireTrust(what = 'Auditing'): Promise<boolean> {
    if (vscode.workspace.isTrusted) return true;
    const manage = 'Manage Workspace Trust';
    const pick = await vscode.window.showWarningMessage(
      `${what} runs a worker process on the files of this workspace, so it needs a trusted workspace. (Inspecting models works without trust.)`,
      manage,
    );
    if (pick === manage) await vscode.commands.executeCommand('workbench.trust.manage');
    return false;
  }

  /** Audit for Backdoors…: returns the audit folder when an audit finished. */
  async audit(arg?: unknown, args: AuditArgs = {}): Promise<string | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const model = await this.modelFrom(arg, 'audit');
    if (!model) return undefined;
    const source = await this.archs.resolve(model);
    if (!source) return undefined;
    const settings = readSettings(vscode.Uri.file(model));
    const data = args.data ?? (await pickAuditData(model, settings, this.ctx.workspaceState));
    if (!data) return undefined;
    // Called with data (the webview's re-run, scripts), the repair is what args say: pruning only by default.
    const repair = args.repair ?? (args.data ? { method: 'none' as const } : await pickRepair(model, settings, data));
    if (!repair) return undefined;
    let options: AuditOptions;
    try {
      options = buildAuditOptions(settings, model, data, auditDir(settings, model), args.thresholds, repair);
      if (source.arch) options.arch = source.arch;
    } catch (err) {
      void showError(`Cannot audit ${path.basename(model)}`, err);
      return undefined;
    }
    return this.runAndShow(options, args);
  }

  /** Scan for Backdoor (no poisoned data)…: returns the scan folder when a scan finished. */
  async scan(arg?: unknown, args: ScanArgs = {}): Promise<string | undefined> {
    if (!(await this.requireTrust('Scanning'))) return undefined;
    const model = await this.modelFrom(arg, 'scan');
    if (!model) return undefined;
    const source = await this.archs.resolve(model);
    if (!source) return undefined;
    const settings = readSettings(vscode.Uri.file(model));
    const clean = args.clean ?? (await pickAuditData(model, settings, this.ctx.workspaceState, ['cleanValid'], `Scan ${path.basename(model)}`))?.cleanValid;
    if (!clean) return undefined;
    let options: ScanOptions;
    try {
      options = buildScanOptions(settings, model, clean, scanDir(settings, model));
      if (source.arch) options.arch = source.arch;
    } catch (err) {
      void showError(`Cannot scan ${path.basename(model)}`, err);
      return undefined;
    }
    return this.runThenOpen(options.out, () => this.runner.scan(options, args.ifBusy), (d) => this.panels.showScan(d), 'the scan', args.open);
  }

  /**
   * "Audit with this trigger" (scan view): the fine-pruning audit of the scanned model with
   * poisoned sets made by stamping the scan's trigger for `label` onto clean data.
   * Returns the audit folder when the audit finished.
   */
  async auditWithTrigger(scanFolder: string, label: number, args: AuditArgs = {}): Promise<string | undefined> {
    if (!(await this.requireTrust())) return undefined;
    const scan = await readScan(scanFolder);
    const model = reportPath(scanFolder, scan.model);
    const trigger = triggerFilePath(scanFolder, scan, label);
    if (!trigger || !existsSync(trigger)) throw new Error(`The scan in ${scanFolder} has no trigger file for label ${label}`);
    if (!existsSync(model)) throw new Error(`Cannot audit: the scanned model ${model} no longer exists`);
    const settings = readSettings(vscode.Uri.file(model));
    const data = args.data ?? (await pickAuditData(model, settings, this.ctx.workspaceState, ['cleanValid', 'cleanTest'],
      `Audit ${path.basename(model)} with trigger_${label}`));
    if (!data) return undefined;
    const options = buildTriggerAuditOptions(settings, model, data, trigger, label, triggerAuditDirFor(model, label, outputRoot(settings, model)));
    if (scan.arch) options.arch = reportPath(scanFolder, scan.arch);
    return this.runAndShow(options, args);
  }

  /** The options the audit command would use for `model` and `data` (for tests and scripts). */
  auditOptionsFor(model: string, data: DataChoice): AuditOptions {
    const settings = readSettings(vscode.Uri.file(model));
    const options = buildAuditOptions(settings, model, data, auditDir(settings, model));
    const arch = this.archs.remembered(model);
    return arch ? { ...options, arch } : options;
  }

  /**
   * Change Architecture…: on a model file or its inspector, pick the architecture of a
   * weights-only file again; on an audit, also offer to re-run it with the new one.
   */
  async changeArchitecture(arg?: unknown): Promise<string | undefined> {
    const node = arg && typeof arg === 'object' && 'kind' in arg ? (arg as AuditNode) : undefined;
    const model = node?.kind === 'audit' ? reportPath(node.dir, node.report.model) : await this.modelFrom(arg, 'choose the architecture of');
    if (!model) return undefined;
    const source = await this.archs.choose(model);
    if (!source?.arch) return undefined;
    this.panels.reinspect(model);
    if (node?.kind === 'audit' && source.arch !== (node.report.arch && reportPath(node.dir, node.report.arch))) {
      const rerun = 'Re-run the Audit';
      const pick = await vscode.window.showInformationMessage(`${path.basename(model)} now uses the architecture of ${path.basename(source.arch)}. The saved audit used another.`, rerun);
      if (pick === rerun) await this.rerun(node.dir, undefined, undefined, source.arch);
    }
    return source.arch;
  }

  private runAndShow(options: AuditOptions, args: Pick<AuditArgs, 'ifBusy' | 'open'> = {}): Promise<string | undefined> {
    return this.runThenOpen(options.out, () => this.runner.run(options, args.ifBusy), (d) => this.panels.showAudit(d), 'the audit report', args.open);
  }

  /** Runs a job; when it finished, refreshes the tree and opens its view (unless `open` is false). */
  private async runThenOpen(out: string, run: () => Promise<unknown>, show: (dir: string) => Promise<void>,
    what: string, open?: boolean): Promise<string | undefined> {
    if (!(await run())) return undefined;
    this.tree.refresh();
    if (open !== false) {
      try {
        await show(out);
      } catch (err) {
        void showError(`Could not open ${what}`, err);
      }
    }
    return out;
  }

  /**
   * Runs the audit saved in `dir` again with its own model and data (paths in the report
   * are resolved against the folder), optionally with other thresholds, into the same folder.
   */
  async rerun(dir: string, thresholds?: number[], ifBusy?: IfBusy, arch?: string): Promise<string | undefined> {
    if (!(await this.requireTrust())) return undefined;
    try {
      const report = await readReport(dir);
      const o = report.options;
      const settings = readSettings(vscode.Uri.file(reportPath(dir, o.model)));
      const data: DataChoice = { cleanValid: reportPath(dir, o.cleanValid) };
      for (const slot of ['poisonedValid', 'cleanTest', 'poisonedTest'] as const) {
        const f = o[slot];
        if (f) data[slot] = reportPath(dir, f);
      }
      for (const f of [reportPath(dir, o.model), ...Object.values(data)]) {
        if (!existsSync(f)) throw new Error(`Cannot re-run the audit in ${dir}: ${f} no longer exists`);
      }
      const options: AuditOptions = {
        ...o, ...data, model: reportPath(dir, o.model), out: dir,
        thresholds: normalizeThresholds(thresholds ?? o.thresholds),
        // The machine may differ from the one that ran it: take today's backend and workers.
        backend: settings.backend, workers: settings.workers, batchSize: settings.batchSize,
      };
      if (arch ?? o.arch) options.arch = arch ?? reportPath(dir, o.arch!);
      if (!options.backend) delete options.backend;
      const out = await this.runAndShow(options, { ifBusy, open: false });
      if (out) {
        if (this.panels.isOpen(dir)) await this.panels.refresh(dir);
        else await this.panels.showAudit(dir);
      }
      return out;
    } catch (err) {
      void showError('Re-run failed', err);
      return undefined;
    }
  }

  /**
   * Open Demo: the saved demo audit if there is one (bundled, or run earlier into
   * globalStorage), else runs the audit of the bundled demo model into globalStorage
   * (the extension's own folder may be read-only).
   */
  async openDemo(): Promise<string | undefined> {
    const demo = path.join(this.ctx.extensionPath, 'demo');
    const storage = path.join(this.ctx.globalStorageUri.fsPath, 'demo', `${DEMO_MODEL}.audit`);
    const saved = [path.join(demo, `${DEMO_MODEL}.audit`), path.join(demo, 'audit'), storage]
      .find((d) => existsSync(path.join(d, REPORT_FILE)));
    if (saved) {
      await this.panels.showAudit(saved);
      return saved;
    }
    const model = path.join(demo, DEMO_MODEL);
    const data: DataChoice = { cleanValid: path.join(demo, DEMO_DATA.cleanValid) };
    for (const slot of ['poisonedValid', 'cleanTest', 'poisonedTest'] as const) {
      const f = path.join(demo, DEMO_DATA[slot]!);
      if (existsSync(f)) data[slot] = f;
    }
    for (const f of [model, data.cleanValid]) {
      if (!existsSync(f)) {
        void showError('Cannot open the demo', new Error(`The demo file ${f} is missing from the extension`));
        return undefined;
      }
    }
    mkdirSync(path.dirname(storage), { recursive: true });
    const settings = readSettings();
    log().info(`No saved demo audit; running the demo audit into ${storage}`);
    return this.runAndShow(buildAuditOptions(settings, model, data, storage));
  }

  /** Opens an audit or a scan (a tree row, a folder, or one picked from the saved ones). */
  async openReport(node?: AuditNode | string): Promise<void> {
    const dir = typeof node === 'string' ? node : node?.dir ?? (await this.pickAudit());
    if (!dir) return;
    const isScan = typeof node === 'string' ? existsSync(path.join(dir, SCAN_FILE)) && !existsSync(path.join(dir, REPORT_FILE)) : node?.kind === 'scan';
    try {
      if (isScan) await this.panels.showScan(dir);
      else await this.panels.showAudit(dir);
    } catch (err) {
      void showError(`Could not open the ${isScan ? 'scan' : 'audit report'}`, err);
    }
  }

  /** On an audit: its folder; on a threshold row: that repaired model. */
  async revealRepaired(node?: AuditNode): Promise<void> {
    if (!node) return;
    if (node.kind === 'drop') {
      const file = repairedModelPath(node.dir, node.report, node.row.drop);
      if (file && existsSync(file)) return revealPath(file);
      void vscode.window.showWarningMessage(`No repaired model for the ${node.row.drop}% row in ${node.dir}.`);
      return;
    }
    const first = node.kind === 'audit'
      ? node.report.thresholds.map((t) => repairedModelPath(node.dir, node.report, t.drop)).find((f) => f && existsSync(f))
      : undefined;
    await revealPath(first ?? node.dir);
  }

  async rerunNode(node?: AuditNode): Promise<void> {
    const dir = node?.dir ?? (await this.pickAudit());
    if (dir) await this.rerun(dir);
  }

  refreshAudits(): void {
    this.tree.refresh();
  }

  private async pickAudit(): Promise<string | undefined> {
    const audits = (await this.tree.audits()).filter((n) => n.kind === 'audit');
    if (!audits.length) {
      void vscode.window.showInformationMessage('No saved audits found. Run "Audit for Backdoors…" on a model first.');
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      audits.map((n) => ({ label: path.basename(n.kind === 'audit' ? n.report.model : n.dir), description: vscode.workspace.asRelativePath(n.dir), dir: n.dir })),
      { title: 'Choose an audit' },
    );
    return pick?.dir;
  }
}

/** Registers every command of package.json's `contributes.commands`. */
export function registerCommands(actions: Actions): vscode.Disposable[] {
  const wrap = (name: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(name, async (...args: unknown[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      void showError(`Command ${name} failed`, err);
      return undefined;
    }
  });
  return [
    wrap(COMMANDS.inspect, (uri?: unknown) => actions.inspect(uri)),
    wrap(COMMANDS.audit, (uri?: unknown, args?: AuditArgs) => actions.audit(uri, args && typeof args === 'object' && !Array.isArray(args) ? args : {})),
    wrap(COMMANDS.scan, (uri?: unknown, args?: ScanArgs) => actions.scan(uri, args && typeof args === 'object' && !Array.isArray(args) ? args : {})),
    wrap(COMMANDS.openDemo, () => actions.openDemo()),
    wrap(COMMANDS.showLog, () => log().show()),
    wrap(COMMANDS.openReport, (node?: AuditNode | string) => actions.openReport(node)),
    wrap(COMMANDS.revealRepaired, (node?: AuditNode) => actions.revealRepaired(node)),
    wrap(COMMANDS.rerun, (node?: AuditNode) => actions.rerunNode(node)),
    wrap(COMMANDS.refreshAudits, () => actions.refreshAudits()),
    wrap(COMMANDS.changeArchitecture, (arg?: unknown) => actions.changeArchitecture(arg)),
  ];
}
