// The scan on real models: gradients against finite differences, the verdicts
// on the demo BadNet, its clean twin and the lab's BadNet, cancel, the audit
// with a reconstructed trigger against plain inference, and the stimulation
// shared out over shards against one pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openDataset } from '../../src/core/data/dataset';
import { readTrigger, stamp, writeTrigger, type Trigger } from '../../src/core/data/trigger';
import { makePlan } from '../../src/core/audit/plan';
import { loadRunnable } from '../../src/core/runnable';
import { InputGradient } from '../../src/core/scan/backprop';
import { readImages } from '../../src/core/scan/shard';
import { compromisedSites, layerMaxOf, levelsFor, respond, spreadIndices, stimulate, summarise } from '../../src/core/scan/stimulate';
import { TriggerParams } from '../../src/core/scan/params';
import { lossAndGrads } from '../../src/core/scan/trigger';
import { anomalyIndices, decide, rateLowerBound, verdictWord, works } from '../../src/core/scan/verdict';
import type { AuditReport, ScanChannelTrigger, ScanLabel, ScanOptions, ScanProgress, ScanReport } from '../../src/core/types';
import { JobCancelled, runJob } from '../../src/worker/client';
import { demo, lab, needsDemo, needsShared, repoRoot, tmpDir, workerPath } from '../helpers';
import { writeTinyBadNet } from '../tinyBadNet';

// A verdict scan optimises 20-23 labels (~1,600 image passes each): minutes on 2 shared cores.
const slow = process.env.BDA_SCAN_VERDICTS ? false : 'a full scan takes minutes on 2 cores; set BDA_SCAN_VERDICTS=1 to run it';
// Misses with the papers' thresholds (numbers in the README's Scan section); the tests state the required outcome.
const MISS_LINE = 'line BadNet: label 3 has the smallest mask (L1 ~38, median ~149) but its anomaly index is ~1.4; the best channel trigger sends ~82% of held-out images to 3 (< 90%); a line across the image has no compromised site';
const MISS_LAB = 'lab BadNet on 5 faces: with 3 faces to optimise on, the smallest masks (labels 793 and 0) overfit and their triggers turn 0 and 1 of the 2 held-out faces; channel 11 (stimulated: 0) has a trigger that turns both held-out faces into label 708, 2 of 2: too few to call';

// The gradients run on ONNX Runtime where it loads (the default) and on tfjs otherwise: float noise apart, the same
// steps, so each verdict (and cancel) is checked on both.
const VERDICT_BACKENDS = ['onnxruntime', 'wasm'] as const;

const scanOpts = (o: Pick<ScanOptions, 'model' | 'clean' | 'out'> & Partial<ScanOptions>): ScanOptions => ({
  images: 200, labels: 3, calibration: 20, seed: 1, batchSize: 256, backend: 'wasm', ...o,
});

for (const backend of ['wasm', 'onnxruntime'] as const) test(`${backend}: loss gradient w.r.t. mask and pattern parameters equals central finite differences`, { skip: needsDemo }, async () => {
  const { net } = await loadRunnable(demo('bd_net.h5'), undefined, backend);
  const top = new InputGradient(net);
  assert.equal(top.engine, backend === 'wasm' ? 'tfjs' : 'onnxruntime');
  const src = await openDataset(demo('valid.h5'), net.graph.inputShape, net.classes);
  const x = src.read(0, 3);
  src.close();
  const a = tf.randomUniform([55 * 47], -1, 1, 'float32', 3).dataSync() as Float32Array;
  const b = tf.randomUniform([55 * 47 * 3], -1, 1, 'float32', 4).dataSync() as Float32Array;
  const cost = 1e-3, label = 7;
  const params = (a2: Float32Array, b2: Float32Array) => new TriggerParams([55, 47, 3], 0, 255, a2, b2);
  const at = params(a, b);
  const r = await lossAndGrads(top, at, x, 3, label, cost);
  const { ga, gb } = at.paramGrads(r.gm, r.gp, cost);
  const loss = async (a2: Float32Array, b2: Float32Array) => (await lossAndGrads(top, params(a2, b2), x, 3, label, cost)).loss;
  // The loss is computed from float32 logits (about 7 digits, ~1e-6 absolute at a loss near 1-10).
  // With eps = 1e-2 the rounding error of a central difference is ~1e-6/1e-2 = 1e-4, the
  // truncation error ~eps² × third derivative, also small: compare the largest entries,
  // where 1e-4 is a small fraction of the value, within 5% relative.
  const check = async (grad: Float32Array, which: 'a' | 'b') => {
    const base = which === 'a' ? a : b;
    const top5 = Array.from(grad.keys()).sort((i, j) => Math.abs(grad[j]) - Math.abs(grad[i])).slice(0, 5);
    for (const i of top5) {
      const eps = 1e-2;
      const plus = Float32Array.from(base); plus[i] += eps;
      const minus = Float32Array.from(base); minus[i] -= eps;
      const fp = which === 'a' ? await loss(plus, b) : await loss(a, plus);
      const fm = which === 'a' ? await loss(minus, b) : await loss(a, minus);
      const fd = (fp - fm) / (2 * eps);
      assert.ok(Math.abs(fd - grad[i]) <= 0.05 * Math.abs(grad[i]) + 2e-4, `${which}[${i}]: analytic ${grad[i]}, finite difference ${fd}`);
    }
  };
  await check(ga, 'a');
  await check(gb, 'b');
  top.dispose();
  net.dispose();
});

test('anomaly index: the small side is positive, scaled by 1.4826 MAD', () => {
  const ai = anomalyIndices([10, 100, 110, 90, 105, 95]);
  // median 97.5; deviations 87.5, 2.5, 12.5, 7.5, 7.5, 2.5 -> MAD 7.5
  assert.ok(Math.abs(ai[0] - 87.5 / (1.4826 * 7.5)) < 1e-12);
  assert.ok(ai[2] < 0);
  assert.deepEqual(anomalyIndices([5, 5, 5]), [0, 0, 0]);
});

for (const backend of ['wasm', 'onnxruntime'] as const) test(`${backend}: inner head: the gradient of a conv channel\'s mean equals central finite differences`, { skip: needsDemo }, async () => {
  const { net } = await loadRunnable(demo('bd_net.h5'), undefined, backend);
  const inner = new InputGradient(net, { head: 'conv_3' });
  assert.equal(inner.engine, backend === 'wasm' ? 'tfjs' : 'onnxruntime');
  const src = await openDataset(demo('valid.h5'), net.graph.inputShape, net.classes);
  const base = src.read(0, 2);
  src.close();
  const C = 48;
  const positions = inner.width / C;
  // the loss: channel 4's mean over both images and every position of its map
  const seed = new Float32Array(2 * inner.width);
  for (let i = 4; i < seed.length; i += C) seed[i] = 1 / (2 * positions);
  const channelMean = (flat: Float32Array) => flat.reduce((acc, v, i) => (i % C === 4 ? acc + v : acc), 0) / (2 * positions);
  const { logits, dx: g } = await inner.gradientOf(base, 2, { given: seed });
  assert.equal(logits.length, 2 * inner.width);
  const f = async (v: Float32Array) => channelMean(await inner.forward(v, 2));
  // Pixel values are 0-255: a step of 0.5 keeps most ReLUs on one side, float32 noise ~1e-6/0.5.
  for (const i of Array.from(g.keys()).sort((p, q) => Math.abs(g[q]) - Math.abs(g[p])).slice(0, 5)) {
    const plus = Float32Array.from(base); plus[i] += 0.5;
    const minus = Float32Array.from(base); minus[i] -= 0.5;
    const fd = (await f(plus) - await f(minus)) / 1;
    assert.ok(Math.abs(fd - g[i]) <= 0.05 * Math.abs(g[i]) + 1e-5, `x[${i}]: analytic ${g[i]}, finite difference ${fd}`);
  }
  inner.dispose();
  net.dispose();
});

test('verdict: a channel\'s own trigger flags its label, a mask-size outlier too; both tests first, then by anomaly index', () => {
  const label = (l: number, maskL1: number, anomalyIndex: number, triggerAttackRate = 0.95): ScanLabel =>
    ({ label: l, role: 'candidate', maskL1, anomalyIndex, triggerAttackRate, heldOut: 95 });
  const own = (channel: number, l: number, attackRate: number): ScanChannelTrigger =>
    ({ channel, stimulatedLabel: l, maskL1: 100, activation: 5, cleanActivation: 1, label: l, heldOut: 95, attackRate });
  const labels = [label(0, 25, 1.6), label(1, 30, 2.5), label(2, 120, 0), label(3, 150, -0.5)];
  const clean = decide(labels.map((l) => ({ ...l, anomalyIndex: Math.min(l.anomalyIndex, 1.9) })), [], [own(5, 0, 0.89)], 'conv_3', 0.06);
  assert.equal(clean.verdict, 'clean');
  assert.ok(clean.evidence.some((e) => e.includes('channel 5') && e.includes('89.0%')), clean.evidence.join('\n'));
  const one = decide(labels, [], [own(5, 0, 0.9), own(7, 2, 0.5)], 'conv_3', 0.06);
  assert.equal(one.verdict, 'backdoor');
  assert.deepEqual(one.targets.map((t) => [t.label, t.foundBy, t.channels]), [[1, ['mask-size'], []], [0, ['channel-trigger'], [5]]]);
  const both = decide(labels, [], [own(5, 1, 0.97)], 'conv_3', 0.06);
  assert.deepEqual(both.targets.map((t) => [t.label, t.foundBy]), [[1, ['mask-size', 'channel-trigger']]]);
  // 2 of 2 held-out images is 100%, but too few to call a majority (95% lower bound 22%).
  const few = decide(labels.map((l) => ({ ...l, anomalyIndex: 0 })), [], [{ ...own(5, 0, 1), heldOut: 2 }], 'conv_3', 0.06);
  assert.equal(few.verdict, 'clean');
  assert.ok(few.evidence.some((e) => e.includes('2 of 2') && e.includes('22.4%')), few.evidence.join('\n'));
  // A trigger that leaves its channel where clean images have it does not speak for the channel.
  const idle = decide(labels.map((l) => ({ ...l, anomalyIndex: 0 })), [], [{ ...own(5, 0, 1), activation: 0, cleanActivation: 0 }], 'conv_3', 0.06);
  assert.equal(idle.verdict, 'clean');
  // A compromised site's trigger flags its label as a channel's does, and the evidence says where.
  const sites = { sites: [{ channel: 9, position: [4, 3] as [number, number], label: 2, flipRate: 0.97, level: 8, logitRise: 9, elevation: 12 }], siteTriggers: [{ ...own(9, 2, 1), position: [4, 3] as [number, number] }], cachePoint: 'pool_3' };
  const site = decide(labels.map((l) => ({ ...l, anomalyIndex: 0 })), [], [own(5, 0, 0.5)], 'conv_3', 0.06, sites);
  assert.deepEqual(site.targets.map((t) => [t.label, t.foundBy, t.channels]), [[2, ['site-trigger'], [9]]]);
  assert.ok(site.evidence.some((e) => e.includes('channel 9 at (4, 3) of pool_3')), site.evidence.join('\n'));
  const siteMiss = decide(labels.map((l) => ({ ...l, anomalyIndex: 0 })), [], [], 'conv_3', 0.06, { ...sites, siteTriggers: [{ ...sites.siteTriggers[0], attackRate: 0.6 }] });
  assert.equal(siteMiss.verdict, 'clean');
  assert.ok(siteMiss.evidence.some((e) => e.includes('no site\'s trigger serves a label') && e.includes('60.0%')), siteMiss.evidence.join('\n'));
  const tiny = decide(labels.map((l) => ({ ...l, anomalyIndex: 0, heldOut: 2 })), [], [{ ...own(5, 0, 1), heldOut: 2 }], 'conv_3', 0.06);
  assert.ok(tiny.evidence.some((e) => e.startsWith('only 2 held-out clean images')), tiny.evidence.join('\n'));
  // No test can fire on 2 held-out images: the clean verdict says nothing, and says so.
  assert.deepEqual([tiny.verdict, tiny.conclusive, verdictWord(tiny)], ['clean', false, 'inconclusive']);
  assert.ok(!few.evidence.some((e) => e.startsWith('only ')), 'labels checked on 95 images can confirm a trigger');
  assert.deepEqual([few.verdict, few.conclusive, verdictWord(few)], ['clean', true, 'clean']);
  assert.deepEqual([one.conclusive, verdictWord(one)], [true, 'backdoor']);
  // 5 of 5 can confirm (lower bound 55%): a site's trigger checked on 5 images makes the verdict conclusive.
  const fiveSites = { ...sites, siteTriggers: [{ ...sites.siteTriggers[0], heldOut: 5, attackRate: 0.6 }] };
  assert.equal(decide(labels.map((l) => ({ ...l, anomalyIndex: 0, heldOut: 2 })), [], [], 'conv_3', 0.06, fiveSites).conclusive, true);
  assert.equal(verdictWord({ verdict: 'clean' }), 'clean', 'scans written before the field are read as conclusive');
});

test('rate lower bound: one-sided 95% Clopper-Pearson', () => {
  // k = n has the closed form 0.05^(1/n); 8 of 10 is the textbook 0.4931 (the lower end of the two-sided 90% interval).
  assert.ok(Math.abs(rateLowerBound(2, 2) - Math.sqrt(0.05)) < 1e-9);
  assert.ok(Math.abs(rateLowerBound(5, 5) - 0.05 ** 0.2) < 1e-9);
  assert.ok(Math.abs(rateLowerBound(8, 10) - 0.4931) < 1e-4, String(rateLowerBound(8, 10)));
  assert.equal(rateLowerBound(0, 10), 0);
  assert.ok(works(90 / 95, 95) && !works(1, 2) && works(1, 5) && !works(1, 4) && !works(0.89, 1000));
});

async function scan(opts: ScanOptions, onProgress?: (p: ScanProgress) => void, signal?: AbortSignal) {
  return runJob<ScanReport>({ kind: 'scan', options: opts }, { workerPath, onProgress, signal });
}

for (const backend of VERDICT_BACKENDS) test(`demo BadNet: backdoor, target 0, with its trigger files (${backend})`, { skip: needsDemo || slow }, async () => {
  const out = path.join(tmpDir(), 'bd.scan');
  const r = await scan(scanOpts({ model: demo('bd_net.h5'), clean: demo('valid.h5'), out, backend }));
  assert.equal(r.verdict, 'backdoor', r.evidence.join('\n'));
  assert.equal(r.targets[0].label, 0);
  assert.ok(r.targets[0].foundBy.length > 0);
  assert.equal(r.channelTriggers.length, 10);
  assert.equal(r.labelsOptimised.length, 20, 'every label of a 20-class model');
  assert.equal(r.channels.length, 48);
  const files = readdirSync(out);
  for (const f of ['scan.json', 'scan.md', 'trigger_0.h5', 'trigger_0_mask.png', 'trigger_0_pattern.png']) assert.ok(files.includes(f), f);
  const t = await readTrigger(path.join(out, 'trigger_0.h5'), [55, 47, 3]);
  assert.ok(Math.abs(t.mask.reduce((x, y) => x + y, 0) - r.targets[0].maskL1) < 1e-2 * r.targets[0].maskL1);
  assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'scan.json'), 'utf8')).targets, r.targets);
});

for (const backend of VERDICT_BACKENDS) test(`demo clean twin: clean (${backend})`, { skip: needsDemo || (existsSync(demo('clean_net.h5')) ? false : 'needs demo/clean_net.h5') || slow }, async () => {
  const out = path.join(tmpDir(), 'clean.scan');
  const r = await scan(scanOpts({ model: demo('clean_net.h5'), clean: demo('valid.h5'), out, backend }));
  assert.equal(r.verdict, 'clean', r.evidence.join('\n'));
  assert.deepEqual(r.targets, []);
  assert.ok(r.channelTriggers.every((t) => t.attackRate < 0.9 && t.maskL1 <= 0.06 * 55 * 47 + 1e-3));
  assert.ok((r.siteTriggers ?? []).every((t) => t.attackRate < 0.9), 'no compromised site has a working trigger');
});

for (const backend of VERDICT_BACKENDS) test(`second demo BadNet (5×5 corner patch, target 7): backdoor, target 7 (${backend})`, { skip: needsDemo || (existsSync(demo('bd_net_patch.h5')) ? false : 'needs demo/bd_net_patch.h5') || slow }, async () => {
  const out = path.join(tmpDir(), 'patch.scan');
  const r = await scan(scanOpts({ model: demo('bd_net_patch.h5'), clean: demo('valid.h5'), out, backend }));
  assert.equal(r.verdict, 'backdoor', r.evidence.join('\n'));
  assert.equal(r.targets[0].label, 7);
  // Found at the patch's corner of the map: no reversed channel's whole-map trigger serves 7 (see the README).
  assert.ok(r.targets[0].foundBy.includes('site-trigger'), r.targets[0].foundBy.join());
  assert.ok((r.sites ?? []).length > 0 && r.sites!.every((st) => st.label === 7 && st.position.join() === '4,3'), JSON.stringify(r.sites));
});

// BadNets trained after the sites were built, their triggers fixed before any scan (scripts/make-demo --held-out).
const heldOutModel = (kind: string) => path.join(repoRoot, 'test/models', `bd_net_${kind}.h5`);
for (const backend of VERDICT_BACKENDS) test(`held-out BadNet (6×6 noise patch, upper left, target 12): backdoor, target 12 first (${backend})`, { skip: needsDemo || slow }, async () => {
  const r = await scan(scanOpts({ model: heldOutModel('noise'), clean: demo('valid.h5'), out: path.join(tmpDir(), 'noise.scan'), backend }));
  assert.equal(r.verdict, 'backdoor', r.evidence.join('\n'));
  assert.equal(r.targets[0].label, 12);
  assert.ok((r.sites ?? []).length > 0 && r.sites!.every((st) => st.label === 12 && st.position.join() === '0,0'), JSON.stringify(r.sites));
});

for (const backend of VERDICT_BACKENDS) test(`held-out BadNet (one-pixel line across the image, target 3): backdoor, target 3 (${backend})`, { skip: needsDemo || slow, todo: MISS_LINE }, async () => {
  const r = await scan(scanOpts({ model: heldOutModel('line'), clean: demo('valid.h5'), out: path.join(tmpDir(), 'line.scan'), backend }));
  assert.equal(r.verdict, 'backdoor', r.evidence.join('\n'));
  assert.equal(r.targets[0].label, 3);
});

test('sites: on the patch BadNet a channel stimulated at the patch\'s corner alone flips the images to 7; over its whole map it does not', { skip: needsDemo || (existsSync(demo('bd_net_patch.h5')) ? false : 'needs demo/bd_net_patch.h5') }, async () => {
  const { net } = await loadRunnable(demo('bd_net_patch.h5'), undefined, 'wasm');
  const top = new InputGradient(net);
  const plan = makePlan(net, 'pool');
  const src = await openDataset(demo('valid.h5'), net.graph.inputShape, net.classes);
  const n = 40;
  const pixels = readImages(src, spreadIndices(src.info.count, n), 55 * 47 * 3);
  src.close();
  const x = tf.tensor4d(pixels, [n, 55, 47, 3]);
  const cache = net.run(x, [plan.cachePoint]).get(plan.cachePoint)!;
  const data = (await cache.data()) as Float32Array;
  const shape = cache.shape as [number, number, number, number];
  const cleanPred = Int32Array.from(await tf.argMax(top.logits(undefined, new Map([[plan.cachePoint, cache]])), 1).data());
  const layerMax = layerMaxOf(data);
  const input = { top, cachePoint: plan.cachePoint, cache: data, shape, cleanPred, levels: levelsFor(layerMax), channels: [20], batchRows: 2048 };
  const sites = compromisedSites([await respond({ ...input, sites: true })], layerMax, net.classes, cleanPred, [shape[1], shape[2]]);
  assert.deepEqual(sites.map((st) => [st.channel, st.position, st.label]), [[20, [4, 3], 7]]);
  assert.ok(sites[0].flipRate >= 0.9);
  const whole = summarise([await respond(input)], layerMax, net.classes, cleanPred).channels[0];
  assert.ok(!(whole.compromised && whole.label === 7), `whole map: ${whole.flipRate} to ${whole.label}`);
  tf.dispose([x, cache]);
  top.dispose();
  net.dispose();
});

for (const backend of VERDICT_BACKENDS) test(`lab BadNet with only the 5 clean fixture faces: backdoor, target 0 (${backend})`, { skip: needsShared || slow, todo: MISS_LAB }, async () => {
  const out = path.join(tmpDir(), 'lab.scan');
  const r = await scan(scanOpts({
    model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'), clean: lab('faces_clean.h5'), out, backend,
  }));
  assert.equal(r.images, 5);
  assert.equal(r.classes, 1283);
  assert.equal(r.labelsOptimised.length, 23, '3 candidates + 20 calibration labels');
  assert.equal(r.verdict, 'backdoor', r.evidence.join('\n'));
  assert.equal(r.targets[0].label, 0);
});

for (const backend of VERDICT_BACKENDS) test(`cancelling a scan leaves no folder and no partial (${backend})`, { skip: needsDemo }, async () => {
  const dir = tmpDir();
  const out = path.join(dir, 'cancel.scan');
  const ac = new AbortController();
  await assert.rejects(scan(scanOpts({ model: demo('bd_net.h5'), clean: demo('valid.h5'), out, images: 40, backend }), (p) => {
    if (p.phase === 'trigger') ac.abort();
  }, ac.signal), JobCancelled);
  assert.deepEqual(readdirSync(dir), []);
});

test('audit --trigger: poisoned sets stamped from clean data; attack rates equal plain inference and are marked as estimated', { skip: needsDemo }, async () => {
  const dir = tmpDir();
  // A hand-made trigger: a dark band over the eyes (the demo's sunglasses region), half opaque at its edge.
  const h = 55, w = 47, c = 3;
  const mask = new Float32Array(h * w);
  for (let y = 14; y < 24; y++) for (let x = 6; x < 41; x++) mask[y * w + x] = y === 14 || y === 23 ? 0.5 : 1;
  const t: Trigger = { height: h, width: w, channels: c, mask, pattern: new Float32Array(h * w * c).fill(10) };
  const file = path.join(dir, 'trigger_0.h5');
  await writeTrigger(file, t);
  const out = path.join(dir, 'audit');
  const r = await runJob<AuditReport>({
    kind: 'audit',
    options: {
      model: demo('bd_net.h5'), cleanValid: demo('valid.h5'), cleanTest: demo('test.h5'), trigger: file,
      thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: false, batchSize: 256, out, backend: 'wasm',
    },
  }, { workerPath });
  assert.equal(r.attackEstimate, 'reconstructed-trigger');
  assert.equal(r.reconstructedTrigger, file);
  assert.equal(r.target, 0);
  assert.equal(r.data.poisonedValid?.file, path.join(out, 'stamped_valid.h5'));
  assert.ok(existsSync(path.join(out, 'stamped_valid.h5')) && existsSync(path.join(out, 'stamped_test.h5')));
  assert.match(readFileSync(path.join(out, 'report.md'), 'utf8'), /estimated with a reconstructed trigger/);
  // The baseline attack rate, recomputed: stamp the clean images not of label 0 and predict.
  const { net } = await loadRunnable(demo('bd_net.h5'), undefined, 'wasm');
  const src = await openDataset(demo('valid.h5'), net.graph.inputShape, net.classes);
  const keep = [...src.labels!.keys()].filter((i) => src.labels![i] !== 0);
  const all = src.read(0, src.info.count);
  src.close();
  const per = h * w * c;
  const x = new Float32Array(keep.length * per);
  keep.forEach((i, k) => x.set(all.subarray(i * per, (i + 1) * per), k * per));
  stamp(x, keep.length, t);
  const pred = tf.tidy(() => tf.argMax(net.predict(tf.tensor4d(x, [keep.length, h, w, c])), 1));
  const hits = (await pred.data()).filter((p) => p === 0).length;
  pred.dispose();
  net.dispose();
  assert.equal(r.data.poisonedValid?.count, keep.length);
  assert.equal(r.baseline.validAttackRate, hits / keep.length);
});

for (const backend of VERDICT_BACKENDS) test(`stimulation on the hand-made tiny BadNet: flip rates, levels, logit rises and elevations as worked out by hand (${backend})`, async () => {
  const f = await writeTinyBadNet(tmpDir());
  const { net } = await loadRunnable(f('tiny.h5'), undefined, backend);
  const top = new InputGradient(net);
  const src = await openDataset(f('valid.h5'), net.graph.inputShape, net.classes);
  const x = tf.tensor4d(src.read(0, 5), [5, 1, 1, 1]); // x = 1, 1.5, 2.5, 3.5, 4
  src.close();
  const cacheT = net.run(x, ['pool']).get('pool') as tf.Tensor4D; // (x, 0.5, 0): the largest clean value is 4
  const cache = cacheT.dataSync() as Float32Array;
  const cleanPred = Int32Array.of(1, 1, 1, 2, 2);
  const r = await stimulate({ top, cachePoint: 'pool', cache, shape: [5, 1, 1, 3], cleanPred, batchRows: 8 });
  assert.equal(r.layerMax, 4);
  // logits: l0 = 10·ch2 − 1, l1 = 2·ch1, l2 = ch0 − 2; levels 0, 2, 4, 6, 8, 12, 16.
  // ch0 at 4: l2 = 2 beats l1 = 1 everywhere; the 3 images not of class 2 flip; l2 rises by 4 − mean(x) = 1.5.
  // ch1 at 2: l1 = 4 wins everywhere; the 2 class-2 images flip; l1 rises by 3. (At 0, image 2.5 turns to
  // class 2 only because l1 fell: not an elevation, not counted.)
  // ch2 at 2: l0 = 19 wins everywhere; all 5 flip; l0 rises by 20.
  assert.deepEqual(r.channels, [
    { channel: 0, label: 2, flipRate: 1, level: 4, logitRise: 1.5, elevation: 1.5, compromised: true },
    { channel: 1, label: 1, flipRate: 1, level: 2, logitRise: 3, elevation: 3, compromised: true },
    { channel: 2, label: 0, flipRate: 1, level: 2, logitRise: 20, elevation: 20, compromised: true },
  ]);
  assert.deepEqual(r.ranked, [0, 1, 2], 'equal flip rates: ranked by elevation');
  tf.dispose([x, cacheT]);
  top.dispose();
  net.dispose();
});

for (const backend of VERDICT_BACKENDS) test(`stimulation shared out in channel groups, in any order, gives what one pass over every channel gives (demo BadNet, ${backend})`, { skip: needsDemo }, async () => {
  const { net } = await loadRunnable(demo('bd_net.h5'), undefined, backend);
  const top = new InputGradient(net);
  const src = await openDataset(demo('valid.h5'), net.graph.inputShape, net.classes);
  const x = tf.tensor4d(src.read(0, 20), [20, ...net.graph.inputShape] as [number, number, number, number]);
  src.close();
  const { cachePoint } = makePlan(net, 'pool');
  const cacheT = net.run(x, [cachePoint]).get(cachePoint) as tf.Tensor4D;
  const [cache, shape] = [cacheT.dataSync() as Float32Array, cacheT.shape];
  const cleanPred = Int32Array.from(await tf.argMax(net.run(x, [net.outputName]).get(net.outputName)!, 1).data());
  const whole = await stimulate({ top, cachePoint, cache, shape, cleanPred, batchRows: 512 });
  const channels = shape[3];
  const layerMax = layerMaxOf(cache);
  const groups = [[5, 1], Array.from({ length: channels - 7 }, (_, i) => i + 7), [0, 2, 3, 4, 6]];
  const parts = [];
  for (const g of groups) parts.push(await respond({ top, cachePoint, cache, shape, cleanPred, levels: levelsFor(layerMax), channels: g, batchRows: 300 }));
  const split = summarise(parts, layerMax, net.classes, cleanPred);
  assert.deepEqual(split.channels, whole.channels);
  assert.deepEqual(split.ranked, whole.ranked);
  assert.ok(whole.channels.some((c) => c.flipRate > 0), 'some channel flips some image');
  tf.dispose([x, cacheT]);
  top.dispose();
  net.dispose();
});
