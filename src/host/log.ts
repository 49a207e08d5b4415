// The "Backdoor Audit" log channel and the one way errors reach the user:
// a message that names the file, with a "Show Log" button for the details.
import * as vscode from 'vscode';
import { JobError } from '../worker/client';
import { errorText } from './format';
import { ReportError } from './reports';

let channel: vscode.LogOutputChannel | undefined;

export function createLog(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Backdoor Audit', { log: true });
  return channel;
}

export function log(): vscode.LogOutputChannel {
  return createLog();
}

/** The user-facing text: the error's message, plus the file when the message lacks it. */
export function describeError(err: unknown): string {
  const message = errorText(err);
  const file = err instanceof JobError ? err.error.file : err instanceof ReportError ? err.file : undefined;
  return file && !message.includes(file) ? `${message} (${file})` : message;
}

/** Logs the full error (stack, worker stderr) and shows a short message with "Show Log". */
export async function showError(context: string, err: unknown): Promise<void> {
  const text = `${context}: ${describeError(err)}`;
  const l = log();
  l.error(text);
  // The stack (the worker's, or ours for an unexpected error) is for the log only.
  if (err instanceof JobError && err.error.stack) l.error(err.error.stack);
  else if (err instanceof Error && err.stack) l.error(err.stack);
  const pick = await vscode.window.showErrorMessage(text, 'Show Log');
  if (pick === 'Show Log') l.show(true);
}
