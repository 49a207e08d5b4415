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
  return (ready ??= h5wasm.ready.then((m) => {
    // By default HDF5 prints its whole error stack to stderr on each failure (20+
    // lines in the terminal for one truncated file) and carries on; make failures
    // exceptions instead, which guard() and openH5() shorten with h5Reason().
    (m as { activate_throwing_error_handler?: () => number }).activate_throwing_error_handler?.();
    return m;
  }));
}

/** The innermost cause of an HDF5 error stack ("truncated file: eof = ..."), else the message's first line. */
function h5Reason(e: unknown): string {
  const msg = String((e as Error)?.message ?? e);
  const causes = [...msg.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)/g)].map((m) => m[1].trim());
  return causes.at(-1) ?? msg.split('\n')[0];
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

// A corrupt file can make the HDF5 library abort (a WebAssembly RuntimeError).
// The wasm instance is unusable afterwards, so later reads in this process are
// refused with that reason instead of failing in confusing ways. The worker
// runs one job per process, so only the job that hit the bad file is affected.
let abortedOn: string | undefined;
const isAbort = (e: unknown) => e instanceof WebAssembly.RuntimeError || /^Aborted\(/.test(String((e as Error)?.message));

// A corrupt file can also send the HDF5 library into an endless loop, which no
// JavaScript timer on this thread can interrupt. When a watchdog thread is
// running (worker/watchdog.ts) it reads this shared state: [0] > 0 while an
// HDF5 call is in progress, [1] the second it began; then the file's name.
let activity: { state: Int32Array; name: Uint8Array } | undefined;
export function shareH5Activity(buf: SharedArrayBuffer): void {
  activity = { state: new Int32Array(buf, 0, 2), name: new Uint8Array(buf, 8) };
}
function during<T>(file: string, fn: () => T): T {
  if (!activity) return fn();
  const { state, name } = activity;
  if (Atomics.add(state, 0, 1) === 0) {
    name.fill(0);
    name.set(Buffer.from(file).subarray(0, name.length - 1));
    Atomics.store(state, 1, Math.floor(Date.now() / 1000));
  }
  try {
    return fn();
  } finally {
    Atomics.sub(state, 0, 1);
  }
}

/** Closes without throwing: after an abort, close() fails and would hide the real error. */
export function closeQuietly(f: { close(): unknown }): void {
  try {
    f.close();
  } catch { /* the error that got us here is the one to report */ }
}

export async function openH5(file: string): Promise<H5File> {
  await h5ready();
  if (abortedOn) throw new UserError(`cannot read: the HDF5 library stopped after the corrupt file ${abortedOn}; try again (a new process starts clean)`, file, 'h5-aborted');
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
    f = during(file, () => new h5wasm.File(file, 'r'));
  } catch (e) {
    if (isAbort(e)) abortedOn = file;
    throw new UserError(`cannot open as HDF5 (truncated or corrupt?): ${h5Reason(e)}`, file, 'corrupt');
  }
  if (!f.file_id || f.file_id < 0n) throw new UserError('cannot open as HDF5 (truncated or corrupt?)', file, 'corrupt');
  return f;
}

/** Calls into the HDF5 library throw plain errors on corrupt files: name the file. */
export function guard<T>(file: string, what: string, fn: () => T): T {
  try {
    return during(file, fn);
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (isAbort(e)) {
      abortedOn = file;
      throw new UserError(`${what} failed: the HDF5 library aborted on this file (corrupt?)`, file, 'corrupt');
    }
    throw new UserError(`${what} failed (corrupt file?): ${h5Reason(e)}`, file, 'corrupt');
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
