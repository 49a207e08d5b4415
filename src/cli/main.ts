// backdoor-audit: the engine headless. inspect/predict run in this process;
// audit runs in the same worker the editor uses, with progress and Ctrl-C.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { UserError } from '../core/errors';
import { checkRepairOptions } from '../core/train/options';
import type { AuditOptions, AuditReport, Backend, InspectResult, PredictResult, Progress, RepairOptions, ScanOptions, ScanProgress, ScanReport } from '../core/types';
import type { WorkerJob } from '../protocol';
import { JobCancelled, JobError, runJob } from '../worker/client';
import { formatAudit, formatInspect, formatPredict, formatScan } from './format';
import { demoOptions } from './demo';
import { writeReportHtml } from './html';

const USAGE = `backdoor-audit — audit Keras .h5 models for backdoors (fine-pruning)

usage:
  backdoor-audit inspect MODEL [--arch ARCH] [--json]
  backdoor-audit predict MODEL DATA.h5|IMAGE... [--arch ARCH] [--json]
  backdoor-audit audit MODEL --clean-valid V.h5 [--poisoned-valid PV.h5] [--clean-test T.h5]
        [--poisoned-test PT.h5] [--arch A] [--layer L] [--thresholds 2,4,10] [--order increasing]
        [--rank-by pool] [--target 0] [--full-sweep] [--out DIR] [--json]
      repair after pruning (each threshold reached; default: pruning only, as the lab):
        [--fine-tune EPOCHS] [--lr 1e-4] [--optimizer adam|sgd] [--train-batch 64]
        [--fine-tune-layers all|above] [--fine-tune-data DATA.h5]
        [--unlearn-trigger TRIGGER.h5 | --unlearn-from-poisoned] [--unlearn-share 0.2] [--seed 1]
        [--trigger SCANDIR/trigger_<label>.h5 [--trigger-target L]]
  backdoor-audit scan MODEL --clean DATA.h5 [--arch A] [--layer L] [--images 200] [--labels 3]
        [--calibration 20] [--seed 1] [--out DIR] [--json]
                                      find a backdoor, its target and trigger from clean data alone
  backdoor-audit demo [--out DIR]       audit the bundled demo BadNet

common options: --backend auto|onnxruntime|tensorflow|wasm|cpu  --batch-size 256  --workers N  --verbose`;

const options = {
  arch: { type: 'string' }, json: { type: 'boolean' }, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  backend: { type: 'string' }, 'batch-size': { type: 'string' }, workers: { type: 'string' },
  'clean-valid': { type: 'string' }, 'poisoned-valid': { type: 'string' }, 'clean-test': { type: 'string' }, 'poisoned-test': { type: 'string' },
  layer: { type: 'string' }, thresholds: { type: 'string' }, order: { type: 'string' }, 'rank-by': { type: 'string' },
  target: { type: 'string' }, 'full-sweep': { type: 'boolean' }, out: { type: 'string' }, 'sample-maps': { type: 'string' },
  'fine-tune': { type: 'string' }, lr: { type: 'string' }, optimizer: { type: 'string' }, 'train-batch': { type: 'string' },
  'fine-tune-layers': { type: 'string' }, 'fine-tune-data': { type: 'string' }, 'unlearn-trigger': { type: 'string' },
  'unlearn-from-poisoned': { type: 'boolean' }, 'unlearn-share': { type: 'string' }, seed: { type: 'string' },
  trigger: { type: 'string' }, 'trigger-target': { type: 'string' },
  clean: { type: 'string' }, images: { type: 'string' }, labels: { type: 'string' }, calibration: { type: 'string' },
} as const;

const REPAIR_FLAGS = ['lr', 'optimizer', 'train-batch', 'fine-tune-layers', 'fine-tune-data', 'unlearn-trigger', 'unlearn-from-poisoned', 'unlearn-share', 'seed'] as const;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UserError(`--${name} must be a number, got "${v}"`);
  return n;
}

/** --fine-tune and its companions; the ranges are checked with the rest of the repair settings in core. */
export function repairOptions(v: Values): RepairOptions | undefined {
  if (v['fine-tune'] === undefined) {
    const stray = REPAIR_FLAGS.filter((f) => v[f] !== undefined);
    if (stray.length) throw new UserError(`--${stray[0]} only applies with --fine-tune EPOCHS`);
    return undefined;
  }
  if (v['unlearn-share'] !== undefined && !v['unlearn-trigger'] && !v['unlearn-from-poisoned']) {
    throw new UserError('--unlearn-share only applies when unlearning (--unlearn-trigger or --unlearn-from-poisoned)');
  }
  const abs = (p: string | undefined) => (p ? path.resolve(p) : undefined);
  return {
    epochs: int(v['fine-tune'], 'fine-tune', 1)!,
    learningRate: num(v.lr, 'lr') ?? 1e-4,
    optimizer: (v.optimizer ?? 'adam') as RepairOptions['optimizer'],
    batchSize: int(v['train-batch'], 'train-batch', 1) ?? 64,
    layers: (v['fine-tune-layers'] ?? 'all') as RepairOptions['layers'],
    data: abs(v['fine-tune-data']),
    trigger: abs(v['unlearn-trigger']),
    triggerFromPoisoned: !!v['unlearn-from-poisoned'],
    share: num(v['unlearn-share'], 'unlearn-share') ?? 0.2,
    seed: int(v.seed, 'seed') ?? 1,
  };
}

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function int(v: string | undefined, name: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name} must be a whole number >= ${min}, got "${v}"`);
  return n;
}

function backendOf(v: Values): Backend | undefined {
  const b = v.backend;
  if (b === undefined || b === 'auto') return undefined;
  if (b !== 'onnxruntime' && b !== 'tensorflow' && b !== 'wasm' && b !== 'cpu') throw new UserError(`--backend must be auto, onnxruntime, tensorflow, wasm or cpu, got "${b}"`);
  return b;
}

export function parseThresholds(s: string | undefined): number[] {
  if (s === undefined) return [2, 4, 10];
  const list = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!list.length || list.some((x) => !Number.isFinite(x) || x <= 0 || x > 100)) throw new UserError(`--thresholds must be percentages in (0, 100] separated by commas, got "${s}"`);
  return [...new Set(list)].sort((a, b) => a - b);
}

export function auditOptions(model: string, v: Values): AuditOptions {
  if (!v['clean-valid']) throw new UserError('audit needs --clean-valid DATA.h5 (clean validation data)');
  const order = v.order ?? 'increasing';
  if (order !== 'increasing' && order !== 'decreasing') throw new UserError(`--order must be increasing or decreasing, got "${order}"`);
  const rankBy = v['rank-by'] ?? 'pool';
  if (rankBy !== 'pool' && rankBy !== 'conv') throw new UserError(`--rank-by must be pool or conv, got "${rankBy}"`);
  const abs = (p: string | undefined) => (p ? path.resolve(p) : undefined);
  const repair = repairOptions(v);
  if (repair) checkRepairOptions(repair);
  return {
    model: path.resolve(model), arch: abs(v.arch),
    cleanValid: path.resolve(v['clean-valid']), poisonedValid: abs(v['poisoned-valid']),
    cleanTest: abs(v['clean-test']), poisonedTest: abs(v['poisoned-test']),
    layer: v.layer, thresholds: parseThresholds(v.thresholds), order, rankBy,
    target: int(v.target, 'target'), fullSweep: !!v['full-sweep'],
    out: path.resolve(v.out ?? `${model}.audit`), batchSize: int(v['batch-size'], 'batch-size', 1) ?? 256,
    backend: backendOf(v), workers: int(v.workers, 'workers'), sampleMaps: int(v['sample-maps'], 'sample-maps'),
    ...(repair ? { repair } : {}),
    ...(v.trigger ? { trigger: path.resolve(v.trigger) } : {}),
    ...(v['trigger-target'] !== undefined ? { triggerTarget: int(v['trigger-target'], 'trigger-target') } : {}),
  };
}

export function scanOptions(model: string, v: Values): ScanOptions {
  if (!v.clean) throw new UserError('scan needs --clean DATA.h5 (clean images)');
  return {
    model: path.resolve(model), arch: v.arch ? path.resolve(v.arch) : undefined, clean: path.resolve(v.clean), layer: v.layer,
    images: int(v.images, 'images', 2) ?? 200, labels: int(v.labels, 'labels', 1) ?? 3,
    calibration: int(v.calibration, 'calibration', 0) ?? 20, seed: int(v.seed, 'seed') ?? 1,
    out: path.resolve(v.out ?? `${model}.scan`), batchSize: int(v['batch-size'], 'batch-size', 1) ?? 256,
    backend: backendOf(v), workers: int(v.workers, 'workers'),
  };
}

/** Progress on stderr: a redrawn bar on a terminal, plain lines otherwise. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (p: Progress | ScanProgress) => void {
  let lastLine = '';
  let lastPhase = '';
  return (progress) => {
    const p: Partial<Progress> & ScanProgress = progress as Partial<Progress> & ScanProgress;
    const frac = p.total ? `${p.step ?? 0}/${p.total}` : '';
    const acc = p.validAccuracy !== undefined ? ` acc ${(p.validAccuracy * 100).toFixed(2)}%` : '';
    const atk = p.validAttackRate !== undefined ? ` attack ${(p.validAttackRate * 100).toFixed(2)}%` : '';
    const ips = p.imagesPerSecond ? ` ${Math.round(p.imagesPerSecond)} img/s` : '';
    if (stream.isTTY) {
      const width = 24;
      const done = p.total ? Math.round((width * (p.step ?? 0)) / p.total) : 0;
      const bar = p.total ? `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ` : '';
      const line = `${p.phase.padEnd(12)} ${bar}${frac}${acc}${atk}${ips} ${p.message}`.slice(0, (stream.columns || 100) - 1);
      stream.write(`\r\x1b[K${line}`);
      if (p.phase === 'done') stream.write('\n');
    } else {
      const line = `${p.phase}: ${p.message}${frac ? ` (${frac})` : ''}${acc}${atk}${ips}`;
      // Plain logs: one line per phase change and every 10th step, not a flood.
      if (p.phase !== lastPhase || !p.total || (p.step ?? 0) % 10 === 0 || p.step === p.total) {
        if (line !== lastLine) stream.write(line + '\n');
      }
      lastLine = line;
    }
    lastPhase = p.phase;
  };
}

/** Runs an audit or a scan in the worker, with progress on stderr and Ctrl-C as cancel. */
async function runWithProgress<T extends AuditReport | ScanReport>(job: WorkerJob, json: boolean): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\ncancelling…\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await runJob<T>(job, {
      signal: ac.signal,
      onProgress: json ? undefined : progressPrinter(),
      onLog: (level, m) => { if (level === 'warn' || !json) process.stderr.write(`${m}\n`); },
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function runAudit(opts: AuditOptions, json: boolean): Promise<AuditReport> {
  return runWithProgress<AuditReport>({ kind: 'audit', options: opts }, json);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UserError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  const [cmd, ...rest] = positionals;
  if (v.help || !cmd) {
    console.log(USAGE);
    return cmd || v.help ? 0 : 2;
  }
  const out = (text: string, data: unknown) => console.log(v.json ? JSON.stringify(data, null, 2) : text);
  switch (cmd) {
    case 'inspect': {
      if (rest.length !== 1) throw new UserError('inspect takes one MODEL file');
      // In the worker, like every job: a file that hangs the HDF5 library is stopped there.
      const r = await runJob<InspectResult>({ kind: 'inspect', model: path.resolve(rest[0]), arch: v.arch && path.resolve(v.arch) });
      out(formatInspect(r), r);
      return 0;
    }
    case 'predict': {
      if (rest.length < 2) throw new UserError('predict takes a MODEL and at least one DATA.h5 or image');
      const r = await runJob<PredictResult>({
        kind: 'predict', model: path.resolve(rest[0]), inputs: rest.slice(1).map((f) => path.resolve(f)),
        arch: v.arch && path.resolve(v.arch), backend: backendOf(v), batchSize: int(v['batch-size'], 'batch-size', 1),
      });
      out(formatPredict(r), r);
      return 0;
    }
    case 'audit': {
      if (rest.length !== 1) throw new UserError('audit takes one MODEL file');
      const opts = auditOptions(rest[0], v);
      const r = await runAudit(opts, !!v.json);
      const html = writeReportHtml(r, opts.out);
      out(`${formatAudit(r, opts.out)}\npage:   ${html}`, r);
      return 0;
    }
    case 'scan': {
      if (rest.length !== 1) throw new UserError('scan takes one MODEL file');
      const opts = scanOptions(rest[0], v);
      const r = await runWithProgress<ScanReport>({ kind: 'scan', options: opts }, !!v.json);
      out(formatScan(r, opts.out), r);
      return 0;
    }
    case 'demo': {
      const opts = { ...demoOptions(v.out ?? 'demo-output', backendOf(v)), ...(v.workers ? { workers: int(v.workers, 'workers') } : {}) };
      const r = await runAudit(opts, !!v.json);
      const html = writeReportHtml(r, opts.out);
      out(`${formatAudit(r, opts.out)}\npage:   ${html}  (open it in any browser)`, r);
      return 0;
    }
    default:
      throw new UserError(`unknown command "${cmd}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    const verbose = process.argv.includes('--verbose');
    if (e instanceof JobCancelled) {
      process.stderr.write('backdoor-audit: cancelled; no output was written\n');
      process.exitCode = 130;
    } else if (e instanceof UserError || (e instanceof JobError && e.error.code !== 'internal' && e.error.code !== 'worker-died')) {
      process.stderr.write(`backdoor-audit: ${e.message}\n`);
      if (verbose && e.stack) process.stderr.write(`${e instanceof JobError ? e.error.stack ?? '' : e.stack}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`backdoor-audit: internal error: ${e?.message ?? e}\n`);
      if (verbose) process.stderr.write(`${(e instanceof JobError ? e.error.stack : e?.stack) ?? ''}\n`);
      process.exitCode = 1;
    }
  },
);
