// All of an audit's files are written into a fresh sibling folder and swapped
// in with renames once complete: a failed or cancelled run leaves the previous
// report untouched and no partial file behind.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeKerasModelH5, type LayerWeights } from '../h5/write';
import type { LoadedModel } from '../keras/load';

/** B'_X: `model` with output channels `channels` of `conv` zeroed (kernel slice and bias). */
export function withPrunedChannels(model: LoadedModel, conv: string, channels: number[]): LoadedModel {
  const weights = new Map(model.weights);
  weights.set(conv, (model.weights.get(conv) ?? []).map((w) => {
    if (w.name !== 'kernel' && w.name !== 'bias') return w;
    const data = Float32Array.from(w.data);
    const c = w.shape[w.shape.length - 1];
    const zero = new Uint8Array(c);
    for (const ch of channels) zero[ch] = 1;
    for (let i = 0; i < data.length; i++) if (zero[i % c]) data[i] = 0;
    return { ...w, data };
  }));
  return { ...model, weights };
}

export const partialDir = (out: string, pid = process.pid) => `${out}.partial-${pid}`;

export class OutputFolder {
  readonly tmp: string;
  constructor(readonly out: string) {
    this.tmp = partialDir(out);
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  writeText(name: string, text: string) {
    writeFileSync(path.join(this.tmp, name), text);
  }

  /** B with `channels` of `conv` zeroed (kernel slice and bias), as a Keras 2 full-model .h5. */
  async writePrunedModel(name: string, model: LoadedModel, conv: string, channels: number[]) {
    await this.writeModel(name, withPrunedChannels(model, conv, channels));
  }

  /** A model (its config and weights) as a Keras 2 full-model .h5. */
  async writeModel(name: string, model: LoadedModel) {
    const layers: LayerWeights[] = model.graph.layers.map((l) => ({
      layer: l.name,
      // Keras 2 naming: "<layer>/<weight>:0"
      weights: (model.weights.get(l.name) ?? []).map((w) => ({ name: `${l.name}/${w.name}:0`, shape: w.shape, data: w.data })),
    }));
    await writeKerasModelH5(path.join(this.tmp, name), model.configText, layers, { kerasVersion: model.kerasVersion?.startsWith('3') ? model.kerasVersion : '2.15.0' });
  }

  /** Swap the finished folder in place of the old one. */
  commit() {
    const old = `${this.out}.old-${process.pid}`;
    mkdirSync(path.dirname(this.out), { recursive: true });
    if (existsSync(this.out)) renameSync(this.out, old);
    renameSync(this.tmp, this.out);
    rmSync(old, { recursive: true, force: true });
  }

  abandon() {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
