// The training loop: mini-batch Adam or SGD on cross-entropy, seeded
// shuffling, the pruned channels held at exactly zero, a divergence check,
// cancel between batches and progress per batch and per epoch. Gradients
// come from one or more gradient shards (gradientShard.ts), summed here.
import { CancelledError, UserError } from '../errors';
import type { Net } from '../model/net';
import { rng } from '../prng';
import type { RepairOptions, TrainEpoch } from '../types';
import type { Feed } from './feed';
import { assignFlat, flatValues, GradientShard, MICRO_BATCH, trainedParams, type GradientWorker, type MicroBatch } from './gradientShard';

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
  /**
   * Shards computing the gradients (data parallel), each with its own copy
   * of the net; none: this process alone, on `net`. The result is the same bit
   * for bit either way.
   */
  workers?: GradientWorker[];
  onProfile?: (p: TrainProfile) => void;
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

export { crossEntropy } from './gradientShard';

/** Time per epoch by part of a step, summed over batches (the bench prints it). */
export interface TrainProfile {
  /** reading (and stamping) the batch's rows */
  rows: number;
  /** waiting for every shard's micro-batch gradients; `compute` of it was the slowest shard computing */
  grads: number;
  compute: number;
  /** summing the micro-batch gradients in float64 */
  sum: number;
  /** every shard applying the optimizer step */
  apply: number;
  /** CPU time: of the busiest shard (its gradients and optimizer steps), and of this process (with shards elsewhere: its share of the work) */
  shardCpu: number;
  cpu: number;
}

export async function train(job: TrainJob): Promise<TrainEpoch[]> {
  const { net, feed, labels, options: o } = job;
  const setup = {
    at: feed.at, rowShape: feed.rowShape, conv: job.conv, pruned: job.pruned,
    options: { learningRate: o.learningRate, optimizer: o.optimizer }, probs: outputIsSoftmax(net),
  };
  // The trainer's own copy: monitored between epochs, and the only shard when no others are given.
  const own = new GradientShard();
  own.attach(net, setup);
  const workers: GradientWorker[] = job.workers?.length ? job.workers : [own];
  const remote = workers[0] !== own;
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
    if (!trainedParams(net, feed.at).length) throw new UserError('there are no Conv2D or Dense weights to train above the pruned layer');
    if (remote) {
      const start = flatValues(net.params);
      await Promise.all(workers.map((w) => w.trainBegin({ model: net.model.file, arch: net.model.archFile, ...setup, start })));
    }
    const start = await job.monitor();
    record({ epoch: 0, loss: null, ...start, seconds: 0 });
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      const profile: TrainProfile = { rows: 0, grads: 0, compute: 0, sum: 0, apply: 0, shardCpu: 0, cpu: 0 };
      const cpu0 = process.cpuUsage();
      let lap = t0;
      const time = (part: keyof TrainProfile) => {
        const now = performance.now();
        profile[part] += (now - lap) / 1000;
        lap = now;
      };
      r.shuffle(order);
      let sum = 0;
      for (let b = 0; b < batches; b++) {
        if (job.signal?.aborted) throw new CancelledError();
        lap = performance.now();
        const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
        const stamped = Math.round(job.share * idx.length);
        const rows = feed.rows(idx, stamped);
        // Micro-batch m goes to shard m mod n; the sum below is in micro-batch order whatever n is.
        const parts: MicroBatch[][] = workers.map(() => []);
        const micros = Math.ceil(idx.length / MICRO_BATCH);
        for (let m = 0; m < micros; m++) {
          const from = m * MICRO_BATCH, to = Math.min(idx.length, from + MICRO_BATCH);
          parts[m % workers.length].push({ rows: rows.subarray(from * feed.per, to * feed.per), labels: Int32Array.from(idx.slice(from, to), (i) => labels[i]) });
        }
        time('rows');
        const answers = await Promise.all(workers.map((w, k) => parts[k].length ? w.trainGrads(parts[k]) : { micro: [], seconds: 0, cpuSeconds: 0 }));
        profile.compute += Math.max(...answers.map((a) => a.seconds));
        profile.shardCpu += Math.max(...answers.map((a) => a.cpuSeconds));
        time('grads');
        // The batch's loss is the mean over its images: micro-batch m weighs (its size) / (batch size).
        const total = new Float64Array(answers[0].micro[0].grads.length);
        let loss = 0;
        for (let m = 0; m < micros; m++) {
          const { loss: l, grads } = answers[m % workers.length].micro[Math.floor(m / workers.length)];
          const weight = parts[m % workers.length][Math.floor(m / workers.length)].labels.length / idx.length;
          loss += weight * l;
          for (let i = 0; i < grads.length; i++) total[i] += weight * grads[i];
        }
        time('sum');
        if (!Number.isFinite(loss)) throw diverged(`loss ${loss} at epoch ${epoch}, batch ${b + 1}`);
        const step = Float32Array.from(total);
        await Promise.all(workers.map((w) => w.trainApply(step)));
        time('apply');
        sum += loss;
        job.progress?.({ epoch, batch: b + 1, batches, loss });
        await new Promise<void>((res) => setImmediate(res)); // lets a cancel message through
      }
      const seconds = (performance.now() - t0) / 1000; // the training alone, not the monitoring pass
      const cpu = process.cpuUsage(cpu0);
      profile.cpu = (cpu.user + cpu.system) / 1e6;
      job.onProfile?.(profile);
      // The shards hold equal copies: the trainer's own takes the first one's weights.
      if (remote) assignFlat(net.params, await workers[0].trainWeights());
      const m = await job.monitor();
      const e = { epoch, loss: sum / batches, ...m, seconds };
      record(e);
      if (m.validAccuracy < COLLAPSE * start.validAccuracy) {
        throw diverged(`clean validation accuracy fell from ${(100 * start.validAccuracy).toFixed(2)}% to ${(100 * m.validAccuracy).toFixed(2)}% after epoch ${epoch}`);
      }
    }
    return epochs;
  } finally {
    await own.trainEnd();
    if (remote) await Promise.all(workers.map((w) => w.trainEnd().catch(() => undefined)));
  }
}
