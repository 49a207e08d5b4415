// The bundled demo end to end through the CLI (no ../shared needed), checked
// against the generator's own independent sweep in demo/metrics.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditReport } from '../../src/core/types';
import { cliPath, demo, needsDemo, repoRoot, tmpDir } from '../helpers';

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 0.006, `${what}: ${a} vs ${b}`);

test('demo: `backdoor-audit demo` prunes the backdoor away as in the paper, and agrees with the generator', { skip: needsDemo }, () => {
  const out = path.join(tmpDir(), 'demo-output');
  const r = spawnSync(process.execPath, [cliPath, 'demo', '--out', out, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report: AuditReport = JSON.parse(r.stdout);
  const m = JSON.parse(readFileSync(demo('metrics.json'), 'utf8'));

  // The attack rate falls as channels are pruned and the three thresholds give distinct rows.
  assert.ok(report.baseline.testAttackRate! > 0.95 && report.baseline.testAccuracy! > 0.9);
  const pruned = report.thresholds.map((t) => t.pruned);
  assert.equal(new Set(pruned).size, 3, `distinct rows: ${pruned}`);
  const attack = report.thresholds.map((t) => t.goodNet.testAttackRate!);
  assert.ok(attack[0] < report.baseline.testAttackRate! && attack[1] < attack[0] && attack[2] < attack[1], `attack falls: ${attack}`);

  // An independent computation (the generator's own forward passes) gives the same numbers.
  assert.deepEqual(report.ranking.map((c) => c.channel), m.prune.order);
  report.steps.forEach((s, i) => {
    near(s.validAccuracy * 100, m.prune.curve[i].validAccuracy, `step ${i + 1} accuracy`);
    near(s.validAttackRate! * 100, m.prune.curve[i].validAttackRate, `step ${i + 1} attack rate`);
  });
  report.thresholds.forEach((t, i) => {
    assert.equal(t.pruned, m.prune.thresholds[i].pruned);
    near(t.goodNet.testAccuracy! * 100, m.prune.thresholds[i].testAccuracy, `G accuracy at ${t.drop}%`);
    near(t.goodNet.testAttackRate! * 100, m.prune.thresholds[i].testAttackRate, `G attack rate at ${t.drop}%`);
  });

  for (const f of ['report.json', 'report.md', 'report.html', 'repaired_2.h5', 'repaired_4.h5', 'repaired_10.h5']) assert.ok(existsSync(path.join(out, f)), f);
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /Content-Security-Policy/);
  assert.ok(!/src="http|href="http/.test(html), 'no remote resources');
});

test('bench: the benchmark code runs end to end at small size (--smoke)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts/bench/run.ts'), '--smoke'], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /audit ÷ plain forward pass/);
  assert.match(r.stdout, /speed-up over the notebook's way/);
  // Both engines in the same run, and whether they gave the same numbers.
  assert.match(r.stdout, /\| measure \| onnxruntime \| wasm \|/);
  assert.match(r.stdout, /plain pass, onnxruntime speed-up over wasm \(wall \/ CPU time\) \| \*\*[\d.]+×\*\* \/ [\d.]+×/);
  assert.match(r.stdout, /same steps, thresholds, B' and G counts \| yes/);
  // The yardsticks: the model's arithmetic, one core's MatMul rate, and its convolutions alone in both layouts.
  assert.match(r.stdout, /in multiply-adds \([\d.]+ M an image\), 1 process × 1 thread \| [\d.]+ GMAC\/s a process, \d+% of the MatMul rate/);
  assert.match(r.stdout, /one core's MatMul rate on onnxruntime \(1,024 × 1,024, 1 thread\) \| [\d.]+ GMAC\/s/);
  assert.match(r.stdout, /conv_1 alone \(32 images a run, 1 thread\), blocked \/ plain kernels \| [\d.]+ \/ [\d.]+ µs an image/);
  assert.match(r.stdout, /the convolutions alone, each at its faster layout \| [\d.]+ µs an image/);
});
