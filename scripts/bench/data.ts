// Lab-size benchmark data in the lab's exact layout, generated once (seeded)
// into bench/data/ and reused: valid.h5 and bd_valid.h5 with 11,547 float64
// images each, test.h5 and bd_test.h5 with 12,830 float32 images each.
// Images are varied copies (shifts, blends, brightness, noise) of the real
// fixture faces, so the real BadNet's channels behave as on real data; clean
// labels are B's own predictions, poisoned rows carry the target 0.
import h5wasm from 'h5wasm/node';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openDataset } from '../../src/core/data/dataset';
import { loadRunnable } from '../../src/core/runnable';

export interface BenchModel {
  model: string;
  arch?: string;
  /** images (NHWC float32) the variants are made from */
  cleanBase: string;
  poisonedBase: string;
}

export const SIZES = { valid: 11547, test: 12830 };

function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function readAll(file: string, shape: number[]) {
  const src = await openDataset(file, shape);
  const x = src.read(0, src.info.count);
  src.close();
  return { x, n: src.info.count };
}

/** One variant of base image `a` (blended with `b`), as channels-first rows. */
function variant(out: Float64Array | Float32Array, at: number, base: Float32Array, a: number, b: number, [h, w, c]: number[], rnd: () => number) {
  const per = h * w * c;
  const mix = rnd() * 0.3;
  const dx = Math.floor(rnd() * 5) - 2, dy = Math.floor(rnd() * 5) - 2;
  const gain = 0.85 + rnd() * 0.3;
  for (let y = 0; y < h; y++) {
    const sy = Math.min(h - 1, Math.max(0, y + dy));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(w - 1, Math.max(0, x + dx));
      for (let ch = 0; ch < c; ch++) {
        const i = (sy * w + sx) * c + ch;
        const v = ((1 - mix) * base[a * per + i] + mix * base[b * per + i]) * gain + (rnd() + rnd() + rnd() - 1.5) * 8;
        out[at + ch * h * w + y * w + x] = Math.round(Math.min(255, Math.max(0, v)));
      }
    }
  }
}

async function writeSet(file: string, count: number, float64: boolean, base: Float32Array, baseCount: number, shape: number[], labelOf: ((rows: Float32Array, n: number) => Int32Array) | number, seed: number) {
  const [h, w, c] = shape;
  const per = h * w * c;
  const rnd = mulberry32(seed);
  const tmp = `${file}.partial`;
  rmSync(tmp, { force: true });
  const f = new h5wasm.File(tmp, 'w');
  const rows = 512;
  const labels = new Float64Array(count);
  let ds: InstanceType<typeof h5wasm.Dataset> | undefined;
  for (let s = 0; s < count; s += rows) {
    const n = Math.min(count, s + rows) - s;
    const chunk = float64 ? new Float64Array(n * per) : new Float32Array(n * per);
    for (let i = 0; i < n; i++) variant(chunk, i * per, base, Math.floor(rnd() * baseCount), Math.floor(rnd() * baseCount), shape, rnd);
    if (typeof labelOf === 'number') labels.fill(labelOf, s, s + n);
    else {
      // B labels the clean images: transpose the chunk to NHWC for the model.
      const nhwc = new Float32Array(n * per);
      for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) nhwc[i * per + p * c + ch] = chunk[i * per + ch * h * w + p];
      labels.set(labelOf(nhwc, n), s);
    }
    if (!ds) {
      ds = f.create_dataset({ name: 'data', data: chunk, shape: [n, c, h, w], maxshape: [null, c, h, w], chunks: [64, c, h, w], dtype: float64 ? '<d' : '<f' });
    } else {
      ds.resize([s + n, c, h, w]);
      ds.write_slice([[s, s + n]], chunk);
    }
  }
  f.create_dataset({ name: 'label', data: labels, shape: [count], dtype: '<d' });
  f.close();
  renameSync(tmp, file);
}

type BenchSet = 'cleanValid' | 'poisonedValid' | 'cleanTest' | 'poisonedTest';

/**
 * The bench's data files in `dir`, generating the missing ones among `only` (default all four).
 * `sizes`: images per set (the lab's by default; `npm run bench -- --images N` for a quick check).
 */
export async function ensureBenchData(dir: string, m: BenchModel, log: (s: string) => void = console.log, sizes = SIZES, only?: BenchSet[]): Promise<Record<BenchSet, string>> {
  mkdirSync(dir, { recursive: true });
  const files = { cleanValid: path.join(dir, 'valid.h5'), poisonedValid: path.join(dir, 'bd_valid.h5'), cleanTest: path.join(dir, 'test.h5'), poisonedTest: path.join(dir, 'bd_test.h5') };
  const wanted = (key: BenchSet) => !only || only.includes(key);
  if ((Object.keys(files) as BenchSet[]).every((k) => !wanted(k) || existsSync(files[k]))) return files;
  await h5wasm.ready;
  const { net } = await loadRunnable(m.model, m.arch);
  const shape = net.graph.inputShape;
  const clean = await readAll(m.cleanBase, shape);
  const poisoned = await readAll(m.poisonedBase, shape);
  const labelByModel = (rows: Float32Array, n: number) => {
    const x = tf.tensor4d(rows, [n, ...shape] as [number, number, number, number]);
    const p = tf.tidy(() => tf.argMax(net.predict(x), -1));
    const out = p.dataSync() as Int32Array;
    tf.dispose([x, p]);
    return Int32Array.from(out);
  };
  const plan: [keyof typeof files, number, boolean, typeof clean, ((r: Float32Array, n: number) => Int32Array) | number, number][] = [
    ['cleanValid', sizes.valid, true, clean, labelByModel, 1],
    ['poisonedValid', sizes.valid, true, poisoned, 0, 2],
    ['cleanTest', sizes.test, false, clean, labelByModel, 3],
    ['poisonedTest', sizes.test, false, poisoned, 0, 4],
  ];
  for (const [key, count, f64, base, labels, seed] of plan) {
    if (existsSync(files[key]) || !wanted(key)) continue;
    const t0 = performance.now();
    await writeSet(files[key], count, f64, base.x, base.n, shape, labels, seed);
    log(`generated ${files[key]} (${count} images, ${f64 ? 'float64' : 'float32'}) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  net.dispose();
  return files;
}
