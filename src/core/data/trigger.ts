// A trigger as Neural Cleanse writes it: a mask m (H, W) in [0, 1] and a
// pattern p (H, W, C) in the model's input units, stamped onto an image x
// (H, W, C) as (1 - m) * x + m * p. The scan writes these files, the audit
// stamps them onto clean data, and unlearning trains on stamped images.
import { UserError } from '../errors';
import { closeQuietly, guard, isDataset, openH5 } from '../h5/file';
import { writeArraysH5 } from '../h5/write';
import { openDataset } from './dataset';

export interface Trigger {
  height: number;
  width: number;
  channels: number;
  /** H*W, row-major, each in [0, 1] */
  mask: Float32Array;
  /** H*W*C, channels innermost */
  pattern: Float32Array;
}

/** Reads `mask` and `pattern` and checks them against the model input (H, W, C). */
export async function readTrigger(file: string, inputShape: number[]): Promise<Trigger> {
  const [h, w, c] = inputShape;
  const f = await openH5(file);
  try {
    const get = (name: string, shape: number[]): Float32Array => {
      const d = guard(file, `reading "${name}"`, () => f.get(name));
      if (!isDataset(d)) throw new UserError(`has no "${name}" dataset; a trigger file holds "mask" (H, W) and "pattern" (H, W, C)`, file, 'bad-trigger');
      const got = guard(file, `reading "${name}"`, () => d.shape ?? []);
      if (got.join() !== shape.join()) {
        throw new UserError(`"${name}" has shape (${got.join(', ')}) but the model input needs (${shape.join(', ')})`, file, 'bad-trigger');
      }
      const raw = guard(file, `reading "${name}"`, () => d.value) as unknown as ArrayLike<number>;
      const out = Float32Array.from(raw as ArrayLike<number>);
      if (out.some((v) => !Number.isFinite(v))) throw new UserError(`"${name}" holds NaN or infinite values`, file, 'bad-trigger');
      return out;
    };
    const mask = get('mask', [h, w]);
    const pattern = get('pattern', [h, w, c]);
    if (mask.some((v) => v < 0 || v > 1)) throw new UserError('"mask" has values outside [0, 1]', file, 'bad-trigger');
    return { height: h, width: w, channels: c, mask, pattern };
  } finally {
    closeQuietly(f);
  }
}

export function writeTrigger(file: string, t: Trigger): Promise<void> {
  return writeArraysH5(file, [
    { name: 'mask', shape: [t.height, t.width], data: t.mask },
    { name: 'pattern', shape: [t.height, t.width, t.channels], data: t.pattern },
  ]);
}

/** Stamps `t` onto `n` NHWC float32 images in place and returns them. */
export function stamp(images: Float32Array, n: number, t: Trigger): Float32Array {
  const { mask, pattern, channels: c } = t;
  const hw = mask.length, per = hw * c;
  if (images.length !== n * per) throw new Error(`stamp: ${images.length} values are not ${n} images of ${per}`);
  for (let i = 0; i < n; i++) {
    const base = i * per;
    for (let p = 0; p < hw; p++) {
      const m = mask[p];
      if (m === 0) continue;
      for (let k = 0; k < c; k++) {
        const at = base + p * c + k;
        images[at] = (1 - m) * images[at] + m * pattern[p * c + k];
      }
    }
  }
  return images;
}

/** The <label> in a scan's trigger_<label>.h5, if the name says it. */
export function labelFromTriggerName(file: string): number | undefined {
  const m = /trigger_(\d+)\.h5$/i.exec(file);
  return m ? Number(m[1]) : undefined;
}

/**
 * A poisoned set made from clean data: every image whose label is not `target`,
 * stamped with `t`, labelled `target`, written as float32 (N, H, W, C) `data`
 * and `label`. Returns how many images it holds.
 */
export async function writeStampedSet(clean: string, t: Trigger, target: number, out: string, classes?: number): Promise<number> {
  const shape = [t.height, t.width, t.channels];
  const src = await openDataset(clean, shape, classes);
  try {
    if (!src.labels) throw new UserError('has no "label" dataset, so the images of the target label cannot be left out', clean, 'no-labels');
    const per = t.height * t.width * t.channels;
    const keep: number[] = [];
    src.labels.forEach((l, i) => { if (l !== target) keep.push(i); });
    if (!keep.length) throw new UserError(`every image has the target label ${target}; none is left to stamp`, clean, 'empty-data');
    const data = new Float32Array(keep.length * per);
    const chunk = 1024;
    // Copy the kept images in order, then stamp them all at once.
    let k = 0;
    for (let s = 0; s < src.info.count; s += chunk) {
      const e = Math.min(src.info.count, s + chunk);
      const part = src.read(s, e);
      for (let i = s; i < e; i++) if (src.labels[i] !== target) data.set(part.subarray((i - s) * per, (i - s + 1) * per), (k++) * per);
    }
    stamp(data, keep.length, t);
    // Same layout as the clean file, so the audit sees matching sets.
    const first = src.info.axisOrder === 'channels_first';
    await writeArraysH5(out, [
      first ? { name: 'data', shape: [keep.length, t.channels, t.height, t.width], data: toChannelsFirst(data, keep.length, t.height * t.width, t.channels) }
        : { name: 'data', shape: [keep.length, ...shape], data },
      { name: 'label', shape: [keep.length], data: new Float32Array(keep.length).fill(target) },
    ]);
    return keep.length;
  } finally {
    src.close();
  }
}

/** (N, H, W, C) to (N, C, H, W). */
function toChannelsFirst(x: Float32Array, n: number, plane: number, channels: number): Float32Array {
  const out = new Float32Array(x.length);
  const per = plane * channels;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < plane; p++) for (let k = 0; k < channels; k++) out[i * per + k * plane + p] = x[i * per + p * channels + k];
  }
  return out;
}
