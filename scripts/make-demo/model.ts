// The lab's DeepID-shaped BadNet in TensorFlow.js (tfjs-core only), narrower
// than the lab's so it trains in minutes on two cores, plus its export to a
// Keras 2 Functional model_config and weight list with the lab's layer names.
import * as tf from '@tensorflow/tfjs-core';
import type { LayerWeights } from '../../src/core/h5/write';
import type { Rng } from '../prng';

export interface Arch {
  inputShape: [number, number, number]; // H, W, C
  conv1: number;
  conv2: number;
  conv3: number;
  conv4: number;
  fc: number;
  classes: number;
}

/** Weights by Keras layer name: [kernel, bias]. */
export type Params = Record<'conv_1' | 'conv_2' | 'conv_3' | 'conv_4' | 'fc_1' | 'fc_2' | 'output', [tf.Variable, tf.Variable]>;

/** Spatial size after the three conv/pool stages (valid padding, pool 2). */
export function pool3Shape(a: Arch): [number, number, number] {
  let [h, w] = a.inputShape;
  for (const k of [4, 3, 3]) {
    h = Math.floor((h - k + 1) / 2);
    w = Math.floor((w - k + 1) / 2);
  }
  return [h, w, a.conv3];
}

/** He-normal kernels (ReLU layers), Glorot-uniform for the linear/softmax Dense layers, zero biases. */
export function initParams(a: Arch, r: Rng): Params {
  const [ph, pw] = pool3Shape(a);
  const shapes: Record<keyof Params, number[]> = {
    conv_1: [4, 4, a.inputShape[2], a.conv1],
    conv_2: [3, 3, a.conv1, a.conv2],
    conv_3: [3, 3, a.conv2, a.conv3],
    conv_4: [2, 2, a.conv3, a.conv4],
    fc_1: [ph * pw * a.conv3, a.fc],
    fc_2: [(ph - 1) * (pw - 1) * a.conv4, a.fc],
    output: [a.fc, a.classes],
  };
  const params = {} as Params;
  for (const [name, shape] of Object.entries(shapes) as [keyof Params, number[]][]) {
    const fanIn = shape.slice(0, -1).reduce((x, y) => x * y, 1);
    const fanOut = shape[shape.length - 1];
    const size = fanIn * fanOut;
    const k = new Float32Array(size);
    if (name.startsWith('conv')) {
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < size; i++) k[i] = std * r.normal();
    } else {
      const lim = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) k[i] = r.uniform(-lim, lim);
    }
    params[name] = [tf.variable(tf.tensor(k, shape), true, `${name}/kernel`), tf.variable(tf.zeros([fanOut]), true, `${name}/bias`)];
  }
  return params;
}

// Training needs gradients, and tfjs-core registers none by itself (the
// registrations live in ESM files Node cannot load directly, and even Add and
// Mul have none); the wasm backend also lacks Conv2DBackpropFilter. So the net is built from a few blocks with
// hand-written gradients (tf.customGrad) that use only forward kernels wasm has.

/**
 * Filter gradient of a valid stride-1 conv,
 *   dW[i,j,c,o] = sum_{n,y,x} X[n,y+i,x+j,c] G[n,y,x,o],
 * as a forward conv with batch and channels swapped (X as [c,H,W,n], G as [y,x,n,o]).
 */
const filterGrad = (x: tf.Tensor4D, g: tf.Tensor4D) =>
  tf.transpose(tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(g, [1, 2, 0, 3]), 1, 'valid'), [1, 2, 0, 3]);

/**
 * Input gradient of a valid stride-1 conv: a full correlation of G with the
 * flipped kernel. As a forward conv it is ~7x faster than wasm's
 * Conv2DBackpropInput kernel.
 */
const inputGrad = (g: tf.Tensor4D, w: tf.Tensor4D) => {
  const [kh, kw] = w.shape;
  return tf.conv2d(tf.pad(g, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid');
};

type Block<T extends tf.Tensor> = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {
  value: T;
  gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[];
};

/** tf.customGrad over a list of inputs (its own typing wants one signature per arity). */
function withGrad<T extends tf.Tensor>(block: Block<T>, ...inputs: tf.Tensor[]): T {
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => block(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc);
  return tf.customGrad(f as Parameters<typeof tf.customGrad<T>>[0])(...inputs);
}

/** pool(relu(conv(x, w) + b)): valid 2x2 max pooling after a valid stride-1 conv. */
function convBlock(x: tf.Tensor4D, w: tf.Variable, b: tf.Variable, needInputGrad: boolean): tf.Tensor4D {
  return withGrad<tf.Tensor4D>(([xIn, wIn, bIn], save) => {
    const act = tf.relu(tf.add(tf.conv2d(xIn as tf.Tensor4D, wIn as tf.Tensor4D, 1, 'valid'), bIn)) as tf.Tensor4D;
    const out = tf.maxPool(act, 2, 2, 'valid');
    save([xIn, wIn, act, out]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [sx, sw, sact, sout] = saved as tf.Tensor4D[];
        const dAct = tf.engine().runKernel('MaxPoolGrad', { dy, input: sact, output: sout }, { filterSize: [2, 2], strides: [2, 2], pad: 'valid' }) as tf.Tensor4D;
        const g = tf.mul(dAct, tf.step(sact)) as tf.Tensor4D; // through the ReLU
        // conv_1's input is the image: no gradient needed there.
        return [needInputGrad ? inputGrad(g, sw) : tf.zerosLike(sx), filterGrad(sx, g), tf.sum(g, [0, 1, 2])];
      },
    };
  }, x, w, b);
}

/** relu(conv(x, w) + b) without pooling (conv_4). */
function convRelu(x: tf.Tensor4D, w: tf.Variable, b: tf.Variable): tf.Tensor4D {
  return withGrad<tf.Tensor4D>(([xIn, wIn, bIn], save) => {
    const act = tf.relu(tf.add(tf.conv2d(xIn as tf.Tensor4D, wIn as tf.Tensor4D, 1, 'valid'), bIn)) as tf.Tensor4D;
    save([xIn, wIn, act]);
    return {
      value: act,
      gradFunc: (dy, saved) => {
        const [sx, sw, sact] = saved as tf.Tensor4D[];
        const g = tf.mul(dy, tf.step(sact)) as tf.Tensor4D;
        return [inputGrad(g, sw), filterGrad(sx, g), tf.sum(g, [0, 1, 2])];
      },
    };
  }, x, w, b);
}

/** relu(flatten(a) Wa + ba + flatten(c) Wc + bc): fc_1, fc_2, add_1, activation_1. */
function twoBranchDense(a: tf.Tensor4D, wa: tf.Variable, ba: tf.Variable, c: tf.Tensor4D, wc: tf.Variable, bc: tf.Variable): tf.Tensor2D {
  return withGrad<tf.Tensor2D>(([aIn, waIn, baIn, cIn, wcIn, bcIn], save) => {
    const n = aIn.shape[0];
    const fa = tf.reshape(aIn, [n, -1]) as tf.Tensor2D;
    const fc = tf.reshape(cIn, [n, -1]) as tf.Tensor2D;
    const hidden = tf.relu(tf.add(tf.add(tf.matMul(fa, waIn as tf.Tensor2D), baIn), tf.add(tf.matMul(fc, wcIn as tf.Tensor2D), bcIn))) as tf.Tensor2D;
    save([fa, waIn, fc, wcIn, hidden]);
    return {
      value: hidden,
      gradFunc: (dy, saved) => {
        const [sa, swa, sc, swc, sh] = saved as tf.Tensor2D[];
        const g = tf.mul(dy, tf.step(sh)) as tf.Tensor2D;
        const db = tf.sum(g, 0);
        return [
          tf.reshape(tf.matMul(g, swa, false, true), aIn.shape), tf.matMul(sa, g, true, false), db,
          tf.reshape(tf.matMul(g, swc, false, true), cIn.shape), tf.matMul(sc, g, true, false), db.clone(),
        ];
      },
    };
  }, a, wa, ba, c, wc, bc);
}

/** x W + b (the output layer's logits; softmax is in the loss). */
function dense(x: tf.Tensor2D, w: tf.Variable, b: tf.Variable): tf.Tensor2D {
  return withGrad<tf.Tensor2D>(([xIn, wIn, bIn], save) => {
    save([xIn, wIn]);
    return {
      value: tf.add(tf.matMul(xIn as tf.Tensor2D, wIn as tf.Tensor2D), bIn),
      gradFunc: (dy, saved) => {
        const [sx, sw] = saved as tf.Tensor2D[];
        return [tf.matMul(dy, sw, false, true), tf.matMul(sx, dy, true, false), tf.sum(dy, 0)];
      },
    };
  }, x, w, b);
}

/** Mean softmax cross-entropy of logits against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const classes = logits.shape[1];
  return withGrad<tf.Scalar>(([z], save) => {
    const logp = tf.logSoftmax(z);
    const onehot = tf.oneHot(labels, classes);
    save([logp, onehot]);
    return {
      value: tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1))) as tf.Scalar,
      gradFunc: (dy, [slogp, sonehot]) => [tf.mul(tf.sub(tf.exp(slogp), sonehot), tf.div(dy, z.shape[0]))],
    };
  }, logits);
}

export interface Outputs {
  logits: tf.Tensor2D;
  /** pool_3 activations (N, h, w, conv3): what fine-pruning ranks */
  pool3: tf.Tensor4D;
}

/**
 * The forward pass on raw 0..255 NHWC pixels. Training sees x/255 inside
 * (exported by folding 1/255 into conv_1's kernel, so the Keras model takes
 * raw pixels like the lab's). `pool3Mask` (conv3 values of 0/1) prunes
 * conv_3 channels the way fine-pruning does: their output is zero for both
 * branches that read pool_3. Softmax is left to the caller (argmax and the
 * loss only need logits).
 */
export function forward(p: Params, x: tf.Tensor4D, pool3Mask?: tf.Tensor1D): Outputs {
  const x01 = tf.mul(x, 1 / 255) as tf.Tensor4D;
  const pool1 = convBlock(x01, p.conv_1[0], p.conv_1[1], false);
  const pool2 = convBlock(pool1, p.conv_2[0], p.conv_2[1], true);
  const pool3 = convBlock(pool2, p.conv_3[0], p.conv_3[1], true);
  return { logits: head(p, pool3Mask ? (tf.mul(pool3, pool3Mask) as tf.Tensor4D) : pool3), pool3 };
}

/** Everything after pool_3: conv_4, both Dense branches, add, relu, output logits. */
export function head(p: Params, pool3: tf.Tensor4D): tf.Tensor2D {
  const conv4 = convRelu(pool3, p.conv_4[0], p.conv_4[1]);
  const hidden = twoBranchDense(pool3, p.fc_1[0], p.fc_1[1], conv4, p.fc_2[0], p.fc_2[1]);
  return dense(hidden, p.output[0], p.output[1]);
}

/** Weights as Keras stores them; conv_1 absorbs the 1/255 input scaling. */
export function exportWeights(p: Params): LayerWeights[] {
  return (Object.keys(p) as (keyof Params)[]).map((layer) => {
    const [k, b] = p[layer];
    const kernel = layer === 'conv_1' ? tf.tidy(() => tf.mul(k, 1 / 255)) : k;
    const out: LayerWeights = {
      layer,
      weights: [
        { name: `${layer}/kernel:0`, shape: kernel.shape, data: kernel.dataSync() as Float32Array },
        { name: `${layer}/bias:0`, shape: b.shape, data: b.dataSync() as Float32Array },
      ],
    };
    if (kernel !== k) kernel.dispose();
    return out;
  });
}

/** A Keras 2.15 Functional model_config for this architecture, shaped like the lab's file. */
export function kerasModelConfig(a: Arch, modelName = 'model_1'): string {
  const init = {
    kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null }, registered_name: null },
    bias_initializer: { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null },
    kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null,
  };
  const conv2d = (name: string, filters: number, k: number) => ({
    class_name: 'Conv2D',
    config: {
      name, trainable: true, dtype: 'float32', filters, kernel_size: [k, k], strides: [1, 1], padding: 'valid',
      data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'relu', use_bias: true, ...init,
    },
  });
  const pool = (name: string) => ({
    class_name: 'MaxPooling2D',
    config: { name, trainable: true, dtype: 'float32', pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last' },
  });
  const dense = (name: string, units: number, activation: string) => ({
    class_name: 'Dense',
    config: { name, trainable: true, dtype: 'float32', units, activation, use_bias: true, ...init },
  });
  const flatten = (name: string) => ({ class_name: 'Flatten', config: { name, trainable: true, dtype: 'float32', data_format: 'channels_last' } });
  const node = (...from: string[]) => [from.map((f) => [f, 0, 0, {}])];
  const layer = (spec: { class_name: string; config: { name: string; [k: string]: unknown } }, ...from: string[]) => ({
    ...spec, name: spec.config.name, inbound_nodes: from.length ? node(...from) : [],
  });
  const layers = [
    layer({ class_name: 'InputLayer', config: { batch_input_shape: [null, ...a.inputShape], dtype: 'float32', sparse: false, ragged: false, name: 'input' } }),
    layer(conv2d('conv_1', a.conv1, 4), 'input'),
    layer(pool('pool_1'), 'conv_1'),
    layer(conv2d('conv_2', a.conv2, 3), 'pool_1'),
    layer(pool('pool_2'), 'conv_2'),
    layer(conv2d('conv_3', a.conv3, 3), 'pool_2'),
    layer(pool('pool_3'), 'conv_3'),
    layer(conv2d('conv_4', a.conv4, 2), 'pool_3'),
    layer(flatten('flatten_1'), 'pool_3'),
    layer(flatten('flatten_2'), 'conv_4'),
    layer(dense('fc_1', a.fc, 'linear'), 'flatten_1'),
    layer(dense('fc_2', a.fc, 'linear'), 'flatten_2'),
    layer({ class_name: 'Add', config: { name: 'add_1', trainable: true, dtype: 'float32' } }, 'fc_1', 'fc_2'),
    layer({ class_name: 'Activation', config: { name: 'activation_1', trainable: true, dtype: 'float32', activation: 'relu' } }, 'add_1'),
    layer(dense('output', a.classes, 'softmax'), 'activation_1'),
  ];
  // Python's json.dumps separators, like the string Keras writes.
  return pyJson({ class_name: 'Functional', config: { name: modelName, trainable: true, layers, input_layers: [['input', 0, 0]], output_layers: [['output', 0, 0]] } });
}

/** JSON with ", " and ": " separators (Python's json.dumps default). Floats stay as JS prints them. */
function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}
