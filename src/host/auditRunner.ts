// Runs audits in the worker process with a cancellable progress notification and a
// status bar item. Audits of different models run side by side; a second audit of
// the same model asks first, because both would write the same folder.
import path from 'node:path';
import * as vscode from 'vscode';
import type { AuditOptions, AuditReport, Progress } from '../protocol';
import { JobCancelled, runJob } from '../worker/client';
import { progressText } from './format';
import { KeyedQueue, QueueCancelled } from './jobs';
import { log, showError } from './log';
import { modelKey } from './paths';

/** What to do when an audit of the same model is already running (asked when unset). */
export type IfBusy = 'cancel' | 'wait' | 'keep';

const CANCEL = 'Cancel the running audit';
const WAIT = 'Wait';
const KEEP = 'Keep it';

export interface AuditFinished {
  dir: string;
  report: AuditReport;
}

interface Running {
  name: string;
  text: string;
}

export class AuditRunner implements vscode.Disposable {
  private readonly queue = new KeyedQueue();
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private readonly status = vscode.window.createStatusBarItem('backdoorAudit.running', vscode.StatusBarAlignment.Left, 10);
  private readonly finished = new vscode.EventEmitter<AuditFinished>();
  private readonly progressed = new vscode.EventEmitter<{ dir: string; progress: Progress }>();
  /** An audit wrote its report (tree and open panels refresh on this). */
  readonly onDidFinish = this.finished.event;
  /** Progress of an audit, by output folder (an open report panel shows it during a re-run). */
  readonly onDidProgress = this.progressed.event;

  constructor(private readonly workerPath: string) {
    this.status.name = 'Backdoor Audit';
    this.status.command = 'backdoorAudit.showLog';
  }

  isRunning(model: string): boolean {
    return this.queue.busy(modelKey(model));
  }

  /**
   * Runs one audit. Resolves to the report, or undefined when it was cancelled, declined
   * or failed (the user has been told). Never rejects.
   */
  async run(options: AuditOptions, ifBusy?: IfBusy): Promise<AuditReport | undefined> {
    const key = modelKey(options.model);
    const name = path.basename(options.model);
    if (this.queue.busy(key)) {
      const choice = ifBusy ?? (await this.askIfBusy(name));
      if (choice === 'keep') return undefined;
      if (choice === 'cancel') this.queue.cancelRunning(key); // ours then starts once it has stopped
    }
    const controller = new AbortController();
    const waiting = this.queue.busy(key);
    // Queue first, synchronously, so a second request right after this one sees it busy;
    // the notification attaches when it shows.
    let notification: vscode.Progress<{ message?: string }> | undefined;
    const job = this.queue.run(key, (signal) => this.runWorker(options, name, signal, (message) => notification?.report({ message })), controller);
    job.catch(() => undefined); // handled below; this only keeps an early failure from counting as unhandled
    try {
      const report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Auditing ${name}`, cancellable: true },
        (progress, token) => {
          notification = progress;
          token.onCancellationRequested(() => controller.abort());
          if (waiting) progress.report({ message: 'waiting for the running audit of this model…' });
          return job;
        },
      );
      log().info(`Audit of ${options.model} finished; results in ${options.out}`);
      this.finished.fire({ dir: options.out, report });
      return report;
    } catch (err) {
      if (err instanceof JobCancelled || err instanceof QueueCancelled || controller.signal.aborted) {
        log().info(`Audit of ${options.model} cancelled`);
        void vscode.window.showInformationMessage(`Audit of ${name} cancelled.`);
      } else {
        void showError(`Audit of ${name} failed`, err);
      }
      return undefined;
    }
  }

  private async askIfBusy(name: string): Promise<IfBusy> {
    const pick = await vscode.window.showWarningMessage(
      `An audit of ${name} is already running. Cancel it, or wait for it and audit again afterwards?`,
      CANCEL, WAIT, KEEP,
    );
    return pick === CANCEL ? 'cancel' : pick === WAIT ? 'wait' : 'keep';
  }

  private async runWorker(
    options: AuditOptions, name: string, signal: AbortSignal, report: (message: string) => void,
  ): Promise<AuditReport> {
    const id = this.nextId++;
    this.running.set(id, { name, text: 'starting' });
    this.updateStatus();
    log().info(`Auditing ${options.model} → ${options.out}`, options);
    report('starting the worker…');
    try {
      return await runJob<AuditReport>({ kind: 'audit', options }, {
        signal,
        workerPath: this.workerPath,
        onProgress: (p) => {
          const text = progressText(p);
          report(text);
          this.running.set(id, { name, text });
          this.updateStatus();
          this.progressed.fire({ dir: options.out, progress: p });
        },
        onLog: (level, message) => (level === 'warn' ? log().warn : log().info).call(log(), `[${name}] ${message}`),
      });
    } finally {
      this.running.delete(id);
      this.updateStatus();
    }
  }

  private updateStatus(): void {
    const all = [...this.running.values()];
    if (all.length === 0) {
      this.status.hide();
      return;
    }
    this.status.text = all.length === 1
      ? `$(loading~spin) Auditing ${all[0].name}`
      : `$(loading~spin) ${all.length} audits running`;
    this.status.tooltip = all.map((r) => `${r.name}: ${r.text}`).join('\n') + '\n\nClick to show the log';
    this.status.show();
  }

  dispose(): void {
    // No worker may outlive the extension: cancel what runs and what waits.
    this.queue.cancelAll();
    this.status.dispose();
    this.finished.dispose();
    this.progressed.dispose();
  }
}
