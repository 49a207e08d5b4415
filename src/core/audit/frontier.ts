// The affine layers right after the cache point (Dense after Flatten, Conv2D
// before its activation) change by a small, exact amount when one channel is
// pruned: only that channel's slice of their kernel is involved. Keeping their
// pre-activations per image turns each sweep step's work on them from a full
// layer into a slice, and only the layers above them are recomputed.
import * as tf from '@tensorflow/tfjs-core';
import { activationFn, activationName, pair } from '../model/layers';
import type { Net } from '../model/net';
import type { PrunePlan } from './plan';

interface FrontierLayer {
  name: string;
  kind: 'dense' | 'conv';
  /** flattened size of the pre-activation per image */
  size: number;
  outShape: number[];
  kernel: tf.Tensor;
  bias?: tf.Tensor;
  act: (x: tf.Tensor) => tf.Tensor;
  strides: [number, number];
  padding: 'same' | 'valid';
  dilations: [number, number];
  /** per pruned channel: the kernel slice that channel feeds */
  slices: Map<number, tf.Tensor>;
}

const PASS_THROUGH = new Set(['Flatten', 'Dropout', 'SpatialDropout2D']);

export class Frontier {
  private constructor(private readonly net: Net, private readonly plan: PrunePlan, readonly layers: FrontierLayer[]) {}

  /** undefined when the layers after the cache point are not all affine (then steps recompute the whole top). */
  static find(net: Net, plan: PrunePlan): Frontier | undefined {
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
        name, kernel: tf.tensor(k.data, k.shape), bias: ws.get('bias') && tf.tensor(ws.get('bias')!.data, ws.get('bias')!.shape),
        act: activationFn(activationName(cfg.activation), name), slices: new Map<number, tf.Tensor>(),
        strides: pair(cfg.strides, 1), padding: (cfg.padding === 'same' ? 'same' : 'valid') as 'same' | 'valid', dilations: pair(cfg.dilation_rate, 1),
      };
      const outShape = net.shapes.get(name)!;
      if (node.className === 'Dense' && flattened && k.shape[0] === h * w * c) {
        layers.push({ ...base, kind: 'dense', size: outShape[0], outShape });
      } else if (node.className === 'Conv2D' && !flattened && (cfg.groups ?? 1) === 1) {
        layers.push({ ...base, kind: 'conv', size: outShape.reduce((a, b) => a * b, 1), outShape });
      } else {
        base.kernel.dispose();
        base.bias?.dispose();
        return undefined;
      }
    }
    return layers.length ? new Frontier(net, plan, layers) : undefined;
  }

  private slice(l: FrontierLayer, channel: number): tf.Tensor {
    let s = l.slices.get(channel);
    if (!s) {
      const [h, w, c] = this.plan.cacheShape;
      // Kept: the first request comes from inside a tidy() that would free it.
      s = tf.keep(l.kind === 'conv'
        ? tf.slice(l.kernel, [0, 0, channel, 0], [-1, -1, 1, -1])
        : tf.gather(l.kernel, Array.from({ length: h * w }, (_, p) => p * c + channel)));
      l.slices.set(channel, s);
    }
    return s;
  }

  /** Pre-activations of every frontier layer for cache rows `x` (n, h, w, c). */
  preactivations(x: tf.Tensor4D): Float32Array[] {
    return this.layers.map((l) => {
      const y = tf.tidy(() => {
        const z = l.kind === 'conv'
          ? tf.conv2d(x, l.kernel as tf.Tensor4D, l.strides, l.padding, 'NHWC', l.dilations)
          : tf.matMul(tf.reshape(x, [x.shape[0], -1]), l.kernel as tf.Tensor2D);
        return l.bias ? tf.add(z, l.bias) : z;
      });
      const out = y.dataSync() as Float32Array;
      y.dispose();
      return Float32Array.from(out);
    });
  }

  /**
   * Pre-activations with every channel outside `kept` at its pruned value,
   * computed from the kept channels alone: cheap when most are pruned.
   * Only valid when the pruned value is 0 (a ReLU-like activation); see usable().
   */
  preactivationsKept(x: tf.Tensor4D, kept: number[]): Float32Array[] {
    const [h, w, c] = this.plan.cacheShape;
    return this.layers.map((l) => {
      const y = tf.tidy(() => {
        let z: tf.Tensor;
        if (!kept.length) z = tf.zeros([x.shape[0], ...l.outShape]);
        else {
          const xk = tf.gather(x, kept, 3);
          z = l.kind === 'conv'
            ? tf.conv2d(xk as tf.Tensor4D, tf.gather(l.kernel, kept, 2) as tf.Tensor4D, l.strides, l.padding, 'NHWC', l.dilations)
            : tf.matMul(tf.reshape(xk, [x.shape[0], -1]), tf.gather(l.kernel, Array.from({ length: h * w * kept.length }, (_, i) => Math.floor(i / kept.length) * c + kept[i % kept.length])) as tf.Tensor2D);
        }
        return l.bias ? tf.add(z, l.bias) : z;
      });
      const out = Float32Array.from(y.dataSync() as Float32Array);
      y.dispose();
      return out;
    });
  }

  /** Masks can use preactivationsKept when every pruned value is exactly 0. */
  zeroFill(): boolean {
    return this.plan.fill.every((v) => v === 0);
  }

  /**
   * Subtracts channel `channel`'s change (its values minus the pruned value)
   * from the pre-activations of rows `delta` describes: delta is (n, h, w, 1).
   */
  update(pre: Float32Array[], rows: ArrayLike<number>, delta: tf.Tensor4D, channel: number) {
    const n = rows.length;
    this.layers.forEach((l, i) => {
      const d = tf.tidy(() => (l.kind === 'conv'
        ? tf.conv2d(delta, this.slice(l, channel) as tf.Tensor4D, l.strides, l.padding, 'NHWC', l.dilations)
        : tf.matMul(tf.reshape(delta, [n, -1]), this.slice(l, channel) as tf.Tensor2D)));
      const dv = d.dataSync();
      d.dispose();
      const state = pre[i];
      for (let r = 0; r < n; r++) {
        const base = rows[r] * l.size, from = r * l.size;
        for (let j = 0; j < l.size; j++) state[base + j] -= dv[from + j];
      }
    });
  }

  /** Top-1 of the network for rows whose frontier pre-activations are `pre`. */
  predict(pre: Float32Array[], rows: ArrayLike<number>): Int32Array {
    const n = rows.length;
    const given = new Map<string, tf.Tensor>();
    this.layers.forEach((l, i) => {
      const buf = new Float32Array(n * l.size);
      for (let r = 0; r < n; r++) buf.set(pre[i].subarray(rows[r] * l.size, (rows[r] + 1) * l.size), r * l.size);
      const z = tf.tensor(buf, [n, ...l.outShape]);
      const a = tf.tidy(() => l.act(z));
      if (a !== z) z.dispose(); // a linear activation hands back z itself
      given.set(l.name, a);
    });
    const top = tf.tidy(() => tf.argMax(this.net.run(undefined, [this.net.outputName], given).get(this.net.outputName)!, -1));
    const out = Int32Array.from(top.dataSync() as Int32Array);
    tf.dispose([top, ...given.values()]);
    return out;
  }

  dispose() {
    for (const l of this.layers) tf.dispose([l.kernel, ...(l.bias ? [l.bias] : []), ...l.slices.values()]);
  }
}
