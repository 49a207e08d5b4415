// npm run bench: the full audit at the lab's real scale, through the worker as
// a user runs it, against two references measured in the same run: one plain
// forward pass over every image (this algorithm's floor) and the notebook's way
// (a full pass of B' after every pruned channel), timed on a subset. Each is
// run on ONNX Runtime and on wasm, so the two engines compare within one run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditReport, Backend, ScanReport } from '../../src/core/types';
import { runJob } from '../../src/worker/client';
import { ShardProcess } from '../../src/worker/shardProcess';
import { multiplyAdds } from '../../src/core/model/cost';
import { loadRunnable } from '../../src/core/runnable';
import { convolutionTimes, matMulRate } from './ceiling';
import { ensureBenchData, SIZES, type BenchModel } from './data';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const workerPath = path.join(root, 'dist/worker.mjs');
const { values: args } = parseArgs({ options: {
  workers: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, 'notebook-subset': { type: 'string' },
  smoke: { type: 'boolean' }, backend: { type: 'string' }, 'audit-only': { type: 'boolean' }, 'train-only': { type: 'boolean' },
  // --images N: N images in each of the four sets (bench/data-N/), for a quick check; results are not saved.
  images: { type: 'string' },
  'scan-only': { type: 'boolean' }, 'scan-images': { type: 'string' },
  // --engines-only: the audit and the plain passes on each backend, printed, not saved (for A/B runs).
  'engines-only': { type: 'boolean' },
} });

/** CPU seconds (user + system) a process has used so far, from /proc; 0 once it has exited. */
function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

/**
 * Peak resident memory of a process tree, polled from /proc (VmHWM is each process's own peak),
 * and the CPU time it used: on a shared machine, CPU seconds compare engines where wall time
 * also counts the other tenants.
 */
class PeakRss {
  private peaks = new Map<number, number>();
  private cpu = new Map<number, number>();
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
        this.cpu.set(p, Math.max(this.cpu.get(p) ?? 0, cpuSeconds(p)));
      } catch { /* exited */ }
    }
  }
  stop() {
    clearInterval(this.timer);
    const v = [...this.peaks.values()];
    return { maxProcess: Math.max(0, ...v), sum: v.reduce((a, b) => a + b, 0), processes: v.length, cpuSeconds: [...this.cpu.values()].reduce((a, b) => a + b, 0) };
  }
}

/** A plain forward pass of `model` over [start,end) of each file, spread over `workers` processes of `threads` threads each. */
async function forwardPass(m: { model: string; arch?: string }, parts: { file: string; start: number; end: number }[], backend: Backend, workers: number, threads = 1) {
  const shards = Array.from({ length: workers }, () => new ShardProcess(workerPath, threads));
  try {
    await Promise.all(shards.map((s) => s.init({ model: m.model, arch: m.arch, rankBy: 'pool', batchSize: 256, backend })));
    const items = parts.flatMap((p) => {
      const out: { file: string; start: number; end: number }[] = [];
      for (let s = p.start; s < p.end; s += 2048) out.push({ file: p.file, start: s, end: Math.min(p.end, s + 2048) });
      return out;
    });
    const cpu0 = shards.reduce((a, s) => a + cpuSeconds(s.pid!), 0);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(shards.map(async (s) => {
      while (next < items.length) await s.evaluate(items[next++], [], undefined, 0);
    }));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = shards.reduce((a, s) => a + cpuSeconds(s.pid!), 0) - cpu0;
    const images = parts.reduce((a, p) => a + p.end - p.start, 0);
    return { seconds, images, imagesPerSecond: images / seconds, cpuSeconds: cpu };
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

type Files = Awaited<ReturnType<typeof ensureBenchData>>;
const trainOnly = args['train-only'];
const f = (v: number, d = 1) => v.toFixed(d);

/** The audit as a user runs it, through the worker, with its peak memory. */
async function audit(m: BenchModel, files: Files, out: string, backend: Backend, workers: number) {
  let childPid: number | undefined;
  const rss = new PeakRss(() => childPid);
  const t0 = performance.now();
  const report = await runJob<AuditReport>({
    kind: 'audit',
    options: trainOnly
      ? { model: m.model, arch: m.arch, cleanValid: files.cleanValid, poisonedValid: files.poisonedValid, thresholds: [2], order: 'increasing', rankBy: 'pool', fullSweep: false, out, batchSize: 256, workers, backend }
      : { model: m.model, arch: m.arch, ...files, thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: true, out, batchSize: 256, workers, backend },
  }, { workerPath, onSpawn: (c) => { childPid = c.pid; } });
  const seconds = (performance.now() - t0) / 1000;
  if (report.backend !== backend) throw new Error(`asked for ${backend}, the audit ran on ${report.backend}`);
  return { report, seconds, rss: rss.stop() };
}

/** Everything measured on one backend: the audit, the plain pass (in each process/thread split), the notebook's way. */
async function measure(m: BenchModel, files: Files, out: string, backend: Backend, workers: number) {
  const a = await audit(m, files, out, backend, workers);
  const { report } = a;
  const counts = Object.values(report.data).map((d) => d!.count);
  const totalImages = counts.reduce((x, y) => x + y, 0);
  const phases = Object.entries(report.timing.phases).map(([k, v]) => `${k} ${f(v)}`).join(', ');
  console.log(`${backend}: audit ${f(a.seconds)} s, ${f(a.rss.cpuSeconds)} CPU s (${phases}); ${report.steps.length} steps; peak RSS ${f(a.rss.sum / 2 ** 20, 0)} MB in ${a.rss.processes} processes`);
  trainingReport = report;
  if (args['audit-only'] || args['train-only']) return undefined;

  // The floor: one plain forward pass of B over every image. ONNX Runtime can also
  // use the cores from one process: 1 process × `workers` threads is measured too.
  const all = Object.values(files).map((file, i) => ({ file, start: 0, end: counts[i] }));
  const one = await forwardPass(m, all, backend, 1);
  const split = workers > 1 ? await forwardPass(m, all, backend, workers) : one;
  const threaded = backend === 'onnxruntime' && workers > 1 ? await forwardPass(m, all, backend, 1, workers) : undefined;
  // The same choice for the whole audit: one process with every core's threads.
  const auditThreaded = threaded ? await audit(m, files, `${out}-threads`, backend, 1) : undefined;

  // The notebook's way, timed on a subset with B' (repaired_2.h5) and extrapolated.
  const subset = Number(args['notebook-subset'] ?? 2048);
  const valid = [files.cleanValid, files.poisonedValid].map((file, i) => ({ file, start: 0, end: Math.min(subset, counts[i]) }));
  const repaired = path.join(out, report.thresholds.find((t) => t.reached)?.repairedModel ?? '');
  const nb = await forwardPass({ model: existsSync(repaired) ? repaired : m.model }, valid, backend, workers);
  const notebookPasses = report.steps.length * (counts[0] + counts[1]) + report.thresholds.filter((t) => t.reached).length * 2 * (counts[2] + counts[3]);
  const notebookSeconds = notebookPasses / nb.imagesPerSecond;
  return {
    backend,
    workers,
    images: { cleanValid: counts[0], poisonedValid: counts[1], cleanTest: counts[2], poisonedTest: counts[3], total: totalImages },
    audit: {
      wallSeconds: a.seconds,
      cpuSeconds: a.rss.cpuSeconds,
      phases: report.timing.phases,
      steps: report.steps.length,
      imagesPerSecond: totalImages / a.seconds,
      peakRssMaxProcessMB: a.rss.maxProcess / 2 ** 20,
      peakRssSumMB: a.rss.sum / 2 ** 20,
      processes: a.rss.processes,
      ...(auditThreaded ? { oneProcessThreadedSeconds: auditThreaded.seconds } : {}),
    },
    forwardPass: {
      oneProcess: { seconds: one.seconds, cpuSeconds: one.cpuSeconds, imagesPerSecond: one.imagesPerSecond },
      workers: { seconds: split.seconds, cpuSeconds: split.cpuSeconds, imagesPerSecond: split.imagesPerSecond },
      parallelSpeedup: split.imagesPerSecond / one.imagesPerSecond,
      ...(threaded ? { oneProcessThreaded: { threads: workers, seconds: threaded.seconds, cpuSeconds: threaded.cpuSeconds, imagesPerSecond: threaded.imagesPerSecond } } : {}),
    },
    notebook: { subsetImages: nb.images, imagesPerSecond: nb.imagesPerSecond, imagePasses: notebookPasses, extrapolatedSeconds: notebookSeconds },
    ratios: { auditOverForwardPass: a.seconds / split.seconds, speedupOverNotebook: notebookSeconds / a.seconds },
    results: report.thresholds.map((t) => ({ drop: t.drop, pruned: t.pruned, prunedModel: t.prunedModel, goodNet: t.goodNet })),
    steps: report.steps,
  };
}

type Run = NonNullable<Awaited<ReturnType<typeof measure>>>;
/** The last audit's report: the repair training starts from its first B'. */
let trainingReport: AuditReport | undefined;

const pass = (p: { seconds: number; cpuSeconds: number; imagesPerSecond: number }) => `${f(p.seconds)} s (${f(p.imagesPerSecond, 0)} images/s; ${f(p.cpuSeconds)} CPU s)`;

/**
 * The yardsticks (see ceiling.ts): the model's multiply-adds per image, what one core does in ONNX
 * Runtime's best case (a large one-thread MatMul), and the model's convolutions run alone.
 */
async function yardstick(m: BenchModel) {
  const { net } = await loadRunnable(m.model, m.arch, 'wasm');
  try {
    const multiplyAddsPerImage = [...multiplyAdds(net).values()].reduce((a, b) => a + b, 0);
    return { multiplyAddsPerImage, matMulGigaMultiplyAddsPerSecond: await matMulRate(), convolutionMicroseconds: await convolutionTimes(net) };
  } finally {
    net.dispose();
  }
}
type Yardstick = Awaited<ReturnType<typeof yardstick>>;
/** A pass's rate in billions of multiply-adds a second, per process, and its share of the one-thread MatMul rate. */
function arithmetic(y: Yardstick, imagesPerSecond: number, processes: number): string {
  const rate = (imagesPerSecond / processes) * y.multiplyAddsPerImage / 1e9;
  return `${f(rate)} GMAC/s a process${y.matMulGigaMultiplyAddsPerSecond ? `, ${f((100 * rate) / y.matMulGigaMultiplyAddsPerSecond, 0)}% of the MatMul rate` : ''}`;
}

function table(runs: Run[], y: Yardstick): string[] {
  const col = (fn: (r: Run) => string) => runs.map(fn).join(' | ');
  const r0 = runs[0];
  const lines = [
    `| measure | ${col((r) => r.backend)} |`, `|---|${runs.map(() => '---|').join('')}`,
    `| images (valid + bd_valid + test + bd_test) | ${col((r) => r.images.total.toLocaleString('en-US'))} |`,
    `| processes × threads | ${col((r) => `${r.workers} × 1`)} |`,
    `| audit wall time (full sweep, ${r0.audit.steps} steps) | ${col((r) => `${f(r.audit.wallSeconds)} s`)} |`,
    `| audit CPU time, all processes | ${col((r) => `${f(r.audit.cpuSeconds)} s`)} |`,
    ...Object.keys(r0.audit.phases).map((k) => `| · ${k} | ${col((r) => `${f(r.audit.phases[k as keyof typeof r.audit.phases] ?? 0)} s`)} |`),
    `| audit in 1 process × ${r0.workers} threads | ${col((r) => (r.audit.oneProcessThreadedSeconds ? `${f(r.audit.oneProcessThreadedSeconds)} s` : ''))} |`,
    `| audit throughput | ${col((r) => `${f(r.audit.imagesPerSecond, 0)} images/s`)} |`,
    `| plain forward pass, 1 process × 1 thread | ${col((r) => pass(r.forwardPass.oneProcess))} |`,
    `| plain forward pass, ${r0.workers} processes × 1 thread | ${col((r) => `${pass(r.forwardPass.workers)}, ${f(r.forwardPass.parallelSpeedup, 2)}× one process`)} |`,
    `| plain forward pass, 1 process × ${r0.workers} threads | ${col((r) => (r.forwardPass.oneProcessThreaded ? pass(r.forwardPass.oneProcessThreaded) : ''))} |`,
    `| · in multiply-adds (${f(y.multiplyAddsPerImage / 1e6, 2)} M an image), 1 process × 1 thread | ${col((r) => arithmetic(y, r.forwardPass.oneProcess.imagesPerSecond, 1))} |`,
    `| · the same, ${r0.workers} processes × 1 thread | ${col((r) => arithmetic(y, r.forwardPass.workers.imagesPerSecond, r.workers))} |`,
    `| notebook's way (extrapolated) | ${col((r) => `${f(r.notebook.extrapolatedSeconds)} s`)} |`,
    `| **audit ÷ plain forward pass** | ${col((r) => `**${f(r.ratios.auditOverForwardPass, 2)}×**`)} |`,
    `| **speed-up over the notebook's way** | ${col((r) => `**${f(r.ratios.speedupOverNotebook, 1)}×**`)} |`,
    `| peak RSS, largest process / all processes | ${col((r) => `${f(r.audit.peakRssMaxProcessMB, 0)} MB / ${f(r.audit.peakRssSumMB, 0)} MB (${r.audit.processes})`)} |`,
  ];
  return lines;
}

/** ONNX Runtime against wasm, from the same run: the targets of issue 16. */
function comparison(runs: Run[]) {
  const ort = runs.find((r) => r.backend === 'onnxruntime'), wasm = runs.find((r) => r.backend === 'wasm');
  if (!ort || !wasm) return undefined;
  const same = JSON.stringify([ort.steps, ort.results]) === JSON.stringify([wasm.steps, wasm.results]);
  const stepDiffs = ort.steps.filter((s, i) => JSON.stringify(s) !== JSON.stringify(wasm.steps[i])).length;
  return {
    plainPassSpeedup: ort.forwardPass.workers.seconds > 0 ? wasm.forwardPass.workers.seconds / ort.forwardPass.workers.seconds : 0,
    plainPassCpuSpeedup: wasm.forwardPass.workers.cpuSeconds / ort.forwardPass.workers.cpuSeconds,
    auditOverWasmAudit: ort.audit.wallSeconds / wasm.audit.wallSeconds,
    auditCpuOverWasmAuditCpu: ort.audit.cpuSeconds / wasm.audit.cpuSeconds,
    auditCpuOverPlainPassCpu: ort.audit.cpuSeconds / ort.forwardPass.workers.cpuSeconds,
    auditOverPlainPass: ort.ratios.auditOverForwardPass,
    sameNumbers: same,
    stepsThatDiffer: stepDiffs,
    wasmPlainPassImagesPerSecond: wasm.forwardPass.workers.imagesPerSecond,
    workers: wasm.workers,
  };
}

/** The comparison's rows (none unless both engines ran), with the arithmetic a 3.5× plain pass would take. */
function comparisonTable(cmp: ReturnType<typeof comparison>, y: Yardstick, steps: number): string[] {
  if (!cmp) return [];
  const fastestConvolutions = y.convolutionMicroseconds.reduce((a, c) => a + Math.min(c.blocked, c.plain), 0);
  return ['', `| ONNX Runtime against wasm (same run) | value |`, `|---|---|`,
    `| plain pass, onnxruntime speed-up over wasm (wall / CPU time) | **${f(cmp.plainPassSpeedup, 2)}×** / ${f(cmp.plainPassCpuSpeedup, 2)}× |`,
    `| audit, onnxruntime ÷ wasm (wall / CPU time) | **${f(cmp.auditOverWasmAudit, 2)}×** / ${f(cmp.auditCpuOverWasmAuditCpu, 2)}× |`,
    `| audit ÷ plain pass on onnxruntime (wall / CPU time) | **${f(cmp.auditOverPlainPass, 2)}×** / ${f(cmp.auditCpuOverPlainPassCpu, 2)}× |`,
    `| same steps, thresholds, B' and G counts | ${cmp.sameNumbers ? 'yes' : `**no**: ${cmp.stepsThatDiffer} of ${steps} steps differ`} |`,
    `| one core's MatMul rate on onnxruntime (1,024 × 1,024, 1 thread) | ${y.matMulGigaMultiplyAddsPerSecond ? `${f(y.matMulGigaMultiplyAddsPerSecond)} GMAC/s` : 'not measured'} |`,
    ...y.convolutionMicroseconds.map((c) => `| ${c.layer} alone (32 images a run, 1 thread), blocked / plain kernels | ${f(c.blocked)} / ${f(c.plain)} µs an image |`),
    `| the convolutions alone, each at its faster layout | ${f(fastestConvolutions)} µs an image (${f(1e6 / fastestConvolutions, 0)} images/s) |`,
    `| a plain pass 3.5× wasm's (issue 16's target) would take | ${f((1e6 * cmp.workers) / (3.5 * cmp.wasmPlainPassImagesPerSecond))} µs an image a process, ${arithmetic(y, 3.5 * cmp.wasmPlainPassImagesPerSecond, cmp.workers)} |`];
}

async function main() {
  const workers = Number(args.workers ?? Math.min(4, os.availableParallelism()));
  const backends = (args.backend ? [args.backend] : args['train-only'] ? ['wasm'] : ['onnxruntime', 'wasm']) as Backend[];
  const m = benchModel();
  const sizes = args.images ? { valid: Number(args.images), test: Number(args.images) } : SIZES;
  const dataDir = path.resolve(args.data ?? path.join(root, args.images ? `bench/data-${args.images}` : 'bench/data'));
  // --train-only needs B'_2's pruned channels and the clean validation set: no test sets.
  const files = args.smoke ? smokeFiles(m) : await ensureBenchData(dataDir, m, console.log, sizes, trainOnly ? ['cleanValid', 'poisonedValid'] : undefined);
  const out = path.resolve(args.out ?? path.join(root, 'bench/out'));
  console.log(`model: ${m.name}; data: ${dataDir}; ${workers} worker process(es); ${os.cpus().length} cores; backends ${backends.join(', ')}`);

  if (args['scan-only']) {
    console.log((await benchScan(m, files.cleanValid, path.join(out, 'scan'), workers)).line);
    return;
  }
  // Before the engines run: the yardsticks want the machine to themselves.
  const y = args['audit-only'] || args['train-only'] ? undefined : await yardstick(m);
  const runs: Run[] = [];
  for (const backend of backends) {
    const r = await measure(m, files, `${out}-${backend}`, backend, workers);
    if (r) runs.push(r);
  }
  if (args['audit-only']) return; // for A/B runs of two builds; bench/results.* stay as they are
  if (!y) { // --train-only
    console.log((await trainingEpochs(m, files.cleanValid, trainingReport!, workers)).rows.join('\n'));
    return;
  }
  if (args['engines-only']) {
    console.log([...table(runs, y), ...comparisonTable(comparison(runs), y, runs[0].steps.length)].join('\n'));
    return;
  }
  const training = await trainingEpochs(m, files.cleanValid, trainingReport!, workers);

  const cmp = comparison(runs);
  const lines = [...table(runs, y), ...comparisonTable(cmp, y, runs[0].steps.length)];
  // The scan (clean data only), as a user runs it.
  const scan = await benchScan(m, files.cleanValid, path.join(out, 'scan'), workers);
  lines.push('', '| repair training and scan | time |', '|---|---|', ...training.rows, scan.line);
  console.log(lines.join('\n'));
  const result = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
    model: m.name,
    yardstick: y,
    runs: runs.map(({ steps: _, ...r }) => r),
    comparison: cmp,
    training: training.result,
    scan: scan.result,
  };
  if (!args.smoke && !args.images) {
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
  const { initBackend, tfjsBackend } = await import('../../src/core/model/backend');
  const { loadModel } = await import('../../src/core/keras/load');
  const { Net } = await import('../../src/core/model/net');
  const { makePlan } = await import('../../src/core/audit/plan');
  const { withPrunedChannels } = await import('../../src/core/audit/output');
  const { registerGradients } = await import('../../src/core/train/gradients');
  const { activationsOf, cacheFeed, imageFeed, labelsOf, readImageSet } = await import('../../src/core/train/feed');
  const { train } = await import('../../src/core/train/trainer');
  type Profile = import('../../src/core/train/trainer').TrainProfile;
  await initBackend((args.backend as never) ?? 'auto');
  // Gradients run on tfjs (wasm, else cpu) whatever engine runs the forward passes: name that one.
  const backend = tfjsBackend();
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

/** The scan of the bench model on `images` clean images of `clean`: wall time and peak memory of its processes. */
async function benchScan(m: BenchModel, clean: string, out: string, workers: number) {
  const images = Number(args['scan-images'] ?? 200);
  let childPid: number | undefined;
  const rss = new PeakRss(() => childPid);
  const t0 = performance.now();
  const r = await runJob<ScanReport>({
    kind: 'scan',
    options: { model: m.model, arch: m.arch, clean, images, labels: 3, calibration: 20, seed: 1, out, batchSize: 256, workers, backend: args.backend as never },
  }, { workerPath, onSpawn: (c) => { childPid = c.pid; } });
  const seconds = (performance.now() - t0) / 1000;
  const peak = rss.stop();
  const result = {
    wallSeconds: seconds, images: r.images, labelsOptimised: r.labelsOptimised.length, phases: r.timing.phases,
    verdict: r.verdict, targets: r.targets.map((t) => t.label), peakRssSumMB: peak.sum / 2 ** 20, processes: peak.processes,
  };
  const line = `| scan (${r.images} clean images, ${r.labelsOptimised.length} labels optimised; verdict ${r.verdict}${r.targets.length ? ` → ${result.targets.join(', ')}` : ''}) | ${seconds.toFixed(1)} s, peak RSS ${result.peakRssSumMB.toFixed(0)} MB in ${peak.processes} processes |`;
  return { result, line };
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
