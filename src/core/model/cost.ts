// What a forward pass costs in arithmetic: the yardstick for how close a backend
// runs to the hardware (the bench sets it against the core's own MatMul rate).
import type { Net } from './net';

/**
 * Multiply-adds one image costs in each Conv2D and Dense layer, by layer name: the kernel's size
 * times the output positions it is applied at (a Dense on images is applied at every pixel).
 * Pools, activations and merges are left out: they add, compare or copy, and cost little next to these.
 */
export function multiplyAdds(net: Net): Map<string, number> {
  const costs = new Map<string, number>();
  for (const layer of net.graph.layers) {
    if (layer.className !== 'Conv2D' && layer.className !== 'Dense') continue;
    const kernel = net.model.weights.get(layer.name)?.find((w) => w.name === 'kernel');
    const out = net.shapes.get(layer.name);
    if (!kernel || !out) continue;
    const positions = out.slice(0, -1).reduce((a, b) => a * b, 1);
    costs.set(layer.name, kernel.data.length * positions);
  }
  return costs;
}
