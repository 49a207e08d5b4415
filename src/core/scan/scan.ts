// The scan: is there a backdoor, which label does it serve, what does its
// trigger look like, from clean images alone. Stimulation (forward passes at
// the audit's layer) screens labels cheaply, as K-Arm advises for models with
// many labels; trigger reconstruction then decides, per Neural Cleanse.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { makePlan } from '../audit/plan';
import { OutputFolder } from '../audit/output';
import { openDataset } from '../data/dataset';
import { stamp, writeTrigger } from '../data/trigger';
import { CancelledError, UserError } from '../errors';
import { reproducibleKernels } from '../model/onnx/engine';
import { loadRunnable } from '../runnable';
import type { ScanChannel, ScanChannelTrigger, ScanLabel, ScanOptions, ScanProgress, ScanReport, ScanSite } from '../types';
import { InputGradient } from './backprop';
import { scanMarkdown } from './markdown';
import { readImages, ScanShard, type ScanShardApi, type StimulationCache } from './shard';
import { compromisedSites, layerMaxOf, levelsFor, mostElevating, spreadIndices, summarise, type ChannelResponses } from './stimulate';
import { rng, type Reconstruction, type ReconstructSettings } from './trigger';
import { anomalyIndices, confirmed, decide, verdictWord, where } from './verdict';
import { MAX_TRIGGER_AREA, type ChannelReversal } from './neuron';

export interface ScanHooks {
  /** where triggers are reconstructed; one in-process shard by default */
  shards?: ScanShardApi[];
  progress?: (p: ScanProgress) => void;
  signal?: AbortSignal;
}

/** Models with at most this many classes get every label optimised. */
export const ALL_LABELS_UP_TO = 50;
/** Optimisation per label: enough for NC's schedule to shrink the mask several times. */
export const STEPS = 100;
export const BATCH = 16;
/** Channels whose own trigger is reversed, the most elevating first: ABS's setting for CIFAR-size inputs. */
export const ABS_CHANNELS = 10;

/** What the report keeps of a channel's reversal. */
function channelTrigger(c: ScanChannel | ScanSite, r: ChannelReversal): ScanChannelTrigger {
  return {
    channel: c.channel, ...('position' in c ? { position: c.position } : {}), stimulatedLabel: c.label, maskL1: r.maskL1, activation: r.activation, cleanActivation: r.cleanActivation,
    label: r.label, heldOut: r.heldOut, attackRate: r.heldOutAttackRate,
  };
}

/** Hands `items` out over the shards, each taking the next when free: none waits for another between items. */
async function handOut<T>(shards: ScanShardApi[], items: T[], check: () => void, work: (shard: ScanShardApi, item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(shards.map(async (shard) => {
    while (next < items.length) {
      check();
      await work(shard, items[next++]);
    }
  }));
}

/** Seeded sample of `k` items of `from` (Fisher-Yates on a copy, mulberry32). */
export function sample<T>(from: T[], k: number, seed: number): T[] {
  const a = [...from];
  const next = rng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

export async function runScan(opts: ScanOptions, hooks: ScanHooks = {}): Promise<ScanReport> {
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  let phaseStart = t0;
  const endPhase = (name: string) => {
    const now = performance.now();
    phases[name] = (now - phaseStart) / 1000;
    phaseStart = now;
  };
  const report = (p: ScanProgress) => hooks.progress?.(p);
  const check = () => {
    if (hooks.signal?.aborted) throw new CancelledError();
  };
  if (!(opts.images >= 1)) throw new UserError(`--images ${opts.images}: give at least 1 clean image`);
  if (!(opts.labels >= 1)) throw new UserError(`--labels ${opts.labels}: give at least 1 candidate label`);

  // ---- reading
  report({ phase: 'reading', message: `loading ${path.basename(opts.model)}` });
  const own: tf.Tensor[] = [];
  const shards = hooks.shards ?? [new ScanShard()];
  const kernels = reproducibleKernels();
  let top: InputGradient | undefined;
  let loaded: Awaited<ReturnType<typeof loadRunnable>> | undefined;
  let shardsReady: Promise<unknown> | undefined;
  const onAbort = () => shards.forEach((s) => s.cancel());
  hooks.signal?.addEventListener('abort', onAbort);
  try {
    loaded = await loadRunnable(opts.model, opts.arch, opts.backend, { kernels });
    const { net, backend } = loaded;
    top = new InputGradient(net);
    const plan = makePlan(net, 'pool', opts.layer);
    const shape = net.graph.inputShape as [number, number, number];
    const [h, w, c] = shape;
    const per = h * w * c;
    const src = await openDataset(opts.clean, shape, net.classes);
    let pixels: Float32Array;
    const n = Math.min(opts.images, src.info.count);
    const indices = spreadIndices(src.info.count, n);
    const srcLabels = src.labels;
    try {
      pixels = readImages(src, indices, per);
    } finally {
      src.close();
    }
    if (n < 2) throw new UserError(`has ${n} image; the scan needs at least 2 (to optimise on and to check on)`, opts.clean, 'too-few-images');
    let low = Infinity, high = -Infinity;
    for (const v of pixels) {
      if (v < low) low = v;
      if (v > high) high = v;
    }
    if (!(high > low)) throw new UserError('every pixel of the clean images has the same value', opts.clean, 'bad-data');
    endPhase('reading');

    // ---- lower layers once per image; B's predictions from the top
    check();
    const x = tf.tensor4d(pixels, [n, h, w, c]);
    own.push(x);
    const parts: tf.Tensor[] = [];
    for (let s = 0; s < n; s += opts.batchSize) {
      const e = Math.min(n, s + opts.batchSize);
      parts.push(tf.tidy(() => net.run(tf.slice(x, s, e - s), [plan.cachePoint]).get(plan.cachePoint)!));
      report({ phase: 'lower-layers', message: `clean images through ${plan.cachePoint}`, step: e, total: n });
    }
    const cache = tf.concat(parts) as tf.Tensor4D;
    tf.dispose(parts);
    own.push(cache);
    const predT = tf.tidy(() => tf.argMax(top!.logits(undefined, new Map([[plan.cachePoint, cache]])), 1));
    const predictions = Int32Array.from(await predT.data());
    predT.dispose();
    const labelsOf = indices.map((i, k) => (srcLabels ? srcLabels[i] : predictions[k]));
    endPhase('lower-layers');

    // ---- the shards load the model and their images: every image, split into halves to optimise on and to check
    // on (both span the file)
    const classes = net.classes;
    const candidateCount = Math.min(opts.labels, classes);
    const calibrationCount = classes <= ALL_LABELS_UP_TO ? classes - candidateCount : Math.min(opts.calibration, classes - candidateCount);
    if (candidateCount + calibrationCount < 3) throw new UserError(`the model has ${classes} classes; the anomaly index needs at least 3 labels to compare`, opts.model, 'too-few-classes');
    const cacheMap: [number, number] = [plan.cacheShape[0], plan.cacheShape[1]];
    const optimise = indices.filter((_, k) => k % 2 === 0);
    const heldOut = indices.filter((_, k) => k % 2 === 1);
    const heldOutLabels = labelsOf.filter((_, k) => k % 2 === 1);
    const settings: ReconstructSettings = { steps: STEPS, batch: BATCH, seed: opts.seed, low, high };
    shardsReady = Promise.all(shards.map((s) => s.init({
      model: opts.model, arch: opts.arch, backend: opts.backend, threads: Math.max(1, Math.floor(os.availableParallelism() / shards.length)), kernels,
      clean: opts.clean, optimise, heldOut, heldOutLabels, settings, conv: plan.conv, channels: plan.channels,
      cacheMap,
    })));
    // Awaited below (and before the shards are disposed); a failure must not go unhandled meanwhile.
    shardsReady.catch(() => undefined);

    // ---- stimulation: the channels handed out over the shards in groups; each runs the top for its own
    check();
    const cacheData = await cache.data() as Float32Array;
    const layerMax = layerMaxOf(cacheData);
    const stimulation: StimulationCache = {
      cachePoint: plan.cachePoint, cache: cacheData, shape: cache.shape, cleanPred: predictions,
      levels: levelsFor(layerMax), batchRows: Math.max(opts.batchSize, 2048),
    };
    await shardsReady;
    await Promise.all(shards.map((s) => s.stimulationCache(stimulation)));
    const groupSize = Math.max(1, Math.ceil(plan.channels / (4 * shards.length)));
    const groups = Array.from({ length: Math.ceil(plan.channels / groupSize) }, (_, g) =>
      Array.from({ length: Math.min(groupSize, plan.channels - g * groupSize) }, (_, i) => g * groupSize + i));
    // Whole maps, then each position on its own (sites): the same levels, the same 90% bar. A group's site
    // responses (positions × the whole maps' size) are reduced to its compromised sites as they arrive.
    const responses: ChannelResponses[] = [];
    const sites: ScanSite[] = [];
    let stimulated = 0;
    for (const perSite of [false, true]) {
      await handOut(shards, groups, check, async (shard, group) => {
        if (perSite) sites.push(...compromisedSites([await shard.stimulateSites(group)], layerMax, classes, predictions, cacheMap));
        else responses.push(await shard.stimulate(group));
        stimulated += group.length;
        report({ phase: 'stimulation', message: `stimulating ${plan.conv}: channel × ${perSite ? `position (${cacheMap[0] * cacheMap[1]}) × ` : ''}level`, step: stimulated, total: 2 * plan.channels });
      });
    }
    sites.sort(mostElevating);
    const stim = summarise(responses, layerMax, classes, predictions);
    endPhase('stimulation');

    // ---- what to reconstruct: the channels' own triggers (ABS) for the most elevating channels and compromised
    // sites, the labels' triggers (Neural Cleanse) for the top of the stimulation ranking and the calibration
    // labels, and then any other label a channel's or site's trigger serves. Only compromised sites are reversed:
    // a map has many positions, and a trigger of ≤ 6% of the image excites some place of many channels.
    const reversed = [...stim.channels].sort((a, b) => b.elevation - a.elevation || a.channel - b.channel).slice(0, Math.min(ABS_CHANNELS, stim.channels.length));
    const reversedSites = sites.slice(0, ABS_CHANNELS);
    const stimCandidates = stim.ranked.slice(0, candidateCount);
    // Calibration labels in label order: the seeded sample depends on the seed and the candidates only.
    const others = stim.ranked.filter((l) => !stimCandidates.includes(l)).sort((a, b) => a - b);
    const calibration = classes <= ALL_LABELS_UP_TO ? others : sample(others, calibrationCount, opts.seed);
    const planned = [...stimCandidates, ...calibration];
    type Item = { channel: number; position?: [number, number] } | { label: number };
    const reversals = new Map<string, ChannelReversal>();
    const keyOf = (channel: number, position?: [number, number]) => (position ? `${channel}@${position}` : String(channel));
    const results = new Map<number, Reconstruction>();
    const run = (items: Item[], total: number) => handOut(shards, items, check, async (shard, item) => {
      if ('channel' in item) reversals.set(keyOf(item.channel, item.position), await shard.reverseChannel(item.channel, item.position));
      else results.set(item.label, await shard.reconstruct(item.label));
      const step = reversals.size + results.size;
      report('channel' in item
        ? { phase: 'channel-trigger', message: `reversed the trigger of ${plan.conv} channel ${item.channel}${item.position ? ` at ${where(item)} of ${plan.cachePoint}` : ''}`, step, total }
        : { phase: 'trigger', message: `reconstructed the trigger of label ${item.label}`, step, total });
    });
    const reversing: Item[] = [...reversed.map((c) => ({ channel: c.channel })), ...reversedSites.map((st) => ({ channel: st.channel, position: st.position }))];
    await run([...reversing, ...planned.map((label) => ({ label }))], reversing.length + planned.length);
    const channelTriggers: ScanChannelTrigger[] = reversed.map((c) => channelTrigger(c, reversals.get(keyOf(c.channel))!));
    const siteTriggers: ScanChannelTrigger[] = reversedSites.map((st) => channelTrigger(st, reversals.get(keyOf(st.channel, st.position))!));
    const served = [...new Set([...channelTriggers, ...siteTriggers].filter(confirmed).map((t) => t.label))];
    const missing = served.filter((l) => !results.has(l));
    if (missing.length) await run(missing.map((label) => ({ label })), reversing.length + planned.length + missing.length);
    const toOptimise = [...stimCandidates, ...missing, ...calibration];
    const candidateSet = new Set([...stimCandidates, ...served]);
    check();
    const recs = toOptimise.map((l) => results.get(l)!);
    const ai = anomalyIndices(recs.map((r) => r.maskL1));
    const labels: ScanLabel[] = recs.map((r, i) => ({
      label: r.label,
      role: candidateSet.has(r.label) ? 'candidate' : 'calibration',
      maskL1: r.maskL1,
      triggerAttackRate: r.heldOutAttackRate,
      heldOut: r.heldOut,
      anomalyIndex: ai[i],
    }));
    const verdict = decide(labels, stim.channels, channelTriggers, plan.conv, MAX_TRIGGER_AREA, { sites, siteTriggers, cachePoint: plan.cachePoint });
    // Trigger files for the candidates, every target found, and the smallest mask (the most suspicious label
    // even when nothing is flagged, so it can be audited with).
    const smallest = labels[[...ai.keys()].sort((a, b) => ai[b] - ai[a])[0]].label;
    const withFile = new Set([...candidateSet, ...verdict.targets.map((t) => t.label), smallest]);
    for (const l of labels) if (withFile.has(l.label)) l.trigger = `trigger_${l.label}.h5`;
    endPhase('trigger');

    // ---- preview: a held-out clean image not of the top label, with and without its trigger
    const shown = verdict.targets[0]?.label ?? smallest;
    const shownRec = results.get(shown)!;
    const k = heldOut.findIndex((_, j) => heldOutLabels[j] !== shown);
    const imageAt = indices.indexOf(heldOut[Math.max(0, k)]);
    const image = pixels.slice(imageAt * per, (imageAt + 1) * per);
    const stamped = stamp(Float32Array.from(image), 1, shownRec.trigger);

    // ---- writing
    check();
    report({ phase: 'writing', message: `writing ${opts.out}` });
    const { out: _out, ...optionsRest } = opts;
    const result: ScanReport = {
      version: 1,
      kind: 'scan',
      createdAt: new Date().toISOString(),
      model: opts.model,
      ...(opts.arch ? { arch: opts.arch } : {}),
      backend,
      ...(net.onnx ? { kernels } : {}),
      layer: plan.conv,
      images: n,
      classes,
      verdict: verdict.verdict,
      conclusive: verdict.conclusive,
      evidence: verdict.evidence,
      targets: verdict.targets,
      channels: stim.channels,
      levels: stim.levels,
      channelTriggers,
      sites,
      siteTriggers,
      maxTriggerArea: MAX_TRIGGER_AREA,
      labelsOptimised: toOptimise,
      labels,
      data: src.info,
      options: optionsRest,
      preview: {
        height: h, width: w, channels: c, min: low, max: high,
        image: Array.from(image), mask: Array.from(shownRec.trigger.mask), pattern: Array.from(shownRec.trigger.pattern), stamped: Array.from(stamped), label: shown,
      },
      timing: { totalSeconds: 0, phases },
    };
    const folder = new OutputFolder(opts.out);
    try {
      for (const l of labels) {
        if (!l.trigger) continue;
        check();
        const t = results.get(l.label)!.trigger;
        await writeTrigger(path.join(folder.tmp, l.trigger), t);
        writePng(path.join(folder.tmp, `trigger_${l.label}_mask.png`), w, h, 1, t.mask, 0, 1);
        writePng(path.join(folder.tmp, `trigger_${l.label}_pattern.png`), w, h, c, t.pattern, low, high);
      }
      endPhase('writing');
      result.timing = { totalSeconds: (performance.now() - t0) / 1000, phases: { ...phases } };
      folder.writeText('scan.json', JSON.stringify(result, null, 1));
      folder.writeText('scan.md', scanMarkdown(result));
      check();
      folder.commit();
    } catch (e) {
      folder.abandon();
      throw e;
    }
    report({ phase: 'done', message: `scan written to ${opts.out}: ${verdictWord(result)}` });
    return result;
  } finally {
    tf.dispose(own);
    top?.dispose();
    loaded?.net.dispose();
    hooks.signal?.removeEventListener('abort', onAbort);
    await shardsReady?.catch(() => undefined);
    await Promise.all(shards.map((s) => s.dispose()));
  }
}

/** An H×W image with 1 or 3 channels, values mapped from [low, high] to 0..255. */
function writePng(file: string, width: number, height: number, channels: number, values: Float32Array, low: number, high: number) {
  const png = new PNG({ width, height });
  const scale = 255 / (high - low || 1);
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < 3; k++) {
      const v = values[p * channels + (channels >= 3 ? k : 0)];
      png.data[p * 4 + k] = Math.max(0, Math.min(255, Math.round((v - low) * scale)));
    }
    png.data[p * 4 + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(png));
}
