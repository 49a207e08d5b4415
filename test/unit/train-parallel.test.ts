// Data-parallel training: the batch gradient is the float64 sum of fixed
// micro-batches in order, so one process and two give the same weights, byte
// for byte, whether the shards are in this process or forked (dist/worker.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runAudit } from '../../src/core/audit/audit';
import { withPrunedChannels } from '../../src/core/audit/output';
import { makePlan } from '../../src/core/audit/plan';
import { Shard } from '../../src/core/audit/shard';
import { CancelledError } from '../../src/core/errors';
import { loadModel, type LoadedModel } from '../../src/core/keras/load';
import { initBackend } from '../../src/core/model/backend';
import { Net } from '../../src/core/model/net';
import { activationsOf, cacheFeed, imageFeed, readImageSet, type ImageSet } from '../../src/core/train/feed';
import { sunglassesTrigger } from '../../scripts/make-demo/dataset';
import { flatValues, GradientShard, MICRO_BATCH, type GradientWorker } from '../../src/core/train/gradientShard';
import { registerGradients } from '../../src/core/train/gradients';
import { train, type TrainProfile } from '../../src/core/train/trainer';
import type { AuditOptions, TrainEpoch } from '../../src/core/types';
import { ShardProcess } from '../../src/worker/shardProcess';
import { demo, needsDemo, tmpDir, workerPath } from '../helpers';

const needsBuild = existsSync(workerPath) ? false : 'needs dist/worker.mjs (npm run build)';

const trigger = { height: 55, width: 47, channels: 3, ...sunglassesTrigger() };

let ctx: { model: LoadedModel; set: ImageSet; conv: string; pruned: number[] } | undefined;

async function setup() {
  if (ctx) return ctx;
  await initBackend('wasm');
  registerGradients();
  const model = await loadModel(demo('bd_net.h5'));
  const b = new Net(model);
  const { conv } = makePlan(b, 'pool');
  b.dispose();
  const full = await readImageSet(demo('valid.h5'), model.graph.inputShape, 20);
  // 250 images in batches of 96: micro-batches of 32, 32, 32 | 32, 32, 32 | 32, 26, so
  // two shards get unequal shares and the last micro-batch is short.
  const n = 250;
  const per = full.images.length / full.count;
  const set = { ...full, count: n, images: full.images.slice(0, n * per), labels: full.labels!.slice(0, n) };
  ctx = { model, set, conv, pruned: [1, 4, 7] };
  return ctx;
}

/** Trains B' with the pruned channels for `epochs` on `workers` (none: in this process); its weights, bytes, and the epochs. */
async function trainWith(workers: GradientWorker[] | undefined, o: { epochs?: number; signal?: AbortSignal; onProfile?: (p: TrainProfile) => void; above?: boolean } = {}) {
  const { model, set, conv, pruned } = await setup();
  const net = new Net(withPrunedChannels(model, conv, pruned), true);
  try {
    const losses: number[] = [];
    // 'above': rows are cached activations after the pruned conv, a fifth of each batch stamped (unlearning).
    const images = imageFeed(set, model.graph.inputShape, o.above ? trigger : undefined);
    const at = makePlan(net, 'pool').cachePoint;
    const feed = o.above
      ? cacheFeed(at, net.shapes.get(at)!, await activationsOf(net, images, at, 128), await activationsOf(net, images, at, 128, true))
      : images;
    const epochs: TrainEpoch[] = await train({
      net, feed, labels: set.labels!, conv, pruned, share: o.above ? 0.2 : 0,
      options: { epochs: o.epochs ?? 1, learningRate: 1e-3, optimizer: 'adam', batchSize: 96, seed: 3 },
      monitor: async () => ({ validAccuracy: 1 }), workers, signal: o.signal, onProfile: o.onProfile,
      progress: (p) => losses.push(p.loss),
    });
    const weights = flatValues(net.params);
    // Kernel slices and biases of the pruned channels (channels are the last axis of both).
    let prunedNonZero = 0;
    for (const p of net.params.filter((q) => q.layer === conv)) {
      const v = p.value.dataSync();
      const channels = p.value.shape[p.value.rank - 1];
      for (let i = 0; i < v.length; i++) if (pruned.includes(i % channels) && v[i] !== 0) prunedNonZero++;
    }
    return { bytes: Buffer.from(weights.buffer), weights, losses, epochs, prunedNonZero };
  } finally {
    net.dispose();
  }
}

test('micro-batches are 32 images: the fixed unit that makes shard counts agree', () => {
  assert.equal(MICRO_BATCH, 32);
});

test('one process and two in-process shards give the same weights, byte for byte', { skip: needsDemo }, async () => {
  const one = await trainWith(undefined, { epochs: 2 });
  const { model } = await setup();
  const shards = [new GradientShard(), new GradientShard()];
  const two = await trainWith(shards, { epochs: 2 });
  // Training moved the weights, so equality is not the start's.
  const { conv, pruned } = ctx!;
  const start = new Net(withPrunedChannels(model, conv, pruned), true);
  const before = flatValues(start.params);
  start.dispose();
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== one.weights[i]) moved++;
  // Adam moves only weights with a gradient: dead ReLU units' weights keep theirs.
  assert.ok(moved > before.length / 10, `training changed ${moved} of ${before.length} weights`);
  assert.equal(one.losses.length, 2 * 3, 'progress per batch: 250 images / 96 = 3 batches a epoch');
  assert.deepEqual(two.losses, one.losses);
  assert.ok(one.bytes.equals(two.bytes), 'weights differ between 1 and 2 shards');
});

test('layers above the pruned one, on cached activations with stamped rows: two shards equal one, byte for byte', { skip: needsDemo }, async () => {
  const one = await trainWith(undefined, { above: true });
  const two = await trainWith([new GradientShard(), new GradientShard()], { above: true });
  assert.deepEqual(two.losses, one.losses);
  assert.ok(one.bytes.equals(two.bytes), 'weights differ between 1 and 2 shards');
  assert.ok(!one.bytes.equals((await trainWith(undefined)).bytes), 'training only the top differs from training every layer');
});

test('two forked shard processes give the same weights as one process, byte for byte; pruned channels stay zero', { skip: needsDemo || needsBuild }, async () => {
  const one = await trainWith(undefined);
  const shards = [new ShardProcess(workerPath), new ShardProcess(workerPath)];
  try {
    await Promise.all(shards.map((s) => s.init({ model: demo('bd_net.h5'), rankBy: 'pool', batchSize: 256, backend: 'wasm' })));
    const profiles: TrainProfile[] = [];
    const two = await trainWith(shards, { onProfile: (p) => profiles.push(p) });
    assert.deepEqual(two.losses, one.losses);
    assert.ok(one.bytes.equals(two.bytes), 'weights differ between this process and two shard processes');
    assert.equal(two.prunedNonZero, 0);
    await assert.rejects(shards[1].trainWeights(), /no training in progress/, 'a shard frees its copy when training ends');
    assert.equal(profiles.length, 1);
    assert.ok(profiles[0].compute > 0 && profiles[0].grads >= profiles[0].compute);
  } finally {
    await Promise.all(shards.map((s) => s.dispose()));
  }
});

test('cancel between batches with shards: CancelledError, and the shards let go of their copies', { skip: needsDemo }, async () => {
  const ac = new AbortController();
  const shards = [new GradientShard(), new GradientShard()];
  const grads = shards[0].trainGrads.bind(shards[0]);
  shards[0].trainGrads = async (b) => {
    ac.abort(); // during the first batch: the trainer stops before the second
    return grads(b);
  };
  await assert.rejects(trainWith(shards, { signal: ac.signal }), CancelledError);
  await assert.rejects(shards[1].trainWeights(), /no training in progress/, 'the copy is gone after the cancel');
});

test('an audit with two shard processes writes the same fine-tuned weights as with one shard', { skip: needsDemo || needsBuild }, async () => {
  const opts = (out: string): AuditOptions => ({
    model: demo('bd_net.h5'), cleanValid: demo('valid.h5'), poisonedValid: demo('bd_valid.h5'),
    thresholds: [2], order: 'increasing', rankBy: 'pool', fullSweep: false, batchSize: 256, backend: 'wasm', out,
    repair: { epochs: 1, learningRate: 1e-4, optimizer: 'adam', batchSize: 64, layers: 'all', share: 0, seed: 1 },
  });
  const dir = tmpDir();
  const a = await runAudit(opts(path.join(dir, 'one')), { shards: [new Shard()] });
  const procs = [new ShardProcess(workerPath), new ShardProcess(workerPath)];
  let b;
  try {
    b = await runAudit(opts(path.join(dir, 'two')), { shards: procs });
  } finally {
    await Promise.all(procs.map((s) => s.dispose()));
  }
  assert.deepEqual(b.thresholds[0].fineTuned!.epochs.map((e) => [e.loss, e.validAccuracy, e.validAttackRate]), a.thresholds[0].fineTuned!.epochs.map((e) => [e.loss, e.validAccuracy, e.validAttackRate]));
  const file = (which: string) => path.join(dir, which, a.thresholds[0].fineTuned!.repairedModel!);
  const [wa, wb] = await Promise.all([loadModel(file('one')), loadModel(file('two'))]);
  for (const [layer, ws] of wa.weights) {
    ws.forEach((w, i) => assert.ok(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).equals(Buffer.from(wb.weights.get(layer)![i].data.buffer, wb.weights.get(layer)![i].data.byteOffset, wb.weights.get(layer)![i].data.byteLength)), `${layer}/${w.name} differs`));
  }
});
