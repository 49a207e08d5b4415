// Trigger reconstruction for one label, as Neural Cleanse does it (Wang et
// al., S&P 2019): find the smallest mask m (H, W) and a pattern p (H, W, C)
// such that (1 - m)·x + m·p turns clean images x into the label. A backdoor's
// target needs a much smaller mask than any other label.
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../errors';
import type { Trigger } from '../data/trigger';
import type { InputGradient } from './backprop';

export interface ReconstructSettings {
  /** optimisation steps (each a mini-batch forward and backward pass) */
  steps: number;
  /** images per step */
  batch: number;
  seed: number;
  /** the data's value range: the pattern stays inside it */
  low: number;
  high: number;
}

/**
 * Neural Cleanse's published settings: Adam with learning rate 0.1 and betas
 * (0.5, 0.9); a trigger "works" at an attack rate of 0.99; the L1 weight λ
 * starts at 1e-3 once the trigger first works and is then multiplied by 1.5
 * after `PATIENCE` working steps in a row, divided by 1.5^1.5 after as many
 * failing ones (NC counts epochs; our epochs are single mini-batches).
 */
export const NC = { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-7, initCost: 1e-3, attackThreshold: 0.99, costUp: 1.5, costDown: 1.5 ** 1.5, patience: 5 };

export interface Reconstruction {
  label: number;
  trigger: Trigger;
  /** sum of the mask */
  maskL1: number;
  /** attack rate on the step's images when this trigger was kept */
  optimisedAttackRate: number;
  /** the images the held-out attack rate was measured on (not of this label) */
  heldOut: number;
  heldOutAttackRate: number;
}

/** Mulberry32: a small seeded generator, enough to pick mini-batches. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mask and pattern from the unconstrained parameters (NC's tanh parametrisation). */
export function maskAndPattern(a: tf.Tensor, b: tf.Tensor, low: number, high: number): { m: tf.Tensor; p: tf.Tensor } {
  const m = tf.div(tf.add(tf.tanh(a), 1), 2);
  const p = tf.add(low, tf.mul(tf.div(tf.add(tf.tanh(b), 1), 2), high - low));
  return { m, p };
}

/** (1 - m)·x + m·p for a batch x (N, H, W, C), m (H, W, 1), p (H, W, C). */
export function stampTensor(x: tf.Tensor, m: tf.Tensor, p: tf.Tensor): tf.Tensor4D {
  return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, p)) as tf.Tensor4D;
}

/** From dL/d(stamped) to dL/dm (H, W) and dL/dp (H, W, C): d stamped / d m = p - x, d stamped / d p = m, summed over images (and channels, for m). */
export function maskPatternGrads(dx: tf.Tensor, x: tf.Tensor, m: tf.Tensor, p: tf.Tensor): { gm: tf.Tensor; gp: tf.Tensor } {
  return { gm: tf.sum(tf.mul(dx, tf.sub(p, x)), [0, 3], false), gp: tf.sum(tf.mul(dx, m), 0) };
}

/** Through the tanh parametrisation: from dL/dm (H, W) and dL/dp (H, W, C) to dL/da (H, W, 1) and dL/db (H, W, C). */
export function throughTanh(gm: tf.Tensor, gp: tf.Tensor, a: tf.Tensor, b: tf.Tensor, low: number, high: number): { ga: tf.Tensor; gb: tf.Tensor } {
  const ta = tf.tanh(a), tb = tf.tanh(b);
  return {
    ga: tf.mul(tf.expandDims(gm, 2), tf.div(tf.sub(1, tf.square(ta)), 2)),
    gb: tf.mul(gp, tf.mul(tf.div(tf.sub(1, tf.square(tb)), 2), high - low)),
  };
}

/** The kept parameters as a trigger read back, with m and p for measuring it (the caller disposes them). */
export async function keptTrigger(a: tf.Tensor, b: tf.Tensor, low: number, high: number): Promise<{ trigger: Trigger; maskL1: number; m: tf.Tensor; p: tf.Tensor }> {
  const [h, w, c] = b.shape;
  const { m, p } = tf.tidy(() => maskAndPattern(a, b, low, high));
  const mask = Float32Array.from(await m.data());
  const pattern = Float32Array.from(await p.data());
  return { trigger: { height: h, width: w, channels: c, mask, pattern }, maskL1: mask.reduce((x, y) => x + y, 0), m, p };
}

/** The labels a batch of images (N, H, W, C) takes once stamped, `batch` images at a time. */
export async function stampedPredictions(top: InputGradient, images: tf.Tensor4D, m: tf.Tensor, p: tf.Tensor, batch = 128): Promise<Int32Array> {
  const n = images.shape[0];
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const pred = tf.tidy(() => tf.argMax(top.logits(stampTensor(tf.slice(images, s, e - s), m, p)), 1));
    out.set(await pred.data() as Int32Array, s);
    pred.dispose();
  }
  return out;
}

/**
 * The loss NC minimises, mean cross-entropy to `label` + λ·|m|₁, and its
 * gradient with respect to the mask and pattern parameters a (H, W, 1), b (H, W, C).
 */
export async function lossAndGrads(top: InputGradient, x: tf.Tensor4D, label: number, a: tf.Tensor, b: tf.Tensor, cost: number, low: number, high: number) {
  const { m, p, stamped } = tf.tidy(() => {
    const { m, p } = maskAndPattern(a, b, low, high);
    return { m, p, stamped: stampTensor(x, m, p) };
  });
  const { logits, dx } = await top.gradientOf(stamped, { label });
  try {
    return tf.tidy(() => {
      const target = tf.oneHot(tf.fill([x.shape[0]], label, 'int32') as tf.Tensor1D, logits.shape[1]);
      const ce = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), target), 1)));
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), label), 'float32'));
      const { gm, gp } = maskPatternGrads(dx, x, m, p);
      const { ga, gb } = throughTanh(tf.add(gm, cost), gp, a, b, low, high);
      const l1 = tf.sum(m);
      const loss = tf.add(ce, tf.mul(l1, cost));
      return { loss: loss as tf.Scalar, ce: ce as tf.Scalar, l1: l1 as tf.Scalar, hits: hits as tf.Scalar, ga, gb };
    });
  } finally {
    tf.dispose([m, p, stamped, logits, dx]);
  }
}

export class Adam {
  private m: tf.Tensor;
  private v: tf.Tensor;
  private t = 0;
  constructor(shape: number[]) {
    this.m = tf.zeros(shape);
    this.v = tf.zeros(shape);
  }
  /** Returns the updated parameter; disposes the old one. */
  step(param: tf.Tensor, grad: tf.Tensor): tf.Tensor {
    this.t++;
    const { lr, beta1, beta2, eps } = NC;
    const t = this.t;
    const [m, v, next] = tf.tidy(() => {
      const m = tf.add(tf.mul(this.m, beta1), tf.mul(grad, 1 - beta1));
      const v = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(grad), 1 - beta2));
      const mHat = tf.div(m, 1 - beta1 ** t);
      const vHat = tf.div(v, 1 - beta2 ** t);
      return [m, v, tf.sub(param, tf.div(tf.mul(mHat, lr), tf.add(tf.sqrt(vHat), eps)))];
    });
    tf.dispose([this.m, this.v, param]);
    this.m = m;
    this.v = v;
    return next;
  }
  dispose() {
    tf.dispose([this.m, this.v]);
  }
}

export interface ReconstructInput {
  top: InputGradient;
  /** images to optimise on (N, H, W, C) */
  images: tf.Tensor4D;
  /** held-out images to measure the trigger on, and their labels (or predictions) */
  heldOut: tf.Tensor4D;
  heldOutLabels: Int32Array;
  signal?: AbortSignal;
}

/** Mini-batches of `batch` indices (at most n) from a seeded shuffle of 0..n-1, reshuffled when used up. */
export function miniBatches(n: number, batch: number, random: () => number): () => number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const size = Math.min(batch, n);
  let pos = n;
  return () => {
    if (pos + size > n) {
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      pos = 0;
    }
    pos += size;
    return order.slice(pos - size, pos);
  };
}

export async function reconstruct(input: ReconstructInput, label: number, s: ReconstructSettings): Promise<Reconstruction> {
  const { top, images } = input;
  const [n, h, w, c] = images.shape;
  const random = rng(s.seed * 7919 + label);
  // NC starts from a random mask; the pattern starts random inside the value range.
  let a: tf.Tensor = tf.tensor(Float32Array.from({ length: h * w }, () => Math.atanh(0.8 * random() - 0.4)), [h, w, 1]);
  let b: tf.Tensor = tf.tensor(Float32Array.from({ length: h * w * c }, () => Math.atanh(1.8 * random() - 0.9)), [h, w, c]);
  const adamA = new Adam([h, w, 1]);
  const adamB = new Adam([h, w, c]);
  let cost = 0;
  let up = 0, down = 0, working = 0;
  let best: { l1: number; rate: number; a: tf.Tensor; b: tf.Tensor } | undefined;
  let last = { l1: Infinity, rate: 0 };
  const nextBatch = miniBatches(n, s.batch, random);
  try {
    for (let step = 0; step < s.steps; step++) {
      // Let the event loop run (a cancel, or another shard's reply arriving in this process).
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (input.signal?.aborted) throw new CancelledError();
      const idx = tf.tensor1d(nextBatch(), 'int32');
      const x = tf.gather(images, idx) as tf.Tensor4D;
      const r = await lossAndGrads(top, x, label, a, b, cost, s.low, s.high);
      tf.dispose([idx, x]);
      const [l1v, hitsv] = await Promise.all([r.l1.data(), r.hits.data()]);
      const l1 = l1v[0], rate = hitsv[0] / Math.min(s.batch, n);
      // Keep the smallest mask that works (measured before this step's update).
      if (rate >= NC.attackThreshold && (!best || l1 < best.l1)) {
        if (best) tf.dispose([best.a, best.b]);
        best = { l1, rate, a: tf.clone(a), b: tf.clone(b) };
      }
      last = { l1, rate };
      a = adamA.step(a, r.ga);
      b = adamB.step(b, r.gb);
      tf.dispose([r.loss, r.ce, r.l1, r.hits, r.ga, r.gb]);
      // λ schedule (NC): off until the trigger works, then up while it works, down while it fails.
      if (rate >= NC.attackThreshold) {
        up++; down = 0; working++;
      } else {
        down++; up = 0; working = 0;
      }
      if (cost === 0) {
        if (working >= NC.patience) { cost = NC.initCost; up = 0; }
      } else if (up >= NC.patience) {
        cost *= NC.costUp; up = 0;
      } else if (down >= NC.patience) {
        cost /= NC.costDown; down = 0;
      }
    }
    const { trigger, maskL1, m, p } = await keptTrigger(best?.a ?? a, best?.b ?? b, s.low, s.high);
    const heldOut = await attackRate(top, input.heldOut, input.heldOutLabels, m, p, label);
    tf.dispose([m, p]);
    return { label, trigger, maskL1, optimisedAttackRate: best?.rate ?? last.rate, ...heldOut };
  } finally {
    tf.dispose([a, b]);
    if (best) tf.dispose([best.a, best.b]);
    adamA.dispose();
    adamB.dispose();
  }
}

/** Share of the images not of `label` that the trigger turns into `label`. */
export async function attackRate(top: InputGradient, images: tf.Tensor4D, labels: Int32Array, m: tf.Tensor, p: tf.Tensor, label: number): Promise<{ heldOut: number; heldOutAttackRate: number }> {
  const pred = await stampedPredictions(top, images, m, p);
  let count = 0, hits = 0;
  pred.forEach((v, i) => {
    if (labels[i] === label) return;
    count++;
    if (v === label) hits++;
  });
  return { heldOut: count, heldOutAttackRate: count ? hits / count : 0 };
}
