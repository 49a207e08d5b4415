// The "Backdoor Audits" view in the explorer: one row per saved audit (a report.json in
// a *.audit folder of the workspace, or under the outputFolder setting), with one child
// row per accuracy-drop threshold, and one row per saved backdoor scan (*.scan/scan.json)
// with its verdict.
import path from 'node:path';
import * as vscode from 'vscode';
import { verdictWord } from '../core/scan/verdict';
import type { AuditReport, ScanReport, ThresholdResult } from '../protocol';
import { auditSummary, dropRowLabel, pct, scanSummary } from './format';
import { COMMANDS } from './ids';
import { describeError, log } from './log';
import { REPORT_FILE, SCAN_FILE, findReportDirs, readReport, readScan, repairedModelPath } from './reports';

export type AuditNode =
  | { kind: 'audit'; dir: string; report: AuditReport }
  | { kind: 'drop'; dir: string; report: AuditReport; row: ThresholdResult }
  | { kind: 'scan'; dir: string; report: ScanReport }
  | { kind: 'broken'; dir: string; message: string };

export class AuditsTree implements vscode.TreeDataProvider<AuditNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<AuditNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots?: Promise<AuditNode[]>;
  private timer?: ReturnType<typeof setTimeout>;

  /** @param extraRoots folders outside the workspace to look in (the outputFolder setting) */
  constructor(private readonly extraRoots: () => string[]) {}

  /** Reloads soon; several file events in a row (an audit writes many files) make one reload. */
  refresh(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.roots = undefined;
      this.changed.fire(undefined);
    }, 300);
  }

  /** Scans again now (no debounce) and updates the view. */
  rescan(): Promise<AuditNode[]> {
    clearTimeout(this.timer);
    this.roots = this.load();
    this.changed.fire(undefined);
    return this.roots;
  }

  /** All audits found, for commands that need them (and tests). */
  audits(): Promise<AuditNode[]> {
    this.roots ??= this.load();
    return this.roots;
  }

  async getChildren(node?: AuditNode): Promise<AuditNode[]> {
    if (!node) return this.audits();
    if (node.kind !== 'audit') return [];
    return [...node.report.thresholds]
      .sort((a, b) => a.drop - b.drop)
      .map((row) => ({ kind: 'drop', dir: node.dir, report: node.report, row }));
  }

  getTreeItem(node: AuditNode): vscode.TreeItem {
    const open: vscode.Command = { command: COMMANDS.openReport, title: 'Open Report', arguments: [node] };
    if (node.kind === 'broken') {
      const item = new vscode.TreeItem(path.basename(node.dir), vscode.TreeItemCollapsibleState.None);
      item.description = 'unreadable report';
      item.tooltip = node.message;
      item.iconPath = new vscode.ThemeIcon('warning');
      item.contextValue = 'broken';
      return item;
    }
    if (node.kind === 'scan') {
      const r = node.report;
      const item = new vscode.TreeItem(path.basename(r.model), vscode.TreeItemCollapsibleState.None);
      item.id = `scan:${node.dir}`;
      item.description = scanSummary(r);
      item.tooltip = new vscode.MarkdownString(
        `**${path.basename(r.model)}**: backdoor scan, verdict **${verdictWord(r)}**  \n` +
        r.evidence.map((e) => `- ${e}`).join('\n') + `\n\nScan folder: \`${node.dir}\``,
      );
      item.iconPath = new vscode.ThemeIcon({ backdoor: 'bug', clean: 'pass', inconclusive: 'question' }[verdictWord(r)]);
      item.contextValue = 'scan';
      item.resourceUri = vscode.Uri.file(path.join(node.dir, SCAN_FILE));
      item.command = open;
      return item;
    }
    if (node.kind === 'audit') {
      const item = new vscode.TreeItem(path.basename(node.report.model), vscode.TreeItemCollapsibleState.Expanded);
      item.id = `audit:${node.dir}`;
      item.description = auditSummary(node.report);
      item.tooltip = new vscode.MarkdownString(
        `**${path.basename(node.report.model)}**  \nAudit folder: \`${node.dir}\`  \nLayer: ${node.report.layer}, backend: ${node.report.backend}`,
      );
      item.iconPath = new vscode.ThemeIcon('shield');
      item.contextValue = 'audit';
      item.resourceUri = vscode.Uri.file(path.join(node.dir, REPORT_FILE));
      item.command = open;
      return item;
    }
    const { row } = node;
    const estimated = node.report.attackEstimate === 'reconstructed-trigger';
    const item = new vscode.TreeItem(dropRowLabel(row, node.report.steps, estimated), vscode.TreeItemCollapsibleState.None);
    item.id = `drop:${node.dir}:${row.drop}`;
    const hasModel = repairedModelPath(node.dir, node.report, row.drop) !== undefined;
    item.contextValue = hasModel ? 'drop.repaired' : 'drop';
    item.iconPath = new vscode.ThemeIcon(row.reached ? 'filter' : 'warning');
    item.tooltip = [
      `Accuracy drop ≥ ${row.drop}%: ${row.pruned} channels pruned${row.reached ? '' : ' (the sweep ended before this drop)'}`,
      `Validation accuracy of B′: ${pct(row.validAccuracy)}`,
      `B′ on test: accuracy ${pct(row.prunedModel.testAccuracy)}, attack ${pct(row.prunedModel.testAttackRate)}`,
      `G on test: accuracy ${pct(row.goodNet.testAccuracy)}, attack ${pct(row.goodNet.testAttackRate)}`,
      estimated ? 'Attack rates estimated with a reconstructed trigger' : '',
      hasModel ? `Repaired model: ${row.repairedModel}` : '',
    ].filter(Boolean).join('\n');
    item.command = open;
    return item;
  }

  private async load(): Promise<AuditNode[]> {
    const [audits, scans] = await Promise.all([
      this.findDirs('audit', REPORT_FILE), this.findDirs('scan', SCAN_FILE),
    ]);
    const read = async (dir: string, kind: 'audit' | 'scan'): Promise<AuditNode> => {
      try {
        return kind === 'audit' ? { kind, dir, report: await readReport(dir) } : { kind, dir, report: await readScan(dir) };
      } catch (err) {
        log().warn(`Skipping ${kind} folder ${dir}: ${describeError(err)}`);
        return { kind: 'broken', dir, message: describeError(err) };
      }
    };
    const nodes = await Promise.all([...audits.map((d) => read(d, 'audit')), ...scans.map((d) => read(d, 'scan'))]);
    const name = (n: AuditNode) => (n.kind === 'broken' ? path.basename(n.dir) : path.basename(n.report.model));
    // Per model: its audits, then its scans.
    return nodes.sort((a, b) => name(a).localeCompare(name(b)) || (a.kind === 'scan' ? 1 : 0) - (b.kind === 'scan' ? 1 : 0) || a.dir.localeCompare(b.dir));
  }

  /** Folders named `*.<suffix>` holding `file`, in the workspace and under the outputFolder setting. */
  private async findDirs(suffix: string, file: string): Promise<string[]> {
    const dirs = new Set<string>();
    const found = await vscode.workspace.findFiles(`**/*.${suffix}/${file}`, '**/node_modules/**', 2000);
    for (const uri of found) if (uri.scheme === 'file') dirs.add(path.dirname(uri.fsPath));
    for (const root of this.extraRoots()) for (const d of findReportDirs(root, file)) dirs.add(path.resolve(d));
    return [...dirs];
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
  }
}
