// Runs audits and scans in the worker process with a cancellable progress notification
// and a status bar item. Jobs that write different folders run side by side; a second
// job into the same folder asks first, because both would write it.
import path from 'node:path';
import * as vscode from 'vscode';
import type { AuditOptions, AuditReport, JobProgress, ScanOptions, ScanReport } from '../protocol';
import { JobCancelled, runJob } from '../worker/client';
import { progressText } from './format';
import { KeyedQueue, QueueCancelled } from './jobs';
import { log, showError } from './log';
import { modelKey } from './paths';

/** What to do when an audit of the same model is already running (asked when unset). */
export type IfBusy = 'cancel' | 'wait' | 'keep';

const CANCEL = 'Cancel the running one';
const WAIT = 'Wait';
const KEEP = 'Keep it';

export interface AuditFinished {
  dir: string;
  report: AuditReport | ScanReport;
}

/** The two long jobs, each with the words its notifications use. */
type LongJob = { kind: 'audit'; options: AuditOptions } | { kind: 'scan'; options: ScanOptions };
const WORDS = {
  audit: { running: 'Auditing', noun: 'Audit', an: 'an audit' },
  scan: { running: 'Scanning', noun: 'Scan', an: 'a scan' },
} as const;

interface Running {
  name: string;
  text: string;
  kind: LongJob['kind'];
}

export class AuditRunner implements vscode.Disposable {
  private readonly queue = new KeyedQueue();
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private readonly status = vscode.window.createStatusBarItem('backdoorAudit.running', vscode.StatusBarAlignment.Left, 10);
  private readonly finished = new vscode.EventEmitter<AuditFinished>();
  private readonly progressed = new vscode.EventEmitter<{ dir: string; progress: JobProgress }>();
  /** An audit or scan wrote its report (tree and open panels refresh on this). */
  readonly onDidFinish = this.finished.event;
  /** Progress of a job, by output folder (an open report panel shows it during a re-run). */
  readonly onDidProgress = this.progressed.event;

  constructor(private readonly workerPath: string) {
    this.status.name = 'Backdoor Audit';
    this.status.command = 'backdoorAudit.showLog';
  }

  /**
   * Runs one audit. Resolves to the report, or undefined when it was cancelled, declined
   * or failed (the user has been told). Never rejects.
   */
  run(options: AuditOptions, ifBusy?: IfBusy): Promise<AuditReport | undefined> {
    return this.runLong<AuditReport>({ kind: 'audit', options }, ifBusy);
  }

  /** Is a job writing `out` (running or queued)? */
  isWriting(out: string): boolean {
    return this.queue.busy(modelKey(out));
  }

  /** Runs one backdoor scan, like run() runs an audit. */
  scan(options: ScanOptions, ifBusy?: IfBusy): Promise<ScanReport | undefined> {
    return this.runLong<ScanReport>({ kind: 'scan', options }, ifBusy);
  }

  private async runLong<R extends AuditReport | ScanReport>(job: LongJob, ifBusy?: IfBusy): Promise<R | undefined> {
    const { options } = job;
    const words = WORDS[job.kind];
    // Jobs are keyed by the folder they write: an audit and a scan of one model may run together.
    const key = modelKey(options.out);
    const name = path.basename(options.model);
    if (this.queue.busy(key)) {
      const choice = ifBusy ?? (await this.askIfBusy(name, job.kind));
      if (choice === 'keep') return undefined;
      if (choice === 'cancel') this.queue.cancelRunning(key); // ours then starts once it has stopped
    }
    const controller = new AbortController();
    const waiting = this.queue.busy(key);
    // Queue first, synchronously, so a second request right after this one sees it busy;
    // the notification attaches when it shows.
    let notification: vscode.Progress<{ message?: string }> | undefined;
    const run = this.queue.run(key, (signal) => this.runWorker<R>(job, name, signal, (message) => notification?.report({ message })), controller);
    run.catch(() => undefined); // handled below; this only keeps an early failure from counting as unhandled
    try {
      const report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `${words.running} ${name}`, cancellable: true },
        (progress, token) => {
          notification = progress;
          token.onCancellationRequested(() => controller.abort());
          if (waiting) progress.report({ message: `waiting for the running ${job.kind} of this model…` });
          return run;
        },
      );
      log().info(`${words.noun} of ${options.model} finished; results in ${options.out}`);
      this.finished.fire({ dir: options.out, report });
      return report;
    } catch (err) {
      if (err instanceof JobCancelled || err instanceof QueueCancelled || controller.signal.aborted) {
        log().info(`${words.noun} of ${options.model} cancelled`);
        void vscode.window.showInformationMessage(`${words.noun} of ${name} cancelled.`);
      } else {
        void showError(`${words.noun} of ${name} failed`, err);
      }
      return undefined;
    }
  }

  private async askIfBusy(name: string, kind: LongJob['kind']): Promise<IfBusy> {
    const pick = await vscode.window.showWarningMessage(
      `${WORDS[kind].an[0].toUpperCase()}${WORDS[kind].an.slice(1)} of ${name} is already running. Cancel it, or wait for it and run again afterwards?`,
      CANCEL, WAIT, KEEP,
    );
    return pick === CANCEL ? 'cancel' : pick === WAIT ? 'wait' : 'keep';
  }

  private async runWorker<R extends AuditReport | ScanReport>(
    job: LongJob, name: string, signal: AbortSignal, report: (message: string) => void,
  ): Promise<R> {
    const { options } = job;
    const id = this.nextId++;
    this.running.set(id, { name, text: 'starting', kind: job.kind });
    this.updateStatus();
    log().info(`${WORDS[job.kind].running} ${options.model} → ${options.out}`, options);
    report('starting the worker…');
    try {
      return await runJob<R>(job, {
        signal,
        workerPath: this.workerPath,
        onProgress: (p: JobProgress) => {
          const text = progressText(p);
          report(text);
          this.running.set(id, { name, text, kind: job.kind });
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
      ? `$(loading~spin) ${WORDS[all[0].kind].running} ${all[0].name}`
      : `$(loading~spin) ${all.length} jobs running`;
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
