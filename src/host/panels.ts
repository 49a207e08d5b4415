// Webview panels: the audit report panel (survives reloads through a serializer) and
// the inspect view (used by the Model Inspector custom editor). The webview is
// untrusted: every message is validated, and every file the host opens for it is
// resolved inside the audit's own folder.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { makeNonce, webviewHtml } from '../../webview/html';
import {
  parseWebviewMessage, type AuditReport, type ChannelMaps, type HostToWebview, type InspectResult,
  type ScanReport, type ViewState, type WebviewToHost,
} from '../protocol';
import { JobCancelled, runJob } from '../worker/client';
import { AUDIT_PANEL_TYPE, INSPECTOR_VIEW_TYPE, SCAN_PANEL_TYPE } from './ids';
import { describeError, log, showError } from './log';
import { isInsideAny } from './paths';
import { REPORT_FILE, ReportError, SCAN_FILE, dataFileFor, readReport, readScan, repairedModelPath, reportDirFromState, reportPath } from './reports';
import { revealPath } from './reveal';
import type { HostSettings } from './options';
import type { ModelSource } from './architecture';

export interface PanelDeps {
  extensionUri: vscode.Uri;
  workerPath: string;
  settings: () => HostSettings;
  /** folders a restored panel may show audits from (workspace, globalStorage, demo, outputFolder) */
  allowedRoots: () => string[];
  rerun: (dir: string, thresholds: number[]) => Promise<void>;
  /** the model with its architecture (asked for when weights-only); `choose` asks again */
  modelSource: (model: string, choose: boolean) => Promise<ModelSource | undefined>;
  /** "Audit with this trigger" in the scan view of `dir` */
  auditWithTrigger: (dir: string, label: number) => Promise<void>;
}

function themeKind(): 'light' | 'dark' | 'high-contrast' {
  switch (vscode.window.activeColorTheme.kind) {
    case vscode.ColorThemeKind.Light: return 'light';
    case vscode.ColorThemeKind.Dark: return 'dark';
    default: return 'high-contrast';
  }
}

/** Scripts on, and only our own bundle and media readable: nothing from the workspace. */
function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

function pageFor(webview: vscode.Webview, extensionUri: vscode.Uri, title: string): string {
  const asset = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', f)).toString();
  return webviewHtml({ scriptUri: asset('webview.js'), styleUri: asset('webview.css'), cspSource: webview.cspSource, nonce: makeNonce(), title });
}

/** A page with no script, for a panel that cannot be restored. */
function messagePage(text: string): string {
  const esc = text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'"></head><body><p>${esc}</p></body></html>`;
}

/**
 * One webview's conversation with the host: sets the page, validates what arrives, and
 * (re)sends the current state each time the page says 'ready' (retainContextWhenHidden
 * is off, so the page reloads whenever it becomes visible again).
 */
class ViewConnection implements vscode.Disposable {
  private current?: HostToWebview;
  private ready = false;
  private readonly sub: vscode.Disposable;

  constructor(private readonly webview: vscode.Webview, extensionUri: vscode.Uri, title: string,
    handle: (m: WebviewToHost) => Promise<void>) {
    webview.options = webviewOptions(extensionUri);
    webview.html = pageFor(webview, extensionUri, title);
    this.sub = webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (!msg) {
        log().warn(`Ignored a malformed message from the "${title}" view`);
        return;
      }
      if (msg.type === 'ready') {
        this.ready = true;
        if (this.current) void this.webview.postMessage(this.current);
        return;
      }
      handle(msg).catch((err: unknown) => {
        this.post({ type: 'error', message: describeError(err) });
        void showError(`${title}`, err);
      });
    });
  }

  show(state: ViewState): void {
    this.current = { type: 'show', state, theme: themeKind() };
    this.post(this.current);
  }

  fail(message: string): void {
    this.current = { type: 'error', message };
    this.post(this.current);
  }

  /** Messages to a page that is hidden or not loaded yet are dropped; 'ready' resends the state. */
  post(msg: HostToWebview): void {
    if (this.ready) void this.webview.postMessage(msg);
  }

  dispose(): void {
    this.sub.dispose();
  }
}

/** Requests that need nothing but the host: the same for the audit and the inspect view. */
async function handleCommon(msg: WebviewToHost, defaultDir: string): Promise<boolean> {
  switch (msg.type) {
    case 'copyText':
      await vscode.env.clipboard.writeText(msg.text);
      vscode.window.setStatusBarMessage('$(check) Copied to the clipboard', 3000);
      return true;
    case 'exportCsv': {
      // The user picks the destination in the save dialog; the webview names no path.
      const target = await vscode.window.showSaveDialog({
        title: 'Export as CSV',
        defaultUri: vscode.Uri.file(path.join(defaultDir, 'results.csv')),
        filters: { CSV: ['csv'] },
      });
      if (!target) return true;
      await vscode.workspace.fs.writeFile(target, Buffer.from(msg.csv, 'utf8'));
      vscode.window.setStatusBarMessage(`$(check) Saved ${path.basename(target.fsPath)}`, 3000);
      return true;
    }
    default:
      return false;
  }
}

class AuditPanel {
  readonly conn: ViewConnection;
  private report!: AuditReport;
  /** channel-maps jobs in flight, one per source: a newer request for the same source supersedes it */
  private readonly maps = new Map<ChannelMaps['source'], AbortController>();

  constructor(readonly panel: vscode.WebviewPanel, readonly dir: string, report: AuditReport,
    private readonly deps: PanelDeps, onDispose: () => void) {
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    this.conn = new ViewConnection(panel.webview, deps.extensionUri, titleFor(report), (m) => this.handle(m));
    this.setReport(report);
    panel.onDidDispose(() => {
      for (const c of this.maps.values()) c.abort();
      this.conn.dispose();
      onDispose();
    });
  }

  setReport(report: AuditReport): void {
    this.report = report;
    this.panel.title = titleFor(report);
    this.conn.show({ view: 'audit', report, reportDir: this.dir });
  }

  private async handle(msg: WebviewToHost): Promise<void> {
    if (await handleCommon(msg, this.dir)) return;
    switch (msg.type) {
      case 'openRepaired': {
        const file = repairedModelPath(this.dir, this.report, msg.drop);
        if (!file) {
          log().warn(`Refused to open a repaired model for drop ${msg.drop}: none inside ${this.dir}`);
          void vscode.window.showWarningMessage(`This audit has no repaired model for the ${msg.drop}% row inside ${this.dir}.`);
          return;
        }
        if (!existsSync(file)) throw new ReportError(`The repaired model ${file} is missing`, file);
        await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), INSPECTOR_VIEW_TYPE);
        return;
      }
      case 'revealReport':
        await revealPath(path.join(this.dir, REPORT_FILE));
        return;
      case 'rerun':
        await this.deps.rerun(this.dir, msg.thresholds);
        return;
      case 'requestChannelMaps': {
        const data = dataFileFor(this.dir, this.report, msg.source);
        if (!data) throw new Error(`This audit has no ${msg.source} validation data`);
        if (msg.index >= data.count) throw new Error(`Image ${msg.index} is out of range: ${data.file} holds ${data.count} images`);
        await this.channelMaps(data.file, msg.index, msg.source);
        return;
      }
      case 'pickImage': {
        const picked = await vscode.window.showOpenDialog({
          title: 'Choose an image to see its activations', canSelectMany: false,
          filters: { Images: ['png', 'jpg', 'jpeg'] },
        });
        if (picked?.[0]) await this.channelMaps(picked[0].fsPath, 0, 'image');
        return;
      }
    }
  }

  private async channelMaps(file: string, index: number, source: ChannelMaps['source']): Promise<void> {
    // The webview asks for the clean and the poisoned maps of an image together: those
    // two run side by side, while a newer request for the same source replaces the older.
    this.maps.get(source)?.abort();
    const controller = new AbortController();
    this.maps.set(source, controller);
    const r = this.report;
    try {
      const maps = await runJob<ChannelMaps>({
        kind: 'channelMaps', model: reportPath(this.dir, r.model), arch: r.arch ? reportPath(this.dir, r.arch) : undefined,
        layer: r.layer, file, index, source, backend: this.deps.settings().backend,
      }, { signal: controller.signal, workerPath: this.deps.workerPath, onLog: (_l, m) => log().info(`[maps] ${m}`) });
      this.conn.post({ type: 'channelMaps', maps: [maps] });
    } catch (err) {
      if (err instanceof JobCancelled) return; // superseded by a newer request, or the panel closed
      throw err;
    } finally {
      if (this.maps.get(source) === controller) this.maps.delete(source);
    }
  }
}

function titleFor(report: AuditReport | ScanReport): string {
  return `${'kind' in report && report.kind === 'scan' ? 'Scan' : 'Audit'}: ${path.basename(report.model)}`;
}

/** The view of one backdoor scan (scan.json): read-only, plus "Audit with this trigger". */
class ScanPanel {
  readonly conn: ViewConnection;

  constructor(readonly panel: vscode.WebviewPanel, readonly dir: string, report: ScanReport,
    private readonly deps: PanelDeps, onDispose: () => void) {
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    this.conn = new ViewConnection(panel.webview, deps.extensionUri, titleFor(report), (m) => this.handle(m));
    this.setReport(report);
    panel.onDidDispose(() => {
      this.conn.dispose();
      onDispose();
    });
  }

  setReport(report: ScanReport): void {
    this.panel.title = titleFor(report);
    this.conn.show({ view: 'scan', report, reportDir: this.dir });
  }

  private async handle(msg: WebviewToHost): Promise<void> {
    if (await handleCommon(msg, this.dir)) return;
    switch (msg.type) {
      case 'revealReport':
        await revealPath(path.join(this.dir, SCAN_FILE));
        return;
      case 'auditWithTrigger':
        await this.deps.auditWithTrigger(this.dir, msg.label);
        return;
      default:
        log().warn(`The scan view sent "${msg.type}", which it does not support`);
    }
  }
}

export class Panels implements vscode.Disposable {
  private readonly audits = new Map<string, AuditPanel>();
  /** open inspectors by model file: each re-inspects after "Change Architecture…" */
  private readonly inspectors = new Map<string, Set<() => void>>();
  private readonly scans = new Map<string, ScanPanel>();

  constructor(private readonly deps: PanelDeps) {}

  /** Opens (or brings forward and refreshes) the panel of the scan in `dir`. */
  async showScan(dir: string): Promise<void> {
    const report = await readScan(dir);
    this.showIn(this.scans.get(path.resolve(dir)), SCAN_PANEL_TYPE, report, (p) => p.setReport(report),
      (panel) => this.attachScan(panel, path.resolve(dir), report));
  }

  /** Brings forward and refreshes the open panel, or opens a new one. */
  private showIn<P extends { panel: vscode.WebviewPanel }>(open: P | undefined, type: string, report: AuditReport | ScanReport,
    refresh: (p: P) => void, attach: (panel: vscode.WebviewPanel) => void): void {
    if (open) {
      refresh(open);
      open.panel.reveal();
      return;
    }
    attach(vscode.window.createWebviewPanel(type, titleFor(report), vscode.ViewColumn.Active, {
      ...webviewOptions(this.deps.extensionUri),
      retainContextWhenHidden: false,
    }));
  }

  private attachScan(panel: vscode.WebviewPanel, dir: string, report: ScanReport): void {
    this.scans.get(dir)?.panel.dispose();
    this.scans.set(dir, new ScanPanel(panel, dir, report, this.deps, () => {
      if (this.scans.get(dir)?.panel === panel) this.scans.delete(dir);
    }));
  }

  /** Opens (or brings forward and refreshes) the panel of the audit in `dir`. */
  async showAudit(dir: string): Promise<void> {
    const report = await readReport(dir);
    this.showIn(this.audits.get(path.resolve(dir)), AUDIT_PANEL_TYPE, report, (p) => p.setReport(report),
      (panel) => this.attach(panel, path.resolve(dir), report));
  }

  /** After a re-run: refresh the panel if it is open. */
  async refresh(dir: string): Promise<void> {
    const open = this.audits.get(path.resolve(dir));
    if (open) open.setReport(await readReport(dir));
  }

  postToAudit(dir: string, msg: HostToWebview): void {
    this.audits.get(path.resolve(dir))?.conn.post(msg);
  }

  isOpen(dir: string): boolean {
    return this.audits.has(path.resolve(dir));
  }

  private attach(panel: vscode.WebviewPanel, dir: string, report: AuditReport): void {
    this.audits.get(dir)?.panel.dispose();
    this.audits.set(dir, new AuditPanel(panel, dir, report, this.deps, () => {
      if (this.audits.get(dir)?.panel === panel) this.audits.delete(dir);
    }));
  }

  /**
   * Restore audit and scan panels after a reload. Only the folder is taken from the saved
   * state, it must lie in a folder we write audits to, and the report is read again.
   */
  readonly serializer = this.restorer('audit', readReport, (panel, dir, r) => this.attach(panel, dir, r));
  readonly scanSerializer = this.restorer('scan', readScan, (panel, dir, r) => this.attachScan(panel, dir, r));

  private restorer<R>(view: 'audit' | 'scan', read: (dir: string) => Promise<R>,
    attach: (panel: vscode.WebviewPanel, dir: string, report: R) => void): vscode.WebviewPanelSerializer {
    return {
      deserializeWebviewPanel: async (panel, state) => {
        const dir = reportDirFromState(state, view);
        if (!dir || !isInsideAny(this.deps.allowedRoots(), dir)) {
          log().warn(`Not restoring ${view} panel: ${dir ?? `no ${view} folder in its state`} is outside the known audit folders`);
          panel.webview.html = messagePage(`This ${view} cannot be restored. Open it again from the Backdoor Audits view.`);
          return;
        }
        try {
          attach(panel, dir, await read(dir));
        } catch (err) {
          log().warn(`Not restoring the ${view} panel of ${dir}: ${describeError(err)}`);
          panel.webview.html = messagePage(`The ${view} in ${dir} cannot be shown: ${describeError(err)}`);
        }
      },
    };
  }

  /** The inspect view in `panel` (a custom editor's), for `model`. */
  attachInspector(panel: vscode.WebviewPanel, model: string): void {
    const controller = new AbortController();
    const name = path.basename(model);
    const inspect = async (choose: boolean) => {
      const source = await this.deps.modelSource(model, choose);
      if (controller.signal.aborted) return;
      if (!source) {
        conn.fail(`${name} holds weights only, and no architecture was chosen for it. Use "Change Architecture…" to pick the model or Keras JSON config it belongs to.`);
        return;
      }
      try {
        const result = await runJob<InspectResult>({ kind: 'inspect', model, arch: source.arch }, {
          signal: controller.signal, workerPath: this.deps.workerPath,
          onLog: (level, m) => (level === 'warn' ? log().warn : log().info).call(log(), `[inspect ${name}] ${m}`),
        });
        conn.show({ view: 'inspect', inspect: { ...result, ...(source.archNote ? { archNote: source.archNote } : {}) } });
      } catch (err) {
        if (err instanceof JobCancelled) return;
        conn.fail(describeError(err));
        void showError(`Could not inspect ${name}`, err);
      }
    };
    const conn = new ViewConnection(panel.webview, this.deps.extensionUri, `Inspect ${name}`, async (m) => {
      if (m.type === 'changeArchitecture') await inspect(true);
      else if (!(await handleCommon(m, path.dirname(model)))) log().warn(`The inspect view sent "${m.type}", which it does not support`);
    });
    const again = () => void inspect(false);
    const open = this.inspectors.get(model) ?? new Set();
    this.inspectors.set(model, open.add(again));
    panel.onDidDispose(() => {
      controller.abort();
      conn.dispose();
      open.delete(again);
    });
    void inspect(false);
  }

  /** Inspectors of `model` read it again (its architecture changed). */
  reinspect(model: string): void {
    for (const again of this.inspectors.get(model) ?? []) again();
  }

  postToScan(dir: string, msg: HostToWebview): void {
    this.scans.get(path.resolve(dir))?.conn.post(msg);
  }

  dispose(): void {
    for (const p of [...this.audits.values(), ...this.scans.values()]) p.panel.dispose();
    this.audits.clear();
    this.scans.clear();
  }
}
