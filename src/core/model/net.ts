// Runs a Keras layer graph with tfjs. Any layer's output can be requested,
// and any layer's output can be supplied instead of computed: the audit feeds
// cached (and masked) activations of the pruned layer straight into the top.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { LayerNode, ModelGraph } from '../keras/config';
import type { LoadedModel } from '../keras/load';
import { buildLayer, type LayerFn, type Param } from './layers';
import type { OnnxEngine } from './onnx/engine';

export class Net {
  readonly graph: ModelGraph;
  readonly byName: Map<string, LayerNode>;
  /** output shapes without the batch axis, found by running one zero image */
  readonly shapes = new Map<string, number[]>();
  private readonly fns = new Map<string, LayerFn>();
  private readonly owned: tf.Tensor[] = [];
  private readonly consumers = new Map<string, string[]>();
  /** Conv2D/Dense kernels and biases as variables, when built trainable */
  readonly params: Param[] = [];
  /** Set when forward passes run on ONNX Runtime (see runnable.ts); tfjs stays for everything else. */
  onnx?: OnnxEngine;

  constructor(readonly model: LoadedModel, trainable = false) {
    this.graph = model.graph;
    this.byName = new Map(this.graph.layers.map((l) => [l.name, l]));
    for (const l of this.graph.layers) for (const src of l.inbound) this.consumers.set(src, [...(this.consumers.get(src) ?? []), l.name]);
    const stray = [...model.weights.keys()].filter((n) => !this.byName.has(n));
    if (stray.length) throw new UserError(`weights name layer(s) the architecture does not have: ${stray.join(', ')}`, model.file, 'weights-mismatch');
    try {
      for (const l of this.graph.layers) {
        const built = buildLayer(l, model.weights.get(l.name), trainable);
        this.fns.set(l.name, built.fn);
        this.owned.push(...built.tensors);
        this.params.push(...built.params);
      }
      const probe = tf.zeros([1, ...this.graph.inputShape]);
      const outs = this.run(probe, this.graph.layers.map((l) => l.name));
      for (const [name, t] of outs) this.shapes.set(name, t.shape.slice(1));
      tf.dispose([probe, ...outs.values()]);
    } catch (e) {
      try {
        this.dispose();
      } catch { /* a failing backend can fail to free too; report the first error */ }
      if (e instanceof UserError) throw new UserError(e.message.replace(/^.*?: (?=layer)/, ''), model.archFile ?? model.file, e.code);
      throw new UserError(`cannot run the model: ${(e as Error).message}`, model.file, 'bad-model');
    }
  }

  get outputName(): string {
    return this.graph.outputs[0];
  }
  get classes(): number {
    const s = this.shapes.get(this.outputName)!;
    return s[s.length - 1];
  }
  consumersOf(name: string): string[] {
    return this.consumers.get(name) ?? [];
  }

  /**
   * Computes the requested layers' outputs. `given` supplies outputs of some
   * layers (e.g. cached activations); only what the requested layers need is run.
   * The returned tensors belong to the caller.
   */
  run(input: tf.Tensor | undefined, wanted: string[], given: Map<string, tf.Tensor> = new Map()): Map<string, tf.Tensor> {
    const outs = tf.tidy(() => {
      const values = new Map<string, tf.Tensor>(given);
      const inputName = this.graph.inputs[0];
      const compute = (name: string): tf.Tensor => {
        const have = values.get(name);
        if (have) return have;
        const node = this.byName.get(name);
        if (!node) throw new UserError(`no layer named "${name}"`, this.model.file, 'bad-layer');
        let out: tf.Tensor;
        if (name === inputName) {
          if (!input) throw new Error(`layer ${name} needs the model input, which was not given`);
          out = input;
        } else {
          out = this.fns.get(name)!(node.inbound.map(compute));
        }
        values.set(name, out);
        return out;
      };
      return wanted.map(compute); // tidy keeps what it returns, frees the rest
    });
    return new Map(wanted.map((w, i) => [w, outs[i]]));
  }

  /**
   * Forward pass on plain arrays, through ONNX Runtime when attached, else tfjs:
   * `fetches` for `n` rows, given `feeds` (layer outputs or the model input,
   * channels-last, shaped as in `shapes`; `inputChannelsFirst`: the model input is
   * (N, C, H, W), ONNX Runtime only). The arrays returned belong to the caller.
   */
  async compute(feeds: Record<string, Float32Array>, n: number, fetches: string[], inputChannelsFirst = false): Promise<Map<string, Float32Array>> {
    if (this.onnx) return this.onnx.run(feeds, n, fetches, inputChannelsFirst);
    if (inputChannelsFirst) throw new Error('tfjs takes channels-last images only');
    const inputName = this.graph.inputs[0];
    const tensorOf = (name: string) => tf.tensor(feeds[name], [n, ...this.shapes.get(name)!]);
    const input = feeds[inputName] ? tensorOf(inputName) : undefined;
    const given = new Map(Object.keys(feeds).filter((k) => k !== inputName).map((k) => [k, tensorOf(k)]));
    try {
      const outs = this.run(input, fetches, given);
      const arrays = new Map(fetches.map((f) => [f, outs.get(f)!.dataSync() as Float32Array]));
      tf.dispose([...outs.values()]);
      return arrays;
    } finally {
      tf.dispose([...(input ? [input] : []), ...given.values()]);
    }
  }

  /** Softmax (or whatever the last layer emits) for a batch of images (N,H,W,C). */
  predict(x: tf.Tensor): tf.Tensor2D {
    return this.run(x, [this.outputName]).get(this.outputName) as tf.Tensor2D;
  }

  /** `name` and every layer it depends on, each after its inputs. */
  layersUpTo(name: string): LayerNode[] {
    const order: LayerNode[] = [];
    const seen = new Set<string>();
    const visit = (n: string) => {
      if (seen.has(n)) return;
      seen.add(n);
      const node = this.byName.get(n)!;
      node.inbound.forEach(visit);
      order.push(node);
    };
    visit(name);
    return order;
  }

  /** Layers that must be recomputed when `name`'s output changes (all that depend on it). */
  downstreamOf(name: string): Set<string> {
    const out = new Set<string>();
    const visit = (n: string) => {
      for (const c of this.consumersOf(n)) if (!out.has(c)) { out.add(c); visit(c); }
    };
    visit(name);
    return out;
  }

  dispose() {
    void this.onnx?.dispose();
    this.onnx = undefined;
    tf.dispose(this.owned);
    this.owned.length = 0;
  }
}
