// Robustness fuzzer: mutates real model and data files (truncation, byte flips,
// corrupted model_config, odd data shapes and dtypes, huge declared sizes,
// NaN/Inf values, hostile .keras archives) and feeds each case to inspect,
// predict or audit THROUGH THE WORKER, the way the editor and the CLI run them.
// Every case must end in a clear error naming a file, or in a sane result;
// anything else (internal error, worker death, hang, a leftover partial folder,
// an overwritten previous report) is counted as a failure.
//
//   npm run fuzz -- [--cases N] [--seed S] [--time-limit MS] [--parallel P] [--case I] [--keep] [--verbose]
//
// Seeded with its own PRNG: case I of seed S is the same mutation on every run
// (`--case I` reruns just that one and keeps its files).
import h5wasm from 'h5wasm/node';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { strToU8, unzipSync, zipSync } from 'fflate';
import type { ChildProcess } from 'node:child_process';
import type { AuditOptions, AuditReport, InspectResult, PredictResult } from '../src/core/types';
import type { WorkerJob } from '../src/protocol';
import { JobError, runJob } from '../src/worker/client';
import { writeDatasetH5 } from '../src/core/h5/write';
import { declareZipSize } from '../test/helpers';
import { tinyConfig, writeTinyBadNet } from '../test/tinyBadNet';
import { rng, type Rng } from './prng';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const fixtures = path.resolve(root, '../shared/fixtures');

// ---------------------------------------------------------------- PRNG

/** Case i of a seed: its own stream, independent of the other cases. */
export const caseRng = (seed: number, i: number): Rng => rng(seed).fork(`case ${i}`);

/** Picks by weight: [[weight, value], ...]. */
function weighted<T>(r: Rng, xs: [number, T][]): T {
  let t = r.next() * xs.reduce((a, [w]) => a + w, 0);
  for (const [w, v] of xs) if ((t -= w) < 0) return v;
  return xs[xs.length - 1][1];
}

// ---------------------------------------------------------------- seed corpus

type Kind = 'model-h5' | 'weights-h5' | 'keras' | 'json' | 'data';
type Role = 'model' | 'arch' | 'cleanValid' | 'poisonedValid' | 'cleanTest' | 'poisonedTest';
const DATA_ROLES = ['cleanValid', 'poisonedValid', 'cleanTest', 'poisonedTest'] as const;

interface Scenario {
  name: string;
  files: Partial<Record<Role, string>>;
  kinds: Partial<Record<Role, Kind>>;
}

async function scenarios(tmp: string): Promise<Scenario[]> {
  const out: Scenario[] = [];
  const data = (v: string, pv?: string, t?: string, pt?: string) => ({ cleanValid: v, poisonedValid: pv, cleanTest: t, poisonedTest: pt });
  const dataKinds = { cleanValid: 'data', poisonedValid: 'data', cleanTest: 'data', poisonedTest: 'data' } as const;

  // Always available: the hand-computable tiny BadNet, also as weights-only + JSON architecture.
  const tiny = path.join(tmp, 'tiny');
  mkdirSync(tiny);
  const f = await writeTinyBadNet(tiny);
  copyFileSync(f('tiny.h5'), f('tiny-weights.h5'));
  await h5wasm.ready;
  const w = new h5wasm.File(f('tiny-weights.h5'), 'a');
  w.delete_attribute('model_config');
  w.close();
  writeFileSync(f('tiny.json'), tinyConfig);
  const tinyData = data(f('valid.h5'), f('bd_valid.h5'), f('test.h5'), f('bd_test.h5'));
  out.push({ name: 'tiny', files: { model: f('tiny.h5'), ...tinyData }, kinds: { model: 'model-h5', ...dataKinds } });
  out.push({ name: 'tiny+arch', files: { model: f('tiny-weights.h5'), arch: f('tiny.json'), ...tinyData }, kinds: { model: 'weights-h5', arch: 'json', ...dataKinds } });

  const lab = (x: string) => path.join(fixtures, 'lab-badnet', x);
  if (existsSync(lab('bd_weights.h5'))) {
    const faces = data(lab('faces_clean.h5'), lab('faces_sunglasses.h5'), lab('faces_clean.h5'), lab('faces_sunglasses.h5'));
    out.push({ name: 'lab', files: { model: lab('bd_net_pruned45_keras2.15.h5'), ...faces }, kinds: { model: 'model-h5', ...dataKinds } });
    out.push({ name: 'lab+arch', files: { model: lab('bd_weights.h5'), arch: lab('bd_net_pruned45_keras2.15.h5'), ...faces }, kinds: { model: 'weights-h5', arch: 'model-h5', ...dataKinds } });
  }
  const k3 = (x: string) => path.join(fixtures, 'keras3-small', x);
  if (existsSync(k3('model.keras'))) {
    // inputs.h5's labels are Keras's own predictions: clean data with 100% accuracy.
    const inputs = { cleanValid: k3('inputs.h5'), cleanTest: k3('inputs.h5') };
    const kinds = { cleanValid: 'data', cleanTest: 'data' } as const;
    out.push({ name: 'k3-h5', files: { model: k3('model.h5'), ...inputs }, kinds: { model: 'model-h5', ...kinds } });
    out.push({ name: 'k3-keras', files: { model: k3('model.keras'), ...inputs }, kinds: { model: 'keras', ...kinds } });
    out.push({ name: 'k3-weights+keras', files: { model: k3('model.weights.h5'), arch: k3('model.keras'), ...inputs }, kinds: { model: 'weights-h5', arch: 'keras', ...kinds } });
  }
  const demo = (x: string) => path.join(root, 'demo', x);
  if (existsSync(demo('bd_net.h5')) && existsSync(demo('bd_test.h5'))) {
    // The demo's first 96 images of each set, in its own layout (uint8, gzip, chunked
    // by rows): every case stays around a second instead of auditing 3,200 images.
    const sub = (x: string) => path.join(tmp, 'demo', x);
    mkdirSync(sub(''));
    for (const x of ['valid.h5', 'bd_valid.h5', 'test.h5', 'bd_test.h5']) {
      const f = new h5wasm.File(demo(x), 'r');
      const ds = f.get('data') as InstanceType<typeof h5wasm.Dataset>;
      const rows = Math.min(96, ds.shape![0]);
      const pixels = Uint8Array.from(ds.slice([[0, rows]]) as ArrayLike<number>);
      const labels = Array.from((f.get('label') as InstanceType<typeof h5wasm.Dataset>).slice([[0, rows]]) as ArrayLike<number>, Number);
      const shape = [rows, ...ds.shape!.slice(1)];
      f.close();
      await writeDatasetH5(sub(x), pixels, shape, labels, { compression: 6 });
    }
    out.push({
      name: 'demo',
      files: { model: demo('bd_net.h5'), ...data(sub('valid.h5'), sub('bd_valid.h5'), sub('test.h5'), sub('bd_test.h5')) },
      kinds: { model: 'model-h5', ...dataKinds },
    });
  }
  return out;
}

// ---------------------------------------------------------------- byte-level mutations

function mutateBytes(r: Rng, buf: Uint8Array): [Uint8Array, string] {
  const b = Uint8Array.from(buf);
  const n = b.length;
  if (n === 0) return [b, 'empty stays empty'];
  switch (weighted(r, [[3, 'truncate'], [3, 'flip'], [2, 'flip-head'], [1, 'flip-tail'], [1, 'zero-block']] as [number, string][])) {
    case 'truncate': {
      const at = r.int(n);
      return [b.subarray(0, at), `truncated at ${at}/${n}`];
    }
    case 'flip': {
      const k = 1 + r.int(32);
      for (let i = 0; i < k; i++) b[r.int(n)] ^= 1 + r.int(255);
      return [b, `${k} random bytes flipped`];
    }
    case 'flip-head': {
      // HDF5 keeps its superblock, root group and most object headers near the start.
      const k = 1 + r.int(8);
      for (let i = 0; i < k; i++) b[r.int(Math.min(n, 4096))] ^= 1 + r.int(255);
      return [b, `${k} bytes flipped in the first 4 KiB`];
    }
    case 'flip-tail': {
      const k = 1 + r.int(8);
      for (let i = 0; i < k; i++) b[n - 1 - r.int(Math.min(n, 4096))] ^= 1 + r.int(255);
      return [b, `${k} bytes flipped in the last 4 KiB`];
    }
    default: {
      const at = r.int(n);
      b.fill(0, at, at + 256);
      return [b, `256 bytes zeroed at ${at}`];
    }
  }
}

// ---------------------------------------------------------------- model_config mutations

type Json = Record<string, any>;
const WEIRD: unknown[] = [null, -1, 0, 1, 3, 1e9, 2 ** 53, -0.5, 'x', '', [], {}, true, [1e9, 1e9], [0, 0], [-1, 2], { class_name: 'x' }];
// Marshalled Python bytecode the way Keras 2 stores a Lambda's function (base64 of marshal.dumps(code)).
const LAMBDA_PAYLOAD = Buffer.from('e3000000000000000000000000010000000300000043000000730c00000074006a01640183017d0064005300', 'hex').toString('base64');

function layersOf(cfg: Json): Json[] | undefined {
  const c = cfg?.config;
  if (Array.isArray(c)) return c;
  if (c && Array.isArray(c.layers)) return c.layers;
  return undefined;
}
const nameOf = (l: Json) => l?.config?.name ?? l?.name;

function mutateConfigJson(r: Rng, cfg: Json): string {
  const layers = layersOf(cfg);
  if (!layers || !layers.length) return 'no layers to mutate';
  const i = r.int(layers.length);
  const l = layers[i];
  const lname = String(nameOf(l));
  const kind = r.pick(['set-field', 'set-field', 'delete-field', 'class', 'input-shape', 'input-shape', 'inbound', 'dup-name', 'drop-layer', 'swap',
    'lambda', 'custom', 'extra-key', 'nest', 'io', 'numbers', 'activation'] as const);
  switch (kind) {
    case 'set-field': {
      const keys = Object.keys(l.config ?? {});
      if (!keys.length) return 'layer without config';
      const k = r.pick(keys);
      const v = r.pick(WEIRD);
      l.config[k] = v;
      return `layer ${lname}: config.${k} = ${JSON.stringify(v)}`;
    }
    case 'delete-field': {
      const k = r.pick(['class_name', 'config', 'name', 'inbound_nodes', ...Object.keys(l.config ?? {}).map((k) => `config.${k}`)]);
      if (k.startsWith('config.')) delete l.config[k.slice(7)];
      else delete l[k];
      return `layer ${lname}: deleted ${k}`;
    }
    case 'class': {
      const c = r.pick(['Lambda', 'Conv3D', 'Functional', 'Sequential', 'MyLayer', '', 42, null, 'InputLayer', 'Dense', 'Conv2D', 'Add', 'Concatenate', 'Flatten', 'MaxPooling2D', 'BatchNormalization']);
      l.class_name = c;
      return `layer ${lname}: class_name = ${JSON.stringify(c)}`;
    }
    case 'input-shape': {
      const inp = layers.find((x) => x?.class_name === 'InputLayer') ?? layers[0];
      const dims = [0, -1, 1, 7, 2 ** 15, 2 ** 20, 1e9, null, 'x', 2.5];
      const shape = [null, ...Array.from({ length: r.pick([3, 3, 3, 2, 4, 0]) }, () => r.pick(dims))];
      const c = (inp.config ??= {});
      if ('batch_shape' in c) c.batch_shape = shape;
      else c.batch_input_shape = shape;
      return `input shape = ${JSON.stringify(shape)}`;
    }
    case 'inbound': {
      const other = r.pick([lname, 'no_such_layer', String(nameOf(layers[layers.length - 1])), 42]);
      l.inbound_nodes = r.pick([[[[other, 0, 0, {}]]], [], [[]], 'x', [[[other, 0, 0, {}]], [[other, 0, 0, {}]]], [{ args: [{ class_name: '__keras_tensor__', config: { keras_history: [other, 0, 0] } }], kwargs: {} }]]);
      return `layer ${lname}: inbound from ${JSON.stringify(other)}`;
    }
    case 'dup-name': {
      const other = layers[r.int(layers.length)];
      if (l.config) l.config.name = nameOf(other);
      l.name = nameOf(other);
      return `layer ${lname} renamed to ${nameOf(other)}`;
    }
    case 'drop-layer':
      layers.splice(i, 1);
      return `layer ${lname} removed`;
    case 'swap': {
      const j = r.int(layers.length);
      [layers[i], layers[j]] = [layers[j], layers[i]];
      return `layers ${i} and ${j} swapped`;
    }
    case 'lambda':
      layers[i] = { class_name: 'Lambda', name: lname, inbound_nodes: l.inbound_nodes, config: { name: lname, function: [LAMBDA_PAYLOAD, null, null], function_type: 'lambda', output_shape: null, arguments: {} } };
      return `layer ${lname} replaced by a Lambda with bytecode`;
    case 'custom':
      l.registered_name = 'MyPkg>MyLayer';
      l.module = 'mypkg.layers';
      return `layer ${lname} made a custom object`;
    case 'extra-key':
      l[r.pick(['__init__', 'eval', 'shared_object_id_x', 'code'])] = r.pick(WEIRD);
      return `layer ${lname}: unexpected key`;
    case 'nest':
      layers[i] = { class_name: 'Functional', name: lname, inbound_nodes: l.inbound_nodes, config: { name: lname, layers: [l], input_layers: [[lname, 0, 0]], output_layers: [[lname, 0, 0]] } };
      return `layer ${lname} wrapped in a nested Functional model`;
    case 'io': {
      const c = cfg.config;
      if (Array.isArray(c)) return 'Sequential: no io lists';
      const k = r.pick(['input_layers', 'output_layers']);
      const v = r.pick([[], [['nope', 0, 0]], [[lname, 0, 0], [lname, 0, 0]], 'x', null, [lname, 0, 0]]);
      c[k] = v;
      return `${k} = ${JSON.stringify(v)}`;
    }
    case 'numbers': {
      const k = r.pick(['filters', 'units', 'kernel_size', 'strides', 'pool_size', 'dilation_rate', 'padding', 'axis', 'epsilon', 'rate', 'groups']);
      const v = r.pick([0, -1, 1, 2, 3, 1e6, [0, 0], [1e5, 1e5], [2, 2], 'same', 'causal', 'full', 1e-300]);
      (l.config ??= {})[k] = v;
      return `layer ${lname}: ${k} = ${JSON.stringify(v)}`;
    }
    default: {
      const v = r.pick(['relu', 'softmax', 'linear', 'nope', 'hard_sigmoid', '', { class_name: 'function', config: 'gelu' }, { class_name: 'MyAct', module: 'evil' }, 7]);
      (l.config ??= {}).activation = v;
      return `layer ${lname}: activation = ${JSON.stringify(v)}`;
    }
  }
}

function mutateConfigText(r: Rng, text: string): [string, string] {
  switch (r.pick(['json', 'json', 'json', 'truncate', 'chars', 'non-object', 'infinity', 'deep'] as const)) {
    case 'json': {
      let cfg: Json;
      try {
        cfg = JSON.parse(text);
      } catch {
        return [text.slice(0, -1), 'config was not JSON; cut one char'];
      }
      const inner = cfg?.model_config && typeof cfg.model_config === 'object' ? cfg.model_config : cfg;
      const what = mutateConfigJson(r, inner);
      return [JSON.stringify(cfg), `config: ${what}`];
    }
    case 'truncate': {
      const at = r.int(text.length);
      return [text.slice(0, at), `config text cut at ${at}/${text.length}`];
    }
    case 'chars': {
      const c = text.split('');
      const k = 1 + r.int(8);
      for (let i = 0; i < k; i++) c[r.int(c.length)] = r.pick(['"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '\\', '\u00e9', ' ', 'x']);
      return [c.join(''), `${k} config characters replaced`];
    }
    case 'non-object': {
      const v = r.pick(['null', '[]', '42', '"model"', '', '{}', '{"class_name": "Functional"}', '{"class_name": "Sequential", "config": []}']);
      return [v, `config = ${JSON.stringify(v)}`];
    }
    case 'infinity':
      // 1e400 parses to Infinity in JavaScript.
      return [text.replace(/"(filters|units|pool_size|kernel_size)": [^,}]+/, '"$1": 1e400'), 'a number replaced by 1e400'];
    default: {
      const depth = r.pick([100, 10000, 100000]);
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      return [text.replace(/"trainable": (true|false)/, `"trainable": ${deep}`), `array nested ${depth} deep inside the config`];
    }
  }
}

// ---------------------------------------------------------------- HDF5 helpers (h5wasm, in this process)

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;

function floatDatasets(g: H5Group, out: string[] = []): string[] {
  for (const k of g.keys()) {
    const x = g.get(k);
    if (x instanceof h5wasm.Group) floatDatasets(x, out);
    else if (x instanceof h5wasm.Dataset && /f/.test(String(x.dtype)) && (x.shape?.length ?? 0) > 0) out.push(x.path);
  }
  return out;
}

function setModelConfig(file: string, text: string) {
  const f = new h5wasm.File(file, 'a');
  try {
    f.delete_attribute('model_config');
    if (text !== '') f.create_attribute('model_config', text, null, 'S');
  } finally {
    f.close();
  }
}

/** NaN, Inf or huge values written into one weight array. */
function poisonWeights(r: Rng, file: string): string {
  const f = new h5wasm.File(file, 'a');
  try {
    const paths = floatDatasets(f);
    if (!paths.length) return 'no float datasets';
    const p = r.pick(paths);
    const ds = f.get(p) as InstanceType<typeof h5wasm.Dataset>;
    const shape = ds.shape!;
    const v = Float32Array.from(ds.value as ArrayLike<number>);
    const bad = r.pick([NaN, Infinity, -Infinity, 3e38, -3e38, 1e-45]);
    const k = r.pick([1, 3, v.length]);
    for (let i = 0; i < k; i++) v[r.int(v.length)] = bad;
    ds.write_slice(shape.map((d) => [0, d]), v);
    return `${k} value(s) of ${p} set to ${bad}`;
  } finally {
    f.close();
  }
}

interface ArrayData { values: Float64Array; shape: number[] }
function readData(file: string): { data: ArrayData; label?: ArrayData } {
  const f = new h5wasm.File(file, 'r');
  try {
    const get = (n: string): ArrayData | undefined => {
      const ds = f.get(n);
      if (!(ds instanceof h5wasm.Dataset)) return undefined;
      return { values: Float64Array.from(ds.value as ArrayLike<number>, Number), shape: [...ds.shape!] };
    };
    return { data: get('data')!, label: get('label') ?? get('labels') };
  } finally {
    f.close();
  }
}

interface DsSpec { name: string; values: ArrayLike<number> | string[]; shape: number[]; dtype: string; resizeTo?: number[] }

function typed(values: ArrayLike<number> | string[], dtype: string): unknown {
  if (Array.isArray(values) && typeof values[0] === 'string') return values;
  const v = values as ArrayLike<number>;
  switch (dtype) {
    case '<B': return Uint8Array.from(v);
    case '<b': return Int8Array.from(v);
    case '<h': return Int16Array.from(v);
    case '<H': return Uint16Array.from(v);
    case '<i': return Int32Array.from(v);
    case '<I': return Uint32Array.from(v);
    case '<q': return BigInt64Array.from(Array.from(v, (x) => BigInt(Math.trunc(Number.isFinite(x) ? x : 0))));
    case '<f': return Float32Array.from(v);
    default: return Float64Array.from(v);
  }
}

function writeH5(file: string, specs: DsSpec[]) {
  const f: H5File = new h5wasm.File(file, 'w');
  try {
    for (const s of specs) {
      const data = typed(s.values, s.dtype);
      if (s.resizeTo) {
        // Chunked and unlimited, then grown: a huge declared shape with almost no data.
        f.create_dataset({ name: s.name, data: data as any, shape: s.shape, dtype: s.dtype, maxshape: s.shape.map(() => null), chunks: s.shape.map((d) => Math.max(1, d)) });
        (f.get(s.name) as InstanceType<typeof h5wasm.Dataset>).resize(s.resizeTo);
      } else {
        f.create_dataset({ name: s.name, data: data as any, shape: s.shape, dtype: s.dtype });
      }
    }
  } finally {
    f.close();
  }
}

function mutateData(r: Rng, src: string, dest: string): string {
  const { data, label } = readData(src);
  const [n, ...rest] = data.shape;
  const per = rest.reduce((a, b) => a * b, 1);
  const labelSpec = (values: ArrayLike<number> | string[] = label?.values ?? [], shape = label?.shape ?? [n]): DsSpec[] =>
    label ? [{ name: 'label', values, shape, dtype: '<d' }] : [];
  const dataSpec = (o: Partial<DsSpec> = {}): DsSpec => ({ name: 'data', values: data.values, shape: data.shape, dtype: '<f', ...o });
  const kind = r.pick(['shape-permute', 'shape-rank', 'shape-crop', 'dtype', 'nan', 'labels', 'labels', 'labels', 'empty', 'huge-n', 'huge-labels', 'rename', 'few-images'] as const);
  switch (kind) {
    case 'shape-permute': {
      const p = [...rest];
      r.shuffle(p);
      writeH5(dest, [dataSpec({ shape: [n, ...p] }), ...labelSpec()]);
      return `data shape (${n}, ${p.join(', ')})`;
    }
    case 'shape-rank': {
      const shape = r.pick([[n, per], [n, rest[0] * rest[1], rest[2]], [n, 1, ...rest], [n * rest[0], rest[1], rest[2]], [n * per]]);
      writeH5(dest, [dataSpec({ shape }), ...labelSpec()]);
      return `data shape (${shape.join(', ')})`;
    }
    case 'shape-crop': {
      // Drop the last row of every image plane: (N, a, b, c) -> (N, a, b, c-1) read as fewer values.
      const shape = [n, rest[0], rest[1], rest[2] - 1];
      const values = new Float64Array(n * rest[0] * rest[1] * (rest[2] - 1));
      writeH5(dest, [dataSpec({ shape, values }), ...labelSpec()]);
      return `data shape (${shape.join(', ')})`;
    }
    case 'dtype': {
      const dtype = r.pick(['<B', '<b', '<h', '<H', '<i', '<I', '<q', '<f', '<d', 'S']);
      const values = dtype === 'S' ? Array.from(data.values, (v) => String(v)) : data.values;
      writeH5(dest, [dataSpec({ dtype, values }), ...labelSpec()]);
      return `data dtype ${dtype}`;
    }
    case 'nan': {
      const values = Float64Array.from(data.values);
      const bad = r.pick([NaN, Infinity, -Infinity]);
      const k = 1 + r.int(5);
      for (let i = 0; i < k; i++) values[r.int(values.length)] = bad;
      writeH5(dest, [dataSpec({ values, dtype: r.pick(['<f', '<d']) }), ...labelSpec()]);
      return `${k} data value(s) = ${bad}`;
    }
    case 'labels': {
      const lv = Float64Array.from(label?.values ?? new Float64Array(n));
      const what = r.pick(['out-of-range', 'negative', 'fraction', 'nan', 'short', 'long', '2d', 'missing', 'strings', 'mixed', 'huge']);
      let specs: DsSpec[];
      switch (what) {
        case 'out-of-range': lv[r.int(n)] = r.pick([1283, 1e6, 2 ** 31, 3]); specs = labelSpec(lv); break;
        case 'negative': lv[r.int(n)] = -1; specs = labelSpec(lv); break;
        case 'fraction': lv[r.int(n)] = 0.5; specs = labelSpec(lv); break;
        case 'nan': lv[r.int(n)] = NaN; specs = labelSpec(lv); break;
        case 'short': specs = [{ name: 'label', values: lv.subarray(0, n - 1), shape: [n - 1], dtype: '<d' }]; break;
        case 'long': specs = [{ name: 'label', values: [...lv, 0], shape: [n + 1], dtype: '<d' }]; break;
        case '2d': specs = [{ name: 'label', values: [...lv, ...lv], shape: [n, 2], dtype: '<d' }]; break;
        case 'missing': specs = []; break;
        case 'strings': specs = [{ name: 'label', values: Array.from(lv, String), shape: [n], dtype: 'S' }]; break;
        case 'mixed': lv[r.int(n)] = (lv[0] + 1) % 3; specs = labelSpec(lv); break; // poisoned labels not all equal
        default: lv[r.int(n)] = 1e20; specs = labelSpec(lv); break;
      }
      writeH5(dest, [dataSpec({ dtype: '<B' }), ...specs]);
      return `labels: ${what}`;
    }
    case 'empty':
      writeH5(dest, [dataSpec({ values: [], shape: [0, ...rest] }), ...(label ? [{ name: 'label', values: [], shape: [0], dtype: '<d' }] : [])]);
      return 'no images';
    case 'huge-n': {
      const big = r.pick([2 ** 20, 1e9, 2 ** 40]);
      writeH5(dest, [dataSpec({ values: data.values.subarray(0, per), shape: [1, ...rest], resizeTo: [big, ...rest] }), ...labelSpec()]);
      return `data declares ${big} images`;
    }
    case 'huge-labels': {
      const big = r.pick([2 ** 20, 1e9, 2 ** 40]);
      writeH5(dest, [
        dataSpec({ values: data.values.subarray(0, per), shape: [1, ...rest], resizeTo: [big, ...rest] }),
        { name: 'label', values: [0], shape: [1], dtype: '<d', resizeTo: [big] },
      ]);
      return `data and labels declare ${big} rows`;
    }
    case 'rename':
      writeH5(dest, [dataSpec({ name: r.pick(['x', 'images', 'Data']) }), ...labelSpec()]);
      return '"data" renamed';
    default: {
      const k = 1 + r.int(Math.max(1, n - 1));
      writeH5(dest, [dataSpec({ values: data.values.subarray(0, k * per), shape: [k, ...rest] }), ...(label ? [{ name: 'label', values: label.values.subarray(0, k), shape: [k], dtype: '<d' }] : [])]);
      return `only ${k} image(s)`;
    }
  }
}

// ---------------------------------------------------------------- .keras archive mutations

function mutateKeras(r: Rng, src: string, dest: string, dir: string): string {
  const members = unzipSync(readFileSync(src));
  const rezip = (m: Record<string, Uint8Array>) => writeFileSync(dest, zipSync(m, { level: 6 }));
  switch (r.pick(['bytes', 'config', 'config', 'weights', 'weights', 'member', 'size-lie', 'bomb'] as const)) {
    case 'bytes': {
      const [b, what] = mutateBytes(r, readFileSync(src));
      writeFileSync(dest, b);
      return `archive: ${what}`;
    }
    case 'config': {
      const [text, what] = mutateConfigText(r, new TextDecoder().decode(members['config.json']));
      rezip({ ...members, 'config.json': strToU8(text) });
      return `config.json: ${what}`;
    }
    case 'weights': {
      const inner = path.join(dir, 'inner.weights.h5');
      writeFileSync(inner, members['model.weights.h5']);
      let what: string;
      if (r.next() < 0.5) what = poisonWeights(r, inner);
      else {
        const [b, w] = mutateBytes(r, readFileSync(inner));
        writeFileSync(inner, b);
        what = w;
      }
      rezip({ ...members, 'model.weights.h5': readFileSync(inner) });
      return `model.weights.h5 inside: ${what}`;
    }
    case 'member': {
      const m = { ...members };
      const what = r.pick(['../evil', '/abs/evil', 'a/../../evil', 'C:/evil', 'drop-config', 'drop-weights']);
      if (what === 'drop-config') delete m['config.json'];
      else if (what === 'drop-weights') delete m['model.weights.h5'];
      else m[what] = strToU8('pwned');
      rezip(m);
      return `member ${what}`;
    }
    case 'size-lie': {
      const size = r.pick([0, 100, 0xfffffffe, 0x7fffffff]);
      writeFileSync(dest, declareZipSize(zipSync(members, { level: 6 }), r.pick(['model.weights.h5', 'config.json']), size));
      return `declared member size ${size}`;
    }
    default:
      // An honest zip bomb: 64 MiB of zeros deflate to ~64 KiB.
      rezip({ ...members, 'model.weights.h5': new Uint8Array(64 << 20) });
      return 'model.weights.h5 is a 64 MiB run of zeros (zip bomb ratio)';
  }
}

// ---------------------------------------------------------------- one case

export type Outcome = 'success' | 'clear' | 'crash' | 'hang';

export interface CaseResult {
  index: number;
  scenario: string;
  role: Role;
  job: WorkerJob['kind'];
  mutation: string;
  outcome: Outcome;
  /** why a crash is a crash, or the clear message */
  detail: string;
  ms: number;
}

async function mutate(r: Rng, kind: Kind, src: string, dest: string, dir: string): Promise<string> {
  const bytes = () => {
    const [b, what] = mutateBytes(r, readFileSync(src));
    writeFileSync(dest, b);
    return what;
  };
  switch (kind) {
    case 'data':
      if (r.next() < 0.3) return bytes();
      return mutateData(r, src, dest);
    case 'keras':
      return mutateKeras(r, src, dest, dir);
    case 'json': {
      const [text, what] = mutateConfigText(r, readFileSync(src, 'utf8'));
      writeFileSync(dest, text);
      return what;
    }
    case 'weights-h5':
      if (r.next() < 0.5) return bytes();
      copyFileSync(src, dest);
      return poisonWeights(r, dest);
    case 'model-h5': {
      const how = weighted(r, [[3, 'bytes'], [4, 'config'], [1, 'weights']] as [number, string][]);
      if (how === 'bytes') return bytes();
      copyFileSync(src, dest);
      if (how === 'weights') return poisonWeights(r, dest);
      const f = new h5wasm.File(src, 'r');
      const text = String(f.attrs.model_config?.value ?? '');
      f.close();
      const [mutated, what] = mutateConfigText(r, text);
      setModelConfig(dest, mutated);
      return what;
    }
  }
}

function checkResult(job: WorkerJob, result: unknown): string | undefined {
  if (job.kind === 'inspect') {
    const r = result as InspectResult;
    if (!Array.isArray(r.layers) || !Number.isFinite(r.params)) return 'inspect result without layers or parameter count';
  } else if (job.kind === 'predict') {
    const r = result as PredictResult;
    if (!r.predictions.length) return 'predict returned no predictions';
    if (r.predictions.some((p, i) => p.index > i || !Number.isInteger(p.label) || p.label < 0)) return 'predict returned a malformed prediction';
  } else if (job.kind === 'audit') {
    const r = result as AuditReport;
    if (!existsSync(path.join(job.options.out, 'report.json'))) return 'audit succeeded but wrote no report.json';
    if (r.thresholds.length !== job.options.thresholds.length) return 'audit report has the wrong number of threshold rows';
  }
  return undefined;
}

interface Ctx {
  seed: number;
  timeLimit: number;
  tmp: string;
  scenarios: Scenario[];
  workerPath?: string;
  keep: boolean;
}

async function runCase(index: number, ctx: Ctx): Promise<CaseResult> {
  const r = caseRng(ctx.seed, index);
  const sc = r.pick(ctx.scenarios);
  const dir = path.join(ctx.tmp, `case-${index}`);
  mkdirSync(dir);
  const dataRoles = DATA_ROLES.filter((k) => sc.files[k]);
  const role: Role = weighted(r, [[5, 'model' as Role], [sc.files.arch ? 2 : 0, 'arch' as Role], [5, r.pick(dataRoles)]]);
  const src = sc.files[role]!;
  const dest = path.join(dir, path.basename(src));
  const files = { ...sc.files, [role]: dest };
  let mutation: string;
  try {
    mutation = await mutate(r, sc.kinds[role]!, src, dest, dir);
  } catch (e) {
    // A harness problem, not a finding: still counted, so it gets fixed.
    return { index, scenario: sc.name, role, job: 'inspect', mutation: 'mutation failed', outcome: 'crash', detail: `fuzzer could not build the case: ${(e as Error).stack}`, ms: 0 };
  }

  const isModelRole = role === 'model' || role === 'arch';
  const kind = isModelRole ? r.pick(['inspect', 'predict', 'audit'] as const) : r.pick(['predict', 'audit'] as const);
  const out = path.join(dir, 'out');
  let job: WorkerJob;
  if (kind === 'inspect') job = { kind, model: files.model!, arch: files.arch };
  else if (kind === 'predict') job = { kind, model: files.model!, arch: files.arch, inputs: [isModelRole ? files.cleanValid! : dest], batchSize: r.pick([1, 3, 256]) };
  else {
    const options: AuditOptions = {
      model: files.model!, arch: files.arch,
      cleanValid: files.cleanValid!, poisonedValid: files.poisonedValid, cleanTest: files.cleanTest, poisonedTest: files.poisonedTest,
      thresholds: r.pick([[2, 4, 10], [10, 30], [50]]), order: r.pick(['increasing', 'decreasing'] as const), rankBy: r.pick(['pool', 'conv'] as const),
      fullSweep: r.next() < 0.2, out, batchSize: r.pick([1, 3, 256]), workers: 1,
    };
    job = { kind, options };
  }
  // A previous report in place: a failed audit must leave it untouched.
  const previous = job.kind === 'audit' && r.next() < 0.4 ? `previous report ${index}` : undefined;
  if (previous) {
    mkdirSync(out);
    writeFileSync(path.join(out, 'report.json'), previous);
  }

  const involved = Object.values(files).filter((x): x is string => !!x);
  const t0 = performance.now();
  let child: ChildProcess | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child?.kill('SIGKILL');
  }, ctx.timeLimit);
  let outcome: Outcome;
  let detail: string;
  try {
    // The worker's HDF5 watchdog stops a call that never returns after 5 s here (20 s by default), so such files end as clear errors well within the time limit.
    const result = await runJob(job, { workerPath: ctx.workerPath, env: { BACKDOOR_AUDIT_H5_TIMEOUT: '5' }, onSpawn: (c) => { child = c; } });
    const bad = checkResult(job, result);
    [outcome, detail] = bad ? ['crash', bad] : ['success', ''];
  } catch (e) {
    if (timedOut) [outcome, detail] = ['hang', `no answer within ${ctx.timeLimit} ms`];
    else if (!(e instanceof JobError)) [outcome, detail] = ['crash', `not a JobError: ${(e as Error)?.stack ?? e}`];
    else if (e.error.code === 'internal' || e.error.code === 'worker-died') [outcome, detail] = ['crash', `${e.error.code}: ${e.message}\n${e.error.stack ?? ''}`];
    else if (!involved.some((f) => e.message.includes(f))) [outcome, detail] = ['crash', `message names no input file: ${e.message}`];
    else if (/\n\s+at /.test(e.message)) [outcome, detail] = ['crash', `message carries a stack trace: ${e.message}`];
    else [outcome, detail] = ['clear', e.message];
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  if (job.kind === 'audit') {
    // Nothing lost, nothing half-written, whatever happened.
    const partial = readdirSync(dir).filter((n) => n.includes('.partial-') || n.includes('.old-'));
    if (partial.length) [outcome, detail] = ['crash', `left behind: ${partial.join(', ')}; ${detail}`];
    if (outcome !== 'success' && previous !== undefined) {
      const now = existsSync(path.join(out, 'report.json')) ? readFileSync(path.join(out, 'report.json'), 'utf8') : '(missing)';
      if (now !== previous) [outcome, detail] = ['crash', `the previous report was changed: ${detail}`];
    }
  }
  if (!ctx.keep && (outcome === 'success' || outcome === 'clear')) rmSync(dir, { recursive: true, force: true });
  return { index, scenario: sc.name, role, job: job.kind, mutation, outcome, detail, ms };
}

// ---------------------------------------------------------------- driver

export interface FuzzOptions {
  cases: number;
  seed: number;
  timeLimit: number;
  parallel?: number;
  /** run only this case (keeps its files) */
  only?: number;
  keep?: boolean;
  workerPath?: string;
  log?: (line: string) => void;
  verbose?: boolean;
}

export interface FuzzSummary {
  cases: number;
  counts: Record<Outcome, number>;
  byJob: Record<string, Record<Outcome, number>>;
  failures: CaseResult[];
  scenarios: string[];
  seconds: number;
  tmp: string;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const log = o.log ?? ((s: string) => console.log(s));
  const t0 = performance.now();
  await h5wasm.ready;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ba-fuzz-'));
  const ctx: Ctx = { seed: o.seed, timeLimit: o.timeLimit, tmp, scenarios: await scenarios(tmp), workerPath: o.workerPath ?? path.join(root, 'dist/worker.mjs'), keep: !!o.keep || o.only !== undefined };
  const indices = o.only !== undefined ? [o.only] : Array.from({ length: o.cases }, (_, i) => i);
  const counts: Record<Outcome, number> = { success: 0, clear: 0, crash: 0, hang: 0 };
  const byJob: Record<string, Record<Outcome, number>> = {};
  const failures: CaseResult[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, o.parallel ?? 1) }, async () => {
    while (next < indices.length) {
      const res = await runCase(indices[next++], ctx);
      counts[res.outcome]++;
      (byJob[res.job] ??= { success: 0, clear: 0, crash: 0, hang: 0 })[res.outcome]++;
      const head = `#${res.index} ${res.scenario} ${res.role} ${res.job}: ${res.mutation} -> ${res.outcome.toUpperCase()} (${Math.round(res.ms)} ms)`;
      if (res.outcome === 'crash' || res.outcome === 'hang') {
        failures.push(res);
        log(`${head}\n    ${res.detail.split('\n').slice(0, 12).join('\n    ')}\n    files: ${path.join(tmp, `case-${res.index}`)}`);
      } else if (o.verbose || o.only !== undefined) log(`${head}${res.detail ? `\n    ${res.detail}` : ''}`);
    }
  }));
  if (!ctx.keep && !failures.length) rmSync(tmp, { recursive: true, force: true });
  return { cases: indices.length, counts, byJob, failures, scenarios: ctx.scenarios.map((s) => s.name), seconds: (performance.now() - t0) / 1000, tmp };
}

async function main() {
  const { values: v } = parseArgs({
    options: {
      cases: { type: 'string', default: '100' }, seed: { type: 'string', default: '1' }, 'time-limit': { type: 'string', default: '30000' },
      parallel: { type: 'string', default: '1' }, case: { type: 'string' }, keep: { type: 'boolean' }, verbose: { type: 'boolean' },
    },
  });
  const num = (s: string | undefined, name: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got "${s}"`);
    return n;
  };
  const opts: FuzzOptions = {
    cases: num(v.cases, 'cases'), seed: num(v.seed, 'seed'), timeLimit: num(v['time-limit'], 'time-limit'), parallel: num(v.parallel, 'parallel'),
    only: v.case === undefined ? undefined : num(v.case, 'case'), keep: v.keep, verbose: v.verbose,
  };
  console.log(`fuzz: ${opts.only !== undefined ? `case ${opts.only}` : `${opts.cases} cases`}, seed ${opts.seed}, time limit ${opts.timeLimit} ms`);
  const s = await runFuzz(opts);
  console.log(`scenarios: ${s.scenarios.join(', ')}`);
  for (const [job, c] of Object.entries(s.byJob).sort()) console.log(`  ${job.padEnd(8)} success ${c.success}, clear error ${c.clear}, crash ${c.crash}, hang ${c.hang}`);
  console.log(`fuzz: ${s.cases} cases in ${s.seconds.toFixed(0)} s: ${s.counts.success} successes, ${s.counts.clear} clear errors, ${s.counts.crash} crashes, ${s.counts.hang} hangs`);
  if (s.failures.length) console.log(`failing cases kept in ${s.tmp}`);
  process.exitCode = s.counts.crash || s.counts.hang ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 2;
  });
}
