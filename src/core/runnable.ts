// Loads a model for execution. Models whose config holds code (Lambda layers,
// custom objects, nested models) are refused here: they are only inspected.
// So are models with NaN/Inf weights, whose outputs would mean nothing.
import os from 'node:os';
import { UserError } from './errors';
import { loadModel, type LoadedModel } from './keras/load';
import { initBackend, tfjsBackend } from './model/backend';
import { Net } from './model/net';
import { OnnxEngine } from './model/onnx/engine';
import type { Backend, KernelLayout } from './types';

const REFUSED = new Set(['lambda-layer', 'custom-object', 'nested-model', 'non-finite-weights']);

export interface RunOptions {
  /** ONNX Runtime's intra-op threads; default one per core (the worker gives each shard process its share) */
  threads?: number;
  /** ONNX Runtime's convolution kernels: the faster on this model and CPU (default), or one layout */
  kernels?: KernelLayout | 'fastest';
}

export async function loadRunnable(file: string, arch?: string, backend?: Backend | 'auto', opts: RunOptions = {}): Promise<{ model: LoadedModel; net: Net; backend: Backend }> {
  const model = await loadModel(file, arch);
  const bad = model.warnings.find((w) => REFUSED.has(w.code));
  if (bad) throw new UserError(`refusing to run this model: ${bad.message}`, file, 'refused');
  const used = await initBackend(backend);
  const net = new Net(model);
  if (used !== 'onnxruntime') return { model, net, backend: used };
  try {
    net.onnx = OnnxEngine.create(net, opts.threads ?? os.availableParallelism(), opts.kernels);
    return { model, net, backend: used };
  } catch (e) {
    // Per model: a layer without an ONNX translation runs the whole model on tfjs, and says so.
    const fallback = tfjsBackend();
    console.warn(`backdoor-audit: ${file}: ONNX Runtime cannot run this model (${(e as Error).message}); using the ${fallback} backend`);
    return { model, net, backend: fallback };
  }
}
