// Picks the fastest engine available: ONNX Runtime's native CPU kernels for the
// forward passes (with tfjs on wasm beside it for the rest), else tfjs-node
// (native, an optional dependency that cannot install everywhere), else tfjs
// on wasm, else on plain JS.
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors';
import type { Backend } from '../types';
import { loadOnnxRuntime } from './onnx/engine';

void version_cpu; // keeps the cpu backend's registration in the bundle

let chosen: Backend | undefined;
let pending: Promise<Backend> | undefined;

async function tryNode(): Promise<boolean> {
  try {
    // Kept out of the bundle: resolved from node_modules at run time when installed.
    const name = '@tensorflow/tfjs-node';
    await import(/* @vite-ignore */ name);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  // In a bundle the .wasm files sit next to it (scripts/build.mjs copies them).
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (existsSync(path.join(here, 'tfjs-backend-wasm-simd.wasm'))) setWasmPaths(here + path.sep);
  try {
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/** Initialises tfjs once per process; `want` forces one backend (an error if unavailable). */
export async function initBackend(want?: Backend | 'auto'): Promise<Backend> {
  // Concurrent callers share one initialisation: tfjs's engine is not re-entrant here.
  while (pending) await pending.catch(() => undefined);
  if (chosen && (!want || want === 'auto' || want === chosen)) return chosen;
  pending = select(want);
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

/** ONNX Runtime runs the forward passes and the scan's input gradients; tfjs (wasm, else cpu) builds the Net and runs training and the rest. */
async function tryOnnx(): Promise<boolean> {
  return (await loadOnnxRuntime()) && ((await tryWasm()) || (await tf.setBackend('cpu')));
}

const TRY: Record<Backend, () => Promise<boolean>> = {
  onnxruntime: tryOnnx,
  tensorflow: tryNode,
  wasm: tryWasm,
  cpu: () => tf.setBackend('cpu'),
};

/** The tfjs backend underneath (wasm or cpu under onnxruntime): what a model without an ONNX translation runs on. */
export const tfjsBackend = () => tf.getBackend() as Backend;

async function select(want?: Backend | 'auto'): Promise<Backend> {
  // BACKDOOR_AUDIT_BACKEND picks the backend wherever no caller does (the tests run each on both).
  if (!want || want === 'auto') want = (process.env.BACKDOOR_AUDIT_BACKEND || 'auto') as Backend | 'auto';
  if (want !== 'auto' && !(want in TRY)) throw new UserError(`unknown backend "${want}" (expected auto, ${Object.keys(TRY).join(', ')})`, undefined, 'no-backend');
  const order: Backend[] = want !== 'auto' ? [want] : ['onnxruntime', 'tensorflow', 'wasm', 'cpu'];
  for (const b of order) {
    const ok = await TRY[b]();
    if (ok) {
      await tf.ready();
      chosen = b;
      return b;
    }
  }
  const why = want === 'tensorflow' ? ' (@tensorflow/tfjs-node is not installed)' : want === 'onnxruntime' ? ' (onnxruntime-node is not installed or does not load on this platform)' : '';
  throw new UserError(`the ${order.join('/')} backend is not available here${why}`, undefined, 'no-backend');
}

export { tf };
