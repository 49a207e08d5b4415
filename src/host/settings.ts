// Reads the backdoorAudit.* settings for a model (resource-scoped, so a folder of a
// multi-root workspace can have its own) and resolves their paths.
import path from 'node:path';
import * as vscode from 'vscode';
import type { DataSlot } from './dataFiles';
import { normalizeSettings, type HostSettings } from './options';
import { auditDirFor, expandVariables, resolveSettingPath, scanDirFor, type PathVariables } from './paths';

export const SECTION = 'backdoorAudit';

export function readSettings(scope?: vscode.Uri): HostSettings {
  const cfg = vscode.workspace.getConfiguration(SECTION, scope);
  return normalizeSettings((key) => cfg.get(key));
}

/** The workspace folder holding `file`, else the first one (for ${workspaceFolder}). */
export function workspaceFolderFor(file?: string): string | undefined {
  const folder = file ? vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file)) : undefined;
  const f = folder ?? vscode.workspace.workspaceFolders?.[0];
  return f?.uri.scheme === 'file' ? f.uri.fsPath : undefined;
}

function variablesFor(model: string): PathVariables {
  return { workspaceFolder: workspaceFolderFor(model) };
}

/** Relative setting paths are relative to the model's workspace folder, else to the model. */
function baseFor(model: string): string {
  return workspaceFolderFor(model) ?? path.dirname(model);
}

/** The configured default file for a data slot, absolute; undefined when unset or unresolvable. */
export function defaultDataFile(s: HostSettings, slot: DataSlot, model: string): string | undefined {
  return resolveSettingPath(s.defaultData[slot], variablesFor(model), baseFor(model));
}

/** The configured output root (absolute), or undefined for "beside the model". */
export function outputRoot(s: HostSettings, model: string): string | undefined {
  if (!s.outputFolder) return undefined;
  const root = resolveSettingPath(s.outputFolder, variablesFor(model), baseFor(model));
  if (!root) throw new Error(`The setting backdoorAudit.outputFolder ("${s.outputFolder}") uses \${workspaceFolder}, but no folder is open`);
  return root;
}

export function auditDir(s: HostSettings, model: string): string {
  return auditDirFor(model, outputRoot(s, model));
}

export function scanDir(s: HostSettings, model: string): string {
  return scanDirFor(model, outputRoot(s, model));
}

/**
 * The outputFolder setting resolved for each workspace folder (and for no folder), for
 * the audits view and for deciding which folders a restored panel may read from.
 */
export function configuredOutputRoots(): string[] {
  const roots = new Set<string>();
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  for (const f of folders) {
    const s = readSettings(f.uri);
    const root = s.outputFolder ? resolveSettingPath(s.outputFolder, { workspaceFolder: f.uri.fsPath }, f.uri.fsPath) : undefined;
    if (root) roots.add(root);
  }
  if (!folders.length) {
    // No folder open: only absolute (or ~ / ${userHome}) output folders make sense.
    const s = readSettings();
    const root = s.outputFolder ? resolveSettingPath(s.outputFolder, {}, process.cwd()) : undefined;
    if (root && path.isAbsolute(expandOrEmpty(s.outputFolder))) roots.add(root);
  }
  return [...roots];
}

function expandOrEmpty(p: string): string {
  return expandVariables(p, {}) ?? '';
}
