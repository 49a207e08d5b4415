// The ONNX Runtime backend against tfjs (wasm) and against Keras: the same
// layer outputs, the same softmax, and the same audit numbers, on the real
// fixtures and the demo; and an install that never runs its GPU download.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { runAudit } from '../../src/core/audit/audit';
import { Shard } from '../../src/core/audit/shard';
import { openDataset } from '../../src/core/data/dataset';
import { KERNELS_VARIABLE } from '../../src/core/model/onnx/engine';
import { preOf } from '../../src/core/model/onnx/translate';
import { argMaxRows } from '../../src/core/model/outputs';
import { loadRunnable } from '../../src/core/runnable';
import { InputGradient } from '../../src/core/scan/backprop';
import type { AuditOptions, Backend, KernelLayout, ScanReport } from '../../src/core/types';
import { writeKerasModelH5 } from '../../src/core/h5/write';
import { cliPath, demo, k3, lab, needsDemo, needsShared, repoRoot, tmpDir, maxAbs, maxDiff } from '../helpers';

const ARCH = lab('bd_net_pruned45_keras2.15.h5');
/** Both of ONNX Runtime's convolution layouts: which one a run takes depends on the host's timing. */
const KERNELS: KernelLayout[] = ['blocked', 'plain'];

/** `f` with ONNX Runtime held to one kernel layout (the variable reaches shard processes too). */
async function withKernels<T>(kernels: KernelLayout, f: () => Promise<T>): Promise<T> {
  const before = process.env[KERNELS_VARIABLE];
  process.env[KERNELS_VARIABLE] = kernels;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env[KERNELS_VARIABLE];
    else process.env[KERNELS_VARIABLE] = before;
  }
}

/** `fetches` for every image of `data`, on `backend`. */
async function outputsOf(backend: Backend, model: string, arch: string | undefined, data: string, fetches: (outputName: string) => string[], kernels?: KernelLayout) {
  const { net, backend: used } = await loadRunnable(model, arch, backend, { kernels });
  assert.equal(used, backend, `${model} runs on ${backend}`);
  const src = await openDataset(data, net.graph.inputShape, net.classes);
  try {
    return await net.compute({ [net.graph.inputs[0]]: src.read(0, src.info.count) }, src.info.count, fetches(net.outputName));
  } finally {
    src.close();
    net.dispose();
  }
}

test('lab BadNet: every layer ONNX Runtime gives (channels-last, Keras\'s Flatten order) equals tfjs within float noise', { skip: needsShared }, async () => {
  const layers = ['conv_1', 'pool_2', 'conv_3', 'pool_3', 'conv_4', 'flatten_1', 'flatten_2', 'fc_1', 'fc_2', 'add_1', 'activation_1'];
  const want = (out: string) => [...layers, out];
  const wasm = await outputsOf('wasm', lab('bd_weights.h5'), ARCH, lab('faces_sunglasses.h5'), want);
  for (const kernels of KERNELS) {
    const ort = await outputsOf('onnxruntime', lab('bd_weights.h5'), ARCH, lab('faces_sunglasses.h5'), want, kernels);
    for (const name of ort.keys()) {
      const scale = Math.max(1, maxAbs(wasm.get(name)!));
      // Relative to the layer's largest value: a wrong layout or Flatten order is off by that much, not by 1e-5.
      assert.ok(maxDiff(ort.get(name)!, wasm.get(name)!) / scale < 1e-5, `${kernels} ${name}: ${maxDiff(ort.get(name)!, wasm.get(name)!)} of ${scale}`);
    }
  }
});

test('ONNX Runtime\'s kernel layout: timed per graph with convolutions and the faster kept; a graph without any stays blocked', { skip: needsShared }, async () => {
  const { net } = await loadRunnable(lab('bd_weights.h5'), ARCH, 'onnxruntime', { kernels: 'fastest' });
  const src = await openDataset(lab('faces_clean.h5'), net.graph.inputShape, net.classes);
  try {
    const x = src.read(0, src.info.count);
    const probs = (await net.compute({ [net.graph.inputs[0]]: x }, src.info.count, [net.outputName])).get(net.outputName)!;
    const layouts = await net.onnx!.kernelLayouts();
    assert.equal(layouts.length, 1);
    assert.ok(KERNELS.includes(layouts[0]), layouts[0]);
    // Fed at activation_1: only the output layer, no convolution, nothing to time.
    const top = await net.compute({ [net.graph.inputs[0]]: x }, src.info.count, ['activation_1']);
    await net.onnx!.run({ activation_1: top.get('activation_1')! }, src.info.count, [net.outputName]);
    assert.deepEqual((await net.onnx!.kernelLayouts()).slice(-1), ['blocked']);
    const forced = await outputsOf('onnxruntime', lab('bd_weights.h5'), ARCH, lab('faces_clean.h5'), (o) => [o], layouts[0] === 'blocked' ? 'plain' : 'blocked');
    assert.ok(maxDiff(probs, [...forced.values()][0]) < 1e-5, 'the other layout gives the same softmax');
  } finally {
    src.close();
    net.dispose();
  }
});

test('the scan runs one kernel layout, blocked unless the variable names another, never the timed choice: run twice, it reports the same masks (lab BadNet, 5 faces)', { skip: needsShared }, async () => {
  // The layouts round differently and the trigger optimisation amplifies it (on this lab scan, label 0's anomaly
  // index moved between 1.49 and 1.83 from run to run while the layout was timed per graph).
  const scanned = (name: string, env: NodeJS.ProcessEnv) => {
    const out = path.join(tmpDir(), name);
    const r = spawnSync(process.execPath, [cliPath, 'scan', lab('bd_weights.h5'), '--arch', ARCH, '--clean', lab('faces_clean.h5'), '--out', out, '--backend', 'onnxruntime'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /backend onnxruntime \((blocked|plain) kernels\)/);
    const report = JSON.parse(readFileSync(path.join(out, 'scan.json'), 'utf8')) as ScanReport;
    const { timing: _t, createdAt: _c, ...rest } = report;
    return rest;
  };
  const { [KERNELS_VARIABLE]: _unset, ...env } = process.env;
  const first = scanned('default', env);
  assert.equal(first.kernels, 'blocked');
  assert.deepEqual(scanned('blocked', { ...env, [KERNELS_VARIABLE]: 'blocked' }), first);
});

test('keras3-small: ONNX Runtime\'s softmax within 1e-5 of Keras, pooled means too, in .h5 and .keras forms', { skip: needsShared }, async () => {
  const expected = JSON.parse(readFileSync(k3('expected.json'), 'utf8'));
  for (const [backend, kernels] of [['onnxruntime', 'blocked'], ['onnxruntime', 'plain'], ['wasm', undefined]] as const) {
    for (const model of ['model.h5', 'model.keras']) {
      const outs = await outputsOf(backend, k3(model), undefined, k3('inputs.h5'), (o) => [o, 'pool_b'], kernels);
      const [probs, pool] = [...outs.values()];
      const flat = (expected.softmax as number[][]).flat();
      flat.forEach((p, i) => assert.ok(Math.abs(probs[i] - p) < 1e-5, `${backend} ${kernels ?? ''} ${model} softmax ${i}: ${probs[i]} vs ${p}`));
      const c = expected.pool_b_channel_mean.length;
      const means = new Float64Array(c);
      pool.forEach((v, i) => { means[i % c] += v / (pool.length / c); });
      means.forEach((v, ch) => assert.ok(Math.abs(v - expected.pool_b_channel_mean[ch]) < 1e-5, `${backend} ${model} pool_b mean ${ch}`));
    }
  }
});

test('the scan\'s input gradients in one ONNX Runtime run equal the tfjs reverse pass (lab BadNet; keras3-small: rescaling, batch norm, average pool, ReLU layer, concatenate, shared inputs)', { skip: needsShared }, async () => {
  for (const c of [
    { model: lab('bd_weights.h5'), arch: ARCH, data: lab('faces_clean.h5'), inner: 'conv_3', label: 0 },
    { model: k3('model.h5'), arch: undefined, data: k3('inputs.h5'), inner: 'conv_b', label: 3 },
  ]) {
    const { net } = await loadRunnable(c.model, c.arch, 'onnxruntime');
    const src = await openDataset(c.data, net.graph.inputShape, net.classes);
    const n = Math.min(src.info.count, 5);
    const pixels = src.read(0, n);
    const x = tf.tensor4d(pixels, [n, ...net.graph.inputShape] as [number, number, number, number]);
    src.close();
    for (const [head, seedOf] of [
      [new InputGradient(net), () => ({ label: c.label })],
      // Through the head's activation, seeded with random values so every channel and position counts.
      [new InputGradient(net, { head: c.inner, throughHead: true }), (w: number) => ({ given: tf.randomNormal([n * w], 0, 1, 'float32', 7).dataSync() as Float32Array })],
    ] as const) {
      assert.equal(head.engine, 'onnxruntime', `${c.model}: backward.ts expresses every layer`);
      const seed = seedOf(head.width);
      const ort = await head.gradientOf(pixels, n, seed);
      const ref = head.gradient(x, (z) => ('given' in seed ? tf.tensor2d(seed.given, z.shape) : tf.div(tf.sub(tf.softmax(z), tf.oneHot(tf.fill([n], c.label, 'int32') as tf.Tensor1D, z.shape[1])), n) as tf.Tensor2D));
      for (const key of ['logits', 'dx'] as const) {
        const [a, b] = [ort[key], ref[key].dataSync() as Float32Array];
        assert.ok(maxAbs(b) > 0, `${c.model} ${key} is not all zero`);
        // Relative to the largest value: a wrong flip, layout or unpooling position is off by that much, not 1e-5.
        assert.ok(maxDiff(a, b) / maxAbs(b) < 1e-5, `${c.model} ${key}: ${maxDiff(a, b)} of ${maxAbs(b)}`);
      }
      tf.dispose([ref.logits, ref.dx]);
      head.dispose();
    }
    x.dispose();
    net.dispose();
  }
});

/** A small Keras model with strided, padded convolutions and random weights; `act` for its second conv. */
async function stridedModel(file: string, act: string) {
  const layer = (class_name: string, name: string, config: object, inbound: string | null) => ({
    class_name, name, config: { name, trainable: true, dtype: 'float32', ...config }, inbound_nodes: inbound ? [[[inbound, 0, 0, {}]]] : [],
  });
  const conv = (name: string, filters: number, k: number, stride: number, padding: string, activation: string, inbound: string) =>
    layer('Conv2D', name, { filters, kernel_size: [k, k], strides: [stride, stride], padding, data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation, use_bias: true }, inbound);
  const config = JSON.stringify({
    class_name: 'Functional',
    config: {
      name: 'strided', trainable: true,
      layers: [
        layer('InputLayer', 'input', { batch_input_shape: [null, 10, 8, 2], sparse: false, ragged: false }, null),
        conv('conv_a', 4, 3, 2, 'same', 'relu', 'input'),
        conv('conv_b', 5, 2, 2, 'valid', act, 'conv_a'),
        layer('Flatten', 'flat', { data_format: 'channels_last' }, 'conv_b'),
        layer('Dense', 'out', { units: 3, activation: 'softmax', use_bias: true }, 'flat'),
      ],
      input_layers: [['input', 0, 0]], output_layers: [['out', 0, 0]],
    },
    keras_version: '2.15.0', backend: 'tensorflow',
  });
  let seed = 1;
  const random = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5);
  const w = (layerName: string, kernel: number[]) => ({ layer: layerName, weights: [
    { name: `${layerName}/kernel:0`, shape: kernel, data: random(kernel.reduce((a, b) => a * b, 1)) },
    { name: `${layerName}/bias:0`, shape: [kernel[kernel.length - 1]], data: random(kernel[kernel.length - 1]) },
  ] });
  // conv_a: 10x8 -> 5x4 ('same', stride 2: TF pads 0 above and 1 below, 0 left and 1 right); conv_b: 5x4 -> 2x2
  // ('valid', stride 2: the last row is never read, so its gradient is 0): 20 inputs to the dense layer
  await writeKerasModelH5(file, config, [w('conv_a', [3, 3, 2, 4]), w('conv_b', [2, 2, 4, 5]), w('out', [20, 3])]);
}

test('strided and padded convolutions: the ONNX gradient (transposed convolutions) equals tfjs\'s; an activation it does not express falls back to tfjs', async () => {
  for (const [act, engine] of [['relu', 'onnxruntime'], ['softmax', 'tfjs']] as const) {
    const file = path.join(tmpDir(), `strided_${act}.h5`);
    await stridedModel(file, act);
    const { net } = await loadRunnable(file, undefined, 'onnxruntime');
    const top = new InputGradient(net);
    assert.equal(top.engine, engine, act);
    const x = tf.randomUniform([3, 10, 8, 2], 0, 4, 'float32', 5) as tf.Tensor4D;
    const ort = await top.gradientOf(x.dataSync() as Float32Array, 3, { label: 2 });
    const ref = top.gradient(x, (z) => tf.div(tf.sub(tf.softmax(z), tf.oneHot(tf.fill([3], 2, 'int32') as tf.Tensor1D, 3)), 3) as tf.Tensor2D);
    const [a, b] = [ort.dx, ref.dx.dataSync() as Float32Array];
    assert.ok(maxAbs(b) > 0);
    assert.ok(maxDiff(a, b) / maxAbs(b) < 1e-5, `${act}: ${maxDiff(a, b)} of ${maxAbs(b)}`);
    tf.dispose([x, ref.dx, ref.logits]);
    top.dispose();
    net.dispose();
  }
});

test('pre-activation fetches and feeds: conv_4 and fc_1 before their activation, then the top and its labels from them, equal the whole network', { skip: needsShared }, async () => {
  const { net } = await loadRunnable(lab('bd_weights.h5'), ARCH, 'onnxruntime');
  const src = await openDataset(lab('faces_clean.h5'), net.graph.inputShape, net.classes);
  const n = src.info.count;
  const input = { [net.graph.inputs[0]]: src.read(0, n) };
  src.close();
  const outs = await net.compute(input, n, [preOf('conv_4'), preOf('fc_1'), 'conv_4', net.outputName]);
  assert.ok(outs.get(preOf('conv_4'))!.some((v) => v < 0), 'before the ReLU: some values are negative');
  assert.deepEqual(outs.get('conv_4'), outs.get(preOf('conv_4'))!.map((v) => Math.max(0, v)));
  const top = await net.compute({ [preOf('conv_4')]: outs.get(preOf('conv_4'))!, [preOf('fc_1')]: outs.get(preOf('fc_1'))! }, n, [net.outputName]);
  assert.ok(maxDiff(top.get(net.outputName)!, outs.get(net.outputName)!) < 1e-6);
  // The engine's labels (ArgMax in the graph), from the images and from the pre-activations, are argMaxRows of the softmax.
  const want = argMaxRows(outs.get(net.outputName)!, n);
  assert.deepEqual(await net.onnx!.labels(input, n, net.outputName), want);
  assert.deepEqual(await net.onnx!.labels({ [preOf('conv_4')]: outs.get(preOf('conv_4'))!, [preOf('fc_1')]: outs.get(preOf('fc_1'))! }, n, net.outputName), want);
  net.dispose();
});

test('labels from the engine (ArgMax in the graph, only int32 labels leave it) equal argMaxRows of its softmax: ties go to the first label', async () => {
  const file = path.join(tmpDir(), 'strided_labels.h5');
  await stridedModel(file, 'relu');
  const { net } = await loadRunnable(file, undefined, 'onnxruntime');
  // Fed at the logits: exact ties, a near tie and ordinary rows. 300 rows: more than one run of the engine.
  const rows = [[0, 0, 0], [1, 3, 3], [3, 1, 3], [20, 20 + 1e-6, 20], [-2, -2, -5]];
  const logits = Float32Array.from({ length: 300 * 3 }, (_, i) => rows[Math.floor(i / 3) % rows.length][i % 3] + (Math.floor(i / 3) >= 100 ? Math.sin(i) : 0));
  const feeds = { [preOf('out')]: logits };
  const probs = (await net.compute(feeds, 300, [net.outputName])).get(net.outputName)!;
  const labels = await net.onnx!.labels(feeds, 300, net.outputName);
  assert.deepEqual(Array.from(labels.slice(0, 5)), [0, 1, 0, 1, 0]);
  assert.deepEqual(labels, argMaxRows(probs, 300));
  net.dispose();
});

const auditOpts = (o: Partial<AuditOptions> & Pick<AuditOptions, 'model' | 'cleanValid' | 'out'>): AuditOptions => ({
  thresholds: [2, 4, 10, 30], order: 'increasing', rankBy: 'pool', fullSweep: true, batchSize: 256, ...o,
});

/** Everything an audit reports about the model, without the file names and timings. */
async function auditNumbers(opts: AuditOptions) {
  const r = await runAudit(opts, { shards: [new Shard()] });
  return {
    backend: r.backend,
    numbers: {
      baseline: r.baseline, steps: r.steps,
      ranking: r.ranking.map((c) => c.channel),
      thresholds: r.thresholds.map(({ repairedModel: _, ...t }) => t),
    },
    meanActivations: r.ranking.map((c) => c.meanActivation),
  };
}

test('demo BadNet, all 3,200 images: every step, threshold, B\' and G count is the same on onnxruntime and wasm', { skip: needsDemo }, async () => {
  const dir = tmpDir();
  const opts = (backend: Backend) => auditOpts({
    model: demo('bd_net.h5'), cleanValid: demo('valid.h5'), poisonedValid: demo('bd_valid.h5'),
    cleanTest: demo('test.h5'), poisonedTest: demo('bd_test.h5'), out: path.join(dir, backend), backend,
  });
  const wasm = await auditNumbers(opts('wasm'));
  assert.equal(wasm.backend, 'wasm');
  for (const kernels of KERNELS) {
    const ort = await withKernels(kernels, () => auditNumbers({ ...opts('onnxruntime'), out: path.join(dir, `onnxruntime-${kernels}`) }));
    assert.equal(ort.backend, 'onnxruntime');
    assert.deepEqual(ort.numbers, wasm.numbers, kernels);
    ort.meanActivations.forEach((v, i) => assert.ok(Math.abs(v - wasm.meanActivations[i]) <= 1e-5 * Math.max(1, Math.abs(v)), `${kernels} mean activation ${i}`));
    // Not vacuous: the sweep moves accuracy and the attack rate.
    assert.ok(ort.numbers.steps.some((s) => s.validAttackRate! < ort.numbers.baseline.validAttackRate!));
  }
});

test('lab BadNet on the real faces: the same numbers on onnxruntime and wasm', { skip: needsShared }, async () => {
  const dir = tmpDir();
  const opts = (backend: Backend) => auditOpts({
    model: lab('bd_weights.h5'), arch: ARCH, cleanValid: lab('faces_clean.h5'), poisonedValid: lab('faces_sunglasses.h5'),
    cleanTest: lab('faces_clean.h5'), poisonedTest: lab('faces_sunglasses.h5'), thresholds: [2, 30, 50], out: path.join(dir, backend), backend,
  });
  const wasm = (await auditNumbers(opts('wasm'))).numbers;
  for (const kernels of KERNELS) {
    assert.deepEqual((await withKernels(kernels, () => auditNumbers({ ...opts('onnxruntime'), out: path.join(dir, `onnxruntime-${kernels}`) }))).numbers, wasm, kernels);
  }
});

test('CLI: --backend onnxruntime is reported, and the worker loads the native binding from the bundle', { skip: needsShared }, () => {
  const r = spawnSync(process.execPath, [cliPath, 'predict', lab('bd_weights.h5'), lab('faces_sunglasses.h5'), '--arch', ARCH, '--backend', 'onnxruntime', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.backend, 'onnxruntime');
  assert.deepEqual(out.predictions.map((p: { label: number }) => p.label), [0, 0, 0, 0, 0]);
  const bad = spawnSync(process.execPath, [cliPath, 'predict', lab('bd_weights.h5'), lab('faces_sunglasses.h5'), '--arch', ARCH, '--backend', 'onnx'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--backend must be auto, onnxruntime, tensorflow, wasm or cpu/);
});

test('install: the project\'s .npmrc makes onnxruntime-node\'s install script skip its GPU download', () => {
  // npm passes .npmrc keys to install scripts as npm_config_* variables; `npm config get` reads the same file.
  const got = spawnSync('npm', ['config', 'get', 'onnxruntime-node-install'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(got.stdout.trim(), 'skip');
  // With it, the script exits at once. Without it (and outside npm's own local install of the
  // package, which the npm_* variables would signal), it fetches CUDA binaries from outside the registry.
  const script = path.join(repoRoot, 'node_modules/onnxruntime-node/script/install.js');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000, env: { ...env, npm_config_onnxruntime_node_install: got.stdout.trim() } });
  assert.equal(r.status, 0, r.stderr);
});
