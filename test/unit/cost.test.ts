// Multiply-adds per image, against the count worked out by hand from each network's layers:
// output positions × kernel height × width × input channels × output channels (a Dense: inputs × units).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { multiplyAdds } from '../../src/core/model/cost';
import { loadRunnable } from '../../src/core/runnable';
import { demo, lab, needsDemo, needsShared } from '../helpers';

async function costOf(model: string, arch?: string) {
  const { net } = await loadRunnable(model, arch, 'wasm');
  try {
    return Object.fromEntries(multiplyAdds(net));
  } finally {
    net.dispose();
  }
}

test('the lab network: 8.16 million multiply-adds an image, most of them in conv_1 and conv_2', { skip: needsShared }, async () => {
  assert.deepEqual(await costOf(lab('bd_weights.h5'), lab('bd_net_pruned45_keras2.15.h5')), {
    conv_1: 52 * 44 * (4 * 4 * 3 * 20), // 55×47 input, 4×4 kernel, 'valid'
    conv_2: 24 * 20 * (3 * 3 * 20 * 40), // after a 2×2 pool: 26×22
    conv_3: 10 * 8 * (3 * 3 * 40 * 60),
    conv_4: 4 * 3 * (2 * 2 * 60 * 80),
    fc_1: 5 * 4 * 60 * 160, // pool_3 flattened
    fc_2: 4 * 3 * 80 * 160, // conv_4 flattened
    output: 160 * 1283,
  });
});

test('the demo network', { skip: needsDemo }, async () => {
  assert.deepEqual(await costOf(demo('bd_net.h5')), {
    conv_1: 52 * 44 * (4 * 4 * 3 * 16),
    conv_2: 24 * 20 * (3 * 3 * 16 * 32),
    conv_3: 10 * 8 * (3 * 3 * 32 * 48),
    conv_4: 4 * 3 * (2 * 2 * 48 * 64),
    fc_1: 5 * 4 * 48 * 128,
    fc_2: 4 * 3 * 64 * 128,
    output: 128 * 20,
  });
});
