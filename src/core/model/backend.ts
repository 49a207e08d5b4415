// Picks the fastest TensorFlow.js backend available: tfjs-node (native, an
// optional dependency that cannot install everywhere), else wasm, else cpu.
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors';
import type { Backend } from '../types';

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

async function select(want?: Backend | 'auto'): Promise<Backend> {
  const order: Backend[] = want && want !== 'auto' ? [want] : ['tensorflow', 'wasm', 'cpu'];
  for (const b of order) {
    const ok = b === 'tensorflow' ? await tryNode() : b === 'wasm' ? await tryWasm() : await tf.setBackend('cpu');
    if (ok) {
      await tf.ready();
      chosen = b;
      return b;
    }
  }
  throw new UserError(`the ${order.join('/')} TensorFlow.js backend is not available here${want === 'tensorflow' ? ' (@tensorflow/tfjs-node is not installed)' : ''}`, undefined, 'no-backend');
}

export { tf };
