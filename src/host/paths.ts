// Path rules for the host. Pure Node (no vscode) so the safety checks are unit-tested.
// Anything a webview asks the host to open must resolve inside the audit's own folder:
// the webview is untrusted, and report.json may have been edited or copied in.
import { existsSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** True when `p` is `dir` itself or lies below it (lexically, after resolving). */
export function isInside(dir: string, p: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(p));
  if (rel === '') return true;
  if (path.isAbsolute(rel)) return false; // another drive on Windows
  return rel !== '..' && !rel.startsWith('..' + path.sep);
}

export function isInsideAny(roots: readonly string[], p: string): boolean {
  return roots.some((r) => isInside(r, p));
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Resolves `p` (relative paths against `dir`) and returns it only if it stays inside
 * `dir`, both as written and after following symlinks; otherwise undefined.
 */
export function resolveInside(dir: string, p: string): string | undefined {
  if (typeof p !== 'string' || p === '' || p.includes('\0')) return undefined;
  const abs = path.resolve(dir, p);
  if (!isInside(dir, abs)) return undefined;
  // A symlink inside the folder could point anywhere; compare the real locations too.
  if (existsSync(abs) && !isInside(real(dir), real(abs))) return undefined;
  return abs;
}

export interface PathVariables {
  workspaceFolder?: string;
  userHome?: string;
}

/**
 * Expands ${workspaceFolder}, ${userHome} and a leading ~ in a setting's path.
 * Returns undefined when the path needs a variable that has no value here
 * (e.g. ${workspaceFolder} with no folder open), so callers can say so.
 */
export function expandVariables(p: string, vars: PathVariables): string | undefined {
  const home = vars.userHome ?? os.homedir();
  let missing = false;
  let out = p.replace(/\$\{(workspaceFolder|userHome)\}/g, (_, name: string) => {
    const v = name === 'workspaceFolder' ? vars.workspaceFolder : home;
    if (!v) missing = true;
    return v ?? '';
  });
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) out = home + out.slice(1);
  return missing ? undefined : out;
}

/** A setting's path made absolute: variables expanded, relative paths against `base`. */
export function resolveSettingPath(p: string, vars: PathVariables, base: string): string | undefined {
  const trimmed = p.trim();
  if (!trimmed) return undefined;
  const expanded = expandVariables(trimmed, vars);
  return expanded === undefined ? undefined : path.resolve(base, expanded);
}

/**
 * Where an audit of `model` is written: `<model>.audit/` beside it by default, or
 * `<outputFolder>/<model name>.audit/` when the outputFolder setting is set
 * (one folder per model, so audits of different models never overwrite each other).
 */
export function auditDirFor(model: string, outputFolder?: string, suffix = '.audit'): string {
  const name = path.basename(model) + suffix;
  return outputFolder ? path.join(outputFolder, name) : path.join(path.dirname(model), name);
}

/** Where a backdoor scan of `model` is written: `<model>.scan/`, placed like its audit. */
export function scanDirFor(model: string, outputFolder?: string): string {
  return auditDirFor(model, outputFolder, '.scan');
}

/**
 * Where "Audit with this trigger" writes: `<model>.trigger_<label>.audit/`, beside the
 * model's own audit, so an audit with the attacker's real data is never overwritten.
 */
export function triggerAuditDirFor(model: string, label: number, outputFolder?: string): string {
  return auditDirFor(model, outputFolder, `.trigger_${label}.audit`);
}

/**
 * True when any folder on the path is an audit or scan output folder: `*.audit`, `*.scan`,
 * or the `*.partial-<pid>` / `*.old-<pid>` folders the engine swaps them in with.
 */
export function isInAuditFolder(p: string): boolean {
  const parts = path.resolve(p).split(/[\\/]/);
  return parts.slice(0, -1).some((seg) => /\.(audit|scan)(\.(partial|old)-\d+)?$/.test(seg));
}

/** A key that identifies one model file, for "is an audit of this model running?". */
export function modelKey(p: string): string {
  const abs = path.resolve(p);
  return process.platform === 'win32' || process.platform === 'darwin' ? abs.toLowerCase() : abs;
}
