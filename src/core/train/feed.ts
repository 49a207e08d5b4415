// What training and monitoring read: rows of images, or rows of a layer's
// cached activations (the 'above' mode runs only the layers after it).
import * as tf from '@tensorflow/tfjs-core';
import { openDataset } from '../data/dataset';
import { stamp, type Trigger } from '../data/trigger';
import { UserError } from '../errors';
import type { Net } from '../model/net';

/** A labelled set in memory: images as float32 NHWC rows. */
export interface ImageSet {
  file: string;
  count: number;
  images: Float32Array;
  labels?: Int32Array;
}

export async function readImageSet(file: string, inputShape: number[], classes: number): Promise<ImageSet> {
  const src = await openDataset(file, inputShape, classes);
  try {
    return { file, count: src.info.count, images: src.read(0, src.info.count), labels: src.labels };
  } finally {
    src.close();
  }
}

/** Rows fed to the net: at the model input (`at` undefined) or as the output of layer `at`. */
export interface Feed {
  at?: string;
  count: number;
  /** values of one row */
  per: number;
  rowShape: number[];
  /** rows `idx`; the first `stamped` of them carry the trigger */
  rows(idx: ArrayLike<number>, stamped?: number): Float32Array;
}

function gather(src: Float32Array, per: number, idx: ArrayLike<number>, from = 0, out: Float32Array = new Float32Array(idx.length * per)): Float32Array {
  for (let i = from; i < idx.length; i++) out.set(src.subarray(idx[i] * per, (idx[i] + 1) * per), i * per);
  return out;
}

/** Images, stamped with `trigger` on request. */
export function imageFeed(set: ImageSet, rowShape: number[], trigger?: Trigger): Feed {
  const per = rowShape.reduce((a, b) => a * b, 1);
  return {
    count: set.count, per, rowShape,
    rows(idx, stamped = 0) {
      const out = gather(set.images, per, idx);
      if (stamped > 0) {
        if (!trigger) throw new Error('imageFeed: no trigger to stamp');
        stamp(out.subarray(0, stamped * per), stamped, trigger);
      }
      return out;
    },
  };
}

/** Cached activations of layer `at`; `stampedValues` are those of the same images with the trigger. */
export function cacheFeed(at: string, rowShape: number[], values: Float32Array, stampedValues?: Float32Array): Feed {
  const per = rowShape.reduce((a, b) => a * b, 1);
  return {
    at, count: values.length / per, per, rowShape,
    rows(idx, stamped = 0) {
      const out = gather(values, per, idx, stamped);
      if (stamped > 0) {
        if (!stampedValues) throw new Error('cacheFeed: no stamped activations');
        gather(stampedValues, per, Array.from(idx).slice(0, stamped), 0, out);
      }
      return out;
    },
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Runs every row of `feed` (unstamped) through `net`, `batch` rows at a time, and hands each batch's `wanted` output to `take`. */
export async function eachBatch(net: Net, feed: Feed, wanted: string, batch: number, take: (out: tf.Tensor, start: number) => void, stampAll = false) {
  for (let s = 0; s < feed.count; s += batch) {
    const idx = range(s, Math.min(feed.count, s + batch));
    const x = tf.tensor(feed.rows(idx, stampAll ? idx.length : 0), [idx.length, ...feed.rowShape]);
    const outs = feed.at ? net.run(undefined, [wanted], new Map([[feed.at, x]])) : net.run(x, [wanted]);
    take(outs.get(wanted)!, s);
    tf.dispose([x, ...outs.values()]);
    await new Promise<void>((r) => setImmediate(r)); // lets a cancel message through
  }
}

/** Top-1 labels of every row. */
export async function labelsOf(net: Net, feed: Feed, batch: number): Promise<Int32Array> {
  const out = new Int32Array(feed.count);
  await eachBatch(net, feed, net.outputName, batch, (y, s) => {
    const top = tf.argMax(y, -1);
    out.set(top.dataSync() as Int32Array, s);
    top.dispose();
  });
  return out;
}

/** Layer `layer`'s output for every row of an image feed (stamped when `stampAll`), flattened. */
export async function activationsOf(net: Net, feed: Feed, layer: string, batch: number, stampAll = false): Promise<Float32Array> {
  const shape = net.shapes.get(layer);
  if (!shape) throw new UserError(`no layer named "${layer}"`);
  const per = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(feed.count * per);
  await eachBatch(net, feed, layer, batch, (y, s) => out.set(y.dataSync() as Float32Array, s * per), stampAll);
  return out;
}
