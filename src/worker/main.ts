// The worker process: runs one job from core (inspect, predict, audit, channel
// maps) for the extension host or the CLI and streams typed progress. With
// BACKDOOR_AUDIT_ROLE=shard the same bundle serves as a parallel shard.
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runAudit } from '../core/audit/audit';
import { channelMapsOf, Shard, type ShardApi } from '../core/audit/shard';
import { openDataset } from '../core/data/dataset';
import { CancelledError, UserError } from '../core/errors';
import { inspectModel } from '../core/inspect';
import { archFits } from '../core/keras/archFit';
import { initBackend } from '../core/model/backend';
import { predictFiles } from '../core/predict';
import { loadRunnable } from '../core/runnable';
import { runScan } from '../core/scan/scan';
import { ScanShard, type ScanShardApi, type ScanShardInit, type StimulationCache } from '../core/scan/shard';
import type { AuditOptions, ChannelMaps, ScanOptions } from '../core/types';
import { SHARD_METHODS, type JobResult, type ShardCall, type ShardMethod, type ShardReply, type WorkerError, type WorkerJob, type WorkerMessage, type WorkerRequest } from '../protocol';
import { ScanShardProcess, ShardProcess } from './shardProcess';
import { startH5Watchdog } from './watchdog';

const send = (m: WorkerMessage | ShardReply) => process.send?.(m);
/** Resolves once the message is written to the pipe: exiting before that loses a large result when the parent is busy. */
const sendFlushed = (m: WorkerMessage) => new Promise<void>((resolve) => {
  if (!process.send) resolve();
  else process.send(m, undefined, {}, () => resolve()); // also called (with an error) if the channel is closed
});

export function toWorkerError(e: unknown): WorkerError {
  if (e instanceof UserError) return { message: e.message, file: e.file, code: e.code };
  if (e instanceof CancelledError) return { message: 'cancelled', code: 'cancelled' };
  const err = e as Error;
  return { message: err?.message ?? String(e), code: 'internal', stack: err?.stack };
}

// ---------------- shard role ----------------

function serveShard() {
  // One process serves either the audit's calls or the scan's.
  const shard = new Shard();
  const scan = new ScanShard();
  const scanMethods: Partial<Record<ShardMethod, (...a: never[]) => Promise<unknown>>> = {
    scanInit: (req: ScanShardInit) => scan.init(req),
    scanStimulationCache: (req: StimulationCache) => scan.stimulationCache(req),
    scanStimulate: (channels: number[]) => scan.stimulate(channels),
    scanReconstruct: (label: number) => scan.reconstruct(label),
    scanStimulateSites: (channels: number[]) => scan.stimulateSites(channels),
    scanReverseChannel: (channel: number, position?: [number, number]) => scan.reverseChannel(channel, position ?? undefined),
  };
  process.on('message', async (m: ShardCall) => {
    if (m.type === 'cancel') {
      shard.cancelled = true;
      scan.cancel();
      return;
    }
    try {
      let result: unknown;
      const scanFn = scanMethods[m.method];
      if (scanFn) result = await (scanFn as (...a: unknown[]) => Promise<unknown>)(...m.args);
      else {
        const fn = (shard as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m.method];
        if (!(SHARD_METHODS as readonly string[]).includes(m.method)) throw new Error(`unknown shard method ${m.method}`);
        result = await fn.apply(shard, m.args);
        if (m.method === 'dispose') await scan.dispose();
      }
      send({ type: 'reply', seq: m.seq, result });
    } catch (e) {
      send({ type: 'fail', seq: m.seq, error: toWorkerError(e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------- job role ----------------

/** Parallel processes for a job: tfjs-node already uses every core; wasm and cpu run one thread per process. */
async function processesFor(opts: { backend?: AuditOptions['backend']; workers?: number }): Promise<number> {
  const backend = await initBackend(opts.backend);
  // tfjs-node already uses every core; wasm and cpu run one thread per process. ONNX Runtime
  // could use the cores from one process, but one single-threaded process per core was faster
  // (README, Performance: 2 processes × 1 thread against 1 × 2 threads).
  return opts.workers || (backend === 'tensorflow' ? 1 : Math.min(4, os.availableParallelism()));
}

async function shardsFor(opts: AuditOptions): Promise<ShardApi[]> {
  const wanted = await processesFor(opts);
  const cores = os.availableParallelism();
  if (wanted <= 1) return [new Shard()];
  // Every shard in its own process: a shard computing in this one would keep
  // the others waiting for their next chunk until its batch ends.
  const self = fileURLToPath(import.meta.url);
  const threads = Math.max(1, Math.floor(cores / wanted));
  return Array.from({ length: wanted }, () => new ShardProcess(self, threads));
}

/** The scan's shards: one here (this process only waits meanwhile), the rest in shard processes. */
async function scanShardsFor(opts: ScanOptions): Promise<ScanShardApi[]> {
  const wanted = await processesFor(opts);
  const self = fileURLToPath(import.meta.url);
  return [new ScanShard(), ...Array.from({ length: wanted - 1 }, () => new ScanShardProcess(self))];
}

async function channelMaps(job: Extract<WorkerJob, { kind: 'channelMaps' }>): Promise<ChannelMaps> {
  const { net } = await loadRunnable(job.model, job.arch, job.backend);
  try {
    const src = await openDataset(job.file, net.graph.inputShape, net.classes);
    try {
      if (job.index >= src.info.count) throw new UserError(`has ${src.info.count} images; index ${job.index} is out of range`, job.file, 'bad-index');
      const pixels = src.read(job.index, job.index + 1);
      return await channelMapsOf(net, job.layer, pixels, { source: job.source, file: job.file, index: job.index, label: src.labels?.[job.index] });
    } finally {
      src.close();
    }
  } finally {
    net.dispose();
  }
}

function serveJobs() {
  const running = new Map<number, AbortController>();
  let shards: ShardApi[] = [];
  process.on('message', async (req: WorkerRequest) => {
    if (req.type === 'cancel') {
      running.get(req.id)?.abort();
      for (const s of shards) {
        if (s instanceof Shard) s.cancelled = true;
        else (s as ShardProcess).cancel();
      }
      return;
    }
    if (req.type !== 'run') return;
    const ac = new AbortController();
    running.set(req.id, ac);
    const job = req.job;
    try {
      let result: JobResult;
      switch (job.kind) {
        case 'inspect': result = await inspectModel(job.model, job.arch); break;
        case 'predict': result = await predictFiles(job.model, job.inputs, { arch: job.arch, backend: job.backend, batchSize: job.batchSize }); break;
        case 'channelMaps': result = await channelMaps(job); break;
        case 'archFit': result = await archFits(job.model, job.candidates); break;
        case 'audit': {
          shards = await shardsFor(job.options);
          try {
            result = await runAudit(job.options, {
              shards, signal: ac.signal,
              progress: (progress) => send({ type: 'progress', id: req.id, progress }),
            });
          } finally {
            await Promise.all(shards.map((s) => s.dispose()));
          }
          break;
        }
        case 'scan': {
          const scanShards = await scanShardsFor(job.options);
          // runScan disposes its shards; a cancel also reaches them through the signal.
          result = await runScan(job.options, {
            shards: scanShards, signal: ac.signal,
            progress: (progress) => send({ type: 'progress', id: req.id, progress }),
          });
          break;
        }
        default: throw new Error(`unknown job ${(job as { kind: string }).kind}`);
      }
      await sendFlushed({ type: 'result', id: req.id, result });
    } catch (e) {
      if (e instanceof CancelledError || ac.signal.aborted) await sendFlushed({ type: 'cancelled', id: req.id });
      else await sendFlushed({ type: 'error', id: req.id, error: toWorkerError(e) });
    } finally {
      running.delete(req.id);
      // One job per process: exit once the parent has the answer.
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// Ctrl-C in a terminal reaches the whole process group: the parent turns it
// into a cancel message, so the worker finishes cleanly instead of dying mid-write.
process.on('SIGINT', () => {});

// A corrupt file can hang the HDF5 library: stop such a process with a clear marker.
startH5Watchdog();

if (process.env.BACKDOOR_AUDIT_ROLE === 'shard') serveShard();
else serveJobs();
