// The audit checked exactly on a network worked out by hand, then on the lab's
// real BadNet against plain inference, then through the worker: cancel, kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runAudit } from '../../src/core/audit/audit';
import { Shard } from '../../src/core/audit/shard';
import { predictFiles } from '../../src/core/predict';
import type { AuditOptions, AuditReport, Backend } from '../../src/core/types';
import { JobCancelled, JobError, runJob } from '../../src/worker/client';
import { k3, lab, needsShared, tmpDir, workerPath } from '../helpers';
import { rng as seeded } from '../../scripts/prng';
import { writeTinyBadNet } from '../tinyBadNet';

const base = (o: Partial<AuditOptions> & Pick<AuditOptions, 'model' | 'cleanValid' | 'out'>): AuditOptions => ({
  thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: false, batchSize: 256, ...o,
});

test('tiny BadNet: ranking, sweep, thresholds and G metrics equal the hand computation', async () => {
  const dir = tmpDir();
  const f = await writeTinyBadNet(dir);
  const out = path.join(dir, 'audit');
  const opts = base({ model: f('tiny.h5'), cleanValid: f('valid.h5'), poisonedValid: f('bd_valid.h5'), cleanTest: f('test.h5'), poisonedTest: f('bd_test.h5'), thresholds: [10, 30, 50], fullSweep: true, out });
  // Two in-process shards: the split must not change any number.
  const r = await runAudit(opts, { shards: [new Shard(), new Shard()] });
  assert.equal(r.layer, 'conv');
  assert.equal(r.rankedBy, 'pool');
  assert.equal(r.classes, 3);
  assert.equal(r.target, 0);
  assert.deepEqual(r.ranking.map((c) => c.channel), [2, 1, 0]);
  assert.deepEqual(r.ranking.map((c) => c.meanActivation), [0, 0.5, 2.5]);
  assert.deepEqual(r.ranking.map((c) => c.meanActivationPoisoned), [4, 0.5, 7]);
  assert.deepEqual(r.baseline, { validAccuracy: 1, validAttackRate: 1, testAccuracy: 1, testAttackRate: 1 });
  assert.deepEqual(r.steps, [
    { pruned: 1, channel: 2, validAccuracy: 1, validAttackRate: 0 },
    { pruned: 2, channel: 1, validAccuracy: 0.8, validAttackRate: 0 },
    { pruned: 3, channel: 0, validAccuracy: 0.6, validAttackRate: 0 },
  ]);
  const [t10, t30, t50] = r.thresholds;
  assert.deepEqual([t10.reached, t10.pruned, t10.prunedChannels], [true, 2, [2, 1]]);
  assert.deepEqual(t10.prunedModel, { testAccuracy: 0.75, testAttackRate: 0 });
  assert.deepEqual(t10.goodNet, { testAccuracy: 0.75, testAttackRate: 0, cleanFlagged: 0.25, poisonedFlagged: 1 });
  assert.deepEqual([t30.reached, t30.pruned, t30.prunedChannels], [true, 3, [2, 1, 0]]);
  assert.deepEqual(t30.prunedModel, { testAccuracy: 0.5, testAttackRate: 0 });
  assert.deepEqual(t30.goodNet, { testAccuracy: 0.5, testAttackRate: 0, cleanFlagged: 0.5, poisonedFlagged: 1 });
  assert.equal(t50.reached, false);
  assert.equal(t50.repairedModel, undefined);
  assert.equal(r.repairedNetwork.flaggedClass, 3);

  // Outputs: report files and repaired models, which predict like B' in memory.
  assert.deepEqual(readdirSync(out).sort(), ['repaired_10.h5', 'repaired_30.h5', 'report.json', 'report.md']);
  assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')).steps, r.steps);
  assert.match(readFileSync(path.join(out, 'report.md'), 'utf8'), /\| 10% \| 2 \| 75\.0000 \| 0\.0000 \| 25\.0000 \| 100\.0000 \|/);
  const p10 = await predictFiles(path.join(out, 'repaired_10.h5'), [f('test.h5')]);
  assert.deepEqual(p10.predictions.map((p) => p.label), [1, 2, 2, 2]);
  const p30 = await predictFiles(path.join(out, 'repaired_30.h5'), [f('bd_test.h5')]);
  assert.deepEqual(p30.predictions.map((p) => p.label), [1, 1]);
  assert.ok(!readdirSync(dir).some((n) => n.includes('.partial-')), 'no partial folder left');
});

test('tiny BadNet: stops at the last threshold unless --full-sweep; decreasing order; no poisoned data', async () => {
  const dir = tmpDir();
  const f = await writeTinyBadNet(dir);
  const r = await runAudit(base({ model: f('tiny.h5'), cleanValid: f('valid.h5'), thresholds: [10], out: path.join(dir, 'a') }), { shards: [new Shard()] });
  assert.equal(r.steps.length, 2);
  assert.equal(r.baseline.validAttackRate, undefined);
  assert.equal(r.steps[0].validAttackRate, undefined);
  assert.equal(r.thresholds[0].goodNet.testAccuracy, undefined);
  const d = await runAudit(base({ model: f('tiny.h5'), cleanValid: f('valid.h5'), order: 'decreasing', thresholds: [30], out: path.join(dir, 'b') }), { shards: [new Shard()] });
  assert.deepEqual(d.ranking.map((c) => c.channel), [0, 1, 2]);
  // pruning ch0 first: l2 = -2 for every clean image, so labels 2 are lost: 60%
  assert.equal(d.steps[0].validAccuracy, 0.6);
  assert.equal(d.thresholds[0].pruned, 1);
});

test('lab BadNet on the real faces: each recorded step equals plain inference of the pruned model', { skip: needsShared }, async () => {
  const dir = tmpDir();
  const out = path.join(dir, 'audit');
  const r = await runAudit(base({
    model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'),
    cleanValid: lab('faces_clean.h5'), poisonedValid: lab('faces_sunglasses.h5'),
    cleanTest: lab('faces_clean.h5'), poisonedTest: lab('faces_sunglasses.h5'),
    thresholds: [2, 30, 50], fullSweep: true, out,
  }), { shards: [new Shard()] });
  assert.equal(r.layer, 'conv_3');
  assert.equal(r.rankedBy, 'pool_3');
  assert.equal(r.classes, 1283);
  assert.equal(r.repairedNetwork.flaggedClass, 1283);
  assert.equal(r.steps.length, 60);
  assert.deepEqual([...r.steps.map((s) => s.channel)].sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i));
  const means = r.ranking.map((c) => c.meanActivation);
  assert.ok(means.every((m, i) => i === 0 || m >= means[i - 1]), 'increasing order');
  for (const t of r.thresholds.filter((t) => t.reached)) {
    const clean = await predictFiles(path.join(out, t.repairedModel!), [lab('faces_clean.h5')]);
    const bd = await predictFiles(path.join(out, t.repairedModel!), [lab('faces_sunglasses.h5')]);
    assert.equal(clean.accuracy, t.validAccuracy, `repaired_${t.drop} clean accuracy`);
    assert.equal(clean.accuracy, t.prunedModel.testAccuracy);
    assert.equal(bd.predictions.filter((p) => p.label === 0).length / 5, t.prunedModel.testAttackRate);
    const step = r.steps[t.pruned - 1];
    assert.equal(step.validAttackRate, t.prunedModel.testAttackRate);
  }
});

test('worker: an audit through the child process; cancel leaves nothing; a killed worker is a clear error', { skip: needsShared }, async () => {
  const dir = tmpDir();
  const opts = base({
    model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'),
    cleanValid: lab('faces_clean.h5'), poisonedValid: lab('faces_sunglasses.h5'), thresholds: [2], out: path.join(dir, 'audit'), workers: 2,
  });
  const phases = new Set<string>();
  const r = await runJob<AuditReport>({ kind: 'audit', options: opts }, { workerPath, onProgress: (p) => phases.add(p.phase) });
  assert.equal(r.workers, 2);
  assert.ok(phases.has('sweep') && phases.has('lower-layers') && phases.has('done'), [...phases].join());
  const before = readFileSync(path.join(dir, 'audit/report.json'), 'utf8');

  // Cancel at the first sweep step: the earlier report stays as it was.
  const ac = new AbortController();
  await assert.rejects(runJob({ kind: 'audit', options: { ...opts, fullSweep: true } }, {
    workerPath, signal: ac.signal, onProgress: (p) => { if (p.phase === 'sweep') ac.abort(); },
  }), JobCancelled);
  assert.equal(readFileSync(path.join(dir, 'audit/report.json'), 'utf8'), before);
  assert.deepEqual(readdirSync(dir), ['audit']);

  // Kill the worker mid-run.
  let killed = false;
  await assert.rejects(runJob({ kind: 'audit', options: { ...opts, fullSweep: true } }, {
    workerPath,
    onSpawn: (child) => { setTimeout(() => { killed = child.kill('SIGKILL'); }, 200); },
  }), (e: unknown) => e instanceof JobError && /killed \(SIGKILL\)/.test(e.message));
  assert.ok(killed);
  assert.equal(readFileSync(path.join(dir, 'audit/report.json'), 'utf8'), before);
  assert.deepEqual(readdirSync(dir), ['audit']);
  assert.ok(!existsSync(path.join(dir, 'audit.partial')));
});

/** `fn` with every sweep step and B' recomputing the whole top: the reference for the frontier. */
async function withoutFrontier<T>(fn: () => Promise<T>): Promise<T> {
  process.env.BACKDOOR_AUDIT_NO_FRONTIER = '1';
  try {
    return await fn();
  } finally {
    delete process.env.BACKDOOR_AUDIT_NO_FRONTIER;
  }
}

/**
 * Seeded random sweep steps and B' masks on `model`, with the frontier and with full
 * recomputation: any set of channels in any order (random subsets, prefixes of a random
 * ranking, all of them, none), a mask twice, and every channel last.
 */
async function randomAgainstFull(init: { model: string; layer?: string; backend: Backend }, valid: string[], test: string[], n: number, seed: number) {
  const rng = seeded(seed);
  let channels = 0;
  const masks = (count: number) => {
    const shuffled = () => rng.shuffle(Array.from({ length: channels }, (_, c) => c));
    const one = () => {
      const kind = rng.int(4);
      if (kind === 0) return shuffled().filter(() => rng.next() < 0.5);
      if (kind === 1) return shuffled().slice(0, rng.int(channels));
      return kind === 2 ? shuffled() : [];
    };
    const ms = Array.from({ length: count }, one);
    return [...ms, ms[1], shuffled()];
  };
  let stepMasks: number[][] = [], evalMasks: number[][] = [];
  const run = async () => {
    const sh = new Shard();
    const info = await sh.init({ ...init, rankBy: 'pool', batchSize: 7 });
    assert.equal(info.backend, init.backend);
    if (!channels) {
      channels = info.plan.channels;
      stepMasks = masks(12);
      evalMasks = masks(6);
    }
    for (const file of valid) await sh.load({ set: file, file, start: 0, end: n, samples: 0, source: 'clean' });
    const steps = [];
    for (const m of stepMasks) steps.push(await sh.step(m, 0));
    const evals = [];
    for (const file of test) evals.push(await sh.evaluate({ file, start: 0, end: n }, evalMasks, 0, info.classes));
    await sh.dispose();
    return { steps, evals };
  };
  const fast = await run();
  assert.deepEqual(fast, await withoutFrontier(run));
  return fast;
}

// The frontier's checks against full recomputation, on each engine.
for (const backend of ['onnxruntime', 'wasm'] as const) {
  test(`lab BadNet: the incremental frontier gives the same sweep and G numbers as full recomputation (${backend})`, { skip: needsShared }, async () => {
    const dir = tmpDir();
    const opts = (out: string) => base({
      model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'),
      cleanValid: lab('faces_clean.h5'), poisonedValid: lab('faces_sunglasses.h5'),
      cleanTest: lab('faces_clean.h5'), poisonedTest: lab('faces_sunglasses.h5'),
      thresholds: [2, 30, 50], fullSweep: true, out, backend,
    });
    const fast = await runAudit(opts(path.join(dir, 'a')), { shards: [new Shard()] });
    const plain = await withoutFrontier(() => runAudit(opts(path.join(dir, 'b')), { shards: [new Shard()] }));
    assert.equal(fast.backend, backend);
    assert.deepEqual(fast.steps, plain.steps);
    assert.deepEqual(fast.thresholds.map(({ repairedModel: _, ...t }) => t), plain.thresholds.map(({ repairedModel: _, ...t }) => t));
    assert.deepEqual(fast.baseline, plain.baseline);
  });

  test(`lab BadNet: steps that put channels back, and masks that do not nest, equal full recomputation (${backend})`, { skip: needsShared }, async () => {
    const init = { model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'), rankBy: 'pool' as const, batchSize: 3, backend };
    const run = async () => {
      const sh = new Shard();
      await sh.init(init);
      const loads = [];
      for (const [set, file] of [['cleanValid', 'faces_clean.h5'], ['poisonedValid', 'faces_sunglasses.h5']]) {
        loads.push(await sh.load({ set, file: lab(file), start: 0, end: 5, samples: 0, source: 'clean' }));
      }
      const sums = loads[0].rankSums;
      const order = sums.map((_, c) => c).sort((a, b) => sums[a] - sums[b] || a - b);
      // Prune most channels, put most back (the removed path), then a set that is no prefix of the order.
      const steps = [];
      for (const channels of [order.slice(0, 56), order.slice(0, 20), order.slice(30)]) steps.push(await sh.step(channels, 0));
      // B' masks: every channel in ranked order, some that nest and some that do not, one met twice (two
      // thresholds reached at the same step), and none.
      const masks = [order, order.slice(0, 40), [...order.slice(0, 10), ...order.slice(45)], order.slice(0, 57), order.slice(0, 40), []];
      const evals = [];
      for (const file of ['faces_clean.h5', 'faces_sunglasses.h5']) evals.push(await sh.evaluate({ file: lab(file), start: 0, end: 5 }, masks, 0, 1283));
      await sh.dispose();
      return { steps, evals };
    };
    const fast = await run();
    assert.deepEqual(fast, await withoutFrontier(run));
    // Not vacuous: the steps and masks do change labels, and the empty mask is B itself.
    assert.ok(fast.steps.some((st) => st.cleanValid.correct < 5));
    assert.ok(fast.evals[0].masks.some((m) => m.pruned.correct < 5));
    assert.deepEqual(fast.evals[0].masks[5].pruned, fast.evals[0].bad);
  });

  test(`demo BadNet: random steps and B' masks equal full recomputation (seeded, ${backend})`, async () => {
    const d = (f: string) => path.resolve('demo', f);
    const fast = await randomAgainstFull({ model: d('bd_net.h5'), backend }, [d('valid.h5'), d('bd_valid.h5')], [d('test.h5'), d('bd_test.h5')], 64, 9163);
    // Not vacuous: the masks change labels.
    assert.ok(fast.steps.some((st) => st[d('valid.h5')].correct < 64) && fast.evals[0].masks.some((m) => m.pruned.correct < fast.evals[0].bad.correct));
  });

  test(`keras3-small (BatchNorm below, tanh and ReLU branches above, zero biases): random steps and masks equal full recomputation (${backend})`, { skip: needsShared }, async () => {
    // Untrained: its biases are zero, so a row whose channels are all pruned has all-zero logits, a tie
    // that only exact values resolve like Keras (class 0).
    for (const seed of [1, 2, 3]) {
      const fast = await randomAgainstFull({ model: k3('model.h5'), backend }, [k3('inputs.h5')], [k3('inputs.h5')], 8, seed);
      assert.ok(fast.evals[0].masks.some((m) => m.pruned.correct < 8));
    }
  });
}

test('demo BadNet: the ranking\'s mean activations do not depend on batch size or shard count', async () => {
  const d = (f: string) => path.resolve('demo', f);
  const dir = tmpDir();
  const rankings = [];
  for (const [batchSize, shards] of [[7, 1], [256, 2]]) {
    const r = await runAudit(base({ model: d('bd_net.h5'), cleanValid: d('valid.h5'), poisonedValid: d('bd_valid.h5'), thresholds: [2], batchSize, out: path.join(dir, `b${batchSize}`) }),
      { shards: Array.from({ length: shards }, () => new Shard()) });
    rankings.push(r.ranking);
  }
  assert.deepEqual(rankings[0], rankings[1]);
  assert.ok(rankings[0].some((c) => c.meanActivation > 0 && !Number.isInteger(c.meanActivation * 1e6)));
});
