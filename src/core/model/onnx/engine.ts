// Runs forward passes of a Net, and the scan's input gradients, through ONNX
// Runtime's CPU kernels. One session per (feeds, fetches) pair or gradient,
// built on first use from translate()'s model.
// onnxruntime-node is a native module: it is loaded at run time, so a build
// without its binary (the universal .vsix) still runs on tfjs.
import type * as Ort from 'onnxruntime-node';
import type { KernelLayout } from '../../types';
import type { Net } from '../net';
import { appendGradient, GRADIENT, type GradientSpec } from './backward';
import { labelOf, NoTranslation, translate } from './translate';

let ort: typeof Ort | undefined;

/** Loads the native binding once; false where it is not installed or does not load on this platform. */
export async function loadOnnxRuntime(): Promise<boolean> {
  if (ort) return true;
  try {
    const name = 'onnxruntime-node'; // kept out of the bundle (scripts/build.mjs marks it external)
    const mod = (await import(/* @vite-ignore */ name)) as typeof Ort & { default?: typeof Ort };
    ort = mod.InferenceSession ? mod : mod.default;
    return Boolean(ort?.InferenceSession);
  } catch {
    return false;
  }
}

/**
 * ONNX Runtime's CPU kernels run a conv net fastest on small batches, whose activations stay in
 * the core's cache: on the lab network, 32 rows a run give ~5,500 images/s on one thread against
 * ~4,200 for 256, and the bench's plain pass in 2 processes went from 5,649 to 7,607 images/s.
 * (On a slower host another day the rate was flat, 3,200-3,340 images/s from 8 to 256 rows: 32 was as good as any.)
 * A graph fed above the input (the dense top of a sweep step) is the other way round, as its
 * weights are reused by every row of a run: the labels of 5,773 lab rows fed at conv_4 and fc_1
 * took 39-44 ms in runs of 256 against 45-65 ms in runs of 32 (1,024: 37 ms, for 4x the memory).
 */
const ROWS_PER_RUN = { fromInput: 32, fromInside: 256 };

/**
 * ONNX Runtime's highest optimisation level ('all') reorders convolutions into blocks of channels
 * (NCHWc), padding each conv's channels up to the block (16 floats with AVX-512). On the demo net
 * (16 to 64 channels) that ran 1.75x faster than the plain NCHW kernels of the 'extended' level; on
 * the lab's (20, 40 and 60 channels, padded to 32, 48 and 64) 1.19x slower. Which wins depends on
 * the model and the CPU, so a graph with convolutions is built both ways, timed on its first run,
 * and the faster kept. The blocked kernels stay unless the plain ones beat them by PLAIN_MARGIN, so a
 * close call on a noisy host does not flip from one run to the next.
 */
const LEVEL: Record<KernelLayout, 'all' | 'extended'> = { blocked: 'all', plain: 'extended' };
const PLAIN_MARGIN = 1.1;

/** Names one layout for every engine of a process and its shard processes (to reproduce a run's numbers). */
export const KERNELS_VARIABLE = 'BACKDOOR_AUDIT_ORT_KERNELS';

/** The layout to run with: the faster, or the one KERNELS_VARIABLE names. */
function kernelsFromEnv(): KernelLayout | 'fastest' {
  const v = process.env[KERNELS_VARIABLE];
  return v === 'blocked' || v === 'plain' ? v : 'fastest';
}

/**
 * The layout for work that optimises (the scan): the one KERNELS_VARIABLE names, else blocked, never
 * the timed choice. The layouts round differently, an optimisation amplifies that, and a timed choice
 * can differ from one run to the next: the same scan would then report different masks.
 */
export function reproducibleKernels(): KernelLayout {
  const v = kernelsFromEnv();
  return v === 'fastest' ? 'blocked' : v;
}

/**
 * The fastest of up to 4 runs of `session` on `feeds`, in ms, after one run to warm it up. A big
 * model gets fewer runs (one when a run takes 250 ms or more), so choosing costs it seconds at most.
 */
async function fastestRun(session: Ort.InferenceSession, feeds: Record<string, Ort.Tensor>): Promise<number> {
  const t0 = performance.now();
  await session.run(feeds);
  const runs = Math.max(1, Math.min(4, Math.floor(250 / Math.max(1, performance.now() - t0))));
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

interface Session {
  session: Ort.InferenceSession;
  inputs: Map<string, string>;
  outputs: Map<string, string>;
  kernels: KernelLayout;
}

export class OnnxEngine {
  private readonly sessions = new Map<string, Promise<Session>>();

  private constructor(private readonly net: Net, readonly threads: number, readonly kernels: KernelLayout | 'fastest') {}

  /**
   * Checks that every layer of `net` translates (NoTranslation otherwise), so a model
   * that cannot run here fails now. Sessions come on first use: each keeps its own
   * memory arena (~150 MB at batch 256 on the lab net), so a shard creates only those it runs.
   */
  static create(net: Net, threads: number, kernels: KernelLayout | 'fastest' = kernelsFromEnv()): OnnxEngine {
    if (!ort) throw new Error('onnxruntime-node is not loaded');
    translate(net, [net.graph.inputs[0]], [net.outputName]);
    return new OnnxEngine(net, threads, kernels);
  }

  /** `probe` gives the session's first feeds, by ONNX input name, to time the kernel layouts on. */
  private session(feeds: string[], fetches: string[], probe: (inputs: Map<string, string>) => Record<string, Ort.Tensor>, inputChannelsFirst = false, gradient?: GradientSpec) {
    const key = `${feeds.join(',')}|${fetches.join(',')}|${inputChannelsFirst}|${JSON.stringify(gradient ?? null)}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = (async (): Promise<Session> => {
        const t = translate(this.net, feeds, fetches, inputChannelsFirst, gradient && ((ctx) => appendGradient(ctx, gradient)));
        const create = (kernels: KernelLayout) => ort!.InferenceSession.create(t.model, {
          intraOpNumThreads: this.threads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: LEVEL[kernels],
        });
        const chosen = (kernels: KernelLayout, session: Ort.InferenceSession) => ({ session, inputs: t.inputs, outputs: t.outputs, kernels });
        if (this.kernels !== 'fastest') return chosen(this.kernels, await create(this.kernels));
        const blocked = await create('blocked');
        if (!t.convolutions) return chosen('blocked', blocked);
        let plain: Ort.InferenceSession | undefined;
        try {
          plain = await create('plain');
          const first = probe(t.inputs);
          if ((await fastestRun(blocked, first)) > PLAIN_MARGIN * (await fastestRun(plain, first))) {
            await blocked.release();
            return chosen('plain', plain);
          }
        } catch {
          // Whatever went wrong in the timing, the blocked session is what ran before it: its own runs will say.
        }
        await plain?.release();
        return chosen('blocked', blocked);
      })();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** The kernel layout each session built so far runs with (for logs and tests). */
  async kernelLayouts(): Promise<KernelLayout[]> {
    return Promise.all([...this.sessions.values()].map(async (s) => (await s).kernels));
  }

  /**
   * `fetches` for `n` rows given `feeds` (channels-last, like tfjs): layer names or `X:pre`.
   * With `inputChannelsFirst` the model input is fed (N, C, H, W), as lab data is stored.
   * Rows go through in runs of at most ROWS_PER_RUN. The arrays returned belong to the caller.
   */
  async run(feeds: Record<string, Float32Array>, n: number, fetches: string[], inputChannelsFirst = false): Promise<Map<string, Float32Array>> {
    return this.runRows(feeds, n, fetches, inputChannelsFirst) as Promise<Map<string, Float32Array>>;
  }

  /** Top-1 of layer `layer` for `n` rows given `feeds`: only the labels leave the engine. */
  async labels(feeds: Record<string, Float32Array>, n: number, layer: string): Promise<Int32Array> {
    return (await this.runRows(feeds, n, [labelOf(layer)])).get(labelOf(layer)) as Int32Array;
  }

  private async runRows(feeds: Record<string, Float32Array>, n: number, fetches: string[], inputChannelsFirst = false): Promise<Map<string, Float32Array | Int32Array>> {
    const names = Object.keys(feeds);
    const perRun = names.includes(this.net.graph.inputs[0]) ? ROWS_PER_RUN.fromInput : ROWS_PER_RUN.fromInside;
    // Each feed's dims without the batch axis, and its floats per row.
    const shaped = names.map((name) => {
      const shape = this.net.shapes.get(name.replace(/:pre$/, ''))!;
      const dims = inputChannelsFirst && name === this.net.graph.inputs[0] ? [shape[2], shape[0], shape[1]] : shape;
      return { name, dims, per: dims.reduce((a, b) => a * b, 1) };
    });
    /** The run of rows [s, s + m), by ONNX input name. */
    const rows = (inputs: Map<string, string>, s: number, m: number) => Object.fromEntries(shaped.map(({ name, dims, per }) =>
      [inputs.get(name)!, new ort!.Tensor('float32', feeds[name].subarray(s * per, (s + m) * per), [m, ...dims])]));
    const { session, inputs, outputs } = await this.session(names, fetches, (inputs) => rows(inputs, 0, Math.min(n, perRun)), inputChannelsFirst);
    const result = new Map<string, Float32Array | Int32Array>();
    for (let s = 0; s < n; s += perRun) {
      const m = Math.min(n, s + perRun) - s;
      const input = rows(inputs, s, m);
      const out = await session.run(input);
      for (const f of fetches) {
        const data = out[outputs.get(f)!].data as Float32Array | Int32Array;
        if (m === n) result.set(f, data);
        else {
          if (!result.has(f)) result.set(f, new (data.constructor as Float32ArrayConstructor | Int32ArrayConstructor)((data.length / m) * n));
          result.get(f)!.set(data, (data.length / m) * s);
        }
      }
    }
    return result;
  }

  /** Why backward.ts cannot express this gradient for the model (it then runs on tfjs), or undefined when it can. */
  cannotDifferentiate(spec: GradientSpec): string | undefined {
    try {
      translate(this.net, [this.net.graph.inputs[0]], [], false, (ctx) => appendGradient(ctx, spec));
      return undefined;
    } catch (e) {
      if (e instanceof NoTranslation) return e.message;
      throw e;
    }
  }

  /**
   * The logits (flat, channels last) and dL/dx for `n` images `x` (channels-last) in one run of
   * backward.ts's graph. `target` holds a one-hot label per image (cross-entropy) or dL/dlogits (given).
   */
  async gradient(spec: GradientSpec, x: Float32Array, n: number, target: Float32Array): Promise<{ logits: Float32Array; dx: Float32Array }> {
    const inputName = this.net.graph.inputs[0];
    const feeds = (inputs: Map<string, string>) => ({
      [inputs.get(inputName)!]: new ort!.Tensor('float32', x, [n, ...this.net.shapes.get(inputName)!]),
      [inputs.get(GRADIENT.target)!]: new ort!.Tensor('float32', target, [n, target.length / n]),
    });
    const { session, inputs, outputs } = await this.session([inputName], [], feeds, false, spec);
    const out = await session.run(feeds(inputs));
    return { logits: out[outputs.get(GRADIENT.logits)!].data as Float32Array, dx: out[outputs.get(GRADIENT.dx)!].data as Float32Array };
  }

  async dispose() {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => undefined))?.session.release();
  }
}

export { NoTranslation };
