// Describes a model file without running anything found in it: layers,
// shapes, parameters, weight statistics, channels zeroed by earlier pruning.
import { UserError } from './errors';
import { loadModel, type LoadedModel, type Weight } from './keras/load';
import { activationName } from './model/layers';
import { initBackend } from './model/backend';
import { Net } from './model/net';
import type { Backend, InspectResult, LayerInfo, WeightStats } from './types';

export function weightStats(data: Float32Array): WeightStats {
  let min = Infinity, max = -Infinity, sum = 0, zeros = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    if (v === 0) zeros++;
  }
  const n = data.length;
  const mean = n ? sum / n : 0;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (data[i] - mean) ** 2;
  return { count: n, min: n ? min : 0, max: n ? max : 0, mean, std: n ? Math.sqrt(sq / n) : 0, zeros: n ? zeros / n : 0 };
}

/** Output channels (last kernel axis) whose kernel slice and bias are exactly zero. */
export function zeroChannels(weights: Weight[]): number[] | undefined {
  const kernel = weights.find((w) => w.name === 'kernel');
  if (!kernel) return undefined;
  const bias = weights.find((w) => w.name === 'bias');
  const c = kernel.shape[kernel.shape.length - 1];
  const alive = new Uint8Array(c);
  for (let i = 0; i < kernel.data.length; i++) if (kernel.data[i] !== 0) alive[i % c] = 1;
  if (bias) for (let j = 0; j < c; j++) if (bias.data[j] !== 0) alive[j] = 1;
  const out: number[] = [];
  for (let j = 0; j < c; j++) if (!alive[j]) out.push(j);
  return out;
}

export function describe(model: LoadedModel, net: Net | undefined): InspectResult {
  const layers: LayerInfo[] = model.graph.layers.map((l) => {
    const ws = model.weights.get(l.name) ?? [];
    const info: LayerInfo = {
      name: l.name,
      className: l.className,
      outputShape: net?.shapes.has(l.name) ? [null, ...net.shapes.get(l.name)!] : [],
      params: ws.reduce((a, w) => a + w.data.length, 0),
      inbound: l.inbound,
    };
    if (l.config.activation !== undefined) info.activation = activationName(l.config.activation);
    if (l.className === 'Conv2D' || l.className === 'Dense') info.zeroChannels = zeroChannels(ws) ?? [];
    if (ws.length) info.weightStats = Object.fromEntries(ws.map((w) => [w.name, weightStats(w.data)]));
    return info;
  });
  const out = model.graph.layers.find((l) => l.name === model.graph.outputs[0])!;
  return {
    file: model.file,
    format: model.format,
    kerasVersion: model.kerasVersion,
    backendSavedWith: model.backendSavedWith,
    archFile: model.archFile,
    inputShape: model.graph.inputShape,
    outputClasses: net?.classes ?? Number(out.config.units ?? 0),
    params: layers.reduce((a, l) => a + l.params, 0),
    layers,
    warnings: model.warnings,
  };
}

export async function inspectModel(file: string, arch?: string, backend?: Backend): Promise<InspectResult> {
  const model = await loadModel(file, arch);
  await initBackend(backend);
  let net: Net | undefined;
  try {
    net = new Net(model);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    // Still describe what can be described; the reason it cannot run is a warning.
    model.warnings.push({ code: e.code === 'unsupported' ? 'unknown-layer' : e.code, message: `the model cannot be run: ${e.message}` });
  }
  try {
    return describe(model, net);
  } finally {
    net?.dispose();
  }
}
