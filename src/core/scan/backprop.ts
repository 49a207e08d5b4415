// Input gradients through a Net, by a reverse pass over its layer graph.
// tfjs-core registers its gradient functions only in its ES-module build (not
// in the CommonJS build Node loads), and its fused conv gradient always asks
// for the filter gradient, a kernel wasm lacks. The weights are fixed here, so
// each layer needs only its input-side rule, written with kernels every
// backend has. The last layer's softmax/sigmoid is left out: callers get logits.
// Where the model runs on ONNX Runtime, gradientOf() runs the same rules there
// (model/onnx/backward.ts), about three times as fast.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { LayerNode } from '../keras/config';
import { activationName, pair } from '../model/layers';
import type { Net } from '../model/net';
import { logitsKey, type GradientSpec } from '../model/onnx/backward';
import { poolWindow } from '../model/onnx/translate';
import { registerWasmKernels } from '../model/wasmKernels';

type Backward = (xs: tf.Tensor[], y: tf.Tensor, dy: tf.Tensor) => tf.Tensor[];

/** dL/dlogits: the mean cross-entropy's towards `label`, or one given (N × logits, flat). */
export type Seed = { label: number } | { given: Float32Array };

/** Rows per tfjs forward run. */
const FORWARD_BATCH = 256;

/** dL/d(pre-activation) from dL/d(activation output), given the output y (and input z when needed). */
function activationGrad(name: string, layer: string): (y: tf.Tensor, dy: tf.Tensor, z?: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'linear': return (_y, dy) => dy;
    case 'relu': return (y, dy) => tf.mul(dy, tf.step(y));
    case 'relu6': return (y, dy) => tf.mul(dy, tf.mul(tf.step(y), tf.step(tf.sub(6, y))));
    case 'sigmoid': return (y, dy) => tf.mul(dy, tf.mul(y, tf.sub(1, y)));
    case 'tanh': return (y, dy) => tf.mul(dy, tf.sub(1, tf.square(y)));
    case 'elu': return (y, dy) => tf.mul(dy, tf.where(tf.greater(y, 0), tf.onesLike(y), tf.add(y, 1)));
    case 'softplus': return (y, dy) => tf.mul(dy, tf.sub(1, tf.exp(tf.neg(y))));
    case 'exponential': return (y, dy) => tf.mul(dy, y);
    case 'leaky_relu': return (y, dy) => tf.where(tf.greater(y, 0), dy, tf.mul(dy, 0.2));
    case 'softmax': return (y, dy) => tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), -1, true)));
    default: throw new UserError(`the scan cannot differentiate activation "${name}" (layer ${layer})`, undefined, 'unsupported');
  }
}

/** What the scan reads as logits: the last layer before its softmax/sigmoid. */
const SQUASH = new Set(['softmax', 'sigmoid']);

export class InputGradient {
  private readonly order: LayerNode[] = [];
  private readonly backward = new Map<string, Backward>();
  private readonly owned: tf.Tensor[] = [];
  /** ReLU convs whose mask moves into the max pool that reads them, and those pools */
  private readonly reluIntoPool = new Set<string>();
  /** the layer whose output (or pre-activation) gives the logits */
  private readonly head: LayerNode;
  private readonly headLogits: (xs: tf.Tensor[]) => tf.Tensor2D;
  private readonly throughHead: boolean;
  /** the gradient's ONNX graph, when the model runs on ONNX Runtime and backward.ts expresses it */
  private onnxSpec?: Omit<GradientSpec, 'seed'>;

  /**
   * `head`: differentiate that layer's output instead of the logits; `throughHead`: pass the gradient
   * straight through the head's own activation (a ReLU channel that is off everywhere still gets one).
   */
  constructor(private readonly net: Net, { head: headName = net.outputName, throughHead = false } = {}) {
    this.throughHead = throughHead;
    // Our wasm kernels for the transposed products, stride-1 conv2dTranspose and max-pool gradients below
    // (a 16-image step on the lab network: ~50 → ~36 ms).
    registerWasmKernels();
    this.order.push(...net.layersUpTo(headName));
    const seen = new Set(this.order.map((n) => n.name));
    this.head = net.byName.get(headName)!;
    // A ReLU conv read only by a max pool: its ReLU mask is applied to the (4x smaller) pooled gradient instead.
    // Exact: the pool sends each window's gradient to one maximum, which is > 0 exactly when the pooled value is.
    for (const node of this.order) {
      const readers = net.consumersOf(node.name);
      if (node.className === 'Conv2D' && activationName(node.config.activation) === 'relu' && readers.length === 1 &&
        seen.has(readers[0]) && net.byName.get(readers[0])!.className === 'MaxPooling2D') {
        this.reluIntoPool.add(node.name);
        this.reluIntoPool.add(readers[0]);
      }
    }
    for (const node of this.order) if (node !== this.head) this.backward.set(node.name, this.build(node, false));
    this.backward.set(this.head.name, this.build(this.head, true));
    this.headLogits = this.logitsFn(this.head);
    const spec = { head: headName, throughHead };
    if (net.onnx) {
      const why = net.onnx.cannotDifferentiate({ ...spec, seed: 'given' });
      if (why) console.warn(`backdoor-audit: ${net.model.file}: ONNX Runtime cannot run ${why}; the scan's gradients run on tfjs`);
      else this.onnxSpec = spec;
    }
  }

  /** The model input's shape (H, W, C). */
  get inputShape(): [number, number, number] {
    return this.net.graph.inputShape as [number, number, number];
  }

  /** The layer (or `X:pre`) the logits are read from. */
  private get logitsAt(): string {
    return logitsKey(this.net, this.head.name);
  }

  /** Values per image in the logits (the head's output, flat). */
  get width(): number {
    return this.net.shapes.get(this.head.name)!.reduce((a, c) => a * c, 1);
  }

  /** Where gradientOf() runs. */
  get engine(): 'onnxruntime' | 'tfjs' {
    return this.onnxSpec ? 'onnxruntime' : 'tfjs';
  }

  private upload(node: LayerNode, name: string): tf.Tensor {
    const w = this.net.model.weights.get(node.name)?.find((v) => v.name === name);
    if (!w) throw new UserError(`layer "${node.name}" has no "${name}" weight`, this.net.model.file, 'weights-mismatch');
    const t = tf.tensor(w.data, w.shape, 'float32');
    this.owned.push(t);
    return t;
  }

  /** The head's output without its final squashing, from its inputs. */
  private logitsFn(node: LayerNode): (xs: tf.Tensor[]) => tf.Tensor2D {
    const act = activationName(node.config.activation);
    if (node.className === 'Dense' && SQUASH.has(act)) {
      const kernel = this.upload(node, 'kernel') as tf.Tensor2D;
      const bias = node.config.use_bias === false ? undefined : this.upload(node, 'bias');
      return ([x]) => {
        const z = tf.matMul(tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D, kernel);
        return (bias ? tf.add(z, bias) : z) as tf.Tensor2D;
      };
    }
    if ((node.className === 'Activation' && SQUASH.has(act)) || node.className === 'Softmax') return ([x]) => tf.reshape(x, [x.shape[0], -1]);
    return (xs) => {
      const y = this.net.run(undefined, [node.name], new Map(node.inbound.map((n, i) => [n, xs[i]]))).get(node.name)!;
      return tf.reshape(y, [y.shape[0], -1]);
    };
  }

  private build(node: LayerNode, isHead: boolean): Backward {
    const cfg = node.config;
    const act = activationName(cfg.activation);
    // The head's softmax/sigmoid is not applied: the gradient arrives at the logits.
    const linear = (isHead && (SQUASH.has(act) || this.throughHead)) || (node.className === 'Conv2D' && this.reluIntoPool.has(node.name));
    const actGrad = activationGrad(linear ? 'linear' : act, node.name);
    switch (node.className) {
      case 'InputLayer': case 'Dropout': case 'SpatialDropout2D':
        return (_xs, _y, dy) => [dy];
      case 'Conv2D': {
        const kernel = this.upload(node, 'kernel') as tf.Tensor4D;
        const [kh, kw] = pair(cfg.kernel_size, 1);
        const strides = pair(cfg.strides, 1);
        const dil = pair(cfg.dilation_rate, 1);
        if (dil[0] !== 1 || dil[1] !== 1) throw new UserError(`the scan cannot differentiate the dilated convolution "${node.name}"`, undefined, 'unsupported');
        const same = cfg.padding === 'same';
        if (strides[0] === 1 && strides[1] === 1) {
          // Stride 1: the input gradient is a full correlation with the flipped kernel (a forward conv, fast everywhere).
          const flipped = tf.tidy(() => tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])) as tf.Tensor4D;
          this.owned.push(flipped);
          const [pt, pl] = same ? [Math.floor((kh - 1) / 2), Math.floor((kw - 1) / 2)] : [0, 0];
          const [pb, pr] = same ? [kh - 1 - pt, kw - 1 - pl] : [0, 0];
          return (_xs, y, dy) => {
            const dz = actGrad(y, dy) as tf.Tensor4D;
            return [tf.conv2d(dz, flipped, 1, [[0, 0], [kh - 1 - pt, kh - 1 - pb], [kw - 1 - pl, kw - 1 - pr], [0, 0]])];
          };
        }
        return (xs, y, dy) => {
          const dz = actGrad(y, dy) as tf.Tensor4D;
          return [tf.conv2dTranspose(dz, kernel, xs[0].shape as [number, number, number, number], strides, same ? 'same' : 'valid')];
        };
      }
      case 'Dense': {
        const kernel = this.upload(node, 'kernel') as tf.Tensor2D;
        return (xs, y, dy) => {
          const dz = actGrad(y, dy);
          const flat = tf.reshape(dz, [-1, kernel.shape[1]]) as tf.Tensor2D;
          return [tf.reshape(tf.matMul(flat, kernel, false, true), xs[0].shape)];
        };
      }
      case 'MaxPooling2D': case 'AveragePooling2D': {
        const { size: filterSize, strides } = poolWindow(cfg);
        const pad = cfg.padding === 'same' ? 'same' : 'valid';
        const attrs = { filterSize, strides, pad } as unknown as tf.NamedAttrMap;
        if (node.className === 'MaxPooling2D') {
          const masked = this.reluIntoPool.has(node.name);
          return ([x], y, dy) => [tf.engine().runKernel('MaxPoolGrad', { dy: masked ? tf.mul(dy, tf.step(y)) : dy, input: x, output: y }, attrs) as tf.Tensor];
        }
        return ([x], _y, dy) => [tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, attrs) as tf.Tensor];
      }
      case 'GlobalAveragePooling2D': return ([x], _y, dy) => {
        const [n, h, w, c] = x.shape;
        return [tf.add(tf.zerosLike(x), tf.div(tf.reshape(dy, [n, 1, 1, c]), h * w))];
      };
      case 'GlobalMaxPooling2D': return ([x], y, dy) => {
        const [n, , , c] = x.shape;
        const hit = tf.equal(x, tf.reshape(y, [n, 1, 1, c]));
        return [tf.where(hit, tf.add(tf.zerosLike(x), tf.reshape(dy, [n, 1, 1, c])), tf.zerosLike(x))];
      };
      case 'ZeroPadding2D': {
        const p = cfg.padding;
        const [top, left] = Array.isArray(p) && Array.isArray(p[0]) ? [pair(p[0], 0)[0], pair(p[1], 0)[0]] : pair(p, 1);
        return ([x], _y, dy) => [tf.slice(dy, [0, top, left, 0], x.shape)];
      }
      case 'Flatten': return ([x], _y, dy) => [tf.reshape(dy, x.shape)];
      case 'Activation': return (_xs, y, dy) => [actGrad(y, dy)];
      case 'Softmax': return (_xs, y, dy) => [isHead ? dy : activationGrad('softmax', node.name)(y, dy)];
      case 'ReLU': {
        const maxValue = typeof cfg.max_value === 'number' ? cfg.max_value : undefined;
        const slope = Number(cfg.negative_slope ?? 0);
        const threshold = Number(cfg.threshold ?? 0);
        return ([x], _y, dy) => {
          let g = tf.where(tf.greaterEqual(x, threshold), dy, tf.mul(dy, slope));
          if (maxValue !== undefined) g = tf.where(tf.less(x, maxValue), g, tf.zerosLike(g));
          return [g];
        };
      }
      case 'LeakyReLU': {
        const alpha = Number(cfg.negative_slope ?? cfg.alpha ?? 0.3);
        return ([x], _y, dy) => [tf.where(tf.greater(x, 0), dy, tf.mul(dy, alpha))];
      }
      case 'BatchNormalization': {
        const eps = Number(cfg.epsilon ?? 1e-3);
        const variance = this.upload(node, 'moving_variance');
        const scale = tf.tidy(() => {
          const inv = tf.rsqrt(tf.add(variance, eps));
          return cfg.scale !== false ? tf.mul(inv, this.upload(node, 'gamma')) : inv;
        });
        this.owned.push(scale);
        return (_xs, _y, dy) => [tf.mul(dy, scale)];
      }
      case 'Rescaling': {
        const scale = tf.tensor(cfg.scale as number | number[] ?? 1);
        this.owned.push(scale);
        return (_xs, _y, dy) => [tf.mul(dy, scale)];
      }
      case 'Add': return (xs, _y, dy) => xs.map(() => dy);
      case 'Subtract': return (_xs, _y, dy) => [dy, tf.neg(dy)];
      case 'Average': return (xs, _y, dy) => xs.map(() => tf.div(dy, xs.length));
      case 'Multiply': return (xs, _y, dy) => xs.map((_, i) => xs.reduce((acc, x, j) => (j === i ? acc : tf.mul(acc, x)), dy));
      case 'Maximum': return (xs, y, dy) => {
        // Ties send the gradient to the first input that holds the maximum.
        let taken = tf.zerosLike(y);
        return xs.map((x) => {
          const hit = tf.logicalAnd(tf.equal(x, y), tf.equal(taken, 0));
          taken = tf.add(taken, tf.cast(hit, 'float32'));
          return tf.where(hit, dy, tf.zerosLike(dy));
        });
      };
      case 'Concatenate': {
        const axis = Number(cfg.axis ?? -1);
        return (xs, _y, dy) => tf.split(dy, xs.map((x) => x.shape[axis < 0 ? x.rank + axis : axis]), axis);
      }
      default:
        throw new UserError(`the scan cannot differentiate layer ${node.className} (${node.name})`, undefined, 'unsupported');
    }
  }

  /**
   * Logits for a batch of images (N, H, W, C), or from `given` outputs of inner
   * layers (the stimulation feeds the cache point). The caller owns the result.
   */
  logits(x: tf.Tensor | undefined, given?: Map<string, tf.Tensor>): tf.Tensor2D {
    return tf.tidy(() => {
      const inbound = this.head.inbound;
      const ins = this.net.run(x, inbound, given);
      return this.headLogits(inbound.map((n) => ins.get(n)!));
    });
  }

  /**
   * Forward pass, then `seed(logits)` gives dL/dlogits, then the reverse pass.
   * Returns the logits and dL/dx; the caller owns both.
   */
  gradient(x: tf.Tensor4D, seed: (logits: tf.Tensor2D) => tf.Tensor2D): { logits: tf.Tensor2D; dx: tf.Tensor4D } {
    const [logits, dx] = tf.tidy(() => {
      const names = this.order.map((n) => n.name);
      const values = this.net.run(x, names);
      const inputs = (n: LayerNode) => n.inbound.map((s) => values.get(s)!);
      const head = this.head;
      const logits = this.headLogits(inputs(head));
      const dLogits = seed(logits);
      const grads = new Map<string, tf.Tensor>();
      const addGrad = (name: string, g: tf.Tensor) => {
        const have = grads.get(name);
        grads.set(name, have ? tf.add(have, g) : g);
      };
      // The head's output gradient is dL/dlogits in the output's shape.
      addGrad(head.name, tf.reshape(dLogits, values.get(head.name)!.shape));
      const inputName = this.net.graph.inputs[0];
      for (let i = this.order.length - 1; i >= 0; i--) {
        const node = this.order[i];
        if (node.name === inputName) break;
        const dy = grads.get(node.name);
        if (!dy) continue;
        const dxs = this.backward.get(node.name)!(inputs(node), values.get(node.name)!, dy);
        node.inbound.forEach((src, k) => addGrad(src, dxs[k]));
      }
      return [logits, grads.get(inputName) ?? tf.zerosLike(x)];
    });
    return { logits: logits as tf.Tensor2D, dx: dx as tf.Tensor4D };
  }

  /**
   * The logits and dL/dx for `n` images x (flat, channels-last), with dL/dlogits the mean cross-entropy's to
   * `label` or `given` (n × width): in one ONNX Runtime run where the model runs there, else on tfjs.
   */
  async gradientOf(x: Float32Array, n: number, seed: Seed): Promise<{ logits: Float32Array; dx: Float32Array }> {
    if (this.onnxSpec && this.net.onnx) {
      let target: Float32Array;
      if ('given' in seed) target = seed.given;
      else {
        target = new Float32Array(n * this.width);
        for (let i = 0; i < n; i++) target[i * this.width + seed.label] = 1;
      }
      try {
        return await this.net.onnx.gradient({ ...this.onnxSpec, seed: 'given' in seed ? 'given' : 'cross-entropy' }, x, n, target);
      } catch (e) {
        // A graph ONNX Runtime refuses (a rule translated but rejected): the scan goes on, on tfjs, and says so.
        console.warn(`backdoor-audit: ${this.net.model.file}: ONNX Runtime failed on the scan's gradient (${(e as Error).message}); using tfjs`);
        this.onnxSpec = undefined;
      }
    }
    const xt = tf.tensor4d(x, [n, ...this.net.graph.inputShape] as [number, number, number, number]);
    const given = 'given' in seed ? tf.tensor2d(seed.given, [n, this.width]) : undefined;
    try {
      const { logits, dx } = this.gradient(xt, (z) => given ?? tf.div(tf.sub(tf.softmax(z), tf.oneHot(tf.fill([n], (seed as { label: number }).label, 'int32') as tf.Tensor1D, z.shape[1])), n) as tf.Tensor2D);
      const out = { logits: await logits.data() as Float32Array, dx: await dx.data() as Float32Array };
      tf.dispose([logits, dx]);
      return out;
    } finally {
      tf.dispose([xt, ...(given ? [given] : [])]);
    }
  }

  /**
   * The logits (flat, as gradientOf gives them) for `n` rows x (flat, channels-last) of the model input, or of
   * layer `from`'s output (the stimulation feeds its cache point): on ONNX Runtime where the model runs there.
   */
  async forward(x: Float32Array, n: number, from = this.net.graph.inputs[0]): Promise<Float32Array> {
    if (this.net.onnx) return (await this.net.compute({ [from]: x }, n, [this.logitsAt])).get(this.logitsAt)!;
    const out = new Float32Array(n * this.width);
    const shape = this.net.shapes.get(from)!;
    const per = x.length / n;
    for (let s = 0; s < n; s += FORWARD_BATCH) {
      const e = Math.min(n, s + FORWARD_BATCH);
      const t = tf.tidy(() => this.logits(undefined, new Map([[from, tf.tensor(x.subarray(s * per, e * per), [e - s, ...shape])]])));
      out.set(await t.data() as Float32Array, s * this.width);
      t.dispose();
    }
    return out;
  }

  dispose() {
    tf.dispose(this.owned);
    this.owned.length = 0;
  }
}
