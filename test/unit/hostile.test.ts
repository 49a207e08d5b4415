// Hostile model files: configs that would run code if Keras loaded them, and
// .keras archives that try to write outside their folder or blow up on
// extraction. Each is reported by inspect and refused by predict and audit;
// nothing is executed and nothing is written outside the test's temp dirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { strToU8, zipSync } from 'fflate';
import h5wasm from 'h5wasm/node';
import { runAudit } from '../../src/core/audit/audit';
import { Shard } from '../../src/core/audit/shard';
import { UserError } from '../../src/core/errors';
import { writeKerasModelH5 } from '../../src/core/h5/write';
import { inspectModel } from '../../src/core/inspect';
import { predictFiles } from '../../src/core/predict';
import type { AuditOptions } from '../../src/core/types';
import { JobError, runJob } from '../../src/worker/client';
import { declareZipSize, tmpDir, workerPath } from '../helpers';
import { tinyConfig, writeTinyBadNet, tinyWeights } from '../tinyBadNet';

type Json = Record<string, any>;

// What Keras 2 stores for `Lambda(lambda x: ...)`: base64 of marshal.dumps(code)
// (a code object, type byte 0xe3) in config.function[0]. This payload names a
// shell command; it is data here and must stay data.
const BYTECODE = Buffer.concat([Buffer.from([0xe3, 0, 0, 0, 0]), Buffer.from("import os; os.system('touch /tmp/backdoor-audit-pwned')")]).toString('base64');

/** The tiny BadNet's config with `edit` applied to its layer list. */
function hostileConfig(edit: (layers: Json[]) => void): string {
  const cfg = JSON.parse(tinyConfig);
  edit(cfg.config.layers);
  return JSON.stringify(cfg);
}
const inbound = (from: string) => [[[from, 0, 0, {}]]];

const HOSTILE: { name: string; code: string; config: string }[] = [
  {
    name: 'Keras 2 Lambda with marshalled bytecode',
    code: 'lambda-layer',
    config: hostileConfig((ls) => {
      ls.splice(3, 0, { class_name: 'Lambda', name: 'lam', inbound_nodes: inbound('pool'), config: { name: 'lam', trainable: true, dtype: 'float32', function: [BYTECODE, null, null], function_type: 'lambda', module: '__main__', output_shape: null, output_shape_type: 'raw', arguments: {} } });
      ls[4].inbound_nodes = inbound('lam');
    }),
  },
  {
    name: 'Keras 3 Lambda (__lambda__ with code)',
    code: 'lambda-layer',
    config: hostileConfig((ls) => {
      ls.splice(3, 0, { module: 'keras.layers', class_name: 'Lambda', registered_name: null, name: 'lam', inbound_nodes: inbound('pool'), config: { name: 'lam', function: { class_name: '__lambda__', config: { code: BYTECODE, defaults: null, closure: null } }, arguments: {} } });
      ls[4].inbound_nodes = inbound('lam');
    }),
  },
  {
    name: 'custom object MyPkg>MyLayer from mypkg.layers',
    code: 'custom-object',
    config: hostileConfig((ls) => {
      Object.assign(ls[3], { class_name: 'MyLayer', registered_name: 'MyPkg>MyLayer', module: 'mypkg.layers' });
    }),
  },
  {
    name: 'custom object on a known class',
    code: 'custom-object',
    config: hostileConfig((ls) => {
      Object.assign(ls[2], { registered_name: 'MyPkg>MyPool', module: 'mypkg.layers' });
    }),
  },
  {
    name: 'nested Functional model',
    code: 'nested-model',
    config: hostileConfig((ls) => {
      const inner = { class_name: 'Flatten', name: 'inner_flat', inbound_nodes: [], config: { name: 'inner_flat', data_format: 'channels_last' } };
      ls[3] = { class_name: 'Functional', name: 'flat', inbound_nodes: inbound('pool'), config: { name: 'flat', layers: [inner], input_layers: [['inner_flat', 0, 0]], output_layers: [['inner_flat', 0, 0]] } };
    }),
  },
];

/** The tiny BadNet's weights under `config`, written as Keras 2 does; its data sets beside it. */
async function tinyWithConfig(dir: string, name: string, config: string): Promise<string> {
  await writeTinyBadNet(dir);
  const file = path.join(dir, name);
  await writeKerasModelH5(file, config, tinyWeights());
  return file;
}

function isUserError(file: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UserError || e instanceof JobError, `expected a clear error, got ${(e as Error)?.stack ?? e}`);
    assert.ok(e.message.includes(file), `names ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  };
}

const auditOpts = (model: string, dir: string, arch?: string): AuditOptions => ({
  model, arch, cleanValid: path.join(dir, 'valid.h5'), poisonedValid: path.join(dir, 'bd_valid.h5'), thresholds: [10], order: 'increasing', rankBy: 'pool', fullSweep: false,
  out: path.join(dir, 'out'), batchSize: 256,
});

test('hostile configs: inspect warns, predict and audit refuse, nothing runs', async () => {
  for (const h of HOSTILE) {
    const dir = tmpDir('ba-hostile-');
    const model = await tinyWithConfig(dir, 'model.h5', h.config);
    const r = await inspectModel(model);
    assert.ok(r.warnings.some((w) => w.code === h.code), `${h.name}: warning ${h.code} in ${JSON.stringify(r.warnings)}`);
    await assert.rejects(predictFiles(model, [path.join(dir, 'valid.h5')]), isUserError(model, /refusing to run this model/));
    await assert.rejects(runAudit(auditOpts(model, dir), { shards: [new Shard()] }), isUserError(model, /refusing to run this model/));
    assert.ok(!existsSync(path.join(dir, 'out')), `${h.name}: no output for a refused model`);
  }
  assert.ok(!existsSync('/tmp/backdoor-audit-pwned'), 'the Lambda payload never ran');
});

test('hostile architecture as a JSON file for a weights-only model: warned and refused', async () => {
  const dir = tmpDir('ba-hostile-');
  const weights = await tinyWithConfig(dir, 'weights.h5', tinyConfig);
  const f = new h5wasm.File(weights, 'a');
  f.delete_attribute('model_config'); // now a weights-only file
  f.close();
  const arch = path.join(dir, 'arch.json');
  writeFileSync(arch, HOSTILE[0].config);
  const r = await inspectModel(weights, arch);
  assert.equal(r.format, 'weights-only+arch');
  assert.ok(r.warnings.some((w) => w.code === 'lambda-layer'));
  await assert.rejects(predictFiles(weights, [path.join(dir, 'valid.h5')], { arch }), isUserError(weights, /refusing to run this model: Lambda layer "lam"/));
  // Through the worker, as the editor and the CLI run it: the same clear error, code 'refused'.
  await assert.rejects(runJob({ kind: 'audit', options: auditOpts(weights, dir, arch) }, { workerPath }), (e: unknown) => {
    assert.ok(e instanceof JobError);
    assert.equal(e.error.code, 'refused');
    assert.match(e.message, /Lambda layer "lam" carries serialized Python code/);
    return true;
  });
  assert.ok(!existsSync(path.join(dir, 'out')));
});

test('unexpected keys in a layer entry are reported; the model still runs (they are never interpreted)', async () => {
  const dir = tmpDir('ba-hostile-');
  const model = await tinyWithConfig(dir, 'model.h5', hostileConfig((ls) => { ls[1].__reduce__ = 'os.system'; ls[1].exec = ['rm -rf /']; }));
  const r = await inspectModel(model);
  const w = r.warnings.find((x) => x.code === 'unexpected-key');
  assert.ok(w, JSON.stringify(r.warnings));
  assert.match(w.message, /layer "conv" has unexpected keys: __reduce__, exec/);
  const p = await predictFiles(model, [path.join(dir, 'valid.h5')]);
  assert.equal(p.accuracy, 1);
});

// ---------------------------------------------------------------- .keras archives


test('.keras archives with unsafe member paths or bomb sizes are refused; nothing is extracted anywhere', async () => {
  const dir = tmpDir('ba-hostile-');
  const sandbox = path.join(dir, 'tmp'); // the loader's temp folder for this test
  const work = path.join(dir, 'work');
  mkdirSync(sandbox);
  mkdirSync(work);
  const config = strToU8(tinyConfig);
  const weights = strToU8('\x89HDF\r\n\x1a\n not really');
  const bomb = zipSync({ 'config.json': config, 'model.weights.h5': new Uint8Array(16 << 20) }, { level: 1 });
  const cases: [string, Uint8Array, RegExp][] = [
    ['dotdot.keras', zipSync({ 'config.json': config, 'model.weights.h5': weights, '../evil': strToU8('x') }), /member "\.\.\/evil" has an unsafe path/],
    ['nested-dotdot.keras', zipSync({ 'config.json': config, 'assets/../../evil': strToU8('x'), 'model.weights.h5': weights }), /unsafe path/],
    ['absolute.keras', zipSync({ '/abs/evil': strToU8('x'), 'config.json': config, 'model.weights.h5': weights }), /member "\/abs\/evil" has an unsafe path/],
    ['drive.keras', zipSync({ 'C:/evil': strToU8('x'), 'config.json': config, 'model.weights.h5': weights }), /unsafe path/],
    ['backslash.keras', zipSync({ 'config.json': config, '..\\evil': strToU8('x'), 'model.weights.h5': weights }), /unsafe path/],
    // 16 MiB of zeros deflate to ~16 KiB: refused from the sizes, before inflating.
    ['bomb.keras', bomb, /zip bomb/],
    // A header that declares ~4 GiB for a small member.
    ['declared.keras', declareZipSize(zipSync({ 'config.json': config, 'model.weights.h5': weights }), 'model.weights.h5', 0xfffffff0), /zip bomb/],
    // A header that declares 1000 bytes for the 16 MiB bomb: inflation stops at the declared size.
    ['lying.keras', declareZipSize(bomb, 'model.weights.h5', 1000), /model\.weights\.h5 in the archive: not an HDF5 file/],
  ];
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = sandbox;
  try {
    for (const [name, bytes, pattern] of cases) {
      const file = path.join(work, name);
      writeFileSync(file, bytes);
      const t0 = performance.now();
      await assert.rejects(inspectModel(file), isUserError(file, pattern));
      await assert.rejects(predictFiles(file, [file]), isUserError(file, pattern));
      assert.ok(performance.now() - t0 < 5000, `${name}: refused quickly`);
    }
    // Through the worker as well.
    const evil = path.join(work, 'dotdot.keras');
    await assert.rejects(runJob({ kind: 'inspect', model: evil }, { workerPath, env: { TMPDIR: sandbox } }), (e: unknown) => e instanceof JobError && e.error.code === 'unsafe-archive' && e.message.startsWith(evil));
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
  assert.deepEqual(readdirSync(sandbox), [], 'no extracted files left in the temp folder');
  for (const where of [dir, work, path.dirname(dir), sandbox, process.cwd()]) {
    assert.ok(!existsSync(path.join(where, 'evil')), `nothing written to ${where}/evil`);
  }
  assert.ok(!existsSync('/abs/evil'));
  assert.deepEqual(readdirSync(work).sort(), cases.map((c) => c[0]).sort(), 'the work folder holds only the archives');
});
