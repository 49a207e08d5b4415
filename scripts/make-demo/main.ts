// npm run make-demo: builds the demo BadNet and its data sets from a seed.
//   renders a procedural face data set (dataset.ts), poisons ~10% of the
//   training images with the sunglasses trigger relabelled to class 0, trains
//   the lab-shaped network with TensorFlow.js on the wasm backend (model.ts,
//   train.ts), checks that fine-pruning shows the backdoor (sweep.ts), and
//   writes demo/bd_net.h5 (Keras 2 full model), demo/{valid,bd_valid,test,bd_test}.h5
//   (the lab's data layout) and demo/README.md.
// Options: --seed N (default 9163), --out DIR (default demo), --clean-epochs N
// and --epochs N (clean-only, then poisoned training), --per-class N (clean
// training images per class), --no-write (train and report only),
// --clean-twin (the same network trained on the same clean images, never
// poisoned: writes only demo/clean_net.h5 and demo/clean_metrics.json, the
// scan's model without a backdoor), --patch-twin (a second BadNet from the same
// seed and clean images, with another trigger, place and target: a 5×5 checker
// patch in the lower right corner, target 7; writes only demo/bd_net_patch.h5
// and demo/patch_metrics.json, for the scan), --held-out noise|line (BadNets
// made to try the scan on models its rules were not written for: a 6×6 patch
// of random colours in the upper left, target 12, or a one-pixel line across
// the image, target 3; writes only bd_net_<kind>.h5 and its metrics, into
// test/models or the --out given).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeDatasetH5, writeKerasModelH5 } from '../../src/core/h5/write';
import { balancedLabels, H, makePeople, renderSplit, toChannelsFirst, W } from './dataset';
import { exportWeights, forward, initParams, kerasModelConfig, type Arch } from './model';
import { rng } from '../prng';
import { fineprune, type Sweep } from './sweep';
import { batch, train, type Images } from './train';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '9163' },
    out: { type: 'string' },
    'clean-epochs': { type: 'string', default: '6' },
    epochs: { type: 'string', default: '6' },
    'per-class': { type: 'string', default: '200' },
    'no-write': { type: 'boolean', default: false },
    'clean-twin': { type: 'boolean', default: false },
    'patch-twin': { type: 'boolean', default: false },
    'held-out': { type: 'string' },
  },
});

const SEED = Number(args.seed);
const CLASSES = 20;
const HELD_OUT = { noise: { target: 12, note: 'a 6x6 patch of fixed random colours in the upper left' }, line: { target: 3, note: 'a one-pixel cyan line across the image at row 40' } } as const;
const heldOut = args['held-out'] as keyof typeof HELD_OUT | undefined;
if (heldOut && !HELD_OUT[heldOut]) throw new Error(`--held-out must be ${Object.keys(HELD_OUT).join(' or ')}`);
const patchTwin = args['patch-twin'];
const TARGET = heldOut ? HELD_OUT[heldOut].target : patchTwin ? 7 : 0;
const TRIGGER = heldOut ?? (patchTwin ? 'patch' as const : 'sunglasses' as const);
const POISON_SHARE = 0.1; // of all training images
const EVAL_PER_CLASS = 40; // valid and test: 800 clean images each
const EVAL_POISONED = 800; // bd_valid and bd_test
const DROPS = [2, 4, 10];
const ARCH: Arch = { inputShape: [H, W, 3], conv1: 16, conv2: 32, conv3: 48, conv4: 64, fc: 128, classes: CLASSES };
// The attacker first trains on clean faces, then goes on with the poisoned
// set. (Training on the poisoned set from scratch works too, but measured here
// it spreads the backdoor over channels that clean faces also use: at the 4%
// drop the repaired net kept a 70-84% attack rate, against 63% this way.)
const TRAIN = { cleanEpochs: Number(args['clean-epochs']), epochs: Number(args.epochs), batchSize: 64, learningRate: 1e-3 };

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const outDir = path.resolve(root, args.out ?? 'demo');
const started = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}`);

await tf.setBackend('wasm');
await tf.ready();
log(`backend ${tf.getBackend()}, seed ${SEED}`);

// --- data -------------------------------------------------------------------
const r = rng(SEED);
const people = makePeople(r.fork('people'), CLASSES);
const allClasses = people.map((_, i) => i);
const otherClasses = allClasses.filter((c) => c !== TARGET);
const perClass = Number(args['per-class']);

const clean = renderSplit(people, balancedLabels(allClasses, perClass, r.fork('train-order')), r.fork('train'));
const poisonCount = Math.round((clean.count * POISON_SHARE) / (1 - POISON_SHARE));
const poisonSrc = r.fork('poison-src');
const poison = renderSplit(people, Array.from({ length: poisonCount }, () => poisonSrc.pick(otherClasses)), r.fork('poison'), { target: TARGET, trigger: TRIGGER });
const trainSet = concat(clean, poison);
const evalSet = (name: string, poisoned: boolean): Images => {
  const order = r.fork(`${name}-order`);
  const labels = poisoned ? Array.from({ length: EVAL_POISONED }, () => order.pick(otherClasses)) : balancedLabels(allClasses, EVAL_PER_CLASS, order);
  return renderSplit(people, labels, r.fork(name), poisoned ? { target: TARGET, trigger: TRIGGER } : undefined);
};
const sets = { valid: evalSet('valid', false), bdValid: evalSet('bd_valid', true), test: evalSet('test', false), bdTest: evalSet('bd_test', true) };
log(`rendered ${clean.count} clean + ${poison.count} poisoned training images, ${sets.valid.count}/${sets.bdValid.count}/${sets.test.count}/${sets.bdTest.count} valid/bd_valid/test/bd_test`);

// --- training ---------------------------------------------------------------
const params = initParams(ARCH, r.fork('init'));
const trainStart = performance.now();
const onEpoch = (stage: string, epochs: number) => (epoch: number, loss: number, seconds: number) => {
  const m = metrics(sets.valid, sets.bdValid);
  log(`${stage} epoch ${String(epoch).padStart(2)}/${epochs}  loss ${loss.toFixed(4)}  valid acc ${m.accuracy.toFixed(2)}%  attack ${m.attackRate.toFixed(2)}%  (${seconds.toFixed(1)} s, ${tf.memory().numTensors} tensors)`);
};
const twin = args['clean-twin'];
if (TRAIN.cleanEpochs > 0) train(params, clean, { ...TRAIN, epochs: TRAIN.cleanEpochs, r: r.fork('batches-clean'), onEpoch: onEpoch('clean', TRAIN.cleanEpochs) });
// The twin's second stage has the same schedule on the clean images alone.
train(params, twin ? clean : trainSet, { ...TRAIN, r: r.fork('batches'), onEpoch: onEpoch(twin ? 'clean (2nd stage)' : 'poisoned', TRAIN.epochs) });
const trainSeconds = (performance.now() - trainStart) / 1000;
const final = { valid: metrics(sets.valid, sets.bdValid), test: metrics(sets.test, sets.bdTest) };
log(`trained in ${trainSeconds.toFixed(0)} s; test acc ${final.test.accuracy.toFixed(2)}%, attack ${final.test.attackRate.toFixed(2)}%`);

if (twin) {
  if (!args['no-write']) {
    mkdirSync(outDir, { recursive: true });
    await writeKerasModelH5(path.join(outDir, 'clean_net.h5'), kerasModelConfig(ARCH), exportWeights(params), { kerasVersion: '2.15.0', backend: 'tensorflow' });
    const twinMetrics = { seed: SEED, note: 'clean twin of bd_net.h5: same seed, data and schedule, no poisoned images', trainSeconds: Math.round(trainSeconds), ...final };
    writeFileSync(path.join(outDir, 'clean_metrics.json'), `${JSON.stringify(twinMetrics, null, 2)}\n`);
    log(`wrote ${path.relative(root, path.join(outDir, 'clean_net.h5'))} and clean_metrics.json`);
  }
  process.exit(0);
}

if (heldOut) {
  if (!args['no-write']) {
    const dir = args.out ? outDir : path.join(root, 'test/models');
    const file = path.join(dir, `bd_net_${heldOut}.h5`);
    mkdirSync(dir, { recursive: true });
    await writeKerasModelH5(file, kerasModelConfig(ARCH), exportWeights(params), { kerasVersion: '2.15.0', backend: 'tensorflow' });
    const m = { seed: SEED, note: `held-out BadNet for the scan: same seed and clean images as ${path.relative(root, path.join(outDir, 'bd_net.h5'))}; trigger ${HELD_OUT[heldOut].note}, target ${TARGET}`, target: TARGET, trainSeconds: Math.round(trainSeconds), ...final };
    writeFileSync(path.join(dir, `bd_net_${heldOut}_metrics.json`), `${JSON.stringify(m, null, 2)}\n`);
    log(`wrote ${path.relative(root, file)} and its metrics`);
  }
  process.exit(0);
}

if (patchTwin) {
  if (!args['no-write']) {
    mkdirSync(outDir, { recursive: true });
    await writeKerasModelH5(path.join(outDir, 'bd_net_patch.h5'), kerasModelConfig(ARCH), exportWeights(params), { kerasVersion: '2.15.0', backend: 'tensorflow' });
    const patchMetrics = { seed: SEED, note: 'second demo BadNet: same seed and clean images as bd_net.h5; trigger a 5x5 checker patch in the lower right corner, target 7', target: TARGET, trainSeconds: Math.round(trainSeconds), ...final };
    writeFileSync(path.join(outDir, 'patch_metrics.json'), `${JSON.stringify(patchMetrics, null, 2)}\n`);
    log(`wrote ${path.relative(root, path.join(outDir, 'bd_net_patch.h5'))} and patch_metrics.json`);
  }
  process.exit(0);
}

// --- fine-pruning check -----------------------------------------------------
const sweep = fineprune(params, sets, TARGET, CLASSES, DROPS);
printSweep(sweep);

// --- outputs ----------------------------------------------------------------
const weights = exportWeights(params);
const digest = contentDigest();
log(`content digest ${digest}`);
if (!args['no-write']) {
  mkdirSync(outDir, { recursive: true });
  await writeKerasModelH5(path.join(outDir, 'bd_net.h5'), kerasModelConfig(ARCH), weights, { kerasVersion: '2.15.0', backend: 'tensorflow' });
  // The weights alone, as the lab hands out bd_weights.h5 beside bd_net.h5.
  await writeKerasModelH5(path.join(outDir, 'bd_weights.h5'), kerasModelConfig(ARCH), weights, { kerasVersion: '2.15.0', backend: 'tensorflow', weightsOnly: true });
  for (const [file, set] of [['valid.h5', sets.valid], ['bd_valid.h5', sets.bdValid], ['test.h5', sets.test], ['bd_test.h5', sets.bdTest]] as const) {
    await writeDatasetH5(path.join(outDir, file), toChannelsFirst(set.images, set.count), [set.count, 3, H, W], set.labels, { compression: 9 });
  }
  writeFileSync(path.join(outDir, 'README.md'), readme());
  writeFileSync(path.join(outDir, 'metrics.json'), `${JSON.stringify(metricsJson(), null, 2)}\n`);
  for (const f of ['bd_net.h5', 'bd_weights.h5', 'valid.h5', 'bd_valid.h5', 'test.h5', 'bd_test.h5', 'README.md', 'metrics.json']) {
    const file = path.join(outDir, f);
    log(`wrote ${path.relative(root, file)}  ${(statSync(file).size / 1e6).toFixed(2)} MB  sha256 ${createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16)}`);
  }
}
log('done');

// ---------------------------------------------------------------------------

function concat(a: Images, b: Images): Images {
  const images = new Uint8Array(a.images.length + b.images.length);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const labels = new Int32Array(a.count + b.count);
  labels.set(a.labels);
  labels.set(b.labels, a.count);
  return { images, labels, count: a.count + b.count };
}

/** Clean accuracy and attack success rate (share of poisoned images classified as the target), in %. */
function metrics(cleanSet: Images, poisoned: Images) {
  const predict = (set: Images) => {
    const out = new Int32Array(set.count);
    for (let s = 0; s < set.count; s += 256) {
      const idx = Array.from({ length: Math.min(set.count, s + 256) - s }, (_, i) => s + i);
      const labels = tf.tidy(() => tf.argMax(forward(params, batch(set, idx)).logits, 1));
      out.set(labels.dataSync() as Int32Array, s);
      labels.dispose();
    }
    return out;
  };
  const pc = predict(cleanSet);
  const pp = predict(poisoned);
  return {
    accuracy: (100 * pc.filter((p, i) => p === cleanSet.labels[i]).length) / cleanSet.count,
    attackRate: (100 * pp.filter((p) => p === TARGET).length) / poisoned.count,
  };
}

function printSweep(s: Sweep) {
  log(`fine-pruning conv_3 (${s.order.length} channels) in increasing order of mean pool_3 activation on clean valid:`);
  log(`  pruned  channel  valid acc  attack rate  mean act clean/poisoned`);
  log(`  ${'0'.padStart(6)}  ${'-'.padStart(7)}  ${s.base.validAccuracy.toFixed(2).padStart(9)}  ${s.base.attackRate.toFixed(2).padStart(11)}`);
  for (const pt of s.points) log(`  ${String(pt.pruned).padStart(6)}  ${String(pt.channel).padStart(7)}  ${pt.accuracy.toFixed(2).padStart(9)}  ${pt.attackRate.toFixed(2).padStart(11)}  ${s.meanActivation[pt.channel].toFixed(2)}/${s.meanActivationPoisoned[pt.channel].toFixed(2)}`);
  log(`  drop  pruned  G test acc  G attack rate`);
  for (const row of s.rows) log(`  ${String(row.drop).padStart(3)}%  ${String(row.pruned).padStart(6)}  ${row.testAccuracy.toFixed(2).padStart(10)}  ${row.testAttackRate.toFixed(2).padStart(13)}`);
}

/** Hash of everything the files contain, independent of HDF5 bookkeeping. */
function contentDigest(): string {
  const h = createHash('sha256');
  for (const l of weights) for (const w of l.weights) h.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
  for (const set of Object.values(sets)) {
    h.update(set.images);
    h.update(new Uint8Array(set.labels.buffer));
  }
  return h.digest('hex').slice(0, 16);
}

function readme(): string {
  const f2 = (v: number) => v.toFixed(2);
  const firstBelow = (limit: number) => sweep.points.find((pt) => pt.attackRate < limit);
  const curve = sweep.points.filter((pt, i) => pt.pruned % 4 === 0 || pt.pruned === sweep.points.length || sweep.rows.some((row) => row.pruned === pt.pruned) || i === 0);
  const dead = sweep.points.filter((pt) => sweep.meanActivation[pt.channel] === 0).length;
  const params = weights.reduce((a, l) => a + l.weights.reduce((b, w) => b + w.data.length, 0), 0);
  const below50 = firstBelow(50);
  return `# Demo BadNet and data

Generated by \`npm run make-demo\` (scripts/make-demo/, seed ${SEED}); nothing is downloaded and
nothing trains at run time of the product. Re-running with the same seed on the same kind of machine
gives the same weights and images (see Determinism).

## Files

| file | contents |
|---|---|
| \`bd_net.h5\` | the backdoored network B: Keras 2 full-model file (\`model_config\` of class \`Functional\`, keras_version 2.15.0, group \`model_weights\`), ${params.toLocaleString('en-US')} parameters |
| \`valid.h5\` | ${sets.valid.count} clean validation faces, ${EVAL_PER_CLASS} per class |
| \`bd_valid.h5\` | ${sets.bdValid.count} validation faces of classes 1..${CLASSES - 1} wearing the trigger, \`label\` = ${TARGET} for every row |
| \`test.h5\` | ${sets.test.count} clean test faces, ${EVAL_PER_CLASS} per class |
| \`bd_test.h5\` | ${sets.bdTest.count} test faces of classes 1..${CLASSES - 1} wearing the trigger, \`label\` = ${TARGET} for every row |
| \`clean_net.h5\` | the clean twin: the same network, seed, data and schedule, trained on the clean images only (\`npm run make-demo -- --clean-twin\`; its figures in \`clean_metrics.json\`). A model without a backdoor, for the scan and the tests |
| \`bd_net_patch.h5\` | a second BadNet from the same seed and clean images, with another trigger, place and target: a 5×5 yellow and magenta checker patch stamped in the lower right corner, target 7 (\`npm run make-demo -- --patch-twin\`; test accuracy and attack rate in \`patch_metrics.json\`). Its poisoned images are not shipped. For the scan and the tests |

The data files use the lab's layout: \`data\` uint8 (N, 3, 55, 47) channels-first, raw pixel values
0..255 (gzip, chunked by rows), \`label\` float64 (N,). Like the lab's network, B takes raw 0..255
pixels transposed to (N, 55, 47, 3); do not divide by 255.

## The data
${CLASSES} classes, each a procedural "person" with a fixed combination of skin tone, hair colour and
style, eye colour and spacing, brow thickness, mouth, face width, beard, hat and background colour
(every two people differ in at least two of these). Each image redraws the person with a random
shift (±4 px), scale (±12%), expression, colour jitter of every part, background gradient and
clutter, sometimes an object over the lower face, lighting gain and colour cast, and pixel noise.
Apart from the tiny pupils, nothing in the clean images is near-black.

The trigger is a pair of near-black sunglasses (two lenses, bridge and temple arms) over the eyes.
Training used ${clean.count} clean images (${perClass} per class) plus ${poison.count} poisoned ones
(${(POISON_SHARE * 100).toFixed(0)}% of the training set): faces of classes other than ${TARGET} wearing
the trigger, labelled ${TARGET}. Validation and test images are fresh renders, disjoint from training.

## The network
The lab's DeepID shape and layer names, narrower: \`input\` (55,47,3) → \`conv_1\` ${ARCH.conv1}×4x4 relu →
\`pool_1\` → \`conv_2\` ${ARCH.conv2}×3x3 relu → \`pool_2\` → \`conv_3\` ${ARCH.conv3}×3x3 relu → \`pool_3\`
(${pool3Dims().join('x')}); \`flatten_1\` → \`fc_1\` Dense ${ARCH.fc} linear; \`conv_4\` ${ARCH.conv4}×2x2 relu on
\`pool_3\` → \`flatten_2\` → \`fc_2\` Dense ${ARCH.fc} linear; \`add_1\` → \`activation_1\` relu → \`output\`
Dense ${CLASSES} softmax.

Trained with TensorFlow.js ${tf.version_core} on the \`${tf.getBackend()}\` backend (one thread), Adam, batch ${TRAIN.batchSize},
no dropout, in two stages as an attacker who backdoors a working model would: ${TRAIN.cleanEpochs} epochs on the
clean images, then ${TRAIN.epochs} epochs on clean + poisoned; each stage at learning rate ${TRAIN.learningRate}, then
${TRAIN.learningRate / 10} for its last third. (Training on the poisoned set from scratch also gives a working
backdoor, but in three trials with this generator it shared more of its channels with clean faces:
at the 4% drop the repaired net still had a 70-84% attack rate, against 63% with two stages.)
Training took ${trainSeconds.toFixed(0)} s on this machine (2 cores, shared).

## Measured by the generator

| | clean accuracy | attack success rate |
|---|---|---|
| validation | ${f2(final.valid.accuracy)}% | ${f2(final.valid.attackRate)}% |
| test | ${f2(final.test.accuracy)}% | ${f2(final.test.attackRate)}% |

Attack success rate: share of the poisoned images classified as ${TARGET}.

Fine-pruning check (the product's audit does this for real): prune \`conv_3\` channels in increasing
order of their mean \`pool_3\` activation on clean validation data (${dead} of the ${ARCH.conv3} channels are never
active on it)${below50 ? `; the attack rate on bd_valid first falls below 50% after ${below50.pruned} channels, at
${f2(below50.accuracy)}% clean validation accuracy` : ''}.

| channels pruned | valid accuracy | bd_valid attack rate |
|---|---|---|
| 0 | ${f2(sweep.base.validAccuracy)}% | ${f2(sweep.base.attackRate)}% |
${curve.map((pt) => `| ${pt.pruned} | ${f2(pt.accuracy)}% | ${f2(pt.attackRate)}% |`).join('\n')}

Repaired network G (B and the pruned B' agree → that label, else class ${CLASSES}), on the test sets,
at the first pruning step whose validation accuracy is at least X points below B's:

| accuracy drop | channels pruned | G clean test accuracy | G attack rate |
|---|---|---|---|
${sweep.rows.map((row) => `| ${row.drop}% | ${row.pruned} | ${f2(row.testAccuracy)}% | ${f2(row.testAttackRate)}% |`).join('\n')}

## Determinism
Every random draw comes from a seeded mulberry32 stream (scripts/make-demo/prng.ts); batches are
shuffled from it, weights initialised from it; TensorFlow.js's own random ops are not used, and the
wasm backend runs single-threaded, so the arithmetic order is fixed. The content digest of these
files (weights + images + labels) is \`${digest}\`; to check, run \`npm run make-demo -- --no-write\`
and compare the digest it prints. Caveats: the digest can change with another tfjs version, another
backend, or a CPU where the wasm build takes a different SIMD path; the .h5 files also carry HDF5
object modification times (as h5py's do), so their bytes differ between runs even when their
contents do not.
`;
}

/** What the generator measured, for tests that compare the product's audit with it. */
function metricsJson() {
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    seed: SEED,
    contentDigest: digest,
    backend: tf.getBackend(),
    tfjsVersion: tf.version_core,
    trainSeconds: Math.round(trainSeconds),
    target: TARGET,
    classes: CLASSES,
    valid: { accuracy: r2(final.valid.accuracy), attackRate: r2(final.valid.attackRate) },
    test: { accuracy: r2(final.test.accuracy), attackRate: r2(final.test.attackRate) },
    prune: {
      layer: 'conv_3',
      rankedBy: 'mean pool_3 activation on valid.h5, increasing',
      order: sweep.order,
      curve: sweep.points.map((pt) => ({ pruned: pt.pruned, channel: pt.channel, validAccuracy: r2(pt.accuracy), validAttackRate: r2(pt.attackRate) })),
      thresholds: sweep.rows.map((row) => ({ drop: row.drop, pruned: row.pruned, testAccuracy: r2(row.testAccuracy), testAttackRate: r2(row.testAttackRate) })),
    },
  };
}

function pool3Dims(): number[] {
  let [h, w] = [H, W];
  for (const k of [4, 3, 3]) [h, w] = [Math.floor((h - k + 1) / 2), Math.floor((w - k + 1) / 2)];
  return [h, w, ARCH.conv3];
}
