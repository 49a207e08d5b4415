// Data-parallel training: a gradient shard holds one copy of B'_X. Per batch
// the trainer hands each shard some fixed micro-batches; every shard returns
// their gradients, the trainer sums them in micro-batch order in float64, and
// every shard applies the same optimizer step to the same summed gradient. So
// the copies stay equal without sending weights, and the numbers do not
// depend on how many shards there are (one shard computes every micro-batch).
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../keras/load';
import { Net } from '../model/net';
import type { Param } from '../model/layers';
import type { RepairOptions } from '../types';
import { registerGradients } from './gradients';

/**
 * Images per micro-batch. The gradient of a batch is the weighted sum of its
 * micro-batches' gradients, so this, not the shard count, fixes the numbers.
 * 32 keeps the convolutions large enough to run at full speed on wasm.
 */
export const MICRO_BATCH = 32;

/** What a shard needs to rebuild B'_X and train it like the trainer's own copy. */
export interface TrainSetup {
  model: string;
  arch?: string;
  /** rows are the output of this layer (undefined: images) */
  at?: string;
  rowShape: number[];
  /** the pruned Conv2D and its pruned output channels, kept at zero after every step */
  conv: string;
  pruned: number[];
  options: Pick<RepairOptions, 'learningRate' | 'optimizer'>;
  /** the output layer applies softmax */
  probs: boolean;
  /** every param of the net (Net.params order), flattened: the start, bit for bit */
  start: Float32Array;
}

export interface MicroBatch {
  rows: Float32Array;
  labels: Int32Array;
}

export interface MicroGrads {
  /** per micro-batch: its mean loss and the gradient of that mean, trained params flattened in order */
  micro: { loss: number; grads: Float32Array }[];
  /** time spent computing, for profiling (the rest of a round trip is transfer and waiting) */
  seconds: number;
  /** CPU time of this shard's process since its previous answer (so it includes the last optimizer step): on a busy machine, what the work cost */
  cpuSeconds: number;
}

/** The training half of a shard (ShardApi extends it; a ShardProcess forwards it to another process). */
export interface GradientWorker {
  trainBegin(setup: TrainSetup): Promise<void>;
  trainGrads(batches: MicroBatch[]): Promise<MicroGrads>;
  trainApply(grads: Float32Array): Promise<void>;
  /** every param of the net, flattened (as TrainSetup.start) */
  trainWeights(): Promise<Float32Array>;
  trainEnd(): Promise<void>;
}

/** Mean categorical cross-entropy; probabilities are clipped to [1e-7, 1 - 1e-7] like Keras's. */
export function crossEntropy(out: tf.Tensor, labels: tf.Tensor1D, probs: boolean): tf.Scalar {
  const classes = out.shape[out.rank - 1];
  const logp = probs ? tf.log(tf.clipByValue(out, 1e-7, 1 - 1e-7)) : tf.logSoftmax(out);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, classes), logp), -1))) as tf.Scalar;
}

/** The variables trained: every Conv2D/Dense one, or only those after layer `at`. */
export function trainedParams(net: Net, at: string | undefined): Param[] {
  if (!at) return net.params;
  const above = net.downstreamOf(at);
  return net.params.filter((p) => above.has(p.layer));
}

export function flatValues(params: Param[]): Float32Array {
  const out = new Float32Array(params.reduce((a, p) => a + p.value.size, 0));
  let at = 0;
  for (const p of params) {
    out.set(p.value.dataSync() as Float32Array, at);
    at += p.value.size;
  }
  return out;
}

export function assignFlat(params: Param[], values: Float32Array) {
  let at = 0;
  for (const p of params) {
    const t = tf.tensor(values.subarray(at, at + p.value.size), p.value.shape, 'float32');
    p.value.assign(t);
    t.dispose();
    at += p.value.size;
  }
  if (at !== values.length) throw new Error(`weights: got ${values.length} values for ${at}`);
}

type Setup = Omit<TrainSetup, 'model' | 'arch' | 'start'>;

export class GradientShard implements GradientWorker {
  private net?: Net;
  private ownsNet = false;
  private setup?: Setup;
  private trained: Param[] = [];
  private optimizer?: tf.Optimizer;
  private mask?: tf.Tensor1D;
  private cpuMark = process.cpuUsage();

  /** Trains `net` itself (the trainer's own copy, in this process); zeroes the pruned channels now. */
  attach(net: Net, setup: Setup) {
    this.net = net;
    this.setup = setup;
    this.trained = trainedParams(net, setup.at);
    const ps = net.params.filter((p) => p.layer === setup.conv);
    if (ps.length && setup.pruned.length) {
      const channels = ps[0].value.shape[ps[0].value.rank - 1];
      const keep = new Float32Array(channels).fill(1);
      for (const c of setup.pruned) keep[c] = 0;
      this.mask = tf.tensor1d(keep);
    }
    this.keepPruned();
    this.cpuMark = process.cpuUsage();
  }

  /** Holds the pruned channels at exactly zero (kernel slices and biases). */
  private keepPruned() {
    if (!this.mask) return;
    for (const p of this.net!.params) if (p.layer === this.setup!.conv) p.value.assign(tf.tidy(() => tf.mul(p.value, this.mask!)));
  }

  async trainBegin(s: TrainSetup) {
    await this.trainEnd();
    registerGradients();
    const net = new Net(await loadModel(s.model, s.arch), true);
    this.ownsNet = true;
    assignFlat(net.params, s.start);
    this.attach(net, s);
  }

  async trainGrads(batches: MicroBatch[]): Promise<MicroGrads> {
    const t0 = performance.now();
    const net = this.net!;
    const { at, rowShape, probs } = this.setup!;
    const vars = this.trained.map((p) => p.value);
    const size = vars.reduce((a, v) => a + v.size, 0);
    const micro = batches.map((b) => {
      const n = b.labels.length;
      const x = tf.tensor(b.rows, [n, ...rowShape]);
      const y = tf.tensor1d(b.labels, 'int32');
      const given = new Map<string, tf.Tensor>(at ? [[at, x]] : []);
      const { value, grads } = tf.variableGrads(() => crossEntropy(net.run(at ? undefined : x, [net.outputName], given).get(net.outputName)!, y, probs), vars);
      const flat = new Float32Array(size);
      let o = 0;
      for (const v of vars) {
        flat.set(grads[v.name].dataSync() as Float32Array, o);
        o += v.size;
      }
      const loss = value.dataSync()[0];
      tf.dispose([x, y, value, ...Object.values(grads)]);
      return { loss, grads: flat };
    });
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    return { micro, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  }

  async trainApply(grads: Float32Array) {
    const { options } = this.setup!;
    this.optimizer ??= options.optimizer === 'sgd' ? tf.train.sgd(options.learningRate) : tf.train.adam(options.learningRate);
    const named: tf.NamedTensorMap = {};
    let o = 0;
    for (const p of this.trained) {
      named[p.value.name] = tf.tensor(grads.subarray(o, o + p.value.size), p.value.shape, 'float32');
      o += p.value.size;
    }
    this.optimizer.applyGradients(named);
    tf.dispose(Object.values(named));
    this.keepPruned();
  }

  async trainWeights() {
    if (!this.net) throw new Error('no training in progress in this shard');
    return flatValues(this.net.params);
  }

  async trainEnd() {
    this.optimizer?.dispose();
    this.mask?.dispose();
    if (this.ownsNet) this.net?.dispose();
    this.optimizer = this.mask = this.net = this.setup = undefined;
    this.ownsNet = false;
    this.trained = [];
  }
}
