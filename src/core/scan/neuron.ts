// ABS's second step (Liu et al., CCS 2019): for a channel that stimulation
// singled out, look for a small input trigger that excites it, then see what
// the trigger does to the labels. Only the channel's activation is optimised,
// never a label, so a trigger that still turns held-out clean images into one
// label shows that the channel is reachable from the input and carries a
// backdoor. Stimulation alone cannot tell that: any channel driven far enough
// lifts some label, reachable or not.
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../errors';
import type { Trigger } from '../data/trigger';
import type { InputGradient } from './backprop';
import { Adam, keptTrigger, maskAndPattern, maskPatternGrads, miniBatches, rng, stampedPredictions, stampTensor, throughTanh, type ReconstructSettings } from './trigger';

/**
 * ABS bounds a pixel trigger's mask to 6% of the input (its CIFAR setting: 64
 * of 32×32 pixels): large enough for a patch or a pair of glasses, too small
 * to paint a face of another person.
 */
export const MAX_TRIGGER_AREA = 0.06;

/**
 * Steps and images per step. Steps count more than images: a channel's mean is a steadier
 * target than a label's cross-entropy (ABS samples a few images per label), and on the lab
 * network 200 steps of 4 cost about what 100 of 8 do.
 */
export const REVERSAL = { steps: 200, batch: 4 };

export interface ChannelReversal {
  channel: number;
  trigger: Trigger;
  maskL1: number;
  /** the channel's mean activation over its map on the stamped optimisation images */
  activation: number;
  /** its mean on the clean optimisation images */
  cleanActivation: number;
  /** the label the stamped held-out images turn into most (counting only images not already of it) */
  label: number;
  /** held-out images not of `label` */
  heldOut: number;
  heldOutAttackRate: number;
}

export interface ReverseInput {
  /** the network up to the stimulated conv, the gradient passed straight through its activation */
  inner: InputGradient;
  /** channels of the inner head's output */
  channels: number;
  /** each channel's mean on the clean optimisation images (channelMeans) */
  cleanMeans: Float32Array;
  /** the whole network, for the labels */
  top: InputGradient;
  images: tf.Tensor4D;
  heldOut: tf.Tensor4D;
  heldOutLabels: Int32Array;
  signal?: AbortSignal;
}

export async function reverseChannel(input: ReverseInput, channel: number, settings: ReconstructSettings): Promise<ChannelReversal> {
  const s = { ...settings, ...REVERSAL };
  const { inner, images } = input;
  const [n, h, w, c] = images.shape;
  const bound = MAX_TRIGGER_AREA * h * w;
  // positions of the channel's map: the inner head's output is (positions × channels), flat
  const positions = inner.width / input.channels;
  const random = rng(s.seed * 104729 + channel);
  // Start inside the bound (m ≈ 0.05 everywhere), the pattern random inside the value range.
  let a: tf.Tensor = tf.tensor(Float32Array.from({ length: h * w }, () => Math.atanh(0.8 * random() - 0.4) - 1.5), [h, w, 1]);
  let b: tf.Tensor = tf.tensor(Float32Array.from({ length: h * w * c }, () => Math.atanh(1.8 * random() - 0.9)), [h, w, c]);
  const adamA = new Adam([h, w, 1]);
  const adamB = new Adam([h, w, c]);
  const nextBatch = miniBatches(n, s.batch, random);
  let best: { activation: number; l1: number; a: tf.Tensor; b: tf.Tensor } | undefined;
  try {
    for (let step = 0; step < s.steps; step++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (input.signal?.aborted) throw new CancelledError();
      const idx = nextBatch();
      const { x, m, p, stamped, seed } = tf.tidy(() => {
        const x = tf.gather(images, idx) as tf.Tensor4D;
        const { m, p } = maskAndPattern(a, b, s.low, s.high);
        // loss = -(the channel's mean over images and positions, before its activation); the head's output comes
        // flat, channels last.
        const flatOne = tf.div(tf.oneHot(tf.fill([positions], channel, 'int32') as tf.Tensor1D, input.channels), -(idx.length * positions));
        const seed = tf.tile(tf.reshape(flatOne, [1, positions * input.channels]), [idx.length, 1]) as tf.Tensor2D;
        return { x, m, p, stamped: stampTensor(x, m, p), seed };
      });
      const { logits: flat, dx } = await inner.gradientOf(stamped, { given: seed });
      const r = tf.tidy(() => {
        const activation = tf.mean(tf.gather(tf.reshape(flat, [-1, input.channels]), channel, 1));
        const l1 = tf.sum(m);
        // A mask over the bound is pushed back below it. Adam scales each step to the gradient's size, so the
        // push need only dominate the channel's pull: 50× its mean.
        const { gm: pull, gp } = maskPatternGrads(dx, x, m, p);
        const push = tf.mul(tf.cast(tf.greater(l1, bound), 'float32'), tf.mul(tf.mean(tf.abs(pull)), 50));
        const { ga, gb } = throughTanh(tf.add(pull, push), gp, a, b, s.low, s.high);
        return { activation, l1, ga, gb };
      });
      tf.dispose([x, m, p, stamped, seed, flat, dx]);
      const [act, l1] = [(await r.activation.data())[0], (await r.l1.data())[0]];
      // Keep the most exciting trigger inside the bound (measured before this step's update).
      if (l1 <= bound && (!best || act > best.activation)) {
        if (best) tf.dispose([best.a, best.b]);
        best = { activation: act, l1, a: tf.clone(a), b: tf.clone(b) };
      }
      a = adamA.step(a, r.ga);
      b = adamB.step(b, r.gb);
      tf.dispose([r.activation, r.l1, r.ga, r.gb]);
    }
    const { trigger, maskL1, m, p } = await keptTrigger(best?.a ?? a, best?.b ?? b, s.low, s.high);
    const served = servedLabel(await stampedPredictions(input.top, input.heldOut, m, p), input.heldOutLabels);
    tf.dispose([m, p]);
    return { channel, trigger, maskL1, activation: best?.activation ?? 0, cleanActivation: input.cleanMeans[channel], ...served };
  } finally {
    tf.dispose([a, b]);
    if (best) tf.dispose([best.a, best.b]);
    adamA.dispose();
    adamB.dispose();
  }
}

/** The label the stamped held-out images turn into most often, and the share of those not of it that do. */
function servedLabel(pred: Int32Array, labels: Int32Array): { label: number; heldOut: number; heldOutAttackRate: number } {
  const count = new Map<number, number>();
  for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
  const others = (label: number) => labels.length - (count.get(label) ?? 0);
  const hits = new Map<number, number>();
  pred.forEach((l, i) => {
    if (labels[i] !== l) hits.set(l, (hits.get(l) ?? 0) + 1);
  });
  // No image changed: the label the first of them already has, at 0.
  let best = { label: pred[0] ?? 0, heldOut: others(pred[0] ?? 0), heldOutAttackRate: 0 };
  for (const [label, k] of [...hits].sort((x, y) => x[0] - y[0])) {
    const rate = others(label) ? k / others(label) : 0;
    if (rate > best.heldOutAttackRate) best = { label, heldOut: others(label), heldOutAttackRate: rate };
  }
  return best;
}

/** Each channel's mean over its map (after its activation) on the clean images: once per shard, not per channel. */
export async function channelMeans(inner: InputGradient, images: tf.Tensor4D, channels: number): Promise<Float32Array> {
  const t = tf.tidy(() => tf.mean(tf.reshape(inner.logits(images), [-1, channels]), 0));
  const v = Float32Array.from(await t.data());
  t.dispose();
  return v;
}
