// A Shard living in another process, so inference and training use every
// core (the wasm backend is single-threaded in Node). Same interface as the in-process Shard.
import { fork, type ChildProcess } from 'node:child_process';
import { CancelledError, UserError } from '../core/errors';
import type { Counts, EvalCounts, LoadRequest, LoadResult, ShardApi, ShardInfo, ShardInit } from '../core/audit/shard';
import type { ScanShardApi, ScanShardInit, StimulationCache } from '../core/scan/shard';
import type { ChannelResponses } from '../core/scan/stimulate';
import type { Reconstruction } from '../core/scan/trigger';
import type { ChannelReversal } from '../core/scan/neuron';
import type { MicroBatch, MicroGrads, TrainSetup } from '../core/train/gradientShard';
import type { ShardCall, ShardMethod, ShardReply } from '../protocol';
import { stuckFile } from './client';

export class ShardProcess implements ShardApi {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;

  /** `threads`: ONNX Runtime threads for this process (its share of the cores) */
  constructor(workerPath: string, private readonly threads = 1) {
    this.child = fork(workerPath, [], {
      env: { ...process.env, BACKDOOR_AUDIT_ROLE: 'shard' },
      serialization: 'advanced',
      // stderr is relayed, and read for the watchdog's marker (a stuck HDF5 call).
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      // The bundle needs no loader flags of the parent (tsx, inspector): they cost memory.
      // Shards run one per core, so V8's GC helper threads would only take time
      // from the other shards: GC on the main thread made the audit ~12% faster.
      execArgv: ['--single-threaded-gc'],
    });
    this.child.on('message', (m: ShardReply) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.type === 'reply') p.resolve(m.result);
      else p.reject(m.error.code === 'cancelled' ? new CancelledError() : m.error.code === 'internal' ? new Error(m.error.message) : UserError.revive(m.error));
    });
    let stderr = '';
    this.child.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d);
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const fail = () => {
        const stuck = stuckFile(stderr);
        const err = stuck
          ? new UserError('the HDF5 library stopped responding on this file (corrupt?); its reader was stopped', stuck, 'corrupt')
          : new Error(`a parallel inference process ${signal ? `was killed (${signal})` : `exited with code ${code}`}${/heap out of memory|Allocation failed/i.test(stderr) ? ' (out of memory)' : ''}`);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      // The watchdog's marker may still be in the pipe when 'exit' comes.
      if (!this.pending.size || !this.child.stderr || this.child.stderr.readableEnded) return fail();
      const timer = setTimeout(fail, 1000);
      this.child.stderr.once('end', () => { clearTimeout(timer); fail(); });
    });
  }

  get pid() {
    return this.child.pid;
  }

  call<T>(method: ShardMethod, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(new Error('a parallel inference process has exited'));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ type: 'call', seq, method, args } satisfies ShardCall);
    });
  }

  init(req: ShardInit) { return this.call<ShardInfo>('init', { threads: this.threads, ...req }); }
  load(req: LoadRequest) { return this.call<LoadResult>('load', req); }
  step(channels: number[], target: number | undefined) { return this.call<Record<string, Counts>>('step', channels, target); }
  evaluate(req: Omit<LoadRequest, 'samples' | 'source' | 'set'>, masks: number[][], target: number | undefined, flagged: number) {
    return this.call<EvalCounts>('evaluate', req, masks, target, flagged);
  }
  trainBegin(setup: TrainSetup) { return this.call<void>('trainBegin', setup); }
  trainGrads(batches: MicroBatch[]) { return this.call<MicroGrads>('trainGrads', batches); }
  trainApply(grads: Float32Array) { return this.call<void>('trainApply', grads); }
  trainWeights() { return this.call<Float32Array>('trainWeights'); }
  trainEnd() { return this.call<void>('trainEnd'); }
  cancel() {
    if (!this.exited) this.child.send({ type: 'cancel' } satisfies ShardCall);
  }
  async dispose() {
    if (this.exited) return;
    await this.call('dispose').catch(() => {});
    this.child.kill();
  }
}

/** A scan shard (trigger reconstruction for the labels it is handed) in a shard process. */
export class ScanShardProcess implements ScanShardApi {
  private readonly proc: ShardProcess;
  constructor(workerPath: string) {
    this.proc = new ShardProcess(workerPath);
  }
  init(req: ScanShardInit) { return this.proc.call<void>('scanInit', req); }
  stimulationCache(req: StimulationCache) { return this.proc.call<void>('scanStimulationCache', req); }
  stimulate(channels: number[]) { return this.proc.call<ChannelResponses>('scanStimulate', channels); }
  reconstruct(label: number) { return this.proc.call<Reconstruction>('scanReconstruct', label); }
  stimulateSites(channels: number[]) { return this.proc.call<ChannelResponses>('scanStimulateSites', channels); }
  reverseChannel(channel: number, position?: [number, number]) { return this.proc.call<ChannelReversal>('scanReverseChannel', channel, position); }
  cancel() { this.proc.cancel(); }
  dispose() { return this.proc.dispose(); }
}
