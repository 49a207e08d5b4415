// A Shard living in another process, so inference uses every core (the wasm
// backend is single-threaded in Node). Same interface as the in-process Shard.
import { fork, type ChildProcess } from 'node:child_process';
import { CancelledError, UserError } from '../core/errors';
import type { Counts, EvalCounts, LoadRequest, LoadResult, ShardApi, ShardInfo, ShardInit } from '../core/audit/shard';
import type { ShardCall, ShardMethod, ShardReply } from '../protocol';

export class ShardProcess implements ShardApi {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;

  constructor(workerPath: string) {
    this.child = fork(workerPath, [], {
      env: { ...process.env, BACKDOOR_AUDIT_ROLE: 'shard' },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // The bundle needs no loader flags of the parent (tsx, inspector): they cost memory.
      execArgv: [],
    });
    this.child.on('message', (m: ShardReply) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.type === 'reply') p.resolve(m.result);
      else p.reject(m.error.code === 'cancelled' ? new CancelledError() : m.error.code === 'internal' ? new Error(m.error.message) : UserError.revive(m.error));
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`a parallel inference process ${signal ? `was killed (${signal})` : `exited with code ${code}`}`));
      this.pending.clear();
    });
  }

  get pid() {
    return this.child.pid;
  }

  private call<T>(method: ShardMethod, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(new Error('a parallel inference process has exited'));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ type: 'call', seq, method, args } satisfies ShardCall);
    });
  }

  init(req: ShardInit) { return this.call<ShardInfo>('init', req); }
  load(req: LoadRequest) { return this.call<LoadResult>('load', req); }
  step(channels: number[], target: number | undefined) { return this.call<Record<string, Counts>>('step', channels, target); }
  evaluate(req: Omit<LoadRequest, 'samples' | 'source' | 'set'>, masks: number[][], target: number | undefined, flagged: number) {
    return this.call<EvalCounts>('evaluate', req, masks, target, flagged);
  }
  cancel() {
    if (!this.exited) this.child.send({ type: 'cancel' } satisfies ShardCall);
  }
  async dispose() {
    if (this.exited) return;
    await this.call('dispose').catch(() => {});
    this.child.kill();
  }
}
