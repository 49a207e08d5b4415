// Kernels the wasm backend lacks or runs slowly, for training (train/) and the
// scan's input gradients (scan/backprop.ts): Conv2D gradients as forward
// convolutions that run in wasm's own (XNNPACK) conv kernel, products with a
// transposed operand as plain ones, and MaxPoolGrad as a loop on wasm's heap.
//
// Conv2DBackpropFilter: wasm has none. For a conv with
// stride s and no dilation (tfjs refuses gradients of dilated convs anyway),
//   dW[i,j,c,o] = sum_{n,y,x} Xpad[n, y*s + i, x*s + j, c] * dY[n,y,x,o],
// which is itself a forward convolution once batch and channels swap places:
// input Xpad as (C, Hp, Wp, N), filter dY as (oh, ow, N, O), dilation s,
// stride 1, valid; its (C, kh, kw, O) output, transposed, is dW. (An im2col
// of slices and one matmul, also from wasm kernels, took twice the CPU time
// on the lab network.)
//
// Conv2DBackpropInput: wasm has one, but it is a direct loop about 4x slower
// than its forward conv here. At stride 1, dX is a full correlation of dY
// with the kernel flipped in space and with in/out channels swapped, i.e. a
// forward conv of dY padded by (k - 1 - pad) on each side. Other strides keep
// wasm's own kernel.
import * as tf from '@tensorflow/tfjs-core';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;

function kernelOn(backendName: string, name: string): tf.KernelFunc {
  const k = tf.getKernel(name, backendName);
  if (!k) throw new Error(`the ${backendName} backend has no ${name} kernel`);
  return k.kernelFunc;
}

/** Runs `backendName`'s kernels, keeping every output in `temps` for the caller to free. */
function kernelRunner(backendName: string, backend: tf.KernelBackend) {
  const temps: Info[] = [];
  const run = (name: string, ins: tf.NamedTensorInfoMap, at: Attrs) => {
    const out = kernelOn(backendName, name)({ inputs: ins, backend, attrs: at as tf.NamedAttrMap }) as Info;
    temps.push(out);
    return out;
  };
  return { run, temps };
}

/** dW from x (N,H,W,C) and dy (N,oh,ow,O), run with `backendName`'s own kernels. */
export function backpropFilterByConv(backendName: string, { inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as { strides: [number, number] | number; pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
  if (a.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm: only NHWC (channels_last) is supported');
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  const [kh, kw, c, o] = a.filterShape;
  const { run, temps } = kernelRunner(backendName, backend);
  try {
    const { top, bottom, left, right } = info.padInfo;
    const padded = top || bottom || left || right
      ? run('PadV2', { x }, { paddings: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]], constantValue: 0 })
      : x;
    const xT = run('Transpose', { x: padded }, { perm: [3, 1, 2, 0] });
    const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth], dimRoundingMode: undefined });
    // The swapped conv can reach past kh x kw when the input's last rows/columns were not used by the forward conv.
    const cropped = conv.shape[1] === kh && conv.shape[2] === kw ? conv : run('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [c, kh, kw, o] });
    const out = kernelOn(backendName, 'Transpose')({ inputs: { x: cropped }, backend, attrs: { perm: [1, 2, 0, 3] } }) as Info;
    return out;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/** dX from dy (N,oh,ow,O) and the filter (kh,kw,C,O) at stride 1; undefined for other strides. */
export function backpropInputByConv(backendName: string, { inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info | undefined {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as { strides: [number, number] | number; pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; inputShape: [number, number, number, number] };
  if (a.dataFormat === 'NCHW') return undefined;
  const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return undefined;
  const [kh, kw] = filter.shape;
  const { top, bottom, left, right } = info.padInfo;
  const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
  if (pads.some((p) => p < 0)) return undefined; // padding wider than the kernel: leave it to wasm's kernel
  const { run, temps } = kernelRunner(backendName, backend);
  try {
    const padded = run('PadV2', { x: dy }, { paddings: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], constantValue: 0 });
    const flipped = run('Reverse', { x: filter }, { dims: [0, 1] });
    const swapped = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    return kernelOn(backendName, 'Conv2D')({ inputs: { x: padded, filter: swapped }, backend, attrs: { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] } as unknown as tf.NamedAttrMap }) as Info;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * wasm's BatchMatMul with a transposed operand (a Dense layer's gradients: xᵀ·dy for the kernel,
 * dy·Wᵀ for the input) takes a slow path; an explicit Transpose and the plain product took
 * 111 ms instead of 144 ms for a 32-image gradient of the lab network (a micro-benchmark).
 */
function matMulUntransposed(own: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as { inputs: { a: Info; b: Info }; backend: tf.KernelBackend; attrs: Attrs };
    if (!attrs.transposeA && !attrs.transposeB) return own.kernelFunc(args);
    const { run, temps } = kernelRunner('wasm', backend);
    try {
      // Swap the last two axes; batch axes stay.
      const swapped = (t: Info) => run('Transpose', { x: t }, { perm: t.shape.map((_, i, all) => (i < all.length - 2 ? i : 2 * all.length - 3 - i)) });
      const a = attrs.transposeA ? swapped(inputs.a) : inputs.a;
      const b = attrs.transposeB ? swapped(inputs.b) : inputs.b;
      return own.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/** What a JS kernel needs of the wasm backend: tensors it allocates and views on its heap. */
interface WasmHeap {
  makeOutput(shape: number[], dtype: 'float32'): Info;
  typedArrayFromHeap(t: Info): Float32Array;
}

/**
 * MaxPoolGrad: each window's gradient goes to its first maximum in row-major order, as the cpu
 * backend does (wasm's own kernel picks another of tied maxima, e.g. in an all-zero window after
 * a ReLU) and 2.5× faster than wasm's own kernel on the lab network's pool_1.
 */
function maxPoolGrad(own: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as { inputs: { dy: Info; input: Info }; backend: WasmHeap; attrs: Attrs };
    const { dy, input } = inputs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') return own.kernelFunc(args);
    const a = attrs as { filterSize: [number, number] | number; strides: [number, number] | number; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const dx = backend.makeOutput(input.shape, 'float32');
    // Views after the allocation: it may grow the heap, which detaches earlier views.
    const x = backend.typedArrayFromHeap(input), g = backend.typedArrayFromHeap(dy), out = backend.typedArrayFromHeap(dx);
    const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight, outWidth, strideHeight, strideWidth, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
    const { top, left } = info.padInfo;
    if (fh === 2 && fw === 2 && strideHeight === 2 && strideWidth === 2 && top === 0 && left === 0) {
      pool2x2Grad(x, g, out, batchSize, H, W, C, outHeight, outWidth);
      return dx;
    }
    // Overlapping windows can send several gradients to one input: summed in float64, as the cpu backend does.
    const sum = strideHeight < fh || strideWidth < fw ? new Float64Array(out.length) : out;
    sum.fill(0);
    const best = new Float32Array(C), at = new Int32Array(C);
    let o = 0; // dy's offset: (b, y, x, 0)
    for (let b = 0; b < batchSize; b++) {
      const base = b * H * W * C;
      for (let y = 0; y < outHeight; y++) {
        const y0 = y * strideHeight - info.padInfo.top;
        for (let xo = 0; xo < outWidth; xo++, o += C) {
          const x0 = xo * strideWidth - info.padInfo.left;
          best.fill(-Infinity);
          at.fill(-1);
          for (let i = Math.max(0, y0); i < Math.min(H, y0 + fh); i++) {
            for (let j = Math.max(0, x0); j < Math.min(W, x0 + fw); j++) {
              const p = base + (i * W + j) * C;
              for (let c = 0; c < C; c++) {
                if (x[p + c] > best[c]) {
                  best[c] = x[p + c];
                  at[c] = p + c;
                }
              }
            }
          }
          for (let c = 0; c < C; c++) if (at[c] >= 0) sum[at[c]] += g[o + c];
        }
      }
    }
    if (sum !== out) out.set(sum);
    return dx;
  };
}

/**
 * The common 2×2, stride-2 unpadded pool: windows do not overlap, so each input gets at most one
 * gradient, written rather than summed. Ties go to the first maximum in row-major order, as above.
 */
function pool2x2Grad(x: Float32Array, g: Float32Array, out: Float32Array, n: number, H: number, W: number, C: number, oh: number, ow: number) {
  out.fill(0);
  const row = W * C;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++, o += C) {
        const p00 = b * H * row + 2 * y * row + 2 * xo * C, p01 = p00 + C, p10 = p00 + row, p11 = p10 + C;
        for (let c = 0; c < C; c++) {
          let at = p00 + c, best = x[at];
          if (x[p01 + c] > best) { at = p01 + c; best = x[at]; }
          if (x[p10 + c] > best) { at = p10 + c; best = x[at]; }
          if (x[p11 + c] > best) at = p11 + c;
          out[at] = g[o + c];
        }
      }
    }
  }
}

let done = false;

/** Adds Conv2DBackpropFilter to the wasm backend, routes stride-1 Conv2DBackpropInput through its forward conv, transposed products through a plain one, and MaxPoolGrad through a loop of ours. */
export function registerWasmKernels() {
  if (done) return;
  done = true;
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: (args) => backpropFilterByConv('wasm', args as Parameters<typeof backpropFilterByConv>[1]) });
  }
  const own = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (own) {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel({
      ...own,
      kernelFunc: (args) => backpropInputByConv('wasm', args as Parameters<typeof backpropInputByConv>[1]) ?? own.kernelFunc(args),
    });
  }
  for (const [name, wrap] of [['BatchMatMul', matMulUntransposed], ['MaxPoolGrad', maxPoolGrad]] as const) {
    const k = tf.getKernel(name, 'wasm');
    if (!k) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...k, kernelFunc: wrap(k) });
  }
}
