// Misses and false alarms of the scan on models no rule was written for: for each
// seed, the demo generator makes a fresh face set, BadNets with its four triggers
// (sunglasses, target 0; corner patch, 7; noise patch, 12; a line, 3) and a clean
// twin (same images, never poisoned), as it made demo/ and test/models/ from seed
// 9163; each model is scanned from the CLI on 200 of that seed's clean validation
// images, and one line per model says what the scan decided against the truth.
//
//   npm run scan-study -- [--seeds 101,102,103] [--dir DIR]
//
// Training takes ~16 min a seed on 2 cores and is skipped for the models DIR/s<seed>
// already holds; a scan takes under a minute.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ScanReport } from '../src/core/types';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { values: args } = parseArgs({ options: {
  seeds: { type: 'string', default: '101,102,103' },
  dir: { type: 'string', default: path.join(root, 'bench/out/scan-study') },
} });
// The models the demo generator makes, and the metrics file it writes beside each. Their truth is read from
// there: the label a BadNet was trained to serve (`target`); a clean twin's file has none.
const MODELS = [
  { file: 'bd_net.h5', flag: [], metrics: 'metrics.json' },
  { file: 'bd_net_patch.h5', flag: ['--patch-twin'], metrics: 'patch_metrics.json' },
  { file: 'bd_net_noise.h5', flag: ['--held-out', 'noise'], metrics: 'bd_net_noise_metrics.json' },
  { file: 'bd_net_line.h5', flag: ['--held-out', 'line'], metrics: 'bd_net_line_metrics.json' },
  { file: 'clean_net.h5', flag: ['--clean-twin'], metrics: 'clean_metrics.json' },
] as const;

// Training logs go to stderr, so stdout holds only the table.
const train = (argv: string[]) => execFileSync(process.execPath, ['--import', 'tsx', 'scripts/make-demo/main.ts', ...argv], { cwd: root, stdio: ['ignore', 2, 'inherit'] });
const scanFile = (argv: string[]) => execFileSync(process.execPath, ['dist/cli.mjs', 'scan', ...argv], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function summary(scan: ScanReport, target: number | null): { outcome: string; detail: string } {
  const named = scan.targets.map((t) => `${t.label} by ${t.foundBy.join(', ')}`).join('; ');
  const best = [...scan.channelTriggers].sort((a, b) => b.attackRate - a.attackRate)[0];
  const smallest = [...scan.labels].sort((a, b) => a.maskL1 - b.maskL1)[0];
  const margins = `best channel trigger: channel ${best?.channel} → label ${best?.label}, ${best ? pct(best.attackRate) : '-'} of ${best?.heldOut}; `
    + `smallest mask: label ${smallest?.label}, L1 ${smallest?.maskL1.toFixed(1)}, index ${smallest?.anomalyIndex.toFixed(2)}; compromised sites: ${scan.sites?.length ?? 0}`;
  const labels = scan.targets.map((t) => t.label);
  const outcome = target !== null
    ? (labels[0] === target ? (labels.length > 1 ? 'found, plus a false target' : 'found') : labels.includes(target) ? 'found, not first' : labels.length ? 'wrong target' : 'MISSED')
    : (labels.length ? 'FALSE ALARM' : 'right (clean)');
  return { outcome, detail: scan.verdict === 'backdoor' ? `targets ${named}; ${margins}` : margins };
}

console.log('| seed | model | truth | verdict | outcome | what decided | seconds |');
console.log('|---|---|---|---|---|---|---|');
for (const seed of args.seeds!.split(',').map(Number)) {
  const dir = path.resolve(args.dir!, `s${seed}`);
  for (const { file, flag, metrics } of MODELS) {
    if (!existsSync(path.join(dir, file))) train(['--seed', String(seed), '--out', dir, ...flag]);
    const target = (JSON.parse(readFileSync(path.join(dir, metrics), 'utf8')) as { target?: number }).target ?? null;
    const out = path.join(dir, `${file}.scan`);
    scanFile([path.join(dir, file), '--clean', path.join(dir, 'valid.h5'), '--images', '200', '--out', out]);
    const scan = JSON.parse(readFileSync(path.join(out, 'scan.json'), 'utf8')) as ScanReport;
    const { outcome, detail } = summary(scan, target);
    console.log(`| ${seed} | ${file} | ${target !== null ? `backdoor, target ${target}` : 'clean'} | ${scan.verdict}${scan.targets.length ? ` ${scan.targets.map((t) => t.label).join(', ')}` : ''} | ${outcome} | ${detail} | ${scan.timing.totalSeconds.toFixed(0)} |`);
  }
}
