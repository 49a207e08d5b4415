// npm run bench: the full audit at the lab's real scale, through the worker as
// a user runs it, against two references measured in the same run: one plain
// forward pass over every image (this algorithm's floor) and the notebook's way
// (a full pass of B' after every pruned channel), timed on a subset.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditReport } from '../../src/core/types';
import { runJob } from '../../src/worker/client';
import { ShardProcess } from '../../src/worker/shardProcess';
import { ensureBenchData, type BenchModel } from './data';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const workerPath = path.join(root, 'dist/worker.mjs');
const { values: args } = parseArgs({ options: {
  workers: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, 'notebook-subset': { type: 'string' },
  smoke: { type: 'boolean' }, backend: { type: 'string' }, 'audit-only': { type: 'boolean' }, 'train-only': { type: 'boolean' },
} });

/** Peak resident memory of a process tree, polled from /proc (VmHWM is each process's own peak). */
class PeakRss {
  private peaks = new Map<number, number>();
  private timer: NodeJS.Timeout;
  constructor(private rootPid: () => number | undefined) {
    this.timer = setInterval(() => this.poll(), 100);
  }
  private tree(pid: number): number[] {
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      return [pid, ...kids.flatMap((k) => this.tree(k))];
    } catch {
      return [];
    }
  }
  poll() {
    const pid = this.rootPid();
    if (!pid) return;
    for (const p of this.tree(pid)) {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
        if (m) this.peaks.set(p, Math.max(this.peaks.get(p) ?? 0, Number(m[1]) * 1024));
      } catch { /* exited */ }
    }
  }
  stop() {
    clearInterval(this.timer);
    const v = [...this.peaks.values()];
    return { maxProcess: Math.max(0, ...v), sum: v.reduce((a, b) => a + b, 0), processes: v.length };
  }
}

/** A plain forward pass of `model` over [start,end) of each file, spread over `workers` processes. */
async function forwardPass(m: { model: string; arch?: string }, parts: { file: string; start: number; end: number }[], workers: number) {
  const shards = Array.from({ length: workers }, () => new ShardProcess(workerPath));
  const rss = { peak: 0 };
  try {
    await Promise.all(shards.map((s) => s.init({ model: m.model, arch: m.arch, rankBy: 'pool', batchSize: 256, backend: args.backend as never })));
    const items = parts.flatMap((p) => {
      const out: { file: string; start: number; end: number }[] = [];
      for (let s = p.start; s < p.end; s += 2048) out.push({ file: p.file, start: s, end: Math.min(p.end, s + 2048) });
      return out;
    });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(shards.map(async (s) => {
      while (next < items.length) await s.evaluate(items[next++], [], undefined, 0);
    }));
    const seconds = (performance.now() - t0) / 1000;
    const images = parts.reduce((a, p) => a + p.end - p.start, 0);
    return { seconds, images, imagesPerSecond: images / seconds, rss };
  } finally {
    await Promise.all(shards.map((s) => s.dispose()));
  }
}

function benchModel(): BenchModel & { name: string } {
  const lab = path.resolve(root, '../shared/fixtures/lab-badnet');
  if (existsSync(path.join(lab, 'bd_weights.h5'))) {
    return { name: 'lab BadNet (bd_weights.h5)', model: path.join(lab, 'bd_weights.h5'), arch: path.join(lab, 'bd_net_pruned45_keras2.15.h5'), cleanBase: path.join(lab, 'faces_clean.h5'), poisonedBase: path.join(lab, 'faces_sunglasses.h5') };
  }
  console.log('../shared/fixtures is absent: benchmarking the bundled demo BadNet at lab-size data instead');
  return { name: 'demo BadNet (demo/bd_net.h5)', model: path.join(root, 'demo/bd_net.h5'), cleanBase: path.join(root, 'demo/valid.h5'), poisonedBase: path.join(root, 'demo/bd_valid.h5') };
}

async function main() {
  const workers = Number(args.workers ?? Math.min(4, os.availableParallelism()));
  const m = benchModel();
  const dataDir = path.resolve(args.data ?? path.join(root, 'bench/data'));
  // --train-only needs B'_2's pruned channels and the clean validation set: no test sets.
  const trainOnly = args['train-only'];
  const files = args.smoke ? smokeFiles(m) : await ensureBenchData(dataDir, m, console.log, trainOnly ? ['cleanValid', 'poisonedValid'] : undefined);
  const out = path.resolve(args.out ?? path.join(root, 'bench/out'));
  console.log(`model: ${m.name}; data: ${dataDir}; ${workers} worker process(es); ${os.cpus().length} cores`);

  // 1. The audit, as a user runs it.
  let childPid: number | undefined;
  const rss = new PeakRss(() => childPid);
  const t0 = performance.now();
  const report = await runJob<AuditReport>({
    kind: 'audit',
    options: trainOnly
      ? { model: m.model, arch: m.arch, cleanValid: files.cleanValid, poisonedValid: files.poisonedValid, thresholds: [2], order: 'increasing', rankBy: 'pool', fullSweep: false, out, batchSize: 256, workers, backend: args.backend as never }
      : { model: m.model, arch: m.arch, ...files, thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: true, out, batchSize: 256, workers, backend: args.backend as never },
  }, { workerPath, onSpawn: (c) => { childPid = c.pid; } });
  const auditSeconds = (performance.now() - t0) / 1000;
  const auditRss = rss.stop();
  const counts = Object.values(report.data).map((d) => d!.count);
  const totalImages = counts.reduce((a, b) => a + b, 0);
  if (trainOnly) {
    const { rows } = await trainingEpochs(m, files.cleanValid, report, workers);
    console.log(rows.join('\n'));
    return;
  }
  if (args['audit-only']) {
    // For A/B runs of two builds: the audit alone; bench/results.* stay as they are.
    const phases = Object.entries(report.timing.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
    console.log(`audit ${auditSeconds.toFixed(1)} s (${phases}); ${report.steps.length} steps; peak RSS ${(auditRss.sum / 2 ** 20).toFixed(0)} MB in ${auditRss.processes} processes`);
    return;
  }

  // 2. The floor: one plain forward pass of B over every image, 1 process and `workers` processes.
  const all = Object.values(files).map((file, i) => ({ file, start: 0, end: counts[i] }));
  const floor1 = await forwardPass(m, all, 1);
  const floorN = workers > 1 ? await forwardPass(m, all, workers) : floor1;

  // 3. The notebook's way, timed on a subset with B' (repaired_2.h5) and extrapolated.
  const subset = Number(args['notebook-subset'] ?? 2048);
  const valid = [files.cleanValid, files.poisonedValid].map((file, i) => ({ file, start: 0, end: Math.min(subset, counts[i]) }));
  const repaired = path.join(out, report.thresholds.find((t) => t.reached)?.repairedModel ?? '');
  const nb = await forwardPass({ model: existsSync(repaired) ? repaired : m.model }, valid, workers);
  const validImages = counts[0] + counts[1];
  const testImages = counts[2] + counts[3];
  const notebookPasses = report.steps.length * validImages + report.thresholds.filter((t) => t.reached).length * 2 * testImages;
  const notebookSeconds = notebookPasses / nb.imagesPerSecond;

  // 4. One epoch of repair training on the clean validation set, every layer and only those above the pruned one.
  const training = await trainingEpochs(m, files.cleanValid, report, workers);

  const result = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
    model: m.name,
    backend: report.backend,
    workers,
    images: { cleanValid: counts[0], poisonedValid: counts[1], cleanTest: counts[2], poisonedTest: counts[3], total: totalImages },
    audit: {
      wallSeconds: auditSeconds,
      phases: report.timing.phases,
      steps: report.steps.length,
      imagesPerSecond: totalImages / auditSeconds,
      peakRssMaxProcessMB: auditRss.maxProcess / 2 ** 20,
      peakRssSumMB: auditRss.sum / 2 ** 20,
      processes: auditRss.processes,
    },
    forwardPass: {
      oneProcess: { seconds: floor1.seconds, imagesPerSecond: floor1.imagesPerSecond },
      workers: { seconds: floorN.seconds, imagesPerSecond: floorN.imagesPerSecond },
      parallelSpeedup: floorN.imagesPerSecond / floor1.imagesPerSecond,
    },
    notebook: { subsetImages: nb.images, imagesPerSecond: nb.imagesPerSecond, imagePasses: notebookPasses, extrapolatedSeconds: notebookSeconds },
    ratios: { auditOverForwardPass: auditSeconds / floorN.seconds, speedupOverNotebook: notebookSeconds / auditSeconds },
    training: training.result,
    results: report.thresholds.map((t) => ({ drop: t.drop, pruned: t.pruned, goodNet: t.goodNet })),
  };
  const f = (v: number, d = 1) => v.toFixed(d);
  const lines = [
    `| measure | value |`, `|---|---|`,
    `| images (valid + bd_valid + test + bd_test) | ${totalImages.toLocaleString('en-US')} |`,
    `| backend, processes | ${report.backend} × ${workers} |`,
    `| audit wall time (full sweep, ${report.steps.length} steps) | ${f(auditSeconds)} s |`,
    ...Object.entries(report.timing.phases).map(([k, v]) => `| · ${k} | ${f(v)} s |`),
    `| audit throughput | ${f(totalImages / auditSeconds, 0)} images/s |`,
    `| plain forward pass, 1 process | ${f(floor1.seconds)} s (${f(floor1.imagesPerSecond, 0)} images/s) |`,
    `| plain forward pass, ${workers} processes | ${f(floorN.seconds)} s (${f(floorN.imagesPerSecond, 0)} images/s, ${f(result.forwardPass.parallelSpeedup, 2)}× one process) |`,
    `| notebook's way (extrapolated from ${nb.images} images) | ${f(notebookSeconds)} s (${notebookPasses.toLocaleString('en-US')} image passes) |`,
    `| **audit ÷ plain forward pass** | **${f(result.ratios.auditOverForwardPass, 2)}×** |`,
    `| **speed-up over the notebook's way** | **${f(result.ratios.speedupOverNotebook, 1)}×** |`,
    `| peak RSS, largest process / all ${auditRss.processes} processes | ${f(result.audit.peakRssMaxProcessMB, 0)} MB / ${f(result.audit.peakRssSumMB, 0)} MB |`,
    ...training.rows,
  ];
  console.log(lines.join('\n'));
  if (!args.smoke) {
    mkdirSync(path.join(root, 'bench'), { recursive: true });
    writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(path.join(root, 'bench/results.md'), lines.join('\n') + '\n');
  }
}

/**
 * One training epoch of B'_2 (the audit's 2% threshold) on the clean validation set, Adam
 * lr 1e-4, batch 64: every layer in this process, every layer data parallel over `workers`
 * shard processes, and only the layers above the pruned one in this process. Timed without
 * the validation pass that follows each epoch; 'above' includes caching the pruned layer's
 * activations once, which a real repair shares between thresholds and epochs. Each row also
 * says where the epoch's time went (see TrainProfile).
 */
async function trainingEpochs(m: BenchModel, cleanValid: string, report: AuditReport, workers: number) {
  const { initBackend } = await import('../../src/core/model/backend');
  const { loadModel } = await import('../../src/core/keras/load');
  const { Net } = await import('../../src/core/model/net');
  const { makePlan } = await import('../../src/core/audit/plan');
  const { withPrunedChannels } = await import('../../src/core/audit/output');
  const { registerGradients } = await import('../../src/core/train/gradients');
  const { activationsOf, cacheFeed, imageFeed, labelsOf, readImageSet } = await import('../../src/core/train/feed');
  const { train } = await import('../../src/core/train/trainer');
  type Profile = import('../../src/core/train/trainer').TrainProfile;
  const backend = await initBackend((args.backend as never) ?? 'auto');
  registerGradients();
  const model = await loadModel(m.model, m.arch);
  const t = report.thresholds.find((x) => x.reached) ?? report.thresholds[0];
  const b = new Net(model);
  const plan = makePlan(b, 'pool');
  const set = await readImageSet(cleanValid, model.graph.inputShape, b.classes);
  const kinds = [
    { key: 'all1', layers: 'all', processes: 1 },
    ...(workers > 1 ? [{ key: `all${workers}`, layers: 'all', processes: workers }] : []),
    { key: 'above1', layers: 'above', processes: 1 },
  ] as const;
  const out: Record<string, { layers: string; processes: number; images: number; epochSeconds: number; cacheSeconds: number; imagesPerSecond: number; validAccuracyBefore: number; validAccuracyAfter: number; profile: Profile; loadAverage: number[] }> = {};
  for (const { key, layers, processes } of kinds) {
    const net = new Net(withPrunedChannels(model, plan.conv, t.prunedChannels), true);
    const shards = processes > 1 ? Array.from({ length: processes }, () => new ShardProcess(workerPath)) : [];
    try {
      await Promise.all(shards.map((s) => s.init({ model: m.model, arch: m.arch, rankBy: 'pool', batchSize: 256, backend: args.backend as never })));
      const t0 = performance.now();
      const images = imageFeed(set, model.graph.inputShape);
      let feed = images;
      if (layers === 'above') {
        const cache = await activationsOf(net, images, plan.cachePoint, 256);
        feed = cacheFeed(plan.cachePoint, plan.cacheShape, cache);
      }
      const cacheSeconds = (performance.now() - t0) / 1000;
      const accuracy = async () => {
        const labels = await labelsOf(net, feed, 256);
        return { validAccuracy: labels.reduce((a, l, i) => a + (l === set.labels![i] ? 1 : 0), 0) / labels.length };
      };
      let profile!: Profile;
      const epochs = await train({
        net, feed, labels: set.labels!, conv: plan.conv, pruned: t.prunedChannels, share: 0, workers: shards.length ? shards : undefined,
        options: { epochs: 1, learningRate: 1e-4, optimizer: 'adam', batchSize: 64, seed: 1 }, monitor: accuracy, onProfile: (p) => { profile = p; },
      });
      out[key] = { layers, processes, images: set.count, epochSeconds: epochs[1].seconds, cacheSeconds, imagesPerSecond: set.count / epochs[1].seconds, validAccuracyBefore: epochs[0].validAccuracy, validAccuracyAfter: epochs[1].validAccuracy, profile, loadAverage: os.loadavg() };
    } finally {
      net.dispose();
      await Promise.all(shards.map((s) => s.dispose()));
    }
  }
  b.dispose();
  const f = (v: number, d = 1) => v.toFixed(d);
  const rows = kinds.map(({ key }) => {
    const r = out[key];
    const p = r.profile;
    const where = `rows ${f(p.rows)} s, gradients ${f(p.grads)} s (slowest shard computing ${f(p.compute)} s), summing ${f(p.sum)} s, optimizer step ${f(p.apply)} s; CPU time ${r.processes > 1 ? `of the busiest shard ${f(p.shardCpu)} s, of the coordinator ${f(p.cpu)} s` : `${f(p.cpu)} s`}`;
    return `| training epoch, ${r.layers === 'all' ? 'every layer' : `layers above ${plan.conv}`} (${r.images.toLocaleString('en-US')} images, ${backend} × ${r.processes}${r.processes > 1 ? ' shard processes' : ''}) | ${f(r.epochSeconds)} s (${f(r.imagesPerSecond, 0)} images/s${r.layers === 'above' ? `; caching ${plan.cachePoint} once: ${f(r.cacheSeconds)} s` : ''}; ${where}; valid acc ${f(100 * r.validAccuracyBefore, 2)}% → ${f(100 * r.validAccuracyAfter, 2)}%; load average ${f(r.loadAverage[0], 2)}) |`;
  });
  return { result: { threshold: t.drop, ...out }, rows };
}

/** The commit measured, with "+changes" when the tree differs from it; undefined outside git. */
function gitCommit(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}+changes` : head;
  } catch {
    return undefined;
  }
}

/** --smoke: the same code on the small fixture/demo files (run inside npm test). */
function smokeFiles(m: BenchModel) {
  return { cleanValid: m.cleanBase, poisonedValid: m.poisonedBase, cleanTest: m.cleanBase, poisonedTest: m.poisonedBase };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
