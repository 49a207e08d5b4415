// Data problems: each one is a single clear message naming the file, from the
// engine (openDataset, runAudit) and from the CLI (exit code 2, one line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runAudit } from '../../src/core/audit/audit';
import { Shard } from '../../src/core/audit/shard';
import { openDataset } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';
import { writeDatasetH5, writeKerasModelH5 } from '../../src/core/h5/write';
import type { AuditOptions } from '../../src/core/types';
import { cliPath, tmpDir } from '../helpers';
import { tinyConfig, writeTinyBadNet, tinyWeights } from '../tinyBadNet';

type Sets = Partial<Record<'cleanValid' | 'poisonedValid' | 'cleanTest' | 'poisonedTest', string>>;

interface Problem {
  name: string;
  /** writes the bad file(s); returns the audit's data sets and the file the message must name */
  make(dir: string, f: (n: string) => string): Promise<{ sets: Sets; bad: string; model?: string; target?: number }>;
  message: RegExp;
  /** the file can be checked on its own with openDataset (input shape, classes) */
  alone?: [number[], number];
}

const set = (file: string, xs: number[], labels: number[] | undefined, shape = [xs.length, 1, 1, 1]) =>
  writeDatasetH5(file, Float64Array.from(xs), shape, labels);

/** The tiny BadNet on 2x2 images: (N,1,2,2) and (N,2,2,1) both fit it. */
async function tiny2x2(file: string) {
  const cfg = JSON.parse(tinyConfig);
  const [input, , pool] = cfg.config.layers;
  input.config.batch_input_shape = [null, 2, 2, 1];
  Object.assign(pool.config, { pool_size: [2, 2], strides: [2, 2] });
  await writeKerasModelH5(file, JSON.stringify(cfg), tinyWeights());
}

const PROBLEMS: Problem[] = [
  {
    name: 'labels out of range',
    async make(dir, f) {
      await set(f('valid.h5'), [1, 1.5, 2.5, 3.5, 4], [1, 1, 7, 2, 2]);
      return { sets: { cleanValid: f('valid.h5') }, bad: f('valid.h5') };
    },
    message: /label 2 is 7 but the model has only 3 classes \(0\.\.2\)/,
    alone: [[1, 1, 1], 3],
  },
  {
    name: 'negative label',
    async make(dir, f) {
      await set(f('test.h5'), [1, 2.5], [1, -1]);
      return { sets: { cleanValid: f('valid.h5'), cleanTest: f('test.h5') }, bad: f('test.h5') };
    },
    message: /label 1 is -1, not a class index/,
    alone: [[1, 1, 1], 3],
  },
  {
    name: 'NaN in the data',
    async make(dir, f) {
      await set(f('valid.h5'), [1, NaN, 2.5, 3.5, 4], [1, 1, 1, 2, 2]);
      return { sets: { cleanValid: f('valid.h5') }, bad: f('valid.h5') };
    },
    message: /image 1 contains NaN or Inf values/,
  },
  {
    name: 'Inf in the poisoned data',
    async make(dir, f) {
      await set(f('bd_valid.h5'), [6, 7, Infinity], [0, 0, 0]);
      return { sets: { cleanValid: f('valid.h5'), poisonedValid: f('bd_valid.h5') }, bad: f('bd_valid.h5') };
    },
    message: /image 2 contains NaN or Inf values/,
  },
  {
    name: 'empty data set',
    async make(dir, f) {
      await set(f('bd_test.h5'), [], []);
      return { sets: { cleanValid: f('valid.h5'), poisonedTest: f('bd_test.h5') }, bad: f('bd_test.h5') };
    },
    message: /"data" is empty \(0 images\)/,
    alone: [[1, 1, 1], 3],
  },
  {
    name: 'clean and poisoned images of different layouts',
    async make(dir, f) {
      await tiny2x2(f('tiny2x2.h5'));
      await set(f('valid22.h5'), [1, 1, 1, 1, 5, 5, 5, 5], [2, 2], [2, 2, 2, 1]);
      await set(f('bd_valid22.h5'), [9, 9, 9, 9], [0], [1, 1, 2, 2]);
      return { sets: { cleanValid: f('valid22.h5'), poisonedValid: f('bd_valid22.h5') }, bad: f('bd_valid22.h5'), model: f('tiny2x2.h5') };
    },
    message: /images have shape \(1, 2, 2\) but the clean validation images have \(2, 2, 1\)/,
  },
  {
    name: 'poisoned labels not all equal and no --target',
    async make(dir, f) {
      await set(f('bd_valid.h5'), [6, 7, 8], [0, 1, 0]);
      return { sets: { cleanValid: f('valid.h5'), poisonedValid: f('bd_valid.h5') }, bad: f('bd_valid.h5') };
    },
    message: /poisoned data labels are not all the same.*give it with --target/,
  },
  {
    name: 'data that does not fit the model',
    async make(dir, f) {
      await set(f('valid.h5'), [1, 2, 3, 4], [1], [1, 2, 2, 1]);
      return { sets: { cleanValid: f('valid.h5') }, bad: f('valid.h5') };
    },
    message: /data of shape \(1, 2, 2, 1\) does not fit the model input \(1, 1, 1\)/,
    alone: [[1, 1, 1], 3],
  },
  {
    name: 'clean data without labels',
    async make(dir, f) {
      await set(f('valid.h5'), [1, 2], undefined);
      return { sets: { cleanValid: f('valid.h5') }, bad: f('valid.h5') };
    },
    message: /clean data needs a "label" dataset/,
  },
];

const options = (model: string, sets: Sets, out: string, target?: number): AuditOptions => ({
  model, ...sets, cleanValid: sets.cleanValid!, thresholds: [10], order: 'increasing', rankBy: 'pool', fullSweep: false, out, batchSize: 256, target,
});

function cli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

test('data problems: one clear error naming the file, from openDataset, runAudit and the CLI (exit 2)', async () => {
  const runs: Promise<void>[] = [];
  for (const p of PROBLEMS) {
    const dir = tmpDir('ba-data-');
    const f = await writeTinyBadNet(dir);
    const { sets, bad, model = f('tiny.h5') } = await p.make(dir, f);
    const out = path.join(dir, 'out');
    if (p.alone) {
      await assert.rejects(openDataset(bad, ...p.alone), (e: unknown) => {
        assert.ok(e instanceof UserError, `${p.name}: ${e}`);
        assert.equal(e.message, `${bad}: ${e.message.slice(bad.length + 2)}`, 'starts with the file');
        assert.match(e.message, p.message);
        return true;
      });
    }
    await assert.rejects(runAudit(options(model, sets, out), { shards: [new Shard()] }), (e: unknown) => {
      assert.ok(e instanceof UserError, `${p.name}: expected a UserError, got ${(e as Error)?.stack ?? e}`);
      assert.ok(e.message.startsWith(`${bad}: `), `${p.name}: names the file first: ${e.message}`);
      assert.match(e.message, p.message, p.name);
      return true;
    });
    assert.ok(!existsSync(out), `${p.name}: no output written`);
    // The CLI runs the audit in its worker; all CLI runs go in parallel to keep the test short.
    const flags = Object.entries(sets).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, v!]);
    runs.push(cli(['audit', model, ...flags, '--out', out, '--workers', '1']).then((r) => {
      assert.equal(r.status, 2, `${p.name}: exit code 2, stderr: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('backdoor-audit:'));
      assert.equal(lines.length, 1, `${p.name}: one error line: ${r.stderr}`);
      assert.ok(lines[0].startsWith(`backdoor-audit: ${bad}: `), `${p.name}: ${lines[0]}`);
      assert.match(lines[0], p.message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(!existsSync(out), `${p.name}: the CLI wrote no output`);
    }));
  }
  await Promise.all(runs);
});

test('poisoned labels not all equal are fine once --target is given', async () => {
  const dir = tmpDir('ba-data-');
  const f = await writeTinyBadNet(dir);
  await set(f('bd_valid.h5'), [6, 7, 8], [0, 1, 0]);
  const r = await runAudit(options(f('tiny.h5'), { cleanValid: f('valid.h5'), poisonedValid: f('bd_valid.h5') }, path.join(dir, 'out'), 0), { shards: [new Shard()] });
  assert.equal(r.target, 0);
  assert.equal(r.baseline.validAttackRate, 1);
});

test('channels-first images are moved to channels-last, and a NaN or Inf in any channel is found', async () => {
  const file = path.join(tmpDir(), 'cf.h5');
  // 3 images (N, C=3, H=1, W=2), value = 100·image + 10·channel + x.
  const xs = Array.from({ length: 18 }, (_, i) => 100 * Math.floor(i / 6) + 10 * Math.floor((i % 6) / 2) + (i % 2));
  await writeDatasetH5(file, Float64Array.from(xs), [3, 3, 1, 2], [0, 1, 2]);
  const src = await openDataset(file, [1, 2, 3], 3);
  assert.equal(src.info.axisOrder, 'channels_first');
  assert.deepEqual(Array.from(src.read(1, 3)), [100, 110, 120, 101, 111, 121, 200, 210, 220, 201, 211, 221]);
  src.close();
  // One channel: (N, 1, H, W) is read as it is.
  const gray = path.join(path.dirname(file), 'gray.h5');
  await writeDatasetH5(gray, Float64Array.from([1, 2, 3, 4, 5, 6]), [3, 1, 1, 2], [0, 1, 2]);
  const g = await openDataset(gray, [1, 2, 1], 3);
  assert.equal(g.info.axisOrder, 'channels_first');
  assert.deepEqual(Array.from(g.read(0, 3)), [1, 2, 3, 4, 5, 6]);
  g.close();
  for (const bad of [NaN, Infinity, -Infinity, 1e300]) {
    xs[15] = bad; // image 2, channel 1
    await writeDatasetH5(file, Float64Array.from(xs), [3, 3, 1, 2], [0, 1, 2]);
    const s = await openDataset(file, [1, 2, 3], 3);
    assert.equal(s.read(0, 2).length, 12);
    assert.throws(() => s.read(0, 3), (e: unknown) => e instanceof UserError && /image 2 contains NaN or Inf values/.test(e.message) && e.file === file);
    s.close();
  }
});
