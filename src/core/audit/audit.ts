// The fine-pruning audit (Liu, Dolan-Gavitt, Garg 2018), as the lab runs it:
// rank the channels of one conv layer by mean activation on clean validation
// data, prune them one by one, note where validation accuracy has dropped by
// each threshold, and score the repaired network G on test data.
import path from 'node:path';
import { openDataset } from '../data/dataset';
import { CancelledError, UserError } from '../errors';
import { labelFromTriggerName, readTrigger, writeStampedSet } from '../data/trigger';
import { loadModel } from '../keras/load';
import type { AuditOptions, AuditReport, ChannelMaps, ChannelRank, DataSetInfo, Progress, SweepStep, ThresholdResult } from '../types';
import { reportMarkdown } from './markdown';
import { checkRepairInputs, repairThresholds } from '../train/repair';
import { OutputFolder } from './output';
import { addCounts, countOf, type Counts, type EvalCounts, type LoadResult, type ShardApi, type ShardInfo } from './shard';

export interface AuditHooks {
  shards: ShardApi[];
  progress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Images per work item: small enough that no shard idles long at the end, large enough to batch well. */
const CHUNK = 1024;

type SetKey = 'cleanValid' | 'poisonedValid' | 'cleanTest' | 'poisonedTest';

interface Chunk { key: SetKey; file: string; start: number; end: number }

/**
 * Every set's images in chunks of equal size (at most CHUNK), all in one queue
 * so the shards stay busy across sets. Equal chunks also tend to leave the
 * shards equal shares of the validation images, whose sweep steps they split.
 */
function chunksOf(keys: SetKey[], data: Partial<Record<SetKey, DataSetInfo>>): Chunk[] {
  return keys.flatMap((key) => {
    const { file, count } = data[key]!;
    const size = Math.ceil(count / Math.ceil(count / CHUNK));
    const out: Chunk[] = [];
    for (let s = 0; s < count; s += size) out.push({ key, file, start: s, end: Math.min(count, s + size) });
    return out;
  });
}

/** Runs `work` for every chunk, each shard taking the next chunk when free. */
async function spread<T>(shards: ShardApi[], items: Chunk[], work: (sh: ShardApi, item: Chunk) => Promise<T>, onDone: (item: Chunk) => void): Promise<T[]> {
  const results: T[] = new Array(items.length);
  let next = 0;
  await Promise.all(shards.map(async (sh) => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(sh, items[i]);
      onDone(items[i]);
    }
  }));
  return results;
}

/** Results grouped by set, in chunk order. */
function bySet<T>(items: Chunk[], results: T[]): Partial<Record<SetKey, T[]>> {
  const out: Partial<Record<SetKey, T[]>> = {};
  items.forEach((c, i) => (out[c.key] ??= []).push(results[i]));
  return out;
}

const zero = (): Counts => ({ count: 0, correct: 0, hits: 0 });

export async function runAudit(opts: AuditOptions, hooks: AuditHooks): Promise<AuditReport> {
  if (!opts.trigger) return auditWith(opts, hooks);
  // A reconstructed trigger: the poisoned sets are the clean ones stamped with it,
  // written into the staging folder so they are committed with the report.
  const folder = new OutputFolder(opts.out);
  try {
    if (opts.poisonedValid || opts.poisonedTest) throw new UserError('--trigger makes the poisoned sets from the clean ones; do not also give --poisoned-valid or --poisoned-test');
    const target = opts.triggerTarget ?? labelFromTriggerName(opts.trigger);
    if (target === undefined) throw new UserError('the file name does not say which label the trigger serves (trigger_<label>.h5); give it with --trigger-target', opts.trigger, 'no-target');
    if (opts.target !== undefined && opts.target !== target) throw new UserError(`--target ${opts.target} disagrees with the trigger's label ${target}`, opts.trigger, 'no-target');
    hooks.progress?.({ phase: 'reading', message: `stamping ${path.basename(opts.trigger)} onto the clean images` });
    const model = await loadModel(opts.model, opts.arch);
    const trigger = await readTrigger(opts.trigger, model.graph.inputShape);
    const poisonedValid = path.join(folder.tmp, 'stamped_valid.h5');
    await writeStampedSet(opts.cleanValid, trigger, target, poisonedValid);
    const poisonedTest = opts.cleanTest ? path.join(folder.tmp, 'stamped_test.h5') : undefined;
    if (opts.cleanTest && poisonedTest) await writeStampedSet(opts.cleanTest, trigger, target, poisonedTest);
    if (hooks.signal?.aborted) throw new CancelledError();
    return await auditWith({ ...opts, poisonedValid, poisonedTest, target }, hooks, folder);
  } catch (e) {
    folder.abandon();
    throw e;
  }
}

async function auditWith(opts: AuditOptions, hooks: AuditHooks, staged?: OutputFolder): Promise<AuditReport> {
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  let phaseStart = t0;
  const endPhase = (name: string) => {
    const now = performance.now();
    phases[name] = (phases[name] ?? 0) + (now - phaseStart) / 1000;
    phaseStart = now;
  };
  const report = (p: Progress) => hooks.progress?.(p);
  const check = () => {
    if (hooks.signal?.aborted) throw new CancelledError();
  };
  const { shards } = hooks;
  if (!opts.thresholds.length) throw new UserError('no thresholds given');

  // ---- reading: model, plan, and every data file's header, before any heavy work
  report({ phase: 'reading', message: `loading ${path.basename(opts.model)}` });
  const model = await loadModel(opts.model, opts.arch);
  const infos: ShardInfo[] = await Promise.all(shards.map((s) => s.init({
    model: opts.model, arch: opts.arch, backend: opts.backend, layer: opts.layer, rankBy: opts.rankBy, batchSize: opts.batchSize,
  })));
  const info = infos[0];
  const { plan, classes } = info;
  const files: Partial<Record<SetKey, string>> = { cleanValid: opts.cleanValid, poisonedValid: opts.poisonedValid, cleanTest: opts.cleanTest, poisonedTest: opts.poisonedTest };
  const data: Partial<Record<SetKey, DataSetInfo>> = {};
  const labelsOf: Partial<Record<SetKey, Int32Array | undefined>> = {};
  for (const [key, file] of Object.entries(files) as [SetKey, string | undefined][]) {
    if (!file) continue;
    const src = await openDataset(file, info.inputShape, classes);
    data[key] = src.info;
    labelsOf[key] = src.labels;
    src.close();
    if ((key === 'cleanValid' || key === 'cleanTest') && !src.labels) throw new UserError('clean data needs a "label" dataset to measure accuracy', file, 'no-labels');
  }
  const clean = data.cleanValid!;
  for (const key of ['poisonedValid', 'cleanTest', 'poisonedTest'] as const) {
    const d = data[key];
    if (d && (d.shape.slice(1).join() !== clean.shape.slice(1).join())) {
      throw new UserError(`images have shape (${d.shape.slice(1).join(', ')}) but the clean validation images have (${clean.shape.slice(1).join(', ')})`, d.file, 'data-mismatch');
    }
  }
  const target = resolveTarget(opts.target, classes, [data.poisonedValid, data.poisonedTest], [labelsOf.poisonedValid, labelsOf.poisonedTest]);
  // Bad repair settings or a trigger that does not fit fail now, not after the sweep.
  if (opts.repair) await checkRepairInputs(opts.repair, info.inputShape, classes, { clean, poisoned: data.poisonedValid });
  endPhase('reading');

  // ---- lower layers: one pass over validation data; only pooled activations stay
  const validSets = (['cleanValid', 'poisonedValid'] as const).filter((k) => data[k]);
  const validTotal = validSets.reduce((a, k) => a + data[k]!.count, 0);
  let done = 0;
  const lowerStart = performance.now();
  const sampleCount = opts.sampleMaps ?? 4;
  const validChunks = chunksOf(validSets, data);
  const loads = bySet(validChunks, await spread(shards, validChunks, (sh, c) => {
    check();
    return sh.load({ set: c.key, file: c.file, start: c.start, end: c.end, samples: c.start === 0 ? sampleCount : 0, source: c.key === 'cleanValid' ? 'clean' : 'poisoned' });
  }, (c) => {
    done += c.end - c.start;
    report({ phase: 'lower-layers', message: `validation data through ${plan.cachePoint}`, step: done, total: validTotal, imagesPerSecond: done / ((performance.now() - lowerStart) / 1000) });
  }));
  endPhase('lower-layers');

  // ---- ranking and baseline
  const meanOf = (rs: LoadResult[]) => {
    const sums = new Float64Array(plan.channels);
    let positions = 0;
    for (const r of rs) {
      r.rankSums.forEach((v, c) => { sums[c] += v; });
      positions += r.rankPositions;
    }
    return Array.from(sums, (s) => s / positions);
  };
  const cleanMeans = meanOf(loads.cleanValid!);
  const poisonedMeans = loads.poisonedValid ? meanOf(loads.poisonedValid) : undefined;
  const sign = opts.order === 'increasing' ? 1 : -1;
  const order = cleanMeans.map((_, c) => c).sort((a, b) => sign * (cleanMeans[a] - cleanMeans[b]) || a - b);
  const ranking: ChannelRank[] = order.map((c) => ({ channel: c, meanActivation: cleanMeans[c], ...(poisonedMeans ? { meanActivationPoisoned: poisonedMeans[c] } : {}) }));
  const baseCount = (rs: LoadResult[] | undefined, labels: boolean): Counts | undefined =>
    rs?.map((r) => countOf(r.predictions, labels ? r.labels : undefined, target)).reduce(addCounts, zero());
  const b0 = baseCount(loads.cleanValid, true)!;
  const p0 = baseCount(loads.poisonedValid, false);
  const validAccuracy = b0.correct / b0.count;
  const validAttackRate = p0 && target !== undefined ? p0.hits / p0.count : undefined;
  const samples: ChannelMaps[] = [...(loads.cleanValid ?? []), ...(loads.poisonedValid ?? [])].flatMap((r) => r.samples);
  endPhase('ranking');

  // ---- sweep: prune one more channel per step; only the top of the network re-runs
  const steps: SweepStep[] = [];
  const thresholds: ThresholdResult[] = opts.thresholds.map((drop) => ({
    drop, reached: false, pruned: 0, prunedChannels: [], validAccuracy: 0, prunedModel: {}, goodNet: {},
  }));
  for (let k = 1; k <= order.length; k++) {
    check();
    const pruned = order.slice(0, k);
    const parts = await Promise.all(shards.map((s) => s.step(pruned, target)));
    const sum = (key: string) => parts.reduce((a, p) => (p[key] ? addCounts(a, p[key]) : a), zero());
    const c = sum('cleanValid');
    const acc = c.correct / c.count;
    const atk = data.poisonedValid && target !== undefined ? sum('poisonedValid').hits / data.poisonedValid.count : undefined;
    steps.push({ pruned: k, channel: order[k - 1], validAccuracy: acc, ...(atk !== undefined ? { validAttackRate: atk } : {}) });
    // Drop in percentage points, from counts, so 2.0 means exactly 2 points.
    const dropPts = ((b0.correct - c.correct) / b0.count) * 100;
    for (const t of thresholds) {
      if (!t.reached && dropPts >= t.drop - 1e-9) Object.assign(t, { reached: true, pruned: k, prunedChannels: pruned, validAccuracy: acc });
    }
    report({
      // No images/s here: a step re-runs only the top of the network for the images it touches.
      phase: 'sweep', message: `pruned channel ${order[k - 1]}`, step: k, total: order.length, validAccuracy: acc, validAttackRate: atk,
    });
    if (!opts.fullSweep && thresholds.every((t) => t.reached)) break;
  }
  for (const t of thresholds) {
    if (!t.reached) Object.assign(t, { pruned: steps.length, prunedChannels: [], validAccuracy: steps[steps.length - 1]?.validAccuracy ?? validAccuracy });
  }
  endPhase('sweep');

  // ---- test: B, each B'_X and each G_X, one pass over each test set
  const reached = thresholds.filter((t) => t.reached);
  const masks = reached.map((t) => t.prunedChannels);
  const testSets = (['cleanTest', 'poisonedTest'] as const).filter((k) => data[k]);
  const testTotal = testSets.reduce((a, k) => a + data[k]!.count, 0);
  let tested = 0;
  const evalStart = performance.now();
  const testChunks = chunksOf(testSets, data);
  const testParts = bySet(testChunks, await spread(shards, testChunks, (sh, c) => {
    check();
    return sh.evaluate({ file: c.file, start: c.start, end: c.end }, masks, target, classes);
  }, (c) => {
    tested += c.end - c.start;
    report({ phase: 'evaluating', message: 'test data through B and every B\'', step: tested, total: testTotal, imagesPerSecond: tested / ((performance.now() - evalStart) / 1000) });
  }));
  const sumEval = (parts: EvalCounts[] | undefined): EvalCounts | undefined => parts?.reduce((a, p) => ({
    count: a.count + p.count,
    bad: addCounts(a.bad, p.bad),
    masks: a.masks.map((m, i) => ({ pruned: addCounts(m.pruned, p.masks[i].pruned), good: addCounts(m.good, p.masks[i].good), flagged: m.flagged + p.masks[i].flagged })),
  }), { count: 0, bad: zero(), masks: masks.map(() => ({ pruned: zero(), good: zero(), flagged: 0 })) });
  const ct = sumEval(testParts.cleanTest), pt = sumEval(testParts.poisonedTest);
  const hasTarget = target !== undefined;
  reached.forEach((t, i) => {
    if (ct) {
      t.prunedModel.testAccuracy = ct.masks[i].pruned.correct / ct.count;
      t.goodNet.testAccuracy = ct.masks[i].good.correct / ct.count;
      t.goodNet.cleanFlagged = ct.masks[i].flagged / ct.count;
    }
    if (pt && hasTarget) {
      t.prunedModel.testAttackRate = pt.masks[i].pruned.hits / pt.count;
      t.goodNet.testAttackRate = pt.masks[i].good.hits / pt.count;
      t.goodNet.poisonedFlagged = pt.masks[i].flagged / pt.count;
    }
  });
  endPhase('evaluating');

  // ---- training: each B'_X reached, fine-tuned or unlearning the trigger, then scored like the rows above
  let repaired: Awaited<ReturnType<typeof repairThresholds>> | undefined;
  if (opts.repair && reached.length) {
    const repair = opts.repair;
    repaired = await repairThresholds({
      model, plan, options: repair, target, batchSize: opts.batchSize, signal: hooks.signal,
      // Data parallel over the shards; a single shard adds nothing to training in this process.
      workers: shards.length > 1 ? shards : undefined,
      files: { cleanValid: opts.cleanValid, poisonedValid: opts.poisonedValid, cleanTest: opts.cleanTest, poisonedTest: opts.poisonedTest },
      progress: (p) => report({
        phase: 'training', message: `${p.threshold}% threshold: epoch ${p.epoch}/${repair.epochs}, batch ${p.batch}/${p.batches}`,
        step: p.step, total: p.total, epoch: p.epoch, loss: p.loss,
      }),
      onEpoch: (drop, e) => report({
        phase: 'training', message: `${drop}% threshold: epoch ${e.epoch}/${repair.epochs} done`, epoch: e.epoch,
        validAccuracy: e.validAccuracy, validAttackRate: e.validAttackRate,
      }),
    }, reached);
    reached.forEach((t, i) => { t.fineTuned = repaired!.results[i].fineTuned; });
    endPhase('training');
  }

  // ---- writing: repaired models and the report, swapped in only when complete
  check();
  report({ phase: 'writing', message: `writing ${opts.out}` });
  const folder = staged ?? new OutputFolder(opts.out);
  // Files made in the staging folder are named by where they will be after the commit.
  const final = (f: string | undefined) => (f && f.startsWith(folder.tmp + path.sep) ? path.join(opts.out, path.relative(folder.tmp, f)) : f);
  try {
    const prunedNets: Record<string, string> = {};
    for (const t of reached) {
      check();
      t.repairedModel = `repaired_${t.drop}.h5`;
      prunedNets[String(t.drop)] = t.repairedModel;
      await folder.writePrunedModel(t.repairedModel, model, plan.conv, t.prunedChannels);
    }
    for (const [i, t] of reached.entries()) {
      const r = repaired?.results[i];
      if (!r) continue;
      check();
      t.fineTuned!.repairedModel = `repaired_${t.drop}_${r.fineTuned.method === 'unlearn' ? 'unlearned' : 'finetuned'}.h5`;
      await folder.writeModel(t.fineTuned!.repairedModel, r.model);
    }
    const { out: _out, ...optionsRest } = opts;
    const totalSeconds = (performance.now() - t0) / 1000;
    const result: AuditReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      model: opts.model,
      ...(opts.arch ? { arch: opts.arch } : {}),
      backend: info.backend,
      workers: shards.length,
      layer: plan.conv,
      rankedBy: plan.rankLayer,
      order: opts.order,
      classes,
      ...(target !== undefined ? { target } : {}),
      options: { ...optionsRest, poisonedValid: final(optionsRest.poisonedValid), poisonedTest: final(optionsRest.poisonedTest) },
      data: Object.fromEntries(Object.entries(data).map(([k, d]) => [k, { ...d, file: final(d.file)! }])) as AuditReport['data'],
      baseline: {
        validAccuracy,
        ...(validAttackRate !== undefined ? { validAttackRate } : {}),
        ...(ct ? { testAccuracy: ct.bad.correct / ct.count } : {}),
        ...(pt && hasTarget ? { testAttackRate: pt.bad.hits / pt.count } : {}),
      },
      ranking,
      steps,
      thresholds,
      repairedNetwork: {
        rule: `G(x) = B(x) if B(x) == B'(x) else ${classes}`,
        badNet: opts.model,
        flaggedClass: classes,
        prunedNets,
      },
      samples,
      ...(repaired?.trigger ? { trigger: repaired.trigger } : {}),
      timing: { totalSeconds, phases, imagesPerSecond: (validTotal + testTotal) / totalSeconds },
      ...(opts.trigger ? { attackEstimate: 'reconstructed-trigger' as const, reconstructedTrigger: opts.trigger } : {}),
    };
    endPhase('writing');
    result.timing.phases = { ...phases };
    result.timing.totalSeconds = (performance.now() - t0) / 1000;
    folder.writeText('report.json', JSON.stringify(result, null, 1));
    folder.writeText('report.md', reportMarkdown(result));
    check();
    folder.commit();
    report({ phase: 'done', message: `report written to ${opts.out}` });
    return result;
  } catch (e) {
    folder.abandon();
    throw e;
  }
}

/** The attacker's target: --target, else the label every poisoned row carries. */
function resolveTarget(given: number | undefined, classes: number, sets: (DataSetInfo | undefined)[], labels: (Int32Array | undefined)[]): number | undefined {
  if (given !== undefined) {
    if (given < 0 || given >= classes) throw new UserError(`--target ${given} is not a class of this model (0..${classes - 1})`);
    return given;
  }
  let found: number | undefined;
  sets.forEach((d, i) => {
    if (!d) return;
    const l = labels[i];
    if (!l) throw new UserError('poisoned data has no "label" dataset; give the attacker\'s target with --target', d.file, 'no-target');
    const first = l[0];
    if (!l.every((v) => v === first)) throw new UserError('poisoned data labels are not all the same, so the target is unclear; give it with --target', d.file, 'no-target');
    if (found !== undefined && found !== first) throw new UserError(`poisoned sets disagree on the target (${found} vs ${first}); give it with --target`, d.file, 'no-target');
    found = first;
  });
  return found;
}
