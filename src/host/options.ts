// Turns the extension's settings into the engine's AuditOptions. Pure (no vscode):
// settings.ts reads the raw values from the configuration and hands them here.
import type { AuditOptions, Backend, RankBy, RankOrder, RepairOptions, ScanOptions } from '../protocol';
import type { DataSlot } from './dataFiles';

export const DEFAULT_THRESHOLDS = [2, 4, 10];
export const DEFAULT_BATCH_SIZE = 256;
/** The scan's defaults (issue 13): 200 clean images, 3 candidate labels, 20 calibration labels. */
export const DEFAULT_SCAN = { images: 200, labels: 3, calibration: 20 } as const;
/** A fixed seed: the same model and data give the same scan. */
export const SCAN_SEED = 1;

export interface HostSettings {
  thresholds: number[];
  /** '' = let the engine pick the last convolution */
  layer: string;
  rankOrder: RankOrder;
  rankBy: RankBy;
  /** undefined = auto (the engine takes the fastest one installed) */
  backend?: Backend;
  batchSize: number;
  /** 0 = one per core */
  workers: number;
  /** raw setting, may hold ${workspaceFolder}; '' = beside the model */
  outputFolder: string;
  fullSweep: boolean;
  /** raw setting paths, may hold ${workspaceFolder}; '' = none */
  defaultData: Record<DataSlot, string>;
  target?: number;
  /** training settings used when a repair is chosen in the audit's quick picks */
  repair: Omit<RepairOptions, 'data' | 'trigger' | 'triggerFromPoisoned'>;
  scan: { images: number; labels: number; calibration: number };
}

/** The repair chosen for one audit: pruning only (the lab's way), fine-tuning, or unlearning a trigger. */
export type RepairChoice =
  | { method: 'none' }
  | { method: 'fine-tune' }
  | { method: 'unlearn'; trigger: string }
  | { method: 'unlearn'; fromPoisoned: true };

export type DataChoice = { cleanValid: string } & Partial<Record<Exclude<DataSlot, 'cleanValid'>, string>>;

/** Keeps valid drops (0 < t <= 100), sorted and without duplicates; falls back to the lab's. */
export function normalizeThresholds(raw: unknown): number[] {
  if (!Array.isArray(raw)) return [...DEFAULT_THRESHOLDS];
  const ok = raw.filter((t): t is number => typeof t === 'number' && Number.isFinite(t) && t > 0 && t <= 100);
  const unique = [...new Set(ok)].sort((a, b) => a - b);
  return unique.length ? unique : [...DEFAULT_THRESHOLDS];
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return allowed.includes(v as T) ? (v as T) : fallback;
}

function intAtLeast(v: unknown, min: number, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min ? v : fallback;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

/** "" or a non-negative whole number (the setting may be typed as a string in settings.json). */
export function parseTarget(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

/** Settings as read from the configuration, made safe: wrong types fall back to defaults. */
export function normalizeSettings(get: (key: string) => unknown): HostSettings {
  const backend = oneOf(get('backend'), ['auto', 'onnxruntime', 'tensorflow', 'wasm', 'cpu'] as const, 'auto');
  return {
    thresholds: normalizeThresholds(get('thresholds')),
    layer: str(get('layer')),
    rankOrder: oneOf(get('rankOrder'), ['increasing', 'decreasing'] as const, 'increasing'),
    rankBy: oneOf(get('rankBy'), ['pool', 'conv'] as const, 'pool'),
    backend: backend === 'auto' ? undefined : backend,
    batchSize: intAtLeast(get('batchSize'), 1, DEFAULT_BATCH_SIZE),
    workers: intAtLeast(get('workers'), 0, 0),
    outputFolder: str(get('outputFolder')),
    fullSweep: get('fullSweep') === true,
    defaultData: {
      cleanValid: str(get('defaultData.cleanValid')),
      poisonedValid: str(get('defaultData.poisonedValid')),
      cleanTest: str(get('defaultData.cleanTest')),
      poisonedTest: str(get('defaultData.poisonedTest')),
    },
    target: parseTarget(get('target')),
    repair: {
      epochs: intAtLeast(get('repair.epochs'), 1, 5),
      learningRate: positive(get('repair.learningRate'), 1e-4),
      optimizer: oneOf(get('repair.optimizer'), ['adam', 'sgd'] as const, 'adam'),
      batchSize: intAtLeast(get('repair.batchSize'), 1, 64),
      layers: oneOf(get('repair.layers'), ['all', 'above'] as const, 'all'),
      share: fraction(get('repair.unlearnShare'), 0.2),
      seed: intAtLeast(get('repair.seed'), 0, 1),
    },
    scan: {
      images: intAtLeast(get('scan.images'), 1, DEFAULT_SCAN.images),
      labels: intAtLeast(get('scan.labels'), 1, DEFAULT_SCAN.labels),
      calibration: intAtLeast(get('scan.calibration'), 0, DEFAULT_SCAN.calibration),
    },
  };
}

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback;
}

function fraction(v: unknown, fallback: number): number {
  return typeof v === 'number' && v > 0 && v < 1 ? v : fallback;
}

/** The job the worker runs. `thresholds` overrides the setting (the webview's re-run). */
export function buildAuditOptions(
  s: HostSettings, model: string, data: DataChoice, out: string, thresholds?: number[], repair: RepairChoice = { method: 'none' },
): AuditOptions {
  const opts: AuditOptions = {
    model,
    cleanValid: data.cleanValid,
    thresholds: thresholds ? normalizeThresholds(thresholds) : [...s.thresholds],
    order: s.rankOrder,
    rankBy: s.rankBy,
    fullSweep: s.fullSweep,
    out,
    batchSize: s.batchSize,
    workers: s.workers,
  };
  // Optional keys are left out rather than set to undefined: the options are saved in report.json.
  if (data.poisonedValid) opts.poisonedValid = data.poisonedValid;
  if (data.cleanTest) opts.cleanTest = data.cleanTest;
  if (data.poisonedTest) opts.poisonedTest = data.poisonedTest;
  if (s.layer) opts.layer = s.layer;
  if (s.backend) opts.backend = s.backend;
  if (s.target !== undefined) opts.target = s.target;
  if (repair.method !== 'none') {
    opts.repair = { ...s.repair };
    if ('trigger' in repair) opts.repair.trigger = repair.trigger;
    if ('fromPoisoned' in repair) opts.repair.triggerFromPoisoned = true;
  }
  return opts;
}

/** The scan job for `model` on the clean images in `clean`. */
export function buildScanOptions(s: HostSettings, model: string, clean: string, out: string): ScanOptions {
  const opts: ScanOptions = {
    model, clean, out,
    images: s.scan.images, labels: s.scan.labels, calibration: s.scan.calibration,
    seed: SCAN_SEED, batchSize: s.batchSize, workers: s.workers,
  };
  if (s.layer) opts.layer = s.layer;
  if (s.backend) opts.backend = s.backend;
  return opts;
}

/**
 * "Audit with this trigger": the fine-pruning audit whose poisoned sets are the clean
 * ones stamped with a scan's reconstructed trigger, with its label as the target.
 */
export function buildTriggerAuditOptions(
  s: HostSettings, model: string, data: { cleanValid: string; cleanTest?: string }, trigger: string, label: number, out: string,
): AuditOptions {
  const opts = buildAuditOptions({ ...s, target: undefined }, model, { cleanValid: data.cleanValid, cleanTest: data.cleanTest }, out);
  opts.trigger = trigger;
  opts.triggerTarget = label;
  opts.target = label;
  return opts;
}
