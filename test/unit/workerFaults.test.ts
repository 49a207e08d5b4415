// Worker faults: the audit worker killed at random points (seeded), a worker
// run out of memory. Each ends in a clear JobError; no staging folder is left
// and the previous report is never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import h5wasm from 'h5wasm/node';
import path from 'node:path';
import type { AuditOptions } from '../../src/core/types';
import { JobError, recoverAuditOutput, runJob, stuckFile } from '../../src/worker/client';
import { rng as seeded } from '../../scripts/prng';
import { lab, needsShared, repoRoot, tmpDir, workerPath } from '../helpers';
import { writeTinyBadNet } from '../tinyBadNet';

const SEED = 8;

const base = (o: Pick<AuditOptions, 'model' | 'cleanValid' | 'out'> & Partial<AuditOptions>): AuditOptions => ({
  thresholds: [10, 30, 50], order: 'increasing', rankBy: 'pool', fullSweep: true, batchSize: 256, workers: 1, ...o,
});

const leftovers = (dir: string) => readdirSync(dir).filter((n) => /\.(partial|old)-\d+$/.test(n));

/**
 * Runs the audit and SIGKILLs its worker at the `event`-th progress message,
 * after `ms`, or as soon as its staging folder `<out>.partial-<pid>` appears.
 */
async function killedRun(options: AuditOptions, at: { event?: number; ms?: number; writing?: boolean }): Promise<'finished' | 'killed'> {
  let child: ChildProcess | undefined;
  let seen = 0;
  let poll: NodeJS.Timeout | undefined;
  const kill = () => child?.kill('SIGKILL');
  try {
    await runJob({ kind: 'audit', options }, {
      workerPath,
      onSpawn: (c) => {
        child = c;
        if (at.ms !== undefined) setTimeout(kill, at.ms);
        if (at.writing) poll = setInterval(() => { if (existsSync(`${options.out}.partial-${c.pid}`)) kill(); }, 1);
      },
      onProgress: () => {
        if (seen++ === at.event) kill();
      },
    });
    return 'finished'; // the kill came after the answer
  } catch (e) {
    assert.ok(e instanceof JobError, `a JobError, got ${(e as Error)?.stack ?? e}`);
    assert.equal(e.error.code, 'worker-died');
    assert.match(e.message, /^the worker process was killed \(SIGKILL\) before finishing$/);
    return 'killed';
  } finally {
    clearInterval(poll);
  }
}

test('worker killed at random points of an audit: clear error, no staging folder, previous report intact', async () => {
  const dir = tmpDir('ba-faults-');
  const f = await writeTinyBadNet(dir);
  const out = path.join(dir, 'audit');
  const options = base({ model: f('tiny.h5'), cleanValid: f('valid.h5'), poisonedValid: f('bd_valid.h5'), cleanTest: f('test.h5'), poisonedTest: f('bd_test.h5'), out });
  // One complete run: the previous report, and how many progress messages and milliseconds a run takes.
  let events = 0;
  const t0 = performance.now();
  await runJob({ kind: 'audit', options }, { workerPath, onProgress: () => events++ });
  const ms = performance.now() - t0;
  let previous = readFileSync(path.join(out, 'report.json'), 'utf8');
  const rng = seeded(SEED);
  const outcomes: string[] = [];
  for (let trial = 0; trial < 6; trial++) {
    const at = trial % 2 ? { ms: rng.int(ms) } : { event: rng.int(events) };
    const outcome = await killedRun(options, at);
    outcomes.push(`${JSON.stringify(at)}: ${outcome}`);
    assert.deepEqual(leftovers(dir), [], `trial ${trial} ${JSON.stringify(at)}`);
    const now = readFileSync(path.join(out, 'report.json'), 'utf8');
    if (outcome === 'killed') assert.equal(now, previous, `trial ${trial}: the previous report is untouched`);
    else previous = now; // finished before the kill landed: a new complete report
  }
  assert.ok(outcomes.some((o) => o.endsWith('killed')), outcomes.join('; '));
});

test('worker killed while writing repaired models (lab BadNet): the staging folder is removed', { skip: needsShared }, async () => {
  const dir = tmpDir('ba-faults-');
  const out = path.join(dir, 'audit');
  mkdirSync(out);
  writeFileSync(path.join(out, 'report.json'), 'previous');
  // Four repaired 2.4 MB models: the kill lands while they are written.
  const options = base({
    model: lab('bd_net_pruned45_keras2.15.h5'), cleanValid: lab('faces_clean.h5'), poisonedValid: lab('faces_sunglasses.h5'),
    thresholds: [2, 4, 10, 30], out,
  });
  assert.equal(await killedRun(options, { writing: true }), 'killed');
  assert.deepEqual(leftovers(dir), []);
  assert.equal(readFileSync(path.join(out, 'report.json'), 'utf8'), 'previous');
});

test('recovery after a killed audit worker: each state of the output folders', () => {
  const dir = tmpDir('ba-faults-');
  const out = path.join(dir, 'audit');
  const put = (folder: string, text: string) => {
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'report.json'), text);
  };
  const report = () => readFileSync(path.join(out, 'report.json'), 'utf8');
  // Killed while writing: the staging folder goes, the previous report stays.
  put(out, 'previous');
  put(`${out}.partial-41`, 'half');
  recoverAuditOutput(out, 41);
  assert.deepEqual(readdirSync(dir), ['audit']);
  assert.equal(report(), 'previous');
  // Killed between the two renames of the commit: the previous report is put back.
  put(`${out}.partial-42`, 'complete');
  renameSync(out, `${out}.old-42`);
  recoverAuditOutput(out, 42);
  assert.deepEqual(readdirSync(dir), ['audit']);
  assert.equal(report(), 'previous');
  // Killed after the commit, before removing the old folder: the new report stands.
  put(`${out}.old-43`, 'previous');
  writeFileSync(path.join(out, 'report.json'), 'new');
  recoverAuditOutput(out, 43);
  assert.deepEqual(readdirSync(dir), ['audit']);
  assert.equal(report(), 'new');
  // Another process's folders are not touched.
  put(`${out}.partial-99`, 'running elsewhere');
  recoverAuditOutput(out, 44);
  assert.ok(existsSync(`${out}.partial-99`));
});

test('a worker out of memory ends in an error that says so', async () => {
  const dir = tmpDir('ba-faults-');
  const f = await writeTinyBadNet(dir);
  await assert.rejects(runJob({ kind: 'inspect', model: f('tiny.h5') }, { workerPath, env: { NODE_OPTIONS: '--max-old-space-size=16' } }), (e: unknown) => {
    assert.ok(e instanceof JobError);
    assert.equal(e.error.code, 'worker-died');
    assert.match(e.message, /out of memory/);
    return true;
  });
});

test('watchdog: an HDF5 call that never returns kills its process with a marker naming the file', () => {
  // A busy loop inside guard() stands in for the HDF5 library looping on a corrupt file.
  const src = (f: string) => path.join(repoRoot, 'src', f);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { startH5Watchdog } from '${src('worker/watchdog.ts')}';
    import { guard } from '${src('core/h5/file.ts')}';
    startH5Watchdog(1);
    guard('/data/looping.h5', 'reading', () => { for (;;); });
  `], { encoding: 'utf8', timeout: 30000, cwd: repoRoot });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.equal(stuckFile(r.stderr), '/data/looping.h5');
});

test('watchdog: a call slowed without using CPU (a busy machine) is left alone', () => {
  // The call sleeps 3 s against a 1 s limit: long in wall time, nearly no CPU.
  const src = (f: string) => path.join(repoRoot, 'src', f);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { startH5Watchdog } from '${src('worker/watchdog.ts')}';
    import { guard } from '${src('core/h5/file.ts')}';
    startH5Watchdog(1);
    guard('/data/slow.h5', 'reading', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000));
    console.log('returned');
  `], { encoding: 'utf8', timeout: 30000, cwd: repoRoot });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.stdout.trim(), 'returned');
  assert.equal(stuckFile(r.stderr), undefined);
});

test('a model file that sends HDF5 into an endless loop is a clear error naming it, not a hang', async () => {
  // Found by the fuzzer (seed 8, case 279): a weights-only tiny BadNet with 256
  // bytes zeroed at offset 2120; reading its "backend" attribute never returns.
  const dir = tmpDir('ba-faults-');
  const f = await writeTinyBadNet(dir);
  const file = path.join(dir, 'looping.h5');
  copyFileSync(f('tiny.h5'), file);
  await h5wasm.ready;
  const w = new h5wasm.File(file, 'a');
  w.delete_attribute('model_config');
  w.close();
  const bytes = readFileSync(file);
  bytes.fill(0, 2120, 2120 + 256);
  writeFileSync(file, bytes);
  const t0 = performance.now();
  await assert.rejects(runJob({ kind: 'inspect', model: file }, { workerPath, env: { BACKDOOR_AUDIT_H5_TIMEOUT: '2' } }), (e: unknown) => {
    assert.ok(e instanceof JobError, String(e));
    assert.ok(e.error.code !== 'internal' && e.error.code !== 'worker-died', `${e.error.code}: ${e.message}`);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    return true;
  });
  assert.ok(performance.now() - t0 < 15000);
});
