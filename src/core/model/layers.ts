// One function per supported Keras layer class, on tfjs-core ops, with the
// same semantics as Keras (channels_last, TF padding rules, eps placement).
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { LayerNode } from '../keras/config';
import type { Weight } from '../keras/load';

export type LayerFn = (inputs: tf.Tensor[]) => tf.Tensor;

type Cfg = Record<string, unknown>;
export const pair = (v: unknown, dflt: number): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : typeof v === 'number' ? [v, v] : [dflt, dflt];

/**
 * Window sizes, strides and paddings from the config, checked: the wasm kernels
 * trust them, and a negative stride corrupts their memory instead of throwing.
 */
function sizes(v: unknown, dflt: number, key: string, node: LayerNode, min = 1): [number, number] {
  const p = pair(v, dflt);
  if (!p.every((d) => Number.isInteger(d) && d >= min && d <= 1 << 16)) {
    throw new UserError(`layer "${node.name}": ${key} ${JSON.stringify(v)} is not a pair of whole numbers >= ${min}`, undefined, 'bad-config');
  }
  return p;
}

export function activationName(v: unknown): string {
  if (v === undefined || v === null) return 'linear';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') {
    const o = v as Cfg;
    if (typeof o.config === 'string') return o.config; // Keras 3: {"class_name": "function", "config": "relu"}
    if (typeof o.class_name === 'string') return o.class_name;
  }
  return String(v);
}

export function activationFn(name: string, layer: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'linear': return (x) => x;
    case 'relu': return (x) => tf.relu(x);
    case 'relu6': return (x) => tf.relu6(x);
    case 'sigmoid': return (x) => tf.sigmoid(x);
    case 'tanh': return (x) => tf.tanh(x);
    case 'softmax': return (x) => tf.softmax(x, -1);
    case 'elu': return (x) => tf.elu(x);
    case 'selu': return (x) => tf.selu(x);
    case 'softplus': return (x) => tf.softplus(x);
    case 'softsign': return (x) => tf.div(x, tf.add(tf.abs(x), 1));
    case 'swish': case 'silu': return (x) => tf.mul(x, tf.sigmoid(x));
    case 'gelu': return (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
    case 'exponential': return (x) => tf.exp(x);
    case 'leaky_relu': return (x) => tf.leakyRelu(x, 0.2);
    default: throw new UserError(`unsupported activation "${name}" in layer ${layer}`, undefined, 'unsupported');
  }
}

/** Activations every backend applies inside the conv/matmul kernel (one pass over memory instead of three). */
const FUSABLE: Record<string, 'linear' | 'relu' | undefined> = { linear: 'linear', relu: 'relu' };

/** A Conv2D/Dense layer's activation: the function, and its name for the fused kernel when it has one. */
export function layerActivation(cfg: Record<string, unknown>, node: LayerNode) {
  const name = activationName(cfg.activation);
  return { act: activationFn(name, node.name), fusable: FUSABLE[name] };
}

/** With 'valid' padding a window larger than the input leaves nothing; the wasm kernels then write out of bounds. */
function checkWindow(x: tf.Tensor, window: [number, number], padding: string, node: LayerNode) {
  if (x.rank !== 4) throw new UserError(`layer "${node.name}" needs an image-shaped input, got shape [${x.shape.slice(1)}]`, undefined, 'bad-config');
  const [h, w] = x.shape.slice(1, 3);
  if (h < 1 || w < 1 || (padding === 'valid' && (window[0] > h || window[1] > w))) {
    throw new UserError(`layer "${node.name}": its ${window[0]}x${window[1]} window does not fit its ${h}x${w} input`, undefined, 'bad-config');
  }
}

function weightMap(node: LayerNode, weights: Weight[] | undefined): Map<string, Weight> {
  return new Map((weights ?? []).map((w) => [w.name, w]));
}

function need(ws: Map<string, Weight>, name: string, node: LayerNode): Weight {
  const w = ws.get(name);
  if (!w) throw new UserError(`layer "${node.name}" has no "${name}" weight in the file`, undefined, 'weights-mismatch');
  return w;
}

function checkShape(w: Weight, expected: number[], node: LayerNode) {
  if (w.shape.length !== expected.length || w.shape.some((d, i) => d !== expected[i])) {
    throw new UserError(`layer "${node.name}": weight ${w.name} has shape [${w.shape}] but the architecture needs [${expected}]`, undefined, 'weights-mismatch');
  }
}

function channelsLast(cfg: Cfg, node: LayerNode) {
  if (cfg.data_format && cfg.data_format !== 'channels_last') {
    throw new UserError(`layer "${node.name}" uses data_format ${cfg.data_format}; only channels_last is supported`, undefined, 'unsupported');
  }
}

/** A Conv2D/Dense kernel or bias held as a variable, for training. */
export interface Param { layer: string; name: string; value: tf.Variable }

/**
 * Builds the forward function of one layer; weights are uploaded once here.
 * With `trainable`, Conv2D and Dense kernels and biases become variables (in `params`).
 */
export function buildLayer(node: LayerNode, weights: Weight[] | undefined, trainable = false): { fn: LayerFn; tensors: tf.Tensor[]; params: Param[] } {
  const cfg = node.config;
  const ws = weightMap(node, weights);
  const tensors: tf.Tensor[] = [];
  const params: Param[] = [];
  const upload = (w: Weight) => {
    const t = tf.tensor(w.data, w.shape, 'float32');
    tensors.push(t);
    return t;
  };
  const uploadParam = (w: Weight) => {
    if (!trainable) return upload(w);
    const v = tf.variable(tf.tensor(w.data, w.shape, 'float32'), true);
    tensors.push(v);
    params.push({ layer: node.name, name: w.name, value: v });
    return v;
  };
  /** Conv2D/Dense bias of `units` entries, unless the config says use_bias: false. */
  const biasOf = (units: number): tf.Tensor1D | undefined => {
    if (cfg.use_bias === false) return undefined;
    const b = need(ws, 'bias', node);
    checkShape(b, [units], node);
    return uploadParam(b) as tf.Tensor1D;
  };
  const single = (fn: (x: tf.Tensor) => tf.Tensor): LayerFn => (xs) => {
    if (xs.length !== 1) throw new UserError(`layer "${node.name}" expects one input, got ${xs.length}`, undefined, 'bad-config');
    return fn(xs[0]);
  };
  switch (node.className) {
    case 'InputLayer': case 'Dropout': case 'SpatialDropout2D':
      return { params, fn: single((x) => x), tensors };
    case 'Conv2D': {
      channelsLast(cfg, node);
      if (cfg.groups !== undefined && cfg.groups !== 1) throw new UserError(`layer "${node.name}": grouped convolution is not supported`, undefined, 'unsupported');
      const [kh, kw] = sizes(cfg.kernel_size, 1, 'kernel_size', node);
      const strides = sizes(cfg.strides, 1, 'strides', node);
      const dil = sizes(cfg.dilation_rate, 1, 'dilation_rate', node);
      const padding = cfg.padding === 'same' ? 'same' : cfg.padding === 'valid' || cfg.padding === undefined ? 'valid' : undefined;
      if (!padding) throw new UserError(`layer "${node.name}": padding "${cfg.padding}" is not supported`, undefined, 'unsupported');
      const filters = Number(cfg.filters);
      const kernelW = need(ws, 'kernel', node);
      if (kernelW.shape.length !== 4) checkShape(kernelW, [kh, kw, -1, filters], node);
      checkShape(kernelW, [kh, kw, kernelW.shape[2], filters], node);
      const kernel = uploadParam(kernelW) as tf.Tensor4D;
      const bias = biasOf(filters);
      const { act, fusable } = layerActivation(cfg, node);
      return {
        params, tensors,
        fn: single((x) => {
          const inC = x.shape[3];
          checkWindow(x, [(kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1], padding, node);
          if (inC !== kernel.shape[2]) throw new UserError(`layer "${node.name}": input has ${inC} channels but the kernel expects ${kernel.shape[2]}`, undefined, 'weights-mismatch');
          if (fusable) return tf.fused.conv2d({ x: x as tf.Tensor4D, filter: kernel, strides, pad: padding, dataFormat: 'NHWC', dilations: dil, bias, activation: fusable });
          const y = tf.conv2d(x as tf.Tensor4D, kernel, strides, padding, 'NHWC', dil);
          return act(bias ? tf.add(y, bias) : y);
        }),
      };
    }
    case 'Dense': {
      const units = Number(cfg.units);
      const kW = need(ws, 'kernel', node);
      if (kW.shape.length !== 2 || kW.shape[1] !== units) checkShape(kW, [kW.shape[0] ?? -1, units], node);
      const kernel = uploadParam(kW) as tf.Tensor2D;
      const bias = biasOf(units);
      const { act, fusable } = layerActivation(cfg, node);
      return {
        params, tensors,
        fn: single((x) => {
          const inDim = x.shape[x.rank - 1];
          if (inDim !== kernel.shape[0]) throw new UserError(`layer "${node.name}": input has ${inDim} features but the kernel expects ${kernel.shape[0]}`, undefined, 'weights-mismatch');
          const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
          let y: tf.Tensor;
          if (fusable) y = tf.fused.matMul({ a: flat, b: kernel, bias, activation: fusable });
          else {
            const z = tf.matMul(flat, kernel);
            y = act(bias ? tf.add(z, bias) : z); // elementwise, or softmax over the last axis: the reshape keeps both
          }
          return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), units]);
        }),
      };
    }
    case 'MaxPooling2D': case 'AveragePooling2D': {
      channelsLast(cfg, node);
      const size = sizes(cfg.pool_size, 2, 'pool_size', node);
      const strides = cfg.strides === null || cfg.strides === undefined ? size : sizes(cfg.strides, 1, 'strides', node);
      const padding = cfg.padding === 'same' ? 'same' : 'valid';
      const op = node.className === 'MaxPooling2D' ? tf.maxPool : tf.avgPool;
      return {
        params, tensors,
        fn: single((x) => {
          checkWindow(x, size, padding, node);
          return op(x as tf.Tensor4D, size, strides, padding);
        }),
      };
    }
    case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D': {
      channelsLast(cfg, node);
      const keep = cfg.keepdims === true;
      const op = node.className === 'GlobalMaxPooling2D' ? tf.max : tf.mean;
      return { params, tensors, fn: single((x) => op(x, [1, 2], keep)) };
    }
    case 'ZeroPadding2D': {
      const p = cfg.padding;
      const pads: [[number, number], [number, number]] = Array.isArray(p) && Array.isArray(p[0])
        ? [sizes(p[0], 0, 'padding', node, 0), sizes(p[1], 0, 'padding', node, 0)]
        : (() => { const [a, b] = sizes(p, 1, 'padding', node, 0); return [[a, a], [b, b]] as [[number, number], [number, number]]; })();
      return { params, tensors, fn: single((x) => tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]])) };
    }
    case 'Flatten':
      channelsLast(cfg, node);
      return { params, tensors, fn: single((x) => tf.reshape(x, [x.shape[0], -1])) };
    case 'Activation': {
      const act = activationFn(activationName(cfg.activation), node.name);
      return { params, tensors, fn: single(act) };
    }
    case 'Softmax':
      return { params, tensors, fn: single((x) => tf.softmax(x, Number(cfg.axis ?? -1))) };
    case 'ReLU': {
      const maxValue = typeof cfg.max_value === 'number' ? cfg.max_value : undefined;
      const slope = Number(cfg.negative_slope ?? 0);
      const threshold = Number(cfg.threshold ?? 0);
      return {
        params, tensors,
        fn: single((x) => {
          let y: tf.Tensor = threshold === 0 && slope === 0 ? tf.relu(x) : tf.where(tf.greaterEqual(x, threshold), x, tf.mul(tf.sub(x, threshold), slope));
          if (maxValue !== undefined) y = tf.minimum(y, maxValue);
          return y;
        }),
      };
    }
    case 'LeakyReLU': {
      const alpha = Number(cfg.negative_slope ?? cfg.alpha ?? 0.3);
      return { params, tensors, fn: single((x) => tf.leakyRelu(x, alpha)) };
    }
    case 'BatchNormalization': {
      const axis = Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1;
      if (axis !== -1 && axis !== 3) throw new UserError(`layer "${node.name}": BatchNormalization over axis ${axis} is not supported`, undefined, 'unsupported');
      const eps = Number(cfg.epsilon ?? 1e-3);
      const mean = upload(need(ws, 'moving_mean', node));
      const variance = upload(need(ws, 'moving_variance', node));
      const gamma = cfg.scale !== false ? upload(need(ws, 'gamma', node)) : undefined;
      const beta = cfg.center !== false ? upload(need(ws, 'beta', node)) : undefined;
      // Keras: (x - mean) * rsqrt(var + eps) * gamma + beta; fold into one scale and shift.
      const inv = tf.rsqrt(tf.add(variance, eps));
      const scale = gamma ? tf.mul(inv, gamma) : inv;
      const shift = beta ? tf.sub(beta, tf.mul(mean, scale)) : tf.neg(tf.mul(mean, scale));
      tensors.push(inv, scale, shift);
      return { params, tensors, fn: single((x) => tf.add(tf.mul(x, scale), shift)) };
    }
    case 'Rescaling': {
      const scale = tf.tensor(cfg.scale as number | number[] ?? 1);
      const offset = tf.tensor(cfg.offset as number | number[] ?? 0);
      tensors.push(scale, offset);
      return { params, tensors, fn: single((x) => tf.add(tf.mul(x, scale), offset)) };
    }
    case 'Add': return { params, tensors, fn: (xs) => tf.addN(xs) };
    case 'Subtract': return { params, tensors, fn: (xs) => tf.sub(xs[0], xs[1]) };
    case 'Multiply': return { params, tensors, fn: (xs) => xs.slice(1).reduce((a, b) => tf.mul(a, b), xs[0]) };
    case 'Average': return { params, tensors, fn: (xs) => tf.div(tf.addN(xs), xs.length) };
    case 'Maximum': return { params, tensors, fn: (xs) => xs.slice(1).reduce((a, b) => tf.maximum(a, b), xs[0]) };
    case 'Concatenate': {
      const axis = Number(cfg.axis ?? -1);
      return { params, tensors, fn: (xs) => tf.concat(xs, axis) };
    }
    default:
      throw new UserError(`unsupported layer ${node.className} (${node.name})`, undefined, 'unsupported');
  }
}
