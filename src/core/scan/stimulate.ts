// ABS-style channel stimulation (Liu et al., CCS 2019), forward passes only.
// The layers below the cache point ran once per image; here each channel of
// the cached feature map is set, over its whole map, to a series of levels and
// only the top of the network runs, for every image at once. A channel that a
// trigger hijacks lifts one label above all others on (nearly) every image.
// Sites do the same one position at a time: a trigger confined to a patch
// drives its channels at one place of the map, which the whole map's value
// would dilute.
import { CancelledError } from '../errors';
import { argMaxRows } from '../model/outputs';
import type { ScanChannel, ScanSite } from '../types';
import type { InputGradient } from './backprop';

/**
 * Levels as multiples of the largest value any channel of the layer takes on
 * the clean images. 0 switches a channel off. Up to 1 stays within what clean
 * data produces; a trigger drives its channels past that, so we go a few times
 * beyond. Not much further: the top is piecewise linear in one channel, so at
 * a large enough level every channel lifts some label on every image, and the
 * flip would say nothing about a backdoor.
 */
export const LEVELS = [0, 0.5, 1, 1.5, 2, 3, 4];

/** ABS calls a neuron compromised when it lifts one label on (nearly) all images; 0.9 of them here. */
export const COMPROMISED_FLIP_RATE = 0.9;

/**
 * Sites are stimulated on at most this many of the clean images, spread over them: a map has many positions
 * (20 on the lab network), and ABS itself stimulates on a few images per label. The bar stays 90% of them.
 */
export const SITE_IMAGES = 50;

/** `count` indices spread evenly over `total` (the lab's files are sorted by class). */
export function spreadIndices(total: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((i * total) / count));
}

/** Which of `n` images the sites are stimulated on: all of them up to SITE_IMAGES, else that many spread evenly. */
export const siteImages = (n: number) => spreadIndices(n, Math.min(n, SITE_IMAGES));

/** The cached maps and clean predictions of the images sites are stimulated on. */
function forSites(cache: Float32Array, cleanPred: Int32Array, n: number): { cache: Float32Array; cleanPred: Int32Array; n: number } {
  const images = siteImages(n);
  const per = cache.length / n;
  const out = new Float32Array(images.length * per);
  images.forEach((i, k) => out.set(cache.subarray(i * per, (i + 1) * per), k * per));
  return { cache: out, cleanPred: Int32Array.from(images, (i) => cleanPred[i]), n: images.length };
}

export interface StimulationResult {
  channels: ScanChannel[];
  levels: number[];
  /** the largest clean value of the layer, which the levels multiply */
  layerMax: number;
  /** labels ordered by the strongest push any channel gives them, most first */
  ranked: number[];
}

/** What a set of channels does to the labels: per channel, level and label, the flips and the mean logit rise. */
export interface ChannelResponses {
  /** the channels, or for sites (see ResponseInput.sites) channel × positions + position */
  channels: number[];
  /** [channel][level][label], flattened in that order */
  flips: Float64Array;
  rises: Float32Array;
}

export interface ResponseInput {
  top: InputGradient;
  cachePoint: string;
  /** the cache point's output for the clean images, flat (N, h, w, C) */
  cache: Float32Array;
  shape: [number, number, number, number];
  /** the model's predictions on the clean images */
  cleanPred: Int32Array;
  /** the values a channel is set to */
  levels: number[];
  /** the channels to stimulate */
  channels: number[];
  /** each channel at each position of the map on its own (a site), instead of over the whole map */
  sites?: boolean;
  /** (channel, level, image) rows per run of the top */
  batchRows: number;
  signal?: AbortSignal;
}

/** The levels for a layer whose largest clean value is `layerMax`. */
export const levelsFor = (layerMax: number) => LEVELS.map((m) => m * layerMax);

/**
 * Each of `channels` set to each level over its whole map, for every image, or with `sites` at one position
 * at a time, for the images of siteImages: the top runs once per row.
 */
export async function respond(input: ResponseInput): Promise<ChannelResponses> {
  const { top, cachePoint, levels } = input;
  const [all, h, w, channels] = input.shape;
  const { cache, cleanPred, n } = input.sites ? forSites(input.cache, input.cleanPred, all) : { ...input, n: all };
  const per = h * w * channels;
  const positions = h * w;
  const cleanLogits = await top.forward(cache, n, cachePoint);
  const classes = cleanLogits.length / n;
  // What is stimulated: a channel's whole map, or one position of it (id channel × positions + position).
  const ids = input.sites ? input.channels.flatMap((c) => Array.from({ length: positions }, (_, p) => c * positions + p)) : input.channels;
  // Work items: one (id, level) pair covers all n images; k indexes ids.
  const pairs: [number, number][] = [];
  ids.forEach((_, k) => levels.forEach((_, l) => pairs.push([k, l])));
  const perRun = Math.max(1, Math.floor(input.batchRows / n));
  const flips = new Float64Array(ids.length * levels.length * classes);
  const rises = new Float32Array(flips.length);
  // The clean logits' sum per label, once: subtracting them row by row took a third of the sites' stimulation.
  const cleanSum = new Float64Array(classes);
  for (let j = 0; j < n; j++) for (let q = 0; q < classes; q++) cleanSum[q] += cleanLogits[j * classes + q];
  const sum = new Float64Array(classes);
  for (let s = 0; s < pairs.length; s += perRun) {
    // Let the event loop run (a cancel, or another shard's reply arriving in this process).
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (input.signal?.aborted) throw new CancelledError();
    const chunk = pairs.slice(s, s + perRun);
    // rows (pair, image): the cache with one channel (or one site) replaced by a constant
    const rows = new Float32Array(chunk.length * n * per);
    chunk.forEach(([k, l], i) => {
      const block = rows.subarray(i * n * per, (i + 1) * n * per);
      block.set(cache);
      if (input.sites) {
        const c = Math.floor(ids[k] / positions), p = ids[k] % positions;
        for (let j = 0; j < n; j++) block[(j * positions + p) * channels + c] = levels[l];
      } else {
        for (let j = ids[k]; j < block.length; j += channels) block[j] = levels[l];
      }
    });
    const logits = await top.forward(rows, chunk.length * n, cachePoint);
    const labels = argMaxRows(logits, chunk.length * n);
    chunk.forEach(([k, l], i) => tally({ logits, labels, first: i * n, n, cleanSum, cleanPred, flips, rises, at: (k * levels.length + l) * classes, sum }));
  }
  return { channels: ids, flips, rises };
}

/**
 * One (id, level) pair's n rows of logits, from row `first`: flips to each label, and each label's mean logit
 * rise over the clean logits (whose sum per label is `cleanSum`), into `flips` and `rises` at `at`.
 */
function tally(t: {
  logits: Float32Array; labels: Int32Array; first: number; n: number; cleanSum: Float64Array; cleanPred: Int32Array;
  flips: Float64Array; rises: Float32Array; at: number; sum: Float64Array;
}) {
  const { logits, labels, first, n, cleanSum, cleanPred, flips, rises, at, sum } = t;
  const classes = cleanSum.length;
  sum.fill(0);
  for (let j = 0; j < n; j++) {
    const row = (first + j) * classes;
    for (let q = 0; q < classes; q++) sum[q] += logits[row + q];
    const label = labels[first + j];
    if (label !== cleanPred[j]) flips[at + label]++;
  }
  for (let q = 0; q < classes; q++) rises[at + q] = (sum[q] - cleanSum[q]) / n;
}

/** Every channel's strongest push, and the labels ranked by it, from the responses of all channels. */
export function summarise(responses: ChannelResponses[], layerMax: number, classes: number, cleanPred: Int32Array): StimulationResult {
  const levels = levelsFor(layerMax);
  // Per label, how many images were not already predicted as it (the denominator of its flip rate).
  const notAlready = new Float64Array(classes).fill(cleanPred.length);
  for (const p of cleanPred) notAlready[p]--;
  const strongest = new Float64Array(classes); // per label, the best flip rate any channel gives it
  const out: ScanChannel[] = [];
  for (const { channels, flips, rises } of responses) {
    channels.forEach((c, k) => {
      const at = (l: number) => (k * levels.length + l) * classes;
      let best = { label: 0, level: 0, rate: -1, rise: -Infinity };
      levels.forEach((_, l) => {
        for (let label = 0; label < classes; label++) {
          const r = rises[at(l) + label];
          // ABS looks for channels that elevate a label: flips to a label whose logit did not rise
          // (other labels fell, e.g. with the channel switched off) are not counted.
          const rate = notAlready[label] > 0 && r > 0 ? flips[at(l) + label] / notAlready[label] : 0;
          strongest[label] = Math.max(strongest[label], rate);
          // The lowest level reaching the highest flip rate; at that level, the label whose logit rose most.
          if (rate > best.rate || (rate === best.rate && l === best.level && r > best.rise)) best = { label, level: l, rate, rise: r };
        }
      });
      let other = -Infinity;
      for (let label = 0; label < classes; label++) if (label !== best.label) other = Math.max(other, rises[at(best.level) + label]);
      out.push({
        channel: c,
        label: best.label,
        flipRate: best.rate,
        level: levels[best.level],
        logitRise: best.rise,
        elevation: best.rise - other,
        compromised: best.rate >= COMPROMISED_FLIP_RATE,
      });
    });
  }
  out.sort((a, b) => a.channel - b.channel);
  // Labels by their strongest flip rate, then by the largest elevation a channel gives them.
  const elevationOf = new Float64Array(classes).fill(-Infinity);
  for (const ch of out) elevationOf[ch.label] = Math.max(elevationOf[ch.label], ch.elevation);
  const ranked = Array.from({ length: classes }, (_, i) => i)
    .sort((a, b) => strongest[b] - strongest[a] || elevationOf[b] - elevationOf[a] || a - b);
  return { channels: out, levels: LEVELS.slice(), layerMax, ranked };
}

/**
 * The compromised sites (a channel at one position that flips ≥ 90% of the images to one label it
 * elevates), the most elevating first, from site responses over a map `mapWidth` wide; `cleanPred`
 * for every image (the sites' own are picked here).
 */
export function compromisedSites(responses: ChannelResponses[], layerMax: number, classes: number, cleanPred: Int32Array, [mapHeight, mapWidth]: [number, number]): ScanSite[] {
  const positions = mapHeight * mapWidth;
  const pred = Int32Array.from(siteImages(cleanPred.length), (i) => cleanPred[i]);
  return summarise(responses, layerMax, classes, pred).channels
    .filter((s) => s.compromised)
    .map(({ channel: id, label, flipRate, level, logitRise, elevation }): ScanSite => {
      const p = id % positions;
      return { channel: Math.floor(id / positions), position: [Math.floor(p / mapWidth), p % mapWidth], label, flipRate, level, logitRise, elevation };
    })
    .sort(mostElevating);
}

/** The most elevating first (then by channel and position), for sites found group by group. */
export function mostElevating(a: ScanSite, b: ScanSite): number {
  return b.elevation - a.elevation || a.channel - b.channel || a.position[0] - b.position[0] || a.position[1] - b.position[1];
}

/** The largest value any channel takes on the clean images. */
export function layerMaxOf(cache: Float32Array): number {
  let max = -Infinity;
  for (const v of cache) if (v > max) max = v;
  return max;
}

/** Stimulation of every channel in this process. */
export async function stimulate(input: Omit<ResponseInput, 'levels' | 'channels'>): Promise<StimulationResult> {
  const layerMax = layerMaxOf(input.cache);
  const channels = Array.from({ length: input.shape[3] }, (_, c) => c);
  const r = await respond({ ...input, levels: levelsFor(layerMax), channels });
  return summarise([r], layerMax, r.rises.length / (channels.length * LEVELS.length), input.cleanPred);
}
