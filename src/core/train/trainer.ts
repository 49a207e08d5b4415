// The training loop: mini-batch Adam or SGD on cross-entropy, seeded
// shuffling, the pruned channels held at exactly zero, a divergence check,
// cancel between batches and progress per batch and per epoch.
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, UserError } from '../errors';
import type { Param } from '../model/layers';
import type { Net } from '../model/net';
import { rng } from '../prng';
import type { RepairOptions, TrainEpoch } from '../types';
import type { Feed } from './feed';

export interface TrainJob {
  net: Net;
  feed: Feed;
  labels: Int32Array;
  /** the pruned Conv2D and its pruned output channels, kept at zero */
  conv: string;
  pruned: number[];
  /** share of each batch stamped with the trigger (0: fine-tuning) */
  share: number;
  options: Pick<RepairOptions, 'epochs' | 'learningRate' | 'optimizer' | 'batchSize' | 'seed'>;
  /** clean accuracy (and attack rate) on validation data, after each epoch and before the first */
  monitor: () => Promise<{ validAccuracy: number; validAttackRate?: number }>;
  progress?: (p: { epoch: number; batch: number; batches: number; loss: number }) => void;
  onEpoch?: (e: TrainEpoch) => void;
  signal?: AbortSignal;
}

/**
 * Accuracy below this share of the starting accuracy after an epoch counts as
 * collapse. Fine-tuning starts from a network that already classifies well
 * and should only move it a little; losing half of what it got right is a
 * sign of a step size that is too large, not of slow progress.
 */
const COLLAPSE = 0.5;

/** Whether the output layer already applies softmax (then the loss takes log of probabilities, as Keras does). */
export function outputIsSoftmax(net: Net): boolean {
  const node = net.byName.get(net.outputName)!;
  const act = node.config.activation;
  return node.className === 'Softmax' || act === 'softmax' || (typeof act === 'object' && act !== null && JSON.stringify(act).includes('softmax'));
}

/** Mean categorical cross-entropy; probabilities are clipped to [1e-7, 1 - 1e-7] like Keras's. */
export function crossEntropy(out: tf.Tensor, labels: tf.Tensor1D, probs: boolean): tf.Scalar {
  const classes = out.shape[out.rank - 1];
  const logp = probs ? tf.log(tf.clipByValue(out, 1e-7, 1 - 1e-7)) : tf.logSoftmax(out);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, classes), logp), -1))) as tf.Scalar;
}

/** The variables trained: every Conv2D/Dense one, or only those after the feed's layer. */
export function trainedParams(net: Net, feed: Feed): Param[] {
  if (!feed.at) return net.params;
  const above = net.downstreamOf(feed.at);
  return net.params.filter((p) => above.has(p.layer));
}

/** Multiplies the pruned conv's kernel and bias by a 0/1 mask over output channels. */
function keeper(net: Net, conv: string, pruned: number[]): { apply: () => void; dispose: () => void } {
  const ps = net.params.filter((p) => p.layer === conv);
  if (!ps.length || !pruned.length) return { apply: () => undefined, dispose: () => undefined };
  const channels = ps[0].value.shape[ps[0].value.rank - 1];
  const keep = new Float32Array(channels).fill(1);
  for (const c of pruned) keep[c] = 0;
  const mask = tf.tensor1d(keep);
  const apply = () => {
    for (const p of ps) p.value.assign(tf.tidy(() => tf.mul(p.value, mask)));
  };
  apply(); // B'_X: the channels start at zero
  return { apply, dispose: () => mask.dispose() };
}

export async function train(job: TrainJob): Promise<TrainEpoch[]> {
  const { net, feed, labels, options: o } = job;
  const params = trainedParams(net, feed);
  if (!params.length) throw new UserError('there are no Conv2D or Dense weights to train above the pruned layer');
  const vars = params.map((p) => p.value);
  const keepPruned = keeper(net, job.conv, job.pruned);
  const probs = outputIsSoftmax(net);
  const optimizer = o.optimizer === 'sgd' ? tf.train.sgd(o.learningRate) : tf.train.adam(o.learningRate);
  const r = rng(o.seed);
  const order = Array.from({ length: feed.count }, (_, i) => i);
  const batches = Math.ceil(feed.count / o.batchSize);
  const epochs: TrainEpoch[] = [];
  const record = (e: TrainEpoch) => {
    epochs.push(e);
    job.onEpoch?.(e);
  };
  const diverged = (why: string) => new UserError(`training diverged (${why}) with learning rate ${o.learningRate} (${o.optimizer}); try a smaller --lr. No repaired model was saved`, undefined, 'diverged');
  try {
    const start = await job.monitor();
    record({ epoch: 0, loss: null, ...start, seconds: 0 });
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      r.shuffle(order);
      let sum = 0;
      for (let b = 0; b < batches; b++) {
        if (job.signal?.aborted) throw new CancelledError();
        const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
        const stamped = Math.round(job.share * idx.length);
        const x = tf.tensor(feed.rows(idx, stamped), [idx.length, ...feed.rowShape]);
        const y = tf.tensor1d(Int32Array.from(idx, (i) => labels[i]), 'int32');
        const given = new Map<string, tf.Tensor>(feed.at ? [[feed.at, x]] : []);
        const loss = optimizer.minimize(() => crossEntropy(net.run(feed.at ? undefined : x, [net.outputName], given).get(net.outputName)!, y, probs), true, vars)!;
        const value = loss.dataSync()[0];
        tf.dispose([x, y, loss]);
        if (!Number.isFinite(value)) throw diverged(`loss ${value} at epoch ${epoch}, batch ${b + 1}`);
        keepPruned.apply();
        sum += value;
        job.progress?.({ epoch, batch: b + 1, batches, loss: value });
        await new Promise<void>((res) => setImmediate(res)); // lets a cancel message through
      }
      const seconds = (performance.now() - t0) / 1000; // the training alone, not the monitoring pass
      const m = await job.monitor();
      const e = { epoch, loss: sum / batches, ...m, seconds };
      record(e);
      if (m.validAccuracy < COLLAPSE * start.validAccuracy) {
        throw diverged(`clean validation accuracy fell from ${(100 * start.validAccuracy).toFixed(2)}% to ${(100 * m.validAccuracy).toFixed(2)}% after epoch ${epoch}`);
      }
    }
    return epochs;
  } finally {
    optimizer.dispose();
    keepPruned.dispose();
  }
}
