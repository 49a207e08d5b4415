// HDF5 writers for the two layouts the product produces: Keras 2 legacy
// full-model files (repaired networks, the demo BadNet) and the lab's dataset
// files. Plain TypeScript over h5wasm; no `vscode` import.
//
// The attribute datatypes mirror what Keras 2.15 + h5py 3 write (checked
// against the lab fixture bd_net_pruned45_keras2.15.h5):
//   /@model_config                  scalar vlen string, ASCII  (json.dumps(...).encode())
//   /@keras_version, /@backend      scalar vlen string, UTF-8  (Python str)
//   /model_weights@keras_version,
//   /model_weights@backend          scalar vlen string, ASCII  (bytes)
//   /model_weights@layer_names      1-D vlen string array, ASCII
//   /model_weights/<l>@weight_names 1-D vlen string array, ASCII; when the
//                                   layer has no weights: float64 array of
//                                   shape (0,) (h5py's np.asarray([]))
//   weights                         float32 little-endian, contiguous
// Older Keras (2.3) wrote fixed-length NULLPAD byte strings instead; both
// loaders accept either (they call .decode() only where the value has it).
// One difference h5wasm cannot avoid: it builds UTF-8 strings from
// H5T_FORTRAN_S1, so the two UTF-8 root attributes carry strpad SPACEPAD where
// h5py writes NULLTERM. The pad is not used for variable-length strings: h5py
// 3.7 (HDF5 1.10.8) reads a round-trip of the fixture with the same types and
// values as the original, apart from that one field.
import h5wasm from 'h5wasm/node';
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

export interface WeightArray { name: string; shape: number[]; data: Float32Array }
export interface LayerWeights { layer: string; weights: WeightArray[] }

type H5Group = InstanceType<typeof h5wasm.Group>;

const VLEN_ASCII = 'A'; // h5wasm dtype string: variable length, cset ASCII
const VLEN_UTF8 = 'S'; // variable length, cset UTF-8

/**
 * Keras 2 legacy full-model layout: root attrs model_config (JSON string),
 * keras_version, backend; group model_weights with attrs layer_names, backend,
 * keras_version; per layer a group with attr weight_names and datasets
 * model_weights/<layer>/<weight name path> (e.g. model_weights/conv_1/conv_1/kernel:0).
 * All layers of the config get a group, weightless ones with empty weight_names.
 * With `weightsOnly`, the layout of Keras 2's save_weights() instead (the lab's
 * bd_weights.h5): layer groups at the root and no model_config.
 * Writes to a temp name beside `file` and renames when complete; on error
 * removes the temp file.
 */
export async function writeKerasModelH5(
  file: string,
  modelConfig: string,
  layers: LayerWeights[],
  opts: { kerasVersion?: string; backend?: string; trainingConfig?: string; weightsOnly?: boolean } = {},
): Promise<void> {
  const kerasVersion = opts.kerasVersion ?? '2.15.0';
  const backend = opts.backend ?? 'tensorflow';
  const layerNames = configLayerNames(modelConfig);
  const byLayer = new Map(layers.map((l) => [l.layer, l]));
  for (const l of layers) {
    if (!layerNames.includes(l.layer)) throw new Error(`weights given for layer "${l.layer}", which is not in model_config`);
    for (const w of l.weights) checkSize(w.name, w.shape, w.data.length);
  }

  await h5wasm.ready;
  await atomically(file, (f) => {
    if (opts.weightsOnly) {
      // Keras 2 save_weights(): the layer groups at the root, no model_config.
      setAttr(f, 'backend', backend, null, VLEN_ASCII);
      setAttr(f, 'keras_version', kerasVersion, null, VLEN_ASCII);
      setAttr(f, 'layer_names', layerNames, [layerNames.length], VLEN_ASCII);
      for (const name of layerNames) writeLayerGroup(f, name, byLayer.get(name)?.weights ?? []);
      return;
    }
    setAttr(f, 'backend', backend, null, VLEN_UTF8);
    setAttr(f, 'keras_version', kerasVersion, null, VLEN_UTF8);
    setAttr(f, 'model_config', modelConfig, null, VLEN_ASCII);
    if (opts.trainingConfig !== undefined) setAttr(f, 'training_config', opts.trainingConfig, null, VLEN_ASCII);

    const mw = makeGroup(f, 'model_weights');
    setAttr(mw, 'backend', backend, null, VLEN_ASCII);
    setAttr(mw, 'keras_version', kerasVersion, null, VLEN_ASCII);
    setAttr(mw, 'layer_names', layerNames, [layerNames.length], VLEN_ASCII);
    for (const name of layerNames) writeLayerGroup(mw, name, byLayer.get(name)?.weights ?? []);
    // Keras >= 2.13 (and Keras 3's legacy writer) add this group for weights
    // owned by the model itself; a plain Functional model has none.
    writeLayerGroup(mw, 'top_level_model_weights', []);
  });
}

/**
 * Lab dataset layout: `data` (N,3,H,W) or (N,H,W,C) with the given dtype,
 * `label` (N,) float64 (or omit). `compression` is a gzip level (1-9): then
 * `data` is chunked by whole rows. Temp name + rename.
 */
export async function writeDatasetH5(
  file: string,
  data: Uint8Array | Float32Array | Float64Array,
  shape: number[],
  labels?: ArrayLike<number>,
  opts: { compression?: number } = {},
): Promise<void> {
  checkSize('data', shape, data.length);
  const n = shape[0];
  if (labels && labels.length !== n) throw new Error(`label has ${labels.length} rows, data has ${n}`);
  const dtype = data instanceof Uint8Array ? '<B' : data instanceof Float32Array ? '<f' : '<d';

  await h5wasm.ready;
  await atomically(file, (f) => {
    const level = opts.compression;
    if (level !== undefined && level > 0 && n > 0) {
      // Chunks of whole rows, ~1 MiB each, so a reader can stream batches.
      const rowBytes = (data.byteLength / n) || 1;
      const rows = Math.max(1, Math.min(n, Math.floor((1 << 20) / rowBytes)));
      makeDataset(f, { name: 'data', data, shape, dtype, chunks: [rows, ...shape.slice(1)], compression: 'gzip', compression_opts: level });
    } else {
      makeDataset(f, { name: 'data', data, shape, dtype });
    }
    if (labels) makeDataset(f, { name: 'label', data: Float64Array.from(labels), shape: [n], dtype: '<d' });
  });
}

/** Layer names in model_config order (what Keras writes as layer_names). */
function configLayerNames(modelConfig: string): string[] {
  let cfg: any;
  try {
    cfg = JSON.parse(modelConfig);
  } catch (e) {
    throw new Error(`model_config is not valid JSON: ${(e as Error).message}`);
  }
  const layers = cfg?.config?.layers;
  if (!Array.isArray(layers)) throw new Error('model_config has no config.layers list');
  const names = layers.map((l: any, i: number) => {
    const name = l?.config?.name ?? l?.name;
    if (typeof name !== 'string' || name === '' || name.includes('/')) throw new Error(`model_config layer ${i} has no usable name`);
    return name as string;
  });
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`model_config has two layers named "${dup}"`);
  if (names.includes('top_level_model_weights')) throw new Error('a layer may not be named top_level_model_weights');
  return names;
}

function writeLayerGroup(parent: H5Group, layer: string, weights: WeightArray[]): void {
  const g = makeGroup(parent, layer);
  if (weights.length === 0) {
    // h5py stores np.asarray([]) as an empty float64 array; Keras reads it
    // back as an empty list of names.
    setAttr(g, 'weight_names', new Float64Array(0), [0], '<d');
    return;
  }
  setAttr(g, 'weight_names', weights.map((w) => w.name), [weights.length], VLEN_ASCII);
  for (const w of weights) {
    // "conv_1/kernel:0" becomes the dataset conv_1/kernel:0 inside the layer group.
    const parts = w.name.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`bad weight name "${w.name}" in layer ${layer}`);
    let at = g;
    for (const p of parts.slice(0, -1)) at = (at.get(p) as H5Group | null) ?? makeGroup(at, p);
    if (at.get(parts[parts.length - 1]) !== null) throw new Error(`weight "${w.name}" given twice in layer ${layer}`);
    makeDataset(at, { name: parts[parts.length - 1], data: w.data, shape: w.shape, dtype: '<f' });
  }
}

// h5wasm reports HDF5 failures on stderr and carries on, so every write is
// checked here and turned into an exception.
function makeGroup(parent: H5Group, name: string): H5Group {
  const g = parent.create_group(name);
  if (!(g instanceof h5wasm.Group)) throw new Error(`HDF5: could not create group ${parent.path}/${name}`);
  return g;
}

function makeDataset(parent: H5Group, args: Parameters<H5Group['create_dataset']>[0]): void {
  if (!(parent.create_dataset(args) instanceof h5wasm.Dataset)) throw new Error(`HDF5: could not create dataset ${parent.path}/${args.name}`);
}

function setAttr(obj: H5Group, name: string, value: string | string[] | Float64Array, shape: number[] | null, dtype: string): void {
  obj.create_attribute(name, value, shape, dtype);
  if (!(name in obj.attrs)) throw new Error(`HDF5: could not write attribute ${name} on ${obj.path}`);
}

function checkSize(what: string, shape: number[], length: number): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || size !== length) {
    throw new Error(`${what}: shape [${shape.join(', ')}] does not match ${length} values`);
  }
}

/** Builds the file under a temp name next to `file`, then renames it into place. */
async function atomically(file: string, build: (f: InstanceType<typeof h5wasm.File>) => void): Promise<void> {
  // Checked here because HDF5 would only print its error stack and carry on.
  if (!statSync(path.dirname(file), { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`cannot create ${file}: ${path.dirname(file)} is not a directory`);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let f: InstanceType<typeof h5wasm.File> | undefined;
  try {
    // Lowest file-format versions, like h5py's default: superblock v0, object
    // headers v1, readable by the HDF5 1.10/1.12 inside older h5py wheels.
    f = new h5wasm.File(tmp, 'w', { libver: ['earliest', 'v110'] });
    if (f.file_id < 0n) {
      f = undefined;
      throw new Error(`HDF5: cannot create ${tmp}`);
    }
    build(f);
    f.close();
    f = undefined;
    renameSync(tmp, file);
  } catch (e) {
    try { f?.close(); } catch { /* already failing; keep the first error */ }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Plain float32 datasets at the root (e.g. a trigger's mask and pattern). Temp name + rename. */
export async function writeArraysH5(file: string, arrays: { name: string; shape: number[]; data: Float32Array }[]): Promise<void> {
  for (const a of arrays) checkSize(a.name, a.shape, a.data.length);
  await h5wasm.ready;
  await atomically(file, (f) => {
    for (const a of arrays) makeDataset(f, { name: a.name, data: a.data, shape: a.shape, dtype: '<f' });
  });
}
