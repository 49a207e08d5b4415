// Yardsticks for the plain pass on ONNX Runtime: how many multiply-adds a second one core
// does in ONNX Runtime's best case (a large one-thread MatMul), and how long the model's own
// convolutions take alone, each in both kernel layouts: together they bound what any graph of
// this model can reach with these kernels on this machine.
import onnxProto from 'onnx-proto'; // CommonJS: its namespace is the default export under Node's ESM
import type { onnx as Proto } from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import type { Net } from '../../src/core/model/net';
import { loadOnnxRuntime } from '../../src/core/model/onnx/engine';
import { Builder, convNode } from '../../src/core/model/onnx/translate';

const { onnx } = onnxProto as unknown as { onnx: typeof Proto };
const F32 = onnx.TensorProto.DataType.FLOAT;

const valueInfo = (name: string, dims: number[]): Proto.IValueInfoProto =>
  ({ name, type: { tensorType: { elemType: F32, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

function encode(graph: Proto.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: onnx.Version.IR_VERSION, opsetImport: [{ domain: '', version: 17 }], graph })).finish();
}

/** Milliseconds of the fastest of 8 runs after one to warm up, on one thread at the given optimisation level. */
async function fastest(ort: typeof Ort, model: Uint8Array, feeds: Record<string, Ort.Tensor>, level: 'all' | 'extended' = 'all'): Promise<number> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: level });
  try {
    await session.run(feeds);
    let best = Infinity;
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  } finally {
    await session.release();
  }
}

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);

async function onnxRuntime(): Promise<typeof Ort | undefined> {
  return (await loadOnnxRuntime()) ? import('onnxruntime-node') : undefined;
}

/** Billions of multiply-adds a second of one thread on an n×n by n×n MatMul; undefined without ONNX Runtime. */
export async function matMulRate(n = 1024): Promise<number | undefined> {
  const ort = await onnxRuntime();
  if (!ort) return undefined;
  const model = encode({ name: 'matmul', node: [{ opType: 'MatMul', input: ['a', 'b'], output: ['c'] }], input: [valueInfo('a', [n, n]), valueInfo('b', [n, n])], output: [valueInfo('c', [n, n])] });
  const square = new ort.Tensor('float32', ramp(n * n), [n, n]);
  return n ** 3 / (await fastest(ort, model, { a: square, b: square })) / 1e6;
}

/**
 * Microseconds an image of each Conv2D of `net` run alone (its weights, 32 images a run, one
 * thread), with ONNX Runtime's blocked (NCHWc) and plain (NCHW) kernels; [] without ONNX Runtime.
 */
export async function convolutionTimes(net: Net): Promise<{ layer: string; blocked: number; plain: number }[]> {
  const ort = await onnxRuntime();
  if (!ort) return [];
  const rows = 32;
  const times = [];
  for (const node of net.graph.layers.filter((l) => l.className === 'Conv2D')) {
    const kernel = net.model.weights.get(node.name)!.find((w) => w.name === 'kernel')!;
    const inShape = net.shapes.get(node.inbound[0])!;
    const [h, w, inC] = inShape;
    const [oh, ow, outC] = net.shapes.get(node.name)!;
    // The Conv node translate() builds for this layer, without its bias and activation.
    const b = new Builder();
    const y = convNode(b, node, 'x', inShape, kernel);
    const model = encode({
      name: node.name, node: b.nodes, initializer: b.initializers,
      input: [valueInfo('x', [rows, inC, h, w])],
      output: [valueInfo(y, [rows, outC, oh, ow])],
    });
    const feeds = { x: new ort.Tensor('float32', ramp(rows * inC * h * w).map(Math.abs), [rows, inC, h, w]) };
    const perImage = async (level: 'all' | 'extended') => ((await fastest(ort, model, feeds, level)) * 1000) / rows;
    times.push({ layer: node.name, blocked: await perImage('all'), plain: await perImage('extended') });
  }
  return times;
}
