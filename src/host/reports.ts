// Reading saved audits (report.json) and finding the files they name. Pure Node
// (no vscode): unit-tested. The report on disk is data, not trusted instructions:
// every path in it is resolved against the audit folder it was found in.
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuditReport, ScanReport, ThresholdResult } from '../protocol';
import { resolveInside } from './paths';

export const REPORT_FILE = 'report.json';
export const SCAN_FILE = 'scan.json';

export class ReportError extends Error {
  constructor(message: string, readonly file: string) {
    super(message);
  }
}

/** Parses `<dir>/<name>` as JSON, or throws a ReportError that names the file. */
async function readJson(dir: string, name: string, what: string): Promise<unknown> {
  const file = path.join(dir, name);
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `unreadable (${(err as Error).message})`;
    throw new ReportError(`${what} ${file} is ${why}`, file);
  }
}

/** Reads `<dir>/report.json`, checking the fields the host relies on. */
export async function readReport(dir: string): Promise<AuditReport> {
  const r = (await readJson(dir, REPORT_FILE, 'Audit report')) as Partial<AuditReport> | null;
  if (!r || typeof r !== 'object' || r.version !== 1 || typeof r.model !== 'string' ||
    !Array.isArray(r.thresholds) || typeof r.data !== 'object' || !r.data?.cleanValid) {
    const file = path.join(dir, REPORT_FILE);
    throw new ReportError(`Audit report ${file} is not a Backdoor Audit report (version 1)`, file);
  }
  return r as AuditReport;
}

/** Reads `<dir>/scan.json` (a backdoor scan), checking the fields the host and the view rely on. */
export async function readScan(dir: string): Promise<ScanReport> {
  const r = (await readJson(dir, SCAN_FILE, 'Scan report')) as Partial<ScanReport> | null;
  if (!r || typeof r !== 'object' || r.version !== 1 || r.kind !== 'scan' || typeof r.model !== 'string' ||
    (r.verdict !== 'backdoor' && r.verdict !== 'clean') || !Array.isArray(r.targets) || !Array.isArray(r.channels) || !Array.isArray(r.labels)) {
    const file = path.join(dir, SCAN_FILE);
    throw new ReportError(`Scan report ${file} is not a Backdoor Audit scan (version 1)`, file);
  }
  return r as ScanReport;
}

/**
 * A model or data path from the report, made absolute (relative ones are relative to the
 * audit folder). When it does not exist, as with a report written on another machine,
 * the file of the same name beside the audit folder is tried: that is where the
 * model and its data sit in the default layout (`<model>.audit/` next to the model).
 */
export function reportPath(dir: string, p: string): string {
  const direct = path.resolve(dir, p);
  if (existsSync(direct)) return direct;
  const beside = path.join(path.dirname(dir), path.basename(p));
  return existsSync(beside) ? beside : direct;
}

/**
 * The report folder named in a webview's saved state, for a view of kind `view`. The
 * webview saves `{ view, ui }` (see webview/state.ts); a bare ViewState is accepted too.
 * Only this one string is taken from the state: the report itself is read again from disk.
 */
export function reportDirFromState(state: unknown, view: 'audit' | 'scan'): string | undefined {
  if (!state || typeof state !== 'object') return undefined;
  const s = state as { view?: unknown; reportDir?: unknown };
  const v = (s.view && typeof s.view === 'object' ? s.view : s) as { view?: unknown; reportDir?: unknown };
  if (v.view !== view || typeof v.reportDir !== 'string') return undefined;
  const dir = v.reportDir;
  return dir && !dir.includes('\0') && path.isAbsolute(dir) ? path.resolve(dir) : undefined;
}

export const auditDirFromState = (state: unknown) => reportDirFromState(state, 'audit');

/**
 * The repaired model of one threshold row, only if it lies inside the audit folder.
 * Reports written on another machine carry absolute paths that no longer exist; then
 * the file of the same name in this audit folder is the one meant.
 */
export function repairedModelPath(dir: string, report: AuditReport, drop: number): string | undefined {
  const row = report.thresholds.find((t: ThresholdResult) => t.drop === drop);
  if (!row?.repairedModel) return undefined;
  const direct = resolveInside(dir, row.repairedModel);
  if (direct && existsSync(direct)) return direct;
  const byName = resolveInside(dir, path.basename(row.repairedModel));
  return byName && existsSync(byName) ? byName : direct;
}

/** The data file behind the heatmaps of `source` (the audit's own validation sets). */
export function dataFileFor(dir: string, report: AuditReport, source: 'clean' | 'poisoned'): { file: string; count: number } | undefined {
  const info = source === 'clean' ? report.data.cleanValid : report.data.poisonedValid;
  if (!info?.file) return undefined;
  return { file: reportPath(dir, info.file), count: info.count };
}

/**
 * Folders directly under `root` (and `root` itself) that hold `file` (report.json for
 * audits, scan.json for scans). Used for the outputFolder setting, which may lie
 * outside the workspace.
 */
export function findReportDirs(root: string, file = REPORT_FILE): string[] {
  const found: string[] = [];
  if (existsSync(path.join(root, file))) found.push(root);
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return found;
  }
  for (const n of names) {
    const dir = path.join(root, n);
    if (existsSync(path.join(dir, file))) found.push(dir);
  }
  return found;
}

export const findAuditDirs = (root: string) => findReportDirs(root, REPORT_FILE);

/**
 * The trigger file of one optimised label of a scan, only if it lies inside the scan
 * folder (scan.json names it; the webview only says which label).
 */
export function triggerFilePath(dir: string, scan: ScanReport, label: number): string | undefined {
  const entry = scan.labels.find((l) => l.label === label)?.trigger ?? scan.targets.find((t) => t.label === label)?.trigger;
  return entry ? resolveInside(dir, path.basename(entry)) : undefined;
}
