// A shard holds a slice of each data set and answers the audit's questions
// about it. The layers below the cache point run once per image (in `load`);
// a sweep step only re-runs the top of the network, and only for the images
// whose newly pruned channel was not already at its pruned value.
import { openDataset, type DataSource } from '../data/dataset';
import { CancelledError } from '../errors';
import { loadRunnable } from '../runnable';
import type { Net } from '../model/net';
import { argMaxRows } from '../model/outputs';
import type { Backend, ChannelMaps, RankBy } from '../types';
import { GradientShard, type GradientWorker, type MicroBatch, type TrainSetup } from '../train/gradientShard';
import { Frontier } from './frontier';
import { makePlan, type PrunePlan } from './plan';

export interface ShardInit {
  model: string;
  arch?: string;
  backend?: Backend;
  layer?: string;
  rankBy: RankBy;
  batchSize: number;
  /** ONNX Runtime threads in this shard (the worker splits the cores between its shards) */
  threads?: number;
}

export interface ShardInfo {
  plan: Omit<PrunePlan, 'fill'> & { fill: number[] };
  classes: number;
  inputShape: number[];
  backend: Backend;
}

export interface LoadRequest {
  set: string;
  file: string;
  start: number;
  end: number;
  /** images from `start` that get spatial maps (for the report's heatmaps) */
  samples: number;
  source: 'clean' | 'poisoned';
}

export interface LoadResult {
  count: number;
  /** per channel, summed over images and positions of the rank layer / the conv layer */
  rankSums: number[];
  rankPositions: number;
  /** B's predictions on these images */
  predictions: Int32Array;
  labels?: Int32Array;
  samples: ChannelMaps[];
  seconds: number;
}

export interface Counts {
  count: number;
  /** prediction == label */
  correct: number;
  /** prediction == target */
  hits: number;
}

export interface EvalCounts {
  count: number;
  bad: Counts; // B alone
  masks: { pruned: Counts; good: Counts; flagged: number }[];
}

/** A shard also trains: a copy of B'_X that computes micro-batch gradients (see train/gradientShard.ts). */
export interface ShardApi extends GradientWorker {
  init(req: ShardInit): Promise<ShardInfo>;
  load(req: LoadRequest): Promise<LoadResult>;
  /** prune `channels` (cumulative) and count on the cached sets */
  step(channels: number[], target: number | undefined): Promise<Record<string, Counts>>;
  /** stream a (test) set once, scoring B, and B' and G for every mask */
  evaluate(req: Omit<LoadRequest, 'samples' | 'source' | 'set'>, masks: number[][], target: number | undefined, flaggedClass: number): Promise<EvalCounts>;
  dispose(): Promise<void>;
}

interface CachedSet {
  set: string;
  cache: Float32Array; // count x positions x channels (channels innermost)
  labels?: Int32Array;
  current: Int32Array; // predictions under the current mask
  /** pre-activations of the frontier layers under the current mask, `frontier.width` a row */
  pre?: Float32Array;
  /** per row, how many unpruned channels are away from their pruned value (0: the row is idle) */
  live: Int32Array;
}

export class Shard implements ShardApi {
  private net!: Net;
  private plan!: PrunePlan;
  private batch = 256;
  private readonly sets = new Map<string, CachedSet>();
  private pruned = new Set<number>();
  private frontier?: Frontier;
  private readonly trainer = new GradientShard();
  cancelled = false;

  trainBegin(setup: TrainSetup) { return this.trainer.trainBegin(setup); }
  trainGrads(batches: MicroBatch[]) { return this.trainer.trainGrads(batches); }
  trainApply(grads: Float32Array) { return this.trainer.trainApply(grads); }
  trainWeights() { return this.trainer.trainWeights(); }
  trainEnd() { return this.trainer.trainEnd(); }

  async init(req: ShardInit): Promise<ShardInfo> {
    const { net, backend } = await loadRunnable(req.model, req.arch, req.backend, { threads: req.threads });
    this.net = net;
    this.batch = req.batchSize;
    this.plan = makePlan(net, req.rankBy, req.layer);
    // BACKDOOR_AUDIT_NO_FRONTIER: every step recomputes the whole top (the reference the tests compare with).
    this.frontier = process.env.BACKDOOR_AUDIT_NO_FRONTIER ? undefined : await Frontier.find(net, this.plan);
    return {
      plan: { ...this.plan, fill: Array.from(this.plan.fill) },
      classes: net.classes,
      inputShape: net.graph.inputShape,
      backend,
    };
  }

  private checkCancelled() {
    if (this.cancelled) throw new CancelledError();
  }

  private get positions() {
    const s = this.plan.cacheShape;
    return s[0] * s[1];
  }

  /**
   * `fetches` for images [s, e) of `src` (the lower layers run once per image, on whichever
   * engine the net has). ONNX Runtime takes channels-first data as stored.
   */
  private forward(src: DataSource, s: number, e: number, fetches: string[]) {
    const asStored = Boolean(this.net.onnx) && src.info.axisOrder === 'channels_first';
    return this.net.compute({ [this.net.graph.inputs[0]]: src.read(s, e, asStored) }, e - s, fetches, asStored);
  }

  /**
   * What a batch of images is run for, in load and in evaluate alike (one ONNX Runtime
   * session, one memory arena). With a frontier, B's output comes from it: the top layers
   * run once either way, and ONNX Runtime gives the frontier's pre-activations in the same pass.
   */
  private get lowerFetches(): string[] {
    const { cachePoint, rankLayer } = this.plan;
    const top = this.frontier ? (this.net.onnx ? this.frontier.preNames : []) : [this.net.outputName];
    return [...new Set([cachePoint, rankLayer, ...top])];
  }

  async load(req: LoadRequest): Promise<LoadResult> {
    const t0 = performance.now();
    const { conv, cachePoint, rankLayer, channels } = this.plan;
    const src = await openDataset(req.file, this.net.graph.inputShape, this.net.classes);
    const n = req.end - req.start;
    const per = this.positions * channels;
    const cache = new Float32Array(n * per);
    const predictions = new Int32Array(n);
    const rankSums = new Float64Array(channels);
    const samples: ChannelMaps[] = [];
    const frontier = this.frontier;
    const pre = frontier && new Float32Array(n * frontier.width);
    const wanted = this.lowerFetches;
    const convShape = this.net.shapes.get(conv)!;
    try {
      for (let s = req.start; s < req.end; s += this.batch) {
        this.checkCancelled();
        const e = Math.min(req.end, s + this.batch);
        const m = e - s;
        const outs = await this.forward(src, s, e, wanted);
        const pooled = outs.get(cachePoint)!;
        cache.set(pooled, (s - req.start) * per);
        // Summed in float64 image by image, so the ranking does not depend on batch or chunk sizes.
        const ranked = outs.get(rankLayer)!;
        for (let i = 0; i < ranked.length; i += channels) for (let c = 0; c < channels; c++) rankSums[c] += ranked[i + c];
        if (frontier && pre) {
          const p = await frontier.preactivationsFrom(outs, m);
          pre.set(p, (s - req.start) * frontier.width);
          predictions.set(await frontier.labels(p, m), s - req.start);
        } else {
          predictions.set(argMaxRows(outs.get(this.net.outputName)!, m), s - req.start);
        }
        // The few images with spatial maps run again for the conv layer's whole output: fetching it
        // for every batch would move 4× the cache's data out of the engine for nothing.
        const want = Math.min(req.samples - samples.length, m);
        const maps = want > 0 ? (await this.forward(src, s, s + want, [conv])).get(conv)! : undefined;
        for (let i = 0; i < want; i++) {
          const idx = s + i;
          samples.push(toMaps(maps!, convShape, i, req.source, req.file, idx, src.labels?.[idx], predictions[idx - req.start]));
        }
        await yieldToEvents();
      }
    } finally {
      src.close();
    }
    const labels = src.labels?.slice(req.start, req.end);
    const live = Int32Array.from({ length: n }, (_, r) => this.activeChannels(cache, r).length);
    this.sets.set(`${req.set}@${req.start}`, { set: req.set, cache, labels, current: predictions.slice(), pre, live });
    const rs = this.net.shapes.get(rankLayer)!;
    return { count: n, rankSums: Array.from(rankSums), rankPositions: n * rs[0] * rs[1], predictions, labels, samples, seconds: (performance.now() - t0) / 1000 };
  }

  /** Top-of-network predictions for cached rows `rows` of `set` with `mask` applied. */
  private async predictRows(cache: Float32Array, rows: Int32Array | number[], mask: number[]): Promise<Int32Array> {
    const { cachePoint, channels, fill } = this.plan;
    const per = this.positions * channels;
    const out = new Int32Array(rows.length);
    for (let b = 0; b < rows.length; b += this.batch) {
      const m = Math.min(rows.length, b + this.batch) - b;
      const buf = new Float32Array(m * per);
      for (let i = 0; i < m; i++) {
        const r = rows[b + i];
        buf.set(cache.subarray(r * per, (r + 1) * per), i * per);
      }
      applyMask(buf, channels, mask, fill);
      const outs = await this.net.compute({ [cachePoint]: buf }, m, [this.net.outputName]);
      out.set(argMaxRows(outs.get(this.net.outputName)!, m), b);
    }
    return out;
  }

  async step(channels: number[], target: number | undefined): Promise<Record<string, Counts>> {
    this.checkCancelled();
    const added = channels.filter((c) => !this.pruned.has(c));
    const removed = [...this.pruned].filter((c) => !channels.includes(c));
    this.pruned = new Set(channels);
    const changed = [...added, ...removed];
    const frontier = this.frontier;
    const result: Record<string, Counts> = {};
    for (const set of this.sets.values()) {
      const rows = this.touched(set, added, removed);
      if (rows.length && frontier && set.pre) {
        // Idle rows take the all-pruned image's values (see Frontier.idleRow); the others shift.
        const moving: number[] = [];
        for (const r of rows) {
          if (set.live[r] > 0) moving.push(r);
          else {
            set.pre.set(frontier.idleRow, r * frontier.width);
            set.current[r] = frontier.idleLabel;
          }
        }
        for (let b = 0; b < moving.length; b += this.batch) {
          const part = moving.slice(b, b + this.batch);
          const change = this.changeOfRows(set.cache, part, added, removed);
          const after = frontier.shift(frontier.rowsOf(set.pre, part), part.length, change, changed);
          frontier.store(set.pre, part, after);
          const preds = await frontier.labels(after, part.length);
          part.forEach((r, k) => { set.current[r] = preds[k]; });
        }
      } else if (rows.length) {
        const preds = await this.predictRows(set.cache, rows, channels);
        rows.forEach((r, k) => { set.current[r] = preds[k]; });
      }
      const c = countOf(set.current, set.labels, target);
      result[set.set] = result[set.set] ? addCounts(result[set.set], c) : c;
      await yieldToEvents();
    }
    return result;
  }

  /** Whether channel `c` of row `r` of `values` is away from its pruned value anywhere. */
  private isActive(values: Float32Array, r: number, c: number): boolean {
    const { channels, fill } = this.plan;
    const per = this.positions * channels;
    for (let p = r * per + c; p < (r + 1) * per; p += channels) if (values[p] !== fill[c]) return true;
    return false;
  }

  private activeChannels(values: Float32Array, r: number): number[] {
    return Array.from({ length: this.plan.channels }, (_, c) => c).filter((c) => this.isActive(values, r, c));
  }

  /**
   * Rows where an added or removed channel is not already at its pruned value: only
   * those can change. Keeps each row's count of live channels up to date on the way.
   */
  private touched(set: CachedSet, added: number[], removed: number[]): number[] {
    const rows: number[] = [];
    for (let r = 0; r < set.live.length; r++) {
      let hit = false;
      for (const c of added) if (this.isActive(set.cache, r, c)) { hit = true; set.live[r]--; }
      for (const c of removed) if (this.isActive(set.cache, r, c)) { hit = true; set.live[r]++; }
      if (hit) rows.push(r);
    }
    return rows;
  }

  /** For shift(): each changed channel's cached value minus its pruned value, negated for channels put back. */
  private changeOfRows(cache: Float32Array, rows: number[], added: number[], removed: number[]): Float32Array {
    const [h, w] = this.plan.cacheShape;
    const C = this.plan.channels, hw = h * w, per = hw * C;
    const changed = [...added, ...removed];
    const k = changed.length;
    const out = new Float32Array(rows.length * hw * k);
    rows.forEach((r, i) => {
      changed.forEach((c, j) => {
        const sign = j < added.length ? 1 : -1, f = this.plan.fill[c];
        for (let p = 0; p < hw; p++) out[(i * hw + p) * k + j] = sign * (cache[r * per + p * C + c] - f);
      });
    });
    return out;
  }

  async evaluate(req: Omit<LoadRequest, 'samples' | 'source' | 'set'>, masks: number[][], target: number | undefined, flaggedClass: number): Promise<EvalCounts> {
    const { cachePoint } = this.plan;
    const frontier = this.frontier;
    const src = await openDataset(req.file, this.net.graph.inputShape, this.net.classes);
    const n = req.end - req.start;
    const labels = src.labels;
    const bad = new Int32Array(n);
    const prunedPreds = masks.map(() => new Int32Array(n));
    try {
      for (let s = req.start; s < req.end; s += this.batch) {
        this.checkCancelled();
        const e = Math.min(req.end, s + this.batch);
        const m = e - s;
        // On ONNX Runtime, load's fetches: its session is already there. tfjs computes only what is needed.
        const fetches = this.net.onnx ? this.lowerFetches : [cachePoint, ...(frontier ? [] : [this.net.outputName])];
        const outs = await this.forward(src, s, e, fetches);
        const pooled = outs.get(cachePoint)!;
        if (frontier) {
          // B, then each B' from the computed state whose pruned channels it contains (thresholds nest).
          const preB = await frontier.preactivationsFrom(outs, m);
          const labelsB = await frontier.labels(preB, m);
          bad.set(labelsB, s - req.start);
          const states = [{ mask: [] as number[], pre: preB, labels: labelsB }];
          const all = Array.from({ length: m }, (_, i) => i);
          const active = masks.length ? all.map((r) => this.activeChannels(pooled, r)) : [];
          for (const [k, mask] of masks.entries()) {
            const inMask = new Set(mask);
            const base = states.filter((st) => st.mask.every((c) => inMask.has(c))).reduce((x, y) => (y.mask.length > x.mask.length ? y : x));
            const extra = mask.filter((c) => !base.mask.includes(c));
            // A mask equal to an earlier one (two thresholds met at the same step) reuses its labels.
            let { pre, labels } = base;
            if (extra.length) {
              pre = frontier.shift(base.pre, m, this.changeOfRows(pooled, all, extra, []), extra);
              labels = await frontier.labels(pre, m);
              // Idle rows take the exact label (see Frontier.idleRow). Their pre-activations stay
              // inexact, but a mask built on this state holds its channels, so they stay idle there.
              active.forEach((cs, r) => { if (cs.every((c) => inMask.has(c))) labels[r] = frontier.idleLabel; });
            }
            prunedPreds[k].set(labels, s - req.start);
            states.push({ mask, pre, labels });
          }
        } else {
          bad.set(argMaxRows(outs.get(this.net.outputName)!, m), s - req.start);
          const rows = Array.from({ length: m }, (_, i) => i);
          for (const [k, mask] of masks.entries()) prunedPreds[k].set(await this.predictRows(pooled, rows, mask), s - req.start);
        }
        await yieldToEvents();
      }
    } finally {
      src.close();
    }
    const lab = labels?.subarray(req.start, req.end);
    return {
      count: n,
      bad: countOf(bad, lab, target),
      masks: prunedPreds.map((pp) => {
        const good = new Int32Array(n);
        let flagged = 0;
        for (let i = 0; i < n; i++) {
          if (pp[i] === bad[i]) good[i] = bad[i];
          else { good[i] = flaggedClass; flagged++; }
        }
        return { pruned: countOf(pp, lab, target), good: countOf(good, lab, target), flagged };
      }),
    };
  }

  async dispose() {
    await this.trainer.trainEnd();
    this.sets.clear();
    this.frontier?.dispose();
    this.net?.dispose();
  }
}

function applyMask(buf: Float32Array, channels: number, mask: number[], fill: Float32Array) {
  if (!mask.length) return;
  for (let base = 0; base < buf.length; base += channels) {
    for (const c of mask) buf[base + c] = fill[c];
  }
}

export const addCounts = (a: Counts, b: Counts): Counts => ({ count: a.count + b.count, correct: a.correct + b.correct, hits: a.hits + b.hits });

/** Predictions equal to the label (when labels are given) and to the target (when given). */
export function countOf(preds: Int32Array, labels: Int32Array | undefined, target: number | undefined): Counts {
  let correct = 0, hits = 0;
  for (let i = 0; i < preds.length; i++) {
    if (labels && preds[i] === labels[i]) correct++;
    if (target !== undefined && preds[i] === target) hits++;
  }
  return { count: preds.length, correct, hits };
}

/** Channel maps of image `i` of a batch's conv output (n, h, w, c). */
function toMaps(values: Float32Array, [h, w, c]: number[], i: number, source: ChannelMaps['source'], file: string, index: number, label: number | undefined, predicted: number): ChannelMaps {
  const hwc = new Float32Array(h * w * c);
  const base = i * h * w * c;
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) hwc[ch * h * w + p] = values[base + p * c + ch];
  let max = 0;
  for (const v of hwc) if (v > max) max = v;
  return { source, file, index, label, predicted, height: h, width: w, channels: c, values: Array.from(hwc, (v) => Math.round(v * 1e4) / 1e4), max };
}

export async function channelMapsOf(net: Net, conv: string, pixels: Float32Array, meta: Omit<ChannelMaps, 'height' | 'width' | 'channels' | 'values' | 'max' | 'predicted'>): Promise<ChannelMaps> {
  const outs = await net.compute({ [net.graph.inputs[0]]: pixels }, 1, [conv, net.outputName]);
  const predicted = argMaxRows(outs.get(net.outputName)!, 1)[0];
  return toMaps(outs.get(conv)!, net.shapes.get(conv)!, 0, meta.source, meta.file, meta.index, meta.label, predicted);
}

/** Lets IPC messages (cancel) through between batches. */
const yieldToEvents = () => new Promise<void>((r) => setImmediate(r));
