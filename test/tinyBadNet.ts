// A tiny BadNet whose fine-pruning audit can be worked out by hand.
// Input: one pixel x. conv (1x1, relu) gives three channels:
//   ch0 = x, ch1 = 0.5, ch2 = relu(2x - 10)  (fires only on the "trigger", x > 5)
// Dense logits: l0 = 10*ch2 - 1, l1 = 2*ch1, l2 = ch0 - 2.
import path from 'node:path';
import { writeDatasetH5, writeKerasModelH5, type LayerWeights } from '../src/core/h5/write';

const layer = (class_name: string, name: string, config: object, inbound: string | null) => ({
  class_name, name, config: { name, trainable: true, dtype: 'float32', ...config },
  inbound_nodes: inbound ? [[[inbound, 0, 0, {}]]] : [],
});

export const tinyConfig = JSON.stringify({
  class_name: 'Functional',
  config: {
    name: 'tiny', trainable: true,
    layers: [
      layer('InputLayer', 'input', { batch_input_shape: [null, 1, 1, 1], sparse: false, ragged: false }, null),
      layer('Conv2D', 'conv', { filters: 3, kernel_size: [1, 1], strides: [1, 1], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'relu', use_bias: true }, 'input'),
      layer('MaxPooling2D', 'pool', { pool_size: [1, 1], strides: [1, 1], padding: 'valid', data_format: 'channels_last' }, 'conv'),
      layer('Flatten', 'flat', { data_format: 'channels_last' }, 'pool'),
      layer('Dense', 'out', { units: 3, activation: 'softmax', use_bias: true }, 'flat'),
    ],
    input_layers: [['input', 0, 0]],
    output_layers: [['out', 0, 0]],
  },
  keras_version: '2.15.0', backend: 'tensorflow',
});

/** The hand-set weights above, in Keras 2's naming; any config with layers conv and out can carry them. */
export const tinyWeights = (): LayerWeights[] => [
    { layer: 'conv', weights: [
      { name: 'conv/kernel:0', shape: [1, 1, 1, 3], data: Float32Array.of(1, 0, 2) },
      { name: 'conv/bias:0', shape: [3], data: Float32Array.of(0, 0.5, -10) },
    ] },
    { layer: 'out', weights: [
      // rows: inputs ch0, ch1, ch2; columns: classes 0, 1, 2
      { name: 'out/kernel:0', shape: [3, 3], data: Float32Array.of(0, 0, 1, 0, 2, 0, 10, 0, 0) },
      { name: 'out/bias:0', shape: [3], data: Float32Array.of(-1, 0, -2) },
    ] },
  ];

export async function writeTinyBadNet(dir: string) {
  const f = (n: string) => path.join(dir, n);
  await writeKerasModelH5(f('tiny.h5'), tinyConfig, tinyWeights());
  const set = async (name: string, xs: number[], labels: number[]) =>
    writeDatasetH5(f(name), Float64Array.from(xs), [xs.length, 1, 1, 1], labels);
  await set('valid.h5', [1, 1.5, 2.5, 3.5, 4], [1, 1, 1, 2, 2]);
  await set('bd_valid.h5', [6, 7, 8], [0, 0, 0]);
  await set('test.h5', [1, 2.5, 4, 3.5], [1, 1, 2, 2]);
  await set('bd_test.h5', [6, 9], [0, 0]);
  return f;
}
