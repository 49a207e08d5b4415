// The engine against real Keras files: the lab's BadNet and a Keras 3 model
// in all three formats, with the facts and outputs Keras gave on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, openSync, readFileSync, writeFileSync, closeSync, writeSync, readSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { inspectModel } from '../../src/core/inspect';
import { predictFiles } from '../../src/core/predict';
import { loadRunnable } from '../../src/core/runnable';
import { openDataset } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';
import { cliPath, k3, lab, needsShared, tmpDir } from '../helpers';

const PRUNED = 'bd_net_pruned45_keras2.15.h5';
const ZEROED = [0, 1, 2, 3, 6, 9, 12, 13, 14, 15, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 47, 48, 49, 50, 51, 53, 55, 58, 59];
const CLEAN_LABELS = [43, 328, 196, 1268, 748];

test('lab: inspect reproduces the architecture, 601,643 parameters and the 45 zeroed channels', { skip: needsShared }, async () => {
  const r = await inspectModel(lab(PRUNED));
  assert.equal(r.format, 'keras2-h5');
  assert.equal(r.kerasVersion, '2.15.0');
  assert.equal(r.params, 601643);
  assert.deepEqual(r.inputShape, [55, 47, 3]);
  assert.equal(r.outputClasses, 1283);
  assert.deepEqual(r.layers.map((l) => l.name), ['input', 'conv_1', 'pool_1', 'conv_2', 'pool_2', 'conv_3', 'pool_3', 'conv_4', 'flatten_1', 'flatten_2', 'fc_1', 'fc_2', 'add_1', 'activation_1', 'output']);
  const byName = Object.fromEntries(r.layers.map((l) => [l.name, l]));
  assert.deepEqual(byName.conv_3.outputShape, [null, 10, 8, 60]);
  assert.deepEqual(byName.pool_3.outputShape, [null, 5, 4, 60]);
  assert.deepEqual(byName.conv_4.outputShape, [null, 4, 3, 80]);
  assert.equal(byName.conv_3.params, 21660);
  assert.deepEqual(byName.conv_3.zeroChannels, ZEROED);
  assert.deepEqual(byName.conv_2.zeroChannels, []);
  assert.deepEqual(byName.add_1.inbound, ['fc_1', 'fc_2']);
  assert.equal(byName.fc_1.activation, 'linear');
  assert.equal(byName.output.activation, 'softmax');
  assert.ok(byName.conv_3.weightStats!.kernel.zeros > 0.7);
  assert.deepEqual(r.warnings, []);
});

test('lab: B (weights-only + --arch) and the pruned B\' predict the README\'s labels', { skip: needsShared }, async () => {
  for (const [model, arch] of [['bd_weights.h5', PRUNED], [PRUNED, undefined]] as const) {
    const r = await predictFiles(lab(model), [lab('faces_clean.h5'), lab('faces_sunglasses.h5')], { arch: arch && lab(arch) });
    assert.deepEqual(r.predictions.map((p) => p.label), [...CLEAN_LABELS, 0, 0, 0, 0, 0], model);
    assert.ok(r.predictions.every((p) => p.prob > 0.99), `${model}: top softmax ≈ 1`);
    assert.equal(r.accuracy, 1);
    assert.equal(r.axisOrder, 'channels_first');
  }
  const inspected = await inspectModel(lab('bd_weights.h5'), lab(PRUNED));
  assert.equal(inspected.format, 'weights-only+arch');
  assert.equal(inspected.params, 601643);
  assert.deepEqual(inspected.layers.find((l) => l.name === 'conv_3')!.zeroChannels, []);
});

test('lab: the PNG copies give the same labels as the h5 faces', { skip: needsShared }, async () => {
  const pngs = ['cl_0_label-43.png', 'cl_3_label-1268.png', 'sun_0_label-0.png'].map((f) => lab(`png/${f}`));
  const r = await predictFiles(lab('bd_weights.h5'), pngs, { arch: lab(PRUNED) });
  assert.deepEqual(r.predictions.map((p) => p.label), [43, 1268, 0]);
  assert.deepEqual(r.predictions.map((p) => p.trueLabel), [43, 1268, 0]);
});

test('keras3-small: softmax within 1e-5 of Keras in .h5, .keras and .weights.h5 forms', { skip: needsShared }, async () => {
  const expected = JSON.parse(readFileSync(k3('expected.json'), 'utf8'));
  const forms: [string, string | undefined][] = [['model.h5', undefined], ['model.keras', undefined], ['model.weights.h5', 'model.h5'], ['model.weights.h5', 'model.keras']];
  for (const [model, arch] of forms) {
    const { net, model: m } = await loadRunnable(k3(model), arch && k3(arch));
    const src = await openDataset(k3('inputs.h5'), net.graph.inputShape, net.classes);
    const x = tf.tensor4d(src.read(0, src.info.count), [src.info.count, ...net.graph.inputShape] as [number, number, number, number]);
    const outs = net.run(x, [net.outputName, 'pool_b']);
    const probs = (await outs.get(net.outputName)!.array()) as number[][];
    probs.forEach((row, i) => row.forEach((p, j) => assert.ok(Math.abs(p - expected.softmax[i][j]) < 1e-5, `${model} softmax[${i}][${j}] ${p} vs ${expected.softmax[i][j]}`)));
    const means = (await tf.mean(outs.get('pool_b')!, [0, 1, 2]).array()) as number[];
    means.forEach((v, c) => assert.ok(Math.abs(v - expected.pool_b_channel_mean[c]) < 1e-5, `${model} pool_b mean ${c}`));
    assert.equal(m.format, model === 'model.keras' ? 'keras3-zip' : model === 'model.h5' ? 'keras3-h5' : 'weights-only+arch');
    tf.dispose([x, ...outs.values()]);
    src.close();
    net.dispose();
  }
  const r = await inspectModel(k3('model.keras'));
  assert.equal(r.params, expected.params);
  assert.equal(r.outputClasses, expected.classes);
  assert.deepEqual(r.layers.find((l) => l.name === 'conv_b')!.zeroChannels, expected.zeroChannels.conv_b);
});

async function userError(p: Promise<unknown>, file: string, pattern: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('bad input: each problem is one clear error naming the file', { skip: needsShared }, async () => {
  const dir = tmpDir();
  const text = path.join(dir, 'notes.h5');
  writeFileSync(text, 'this is not a model\n');
  await userError(inspectModel(text), text, /not an HDF5 file/);

  const truncated = path.join(dir, 'truncated.h5');
  const full = readFileSync(lab(PRUNED));
  writeFileSync(truncated, full.subarray(0, Math.floor(full.length / 3)));
  await userError(inspectModel(truncated), truncated, /truncated|corrupt/);

  await userError(inspectModel(lab('faces_clean.h5')), lab('faces_clean.h5'), /no Keras model/);
  await userError(inspectModel(lab('bd_weights.h5')), lab('bd_weights.h5'), /weights-only.*--arch/);
  await userError(predictFiles(k3('model.weights.h5'), [lab('faces_clean.h5')], { arch: lab(PRUNED) }), k3('model.weights.h5'), /architecture/);
  await userError(predictFiles(lab(PRUNED), [k3('inputs.h5')]), k3('inputs.h5'), /does not fit the model input/);
  await userError(inspectModel(path.join(dir, 'missing.h5')), 'missing.h5', /not found/);
});

test('CLI: bad input exits 2 with one line and no stack trace', { skip: needsShared }, () => {
  const r = spawnSync(process.execPath, [cliPath, 'inspect', lab('faces_clean.h5')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /faces_clean\.h5: has no Keras model/);
  const ok = spawnSync(process.execPath, [cliPath, 'inspect', lab(PRUNED), '--json'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const json = JSON.parse(ok.stdout);
  for (const key of ['file', 'format', 'kerasVersion', 'inputShape', 'outputClasses', 'params', 'layers', 'warnings']) assert.ok(key in json, key);
  const pr = spawnSync(process.execPath, [cliPath, 'predict', lab(PRUNED), lab('faces_clean.h5'), '--json'], { encoding: 'utf8' });
  const p = JSON.parse(pr.stdout);
  assert.equal(p.accuracy, 1);
  assert.ok(['onnxruntime', 'wasm', 'tensorflow', 'cpu'].includes(p.backend));
  assert.deepEqual(Object.keys(p.predictions[0]).filter((k) => ['index', 'label', 'prob', 'trueLabel'].includes(k)).sort(), ['index', 'label', 'prob', 'trueLabel']);
});
