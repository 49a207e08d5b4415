// Which architecture fits a weights-only file (the lab's bd_weights.h5, a
// student's B_prime_weights.h5)? A candidate fits when every weighted layer of
// its graph finds weights of the same name and shape in the file, and the file
// has no weighted layer the graph lacks. Nothing is executed: configs are data.
import { UserError } from '../errors';
import { attrString, attrStrings, closeQuietly, guard, isGroup, openH5 } from '../h5/file';
import type { ArchFit, ArchFitResult } from '../types';
import { loadModel, needsWeights, type Weight } from './load';

/** A weights-only HDF5 file: layer weights but no model_config. (.keras archives always carry their config.) */
export async function isWeightsOnly(file: string): Promise<boolean> {
  if (/\.keras$/i.test(file)) return false;
  const f = await openH5(file);
  try {
    return guard(file, 'reading attributes', () =>
      !attrString(f, 'model_config') && (!!attrStrings(f, 'layer_names') || isGroup(f.get('layers'))));
  } finally {
    closeQuietly(f);
  }
}

const shape = (s: number[]) => `(${s.join(', ')})`;

/** Checks one candidate; problems name the layers that do not fit. */
export async function archFit(weightsFile: string, archFile: string): Promise<ArchFit> {
  let loaded;
  try {
    loaded = await loadModel(weightsFile, archFile);
  } catch (e) {
    if (e instanceof UserError) return { arch: archFile, fits: false, problems: [e.message] };
    throw e;
  }
  const { graph, weights } = loaded;
  // A full model file also tells the exact shapes its layers expect.
  let expected: Map<string, Weight[]> | undefined;
  try {
    const own = await loadModel(archFile);
    if (own.weights.size) expected = own.weights;
  } catch { /* a JSON config or a config without weights: names are checked, shapes when building */ }
  const problems: string[] = [];
  const inGraph = new Set(graph.layers.map((l) => l.name));
  for (const name of weights.keys()) if (!inGraph.has(name)) problems.push(`${name}: in the weights, not in the architecture`);
  for (const l of graph.layers) {
    if (!needsWeights(l.className)) continue;
    const got = weights.get(l.name);
    if (!got) {
      problems.push(`${l.name} (${l.className}): no weights in the file`);
      continue;
    }
    const want = expected?.get(l.name);
    if (!want) continue;
    for (const w of want) {
      const g = got.find((x) => x.name === w.name);
      if (!g) problems.push(`${l.name} (${l.className}): no ${w.name} in the file`);
      else if (shape(g.shape) !== shape(w.shape)) problems.push(`${l.name} (${l.className}) ${w.name}: ${shape(g.shape)} in the file, ${shape(w.shape)} in the architecture`);
    }
  }
  return { arch: archFile, fits: problems.length === 0, problems };
}

/** Every candidate, the fitting ones first (in the order given). */
export async function archFits(weightsFile: string, candidates: string[]): Promise<ArchFitResult> {
  const weightsOnly = await isWeightsOnly(weightsFile);
  const fits: ArchFit[] = [];
  if (weightsOnly) {
    for (const c of candidates) if (c !== weightsFile) fits.push(await archFit(weightsFile, c));
  }
  fits.sort((a, b) => Number(b.fits) - Number(a.fits));
  return { model: weightsFile, weightsOnly, fits };
}
