// Runs one job in a forked worker process. Used by the CLI and the extension
// host alike (plain Node, no vscode import). Cancelling kills the process
// group's work: the worker removes its temporary files before it exits.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  H5_STUCK_MARKER, parseWorkerMessage, type JobProgress, type JobResult, type ProgressOf, type WorkerError, type WorkerJob, type WorkerRequest,
} from '../protocol';

export class JobError extends Error {
  constructor(readonly error: WorkerError) {
    super(error.message);
  }
}
export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface RunOptions<P extends JobProgress = JobProgress> {
  onProgress?: (p: P) => void;
  onLog?: (level: 'info' | 'warn', message: string) => void;
  signal?: AbortSignal;
  /** path of dist/worker.mjs; found next to the caller's bundle by default */
  workerPath?: string;
  /** extra environment for the worker */
  env?: Record<string, string>;
  /** called once the process exists (tests kill it to check fault handling) */
  onSpawn?: (child: ChildProcess) => void;
}

export function defaultWorkerPath(): string {
  // Bundles define __dirname (dist/); unbundled callers (tests) run from the repo root.
  const here = typeof __dirname === 'string' ? __dirname : path.join(process.cwd(), 'dist');
  for (const candidate of [path.join(here, 'worker.mjs'), path.join(here, '../dist/worker.mjs')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`worker bundle not found near ${here}; run \`npm run build\``);
}

let nextId = 1;

/** The file named by a watchdog's last words on stderr (worker/watchdog.ts), if any. */
export function stuckFile(stderr: string): string | undefined {
  const at = stderr.lastIndexOf(H5_STUCK_MARKER);
  return at < 0 ? undefined : stderr.slice(at + H5_STUCK_MARKER.length).split('\n')[0].trim() || undefined;
}

/**
 * After an audit worker has exited: a worker killed while writing leaves its
 * staging folder `<out>.partial-<pid>`, and one killed between the two renames
 * of the commit leaves the previous report as `<out>.old-<pid>` with no `<out>`
 * (names as in core/audit/output.ts, not imported: it would pull the HDF5
 * writer into the extension bundle). Puts the previous report back, removes the rest.
 */
export function recoverAuditOutput(out: string, pid: number): void {
  const partial = `${out}.partial-${pid}`;
  const old = `${out}.old-${pid}`;
  try {
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    rmSync(partial, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
  } catch { /* best effort: never hide the job's own outcome */ }
}

export function runJob<T extends JobResult>(job: WorkerJob, opts: RunOptions<ProgressOf<T>> = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new JobCancelled());
    const id = nextId++;
    const child = fork(opts.workerPath ?? defaultWorkerPath(), [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...opts.env },
      serialization: 'advanced',
      // The bundle needs no loader flags of the parent (tsx, inspector): they cost memory.
      execArgv: [],
    });
    opts.onSpawn?.(child);
    let settled = false;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.stdout?.on('data', (d: Buffer) => opts.onLog?.('info', d.toString().trimEnd()));
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      if (settled) return;
      child.send({ type: 'cancel', id } satisfies WorkerRequest);
      // The worker cleans up and exits; if it does not within 5 s, kill it.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => clearTimeout(timer));
    };
    opts.signal?.addEventListener('abort', onAbort);

    child.on('message', (raw) => {
      const msg = parseWorkerMessage(raw);
      if (!msg || msg.id !== id) return;
      switch (msg.type) {
        case 'progress': opts.onProgress?.(msg.progress as ProgressOf<T>); break;
        case 'log': opts.onLog?.(msg.level, msg.message); break;
        case 'result': finish(() => resolve(msg.result as T)); child.disconnect(); break;
        case 'error': finish(() => reject(new JobError(msg.error))); child.disconnect(); break;
        case 'cancelled': finish(() => reject(new JobCancelled())); break;
      }
    });
    child.on('error', (err) => finish(() => reject(new JobError({ message: `worker failed to start: ${err.message}` }))));
    child.on('exit', (code, signal) => {
      if ((job.kind === 'audit' || job.kind === 'scan') && child.pid) recoverAuditOutput(job.options.out, child.pid);
      const died = () => finish(() => {
        if (opts.signal?.aborted) return reject(new JobCancelled());
        const stuck = stuckFile(stderr);
        if (stuck) return reject(new JobError({ message: `${stuck}: the HDF5 library stopped responding on this file (corrupt?); the worker was stopped`, file: stuck, code: 'corrupt' }));
        const why = signal ? `was killed (${signal})` : `exited with code ${code}`;
        const oom = /heap out of memory|Allocation failed/i.test(stderr) ? ' (out of memory: try a smaller batch size)' : '';
        reject(new JobError({ message: `the worker process ${why}${oom} before finishing`, code: 'worker-died', stack: stderr || undefined }));
      });
      // 'exit' can come before the last of stderr (out of memory, a stuck HDF5
      // call) has been read: wait for its end, at most a second (shards share it).
      if (settled || !child.stderr || child.stderr.readableEnded) return died();
      const timer = setTimeout(died, 1000);
      child.stderr.once('end', () => { clearTimeout(timer); died(); });
    });
    child.send({ type: 'run', id, job } satisfies WorkerRequest);
  });
}
