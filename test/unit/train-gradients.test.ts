// Gradients on the wasm backend: tfjs's gradient configs (registered from its
// ESM files) and our Conv2DBackpropFilter / stride-1 Conv2DBackpropInput
// kernels, checked against the cpu backend's own kernels, against central
// finite differences, and through the whole demo network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../src/core/keras/load';
import { initBackend } from '../../src/core/model/backend';
import { Net } from '../../src/core/model/net';
import { readImageSet } from '../../src/core/train/feed';
import { registerGradients } from '../../src/core/train/gradients';
import { crossEntropy, outputIsSoftmax } from '../../src/core/train/trainer';
import { demo, needsDemo } from '../helpers';
import { rng } from '../../src/core/prng';

type Pad = 'valid' | 'same';
const CASES: { x: number[]; f: number[]; strides: number | [number, number]; pad: Pad }[] = [
  { x: [3, 9, 8, 2], f: [3, 3, 2, 4], strides: 1, pad: 'valid' },
  { x: [3, 9, 8, 2], f: [3, 2, 2, 4], strides: 2, pad: 'same' },
  { x: [2, 10, 7, 3], f: [4, 4, 3, 5], strides: [2, 3], pad: 'valid' },
  { x: [2, 10, 7, 3], f: [3, 3, 3, 5], strides: 1, pad: 'same' },
  { x: [2, 11, 6, 3], f: [4, 2, 3, 5], strides: 1, pad: 'same' },
  { x: [4, 55, 47, 3], f: [4, 4, 3, 16], strides: 1, pad: 'valid' }, // the lab's conv_1
];

const values = (seed: number, n: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Largest difference relative to the largest magnitude of the reference. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0, scale = 1e-12;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

/** Runs a Conv2D backprop kernel on `backend` with the same inputs. */
async function onBackend(backend: 'wasm' | 'cpu', kernel: 'Conv2DBackpropFilter' | 'Conv2DBackpropInput', c: typeof CASES[number]) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(values(1, count(c.x)), c.x as [number, number, number, number]);
    const f = tf.tensor4d(values(2, count(c.f)), c.f as [number, number, number, number]);
    const y = tf.conv2d(x, f, c.strides, c.pad);
    const dy = tf.tensor(values(3, y.size), y.shape);
    const out = kernel === 'Conv2DBackpropFilter'
      ? tf.engine().runKernel(kernel, { x, dy }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f })
      : tf.engine().runKernel(kernel, { dy, filter: f }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x });
    return Float32Array.from((out as tf.Tensor).dataSync());
  });
}

test('wasm Conv2DBackpropFilter and Conv2DBackpropInput equal the cpu backend\'s kernels (strides, valid and same padding)', async () => {
  await initBackend('wasm');
  registerGradients();
  for (const c of CASES) {
    for (const k of ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const) {
      const got = await onBackend('wasm', k, c);
      const want = await onBackend('cpu', k, c);
      assert.equal(got.length, want.length);
      const e = relErr(got, want);
      assert.ok(e < 1e-5, `${k} ${JSON.stringify(c)}: relative error ${e}`);
    }
  }
  await tf.setBackend('wasm');
});

test('wasm BatchMatMul with transposed operands (Dense gradients) equals the cpu backend\'s', async () => {
  await initBackend('wasm');
  registerGradients();
  const shapes: [number[], number[], boolean, boolean][] = [
    [[32, 160], [32, 1283], true, false], [[32, 1283], [160, 1283], false, true], [[7, 5], [6, 7], true, true], [[2, 7, 5], [2, 7, 3], true, false],
  ];
  for (const [sa, sb, ta, tb] of shapes) {
    const product = async (backend: 'wasm' | 'cpu') => {
      await tf.setBackend(backend);
      const operand = (seed: number, shape: number[]): tf.Tensor2D => {
        const t: tf.Tensor = tf.tensor(values(seed, count(shape)), shape);
        return t as tf.Tensor2D; // rank 3 too: matMul multiplies batches
      };
      return tf.tidy(() => Float32Array.from(tf.matMul(operand(4, sa), operand(5, sb), ta, tb).dataSync()));
    };
    const got = await product('wasm'), want = await product('cpu');
    assert.equal(got.length, want.length);
    assert.ok(relErr(got, want) < 1e-5, `${sa}·${sb} (${ta}, ${tb}): relative error ${relErr(got, want)}`);
  }
  await tf.setBackend('wasm');
});

test('wasm MaxPoolGrad equals the cpu backend\'s, ties included (all-zero windows after a ReLU), for overlapping, padded and uneven pools', async () => {
  await initBackend('wasm');
  registerGradients();
  const cases: { x: number[]; size: number | [number, number]; strides: number | [number, number]; pad: Pad }[] = [
    { x: [3, 9, 8, 2], size: 2, strides: 2, pad: 'valid' },
    { x: [2, 9, 7, 3], size: 3, strides: 2, pad: 'same' },
    { x: [2, 10, 7, 3], size: [2, 3], strides: [1, 2], pad: 'valid' },
    { x: [2, 52, 44, 20], size: 2, strides: 2, pad: 'valid' }, // the lab's pool_1
  ];
  for (const c of cases) {
    const grad = async (backend: 'wasm' | 'cpu') => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        // Rounded ReLU values: many windows hold equal maxima.
        const x = tf.relu(tf.round(tf.tensor(values(6, count(c.x)), c.x))) as tf.Tensor4D;
        const y = tf.maxPool(x, c.size, c.strides, c.pad);
        const dy = tf.tensor(values(7, y.size), y.shape);
        const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: c.size, strides: c.strides, pad: c.pad }) as tf.Tensor;
        return Float32Array.from(dx.dataSync());
      });
    };
    assert.deepEqual(await grad('wasm'), await grad('cpu'), JSON.stringify(c));
  }
  await tf.setBackend('wasm');
});

test('tf.grad of a conv on wasm matches central finite differences, for the kernel and the input', async () => {
  await initBackend('wasm');
  registerGradients();
  await tf.setBackend('wasm');
  for (const c of CASES.slice(0, 5)) {
    const x = tf.tensor4d(values(1, count(c.x)), c.x as [number, number, number, number]);
    const f = tf.tensor4d(values(2, count(c.f)), c.f as [number, number, number, number]);
    const r = tf.tensor(values(4, tf.conv2d(x, f, c.strides, c.pad).size), tf.conv2d(x, f, c.strides, c.pad).shape);
    // L is linear in each argument, so a large step is exact up to float rounding.
    const loss = (xx: tf.Tensor, ff: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.add(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, c.strides, c.pad), 100)), r));
    const [gx, gf] = tf.grads(loss)([x, f]).map((g) => g.dataSync());
    const pick = rng(7);
    for (const [which, t, g] of [['kernel', f, gf], ['input', x, gx]] as const) {
      for (let k = 0; k < 6; k++) {
        const i = pick.int(t.size);
        const eps = 0.25;
        const at = (d: number) => {
          const v = Float32Array.from(t.dataSync());
          v[i] += d;
          const moved = tf.tensor(v, t.shape);
          const l = which === 'kernel' ? loss(x, moved) : loss(moved, f);
          const out = l.dataSync()[0];
          tf.dispose([moved, l]);
          return out;
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        assert.ok(Math.abs(fd - g[i]) <= 2e-3 * Math.max(1, Math.abs(fd)), `${which}[${i}] ${JSON.stringify(c)}: grad ${g[i]} vs finite difference ${fd}`);
      }
    }
  }
});

test('every weight gradient of the demo BadNet\'s loss on wasm equals the cpu backend\'s', { skip: needsDemo }, async () => {
  await initBackend('wasm');
  registerGradients();
  const model = await loadModel(demo('bd_net.h5'));
  const set = await readImageSet(demo('valid.h5'), model.graph.inputShape, 20);
  const n = 2;
  const pixels = set.images.subarray(0, n * count(model.graph.inputShape));
  const labels = Int32Array.from(set.labels!.subarray(0, n));
  const gradsOn = async (backend: 'wasm' | 'cpu') => {
    await tf.setBackend(backend);
    const net = new Net(model, true);
    try {
      const x = tf.tensor4d(pixels, [n, ...model.graph.inputShape] as [number, number, number, number]);
      const y = tf.tensor1d(labels, 'int32');
      const { grads } = tf.variableGrads(() => crossEntropy(net.predict(x), y, outputIsSoftmax(net)), net.params.map((p) => p.value));
      const out = new Map(net.params.map((p) => [`${p.layer}/${p.name}`, Float32Array.from(grads[p.value.name].dataSync())]));
      tf.dispose([x, y, ...Object.values(grads)]);
      return out;
    } finally {
      net.dispose();
    }
  };
  const wasm = await gradsOn('wasm');
  const cpu = await gradsOn('cpu');
  await tf.setBackend('wasm');
  assert.equal(wasm.size, 14, 'kernel and bias of 4 Conv2D and 3 Dense layers');
  for (const [name, want] of cpu) {
    const e = relErr(wasm.get(name)!, want);
    assert.ok(e < 1e-3, `${name}: relative error ${e}`);
    assert.ok(want.some((v) => v !== 0), `${name}: a gradient that is all zero checks nothing`);
  }
});
