// ABS-style channel stimulation (Liu et al., CCS 2019), forward passes only.
// The layers below the cache point ran once per image; here each channel of
// the cached feature map is set, over its whole map, to a series of levels and
// only the top of the network runs, for every image at once. A channel that a
// trigger hijacks lifts one label above all others on (nearly) every image.
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../errors';
import type { ScanChannel } from '../types';
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

export interface StimulationResult {
  channels: ScanChannel[];
  levels: number[];
  /** the largest clean value of the layer, which the levels multiply */
  layerMax: number;
  /** labels ordered by the strongest push any channel gives them, most first */
  ranked: number[];
}

export interface StimulationInput {
  top: InputGradient;
  cachePoint: string;
  /** the cache point's output for the clean images (N, h, w, C) */
  cache: tf.Tensor4D;
  /** the model's predictions on the clean images */
  cleanPred: Int32Array;
  /** (channel, level, image) rows per run of the top */
  batchRows: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

export async function stimulate(input: StimulationInput): Promise<StimulationResult> {
  const { top, cachePoint, cache, cleanPred } = input;
  const [n, h, w, channels] = cache.shape;
  const layerMax = (await tf.max(cache).data())[0];
  const levels = LEVELS.map((m) => m * layerMax);
  const cleanLogits = top.logits(undefined, new Map([[cachePoint, cache]]));
  const classes = cleanLogits.shape[1];
  // Per label, how many images were not already predicted as it (the denominator of its flip rate).
  const notAlready = new Float64Array(classes).fill(n);
  for (const p of cleanPred) notAlready[p]--;

  // Work items: one (channel, level) pair covers all n images.
  const pairs: [number, number][] = [];
  for (let c = 0; c < channels; c++) for (let l = 0; l < levels.length; l++) pairs.push([c, l]);
  const perRun = Math.max(1, Math.floor(input.batchRows / n));
  // flips[c][l][label] and rises[c][l][label]
  const flips = Array.from({ length: channels }, () => levels.map(() => new Float64Array(classes)));
  const rises = Array.from({ length: channels }, () => levels.map(() => new Float32Array(classes)));
  for (let s = 0; s < pairs.length; s += perRun) {
    if (input.signal?.aborted) throw new CancelledError();
    const chunk = pairs.slice(s, s + perRun);
    const p = chunk.length;
    const [pred, rise] = tf.tidy(() => {
      const onehot = new Float32Array(p * channels);
      const value = new Float32Array(p * channels);
      chunk.forEach(([c, l], i) => {
        onehot[i * channels + c] = 1;
        value[i * channels + c] = levels[l];
      });
      // rows (pair, image): cache with one channel replaced by a constant
      const keep = tf.reshape(tf.sub(1, tf.tensor(onehot, [p, 1, 1, 1, channels])), [p, 1, 1, 1, channels]);
      const set = tf.tensor(value, [p, 1, 1, 1, channels]);
      const rows = tf.reshape(tf.add(tf.mul(tf.expandDims(cache, 0), keep), set), [p * n, h, w, channels]);
      const logits = top.logits(undefined, new Map([[cachePoint, rows]]));
      const meanRise = tf.mean(tf.sub(tf.reshape(logits, [p, n, classes]), tf.expandDims(cleanLogits, 0)), 1);
      return [tf.argMax(logits, 1), meanRise];
    });
    const predV = await pred.data() as Int32Array;
    const riseV = await rise.data() as Float32Array;
    tf.dispose([pred, rise]);
    chunk.forEach(([c, l], i) => {
      for (let k = 0; k < n; k++) {
        const label = predV[i * n + k];
        if (label !== cleanPred[k]) flips[c][l][label]++;
      }
      rises[c][l].set(riseV.subarray(i * classes, (i + 1) * classes));
    });
    input.progress?.(Math.min(pairs.length, s + p), pairs.length);
  }
  cleanLogits.dispose();

  const strongest = new Float64Array(classes); // per label, the best flip rate any channel gives it
  const out: ScanChannel[] = [];
  for (let c = 0; c < channels; c++) {
    let best = { label: 0, level: 0, rate: -1, rise: -Infinity };
    levels.forEach((_, l) => {
      for (let label = 0; label < classes; label++) {
        const r = rises[c][l][label];
        // ABS looks for channels that elevate a label: flips to a label whose logit did not rise
        // (other labels fell, e.g. with the channel switched off) are not counted.
        const rate = notAlready[label] > 0 && r > 0 ? flips[c][l][label] / notAlready[label] : 0;
        strongest[label] = Math.max(strongest[label], rate);
        // The lowest level reaching the highest flip rate; at that level, the label whose logit rose most.
        if (rate > best.rate || (rate === best.rate && l === best.level && r > best.rise)) best = { label, level: l, rate, rise: r };
      }
    });
    const r = rises[c][best.level];
    let other = -Infinity;
    for (let label = 0; label < classes; label++) if (label !== best.label) other = Math.max(other, r[label]);
    out.push({
      channel: c,
      label: best.label,
      flipRate: best.rate,
      level: levels[best.level],
      logitRise: best.rise,
      elevation: best.rise - other,
      compromised: best.rate >= COMPROMISED_FLIP_RATE,
    });
  }
  // Labels by their strongest flip rate, then by the largest elevation a channel gives them.
  const elevationOf = new Float64Array(classes).fill(-Infinity);
  for (const ch of out) elevationOf[ch.label] = Math.max(elevationOf[ch.label], ch.elevation);
  const ranked = Array.from({ length: classes }, (_, i) => i)
    .sort((a, b) => strongest[b] - strongest[a] || elevationOf[b] - elevationOf[a] || a - b);
  return { channels: out, levels: LEVELS.slice(), layerMax, ranked };
}
