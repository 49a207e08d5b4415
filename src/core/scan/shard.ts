// A scan shard does the share of the scan it is handed, one item at a time, on
// its own copy of the model and images: a group of channels to stimulate, a
// channel's trigger to reverse, a label's trigger to reconstruct. The scan runs
// one per core (wasm is single-threaded in Node), in this process or in shard
// processes.
import * as tf from '@tensorflow/tfjs-core';
import { openDataset, type DataSource } from '../data/dataset';
import { loadRunnable } from '../runnable';
import type { Net } from '../model/net';
import type { Backend, KernelLayout } from '../types';
import { InputGradient } from './backprop';
import { reverseChannel, type ChannelReversal } from './neuron';
import { respond, type ChannelResponses } from './stimulate';
import { reconstruct, type ImageSet, type Reconstruction, type ReconstructSettings } from './trigger';

export interface ScanShardInit {
  model: string;
  arch?: string;
  backend?: Backend;
  /** ONNX Runtime threads in this shard (the shards split the cores) */
  threads?: number;
  /** ONNX Runtime's kernel layout, the main process's: every process of a scan rounds alike */
  kernels: KernelLayout;
  clean: string;
  /** images the trigger is optimised on */
  optimise: number[];
  /** images its attack rate is measured on, with their labels (or B's predictions) */
  heldOut: number[];
  heldOutLabels: number[];
  settings: ReconstructSettings;
  /** the stimulated Conv2D, whose channels are reversed, and its channel count */
  conv: string;
  channels: number;
  /** the cache point's map (height, width), where sites are placed */
  cacheMap: [number, number];
}

/** What the stimulation runs on: the clean images' cache, B's labels for them, and the levels. */
export interface StimulationCache {
  cachePoint: string;
  cache: Float32Array;
  shape: [number, number, number, number];
  cleanPred: Int32Array;
  levels: number[];
  batchRows: number;
}

export interface ScanShardApi {
  init(req: ScanShardInit): Promise<void>;
  /** Keeps the stimulation's inputs, sent once for every share of channels. */
  stimulationCache(req: StimulationCache): Promise<void>;
  stimulate(channels: number[]): Promise<ChannelResponses>;
  /** each of `channels` at each position of the map on its own */
  stimulateSites(channels: number[]): Promise<ChannelResponses>;
  reconstruct(label: number): Promise<Reconstruction>;
  /** the trigger of a channel (over its whole map), or of a site of it at `position` */
  reverseChannel(channel: number, position?: [number, number]): Promise<ChannelReversal>;
  cancel(): void;
  dispose(): Promise<void>;
}

/** Images at `indices` as one NHWC float32 array (consecutive indices are read together). */
export function readImages(src: DataSource, indices: number[], per: number): Float32Array {
  const out = new Float32Array(indices.length * per);
  let i = 0;
  while (i < indices.length) {
    let j = i + 1;
    while (j < indices.length && indices[j] === indices[j - 1] + 1) j++;
    out.set(src.read(indices[i], indices[j - 1] + 1), i * per);
    i = j;
  }
  return out;
}

export class ScanShard implements ScanShardApi {
  private net?: Net;
  private top?: InputGradient;
  private inner?: InputGradient;
  private channels = 0;
  private map: [number, number] = [0, 0];
  private cacheMap: [number, number] = [0, 0];
  /** the conv's output on the clean optimisation images, once per shard */
  private clean?: Float32Array;
  private images?: ImageSet;
  private heldOut?: ImageSet;
  private heldOutLabels = new Int32Array(0);
  private settings?: ReconstructSettings;
  private stimulation?: StimulationCache;
  private abort = new AbortController();

  async init(req: ScanShardInit): Promise<void> {
    const { net } = await loadRunnable(req.model, req.arch, req.backend, { threads: req.threads, kernels: req.kernels });
    this.net = net;
    this.top = new InputGradient(net);
    this.inner = new InputGradient(net, { head: req.conv, throughHead: true });
    this.channels = req.channels;
    const [mh, mw] = net.shapes.get(req.conv)!;
    this.map = [mh, mw];
    this.cacheMap = req.cacheMap;
    const shape = net.graph.inputShape as [number, number, number];
    const per = shape[0] * shape[1] * shape[2];
    let src: DataSource | undefined;
    try {
      src = await openDataset(req.clean, shape, net.classes);
      this.images = { pixels: readImages(src, req.optimise, per), count: req.optimise.length };
      this.heldOut = { pixels: readImages(src, req.heldOut, per), count: req.heldOut.length };
    } finally {
      src?.close();
    }
    this.heldOutLabels = Int32Array.from(req.heldOutLabels);
    this.settings = req.settings;
  }

  async stimulationCache(req: StimulationCache): Promise<void> {
    this.stimulation = req;
  }

  stimulate(channels: number[], sites = false): Promise<ChannelResponses> {
    if (!this.top || !this.stimulation) throw new Error('scan shard stimulated before init and stimulationCache');
    return respond({ ...this.stimulation, top: this.top, channels, sites, signal: this.abort.signal });
  }

  stimulateSites(channels: number[]): Promise<ChannelResponses> {
    return this.stimulate(channels, true);
  }

  reconstruct(label: number): Promise<Reconstruction> {
    if (!this.top || !this.images || !this.heldOut || !this.settings) throw new Error('scan shard used before init');
    return reconstruct({
      top: this.top, images: this.images, heldOut: this.heldOut, heldOutLabels: this.heldOutLabels, signal: this.abort.signal,
    }, label, this.settings);
  }

  async reverseChannel(channel: number, position?: [number, number]): Promise<ChannelReversal> {
    if (!this.top || !this.inner || !this.images || !this.heldOut || !this.settings) throw new Error('scan shard used before init');
    this.clean ??= await this.inner.forward(this.images.pixels, this.images.count);
    return reverseChannel({
      inner: this.inner, channels: this.channels, map: this.map, cacheMap: this.cacheMap, clean: this.clean, top: this.top, images: this.images,
      heldOut: this.heldOut, heldOutLabels: this.heldOutLabels, signal: this.abort.signal,
    }, channel, this.settings, position);
  }

  cancel() {
    this.abort.abort();
  }

  async dispose() {
    this.top?.dispose();
    this.inner?.dispose();
    this.net?.dispose();
  }
}
