// The affine layers right after the cache point (Dense after Flatten, Conv2D
// before its activation) change by a small, exact amount when channels are
// pruned: only those channels' slice of their kernel is involved. Keeping their
// pre-activations per image turns a sweep step's work on them from a full
// layer into a slice, and only the layers above them are recomputed.
import * as tf from '@tensorflow/tfjs-core';
import { layerActivation, pair } from '../model/layers';
import type { Net } from '../model/net';
import { preOf } from '../model/onnx/translate';
import type { PrunePlan } from './plan';

interface FrontierLayer {
  name: string;
  kind: 'dense' | 'conv';
  /** flattened size of the pre-activation per image */
  size: number;
  outShape: number[];
  kernel: tf.Tensor;
  bias?: Float32Array;
  act: (x: tf.Tensor) => tf.Tensor;
  strides: [number, number];
  padding: 'same' | 'valid';
  dilations: [number, number];
}

const PASS_THROUGH = new Set(['Flatten', 'Dropout', 'SpatialDropout2D']);

/** Kernel slices kept for reuse: enough for the B' masks of an evaluation. */
const KEPT_SLICES = 8;

/**
 * Pre-activations are kept per row, every frontier layer's side by side
 * (`width` floats a row), in Float32Arrays (n, width): a batch's, or a data set's state.
 */
export class Frontier {
  readonly width: number;
  /** every layer's bias, laid out like a row of pre-activations */
  private readonly bias: tf.Tensor1D;
  private readonly slices = new Map<string, tf.Tensor[]>();
  /**
   * An idle row: every channel at its pruned value. Its pre-activations and label are
   * computed once, directly, as full recomputation does; shifting a row there would
   * leave float noise where the exact values may be zeros that tie every logit.
   */
  idleRow: Float32Array = new Float32Array(0);
  idleLabel = -1;

  private constructor(private readonly net: Net, private readonly plan: PrunePlan, readonly layers: FrontierLayer[]) {
    this.width = layers.reduce((a, l) => a + l.size, 0);
    // A conv bias repeats at every output position (channels innermost).
    this.bias = tf.tidy(() => tf.concat(layers.map((l) => {
      const b = l.bias ? tf.tensor1d(l.bias) : tf.zeros([l.outShape[l.outShape.length - 1]]);
      return tf.tile(b, [l.size / b.shape[0]]);
    })) as tf.Tensor1D);
  }

  /** The fetch names of the frontier layers' pre-activations (Net.compute on ONNX Runtime). */
  get preNames(): string[] {
    return this.layers.map((l) => preOf(l.name));
  }

  /** Pre-activations from the engine's own forward pass when it gives them (ONNX Runtime), else computed here from the cache rows. */
  async preactivationsFrom(outs: Map<string, Float32Array>, n: number): Promise<Float32Array> {
    if (this.net.onnx) return this.pack(this.preNames.map((p) => outs.get(p)!), n);
    return this.preactivations(outs.get(this.plan.cachePoint)!, n);
  }

  /** Rows side by side from each layer's (n, size) block. */
  private pack(blocks: Float32Array[], n: number): Float32Array {
    const out = new Float32Array(n * this.width);
    for (let r = 0; r < n; r++) {
      let at = r * this.width;
      this.layers.forEach((l, i) => {
        out.set(blocks[i].subarray(r * l.size, (r + 1) * l.size), at);
        at += l.size;
      });
    }
    return out;
  }

  /** Each layer's (n, size) block from rows side by side (the inverse of pack). */
  private unpack(pre: Float32Array, n: number): Float32Array[] {
    let at = 0;
    return this.layers.map((l) => {
      const block = new Float32Array(n * l.size);
      for (let r = 0; r < n; r++) block.set(pre.subarray(r * this.width + at, r * this.width + at + l.size), r * l.size);
      at += l.size;
      return block;
    });
  }

  /** undefined when the layers after the cache point are not all affine (then steps recompute the whole top). */
  static async find(net: Net, plan: PrunePlan): Promise<Frontier | undefined> {
    const layers: FrontierLayer[] = [];
    const [h, w, c] = plan.cacheShape;
    for (const first of net.consumersOf(plan.cachePoint)) {
      let name = first;
      let flattened = false;
      while (PASS_THROUGH.has(net.byName.get(name)!.className)) {
        if (net.byName.get(name)!.className === 'Flatten') flattened = true;
        const next = net.consumersOf(name);
        if (next.length !== 1) return undefined;
        name = next[0];
      }
      const node = net.byName.get(name)!;
      if (node.inbound.length !== 1 || layers.some((l) => l.name === name)) return undefined;
      const ws = new Map((net.model.weights.get(name) ?? []).map((x) => [x.name, x]));
      const k = ws.get('kernel');
      if (!k) return undefined;
      const cfg = node.config;
      const base = {
        name, kernel: tf.tensor(k.data, k.shape), bias: ws.get('bias')?.data,
        act: layerActivation(cfg, node).act,
        strides: pair(cfg.strides, 1), padding: (cfg.padding === 'same' ? 'same' : 'valid') as 'same' | 'valid', dilations: pair(cfg.dilation_rate, 1),
      };
      const outShape = net.shapes.get(name)!;
      if (node.className === 'Dense' && flattened && k.shape[0] === h * w * c) {
        layers.push({ ...base, kind: 'dense', size: outShape[0], outShape });
      } else if (node.className === 'Conv2D' && !flattened && (cfg.groups ?? 1) === 1) {
        layers.push({ ...base, kind: 'conv', size: outShape.reduce((a, b) => a * b, 1), outShape });
      } else {
        base.kernel.dispose();
        return undefined;
      }
    }
    if (!layers.length) return undefined;
    const f = new Frontier(net, plan, layers);
    // Computed by the engine that runs full recomputation, from the cache point (see idleRow).
    const idleImage = new Float32Array(h * w * c).map((_, i) => plan.fill[i % c]);
    const outs = net.onnx ? await net.compute({ [plan.cachePoint]: idleImage }, 1, f.preNames) : new Map([[plan.cachePoint, idleImage]]);
    f.idleRow = await f.preactivationsFrom(outs, 1);
    f.idleLabel = (await f.labels(f.idleRow, 1))[0];
    return f;
  }

  /**
   * Each layer's kernel restricted to `channels` of the cache point. A sweep step or
   * a B' mask uses the same list for every batch, so recent lists are kept.
   */
  private kernelsFor(channels: number[]): tf.Tensor[] {
    const [h, w, c] = this.plan.cacheShape;
    // The whole kernel only when `channels` is every channel in kernel order: x's channels follow `channels`.
    if (channels.length === c && channels.every((ch, i) => ch === i)) return this.layers.map((l) => l.kernel);
    const key = channels.join();
    let ks = this.slices.get(key);
    if (!ks) {
      ks = this.layers.map((l) => tf.keep(l.kind === 'conv'
        ? tf.gather(l.kernel, channels, 2)
        : tf.gather(l.kernel, Array.from({ length: h * w * channels.length }, (_, i) => Math.floor(i / channels.length) * c + channels[i % channels.length]))));
      if (this.slices.size >= KEPT_SLICES) {
        const [oldest, old] = this.slices.entries().next().value!;
        tf.dispose(old);
        this.slices.delete(oldest);
      }
      this.slices.set(key, ks);
    }
    return ks;
  }

  /** Each layer's kernel applied to `x` (n, h, w, channels.length), which holds only `channels`: (n, width), no bias. */
  private apply(x: tf.Tensor4D, channels: number[]): tf.Tensor2D {
    const n = x.shape[0];
    return tf.tidy(() => {
      const kernels = this.kernelsFor(channels);
      return tf.concat(this.layers.map((l, i) => l.kind === 'conv'
        ? tf.reshape(tf.conv2d(x, kernels[i] as tf.Tensor4D, l.strides, l.padding, 'NHWC', l.dilations), [n, l.size])
        : tf.matMul(tf.reshape(x, [n, -1]), kernels[i] as tf.Tensor2D)), 1) as tf.Tensor2D;
    });
  }

  /** Pre-activations of every frontier layer for cache rows `x` (n, h, w, c), with tfjs. */
  private preactivations(x: Float32Array, n: number): Float32Array {
    const all = Array.from({ length: this.plan.cacheShape[2] }, (_, i) => i);
    return this.withTensor(x, [n, ...this.plan.cacheShape], (t) => tf.add(this.apply(t as tf.Tensor4D, all), this.bias));
  }

  /**
   * Pre-activations once `channels` move to their pruned value, from `pre` (n, width):
   * `change` (n, h, w, channels.length) holds each such channel's value minus
   * its pruned value (negated to move a channel back). Exact: the layers are affine.
   */
  shift(pre: Float32Array, n: number, change: Float32Array, channels: number[]): Float32Array {
    const [h, w] = this.plan.cacheShape;
    return this.withTensor(change, [n, h, w, channels.length], (t) => tf.sub(tf.tensor2d(pre, [n, this.width]), this.apply(t as tf.Tensor4D, channels)));
  }

  private withTensor(data: Float32Array, shape: number[], fn: (t: tf.Tensor) => tf.Tensor): Float32Array {
    const out = tf.tidy(() => fn(tf.tensor(data, shape)));
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  }

  /** Top-1 of the network for `n` rows whose frontier pre-activations are `pre` (n, width). */
  async labels(pre: Float32Array, n: number): Promise<Int32Array> {
    const output = this.net.outputName;
    if (this.net.onnx) {
      const blocks = this.unpack(pre, n);
      const feeds = Object.fromEntries(this.preNames.map((p, i) => [p, blocks[i]]));
      return this.net.onnx.labels(feeds, n, output);
    }
    let at = 0;
    const top = tf.tidy(() => {
      const t = tf.tensor2d(pre, [n, this.width]);
      const given = new Map<string, tf.Tensor>();
      for (const l of this.layers) {
        given.set(l.name, l.act(tf.reshape(tf.slice(t, [0, at], [n, l.size]), [n, ...l.outShape])));
        at += l.size;
      }
      return tf.argMax(this.net.run(undefined, [output], given).get(output)!, -1);
    });
    const out = Int32Array.from(top.dataSync() as Int32Array);
    top.dispose();
    return out;
  }

  /** Rows `rows` of a set's pre-activation state (rows.length, width). */
  rowsOf(state: Float32Array, rows: ArrayLike<number>): Float32Array {
    const wd = this.width;
    const buf = new Float32Array(rows.length * wd);
    for (let r = 0; r < rows.length; r++) buf.set(state.subarray(rows[r] * wd, (rows[r] + 1) * wd), r * wd);
    return buf;
  }

  /** Writes `pre` (rows.length, width) back into rows `rows` of a set's state. */
  store(state: Float32Array, rows: ArrayLike<number>, pre: Float32Array) {
    const wd = this.width;
    for (let r = 0; r < rows.length; r++) state.set(pre.subarray(r * wd, (r + 1) * wd), rows[r] * wd);
  }

  dispose() {
    tf.dispose([...this.layers.map((l) => l.kernel), this.bias, ...[...this.slices.values()].flat()]);
    this.slices.clear();
  }
}
