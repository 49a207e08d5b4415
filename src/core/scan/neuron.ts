// ABS's second step (Liu et al., CCS 2019): for a channel that stimulation
// singled out, look for a small input trigger that excites it, then see what
// the trigger does to the labels. Only the channel's activation is optimised,
// never a label, so a trigger that still turns held-out clean images into one
// label shows that the channel is reachable from the input and carries a
// backdoor. Stimulation alone cannot tell that: any channel driven far enough
// lifts some label, reachable or not.
import { CancelledError } from '../errors';
import type { Trigger } from '../data/trigger';
import type { InputGradient } from './backprop';
import { randomStart, TriggerParams } from './params';
import { l1Of, miniBatches, pick, rng, stampedPredictions, type ImageSet, type ReconstructSettings } from './trigger';

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
  images: ImageSet;
  heldOut: ImageSet;
  heldOutLabels: Int32Array;
  signal?: AbortSignal;
}

export async function reverseChannel(input: ReverseInput, channel: number, settings: ReconstructSettings): Promise<ChannelReversal> {
  const s = { ...settings, ...REVERSAL };
  const { inner, images } = input;
  const [h, w] = inner.inputShape;
  const bound = MAX_TRIGGER_AREA * h * w;
  // positions of the channel's map: the inner head's output is (positions × channels), flat
  const positions = inner.width / input.channels;
  const random = rng(s.seed * 104729 + channel);
  // Start inside the bound (m ≈ 0.05 everywhere), the pattern random inside the value range.
  const start = randomStart(inner.inputShape, random, -1.5);
  const params = new TriggerParams(inner.inputShape, s.low, s.high, start.a, start.b);
  const nextBatch = miniBatches(images.count, s.batch, random);
  let best: { activation: number; trigger: Trigger } | undefined;
  for (let step = 0; step < s.steps; step++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (input.signal?.aborted) throw new CancelledError();
    const idx = nextBatch();
    const n = idx.length;
    const x = pick(images, idx);
    // loss = -(the channel's mean over images and positions, before its activation); the head's output comes
    // flat, channels last.
    const seed = new Float32Array(n * inner.width);
    for (let i = channel; i < seed.length; i += input.channels) seed[i] = -1 / (n * positions);
    const { logits: flat, dx } = await inner.gradientOf(params.stamp(x, n), n, { given: seed });
    let activation = 0;
    for (let i = channel; i < flat.length; i += input.channels) activation += flat[i];
    activation /= n * positions;
    const l1 = params.l1();
    // Keep the most exciting trigger inside the bound (measured before this step's update).
    if (l1 <= bound && (!best || activation > best.activation)) best = { activation, trigger: params.trigger() };
    // A mask over the bound is pushed back below it. Adam scales each step to the gradient's size, so the
    // push need only dominate the channel's pull: 50× its mean.
    const { gm: pull, gp } = params.maskPatternGrads(dx, x, n);
    const push = l1 > bound ? (pull.reduce((acc, v) => acc + Math.abs(v), 0) / pull.length) * 50 : 0;
    params.step(pull, gp, push);
  }
  const trigger = best?.trigger ?? params.trigger();
  const served = servedLabel(await stampedPredictions(input.top, input.heldOut, trigger), input.heldOutLabels);
  return { channel, trigger, maskL1: l1Of(trigger), activation: best?.activation ?? 0, cleanActivation: input.cleanMeans[channel], ...served };
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
export async function channelMeans(inner: InputGradient, images: ImageSet, channels: number): Promise<Float32Array> {
  const flat = await inner.forward(images.pixels, images.count);
  const sums = new Float64Array(channels);
  flat.forEach((v, i) => { sums[i % channels] += v; });
  return Float32Array.from(sums, (v) => v / (flat.length / channels));
}
