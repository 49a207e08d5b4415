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
  /** a site's position in the cache point's map (absent: the whole map) */
  position?: [number, number];
  trigger: Trigger;
  maskL1: number;
  /** the channel's mean activation over its map (or the site's positions) on the stamped optimisation images */
  activation: number;
  /** its mean there on the clean optimisation images */
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
  /** channels of the inner head's output, and its map's (height, width) */
  channels: number;
  map: [number, number];
  /** the cache point's map (height, width), where sites are placed */
  cacheMap: [number, number];
  /** the inner head's output on the clean optimisation images, flat (images × positions × channels) */
  clean: Float32Array;
  /** the whole network, for the labels */
  top: InputGradient;
  images: ImageSet;
  heldOut: ImageSet;
  heldOutLabels: Int32Array;
  signal?: AbortSignal;
}

/**
 * The conv map's positions a site at `position` of the cache point's map covers (a pooled position's window,
 * by the maps' ratio), or every position.
 */
export function positionsOf(position: [number, number] | undefined, [h, w]: [number, number], [ph, pw]: [number, number]): number[] {
  if (!position) return Array.from({ length: h * w }, (_, p) => p);
  const span = (i: number, size: number, pooled: number) => {
    const from = Math.floor((i * size) / pooled);
    return Array.from({ length: Math.max(1, Math.floor(((i + 1) * size) / pooled) - from) }, (_, k) => from + k);
  };
  return span(position[0], h, ph).flatMap((y) => span(position[1], w, pw).map((x) => y * w + x));
}

/** `channel`'s mean over `positions` of a flat (images × positions × channels) map. */
function meanAt(flat: Float32Array, channels: number, mapSize: number, channel: number, positions: number[]): number {
  const images = flat.length / (mapSize * channels);
  let sum = 0;
  for (let i = 0; i < images; i++) for (const p of positions) sum += flat[(i * mapSize + p) * channels + channel];
  return sum / (images * positions.length);
}

export async function reverseChannel(input: ReverseInput, channel: number, settings: ReconstructSettings, position?: [number, number]): Promise<ChannelReversal> {
  const s = { ...settings, ...REVERSAL };
  const { inner, images } = input;
  const [h, w] = inner.inputShape;
  const bound = MAX_TRIGGER_AREA * h * w;
  const mapSize = input.map[0] * input.map[1];
  // The positions whose mean is raised: the whole map, or the site's.
  const under = positionsOf(position, input.map, input.cacheMap);
  // A site's trigger starts from its own random state, as another channel's would.
  const random = rng(s.seed * 104729 + channel + (position ? (1 + position[0] * input.cacheMap[1] + position[1]) * input.channels : 0));
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
    // loss = -(the channel's mean over images and the positions, before its activation); the head's output
    // comes flat, channels last.
    const seed = new Float32Array(n * inner.width);
    for (let i = 0; i < n; i++) for (const p of under) seed[(i * mapSize + p) * input.channels + channel] = -1 / (n * under.length);
    const { logits: flat, dx } = await inner.gradientOf(params.stamp(x, n), n, { given: seed });
    const activation = meanAt(flat, input.channels, mapSize, channel, under);
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
  const cleanActivation = meanAt(input.clean, input.channels, mapSize, channel, under);
  return { channel, ...(position ? { position } : {}), trigger, maskL1: l1Of(trigger), activation: best?.activation ?? 0, cleanActivation, ...served };
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

