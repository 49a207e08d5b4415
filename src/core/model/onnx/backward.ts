// The scan's input gradient inside the ONNX graph: translate.ts's forward pass,
// then each layer's input-side rule in reverse (the weights are fixed), so one
// ONNX Runtime run gives a trigger step its logits and dL/dx. The same rules
// as scan/backprop.ts, which runs them on tfjs for what is not expressed here.
import type { LayerNode } from '../../keras/config';
import { activationName, pair } from '../layers';
import type { Net } from '../net';
import { NoTranslation, padsFor, poolWindow, preOf, transposed, type GraphContext, type Value } from './translate';

export interface GradientSpec {
  /** the layer differentiated: the model's output (read before its softmax/sigmoid) or an inner layer */
  head: string;
  /** pass the seed straight through the head's own activation (a ReLU channel that is off still gets one) */
  throughHead: boolean;
  /** 'cross-entropy': dL/dlogits = (softmax(logits) − target) / N, the one-hot target fed; 'given': dL/dlogits fed */
  seed: 'cross-entropy' | 'given';
}

/** Keys of the gradient graph's extra inputs and outputs (layer names cannot start with '@'). */
export const GRADIENT = { target: '@target', logits: '@logits', dx: '@dx' };

const SQUASH = new Set(['softmax', 'sigmoid']);

/**
 * Where the logits are read (a layer, or `X:pre`), as the tfjs path reads them: a squashing Dense before its
 * activation, a squashing Activation/Softmax layer's input, any other head's output.
 */
export function logitsKey(net: Net, headName: string): string {
  const head = net.byName.get(headName)!;
  const act = activationName(head.config.activation);
  if (head.className === 'Dense' && SQUASH.has(act)) return preOf(head.name);
  if ((head.className === 'Activation' && SQUASH.has(act)) || head.className === 'Softmax') return head.inbound[0];
  return head.name;
}

export function appendGradient(ctx: GraphContext, spec: GradientSpec): void {
  const { b, net, compute, toLayout } = ctx;
  const head = net.byName.get(spec.head);
  if (!head) throw new NoTranslation(`no layer named "${spec.head}"`);
  const inputName = net.graph.inputs[0];
  const headAct = activationName(head.config.activation);
  const squashed = SQUASH.has(headAct) || head.className === 'Softmax';
  // Scalars made on first use: ONNX Runtime warns about an unused initializer.
  const scalars = new Map<number, string>();
  const scalar = (v: number) => scalars.get(v) ?? scalars.set(v, b.floats([v], [], 'scalar')).get(v)!;
  const flat = (v: Value): Value => (v.rank === 2 ? v : { name: b.node('Flatten', [toLayout(v, 'nhwc').name], { axis: 1 }), layout: 'plain', rank: 2 });
  const shapeOf = (name: string) => net.shapes.get(name)!;

  const logitsAt = logitsKey(net, head.name);
  const logits = flat(compute(logitsAt));
  const width = shapeOf(logitsAt.replace(/:pre$/, '')).reduce((a, c) => a * c, 1);
  ctx.output(GRADIENT.logits, logits, [width]);
  const fed = ctx.input(GRADIENT.target, [width], 'plain');
  const seed: Value = spec.seed === 'given' ? fed : {
    name: b.node('Div', [
      b.node('Sub', [b.node('Softmax', [logits.name], { axis: 1 }), fed.name]),
      b.node('Cast', [b.node('Gather', [b.node('Shape', [logits.name]), b.ints([0])], { axis: 0 })], { to: 1 }),
    ]),
    layout: 'plain', rank: 2,
  };

  /** dL/d(pre-activation) of `node` from dL/d(its output); a conv's comes channels-first. */
  const actGrad = (act: string, node: LayerNode, dy: Value, conv: boolean): Value => {
    if (act === 'linear') return conv ? toLayout(dy, 'nchw') : dy;
    const y = compute(node.name);
    const g = toLayout(dy, y.layout === 'plain' ? 'nhwc' : y.layout);
    const op = (name: string) => ({ ...y, name });
    switch (act) {
      case 'relu': return op(b.node('Where', [b.node('Greater', [y.name, scalar(0)]), g.name, scalar(0)]));
      case 'sigmoid': return op(b.node('Mul', [g.name, b.node('Mul', [y.name, b.node('Sub', [scalar(1), y.name])])]));
      case 'tanh': return op(b.node('Mul', [g.name, b.node('Sub', [scalar(1), b.node('Mul', [y.name, y.name])])]));
      // 0 at y = 0 and at y = 6, as tfjs's step(y) * step(6 - y).
      case 'relu6': return op(b.node('Where', [b.node('And', [b.node('Greater', [y.name, scalar(0)]), b.node('Less', [y.name, scalar(6)])]), g.name, scalar(0)]));
      case 'elu': return op(b.node('Mul', [g.name, b.node('Where', [b.node('Greater', [y.name, scalar(0)]), scalar(1), b.node('Add', [y.name, scalar(1)])])]));
      case 'softplus': return op(b.node('Mul', [g.name, b.node('Sub', [scalar(1), b.node('Exp', [b.node('Neg', [y.name])])])]));
      case 'exponential': return op(b.node('Mul', [g.name, y.name]));
      case 'leaky_relu': return op(b.node('Where', [b.node('Greater', [y.name, scalar(0)]), g.name, b.node('Mul', [g.name, scalar(0.2)])]));
      default: throw new NoTranslation(`the gradient of activation "${act}" (layer ${node.name})`);
    }
  };

  const backward = (node: LayerNode, dy: Value, isHead: boolean): Value[] => {
    const cfg = node.config;
    const linear = isHead && (squashed || spec.throughHead);
    const act = linear ? 'linear' : activationName(cfg.activation);
    const weight = (name: string) => net.model.weights.get(node.name)?.find((w) => w.name === name);
    switch (node.className) {
      case 'InputLayer': case 'Dropout': case 'SpatialDropout2D':
        return [dy];
      case 'Conv2D': {
        const [kh, kw] = pair(cfg.kernel_size, 1);
        const strides = pair(cfg.strides, 1);
        const dil = pair(cfg.dilation_rate, 1);
        if (dil[0] !== 1 || dil[1] !== 1) throw new NoTranslation(`the gradient of the dilated convolution ${node.name}`);
        const kernel = weight('kernel')!;
        const [inH, inW, cin] = shapeOf(node.inbound[0]);
        const [outH, outW] = shapeOf(node.name);
        const [pt, pb] = padsFor(String(cfg.padding ?? 'valid'), inH, kh, strides[0]);
        const [pl, pr] = padsFor(String(cfg.padding ?? 'valid'), inW, kw, strides[1]);
        const dz = actGrad(act, node, dy, true);
        const m = kernel.shape[3];
        if (strides[0] === 1 && strides[1] === 1) {
          // Stride 1: a full correlation with the kernel flipped in space, in and out channels swapped.
          const flipped = new Float32Array(kernel.data.length);
          for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let c = 0; c < cin; c++) for (let o = 0; o < m; o++) {
            flipped[((c * m + o) * kh + i) * kw + j] = kernel.data[(((kh - 1 - i) * kw + (kw - 1 - j)) * cin + c) * m + o];
          }
          const w = b.floats(flipped, [cin, m, kh, kw], `${node.name}_flipped`);
          return [{ name: b.node('Conv', [dz.name, w], { kernel_shape: [kh, kw], pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] }, `${node.name}_dx`), layout: 'nchw', rank: 4 }];
        }
        const extra = [inH - ((outH - 1) * strides[0] + kh - pt - pb), inW - ((outW - 1) * strides[1] + kw - pl - pr)];
        if (extra.some((e, i) => e < 0 || e >= strides[i])) throw new NoTranslation(`the gradient of convolution ${node.name}'s padding`);
        const w = b.floats(transposed(kernel, [3, 2, 0, 1]), [m, cin, kh, kw], `${node.name}_kernel`);
        return [{
          name: b.node('ConvTranspose', [dz.name, w], { kernel_shape: [kh, kw], strides, pads: [pt, pl, pb, pr], output_padding: extra }, `${node.name}_dx`),
          layout: 'nchw', rank: 4,
        }];
      }
      case 'Dense': {
        const kernel = weight('kernel')!;
        // On images Dense acts on the channel axis, channels last (a gradient from a conv comes channels-first).
        const dz = toLayout(actGrad(act, node, dy, false), 'nhwc');
        const wt = b.floats(transposed(kernel, [1, 0]), [kernel.shape[1], kernel.shape[0]], `${node.name}_kernelT`);
        return [{ ...dz, name: b.node('MatMul', [dz.name, wt], {}, `${node.name}_dx`) }];
      }
      case 'MaxPooling2D': {
        const { size, strides } = poolWindow(cfg);
        // MaxUnpool writes each window's gradient to its maximum; overlapping windows would need sums.
        if (strides[0] < size[0] || strides[1] < size[1]) throw new NoTranslation(`the gradient of the overlapping max pool ${node.name}`);
        const [inH, inW] = shapeOf(node.inbound[0]);
        const [ph0, ph1] = padsFor(String(cfg.padding ?? 'valid'), inH, size[0], strides[0]);
        const [pw0, pw1] = padsFor(String(cfg.padding ?? 'valid'), inW, size[1], strides[1]);
        const attrs = { kernel_shape: size, strides, pads: [ph0, pw0, ph1, pw1] };
        const x = toLayout(compute(node.inbound[0]), 'nchw');
        // The pool again, now with the position of each window's maximum (the first, on ties, as in TF).
        const [, where] = b.nodeWith('MaxPool', [x.name], 2, attrs, `${node.name}_argmax`);
        const dx = b.node('MaxUnpool', [toLayout(dy, 'nchw').name, where, b.node('Shape', [x.name])], attrs, `${node.name}_dx`);
        return [{ name: dx, layout: 'nchw', rank: 4 }];
      }
      case 'AveragePooling2D': {
        // The mean's gradient spread back over each window: a transposed depthwise conv with 1/(window) weights.
        const { size, strides } = poolWindow(cfg);
        if (cfg.padding === 'same') throw new NoTranslation(`the gradient of the padded average pool ${node.name}`);
        const [inH, inW, c] = shapeOf(node.inbound[0]);
        const [outH, outW] = shapeOf(node.name);
        const w = b.floats(new Float32Array(c * size[0] * size[1]).fill(1 / (size[0] * size[1])), [c, 1, size[0], size[1]], `${node.name}_spread`);
        const extra = [inH - ((outH - 1) * strides[0] + size[0]), inW - ((outW - 1) * strides[1] + size[1])];
        return [{
          name: b.node('ConvTranspose', [toLayout(dy, 'nchw').name, w], { kernel_shape: size, strides, group: c, output_padding: extra }, `${node.name}_dx`),
          layout: 'nchw', rank: 4,
        }];
      }
      case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D': {
        const [h, w, c] = shapeOf(node.inbound[0]);
        const g = b.node('Reshape', [dy.name, b.ints([-1, c, 1, 1])]);
        if (node.className === 'GlobalAveragePooling2D') {
          return [{ name: b.node('Expand', [b.node('Div', [g, scalar(h * w)]), b.ints([1, c, h, w])], {}, `${node.name}_dx`), layout: 'nchw', rank: 4 }];
        }
        // Every position that equals the maximum gets the whole gradient, ties included, as in tfjs's rule.
        const x = toLayout(compute(node.inbound[0]), 'nchw');
        const max = b.node('Reshape', [compute(node.name).name, b.ints([-1, c, 1, 1])]);
        return [{ name: b.node('Where', [b.node('Equal', [x.name, max]), g, scalar(0)], {}, `${node.name}_dx`), layout: 'nchw', rank: 4 }];
      }
      case 'ZeroPadding2D': {
        const p = cfg.padding;
        const [top, left] = Array.isArray(p) && Array.isArray(p[0]) ? [pair(p[0], 0)[0], pair(p[1], 0)[0]] : pair(p, 1);
        const [h, w] = shapeOf(node.inbound[0]);
        const dx = b.node('Slice', [toLayout(dy, 'nchw').name, b.ints([top, left]), b.ints([top + h, left + w]), b.ints([2, 3])], {}, `${node.name}_dx`);
        return [{ name: dx, layout: 'nchw', rank: 4 }];
      }
      case 'BatchNormalization': case 'Rescaling': {
        // Both scale each channel (or everything) by a constant: the gradient is scaled alike.
        let scale: Float32Array;
        if (node.className === 'Rescaling') {
          const v = cfg.scale as number | number[] | undefined;
          scale = Float32Array.from(Array.isArray(v) ? v.map(Number) : [Number(v ?? 1)]);
        } else {
          const eps = Number(cfg.epsilon ?? 1e-3);
          const variance = weight('moving_variance')!.data, gamma = cfg.scale !== false ? weight('gamma')!.data : undefined;
          scale = variance.map((v, i) => Math.fround(1 / Math.fround(Math.sqrt(Math.fround(v + eps)))) * (gamma ? gamma[i] : 1));
        }
        const dims = scale.length === 1 ? [] : dy.rank === 4 && dy.layout === 'nchw' ? [scale.length, 1, 1] : [scale.length];
        return [{ ...dy, name: b.node('Mul', [dy.name, b.floats(scale, dims, `${node.name}_scale`)], {}, `${node.name}_dx`) }];
      }
      case 'ReLU': {
        const x = compute(node.inbound[0]);
        const g = toLayout(dy, x.layout === 'plain' ? 'nhwc' : x.layout);
        const slope = Number(cfg.negative_slope ?? 0);
        let dx = b.node('Where', [b.node('GreaterOrEqual', [x.name, scalar(Number(cfg.threshold ?? 0))]), g.name, b.node('Mul', [g.name, scalar(slope)])]);
        if (typeof cfg.max_value === 'number') dx = b.node('Where', [b.node('Less', [x.name, scalar(cfg.max_value)]), dx, scalar(0)]);
        return [{ ...x, name: dx }];
      }
      case 'LeakyReLU': {
        const x = compute(node.inbound[0]);
        const g = toLayout(dy, x.layout === 'plain' ? 'nhwc' : x.layout);
        const alpha = Number(cfg.negative_slope ?? cfg.alpha ?? 0.3);
        return [{ ...x, name: b.node('Where', [b.node('Greater', [x.name, scalar(0)]), g.name, b.node('Mul', [g.name, scalar(alpha)])]) }];
      }
      case 'Flatten': {
        const shape = shapeOf(node.inbound[0]);
        if (shape.length === 1) return [dy];
        return [{ name: b.node('Reshape', [dy.name, b.ints([-1, ...shape])], {}, `${node.name}_dx`), layout: 'nhwc', rank: shape.length + 1 }];
      }
      case 'Activation':
        return [actGrad(act, node, dy, false)];
      case 'Softmax':
        if (isHead) return [dy];
        throw new NoTranslation(`the gradient of the inner softmax ${node.name}`);
      case 'Add':
        return node.inbound.map(() => dy);
      case 'Subtract': case 'Average': case 'Multiply': case 'Maximum': {
        // Keras broadcasts unequal shapes; their gradients would need sums over the broadcast axes.
        if (node.inbound.some((n) => shapeOf(n).join() !== shapeOf(node.name).join())) throw new NoTranslation(`the gradient of the broadcasting ${node.className} ${node.name}`);
        const y = compute(node.name);
        const like = (v: Value) => toLayout(v, y.layout === 'nchw' ? 'nchw' : 'nhwc');
        const g = like(dy);
        const same = (name: string): Value => ({ ...g, name });
        if (node.className === 'Subtract') return [g, same(b.node('Neg', [g.name]))];
        if (node.className === 'Average') {
          const share = same(b.node('Div', [g.name, scalar(node.inbound.length)]));
          return node.inbound.map(() => share);
        }
        const xs = node.inbound.map((n) => like(compute(n)).name);
        if (node.className === 'Multiply') return xs.map((_, i) => same(xs.reduce((acc, x, j) => (j === i ? acc : b.node('Mul', [acc, x])), g.name)));
        // Ties send the gradient to the first input that holds the maximum, as in backprop.ts.
        let taken = '';
        return xs.map((x) => {
          const hit = b.node('Equal', [x, y.name]);
          const first = taken ? b.node('And', [hit, b.node('Not', [taken])]) : hit;
          taken = taken ? b.node('Or', [taken, hit]) : hit;
          return same(b.node('Where', [first, g.name, scalar(0)]));
        });
      }
      case 'Concatenate': {
        const rank = shapeOf(node.name).length + 1;
        let axis = Number(cfg.axis ?? -1);
        if (axis < 0) axis += rank;
        const layout = rank === 4 && axis === 3 ? 'nchw' : 'nhwc';
        const sizes = node.inbound.map((n) => shapeOf(n)[axis - 1]);
        const parts = b.nodeWith('Split', [toLayout(dy, layout).name, b.ints(sizes)], sizes.length, { axis: layout === 'nchw' ? 1 : axis }, `${node.name}_dx`);
        return parts.map((name) => ({ name, layout: rank === 2 ? 'plain' : layout, rank }));
      }
      default:
        throw new NoTranslation(`the gradient of layer ${node.className} (${node.name})`);
    }
  };

  const order = net.layersUpTo(head.name);

  const grads = new Map<string, Value>();
  const addGrad = (name: string, g: Value) => {
    const have = grads.get(name);
    if (!have) return grads.set(name, g);
    const layout = have.rank === 4 ? 'nchw' : have.layout === 'plain' ? 'plain' : 'nhwc';
    const [p, q] = layout === 'plain' ? [have, g] : [toLayout(have, layout), toLayout(g, layout)];
    grads.set(name, { ...p, name: b.node('Sum', [p.name, q.name]) });
  };
  // The seed, flat and channels last, in the head's output shape.
  const headShape = shapeOf(head.name);
  addGrad(head.name, headShape.length === 1 ? seed : { name: b.node('Reshape', [seed.name, b.ints([-1, ...headShape])]), layout: 'nhwc', rank: headShape.length + 1 });
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const dy = grads.get(node.name);
    if (node.name === inputName || !dy) continue;
    backward(node, dy, node === head).forEach((g, k) => addGrad(node.inbound[k], g));
  }
  const dx = grads.get(inputName);
  if (!dx) throw new NoTranslation(`the output of ${head.name} does not depend on the input`);
  ctx.output(GRADIENT.dx, dx, shapeOf(inputName));
}
