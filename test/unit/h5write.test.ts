// Round-trips the real Keras 2.15 fixture through our writer and compares the
// two files object by object: every attribute's datatype, shape and value and
// every dataset's path, datatype and contents. There is no Python/Keras here,
// so "the same bytes-level layout as h5py wrote" is the check we can make.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import h5wasm from 'h5wasm/node';
import { writeDatasetH5, writeKerasModelH5, type LayerWeights } from '../../src/core/h5/write';
import { tmpDir } from '../helpers';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.resolve(repoRoot, '../shared/fixtures/lab-badnet');
const skip = existsSync(fixtures) ? false : `fixtures not found at ${fixtures} (the shared lab files are not checked out here)`;
if (skip) console.log(`# SKIP h5write: ${skip}`);

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;

interface Described { kind: 'group' | 'dataset'; attrs: Record<string, unknown>; dtype?: unknown; value?: unknown }

/** Every object of the file as comparable plain data, keyed by path. */
function describe(f: H5File): Map<string, Described> {
  const out = new Map<string, Described>();
  const attrsOf = (o: H5Group | InstanceType<typeof h5wasm.Dataset>) => {
    const res: Record<string, unknown> = {};
    for (const [k, a] of Object.entries(o.attrs)) res[k] = { type: typeOf(a.metadata), value: norm(a.value) };
    return res;
  };
  const walk = (g: H5Group) => {
    out.set(g.path, { kind: 'group', attrs: attrsOf(g) });
    for (const k of g.keys()) {
      const o = g.get(k);
      if (o instanceof h5wasm.Group) walk(o);
      else if (o instanceof h5wasm.Dataset) {
        out.set(o.path, { kind: 'dataset', attrs: attrsOf(o), dtype: typeOf(o.metadata), value: norm(o.value) });
      } else assert.fail(`unexpected object at ${g.path}/${k}`);
    }
  };
  walk(f as unknown as H5Group);
  return out;
}

/** The datatype fields h5py/Keras care about (class, size, sign, string cset/vlen/pad, shape). */
function typeOf(m: any) {
  const t: Record<string, unknown> = { type: m.type, size: m.size, vlen: m.vlen, littleEndian: m.littleEndian, signed: m.signed, shape: m.shape };
  if (m.type === 3) Object.assign(t, { cset: m.cset, strpad: m.strpad });
  return t;
}

const norm = (v: unknown): unknown => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v);

/** Reads a Keras 2 full-model file the way Keras' legacy loader does. */
function readKerasModel(file: string) {
  const f = new h5wasm.File(file, 'r');
  try {
    const mw = f.get('model_weights') as H5Group;
    const names = mw.attrs.layer_names.value as string[];
    const layers: LayerWeights[] = names.map((layer) => {
      const g = mw.get(layer) as H5Group;
      const wn = g.attrs.weight_names.value;
      const weightNames = Array.isArray(wn) ? (wn as string[]) : [];
      return {
        layer,
        weights: weightNames.map((name) => {
          const d = g.get(name) as InstanceType<typeof h5wasm.Dataset>;
          return { name, shape: d.shape as number[], data: d.value as Float32Array };
        }),
      };
    });
    return {
      modelConfig: f.attrs.model_config.value as string,
      kerasVersion: f.attrs.keras_version.value as string,
      backend: f.attrs.backend.value as string,
      layers,
    };
  } finally {
    f.close();
  }
}

test('Keras model writer reproduces the Keras 2.15 fixture layout', { skip }, async () => {
  await h5wasm.ready;
  const src = path.join(fixtures, 'bd_net_pruned45_keras2.15.h5');
  const dir = tmpDir('h5write-');
  const m = readKerasModel(src);
  const out = path.join(dir, 'roundtrip.h5');
  await writeKerasModelH5(out, m.modelConfig, m.layers.filter((l) => l.weights.length > 0), { kerasVersion: m.kerasVersion, backend: m.backend });
  assert.deepEqual(readdirSync(dir), ['roundtrip.h5'], 'no temp file left behind');

  const a = new h5wasm.File(src, 'r');
  const b = new h5wasm.File(out, 'r');
  try {
    const da = describe(a);
    const db = describe(b);
    assert.deepEqual([...db.keys()].sort(), [...da.keys()].sort(), 'same groups and datasets');
    for (const [p, want] of da) {
      const got = db.get(p)!;
      if (p === '/') {
        // h5wasm builds UTF-8 strings from H5T_FORTRAN_S1 (space padded);
        // h5py's are null-terminated. Padding is unused for vlen strings.
        for (const k of ['backend', 'keras_version']) {
          const w = want.attrs[k] as any;
          const g = got.attrs[k] as any;
          assert.equal(w.type.strpad, 0);
          assert.equal(g.type.strpad, 2);
          assert.deepEqual({ ...g, type: { ...g.type, strpad: 0 } }, w, `/@${k}`);
        }
        const rest = (d: Described) => Object.fromEntries(Object.entries(d.attrs).filter(([k]) => k !== 'backend' && k !== 'keras_version'));
        assert.deepEqual(rest(got), rest(want), '/ attributes');
        continue;
      }
      assert.deepEqual(got, want, p);
    }
  } finally {
    a.close();
    b.close();
  }

  // The attribute shapes Keras' loader depends on, spelled out.
  const f = new h5wasm.File(out, 'r');
  try {
    const mw = f.get('model_weights') as H5Group;
    const empty = (mw.get('pool_1') as H5Group).attrs.weight_names;
    assert.deepEqual([empty.metadata.type, empty.metadata.size, empty.metadata.shape], [1, 8, [0]], 'empty weight_names is float64 (0,)');
    const ln = mw.attrs.layer_names.metadata;
    assert.deepEqual([ln.type, ln.vlen, ln.cset, ln.shape], [3, true, 0, [15]], 'layer_names is a vlen ASCII string array');
    assert.ok((mw.get('conv_3/conv_3/kernel:0') as InstanceType<typeof h5wasm.Dataset>) instanceof h5wasm.Dataset);
  } finally {
    f.close();
  }
});

test('Keras model writer rejects bad input and leaves no temp file', async () => {
  const dir = tmpDir('h5write-');
  const cfg = JSON.stringify({ class_name: 'Functional', config: { layers: [{ class_name: 'Dense', config: { name: 'fc' } }] } });
  const w = (name: string, n: number) => ({ name, shape: [n], data: new Float32Array(n) });
  const out = path.join(dir, 'm.h5');
  await assert.rejects(writeKerasModelH5(out, '{', []), /not valid JSON/);
  await assert.rejects(writeKerasModelH5(out, cfg, [{ layer: 'nope', weights: [] }]), /not in model_config/);
  await assert.rejects(writeKerasModelH5(out, cfg, [{ layer: 'fc', weights: [{ name: 'fc/bias:0', shape: [3], data: new Float32Array(2) }] }]), /does not match/);
  // Fails half-way through the HDF5 file: the temp file must go.
  await assert.rejects(writeKerasModelH5(out, cfg, [{ layer: 'fc', weights: [w('fc/bias:0', 2), w('fc/bias:0', 2)] }]), /given twice/);
  assert.deepEqual(readdirSync(dir), []);
  await assert.rejects(writeKerasModelH5(path.join(dir, 'no/such/dir/m.h5'), cfg, []), /cannot create/);
  await writeKerasModelH5(out, cfg, [{ layer: 'fc', weights: [w('fc/kernel:0', 4), w('fc/bias:0', 2)] }], { trainingConfig: '{}' });
  assert.deepEqual(readdirSync(dir), ['m.h5']);
});

test('dataset writer reproduces the lab data layout', { skip }, async () => {
  await h5wasm.ready;
  const src = new h5wasm.File(path.join(fixtures, 'faces_clean.h5'), 'r');
  const data = (src.get('data') as InstanceType<typeof h5wasm.Dataset>).value as Float64Array;
  const label = (src.get('label') as InstanceType<typeof h5wasm.Dataset>).value as Float64Array;
  const want = describe(src);
  src.close();
  const dir = tmpDir('h5write-');
  const out = path.join(dir, 'faces.h5');
  await writeDatasetH5(out, data, [5, 3, 55, 47], label);
  const f = new h5wasm.File(out, 'r');
  assert.deepEqual(describe(f), want);
  f.close();

  // uint8 + gzip, chunked by rows: values and dtype come back unchanged.
  const u8 = Uint8Array.from(data, (v) => Math.round(v));
  const outz = path.join(dir, 'faces_u8.h5');
  await writeDatasetH5(outz, u8, [5, 3, 55, 47], label, { compression: 6 });
  const z = new h5wasm.File(outz, 'r');
  const d = z.get('data') as InstanceType<typeof h5wasm.Dataset>;
  assert.equal(d.dtype, '<B');
  assert.deepEqual(d.shape, [5, 3, 55, 47]);
  assert.deepEqual(d.metadata.chunks, [5, 3, 55, 47]);
  assert.deepEqual(d.filters.map((x: { id: number }) => x.id), [1]);
  assert.deepEqual(Array.from(d.value as Uint8Array), Array.from(u8));
  assert.deepEqual(Array.from((z.get('label') as InstanceType<typeof h5wasm.Dataset>).value as Float64Array), Array.from(label));
  z.close();

  await writeDatasetH5(path.join(dir, 'nolabel.h5'), new Float32Array(6), [2, 3]);
  const nl = new h5wasm.File(path.join(dir, 'nolabel.h5'), 'r');
  assert.deepEqual(nl.keys(), ['data']);
  nl.close();
  await assert.rejects(writeDatasetH5(path.join(dir, 'bad.h5'), new Float32Array(6), [2, 3], [1, 2, 3]), /label has 3 rows/);
});
