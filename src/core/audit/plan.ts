// Where to prune and where to cache. Pruning conv channel c (zero kernel slice
// and bias) makes that channel constant downstream through channel-wise layers
// (activation, pooling, batch norm), so the audit caches the deepest such
// layer's output once per image and replaces channel c by that constant.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import { activationFn, activationName } from '../model/layers';
import type { Net } from '../model/net';
import type { RankBy } from '../types';

const CHANNELWISE = new Set(['Activation', 'ReLU', 'LeakyReLU', 'BatchNormalization', 'Dropout', 'SpatialDropout2D', 'MaxPooling2D', 'AveragePooling2D']);
const POOLS = new Set(['MaxPooling2D', 'AveragePooling2D']);

export interface PrunePlan {
  /** the Conv2D whose channels are pruned */
  conv: string;
  /** the layer whose output is cached and masked */
  cachePoint: string;
  /** the layer ranked on (pool or conv) */
  rankLayer: string;
  channels: number;
  /** cachePoint's output shape (H, W, C) */
  cacheShape: number[];
  /** value each pruned channel takes at the cache point */
  fill: Float32Array;
}

/** The channel-wise chain that follows `conv` while each layer has one consumer. */
function chainAfter(net: Net, conv: string): string[] {
  const chain: string[] = [];
  let cur = conv;
  for (;;) {
    const next = net.consumersOf(cur);
    if (next.length !== 1) break;
    const node = net.byName.get(next[0])!;
    if (!CHANNELWISE.has(node.className) || node.inbound.length !== 1) break;
    chain.push(node.name);
    cur = node.name;
  }
  return chain;
}

/** Default: the last Conv2D feeding, through channel-wise layers, the last pooling layer. */
function defaultConv(net: Net): string {
  const layers = net.graph.layers;
  for (let i = layers.length - 1; i >= 0; i--) {
    if (!POOLS.has(layers[i].className)) continue;
    let cur = layers[i];
    while (cur.inbound.length === 1) {
      const src = net.byName.get(cur.inbound[0])!;
      if (src.className === 'Conv2D') return src.name;
      if (!CHANNELWISE.has(src.className)) break;
      cur = src;
    }
  }
  const convs = layers.filter((l) => l.className === 'Conv2D');
  if (!convs.length) throw new UserError('the model has no Conv2D layer to prune', net.model.file, 'no-conv');
  return convs[convs.length - 1].name;
}

export function makePlan(net: Net, rankBy: RankBy, layer?: string): PrunePlan {
  const file = net.model.file;
  const conv = layer ?? defaultConv(net);
  const node = net.byName.get(conv);
  if (!node) throw new UserError(`no layer named "${conv}" (layers: ${net.graph.layers.filter((l) => l.className === 'Conv2D').map((l) => l.name).join(', ')})`, file, 'bad-layer');
  if (node.className !== 'Conv2D') throw new UserError(`layer "${conv}" is a ${node.className}; fine-pruning needs a Conv2D layer`, file, 'bad-layer');
  const chain = chainAfter(net, conv);
  const cachePoint = chain.length ? chain[chain.length - 1] : conv;
  const pool = chain.find((n) => POOLS.has(net.byName.get(n)!.className));
  const rankLayer = rankBy === 'pool' && pool ? pool : conv;

  // Every path to the output must pass through the cache point.
  const output = net.outputName;
  const inputName = net.graph.inputs[0];
  const seen = new Set<string>();
  const stack = [output];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === cachePoint || seen.has(n)) continue;
    seen.add(n);
    if (n === inputName) throw new UserError(`layer "${conv}" does not separate the network (a connection bypasses ${cachePoint}); choose another --layer`, file, 'bad-layer');
    stack.push(...net.byName.get(n)!.inbound);
  }

  const convShape = net.shapes.get(conv)!;
  const cacheShape = net.shapes.get(cachePoint)!;
  const channels = convShape[2];
  if (cacheShape[cacheShape.length - 1] !== channels) throw new UserError(`internal: ${cachePoint} does not keep ${conv}'s channels`, file);
  // A pruned channel's conv output is activation(0); push that through the chain.
  const fill = tf.tidy(() => {
    const act = activationFn(activationName(node.config.activation), conv);
    const zeroOut = act(tf.zeros([1, ...convShape]));
    const out = net.run(undefined, [cachePoint], new Map([[conv, zeroOut]])).get(cachePoint)!;
    return tf.reshape(tf.slice(out, [0, 0, 0, 0], [1, 1, 1, channels]), [channels]);
  });
  const fillValues = fill.dataSync() as Float32Array;
  fill.dispose();
  return { conv, cachePoint, rankLayer, channels, cacheShape, fill: Float32Array.from(fillValues) };
}
