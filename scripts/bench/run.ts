// npm run bench: the full audit at the lab's real scale, through the worker as
// a user runs it, against two references measured in the same run: one plain
// forward pass over every image (this algorithm's floor) and the notebook's way
// (a full pass of B' after every pruned channel), timed on a subset.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditReport, ScanReport } from '../../src/core/types';
import { runJob } from '../../src/worker/client';
import { ShardProcess } from '../../src/worker/shardProcess';
import { ensureBenchData, type BenchModel } from './data';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const workerPath = path.join(root, 'dist/worker.mjs');
const { values: args } = parseArgs({ options: {
  workers: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, 'notebook-subset': { type: 'string' },
  smoke: { type: 'boolean' }, backend: { type: 'string' }, 'audit-only': { type: 'boolean' },
  'scan-only': { type: 'boolean' }, 'scan-images': { type: 'string' },
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
  const files = args.smoke ? smokeFiles(m) : await ensureBenchData(dataDir, m);
  const out = path.resolve(args.out ?? path.join(root, 'bench/out'));
  console.log(`model: ${m.name}; data: ${dataDir}; ${workers} worker process(es); ${os.cpus().length} cores`);

  if (args['scan-only']) {
    const scan = await benchScan(m, files.cleanValid, out, workers);
    console.log(scan.line);
    return;
  }

  // 1. The audit, as a user runs it.
  let childPid: number | undefined;
  const rss = new PeakRss(() => childPid);
  const t0 = performance.now();
  const report = await runJob<AuditReport>({
    kind: 'audit',
    options: { model: m.model, arch: m.arch, ...files, thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: true, out, batchSize: 256, workers, backend: args.backend as never },
  }, { workerPath, onSpawn: (c) => { childPid = c.pid; } });
  const auditSeconds = (performance.now() - t0) / 1000;
  const auditRss = rss.stop();
  const counts = Object.values(report.data).map((d) => d!.count);
  const totalImages = counts.reduce((a, b) => a + b, 0);
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

  // 4. The scan (clean data only), as a user runs it.
  const scan = await benchScan(m, files.cleanValid, path.join(out, 'scan'), workers);

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
    results: report.thresholds.map((t) => ({ drop: t.drop, pruned: t.pruned, goodNet: t.goodNet })),
    scan: scan.result,
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
    scan.line,
  ];
  console.log(lines.join('\n'));
  if (!args.smoke) {
    mkdirSync(path.join(root, 'bench'), { recursive: true });
    writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(path.join(root, 'bench/results.md'), lines.join('\n') + '\n');
  }
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
