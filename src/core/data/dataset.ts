// Streams images from lab-layout HDF5 files (`data` (N,3,H,W) or (N,H,W,C),
// optional `label`) or PNG/JPEG files, as float32 NHWC batches. Values are
// fed as stored: the lab's model takes raw 0..255 pixels.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError } from '../errors';
import { closeQuietly, guard, isDataset, openH5, type H5Dataset, type H5File } from '../h5/file';
import type { DataSetInfo } from '../types';

export interface DataSource {
  info: DataSetInfo;
  labels?: Int32Array;
  /**
   * images [start, end) as float32 NHWC; with `asStored`, in the file's own axis order
   * (`info.axisOrder`), which saves a transpose for an engine that takes channels-first input.
   */
  read(start: number, end: number, asStored?: boolean): Float32Array;
  close(): void;
}

const NUMERIC = /^[<>|=]?[fiu]\d?$|^[<>|=]?[fdbBhHiIlLqQ]$/;

function decideAxes(shape: number[], input: number[], file: string): DataSetInfo['axisOrder'] {
  const [h, w, c] = input;
  const rest = shape.slice(1);
  const last = rest[0] === h && rest[1] === w && rest[2] === c;
  const first = rest[0] === c && rest[1] === h && rest[2] === w;
  if (last) return 'channels_last';
  if (first) return 'channels_first';
  throw new UserError(`data of shape (${shape.join(', ')}) does not fit the model input (${h}, ${w}, ${c}): expected (N, ${c}, ${h}, ${w}) or (N, ${h}, ${w}, ${c})`, file, 'data-mismatch');
}

export async function openDataset(file: string, inputShape: number[], classes?: number): Promise<DataSource> {
  if (/\.(png|jpe?g)$/i.test(file)) return openImage(file, inputShape);
  const f: H5File = await openH5(file);
  try {
    const data = guard(file, 'reading', () => f.get('data'));
    if (!isDataset(data)) {
      const keys = guard(file, 'listing', () => f.keys());
      if (keys.includes('data')) throw new UserError('its "data" entry cannot be read as a dataset (corrupt file?)', file, 'corrupt');
      throw new UserError(`has no "data" dataset (found: ${keys.slice(0, 8).join(', ') || 'nothing'}); expected the lab layout data/label`, file, 'no-data');
    }
    const shape = guard(file, 'reading "data"', () => data.shape ?? []);
    const dtype = guard(file, 'reading "data"', () => String(data.dtype));
    if (shape.length !== 4) throw new UserError(`"data" has shape (${shape.join(', ')}); expected 4 axes (N, C, H, W) or (N, H, W, C)`, file, 'data-mismatch');
    if (!NUMERIC.test(dtype)) throw new UserError(`"data" has non-numeric type ${dtype}`, file, 'data-mismatch');
    const n = shape[0];
    if (n === 0) throw new UserError('"data" is empty (0 images)', file, 'empty-data');
    const axisOrder = decideAxes(shape, inputShape, file);
    checkDeclaredSize(file, '"data"', shape, guard(file, 'reading "data"', () => (data as H5Dataset).metadata.size));
    const labels = readLabels(f, file, n, classes);
    const [h, w, c] = inputShape;
    const per = h * w * c;
    const info: DataSetInfo = { file, count: n, shape, dtype, axisOrder };
    return {
      info,
      labels,
      read(start, end, asStored = false) {
        let raw = guard(file, `reading images ${start}..${end}`, () => (data as H5Dataset).slice([[start, end]])) as unknown as ArrayLike<number>;
        // 64-bit integer pixels arrive as BigInt arrays, which Float32Array.set refuses.
        if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) raw = Array.from(raw as ArrayLike<bigint>, Number);
        const count = end - start;
        if (!raw || raw.length !== count * per) throw new UserError(`reading images ${start}..${end} returned ${raw?.length ?? 0} values, expected ${count * per} (truncated file?)`, file, 'corrupt');
        // One monomorphic pass over float32 values is ~2× faster than indexing the raw array of any type.
        const values = raw instanceof Float32Array ? raw : new Float32Array(raw);
        // With one channel, (N, C, H, W) and (N, H, W, C) are the same layout.
        const transpose = axisOrder === 'channels_first' && c > 1 && !asStored;
        const out = transpose ? new Float32Array(count * per) : values;
        if (!copyChecked(values, out, count, h * w, transpose ? c : 1)) {
          const i = out.findIndex((v) => !Number.isFinite(v));
          throw new UserError(`image ${start + Math.floor(i / per)} contains NaN or Inf values`, file, 'bad-data');
        }
        return out;
      },
      close: () => closeQuietly(f),
    };
  } catch (e) {
    closeQuietly(f);
    throw e;
  }
}

/**
 * Copies `count` images from (N, C, H, W) `src` to (N, H, W, C) `out` (with
 * `channels` 1, `out` may be `src`: only the check runs). False if any value is
 * NaN or infinite.
 */
function copyChecked(src: Float32Array, out: Float32Array, count: number, plane: number, channels: number): boolean {
  let bad = 0; // v - v is 0 for every finite v, NaN otherwise
  if (channels === 1) {
    for (let i = 0; i < src.length; i++) bad += src[i] - src[i];
    return bad === 0;
  }
  const per = plane * channels;
  for (let i = 0; i < count; i++) {
    const base = i * per;
    for (let ch = 0; ch < channels; ch++) {
      const from = base + ch * plane;
      for (let p = 0, o = base + ch; p < plane; p++, o += channels) {
        const v = src[from + p];
        out[o] = v;
        bad += v - v;
      }
    }
  }
  return bad === 0;
}

/**
 * A corrupt header (or a hostile file) can declare far more data than the file
 * holds; reading it would exhaust memory or run for hours. Deflate compresses
 * at most ~1032:1, so anything beyond that cannot be real stored data.
 */
function checkDeclaredSize(file: string, what: string, shape: number[], itemBytes: number) {
  const declared = shape.reduce((a, b) => a * b, 1) * itemBytes;
  const actual = statSync(file).size;
  if (declared > 1032 * actual + (1 << 20)) {
    throw new UserError(`${what} declares ${shape.join(' x ')} values (${(declared / 2 ** 30).toFixed(1)} GiB) but the file has only ${actual} bytes: corrupt header?`, file, 'corrupt');
  }
}

function readLabels(f: H5File, file: string, n: number, classes?: number): Int32Array | undefined {
  const ds = guard(file, 'reading labels', () => f.get('label') ?? f.get('labels'));
  if (!isDataset(ds)) return undefined;
  const shape = guard(file, 'reading "label"', () => ds.shape ?? []);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== n || (shape.length === 2 && shape[1] !== 1) || shape.length > 2) {
    throw new UserError(`"label" has shape (${shape.join(', ')}) but there are ${n} images`, file, 'data-mismatch');
  }
  if (!NUMERIC.test(guard(file, 'reading "label"', () => String(ds.dtype)))) throw new UserError(`"label" has non-numeric type ${ds.dtype}`, file, 'data-mismatch');
  const raw = guard(file, 'reading labels', () => ds.value) as ArrayLike<number | bigint>;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(raw[i]);
    if (!Number.isInteger(v) || v < 0) throw new UserError(`label ${i} is ${v}, not a class index`, file, 'bad-labels');
    if (classes !== undefined && v >= classes) throw new UserError(`label ${i} is ${v} but the model has only ${classes} classes (0..${classes - 1})`, file, 'bad-labels');
    out[i] = v;
  }
  return out;
}

/** A single PNG/JPEG as a one-image source; the name may carry a label (`..._label-43.png`). */
function openImage(file: string, inputShape: number[]): DataSource {
  let buf: Buffer;
  try {
    statSync(file);
    buf = readFileSync(file);
  } catch {
    throw new UserError('image file not found', file, 'not-found');
  }
  let width: number, height: number, rgba: Uint8Array;
  try {
    if (/\.png$/i.test(file)) {
      const png = PNG.sync.read(buf);
      ({ width, height } = png);
      rgba = png.data;
    } else {
      const img = jpeg.decode(buf, { useTArray: true, maxMemoryUsageInMB: 256, maxResolutionInMP: 50 });
      ({ width, height } = img);
      rgba = img.data;
    }
  } catch (e) {
    throw new UserError(`cannot decode image: ${(e as Error).message}`, file, 'bad-image');
  }
  const [h, w, c] = inputShape;
  if (height !== h || width !== w) throw new UserError(`image is ${width}x${height} but the model takes ${w}x${h}`, file, 'data-mismatch');
  if (c !== 3 && c !== 1) throw new UserError(`the model takes ${c} channels; images give 1 or 3`, file, 'data-mismatch');
  const out = new Float32Array(h * w * c);
  for (let p = 0; p < h * w; p++) {
    if (c === 3) for (let ch = 0; ch < 3; ch++) out[p * 3 + ch] = rgba[p * 4 + ch];
    else out[p] = 0.299 * rgba[p * 4] + 0.587 * rgba[p * 4 + 1] + 0.114 * rgba[p * 4 + 2];
  }
  const m = /label[-_=](\d+)/i.exec(path.basename(file));
  return {
    info: { file, count: 1, shape: [1, h, w, c], dtype: 'uint8', axisOrder: 'channels_last' },
    labels: m ? Int32Array.of(Number(m[1])) : undefined,
    read: () => out,
    close: () => {},
  };
}
