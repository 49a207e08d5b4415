// Thin, safe access to HDF5 files through h5wasm's Node build, which reads
// from disk on demand (datasets are sliced, never loaded whole).
import h5wasm from 'h5wasm/node';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { UserError } from '../errors';

export type H5File = InstanceType<typeof h5wasm.File>;
export type H5Group = InstanceType<typeof h5wasm.Group>;
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

let ready: Promise<unknown> | undefined;
export function h5ready(): Promise<unknown> {
  return (ready ??= h5wasm.ready);
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5 puts its signature at 0, 512, 1024, 2048, ... (a user block may precede it). */
export function looksLikeHdf5(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
      readSync(fd, buf, 0, 8, off);
      if (buf.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

export async function openH5(file: string): Promise<H5File> {
  await h5ready();
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UserError('not a file', file, 'not-found');
    size = st.size;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError('file not found or not readable', file, 'not-found');
  }
  if (size < 8 || !looksLikeHdf5(file)) throw new UserError('not an HDF5 file (no HDF5 signature)', file, 'not-hdf5');
  let f: H5File;
  try {
    f = new h5wasm.File(file, 'r');
  } catch (e) {
    throw new UserError(`cannot open as HDF5 (truncated or corrupt?): ${(e as Error).message}`, file, 'corrupt');
  }
  if (!f.file_id || f.file_id < 0n) throw new UserError('cannot open as HDF5 (truncated or corrupt?)', file, 'corrupt');
  return f;
}

/** Calls into the HDF5 library throw plain errors on corrupt files: name the file. */
export function guard<T>(file: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${what} failed (corrupt file?): ${(e as Error).message ?? e}`, file, 'corrupt');
  }
}

/** Attribute strings may be fixed or variable length, bytes or str, scalar or 1-element. */
export function attrString(obj: { attrs: Record<string, { value: unknown }> }, name: string): string | undefined {
  const a = obj.attrs[name];
  if (!a) return undefined;
  return decodeText(a.value);
}

export function decodeText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v).replace(/\0+$/, '');
  if (Array.isArray(v) && v.length === 1) return decodeText(v[0]);
  return undefined;
}

export function attrStrings(obj: { attrs: Record<string, { value: unknown }> }, name: string): string[] | undefined {
  const a = obj.attrs[name];
  if (!a) return undefined;
  const v = a.value;
  if (v === null || v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map((x) => decodeText(x) ?? String(x));
  if (ArrayBuffer.isView(v) && !(v instanceof Uint8Array)) return [];
  if (typeof v === 'object' && Object.keys(v as object).length === 0) return []; // empty attribute
  const s = decodeText(v);
  return s === undefined ? [] : [s];
}

export function isDataset(x: unknown): x is H5Dataset {
  return x instanceof h5wasm.Dataset;
}
export function isGroup(x: unknown): x is H5Group {
  return x instanceof h5wasm.Group;
}
