// The ONNX gradient rules of model/onnx/backward.ts for the activations and
// layers beyond the lab's (relu6, elu, softplus, exponential, leaky_relu;
// global pools, zero padding, LeakyReLU, Subtract, Average, Multiply, Maximum)
// against the tfjs reverse pass of scan/backprop.ts, on small random models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeKerasModelH5, type LayerWeights } from '../../src/core/h5/write';
import { preOf } from '../../src/core/model/onnx/translate';
import { loadRunnable } from '../../src/core/runnable';
import { InputGradient } from '../../src/core/scan/backprop';
import { tmpDir, maxAbs, maxDiff } from '../helpers';

type Layer = ReturnType<typeof layer>;
const layer = (class_name: string, name: string, config: object, inbound: string | string[] | null) => ({
  class_name, name, config: { name, trainable: true, dtype: 'float32', ...config },
  inbound_nodes: inbound === null ? [] : [[inbound].flat().map((n) => [n, 0, 0, {}])],
});
const input = layer('InputLayer', 'input', { batch_input_shape: [null, 10, 8, 2], sparse: false, ragged: false }, null);
const conv = (name: string, filters: number, k: number, stride: number, padding: string, activation: string, inbound: string) =>
  layer('Conv2D', name, { filters, kernel_size: [k, k], strides: [stride, stride], padding, data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation, use_bias: true }, inbound);
const dense = (name: string, units: number, activation: string, inbound: string) => layer('Dense', name, { units, activation, use_bias: true }, inbound);
const flatten = (name: string, inbound: string) => layer('Flatten', name, { data_format: 'channels_last' }, inbound);

/**
 * A small Keras model (input 10x8x2, output 'out') with random weights: `kernels` gives each weighted layer's
 * kernel shape and a scale for its random values.
 */
async function model(file: string, layers: Layer[], kernels: [string, number[], number?][]) {
  const config = JSON.stringify({
    class_name: 'Functional',
    config: { name: 'backward', trainable: true, layers: [input, ...layers], input_layers: [['input', 0, 0]], output_layers: [['out', 0, 0]] },
    keras_version: '2.15.0', backend: 'tensorflow',
  });
  let seed = 1;
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => (((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5) * scale);
  const w = ([layerName, kernel, scale = 1]: [string, number[], number?]): LayerWeights => ({ layer: layerName, weights: [
    { name: `${layerName}/kernel:0`, shape: kernel, data: random(kernel.reduce((a, b) => a * b, 1), scale) },
    { name: `${layerName}/bias:0`, shape: [kernel[kernel.length - 1]], data: random(kernel[kernel.length - 1], scale) },
  ] });
  await writeKerasModelH5(file, config, kernels.map(w));
}

/**
 * The model runs its gradient on ONNX Runtime (no fallback), and that gradient equals the tfjs reverse pass
 * for 3 images uniform in [lo, hi). Returns the pre-activations of `pre` (for checks that both sides of a kink are hit).
 */
async function sameGradient(what: string, file: string, [lo, hi]: [number, number], pre?: string): Promise<Float32Array | undefined> {
  const { net } = await loadRunnable(file, undefined, 'onnxruntime');
  const top = new InputGradient(net);
  try {
    assert.equal(top.engine, 'onnxruntime', `${what}: backward.ts expresses every layer`);
    const x = tf.randomUniform([3, 10, 8, 2], lo, hi, 'float32', 5) as tf.Tensor4D;
    const pixels = x.dataSync() as Float32Array;
    const ort = await top.gradientOf(pixels, 3, { label: 2 });
    assert.equal(top.engine, 'onnxruntime', `${what}: ONNX Runtime ran the gradient (no fallback after an error)`);
    const ref = top.gradient(x, (z) => tf.div(tf.sub(tf.softmax(z), tf.oneHot(tf.fill([3], 2, 'int32') as tf.Tensor1D, 3)), 3) as tf.Tensor2D);
    const [a, b] = [ort.dx, ref.dx.dataSync() as Float32Array];
    tf.dispose([x, ref.dx, ref.logits]);
    assert.ok(maxAbs(b) > 0, `${what}: the gradient is not all zero`);
    // Relative to the largest value: a wrong rule, layout or padding offset is off by that much, not by 1e-5.
    assert.ok(maxDiff(a, b) / maxAbs(b) < 1e-5, `${what}: ${maxDiff(a, b)} of ${maxAbs(b)}`);
    return pre ? (await net.compute({ input: pixels }, 3, [pre])).get(pre) : undefined;
  } finally {
    top.dispose();
    net.dispose();
  }
}

test('activations relu6, elu, softplus, exponential, leaky_relu: in a conv and an Activation layer, the ONNX gradient equals tfjs\'s, both sides of each kink hit', async () => {
  // Inputs wide enough for pre-activations below 0 and (relu6) above 6; small for exponential, which compounds.
  for (const [act, range] of [['relu6', [-8, 8]], ['elu', [-8, 8]], ['leaky_relu', [-8, 8]], ['softplus', [-4, 4]], ['exponential', [-0.5, 0.5]]] as const) {
    const file = path.join(tmpDir(), `act_${act}.h5`);
    await model(file, [
      conv('conv_a', 4, 3, 1, 'same', act, 'input'),
      conv('conv_b', 5, 2, 2, 'valid', 'linear', 'conv_a'),
      layer('Activation', 'act_b', { activation: act }, 'conv_b'),
      flatten('flat', 'act_b'),
      dense('out', 3, 'softmax', 'flat'),
    ], [['conv_a', [3, 3, 2, 4]], ['conv_b', [2, 2, 4, 5]], ['out', [100, 3], 0.1]]);
    const z = (await sameGradient(act, file, [...range], preOf('conv_a')))!;
    assert.ok(z.some((v) => v < 0), `${act}: some pre-activations are negative`);
    if (act === 'relu6') assert.ok(z.some((v) => v > 6), 'relu6: some pre-activations are above 6');
  }
});

test('LeakyReLU layers (Keras 2 alpha, Keras 3 negative_slope, the default 0.3; on images and on a dense layer): the ONNX gradient equals tfjs\'s', async () => {
  const file = path.join(tmpDir(), 'leaky.h5');
  await model(file, [
    conv('conv_a', 4, 3, 1, 'same', 'linear', 'input'),
    layer('LeakyReLU', 'leaky_a', { alpha: 0.1 }, 'conv_a'),
    conv('conv_b', 5, 2, 2, 'valid', 'linear', 'leaky_a'),
    layer('LeakyReLU', 'leaky_b', { negative_slope: 0.25 }, 'conv_b'),
    flatten('flat', 'leaky_b'),
    dense('hidden', 6, 'linear', 'flat'),
    layer('LeakyReLU', 'leaky_c', {}, 'hidden'),
    dense('out', 3, 'softmax', 'leaky_c'),
  ], [['conv_a', [3, 3, 2, 4]], ['conv_b', [2, 2, 4, 5]], ['hidden', [100, 6], 0.3], ['out', [6, 3]]]);
  const z = (await sameGradient('LeakyReLU', file, [-4, 4], 'conv_a'))!;
  assert.ok(z.some((v) => v < 0) && z.some((v) => v > 0));
});

test('ResNet-style ZeroPadding2D (int, symmetric pair and ((top, bottom), (left, right)) forms) and GlobalAveragePooling2D (with and without keepdims): the ONNX gradient equals tfjs\'s', async () => {
  const file = path.join(tmpDir(), 'resnet.h5');
  await model(file, [
    layer('ZeroPadding2D', 'pad_a', { padding: 1, data_format: 'channels_last' }, 'input'), // 12x10
    conv('conv_a', 4, 3, 2, 'valid', 'relu', 'pad_a'), // 5x4
    layer('ZeroPadding2D', 'pad_b', { padding: [[1, 2], [0, 3]], data_format: 'channels_last' }, 'conv_a'), // 8x7
    conv('conv_b', 5, 3, 1, 'valid', 'relu', 'pad_b'), // 6x5
    layer('ZeroPadding2D', 'pad_c', { padding: [2, 1], data_format: 'channels_last' }, 'conv_b'), // 10x7
    conv('conv_c', 6, 3, 2, 'same', 'tanh', 'pad_c'), // 5x4
    layer('GlobalAveragePooling2D', 'gap', { data_format: 'channels_last' }, 'conv_c'),
    layer('GlobalAveragePooling2D', 'gap_keep', { data_format: 'channels_last', keepdims: true }, 'conv_b'),
    flatten('flat_keep', 'gap_keep'),
    layer('Concatenate', 'both', { axis: -1 }, ['gap', 'flat_keep']),
    dense('out', 3, 'softmax', 'both'),
  ], [['conv_a', [3, 3, 2, 4]], ['conv_b', [3, 3, 4, 5]], ['conv_c', [3, 3, 5, 6]], ['out', [11, 3]]]);
  await sameGradient('ZeroPadding2D, GlobalAveragePooling2D', file, [0, 4]);
});

test('GlobalMaxPooling2D: the ONNX gradient equals tfjs\'s, a maximum held twice (a concatenation of a layer with itself) getting it at both places', async () => {
  const file = path.join(tmpDir(), 'gmp.h5');
  await model(file, [
    conv('conv_a', 4, 3, 1, 'same', 'relu', 'input'),
    conv('conv_b', 5, 3, 2, 'same', 'linear', 'conv_a'),
    // Every value of conv_b twice, one above the other: each channel's maximum is a tie.
    layer('Concatenate', 'twice', { axis: 1 }, ['conv_b', 'conv_b']),
    layer('GlobalMaxPooling2D', 'gmp_tie', { data_format: 'channels_last', keepdims: true }, 'twice'),
    flatten('flat_tie', 'gmp_tie'),
    layer('GlobalMaxPooling2D', 'gmp', { data_format: 'channels_last' }, 'conv_a'),
    layer('Concatenate', 'both', { axis: -1 }, ['flat_tie', 'gmp']),
    dense('out', 3, 'softmax', 'both'),
  ], [['conv_a', [3, 3, 2, 4]], ['conv_b', [3, 3, 4, 5]], ['out', [9, 3]]]);
  await sameGradient('GlobalMaxPooling2D', file, [0, 4]);
});

test('Subtract, Average, Multiply, Maximum on two and three branches of images: the ONNX gradient equals tfjs\'s, Maximum\'s ties going to the first input', async () => {
  for (const op of ['Subtract', 'Average', 'Multiply', 'Maximum']) {
    const file = path.join(tmpDir(), `merge_${op}.h5`);
    // Maximum reads branch l twice: a tie at every position, all of it for the first.
    const inbound = op === 'Subtract' ? ['branch_l', 'branch_r'] : op === 'Maximum' ? ['branch_l', 'branch_r', 'branch_l'] : ['branch_l', 'branch_r', 'branch_m'];
    await model(file, [
      conv('branch_l', 4, 3, 1, 'same', 'relu', 'input'),
      conv('branch_r', 4, 3, 1, 'same', 'tanh', 'input'),
      conv('branch_m', 4, 1, 1, 'valid', 'linear', 'input'),
      layer(op, 'merged', {}, inbound),
      conv('conv_c', 5, 2, 2, 'valid', 'linear', 'merged'),
      flatten('flat', 'conv_c'),
      dense('out', 3, 'softmax', 'flat'),
    ], [['branch_l', [3, 3, 2, 4]], ['branch_r', [3, 3, 2, 4]], ['branch_m', [1, 1, 2, 4]], ['conv_c', [2, 2, 4, 5]], ['out', [100, 3], 0.3]]);
    await sameGradient(op, file, [-2, 2]);
  }
});

test('Subtract, Average, Multiply, Maximum on dense (rank-2) values: the ONNX gradient equals tfjs\'s, Maximum\'s ties going to the first input', async () => {
  const file = path.join(tmpDir(), 'merge_dense.h5');
  await model(file, [
    conv('conv_a', 3, 3, 2, 'same', 'relu', 'input'),
    flatten('flat', 'conv_a'),
    dense('d_l', 6, 'tanh', 'flat'),
    dense('d_r', 6, 'linear', 'flat'),
    layer('Subtract', 'sub', {}, ['d_l', 'd_r']),
    layer('Average', 'avg', {}, ['d_l', 'd_r']),
    layer('Maximum', 'max', {}, ['sub', 'avg', 'd_l']),
    layer('Multiply', 'mul', {}, ['max', 'd_r']),
    // The same maxima by two paths, the second sending twice the gradient back: only the first gets it.
    layer('GlobalMaxPooling2D', 'gmp_once', { data_format: 'channels_last' }, 'conv_a'),
    layer('Concatenate', 'twice', { axis: 1 }, ['conv_a', 'conv_a']),
    layer('GlobalMaxPooling2D', 'gmp_twice', { data_format: 'channels_last' }, 'twice'),
    layer('Maximum', 'tie', {}, ['gmp_once', 'gmp_twice']),
    layer('Concatenate', 'both', { axis: -1 }, ['mul', 'tie']),
    dense('out', 3, 'softmax', 'both'),
  ], [['conv_a', [3, 3, 2, 3]], ['d_l', [60, 6]], ['d_r', [60, 6]], ['out', [9, 3]]]);
  await sameGradient('merges of dense values', file, [0, 4]);
});

test('Dense on images (it acts on the channel axis), its gradient coming back from a conv: the ONNX gradient equals tfjs\'s', async () => {
  for (const act of ['linear', 'relu']) {
    const file = path.join(tmpDir(), `dense4d_${act}.h5`);
    await model(file, [
      conv('conv_a', 4, 3, 1, 'same', 'relu', 'input'),
      dense('per_pixel', 3, act, 'conv_a'),
      conv('conv_b', 5, 2, 2, 'valid', 'linear', 'per_pixel'),
      flatten('flat', 'conv_b'),
      dense('out', 3, 'softmax', 'flat'),
    ], [['conv_a', [3, 3, 2, 4]], ['per_pixel', [4, 3]], ['conv_b', [2, 2, 3, 5]], ['out', [100, 3], 0.3]]);
    await sameGradient(`Dense (${act}) on images`, file, [0, 4]);
  }
});
