// Loads a model for execution. Models whose config holds code (Lambda layers,
// custom objects, nested models) are refused here: they are only inspected.
// So are models with NaN/Inf weights, whose outputs would mean nothing.
import { UserError } from './errors';
import { loadModel, type LoadedModel } from './keras/load';
import { initBackend } from './model/backend';
import { Net } from './model/net';
import type { Backend } from './types';

const REFUSED = new Set(['lambda-layer', 'custom-object', 'nested-model', 'non-finite-weights']);

export async function loadRunnable(file: string, arch?: string, backend?: Backend | 'auto'): Promise<{ model: LoadedModel; net: Net; backend: Backend }> {
  const model = await loadModel(file, arch);
  const bad = model.warnings.find((w) => REFUSED.has(w.code));
  if (bad) throw new UserError(`refusing to run this model: ${bad.message}`, file, 'refused');
  const used = await initBackend(backend);
  return { model, net: new Net(model), backend: used };
}
