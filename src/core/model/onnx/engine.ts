// Runs forward passes of a Net, and the scan's input gradients, through ONNX
// Runtime's CPU kernels. One session per (feeds, fetches) pair or gradient,
// built on first use from translate()'s model.
// onnxruntime-node is a native module: it is loaded at run time, so a build
// without its binary (the universal .vsix) still runs on tfjs.
import type * as Ort from 'onnxruntime-node';
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

export class OnnxEngine {
  private readonly sessions = new Map<string, Promise<{ session: Ort.InferenceSession; inputs: Map<string, string>; outputs: Map<string, string> }>>();

  private constructor(private readonly net: Net, readonly threads: number) {}

  /**
   * Checks that every layer of `net` translates (NoTranslation otherwise), so a model
   * that cannot run here fails now. Sessions come on first use: each keeps its own
   * memory arena (~150 MB at batch 256 on the lab net), so a shard creates only those it runs.
   */
  static create(net: Net, threads: number): OnnxEngine {
    if (!ort) throw new Error('onnxruntime-node is not loaded');
    translate(net, [net.graph.inputs[0]], [net.outputName]);
    return new OnnxEngine(net, threads);
  }

  private session(feeds: string[], fetches: string[], inputChannelsFirst = false, gradient?: GradientSpec) {
    const key = `${feeds.join(',')}|${fetches.join(',')}|${inputChannelsFirst}|${JSON.stringify(gradient ?? null)}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = (async () => {
        const t = translate(this.net, feeds, fetches, inputChannelsFirst, gradient && ((ctx) => appendGradient(ctx, gradient)));
        const session = await ort!.InferenceSession.create(t.model, {
          intraOpNumThreads: this.threads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
        });
        return { session, inputs: t.inputs, outputs: t.outputs };
      })();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
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
    const { session, inputs, outputs } = await this.session(names, fetches, inputChannelsFirst);
    // Each feed's dims without the batch axis, and its floats per row.
    const shaped = names.map((name) => {
      const shape = this.net.shapes.get(name.replace(/:pre$/, ''))!;
      const dims = inputChannelsFirst && name === this.net.graph.inputs[0] ? [shape[2], shape[0], shape[1]] : shape;
      return { name, dims, per: dims.reduce((a, b) => a * b, 1) };
    });
    const result = new Map<string, Float32Array | Int32Array>();
    for (let s = 0; s < n; s += perRun) {
      const m = Math.min(n, s + perRun) - s;
      const input: Record<string, Ort.Tensor> = {};
      for (const { name, dims, per } of shaped) {
        input[inputs.get(name)!] = new ort!.Tensor('float32', feeds[name].subarray(s * per, (s + m) * per), [m, ...dims]);
      }
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
    const { session, inputs, outputs } = await this.session([inputName], [], false, spec);
    const out = await session.run({
      [inputs.get(inputName)!]: new ort!.Tensor('float32', x, [n, ...this.net.shapes.get(inputName)!]),
      [inputs.get(GRADIENT.target)!]: new ort!.Tensor('float32', target, [n, target.length / n]),
    });
    return { logits: out[outputs.get(GRADIENT.logits)!].data as Float32Array, dx: out[outputs.get(GRADIENT.dx)!].data as Float32Array };
  }

  async dispose() {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => undefined))?.session.release();
  }
}

export { NoTranslation };
