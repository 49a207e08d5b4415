// Repair after pruning, for the audit: each B'_X reached is trained on clean
// data (fine-tuning, Liu et al. 2018) or on clean data with a share of
// trigger-stamped images keeping their true labels (unlearning, Wang et al.
// 2019), then scored on the test sets like the pruning-only rows: B'_X alone,
// and G_X from B and the trained B'_X.
import { openDataset } from '../data/dataset';
import { readTrigger, type Trigger } from '../data/trigger';
import { UserError } from '../errors';
import type { LoadedModel, Weight } from '../keras/load';
import { Net } from '../model/net';
import type { DataSetInfo, FineTuned, RepairOptions, ThresholdResult, TriggerInfo } from '../types';
import { withPrunedChannels } from '../audit/output';
import type { PrunePlan } from '../audit/plan';
import { countOf } from '../audit/shard';
import { deriveTrigger } from './deriveTrigger';
import { activationsOf, cacheFeed, imageFeed, labelsOf, readImageSet, type Feed, type ImageSet } from './feed';
import type { GradientWorker } from './gradientShard';
import { registerGradients } from './gradients';
import { checkRepairOptions } from './options';
import { train } from './trainer';

export interface RepairJob {
  model: LoadedModel;
  plan: Pick<PrunePlan, 'conv' | 'cachePoint' | 'cacheShape'> & { fill: ArrayLike<number> };
  options: RepairOptions;
  files: { cleanValid: string; poisonedValid?: string; cleanTest?: string; poisonedTest?: string };
  target?: number;
  /** inference batch size */
  batchSize: number;
  progress?: (p: { threshold: number; epoch: number; batch: number; batches: number; loss: number; step: number; total: number }) => void;
  onEpoch?: (threshold: number, e: FineTuned['epochs'][number]) => void;
  signal?: AbortSignal;
  /** shards that compute the gradients in parallel (each trains its own copy); none: this process alone */
  workers?: GradientWorker[];
}

export interface Repaired {
  fineTuned: FineTuned;
  /** the trained B'_X, ready to write */
  model: LoadedModel;
}

/** The options, the trigger file's fit to the model, and the training data's header, before any heavy work. */
export async function checkRepairInputs(o: RepairOptions, inputShape: number[], classes: number, valid: { clean: DataSetInfo; poisoned?: DataSetInfo }) {
  checkRepairOptions(o);
  if (o.trigger) await readTrigger(o.trigger, inputShape);
  if (o.triggerFromPoisoned) {
    if (!valid.poisoned) throw new UserError('--unlearn-from-poisoned needs poisoned validation data (--poisoned-valid)', undefined, 'bad-option');
    // Pairing image by image is checked on the pixels later; different counts cannot pair at all.
    if (valid.poisoned.count !== valid.clean.count) {
      throw new UserError(`--unlearn-from-poisoned: the poisoned validation set cannot pair with the clean one image by image (${valid.poisoned.count} vs ${valid.clean.count} images); give the trigger with --unlearn-trigger`, valid.poisoned.file, 'not-paired');
    }
  }
  if (o.data) {
    const src = await openDataset(o.data, inputShape, classes);
    src.close();
    if (!src.labels) throw new UserError('training data needs a "label" dataset', o.data, 'no-labels');
  }
}

/** B's or a B'\'s labels and G's, scored like the audit's evaluation. */
function score(bad: Int32Array, pruned: Int32Array, labels: Int32Array | undefined, target: number | undefined, flaggedClass: number) {
  const good = Int32Array.from(bad, (b, i) => (pruned[i] === b ? b : flaggedClass));
  const flagged = good.reduce((a, g) => a + (g === flaggedClass ? 1 : 0), 0);
  return { pruned: countOf(pruned, labels, target), good: countOf(good, labels, target), flagged, count: bad.length };
}

/** Copies of cached activations with the pruned channels at their pruned value. */
function withFill(values: Float32Array, channels: number, pruned: number[], fill: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(values);
  for (let base = 0; base < out.length; base += channels) for (const c of pruned) out[base + c] = fill[c];
  return out;
}

export async function repairThresholds(job: RepairJob, reached: ThresholdResult[]): Promise<{ results: Repaired[]; trigger?: TriggerInfo }> {
  const o = job.options;
  checkRepairOptions(o);
  registerGradients();
  const { model, plan, files } = job;
  const bNet = new Net(model);
  try {
    const inputShape = model.graph.inputShape;
    const classes = bNet.classes;
    const read = (f: string) => readImageSet(f, inputShape, classes);
    const cleanValid = await read(files.cleanValid);
    const trainSet = o.data && o.data !== files.cleanValid ? await read(o.data) : cleanValid;
    if (!trainSet.labels) throw new UserError('training data needs a "label" dataset', trainSet.file, 'no-labels');
    const poisonedValid = files.poisonedValid ? await read(files.poisonedValid) : undefined;
    let trigger: Trigger | undefined;
    let triggerInfo: TriggerInfo | undefined;
    if (o.trigger) {
      trigger = await readTrigger(o.trigger, inputShape);
      const pixels = trigger.mask.reduce((a, m) => a + (m > 0 ? 1 : 0), 0);
      triggerInfo = { source: 'file', file: o.trigger, pixels, note: 'given with --unlearn-trigger' };
    } else if (o.triggerFromPoisoned) {
      if (!poisonedValid) throw new UserError('--unlearn-from-poisoned needs poisoned validation data (--poisoned-valid)', undefined, 'bad-option');
      ({ trigger, info: triggerInfo } = deriveTrigger(cleanValid, poisonedValid, inputShape));
    }
    const method = trigger ? 'unlearn' : 'fine-tune';
    const share = trigger ? o.share : 0;
    const tests = {
      clean: files.cleanTest ? await read(files.cleanTest) : undefined,
      poisoned: files.poisonedTest ? await read(files.poisonedTest) : undefined,
    };
    const rowShape = inputShape;
    const images = (s: ImageSet, t?: Trigger) => imageFeed(s, rowShape, t);
    // 'above': every set once through B's lower layers; each B'_X then sets its pruned channels to their pruned value.
    const above = o.layers === 'above';
    const cache = async (s: ImageSet | undefined, stampAll = false) =>
      s && above ? activationsOf(bNet, images(s, trigger), plan.cachePoint, job.batchSize, stampAll) : undefined;
    const cached = {
      train: await cache(trainSet), trainStamped: trigger ? await cache(trainSet, true) : undefined,
      cleanValid: trainSet === cleanValid ? undefined : await cache(cleanValid), poisonedValid: await cache(poisonedValid),
      cleanTest: await cache(tests.clean), poisonedTest: await cache(tests.poisoned),
    };
    if (above) cached.cleanValid ??= cached.train;
    const channels = plan.cacheShape[plan.cacheShape.length - 1];
    const feedsFor = (pruned: number[]) => {
      if (!above) {
        return { train: images(trainSet, trigger), cleanValid: images(cleanValid), poisonedValid: poisonedValid && images(poisonedValid), cleanTest: tests.clean && images(tests.clean), poisonedTest: tests.poisoned && images(tests.poisoned) };
      }
      const at = (v: Float32Array | undefined, stamped?: Float32Array) => v && cacheFeed(plan.cachePoint, plan.cacheShape, withFill(v, channels, pruned, plan.fill), stamped && withFill(stamped, channels, pruned, plan.fill));
      return { train: at(cached.train, cached.trainStamped)!, cleanValid: at(cached.cleanValid)!, poisonedValid: at(cached.poisonedValid), cleanTest: at(cached.cleanTest), poisonedTest: at(cached.poisonedTest) };
    };
    // B's test labels, once: G compares them with each trained B'_X.
    const bLabels = {
      clean: tests.clean && await labelsOf(bNet, images(tests.clean), job.batchSize),
      poisoned: tests.poisoned && await labelsOf(bNet, images(tests.poisoned), job.batchSize),
    };
    // 'above' reads only the caches from here on: let the images go (at lab scale, about 1.5 GB of float32).
    if (above) for (const s of [trainSet, cleanValid, poisonedValid, tests.clean, tests.poisoned]) if (s) s.images = new Float32Array(0);
    const batches = Math.ceil(trainSet.count / o.batchSize);
    const total = batches * o.epochs * reached.length;
    let step = 0;
    const results: Repaired[] = [];
    for (const t of reached) {
      const start = withPrunedChannels(model, plan.conv, t.prunedChannels);
      const net = new Net(start, true);
      try {
        const feeds = feedsFor(t.prunedChannels);
        const rate = async (feed: Feed | undefined, labels: Int32Array | undefined, hits: boolean) => {
          if (!feed) return undefined;
          const c = countOf(await labelsOf(net, feed, job.batchSize), labels, job.target);
          return hits ? c.hits / c.count : c.correct / c.count;
        };
        const epochs = await train({
          net, feed: feeds.train, labels: trainSet.labels, conv: plan.conv, pruned: t.prunedChannels, share, options: o, signal: job.signal, workers: job.workers,
          monitor: async () => {
            const validAccuracy = (await rate(feeds.cleanValid, cleanValid.labels, false))!;
            const validAttackRate = job.target !== undefined ? await rate(feeds.poisonedValid, undefined, true) : undefined;
            return { validAccuracy, ...(validAttackRate !== undefined ? { validAttackRate } : {}) };
          },
          progress: (p) => job.progress?.({ threshold: t.drop, ...p, step: ++step, total }),
          onEpoch: (e) => job.onEpoch?.(t.drop, e),
        });
        const fineTuned: FineTuned = { method, layers: o.layers, epochs, prunedModel: {}, goodNet: {} };
        const flaggedClass = classes;
        if (feeds.cleanTest && bLabels.clean) {
          const s = score(bLabels.clean, await labelsOf(net, feeds.cleanTest, job.batchSize), tests.clean!.labels, job.target, flaggedClass);
          fineTuned.prunedModel.testAccuracy = s.pruned.correct / s.count;
          fineTuned.goodNet.testAccuracy = s.good.correct / s.count;
          fineTuned.goodNet.cleanFlagged = s.flagged / s.count;
        }
        if (feeds.poisonedTest && bLabels.poisoned && job.target !== undefined) {
          const s = score(bLabels.poisoned, await labelsOf(net, feeds.poisonedTest, job.batchSize), undefined, job.target, flaggedClass);
          fineTuned.prunedModel.testAttackRate = s.pruned.hits / s.count;
          fineTuned.goodNet.testAttackRate = s.good.hits / s.count;
          fineTuned.goodNet.poisonedFlagged = s.flagged / s.count;
        }
        results.push({ fineTuned, model: trainedModel(start, net) });
      } finally {
        net.dispose();
      }
    }
    return { results, ...(triggerInfo ? { trigger: triggerInfo } : {}) };
  } finally {
    bNet.dispose();
  }
}

/** `start` with its trainable weights replaced by the net's current values. */
export function trainedModel(start: LoadedModel, net: Net): LoadedModel {
  const weights = new Map<string, Weight[]>(start.weights);
  for (const [layer, ws] of start.weights) {
    const params = net.params.filter((p) => p.layer === layer);
    if (!params.length) continue;
    weights.set(layer, ws.map((w) => {
      const p = params.find((q) => q.name === w.name);
      return p ? { ...w, data: Float32Array.from(p.value.dataSync() as Float32Array) } : w;
    }));
  }
  return { ...start, weights };
}
