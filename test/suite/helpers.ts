// Helpers shared by the in-host test files: the extension under test, condition
// waits, and driving the audit command's quick picks.
import assert from 'node:assert/strict';
import path from 'node:path';
import * as vscode from 'vscode';
import type { BackdoorAuditApi } from '../../src/extension';

const ID = 'backdoor-audit.backdoor-audit';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const demoDir = () => path.join(extension().extensionPath, 'demo');

export function extension(): vscode.Extension<BackdoorAuditApi> {
  const ext = vscode.extensions.getExtension<BackdoorAuditApi>(ID);
  assert.ok(ext, `${ID} is not loaded`);
  return ext;
}

export async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Runs a command that asks through quick picks, accepting whatever each one offers
 * first (its preselected item) as soon as it shows, until the command settles.
 */
export async function acceptingPicks<T>(running: Thenable<T>): Promise<T> {
  let settled = false;
  const done = Promise.resolve(running).finally(() => { settled = true; });
  while (!settled) {
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await Promise.race([done, sleep(250)]);
  }
  return done;
}

export function allTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs);
}
