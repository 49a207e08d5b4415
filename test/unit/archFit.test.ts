// Which architecture fits a weights-only file: the lab's bd_weights.h5 and the
// demo's, against full models, a data file and each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { archFit, archFits, isWeightsOnly } from '../../src/core/keras/archFit';
import { loadModel } from '../../src/core/keras/load';
import { demo, lab, needsDemo, needsShared } from '../helpers';

const PRUNED = 'bd_net_pruned45_keras2.15.h5';

test('demo: bd_weights.h5 is weights-only; bd_net.h5 and its clean twin fit it, a data file does not', { skip: needsDemo }, async () => {
  assert.equal(await isWeightsOnly(demo('bd_weights.h5')), true);
  assert.equal(await isWeightsOnly(demo('bd_net.h5')), false);
  const r = await archFits(demo('bd_weights.h5'), [demo('valid.h5'), demo('bd_net.h5'), demo('bd_weights.h5'), demo('clean_net.h5')]);
  assert.equal(r.weightsOnly, true);
  // Fitting ones first, in the order given; the file itself is never a candidate.
  assert.deepEqual(r.fits.map((f) => [f.arch, f.fits]), [[demo('bd_net.h5'), true], [demo('clean_net.h5'), true], [demo('valid.h5'), false]]);
  assert.match(r.fits[2].problems.join(), /no model_config/);
  // With the fitting architecture, the weights are the model's own.
  const a = await loadModel(demo('bd_weights.h5'), demo('bd_net.h5'));
  const b = await loadModel(demo('bd_net.h5'));
  for (const [name, ws] of b.weights) assert.deepEqual(a.weights.get(name)!.map((w) => w.data), ws.map((w) => w.data), name);
});

test('a full model is not weights-only: no candidates are checked', { skip: needsDemo }, async () => {
  const r = await archFits(demo('bd_net.h5'), [demo('clean_net.h5')]);
  assert.deepEqual(r, { model: demo('bd_net.h5'), weightsOnly: false, fits: [] });
});

test('lab: the pruned full model fits bd_weights.h5; the demo network names every layer that does not', { skip: needsShared || needsDemo }, async () => {
  const fit = await archFit(lab('bd_weights.h5'), lab(PRUNED));
  assert.deepEqual(fit, { arch: lab(PRUNED), fits: true, problems: [] });
  const misfit = await archFit(lab('bd_weights.h5'), demo('bd_net.h5'));
  assert.equal(misfit.fits, false);
  // Same layer names, other widths: each weighted layer is named with both shapes.
  assert.ok(misfit.problems.includes('conv_1 (Conv2D) kernel: (4, 4, 3, 20) in the file, (4, 4, 3, 16) in the architecture'), misfit.problems.join('\n'));
  assert.ok(misfit.problems.some((p) => p.startsWith('output (Dense) kernel: (160, 1283) in the file')), misfit.problems.join('\n'));
  assert.equal(misfit.problems.length, 14, misfit.problems.join('\n'));
});
