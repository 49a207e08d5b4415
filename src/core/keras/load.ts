// Loads a Keras model file (Keras 2/3 legacy .h5, Keras 3 .keras zip, or a
// weights-only file plus an architecture from elsewhere) into plain arrays.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { UserError } from '../errors';
import { attrString, attrStrings, closeQuietly, guard, isDataset, isGroup, openH5, type H5File, type H5Group } from '../h5/file';
import type { ModelFormat, ModelWarning } from '../types';
import { buildGraph, parseConfigText, scanWarnings, type ModelGraph } from './config';

export interface Weight {
  /** kernel, bias, gamma, beta, moving_mean, moving_variance, ... */
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface LoadedModel {
  file: string;
  format: ModelFormat;
  kerasVersion?: string;
  backendSavedWith?: string;
  archFile?: string;
  /** the model config JSON as stored: written back unchanged into repaired models */
  configText: string;
  graph: ModelGraph;
  weights: Map<string, Weight[]>;
  warnings: ModelWarning[];
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const MAX_ZIP_ENTRY = 4 * 1024 ** 3;
const MAX_ZIP_RATIO = 200;

function isZip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    return ZIP_MAGIC.every((v, i) => b[i] === v);
  } finally {
    closeSync(fd);
  }
}

/** Reads config.json and model.weights.h5 from a .keras archive, refusing unsafe members. */
function readKerasZip(file: string): { configText: string; weightsFile: string; cleanup: () => void; kerasVersion?: string } {
  const buf = readFileSync(file);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(buf, {
      filter: (f) => {
        const name = f.name;
        if (name.startsWith('/') || /^[a-zA-Z]:/.test(name) || name.split(/[\\/]/).includes('..')) {
          throw new UserError(`archive member "${name}" has an unsafe path; refusing the archive`, file, 'unsafe-archive');
        }
        if (!['config.json', 'model.weights.h5', 'metadata.json'].includes(name)) return false;
        if (f.originalSize > MAX_ZIP_ENTRY || f.originalSize > MAX_ZIP_RATIO * Math.max(f.size, 1024)) {
          throw new UserError(`archive member "${name}" declares ${f.originalSize} bytes from ${f.size} compressed (zip bomb?); refusing`, file, 'unsafe-archive');
        }
        return true;
      },
    });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`not a readable .keras archive: ${(e as Error).message}`, file, 'corrupt');
  }
  if (!entries['config.json']) throw new UserError('the .keras archive has no config.json', file, 'no-model');
  if (!entries['model.weights.h5']) throw new UserError('the .keras archive has no model.weights.h5', file, 'no-model');
  let kerasVersion: string | undefined;
  try {
    kerasVersion = JSON.parse(new TextDecoder().decode(entries['metadata.json'] ?? new Uint8Array())).keras_version;
  } catch { /* metadata is optional */ }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backdoor-audit-'));
  const weightsFile = path.join(dir, 'model.weights.h5');
  writeFileSync(weightsFile, entries['model.weights.h5']);
  return {
    configText: new TextDecoder().decode(entries['config.json']),
    weightsFile,
    kerasVersion,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

interface ArchSource {
  configText: string;
  file: string;
}

/** An architecture from a full model .h5, a .keras archive or a JSON file. */
async function readArch(file: string): Promise<ArchSource> {
  try {
    statSync(file);
  } catch {
    throw new UserError('architecture file not found', file, 'not-found');
  }
  if (isZip(file)) {
    const z = readKerasZip(file);
    z.cleanup();
    return { configText: z.configText, file };
  }
  if (/\.json$/i.test(file)) return { configText: readFileSync(file, 'utf8'), file };
  const f = await openH5(file);
  try {
    const text = guard(file, 'reading model_config', () => attrString(f, 'model_config'));
    if (!text) throw new UserError('has no model_config attribute: not a full Keras model file, cannot supply an architecture', file, 'no-model');
    return { configText: text, file };
  } finally {
    closeQuietly(f);
  }
}

export async function loadModel(file: string, archFile?: string): Promise<LoadedModel> {
  try {
    statSync(file);
  } catch {
    throw new UserError('model file not found', file, 'not-found');
  }
  const arch = archFile ? await readArch(archFile) : undefined;
  if (isZip(file)) {
    const z = readKerasZip(file);
    try {
      const configText = arch?.configText ?? z.configText;
      let f: H5File;
      try {
        f = await openH5(z.weightsFile);
      } catch (e) {
        // The extracted copy sits in a temp folder the user never saw: name the archive.
        if (e instanceof UserError) throw new UserError(`model.weights.h5 in the archive: ${e.message.replace(`${z.weightsFile}: `, '')}`, file, e.code);
        throw e;
      }
      try {
        return finish(file, 'keras3-zip', configText, f, z.kerasVersion, undefined, arch?.file);
      } finally {
        closeQuietly(f);
      }
    } finally {
      z.cleanup();
    }
  }
  const f = await openH5(file);
  try {
    // Any HDF5 call can fail on a corrupt file; guard names the file.
    const { stored, kerasVersion, backend } = guard(file, 'reading attributes', () => ({
      stored: attrString(f, 'model_config'),
      kerasVersion: attrString(f, 'keras_version') ?? (isGroup(f.get('model_weights')) ? attrString(f.get('model_weights') as H5Group, 'keras_version') : undefined),
      backend: attrString(f, 'backend'),
    }));
    if (!stored && !arch) {
      const looksLikeWeights = guard(file, 'reading attributes', () => attrStrings(f, 'layer_names') || isGroup(f.get('layers')));
      if (looksLikeWeights) throw new UserError('is a weights-only file (no model_config): give the architecture with --arch MODEL.h5|CONFIG.json', file, 'needs-arch');
      const keys = guard(file, 'listing', () => f.keys());
      throw new UserError(`has no Keras model in it (no model_config, no layer weights; top-level entries: ${keys.slice(0, 8).join(', ') || 'none'})`, file, 'no-model');
    }
    const configText = arch?.configText ?? stored!;
    const format: ModelFormat = !stored ? 'weights-only+arch' : kerasVersion?.startsWith('3') || /"build_config"|"__keras_tensor__"/.test(stored) ? 'keras3-h5' : 'keras2-h5';
    return finish(file, format, configText, f, kerasVersion, backend, arch?.file);
  } finally {
    closeQuietly(f);
  }
}

function finish(file: string, format: ModelFormat, configText: string, f: H5File, kerasVersion: string | undefined, backend: string | undefined, archFile?: string): LoadedModel {
  const cfg = parseConfigText(configText, archFile ?? file);
  const warnings = scanWarnings(cfg);
  const graph = buildGraph(cfg, archFile ?? file);
  const weights = guard(file, 'reading weights', () => readWeights(f, file, graph));
  // NaN or Inf in a weight makes every prediction meaningless: reported here, refused by loadRunnable.
  for (const [layer, ws] of weights) {
    for (const w of ws) {
      let bad = 0;
      for (let i = 0; i < w.data.length; i++) if (!Number.isFinite(w.data[i])) bad++;
      if (bad) warnings.push({ code: 'non-finite-weights', layer, message: `weight ${w.name} of layer "${layer}" has ${bad} NaN or infinite value(s)` });
    }
  }
  return { file, format, kerasVersion, backendSavedWith: backend, archFile, configText, graph, weights, warnings };
}

const toF32 = (v: unknown): Float32Array => (v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>));

/** Weight names a layer stores, in Keras's order, for the Keras 3 `vars/0..n` layout. */
function varNames(className: string, cfg: Record<string, unknown>, count: number): string[] {
  if (className === 'BatchNormalization') {
    const names = [...(cfg.scale !== false ? ['gamma'] : []), ...(cfg.center !== false ? ['beta'] : []), 'moving_mean', 'moving_variance'];
    return names.slice(0, count);
  }
  return ['kernel', 'bias'].slice(0, count);
}

function readWeights(f: H5File, file: string, graph: ModelGraph): Map<string, Weight[]> {
  const weights = new Map<string, Weight[]>();
  const legacyRoot = isGroup(f.get('model_weights')) ? (f.get('model_weights') as H5Group) : f;
  const legacyNames = attrStrings(legacyRoot, 'layer_names');
  if (legacyNames) {
    for (const layer of graph.layers) {
      const g = legacyRoot.get(layer.name);
      if (!isGroup(g)) continue;
      const names = attrStrings(g, 'weight_names') ?? [];
      const list: Weight[] = [];
      for (const wn of names) {
        const ds = g.get(wn);
        if (!isDataset(ds)) throw new UserError(`weight "${wn}" of layer "${layer.name}" is listed but missing`, file, 'corrupt');
        list.push({ name: wn.split('/').pop()!.replace(/:\d+$/, ''), shape: [...ds.shape!], data: readWeightArray(ds, file, wn) });
      }
      if (list.length) weights.set(layer.name, list);
    }
    checkNames(graph, new Set(legacyNames), file);
    return weights;
  }
  const layersGroup = f.get('layers');
  if (isGroup(layersGroup)) {
    // Keras 3: layers/<snake_case>[_k]/vars with attr name = the real layer name
    const byName = new Map(graph.layers.map((l) => [l.name, l]));
    const found = new Set<string>();
    for (const key of layersGroup.keys()) {
      const g = layersGroup.get(key);
      if (!isGroup(g)) continue;
      const vars = g.get('vars');
      if (!isGroup(vars)) continue;
      const realName = attrString(vars, 'name') ?? attrString(g, 'name') ?? key;
      found.add(realName);
      const count = vars.keys().length;
      if (count === 0) continue;
      const layer = byName.get(realName);
      if (!layer) throw new UserError(`weights file has layer "${realName}" that the architecture does not have`, file, 'weights-mismatch');
      const names = varNames(layer.className, layer.config, count);
      const list: Weight[] = [];
      for (let i = 0; i < count; i++) {
        const ds = vars.get(String(i));
        if (!isDataset(ds)) throw new UserError(`variable ${i} of layer "${realName}" is missing`, file, 'corrupt');
        list.push({ name: names[i] ?? String(i), shape: [...ds.shape!], data: readWeightArray(ds, file, `${realName}/${i}`) });
      }
      weights.set(realName, list);
    }
    return weights;
  }
  throw new UserError('has no weights in a Keras layout (no layer_names attribute, no layers/ group)', file, 'no-model');
}

const MAX_WEIGHT_ELEMENTS = 512 * 1024 * 1024;

function readWeightArray(ds: { shape: number[] | null; dtype: unknown; value: unknown }, file: string, name: string): Float32Array {
  const shape = ds.shape ?? [];
  const n = shape.reduce((a, b) => a * b, 1);
  if (!(n <= MAX_WEIGHT_ELEMENTS)) throw new UserError(`weight "${name}" declares ${n} elements; refusing`, file, 'corrupt');
  const dtype = String(ds.dtype);
  if (!/^[<>]?[fdiu]\d?$|^[<>]?[fd]$/.test(dtype)) throw new UserError(`weight "${name}" has non-numeric type ${dtype}`, file, 'corrupt');
  return toF32(ds.value);
}

function checkNames(graph: ModelGraph, stored: Set<string>, file: string) {
  const missing = graph.layers.filter((l) => !stored.has(l.name) && needsWeights(l.className)).map((l) => l.name);
  if (missing.length) {
    throw new UserError(`weights do not match the architecture: no weights for layer(s) ${missing.join(', ')} (file has: ${[...stored].slice(0, 20).join(', ')})`, file, 'weights-mismatch');
  }
}

export function needsWeights(className: string): boolean {
  return className === 'Conv2D' || className === 'Dense' || className === 'BatchNormalization';
}
