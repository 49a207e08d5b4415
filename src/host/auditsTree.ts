// The "Backdoor Audits" view in the explorer: one row per saved audit (a report.json in
// a *.audit folder of the workspace, or under the outputFolder setting), with one child
// row per accuracy-drop threshold.
import path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport, ThresholdResult } from '../protocol';
import { auditSummary, dropRowLabel, pct } from './format';
import { COMMANDS } from './ids';
import { describeError, log } from './log';
import { REPORT_FILE, findAuditDirs, readReport, repairedModelPath } from './reports';

export type AuditNode =
  | { kind: 'audit'; dir: string; report: AuditReport }
  | { kind: 'drop'; dir: string; report: AuditReport; row: ThresholdResult }
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
    const item = new vscode.TreeItem(dropRowLabel(row, node.report.steps), vscode.TreeItemCollapsibleState.None);
    item.id = `drop:${node.dir}:${row.drop}`;
    const hasModel = repairedModelPath(node.dir, node.report, row.drop) !== undefined;
    item.contextValue = hasModel ? 'drop.repaired' : 'drop';
    item.iconPath = new vscode.ThemeIcon(row.reached ? 'filter' : 'warning');
    item.tooltip = [
      `Accuracy drop ≥ ${row.drop}%: ${row.pruned} channels pruned${row.reached ? '' : ' (the sweep ended before this drop)'}`,
      `Validation accuracy of B′: ${pct(row.validAccuracy)}`,
      `B′ on test: accuracy ${pct(row.prunedModel.testAccuracy)}, attack ${pct(row.prunedModel.testAttackRate)}`,
      `G on test: accuracy ${pct(row.goodNet.testAccuracy)}, attack ${pct(row.goodNet.testAttackRate)}`,
      hasModel ? `Repaired model: ${row.repairedModel}` : '',
    ].filter(Boolean).join('\n');
    item.command = open;
    return item;
  }

  private async load(): Promise<AuditNode[]> {
    const dirs = new Set<string>();
    const found = await vscode.workspace.findFiles(`**/*.audit/${REPORT_FILE}`, '**/node_modules/**', 2000);
    for (const uri of found) if (uri.scheme === 'file') dirs.add(path.dirname(uri.fsPath));
    for (const root of this.extraRoots()) for (const d of findAuditDirs(root)) dirs.add(path.resolve(d));

    const nodes = await Promise.all([...dirs].map(async (dir): Promise<AuditNode> => {
      try {
        return { kind: 'audit', dir, report: await readReport(dir) };
      } catch (err) {
        log().warn(`Skipping audit folder ${dir}: ${describeError(err)}`);
        return { kind: 'broken', dir, message: describeError(err) };
      }
    }));
    const name = (n: AuditNode) => (n.kind === 'broken' ? path.basename(n.dir) : path.basename(n.report.model));
    return nodes.sort((a, b) => name(a).localeCompare(name(b)) || a.dir.localeCompare(b.dir));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
  }
}
