// Mini-batch training and batched inference for the demo BadNet.
import * as tf from '@tensorflow/tfjs-core';
import { PIXELS, H, W, type Split } from './dataset';
import { crossEntropy, forward, head, type Params } from './model';
import type { Rng } from '../prng';

export type Images = Split;

/** Rows `idx` of an image set as a float NHWC batch. */
export function batch(set: Images, idx: ArrayLike<number>): tf.Tensor4D {
  const buf = new Float32Array(idx.length * PIXELS);
  for (let i = 0; i < idx.length; i++) buf.set(set.images.subarray(idx[i] * PIXELS, (idx[i] + 1) * PIXELS), i * PIXELS);
  return tf.tensor4d(buf, [idx.length, H, W, 3]);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  r: Rng;
  /** called after every epoch with its mean loss and duration */
  onEpoch?: (epoch: number, loss: number, seconds: number) => void;
}

/** Adam on mean softmax cross-entropy; batches reshuffled from the seeded PRNG every epoch. */
export function train(p: Params, data: Images, o: TrainOptions): void {
  const vars = Object.values(p).flat();
  const order = range(0, data.count);
  // Step decay: the last third of the epochs at a tenth of the rate settles the weights.
  const decayAfter = Math.ceil((2 * o.epochs) / 3);
  let opt = tf.train.adam(o.learningRate);
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const t0 = performance.now();
    if (epoch === decayAfter + 1) {
      opt.dispose();
      opt = tf.train.adam(o.learningRate / 10);
    }
    o.r.shuffle(order);
    let sum = 0;
    let batches = 0;
    for (let start = 0; start < data.count; start += o.batchSize) {
      const idx = order.slice(start, start + o.batchSize);
      const x = batch(data, idx);
      const y = tf.tensor1d(idx.map((i) => data.labels[i]), 'int32');
      const loss = opt.minimize(() => crossEntropy(forward(p, x).logits, y), true, vars)!;
      sum += loss.dataSync()[0];
      batches++;
      tf.dispose([x, y, loss]);
    }
    o.onEpoch?.(epoch, sum / batches, (performance.now() - t0) / 1000);
  }
  opt.dispose();
}

/** pool_3 activations of every image, (count, h, w, c) flattened; computed once per set. */
export function pool3Of(p: Params, set: Images, batchSize = 256): { data: Float32Array; shape: number[] } {
  const parts: Float32Array[] = [];
  let shape: number[] = [];
  for (let start = 0; start < set.count; start += batchSize) {
    const pool3 = tf.tidy(() => forward(p, batch(set, range(start, Math.min(set.count, start + batchSize)))).pool3);
    shape = pool3.shape.slice(1);
    parts.push(pool3.dataSync() as Float32Array);
    pool3.dispose();
  }
  const per = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(set.count * per);
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return { data, shape: [set.count, ...shape] };
}

/** Predicted labels from cached pool_3 activations with some conv_3 channels pruned (mask 0). */
export function predictFromPool3(p: Params, pool3: { data: Float32Array; shape: number[] }, mask: Float32Array, batchSize = 512): Int32Array {
  const [n, h, w, c] = pool3.shape;
  const out = new Int32Array(n);
  const m = tf.tensor1d(mask);
  for (let start = 0; start < n; start += batchSize) {
    const rows = Math.min(n, start + batchSize) - start;
    const labels = tf.tidy(() => {
      const x = tf.tensor4d(pool3.data.subarray(start * h * w * c, (start + rows) * h * w * c), [rows, h, w, c]);
      return tf.argMax(head(p, tf.mul(x, m) as tf.Tensor4D), 1);
    });
    out.set(labels.dataSync() as Int32Array, start);
    labels.dispose();
  }
  m.dispose();
  return out;
}
