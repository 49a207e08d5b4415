// Trigger reconstruction for one label, as Neural Cleanse does it (Wang et
// al., S&P 2019): find the smallest mask m (H, W) and a pattern p (H, W, C)
// such that (1 - m)·x + m·p turns clean images x into the label. A backdoor's
// target needs a much smaller mask than any other label.
import { CancelledError } from '../errors';
import { stamp, type Trigger } from '../data/trigger';
import { argMaxRows } from '../model/outputs';
import type { InputGradient } from './backprop';
import { randomStart, TriggerParams } from './params';

/** Images as the scan holds them: `count` images (H, W, C), flat and channels-last. */
export interface ImageSet {
  pixels: Float32Array;
  count: number;
}

/** The images of `set` at `indices`, as one array. */
export function pick(set: ImageSet, indices: number[]): Float32Array {
  const per = set.pixels.length / set.count;
  const out = new Float32Array(indices.length * per);
  indices.forEach((i, k) => out.set(set.pixels.subarray(i * per, (i + 1) * per), k * per));
  return out;
}

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
 * Neural Cleanse's published settings (Adam's are in params.ts): a trigger
 * "works" at an attack rate of 0.99; the L1 weight λ starts at 1e-3 once the
 * trigger first works and is then multiplied by 1.5 after `patience` working
 * steps in a row, divided by 1.5^1.5 after as many failing ones (NC counts
 * epochs; our epochs are single mini-batches).
 */
export const NC = { initCost: 1e-3, attackThreshold: 0.99, costUp: 1.5, costDown: 1.5 ** 1.5, patience: 5 };

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

/** The labels `n` images x (flat) take, by their logits. */
export async function predictions(top: InputGradient, x: Float32Array, n: number): Promise<Int32Array> {
  return argMaxRows(await top.forward(x, n), n);
}

/**
 * The loss NC minimises on `n` images x, mean cross-entropy to `label` + λ·|m|₁, and its gradient with respect
 * to the mask and pattern (dL/dm without λ, which the step adds); `hits` counts the stamped images taken as `label`.
 */
export async function lossAndGrads(top: InputGradient, params: TriggerParams, x: Float32Array, n: number, label: number, cost: number) {
  const { logits, dx } = await top.gradientOf(params.stamp(x, n), n, { label });
  const k = logits.length / n;
  const taken = argMaxRows(logits, n);
  let ce = 0, hits = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    const max = row[taken[i]];
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    ce += Math.log(sum) + max - row[label];
    if (taken[i] === label) hits++;
  }
  ce /= n;
  const l1 = params.l1();
  const { gm, gp } = params.maskPatternGrads(dx, x, n);
  return { loss: ce + cost * l1, ce, l1, hits, gm, gp };
}

export interface ReconstructInput {
  top: InputGradient;
  /** images to optimise on */
  images: ImageSet;
  /** held-out images to measure the trigger on, and their labels (or predictions) */
  heldOut: ImageSet;
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
  const n = images.count;
  const random = rng(s.seed * 7919 + label);
  // NC starts from a random mask; the pattern starts random inside the value range.
  const start = randomStart(top.inputShape, random);
  const params = new TriggerParams(top.inputShape, s.low, s.high, start.a, start.b);
  let cost = 0;
  let up = 0, down = 0, working = 0;
  let best: { l1: number; rate: number; trigger: Trigger } | undefined;
  let last = { l1: Infinity, rate: 0 };
  const nextBatch = miniBatches(n, s.batch, random);
  for (let step = 0; step < s.steps; step++) {
    // Let the event loop run (a cancel, or another shard's reply arriving in this process).
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (input.signal?.aborted) throw new CancelledError();
    const idx = nextBatch();
    const r = await lossAndGrads(top, params, pick(images, idx), idx.length, label, cost);
    const rate = r.hits / idx.length;
    // Keep the smallest mask that works (measured before this step's update).
    if (rate >= NC.attackThreshold && (!best || r.l1 < best.l1)) best = { l1: r.l1, rate, trigger: params.trigger() };
    last = { l1: r.l1, rate };
    params.step(r.gm, r.gp, cost);
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
  const trigger = best?.trigger ?? params.trigger();
  const heldOut = await attackRate(top, input.heldOut, input.heldOutLabels, trigger, label);
  return { label, trigger, maskL1: l1Of(trigger), optimisedAttackRate: best?.rate ?? last.rate, ...heldOut };
}

export const l1Of = (t: Trigger) => t.mask.reduce((x, y) => x + y, 0);

/** The labels the held-out images take once `trigger` is stamped on them. */
export function stampedPredictions(top: InputGradient, images: ImageSet, trigger: Trigger): Promise<Int32Array> {
  return predictions(top, stamp(Float32Array.from(images.pixels), images.count, trigger), images.count);
}

/** Share of the images not of `label` that the trigger turns into `label`. */
export async function attackRate(top: InputGradient, images: ImageSet, labels: Int32Array, trigger: Trigger, label: number): Promise<{ heldOut: number; heldOutAttackRate: number }> {
  const pred = await stampedPredictions(top, images, trigger);
  let count = 0, hits = 0;
  pred.forEach((v, i) => {
    if (labels[i] === label) return;
    count++;
    if (v === label) hits++;
  });
  return { heldOut: count, heldOutAttackRate: count ? hits / count : 0 };
}
