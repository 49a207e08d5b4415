// The generator's own fine-pruning check (Liu et al. 2018, as in the lab):
// prune conv_3 channels in increasing order of their mean pool_3 activation on
// clean validation data, and watch clean accuracy and attack success. The
// product's audit engine does this for real; this only proves the demo files
// show the effect.
import type { Params } from './model';
import { pool3Of, predictFromPool3, type Images } from './train';

export interface SweepPoint { pruned: number; channel: number; accuracy: number; attackRate: number }
export interface ThresholdRow { drop: number; pruned: number; validAccuracy: number; testAccuracy: number; testAttackRate: number }
export interface Sweep {
  order: number[];
  meanActivation: number[];
  /** the same on poisoned validation data: backdoor channels light up here */
  meanActivationPoisoned: number[];
  base: { validAccuracy: number; attackRate: number };
  points: SweepPoint[];
  rows: ThresholdRow[];
}

const percent = (hits: number, n: number) => (100 * hits) / n;
const accuracy = (pred: Int32Array, labels: Int32Array) => percent(pred.reduce((a, p, i) => a + (p === labels[i] ? 1 : 0), 0), pred.length);
const rate = (pred: Int32Array, target: number) => percent(pred.reduce((a, p) => a + (p === target ? 1 : 0), 0), pred.length);

export function fineprune(
  p: Params,
  sets: { valid: Images; bdValid: Images; test: Images; bdTest: Images },
  target: number,
  classes: number,
  drops: number[],
): Sweep {
  const pv = pool3Of(p, sets.valid);
  const pb = pool3Of(p, sets.bdValid);
  const channels = pv.shape[3];
  const channelMeans = (a: Float32Array) => {
    const m = new Array<number>(channels).fill(0);
    for (let i = 0; i < a.length; i++) m[i % channels] += a[i];
    return m.map((v) => v / (a.length / channels));
  };
  const mean = channelMeans(pv.data);
  // Stable order: ties (e.g. several all-zero channels) by channel index.
  const order = mean.map((m, c) => [m, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, c]) => c);

  const mask = new Float32Array(channels).fill(1);
  const evalMask = () => ({
    accuracy: accuracy(predictFromPool3(p, pv, mask), sets.valid.labels),
    attackRate: rate(predictFromPool3(p, pb, mask), target),
  });
  const start = evalMask();
  const points: SweepPoint[] = [];
  const masks: Float32Array[] = [mask.slice()];
  for (let k = 0; k < channels; k++) {
    mask[order[k]] = 0;
    masks.push(mask.slice());
    points.push({ pruned: k + 1, channel: order[k], ...evalMask() });
  }

  // Repaired net G for each drop: where B and the pruned B' agree, that label;
  // otherwise the extra class `classes` (the lab's N+1).
  const pt = pool3Of(p, sets.test);
  const pbt = pool3Of(p, sets.bdTest);
  const ones = masks[0];
  const bTest = predictFromPool3(p, pt, ones);
  const bBd = predictFromPool3(p, pbt, ones);
  const rows: ThresholdRow[] = [];
  for (const drop of drops) {
    const hit = points.find((pt2) => start.accuracy - pt2.accuracy >= drop);
    if (!hit) continue;
    const m = masks[hit.pruned];
    const g = (b: Int32Array, bp: Int32Array) => b.map((label, i) => (label === bp[i] ? label : classes));
    const gTest = g(bTest, predictFromPool3(p, pt, m));
    const gBd = g(bBd, predictFromPool3(p, pbt, m));
    rows.push({ drop, pruned: hit.pruned, validAccuracy: hit.accuracy, testAccuracy: accuracy(gTest, sets.test.labels), testAttackRate: rate(gBd, target) });
  }
  return { order, meanActivation: mean, meanActivationPoisoned: channelMeans(pb.data), base: { validAccuracy: start.accuracy, attackRate: start.attackRate }, points, rows };
}
