// Translates part of the executor's layer graph (the same one Net runs with
// tfjs) into an in-memory ONNX model, encoded with onnx-proto (protobufjs).
// Feeds and fetches are channels-last like Keras and tfjs; inside, 4-D values
// are kept channels-first (ONNX's native layout) and transposed only where a
// layer needs the other order (Flatten, Dense on images, per-channel vectors),
// so Keras's Flatten order is reproduced exactly.
import onnxProto from 'onnx-proto'; // CommonJS: its namespace is the default export under Node's ESM
import type { LayerNode } from '../../keras/config';
import type { Weight } from '../../keras/load';
import { activationName, pair } from '../layers';
import type { Net } from '../net';
import type { onnx as Proto } from 'onnx-proto';

const { onnx } = onnxProto;

/** A layer that has no ONNX translation here: the model then runs on tfjs. */
export class NoTranslation extends Error {}

/** `X` is layer X's output; `X:pre` is a Conv2D/Dense layer's output before its activation. */
export const preOf = (layer: string) => `${layer}:pre`;
/** `X:label` is the index of the largest value of X's output per row (the first on ties), as int32. */
export const labelOf = (layer: string) => `${layer}:label`;
const LABEL = /:label$/;

const OPSET = 17;
export type Layout = 'nchw' | 'nhwc' | 'plain';
export interface Value { name: string; layout: Layout; rank: number }

const F32 = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const I32 = onnx.TensorProto.DataType.INT32;

/** Keras's selu constants (keras.activations.selu). */
const SELU = { alpha: 1.6732632423543772, gamma: 1.0507009873554805 };

export class Builder {
  readonly nodes: Proto.INodeProto[] = [];
  readonly initializers: Proto.ITensorProto[] = [];
  private count = 0;

  fresh(hint: string) {
    return `${hint.replace(/[^\w]/g, '_')}_${this.count++}`;
  }

  node(op: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, hint = op): string {
    return this.nodeWith(op, inputs, 1, attrs, hint)[0];
  }

  /** A node with `outputs` outputs (MaxPool's indices, Split's parts). */
  nodeWith(op: string, inputs: string[], outputs: number, attrs: Record<string, number | number[] | string> = {}, hint = op): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(hint));
    const attribute = Object.entries(attrs).map(([name, v]): Proto.IAttributeProto => {
      if (typeof v === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      return Number.isInteger(v) && name !== 'alpha' && name !== 'gamma' && name !== 'epsilon'
        ? { name, type: onnx.AttributeProto.AttributeType.INT, i: v }
        : { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v };
    });
    this.nodes.push({ opType: op, input: inputs, output: out, attribute, name: out[0] });
    return out;
  }

  floats(data: Float32Array | number[], dims: number[], hint = 'const'): string {
    const name = this.fresh(hint);
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    this.initializers.push({ name, dataType: F32, dims, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) });
    return name;
  }

  ints(data: number[], hint = 'shape'): string {
    const name = this.fresh(hint);
    const b = BigInt64Array.from(data.map(BigInt));
    this.initializers.push({ name, dataType: I64, dims: [data.length], rawData: new Uint8Array(b.buffer) });
    return name;
  }
}

export function transposed(w: Weight, perm: number[]): Float32Array {
  const src = w.shape;
  const dims = perm.map((p) => src[p]);
  const strides = src.map((_, i) => src.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(w.data.length);
  const idx = new Array(dims.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let d = 0; d < dims.length; d++) s += idx[d] * strides[perm[d]];
    out[o] = w.data[s];
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** A pooling layer's window and strides (Keras's strides default to the window). */
export function poolWindow(cfg: Record<string, unknown>): { size: [number, number]; strides: [number, number] } {
  const size = pair(cfg.pool_size, 2);
  return { size, strides: cfg.strides === null || cfg.strides === undefined ? size : pair(cfg.strides, 1) };
}

/** TF's padding for one spatial axis: 'same' puts the odd pixel at the end. */
export function padsFor(padding: string, size: number, window: number, stride: number): [number, number] {
  if (padding !== 'same') return [0, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + window - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** The Conv node of a Keras Conv2D on the channels-first `input`: its kernel in ONNX order, TF's padding made explicit. */
export function convNode(b: Builder, node: LayerNode, input: string, inShape: number[], kernel: Weight, bias?: Weight): string {
  const cfg = node.config;
  const [kh, kw] = pair(cfg.kernel_size, 1);
  const strides = pair(cfg.strides, 1);
  const dil = pair(cfg.dilation_rate, 1);
  const padding = String(cfg.padding ?? 'valid');
  const [ph0, ph1] = padsFor(padding, inShape[0], (kh - 1) * dil[0] + 1, strides[0]);
  const [pw0, pw1] = padsFor(padding, inShape[1], (kw - 1) * dil[1] + 1, strides[1]);
  const w = b.floats(transposed(kernel, [3, 2, 0, 1]), [kernel.shape[3], kernel.shape[2], kh, kw], `${node.name}_kernel`);
  const ins = [input, w];
  if (bias) ins.push(b.floats(bias.data, [bias.data.length], `${node.name}_bias`));
  return b.node('Conv', ins, { kernel_shape: [kh, kw], strides, dilations: dil, pads: [ph0, pw0, ph1, pw1] }, node.name);
}

export interface Translation {
  model: Uint8Array;
  /** ONNX input and output names, by feed and fetch name */
  inputs: Map<string, string>;
  outputs: Map<string, string>;
  /** Conv nodes in the graph (the gradient's included): ONNX Runtime's kernel layout matters only where there are some */
  convolutions: number;
}

/** What an extension of the forward graph (the gradient of backward.ts) works with. */
export interface GraphContext {
  b: Builder;
  net: Net;
  /** a layer's output (or `X:pre`), translated on first use */
  compute(key: string): Value;
  toLayout(v: Value, want: 'nchw' | 'nhwc'): Value;
  /** a further graph input, (N, ...dims) in `layout` */
  input(key: string, dims: number[], layout: Layout): Value;
  /** a further graph output, channels-last, (N, ...dims) */
  output(key: string, v: Value, dims: number[]): void;
}

/**
 * An ONNX model computing `fetches` from `feeds` (layer names, or `X:pre`).
 * Only the layers between them are translated. Throws NoTranslation for a layer it cannot express.
 */
export function translate(net: Net, feeds: string[], fetches: string[], inputChannelsFirst = false, extend?: (ctx: GraphContext) => void): Translation {
  const b = new Builder();
  const values = new Map<string, Value>();
  const inputs = new Map<string, string>();
  const graphInputs: Proto.IValueInfoProto[] = [];
  const shapeOf = (key: string) => {
    const s = net.shapes.get(key.replace(/:pre$/, ''));
    if (!s) throw new NoTranslation(`no layer named "${key}"`);
    return s;
  };
  const info = (name: string, shape: number[], elemType = F32): Proto.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'N' }, ...shape.map((d) => ({ dimValue: d }))] } } },
  });
  for (const feed of feeds) {
    const name = b.fresh(`in_${feed}`);
    const shape = shapeOf(feed);
    inputs.set(feed, name);
    // The model input may come channels-first, as the lab stores it: ONNX's own layout, no transpose.
    const nchw = inputChannelsFirst && feed === net.graph.inputs[0] && shape.length === 3;
    graphInputs.push(info(name, nchw ? [shape[2], shape[0], shape[1]] : shape));
    values.set(feed, { name, layout: nchw ? 'nchw' : shape.length === 3 ? 'nhwc' : 'plain', rank: shape.length + 1 });
  }

  const toLayout = (v: Value, want: 'nchw' | 'nhwc'): Value => {
    if (v.rank !== 4 || v.layout === want) return v;
    const key = `${v.name}->${want}`;
    let t = values.get(key);
    if (!t) {
      t = { name: b.node('Transpose', [v.name], { perm: want === 'nchw' ? [0, 3, 1, 2] : [0, 2, 3, 1] }), layout: want, rank: 4 };
      values.set(key, t);
    }
    return t;
  };
  /** Keras's channel axis (the last) in `v`'s layout. */
  const channelAxis = (v: Value) => (v.rank === 4 && v.layout === 'nchw' ? 1 : v.rank - 1);
  const same = (v: Value, name: string): Value => ({ ...v, name });

  const activate = (v: Value, act: string, layer: string): Value => {
    switch (act) {
      case 'linear': return v;
      case 'relu': return same(v, b.node('Relu', [v.name]));
      case 'relu6': return same(v, b.node('Clip', [v.name, b.floats([0], []), b.floats([6], [])]));
      case 'sigmoid': return same(v, b.node('Sigmoid', [v.name]));
      case 'tanh': return same(v, b.node('Tanh', [v.name]));
      case 'softmax': return same(v, b.node('Softmax', [v.name], { axis: channelAxis(v) }));
      case 'elu': return same(v, b.node('Elu', [v.name], { alpha: 1 }));
      case 'selu': return same(v, b.node('Selu', [v.name], SELU));
      case 'softplus': return same(v, b.node('Softplus', [v.name]));
      case 'softsign': return same(v, b.node('Softsign', [v.name]));
      case 'swish': case 'silu': return same(v, b.node('Mul', [v.name, b.node('Sigmoid', [v.name])]));
      case 'gelu': {
        const erf = b.node('Erf', [b.node('Div', [v.name, b.floats([Math.SQRT2], [])])]);
        return same(v, b.node('Mul', [b.node('Mul', [v.name, b.floats([0.5], [])]), b.node('Add', [erf, b.floats([1], [])])]));
      }
      case 'exponential': return same(v, b.node('Exp', [v.name]));
      case 'leaky_relu': return same(v, b.node('LeakyRelu', [v.name], { alpha: 0.2 }));
      default: throw new NoTranslation(`activation "${act}" of layer ${layer}`);
    }
  };

  const weights = (node: LayerNode) => new Map((net.model.weights.get(node.name) ?? []).map((w) => [w.name, w]));
  /** A per-channel vector (Keras's last axis) shaped to broadcast against `v`. */
  const channelVector = (data: Float32Array, v: Value) => b.floats(data, v.rank === 4 && v.layout === 'nchw' ? [data.length, 1, 1] : [data.length]);

  const compute = (key: string): Value => {
    const have = values.get(key);
    if (have) return have;
    const layer = key.replace(/:pre$/, '');
    const node = net.byName.get(layer);
    if (!node) throw new NoTranslation(`no layer named "${layer}"`);
    if (node.name === net.graph.inputs[0]) throw new NoTranslation(`layer ${layer} needs the model input, which is not fed`);
    const wantPre = key !== layer;
    const given = values.get(preOf(layer));
    const result = given
      ? activate(given, activationName(node.config.activation), layer)
      : translateLayer(node, node.inbound.map(compute), wantPre);
    values.set(key, result);
    return result;
  };

  const translateLayer = (node: LayerNode, xs: Value[], wantPre: boolean): Value => {
    const cfg = node.config;
    const x = xs[0];
    const ws = weights(node);
    const inShape = net.shapes.get(node.inbound[0]) ?? [];
    switch (node.className) {
      case 'InputLayer': case 'Dropout': case 'SpatialDropout2D':
        return x;
      case 'Conv2D': {
        const bias = cfg.use_bias !== false ? ws.get('bias') : undefined;
        const pre: Value = { name: convNode(b, node, toLayout(x, 'nchw').name, inShape, ws.get('kernel')!, bias), layout: 'nchw', rank: 4 };
        return wantPre ? pre : activate(pre, activationName(cfg.activation), node.name);
      }
      case 'Dense': {
        const kernel = ws.get('kernel')!;
        const w = b.floats(kernel.data, kernel.shape, `${node.name}_kernel`);
        const bias = cfg.use_bias !== false ? ws.get('bias') : undefined;
        const v = toLayout(x, 'nhwc');
        let pre: Value;
        if (v.rank === 2) {
          pre = { name: b.node('Gemm', bias ? [v.name, w, b.floats(bias.data, [bias.data.length])] : [v.name, w], {}, node.name), layout: 'plain', rank: 2 };
        } else {
          const mm = b.node('MatMul', [v.name, w], {}, node.name);
          pre = { name: bias ? b.node('Add', [mm, b.floats(bias.data, [bias.data.length])]) : mm, layout: v.layout, rank: v.rank };
        }
        return wantPre ? pre : activate(pre, activationName(cfg.activation), node.name);
      }
      case 'MaxPooling2D': case 'AveragePooling2D': {
        const { size, strides } = poolWindow(cfg);
        const padding = String(cfg.padding ?? 'valid');
        const [ph0, ph1] = padsFor(padding, inShape[0], size[0], strides[0]);
        const [pw0, pw1] = padsFor(padding, inShape[1], size[1], strides[1]);
        // AveragePool leaves the padding out of the mean (count_include_pad 0), as TF does.
        const op = node.className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
        return { name: b.node(op, [toLayout(x, 'nchw').name], { kernel_shape: size, strides, pads: [ph0, pw0, ph1, pw1] }, node.name), layout: 'nchw', rank: 4 };
      }
      case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D': {
        const op = node.className === 'GlobalMaxPooling2D' ? 'GlobalMaxPool' : 'GlobalAveragePool';
        const pooled: Value = { name: b.node(op, [toLayout(x, 'nchw').name], {}, node.name), layout: 'nchw', rank: 4 };
        return cfg.keepdims === true ? pooled : { name: b.node('Flatten', [pooled.name], { axis: 1 }), layout: 'plain', rank: 2 };
      }
      case 'ZeroPadding2D': {
        const p = cfg.padding;
        const [[t, bo], [l, r]] = Array.isArray(p) && Array.isArray(p[0])
          ? [pair(p[0], 0), pair(p[1], 0)]
          : (() => { const [a, c] = pair(p, 1); return [[a, a], [c, c]]; })();
        return { name: b.node('Pad', [toLayout(x, 'nchw').name, b.ints([0, 0, t, l, 0, 0, bo, r])], {}, node.name), layout: 'nchw', rank: 4 };
      }
      case 'Flatten':
        // Keras flattens channels-last: (h, w, c) with c innermost.
        return x.rank === 2 ? x : { name: b.node('Flatten', [toLayout(x, 'nhwc').name], { axis: 1 }, node.name), layout: 'plain', rank: 2 };
      case 'Activation':
        return activate(x, activationName(cfg.activation), node.name);
      case 'Softmax': {
        const axis = Number(cfg.axis ?? -1);
        if (axis !== -1 && axis !== x.rank - 1) throw new NoTranslation(`Softmax over axis ${axis} (${node.name})`);
        return activate(x, 'softmax', node.name);
      }
      case 'ReLU': {
        const maxValue = typeof cfg.max_value === 'number' ? cfg.max_value : undefined;
        const slope = Number(cfg.negative_slope ?? 0);
        const threshold = Number(cfg.threshold ?? 0);
        let y = threshold === 0 && slope === 0
          ? b.node('Relu', [x.name], {}, node.name)
          : b.node('Where', [
            b.node('GreaterOrEqual', [x.name, b.floats([threshold], [])]),
            x.name,
            b.node('Mul', [b.node('Sub', [x.name, b.floats([threshold], [])]), b.floats([slope], [])]),
          ], {}, node.name);
        if (maxValue !== undefined) y = b.node('Min', [y, b.floats([maxValue], [])]);
        return same(x, y);
      }
      case 'LeakyReLU':
        return same(x, b.node('LeakyRelu', [x.name], { alpha: Number(cfg.negative_slope ?? cfg.alpha ?? 0.3) }, node.name));
      case 'BatchNormalization': {
        const axis = Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1;
        if (axis !== -1 && axis !== x.rank - 1) throw new NoTranslation(`BatchNormalization over axis ${axis} (${node.name})`);
        // Folded like the tfjs layer, in float32: (x - mean) * rsqrt(var + eps) * gamma + beta.
        const eps = Number(cfg.epsilon ?? 1e-3);
        const mean = ws.get('moving_mean')!.data, variance = ws.get('moving_variance')!.data;
        const gamma = cfg.scale !== false ? ws.get('gamma')!.data : undefined;
        const beta = cfg.center !== false ? ws.get('beta')!.data : undefined;
        const scale = new Float32Array(mean.length), shift = new Float32Array(mean.length);
        for (let c = 0; c < mean.length; c++) {
          const inv = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(variance[c] + eps))));
          scale[c] = gamma ? Math.fround(inv * gamma[c]) : inv;
          shift[c] = Math.fround((beta ? beta[c] : 0) - Math.fround(mean[c] * scale[c]));
        }
        const y = b.node('Add', [b.node('Mul', [x.name, channelVector(scale, x)], {}, node.name), channelVector(shift, x)]);
        return same(x, y);
      }
      case 'Rescaling': {
        const vec = (v: unknown, d: number) => Float32Array.from(Array.isArray(v) ? v.map(Number) : [Number(v ?? d)]);
        const scale = vec(cfg.scale, 1), offset = vec(cfg.offset, 0);
        const shaped = (d: Float32Array) => (d.length === 1 ? b.floats(d, []) : channelVector(d, x));
        return same(x, b.node('Add', [b.node('Mul', [x.name, shaped(scale)], {}, node.name), shaped(offset)]));
      }
      case 'Add': case 'Subtract': case 'Multiply': case 'Average': case 'Maximum': {
        const layout = xs.some((v) => v.rank === 4 && v.layout === 'nchw') ? 'nchw' : 'nhwc';
        const ins = xs.map((v) => toLayout(v, layout).name);
        const like = toLayout(x, layout);
        const op = { Add: 'Sum', Subtract: 'Sub', Multiply: 'Mul', Average: 'Mean', Maximum: 'Max' }[node.className]!;
        if (op === 'Mul' && ins.length > 2) return same(like, ins.slice(1).reduce((a, c) => b.node('Mul', [a, c]), ins[0]));
        return same(like, b.node(op, ins, {}, node.name));
      }
      case 'Concatenate': {
        let axis = Number(cfg.axis ?? -1);
        if (axis < 0) axis += x.rank;
        const layout = x.rank === 4 && axis === 3 ? 'nchw' : 'nhwc';
        const ins = xs.map((v) => toLayout(v, layout));
        return same(ins[0], b.node('Concat', ins.map((v) => v.name), { axis: layout === 'nchw' ? 1 : axis }, node.name));
      }
      default:
        throw new NoTranslation(`layer ${node.className} (${node.name})`);
    }
  };

  const outputs = new Map<string, string>();
  const graphOutputs: Proto.IValueInfoProto[] = [];
  const output = (key: string, value: Value, dims: number[]) => {
    let v = toLayout(value, 'nhwc');
    // Each output its own value: a fetch may be a fed value or another fetch's value.
    if ([...inputs.values()].includes(v.name) || [...outputs.values()].includes(v.name)) v = same(v, b.node('Identity', [v.name]));
    outputs.set(key, v.name);
    graphOutputs.push(info(v.name, dims));
  };
  for (const fetch of fetches) {
    if (!LABEL.test(fetch)) {
      output(fetch, compute(fetch), shapeOf(fetch));
      continue;
    }
    // ArgMax keeps the first of equal values, as argMaxRows does; only the labels leave the engine.
    const flat = b.node('Flatten', [toLayout(compute(fetch.replace(LABEL, '')), 'nhwc').name], { axis: 1 });
    const name = b.node('Cast', [b.node('ArgMax', [flat], { axis: 1, keepdims: 0, select_last_index: 0 })], { to: I32 });
    outputs.set(fetch, name);
    graphOutputs.push(info(name, [], I32));
  }
  extend?.({
    b, net, compute, toLayout, output,
    input: (key, dims, layout) => {
      const name = b.fresh(`in_${key}`);
      inputs.set(key, name);
      graphInputs.push(info(name, dims));
      return { name, layout, rank: dims.length + 1 };
    },
  });
  const model: Proto.IModelProto = {
    irVersion: onnx.Version.IR_VERSION,
    producerName: 'backdoor-audit',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: { name: net.graph.name || 'model', node: b.nodes, initializer: b.initializers, input: graphInputs, output: graphOutputs },
  };
  const convolutions = b.nodes.filter((n) => n.opType === 'Conv').length;
  return { model: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(), inputs, outputs, convolutions };
}
