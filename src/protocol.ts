// Every message that crosses a process or webview boundary. Host<->worker and
// host<->webview share this one file; validators below check what arrives.
import type {
  ArchFitResult, AuditOptions, AuditReport, Backend, ChannelMaps, InspectResult, PredictResult, Progress, ScanOptions, ScanProgress, ScanReport,
} from './core/types';

export type * from './core/types';

// ---------- host (or CLI) <-> worker child process ----------

export type WorkerJob =
  | { kind: 'inspect'; model: string; arch?: string }
  | { kind: 'predict'; model: string; inputs: string[]; arch?: string; backend?: Backend; batchSize?: number }
  | { kind: 'audit'; options: AuditOptions }
  | { kind: 'scan'; options: ScanOptions }
  | { kind: 'channelMaps'; model: string; arch?: string; layer: string; file: string; index: number; source: ChannelMaps['source']; backend?: Backend }
  /** is `model` weights-only, and which `candidates` fit it as its architecture */
  | { kind: 'archFit'; model: string; candidates: string[] };

export type WorkerRequest =
  | { type: 'run'; id: number; job: WorkerJob }
  | { type: 'cancel'; id: number };

export interface WorkerError {
  message: string;
  /** the file the problem is in, when there is one */
  file?: string;
  code?: string;
  stack?: string;
}

export type JobResult = InspectResult | PredictResult | AuditReport | ChannelMaps | ScanReport | ArchFitResult;

/** An audit reports `Progress`, a scan `ScanProgress` (told apart by the job that was asked for). */
export type JobProgress = Progress | ScanProgress;
export type ProgressOf<T extends JobResult> = T extends ScanReport ? ScanProgress : Progress;

export type WorkerMessage =
  | { type: 'progress'; id: number; progress: JobProgress }
  | { type: 'log'; id: number; level: 'info' | 'warn'; message: string }
  | { type: 'result'; id: number; result: JobResult }
  | { type: 'error'; id: number; error: WorkerError }
  | { type: 'cancelled'; id: number };

// ---------- audit worker <-> its shard processes (parallel inference and data-parallel training) ----------

export const SHARD_METHODS = ['init', 'load', 'step', 'evaluate', 'dispose', 'trainBegin', 'trainGrads', 'trainApply', 'trainWeights', 'trainEnd', 'scanInit', 'scanStimulationCache', 'scanStimulate', 'scanStimulateSites', 'scanReconstruct', 'scanReverseChannel'] as const;
/** Training calls carry Float32Array gradients and weights (sent as such by the 'advanced' serialization). */
export type ShardMethod = typeof SHARD_METHODS[number];
export type ShardCall = { type: 'call'; seq: number; method: ShardMethod; args: unknown[] } | { type: 'cancel' };
export type ShardReply =
  | { type: 'reply'; seq: number; result: unknown }
  | { type: 'fail'; seq: number; error: WorkerError };

// ---------- host <-> webview ----------

export type ViewState =
  | { view: 'inspect'; inspect: InspectResult }
  | { view: 'audit'; report: AuditReport; reportDir: string }
  | { view: 'scan'; report: ScanReport; reportDir: string };

export type HostToWebview =
  | { type: 'show'; state: ViewState; theme?: 'light' | 'dark' | 'high-contrast' }
  | { type: 'channelMaps'; maps: ChannelMaps[] }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'openRepaired'; drop: number }
  | { type: 'revealReport' }
  | { type: 'rerun'; thresholds: number[] }
  | { type: 'requestChannelMaps'; source: 'clean' | 'poisoned'; index: number }
  | { type: 'pickImage' }
  | { type: 'changeArchitecture' }
  | { type: 'exportCsv'; csv: string }
  | { type: 'copyText'; text: string }
  /** scan view: run the fine-pruning audit with the trigger reconstructed for `label` */
  | { type: 'auditWithTrigger'; label: number };

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The webview is untrusted: accept only well-formed messages, nothing else. */
export function parseWebviewMessage(raw: unknown): WebviewToHost | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case 'ready': case 'revealReport': case 'pickImage': case 'changeArchitecture':
      return { type: m.type };
    case 'openRepaired':
      return isFiniteNum(m.drop) ? { type: 'openRepaired', drop: m.drop } : undefined;
    case 'rerun':
      return Array.isArray(m.thresholds) && m.thresholds.length > 0 && m.thresholds.length <= 20 &&
        m.thresholds.every((t) => isFiniteNum(t) && t > 0 && t <= 100)
        ? { type: 'rerun', thresholds: m.thresholds as number[] } : undefined;
    case 'auditWithTrigger':
      return isInt(m.label) ? { type: 'auditWithTrigger', label: m.label } : undefined;
    case 'requestChannelMaps':
      return (m.source === 'clean' || m.source === 'poisoned') && isInt(m.index)
        ? { type: 'requestChannelMaps', source: m.source, index: m.index } : undefined;
    case 'exportCsv': case 'copyText': {
      const key = m.type === 'exportCsv' ? 'csv' : 'text';
      const text = m[key];
      if (typeof text !== 'string' || text.length > 5_000_000) return undefined;
      return m.type === 'exportCsv' ? { type: 'exportCsv', csv: text } : { type: 'copyText', text };
    }
    default:
      return undefined;
  }
}

/** Worker messages come from our own child process, but a crashed one can send anything. */
export function parseWorkerMessage(raw: unknown): WorkerMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  if (!isInt(m.id)) return undefined;
  switch (m.type) {
    case 'progress': return typeof m.progress === 'object' && m.progress ? (m as unknown as WorkerMessage) : undefined;
    case 'log': return typeof m.message === 'string' ? (m as unknown as WorkerMessage) : undefined;
    case 'result': return typeof m.result === 'object' && m.result ? (m as unknown as WorkerMessage) : undefined;
    case 'error': return typeof m.error === 'object' && m.error ? (m as unknown as WorkerMessage) : undefined;
    case 'cancelled': return m as unknown as WorkerMessage;
    default: return undefined;
  }
}

/**
 * A worker or shard process whose HDF5 call never returned (a corrupt file) is
 * killed by its watchdog thread after writing this marker and the file's path
 * as the last line of its stderr (see worker/watchdog.ts).
 */
export const H5_STUCK_MARKER = 'backdoor-audit: HDF5 call did not return, file: ';
