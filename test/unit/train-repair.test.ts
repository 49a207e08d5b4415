// Repair after pruning on the bundled demo BadNet: files read back predict
// exactly like the trained net in memory, the pruned channels stay zero,
// training is deterministic, divergence and cancel leave nothing behind, bad
// settings get clear errors, and unlearning with the demo's own trigger.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { runAudit } from '../../src/core/audit/audit';
import { OutputFolder } from '../../src/core/audit/output';
import { makePlan } from '../../src/core/audit/plan';
import { Shard } from '../../src/core/audit/shard';
import { stamp, writeTrigger } from '../../src/core/data/trigger';
import { CancelledError, UserError } from '../../src/core/errors';
import { inspectModel } from '../../src/core/inspect';
import { loadModel } from '../../src/core/keras/load';
import { initBackend } from '../../src/core/model/backend';
import { Net } from '../../src/core/model/net';
import { predictFiles } from '../../src/core/predict';
import { deriveTrigger } from '../../src/core/train/deriveTrigger';
import { readImageSet } from '../../src/core/train/feed';
import { checkRepairOptions } from '../../src/core/train/options';
import { repairThresholds } from '../../src/core/train/repair';
import type { AuditOptions, AuditReport, RepairOptions } from '../../src/core/types';
import { sunglassesTrigger } from '../../scripts/make-demo/dataset';
import { demo, needsDemo, tmpDir } from '../helpers';

const repair = (o: Partial<RepairOptions> = {}): RepairOptions => ({
  epochs: 1, learningRate: 1e-4, optimizer: 'adam', batchSize: 64, layers: 'above', share: 0.2, seed: 1, ...o,
});
const audit = (out: string, r: RepairOptions, thresholds = [2]): AuditOptions => ({
  model: demo('bd_net.h5'), cleanValid: demo('valid.h5'), poisonedValid: demo('bd_valid.h5'), cleanTest: demo('test.h5'), poisonedTest: demo('bd_test.h5'),
  thresholds, order: 'increasing', rankBy: 'pool', fullSweep: false, batchSize: 256, backend: 'wasm', out, repair: r,
});
const run = (o: AuditOptions, signal?: AbortSignal, progress?: Parameters<typeof runAudit>[1]['progress']) =>
  runAudit(o, { shards: [new Shard()], signal, progress });

/** The demo's trigger as the generator draws it, at the average pose. */
async function demoTrigger(dir: string) {
  const file = path.join(dir, 'sunglasses.h5');
  await writeTrigger(file, { height: 55, width: 47, channels: 3, ...sunglassesTrigger() });
  return file;
}

let first: AuditReport | undefined;
let firstOut = '';

test('fine-tuned B\' is written in Keras layout, its pruned channels still exactly zero, and read back it scores as in memory', { skip: needsDemo }, async () => {
  firstOut = path.join(tmpDir(), 'audit');
  const seen: string[] = [];
  const r = await run(audit(firstOut, repair()), undefined, (p) => { if (p.phase === 'training') seen.push(p.message); });
  first = r;
  const t = r.thresholds[0];
  const f = t.fineTuned!;
  assert.equal(f.method, 'fine-tune');
  assert.equal(f.repairedModel, 'repaired_2_finetuned.h5');
  assert.deepEqual(f.epochs.map((e) => e.epoch), [0, 1]);
  // Epoch 0 is B'_X before training: the sweep's own accuracy at that step.
  assert.equal(f.epochs[0].validAccuracy, t.validAccuracy);
  assert.ok(seen.some((m) => /epoch 1\/1, batch 13\/13/.test(m)), 'progress per batch (800 images / 64)');
  assert.deepEqual(readdirSync(firstOut).sort(), ['repaired_2.h5', 'repaired_2_finetuned.h5', 'report.json', 'report.md']);

  const file = path.join(firstOut, 'repaired_2_finetuned.h5');
  const info = await inspectModel(file);
  const conv = info.layers.find((l) => l.name === r.layer)!;
  assert.deepEqual(conv.zeroChannels, [...t.prunedChannels].sort((a, b) => a - b));
  const clean = await predictFiles(file, [demo('test.h5')]);
  assert.equal(clean.accuracy, f.prunedModel.testAccuracy);
  const poisoned = await predictFiles(file, [demo('bd_test.h5')]);
  assert.equal(poisoned.predictions.filter((p) => p.label === r.target).length / poisoned.predictions.length, f.prunedModel.testAttackRate);
});

test('the file holds exactly the trained weights, and predicts bit for bit like the net in memory', { skip: needsDemo }, async () => {
  assert.ok(first, 'needs the previous test');
  await initBackend('wasm');
  const model = await loadModel(demo('bd_net.h5'));
  const b = new Net(model);
  const plan = makePlan(b, 'pool');
  b.dispose();
  const t = { ...first.thresholds[0], fineTuned: undefined };
  const { results } = await repairThresholds({
    model, plan, options: repair(), target: 0, batchSize: 256,
    files: { cleanValid: demo('valid.h5'), poisonedValid: demo('bd_valid.h5') },
  }, [t]);
  const folder = new OutputFolder(path.join(tmpDir(), 'out'));
  await folder.writeModel('m.h5', results[0].model);
  const back = await loadModel(path.join(folder.tmp, 'm.h5'));
  for (const [layer, ws] of results[0].model.weights) {
    ws.forEach((w, i) => assert.deepEqual(back.weights.get(layer)![i].data, w.data, `${layer}/${w.name}`));
  }
  const images = await readImageSet(demo('test.h5'), model.graph.inputShape, 20);
  const x = tf.tensor4d(images.images.subarray(0, 64 * 55 * 47 * 3), [64, 55, 47, 3]);
  const inMemory = new Net(results[0].model), readBack = new Net(back);
  const [p1, p2] = [inMemory.predict(x), readBack.predict(x)];
  assert.deepEqual(p2.dataSync(), p1.dataSync());
  tf.dispose([x, p1, p2]);
  inMemory.dispose();
  readBack.dispose();
  folder.abandon();
});

test('same seed twice gives identical weights; another seed does not', { skip: needsDemo }, async () => {
  assert.ok(first, 'needs the first test');
  const again = path.join(tmpDir(), 'again');
  await run(audit(again, repair()));
  const other = path.join(tmpDir(), 'other');
  await run(audit(other, repair({ seed: 2 })));
  const weights = async (dir: string) => (await loadModel(path.join(dir, 'repaired_2_finetuned.h5'))).weights;
  const [a, b, c] = [await weights(firstOut), await weights(again), await weights(other)];
  let differs = false;
  for (const [layer, ws] of a) {
    ws.forEach((w, i) => {
      assert.deepEqual(b.get(layer)![i].data, w.data, `${layer}/${w.name} differs between two runs with seed 1`);
      if (w.data.some((v, k) => v !== c.get(layer)![i].data[k])) differs = true;
    });
  }
  assert.ok(differs, 'seed 2 shuffles differently, so its weights differ');
});

test('an absurd learning rate stops with an error that names it, and writes nothing', { skip: needsDemo }, async () => {
  const out = path.join(tmpDir(), 'diverged');
  await assert.rejects(run(audit(out, repair({ learningRate: 5 }))), (e: Error) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /training diverged .* with learning rate 5 \(adam\); try a smaller --lr\. No repaired model was saved/);
    return true;
  });
  assert.ok(!existsSync(out), 'no output folder');
  assert.ok(!readdirSync(path.dirname(out)).some((n) => n.includes('.partial-')), 'no partial folder left');
});

test('cancel during training writes nothing', { skip: needsDemo }, async () => {
  const out = path.join(tmpDir(), 'cancelled');
  const ac = new AbortController();
  await assert.rejects(run(audit(out, repair()), ac.signal, (p) => { if (p.phase === 'training' && (p.step ?? 0) >= 3) ac.abort(); }), CancelledError);
  assert.ok(!existsSync(out));
});

test('settings that make no sense and a trigger that does not fit get clear errors before any work', { skip: needsDemo }, async () => {
  const bad: [Partial<RepairOptions>, RegExp][] = [
    [{ epochs: 0 }, /--fine-tune 0/], [{ learningRate: 0 }, /--lr 0/], [{ learningRate: -1 }, /--lr -1/],
    [{ optimizer: 'rmsprop' as 'adam' }, /--optimizer rmsprop: use adam or sgd/], [{ batchSize: 0 }, /--train-batch 0/],
    [{ layers: 'some' as 'all' }, /--fine-tune-layers some/], [{ trigger: 'x.h5', triggerFromPoisoned: true }, /either --unlearn-trigger or --unlearn-from-poisoned/],
    [{ trigger: 'x.h5', share: 1 }, /--unlearn-share 1/], [{ seed: 1.5 }, /--seed 1.5/],
  ];
  for (const [o, re] of bad) assert.throws(() => checkRepairOptions(repair(o)), re);
  const dir = tmpDir();
  const wrong = path.join(dir, 'wrong.h5');
  await writeTrigger(wrong, { height: 32, width: 32, channels: 3, mask: new Float32Array(32 * 32), pattern: new Float32Array(32 * 32 * 3) });
  const t0 = performance.now();
  await assert.rejects(run(audit(path.join(dir, 'o'), repair({ trigger: wrong }))), /wrong\.h5: "mask" has shape \(32, 32\) but the model input needs \(55, 47\)/);
  assert.ok(performance.now() - t0 < 20000, 'refused while reading, before the sweep');
});

test('a trigger is derived from paired poisoned data; the demo\'s unpaired sets are refused with the reason', { skip: needsDemo }, async () => {
  const shape = [55, 47, 3];
  const clean = await readImageSet(demo('valid.h5'), shape, 20);
  const n = 40, per = 55 * 47 * 3;
  const some = { ...clean, count: n, images: clean.images.slice(0, n * per) };
  const t = { height: 55, width: 47, channels: 3, ...sunglassesTrigger() };
  const poisoned = { ...some, file: 'paired.h5', images: stamp(Float32Array.from(some.images), n, t) };
  const { trigger, info } = deriveTrigger(some, poisoned, shape);
  assert.equal(info.source, 'paired-poisoned');
  // Every pixel the stamp changes by more than the tolerance is found, and nothing else.
  const strong = Array.from(t.mask, (m, p) => (m > 0.05 ? p : -1)).filter((p) => p >= 0);
  for (const p of strong) assert.equal(trigger.mask[p], 1, `pixel ${p} (mask ${t.mask[p]})`);
  assert.ok(Array.from(trigger.mask).every((m, p) => m === 0 || t.mask[p] > 0), 'no pixel outside the trigger');
  const bd = await readImageSet(demo('bd_valid.h5'), shape, 20);
  assert.throws(() => deriveTrigger(clean, bd, shape), /do not pair with the clean ones image by image \(the median pair differs at \d+\.\d% of pixels\); give the trigger with --unlearn-trigger/);
});

test('demo: unlearning the sunglasses at the 2% threshold (every layer, the editor\'s 5 epochs)', { skip: needsDemo }, async (t) => {
  const dir = tmpDir();
  const r = await run(audit(path.join(dir, 'out'), repair({ epochs: 5, layers: 'all', trigger: await demoTrigger(dir) })));
  const row = r.thresholds[0];
  const f = row.fineTuned!;
  const g = row.goodNet, gu = f.goodNet;
  const line = `pruning only: G clean ${g.testAccuracy}, attack ${g.testAttackRate}; unlearned: G clean ${gu.testAccuracy}, attack ${gu.testAttackRate}`;
  t.diagnostic(line);
  assert.equal(f.method, 'unlearn');
  assert.equal(f.repairedModel, 'repaired_2_unlearned.h5');
  assert.equal(r.trigger?.source, 'file');
  // Issue 15's bar: G's attack rate at most a quarter of pruning alone's, with G's clean accuracy within 2 points
  // (after 2 epochs it was 2.25 points lower; README, Repair after pruning).
  assert.ok(gu.testAttackRate! <= g.testAttackRate! / 4, line);
  assert.ok(gu.testAccuracy! >= g.testAccuracy! - 0.02, line);
});
