// A trigger (mask, pattern) derived from poisoned validation data that pairs
// with the clean set image by image (poisoned image i is clean image i with
// the trigger): the mask is the pixels that differ in most pairs, the pattern
// their mean poisoned value there. Sets that do not pair are refused: from two
// unrelated sets of faces a moving trigger cannot be told from the faces.
import { UserError } from '../errors';
import type { Trigger } from '../data/trigger';
import type { TriggerInfo } from '../types';
import type { ImageSet } from './feed';

/** A value differs when it moves by more than this share of the data's range (uint8 noise is below). */
const TOLERANCE = 0.01;

function rangeOf(a: Float32Array): number {
  let lo = Infinity, hi = -Infinity;
  for (const v of a) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return hi > lo ? hi - lo : 1;
}

export function deriveTrigger(clean: ImageSet, poisoned: ImageSet, inputShape: number[]): { trigger: Trigger; info: TriggerInfo } {
  const [h, w, c] = inputShape;
  const paired = pairedShare(clean, poisoned, h * w, c);
  if (typeof paired === 'string') {
    throw new UserError(`cannot derive a trigger: the poisoned validation images do not pair with the clean ones image by image (${paired}); give the trigger with --unlearn-trigger (a scan's trigger_<label>.h5)`, poisoned.file, 'not-paired');
  }
  const { mask, pattern } = fromPairs(clean, poisoned, h * w, c);
  const pixels = mask.reduce((a, m) => a + (m > 0 ? 1 : 0), 0);
  if (!pixels) throw new UserError('cannot derive a trigger: no pixel differs in most clean/poisoned pairs; give one with --unlearn-trigger', poisoned.file, 'no-trigger');
  const note = `paired image by image (the median pair differs at ${(100 * paired).toFixed(1)}% of pixels); mask = the ${pixels} pixels that differ in most pairs`;
  return { trigger: { height: h, width: w, channels: c, mask, pattern }, info: { source: 'paired-poisoned', file: poisoned.file, pixels, note } };
}

/** The median share of pixels that differ within a pair when the sets pair (same size, mostly equal); else why not. */
function pairedShare(clean: ImageSet, poisoned: ImageSet, hw: number, c: number): number | string {
  if (clean.count !== poisoned.count) return `${clean.count} clean and ${poisoned.count} poisoned images`;
  const tol = TOLERANCE * rangeOf(clean.images);
  const shares: number[] = [];
  for (let i = 0; i < clean.count; i++) {
    let diff = 0;
    for (let p = 0; p < hw; p++) {
      const at = (i * hw + p) * c;
      for (let k = 0; k < c; k++) if (Math.abs(clean.images[at + k] - poisoned.images[at + k]) > tol) { diff++; break; }
    }
    shares.push(diff / hw);
  }
  shares.sort((a, b) => a - b);
  const median = shares[shares.length >> 1];
  // A trigger covers a minority of the image; unrelated images differ almost everywhere.
  return median < 0.5 ? median : `the median pair differs at ${(100 * median).toFixed(1)}% of pixels`;
}

function fromPairs(clean: ImageSet, poisoned: ImageSet, hw: number, c: number) {
  const tol = TOLERANCE * rangeOf(clean.images);
  const hits = new Int32Array(hw);
  const sums = new Float64Array(hw * c);
  for (let i = 0; i < clean.count; i++) {
    for (let p = 0; p < hw; p++) {
      const at = (i * hw + p) * c;
      let differs = false;
      for (let k = 0; k < c; k++) if (Math.abs(clean.images[at + k] - poisoned.images[at + k]) > tol) differs = true;
      if (!differs) continue;
      hits[p]++;
      for (let k = 0; k < c; k++) sums[p * c + k] += poisoned.images[at + k];
    }
  }
  const mask = new Float32Array(hw);
  const pattern = new Float32Array(hw * c);
  for (let p = 0; p < hw; p++) {
    if (hits[p] * 2 <= clean.count) continue;
    mask[p] = 1;
    for (let k = 0; k < c; k++) pattern[p * c + k] = sums[p * c + k] / hits[p];
  }
  return { mask, pattern };
}
